//! The Maildir session lock: `flock(LOCK_EX|LOCK_NB)` on
//! `Maildir/.popper.lock`, held for the whole session, so a second popper
//! session for the same Maildir gets `[IN-USE]` at once, with the text
//! the mbox session lock gives (`mbox/lock.rs`).
//!
//! A Maildir needs no lock for delivery or for other readers (every
//! change is a rename); this one only keeps two POP sessions from
//! numbering and updating the same messages at once. The file is checked
//! as the mbox session lock is: made 0600, never through a symbolic link,
//! a regular file of the user's, not open to group or others, one link.
//! A dot-file, so qmail and Dovecot ignore it; removed at the end.
//!
//! DEVIATION: qmail-pop3d takes no lock; two sessions could each delete
//! and rename the same files (harmless there: each step is atomic).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::maildrop::error::{MaildropError, fs_error};
use crate::maildrop::session_lock::Unsafe;
use crate::privilege::Dropped;

/// The lock file's name in the Maildir's root.
pub const NAME: &str = ".popper.lock";

/// Held for the session; dropping it removes the file and releases the
/// lock.
#[derive(Debug)]
pub struct SessionLock {
    /// Held, not read: closing it releases the lock.
    _file: File,
    path: PathBuf,
}

impl SessionLock {
    /// Takes the lock of the Maildir `root`, as its user (`owner` proves
    /// privileges were dropped to them).
    pub fn acquire(root: &Path, owner: &Dropped) -> Result<SessionLock, MaildropError> {
        let path = root.join(NAME);
        let shown = path.display().to_string();
        let refuse = |why: Unsafe| MaildropError::UnsafeFile {
            path: shown.clone(),
            why: match why {
                Unsafe::Link => "it is a symbolic link",
                Unsafe::NotRegular => "it is not a regular file",
                Unsafe::NotOwned => "it is not owned by the user",
                Unsafe::Accessible => "it is accessible by others",
                Unsafe::Links => "it has more than one link",
            }
            .into(),
        };
        let open_error = |e: std::io::Error| fs_error("open", &path, &e);
        let file = crate::maildrop::session_lock::lock(&path, owner, &refuse, &open_error)?;
        Ok(SessionLock { _file: file, path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SessionLock {
    /// Removes the file, then releases the lock (by closing it), in that
    /// order: a session that opened the file before the unlink finds it
    /// locked, then unlinked, and tries the path again.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildrop::maildir::fixture::TempDir;
    use pop3_core::reply::{ErrReply, Reply};
    use std::os::unix::fs::MetadataExt;

    fn text(e: MaildropError) -> String {
        String::from_utf8(Reply::Err(ErrReply::Storage(e.into())).to_bytes()).unwrap()
    }

    #[test]
    fn a_second_session_is_in_use() {
        let d = TempDir::new("lock");
        let me = Dropped::current_for_tests();
        let first = SessionLock::acquire(d.path(), &me).unwrap();
        let md = std::fs::symlink_metadata(first.path()).unwrap();
        assert_eq!(md.mode() & 0o777, 0o600);
        let e = SessionLock::acquire(d.path(), &me).unwrap_err();
        assert_eq!(
            text(e),
            format!(
                "-ERR [IN-USE] {}/.popper.lock lock busy!  Is another session active? ({})\r\n",
                d.path().display(),
                libc::EWOULDBLOCK
            )
        );
        drop(first);
        assert!(!d.path().join(NAME).exists(), "removed at the end");
        let again = SessionLock::acquire(d.path(), &me).unwrap();
        drop(again);
    }

    #[test]
    fn unsafe_lock_files_are_refused() {
        let d = TempDir::new("lock-unsafe");
        let me = Dropped::current_for_tests();
        let p = d.path().join(NAME);
        let why = |r: Result<SessionLock, MaildropError>| match r {
            Err(MaildropError::UnsafeFile { why, .. }) => why,
            other => panic!("{other:?}"),
        };
        std::os::unix::fs::symlink(d.path().join("elsewhere"), &p).unwrap();
        assert_eq!(
            why(SessionLock::acquire(d.path(), &me)),
            "it is a symbolic link"
        );
        assert!(!d.path().join("elsewhere").exists());
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, b"").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        assert_eq!(
            why(SessionLock::acquire(d.path(), &me)),
            "it is accessible by others"
        );
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert_eq!(
            why(SessionLock::acquire(
                d.path(),
                &Dropped::for_tests(me.uid() + 1)
            )),
            "it is not owned by the user"
        );
        std::fs::hard_link(&p, d.path().join("other")).unwrap();
        assert_eq!(
            why(SessionLock::acquire(d.path(), &me)),
            "it has more than one link"
        );
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        assert!(SessionLock::acquire(d.path(), &me).is_err());
    }
}
