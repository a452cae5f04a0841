//! `~/.popbull`: the highest bulletin number a user has been given.
//!
//! COMPAT qpopper 2.53 (qpopper.md §10): one line, the number in decimal
//! and LF, mode 0600; a missing or empty file, or one whose first byte is
//! not a digit, means a new user.
//!
//! Read and written as the user (after the privilege drop), never through
//! a symbolic link, and only if it is a regular file (a FIFO planted there
//! must not hang the session). The write is one `pwrite` of a few bytes at
//! offset 0, then the size, then `fsync`: the old number is replaced
//! whole, and the file is never empty in between.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

const FLAGS: libc::c_int = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;

fn checked(r: io::Result<File>, path: &Path) -> io::Result<File> {
    let f = r.map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io::Error::other(format!("{} is a symbolic link", path.display()))
        } else {
            e
        }
    })?;
    if !f.metadata()?.file_type().is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// The number recorded, or `None` for a new user.
pub fn read(path: &Path) -> io::Result<Option<u64>> {
    let f = match OpenOptions::new().read(true).custom_flags(FLAGS).open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        r => checked(r, path)?,
    };
    let mut buf = [0u8; 32];
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(super::dir::number_of(&buf[..got]).flatten())
}

/// Records `n`, creating the file (mode 0600) if needed.
pub fn write(path: &Path, n: u64) -> io::Result<()> {
    let r = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(FLAGS)
        .open(path);
    let f = checked(r, path)?;
    f.set_permissions(Permissions::from_mode(0o600))?;
    let text = format!("{n}\n");
    f.write_all_at(text.as_bytes(), 0)?;
    f.set_len(text.len() as u64)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn round_trip_new_users_and_refusals() {
        let dir = std::env::temp_dir().join(format!("popper-popbull-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(".popbull");
        assert_eq!(read(&p).unwrap(), None, "missing: new user");
        for (text, want) in [
            ("", None),
            ("x1\n", None),
            ("12\n", Some(12)),
            ("7", Some(7)),
            ("3 extra\n", Some(3)),
        ] {
            std::fs::write(&p, text).unwrap();
            assert_eq!(read(&p).unwrap(), want, "{text:?}");
        }
        std::fs::write(&p, "12345\n").unwrap();
        std::fs::set_permissions(&p, Permissions::from_mode(0o644)).unwrap();
        write(&p, 9).unwrap();
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b"9\n",
            "a shorter number replaces a longer"
        );
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        write(&p, 10).unwrap();
        assert_eq!(read(&p).unwrap(), Some(10));

        let target = dir.join("target");
        std::fs::write(&target, "5\n").unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(write(&p, 6).is_err());
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"5\n",
            "not written through the link"
        );
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        assert!(read(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
