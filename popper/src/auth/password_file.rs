//! checkpw's secret store, without checkpw: the raw secret on one line in
//! a file of the user's Maildir (`~/Maildir/.password`), used for both
//! USER/PASS and APOP (checkpw(8), checkapoppw(8)).
//!
//! The file is the user's own, so it is read as the user — never as root:
//! popper, still root before the login is decided, takes on the user's
//! effective ids for the open and the read only (the real and saved ids
//! stay root's, so the user can neither signal nor trace the process in
//! that window, and root is taken back right after). It is opened without
//! following a symbolic link and used only if it is a regular file of the
//! user's with one link and no permission bits for group or others
//! (checkpw's `chmod 600`), at most [`MAX_SECRET`] bytes. One trailing
//! newline (LF or CR LF) is not part of the secret, as `echo secret >
//! .password` writes it.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::sys::{thread_setegid, thread_seteuid};

/// The longest secret file read (a secret is a password, not a file).
pub const MAX_SECRET: u64 = 1024;

/// Why a password file was not used (for the log; the client is told only
/// that the login failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// The secret in `path`, read as the user `uid`/`gid`.
pub fn read(path: &Path, uid: u32, gid: u32) -> Result<Zeroizing<Vec<u8>>, Refused> {
    let shown = path.display();
    let bytes = as_user(uid, gid, || read_checked(path, uid))?;
    let mut secret = bytes;
    if secret.last() == Some(&b'\n') {
        secret.pop();
        if secret.last() == Some(&b'\r') {
            secret.pop();
        }
    }
    if secret.is_empty() {
        return Err(Refused(format!("{shown} is empty")));
    }
    if secret.contains(&b'\n') {
        return Err(Refused(format!("{shown} holds more than one line")));
    }
    Ok(secret)
}

fn read_checked(path: &Path, uid: u32) -> Result<Zeroizing<Vec<u8>>, Refused> {
    let shown = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Refused(format!("{shown} is a symbolic link")),
            _ => Refused(format!("cannot open {shown}: {e}")),
        })?;
    let md = f
        .metadata()
        .map_err(|e| Refused(format!("cannot stat {shown}: {e}")))?;
    if !md.file_type().is_file() {
        return Err(Refused(format!("{shown} is not a regular file")));
    }
    if md.uid() != uid {
        return Err(Refused(format!("{shown} is not owned by the user")));
    }
    if md.mode() & 0o077 != 0 {
        return Err(Refused(format!(
            "{shown} has mode 0{:o}: it must be 0600",
            md.mode() & 0o7777
        )));
    }
    if md.nlink() != 1 {
        return Err(Refused(format!("{shown} has more than one link")));
    }
    if md.len() > MAX_SECRET {
        return Err(Refused(format!(
            "{shown} is larger than {MAX_SECRET} bytes"
        )));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(md.len() as usize));
    f.take(MAX_SECRET)
        .read_to_end(&mut buf)
        .map_err(|e| Refused(format!("cannot read {shown}: {e}")))?;
    Ok(buf)
}

