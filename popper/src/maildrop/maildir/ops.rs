//! The file-system steps every Maildir change is made of: opening a file
//! without following a link, a rename that never replaces another file,
//! and a directory's fsync.
//!
//! Each change popper makes to a Maildir is one of these renames or one
//! unlink, so each is atomic (see the module documentation of `mod.rs`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading: never through a symbolic link, never blocking
/// on a FIFO, never becoming the controlling terminal.
pub fn open_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
}

/// Renames `from` to `to` unless `to` exists (then `EEXIST`): a message
/// never replaces another one. Atomic where the file system has
/// `RENAME_NOREPLACE`; elsewhere a check of `to` first (a race only with
/// the user's own programs, which then keep the file they wrote).
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            // The file system cannot do it: check, then rename.
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    match std::fs::symlink_metadata(to) {
        Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::rename(from, to),
        Err(e) => Err(e),
    }
}

/// Makes the directory's entries durable (the renames, unlinks and new
/// names in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_DIRECTORY)
        .open(dir)?
        .sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildrop::maildir::fixture::TempDir;

    #[test]
    fn rename_never_replaces() {
        let d = TempDir::new("ops");
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let e = rename_no_replace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        rename_no_replace(&a, &c).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), b"a");
        assert!(!a.exists());
        assert_eq!(
            rename_no_replace(&a, &d.path().join("x"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        sync_dir(d.path()).unwrap();
        std::os::unix::fs::symlink(&c, d.path().join("l")).unwrap();
        assert!(open_read(&d.path().join("l")).is_err());
        assert!(sync_dir(&d.path().join("l")).is_err());
    }
}
