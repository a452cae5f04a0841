//! The session lock every maildrop takes: an `flock(LOCK_EX|LOCK_NB)` on a
//! private file beside the mail, held for the whole session, so a second
//! session for the same mailbox gets `[IN-USE]` at once.
//!
//! The file is checked on the open descriptor, as qpopper checked its
//! `.USER.pop` (qpopper.md §9.3): made 0600 and never through a symbolic
//! link, a regular file of the user's, not open to group or others, one
//! link. A file that the session holding it removed as it ended — between
//! our open and our lock — is tried again at its path (qpopper: "Maildrop
//! being unlocked; try again"). What each check's failure is called is the
//! backend's business (the mbox keeps qpopper's texts).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::maildrop::error::{MaildropError, fs_error};
use crate::privilege::Dropped;

/// Why a lock file is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsafe {
    /// It is a symbolic link.
    Link,
    /// It is not a regular file.
    NotRegular,
    /// Another user owns it.
    NotOwned,
    /// Group or others may read or write it.
    Accessible,
    /// It has more than one link.
    Links,
}

/// How many times a lock file that vanished under us is tried again.
const TRIES: usize = 5;

/// Opens (creating) and locks the lock file at `path` as `owner`.
/// `refuse` names a file that fails a check, `open_error` a failed open.
pub fn lock(
    path: &Path,
    owner: &Dropped,
    refuse: &dyn Fn(Unsafe) -> MaildropError,
    open_error: &dyn Fn(io::Error) -> MaildropError,
) -> Result<File, MaildropError> {
    for _ in 0..TRIES {
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse(Unsafe::Link)),
            Err(e) => return Err(open_error(e)),
        };
        let md = file.metadata().map_err(|e| fs_error("stat", path, &e))?;
        if !md.file_type().is_file() {
            return Err(refuse(Unsafe::NotRegular));
        }
        if md.uid() != owner.uid() {
            return Err(refuse(Unsafe::NotOwned));
        }
        if md.mode() & 0o077 != 0 {
            return Err(refuse(Unsafe::Accessible));
        }
        // No link at all: the session that held the file unlinked it as it
        // ended, between our open and this check; try the path again (a
        // regression found by the concurrent-delivery test).
        if md.nlink() == 0 {
            continue;
        }
        if md.nlink() != 1 {
            return Err(refuse(Unsafe::Links));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(MaildropError::LockBusy {
                    path: path.display().to_string(),
                    errno: libc::EWOULDBLOCK,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(fs_error("flock", path, &e)),
        }
        // Still the file at that path? (The session that just ended may
        // have unlinked it after our open.)
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.ino() == md.ino() && now.dev() == md.dev() => return Ok(file),
            _ => continue,
        }
    }
    Err(MaildropError::Unlocking)
}