/// Runs `f` with the effective ids of the user (when root; a process
/// already running as that user needs no change, any other is refused).
fn as_user<T>(uid: u32, gid: u32, f: impl FnOnce() -> Result<T, Refused>) -> Result<T, Refused> {
    let me = crate::sys::thread_geteuid();
    if me != 0 {
        if me == uid {
            return f();
        }
        return Err(Refused(format!(
            "cannot read another user's password file as uid {me}"
        )));
    }
    if uid == 0 {
        return Err(Refused("root has no password file".into()));
    }
    let my_gid = nix::unistd::getegid().as_raw();
    thread_setegid(gid).map_err(|e| Refused(format!("setegid: {e}")))?;
    if let Err(e) = thread_seteuid(uid) {
        let _ = thread_setegid(my_gid);
        return Err(Refused(format!("seteuid: {e}")));
    }
    let r = f();
    // Root again: the saved uid is root's, so this cannot fail short of
    // the kernel refusing; if it did, nothing more may run as this process.
    if thread_seteuid(0).is_err() || thread_setegid(my_gid).is_err() {
        std::process::abort();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "popper-pwfile-{}-{:x}",
            std::process::id(),
            crate::sys::random_u64()
        ));
        std::fs::create_dir(&d).unwrap();
        d
    }

    /// The user the test files belong to: the tester, or (as root, which
    /// has no password file) nobody.
    fn me() -> (u32, u32) {
        if nix::unistd::geteuid().is_root() {
            (65534, 65534)
        } else {
            (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            )
        }
    }

    /// Gives `p` (and its directory) to the test user.
    fn own(p: &Path) {
        if nix::unistd::geteuid().is_root() {
            let (u, g) = me();
            std::os::unix::fs::lchown(p, Some(u), Some(g)).unwrap();
            std::os::unix::fs::chown(p.parent().unwrap(), Some(u), Some(g)).unwrap();
        }
    }

    fn write(p: &Path, bytes: &[u8], mode: u32) {
        std::fs::write(p, bytes).unwrap();
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        own(p);
    }

    #[test]
    fn the_secret_without_its_newline() {
        let d = dir();
        let p = d.join(".password");
        let (uid, gid) = me();
        for (content, want) in [
            (&b"s3cret\n"[..], &b"s3cret"[..]),
            (b"s3cret", b"s3cret"),
            (b"with space \r\n", b"with space "),
        ] {
            write(&p, content, 0o600);
            assert_eq!(read(&p, uid, gid).unwrap().as_slice(), want);
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn links_loose_modes_empty_and_foreign_files_are_refused() {
        let d = dir();
        let p = d.join(".password");
        let (uid, gid) = me();
        write(&p, b"x\n", 0o644);
        assert!(read(&p, uid, gid).unwrap_err().0.contains("mode 0644"));
        write(&p, b"\n", 0o600);
        assert!(read(&p, uid, gid).unwrap_err().0.contains("empty"));
        write(&p, b"a\nb\n", 0o600);
        assert!(
            read(&p, uid, gid)
                .unwrap_err()
                .0
                .contains("more than one line")
        );
        std::fs::remove_file(&p).unwrap();
        let target = d.join("elsewhere");
        write(&target, b"x\n", 0o600);
        std::os::unix::fs::symlink(&target, &p).unwrap();
        own(&p);
        assert!(read(&p, uid, gid).unwrap_err().0.contains("symbolic link"));
        std::fs::remove_file(&p).unwrap();
        std::fs::hard_link(&target, &p).unwrap();
        assert!(
            read(&p, uid, gid)
                .unwrap_err()
                .0
                .contains("more than one link")
        );
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        assert!(
            read(&p, uid, gid)
                .unwrap_err()
                .0
                .contains("not a regular file")
        );
        std::fs::remove_dir(&p).unwrap();
        write(&p, &[b'y'; 2000], 0o600);
        assert!(read(&p, uid, gid).unwrap_err().0.contains("larger than"));
        assert!(
            read(&d.join("missing"), uid, gid)
                .unwrap_err()
                .0
                .contains("cannot open")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn as_root_the_file_is_read_as_its_user_and_root_comes_back() {
        if !nix::unistd::geteuid().is_root() {
            // As a user, reading as another user is refused (tested here).
            assert!(read(Path::new("/nonexistent"), 0, 0).is_err());
            return;
        }
        let d = dir();
        let p = d.join(".password");
        write(&p, b"x\n", 0o600);
        // Owned by root: a user (uid 1) may not use it, and as that user
        // the read fails anyway (0600 root's).
        let e = read(&p, 1, 1).unwrap_err().0;
        assert!(e.contains("cannot open") || e.contains("not owned"), "{e}");
        assert_eq!(crate::sys::thread_geteuid(), 0, "root again after the read");
        // Made the user's: read as the user.
        std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        assert_eq!(read(&p, 65534, 65534).unwrap().as_slice(), b"x");
        assert_eq!(crate::sys::thread_geteuid(), 0);
        assert!(read(&p, 0, 0).unwrap_err().0.contains("root"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
