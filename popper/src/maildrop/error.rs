//! Why a maildrop could not be opened, read or updated: the typed errors
//! of popper's storage backends, their log wording, and — at the seam to
//! the protocol core — the [`StorageError`] each becomes: a response-code
//! kind and the reply text (qpopper 2.53's texts where it had them).
//!
//! The core chooses how the kind is written (`[IN-USE]`, `[SYS/TEMP]`,
//! `[SYS/PERM]`); the words after it are decided here, one arm per error.

use std::fmt;
use std::io;
use std::path::Path;

use pop3_core::error::{StorageError, StorageKind};

/// Why the maildrop could not be opened, read or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaildropError {
    /// The session lock `.USER.pop` is held by another live session.
    LockBusy {
        /// Path of the session lock file.
        path: String,
        /// errno of the failed non-blocking lock (EWOULDBLOCK).
        errno: i32,
    },
    /// The session lock file kept vanishing as the session that held it
    /// ended (COMPAT qpopper 2.53: "Maildrop being unlocked").
    Unlocking,
    /// A spool lock (dotlock, fcntl or flock) could not be had in time.
    LockTimeout {
        /// Which lock, for the text.
        what: String,
    },
    /// The session lock file is not owned by the user.
    TempNotOwned {
        /// The user name.
        user: String,
    },
    /// The session lock file is readable or writable by others.
    TempAccessible {
        /// Its path.
        path: String,
    },
    /// The session lock file has more than one link.
    TempLinks,
    /// The session lock file is a symlink or not a regular file.
    TempNotRegular {
        /// Its path.
        path: String,
    },
    /// The session lock file could not be opened or created.
    TempOpen {
        /// Its path.
        path: String,
        /// errno.
        errno: i32,
    },
    /// The spool does not start with a message separator.
    BadEnvelope {
        /// Spool path.
        path: String,
    },
    /// The spool path is a symlink, not a regular file, or not the user's.
    UnsafeSpool {
        /// Spool path.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// A file of popper's own beside the spool (the update journal) is a
    /// symbolic link, not a regular file, or not the user's private file.
    UnsafeFile {
        /// Its path.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// The spool was changed by another program during the session; the
    /// update was not applied (nothing lost, deletions not done).
    Changed {
        /// Spool path.
        path: String,
    },
    /// The disk or quota is full; nothing was changed.
    NoSpace {
        /// Spool path.
        path: String,
    },
    /// An update could not be finished; its journal is kept and the next
    /// login completes it.
    Interrupted {
        /// Spool path.
        path: String,
        /// errno of the last failure.
        errno: i32,
    },
    /// A journal left by an interrupted update cannot be applied to the
    /// spool as it is now; nothing was changed.
    RecoveryNeeded {
        /// Spool path.
        path: String,
    },
    /// The session lock file holds something that is not a qpopper
    /// temporary maildrop.
    BadTempDrop {
        /// Its path.
        path: String,
    },
    /// The Maildir directory does not exist (COMPAT qmail-pop3d: "this
    /// user has no $HOME/Maildir").
    NoMaildir {
        /// The Maildir's path.
        path: String,
    },
    /// The Maildir has no `cur/` or no `new/` (COMPAT qmail-pop3d: "unable
    /// to scan $HOME/Maildir"; popper does not make the directory itself).
    MaildirIncomplete {
        /// The Maildir's path.
        path: String,
        /// The missing subdirectory (`cur` or `new`).
        sub: String,
    },
    /// The Maildir or one of its subdirectories is a symbolic link, not a
    /// directory, or not the user's.
    UnsafeMaildir {
        /// The directory's path.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// A Maildir message listed at login is no longer there (another
    /// reader deleted it): that one message cannot be sent.
    MessageGone {
        /// Its wire number.
        num: u32,
    },
    /// A Maildir message listed at login was rewritten or cut by another
    /// program: it no longer has the size announced.
    MessageChanged {
        /// Its wire number.
        num: u32,
    },
    /// Some of a Maildir update's renames and unlinks failed; the others
    /// were made (each is atomic, so every message is in one state).
    PartialUpdate {
        /// The Maildir's path.
        path: String,
        /// How many steps failed.
        failed: usize,
        /// errno of the first failure.
        errno: i32,
    },
    /// A Maildir update's changes were made, but the directories could not
    /// be synced: they may not survive a crash.
    NotDurable {
        /// The Maildir's path.
        path: String,
        /// errno of the failed fsync.
        errno: i32,
    },
    /// Another system error.
    Io {
        /// The operation that failed ("read", "fsync", …).
        op: String,
        /// The file concerned.
        path: String,
        /// errno.
        errno: i32,
    },
}

impl MaildropError {
    /// Which response code the client gets: whether another session has
    /// the mailbox, trying again later can help, or the administrator must.
    pub fn kind(&self) -> StorageKind {
        match self {
            MaildropError::LockBusy { .. }
            | MaildropError::Unlocking
            | MaildropError::LockTimeout { .. } => StorageKind::InUse,
            MaildropError::TempNotOwned { .. }
            | MaildropError::TempAccessible { .. }
            | MaildropError::TempLinks
            | MaildropError::TempNotRegular { .. }
            | MaildropError::BadEnvelope { .. }
            | MaildropError::UnsafeSpool { .. }
            | MaildropError::UnsafeFile { .. }
            | MaildropError::RecoveryNeeded { .. }
            | MaildropError::BadTempDrop { .. }
            | MaildropError::NoMaildir { .. }
            | MaildropError::MaildirIncomplete { .. }
            | MaildropError::UnsafeMaildir { .. } => StorageKind::Perm,
            MaildropError::TempOpen { .. }
            | MaildropError::Changed { .. }
            | MaildropError::NoSpace { .. }
            | MaildropError::Interrupted { .. }
            | MaildropError::MessageGone { .. }
            | MaildropError::MessageChanged { .. }
            | MaildropError::PartialUpdate { .. }
            | MaildropError::NotDurable { .. }
            | MaildropError::Io { .. } => StorageKind::Temp,
        }
    }

    /// The reply's text after its response code (qpopper 2.53's words
    /// where it had them).
    pub fn reply_text(&self) -> String {
        match self {
            MaildropError::LockBusy { path, errno } => {
                format!("{path} lock busy!  Is another session active? ({errno})")
            }
            MaildropError::Unlocking => "Maildrop being unlocked; try again.".to_string(),
            MaildropError::LockTimeout { what } => {
                format!("Timed out waiting for the {what}; try again later.")
            }
            MaildropError::TempNotOwned { user } => {
                format!("Temporary drop file not owned by {user}.")
            }
            MaildropError::TempAccessible { path } => {
                format!("Your temporary file {path} is accessable by others.  This must be fixed")
            }
            MaildropError::TempLinks => {
                "Your temporary file appears to have more than one link.".to_string()
            }
            MaildropError::TempNotRegular { path } => {
                format!("Your temporary drop file {path} is not type 'regular file'")
            }
            MaildropError::TempOpen { .. } => {
                "System error, can't open temporary file, do you own it?".to_string()
            }
            MaildropError::BadEnvelope { .. } => {
                "Unable to process From lines (envelopes), change recognition modes.".to_string()
            }
            MaildropError::UnsafeSpool { path, why } => {
                format!("Mail spool {path} refused: {why}.")
            }
            MaildropError::UnsafeFile { path, why } => format!("{path} refused: {why}."),
            MaildropError::Changed { path } => {
                format!(
                    "{path} was changed by another program during this session; no changes made."
                )
            }
            MaildropError::NoSpace { path } => {
                format!("Disk full or quota exceeded updating {path}; mailbox left unchanged.")
            }
            MaildropError::Interrupted { path, errno } => format!(
                "Update of {path} interrupted ({errno}); it will be completed at your next login."
            ),
            MaildropError::RecoveryNeeded { path } => format!(
                "{path} needs the administrator: an interrupted update cannot be completed; nothing was changed."
            ),
            MaildropError::BadTempDrop { path } => {
                format!("Your temporary drop file {path} is not empty and is not a mailbox.")
            }
            MaildropError::NoMaildir { path } => format!("this user has no {path}"),
            MaildropError::MaildirIncomplete { path, sub } => {
                format!("unable to scan {path}: it has no {sub}/ directory")
            }
            MaildropError::UnsafeMaildir { path, why } => {
                format!("Maildir {path} refused: {why}.")
            }
            MaildropError::MessageGone { num } => {
                format!("Message {num} is no longer in the maildrop.")
            }
            MaildropError::MessageChanged { num } => {
                format!("Message {num} was changed by another program during this session.")
            }
            MaildropError::PartialUpdate {
                path,
                failed,
                errno,
            } => format!(
                "{failed} changes to {path} could not be made ({errno}); the others were made."
            ),
            MaildropError::NotDurable { path, errno } => {
                format!("The changes to {path} were made but may not survive a crash ({errno}).")
            }
            MaildropError::Io { op, path, errno } => {
                format!("Error {op} {path} ({errno}); mailbox left unchanged.")
            }
        }
    }
}

impl From<MaildropError> for StorageError {
    fn from(e: MaildropError) -> StorageError {
        StorageError {
            kind: e.kind(),
            reply: e.reply_text(),
            log: e.to_string(),
        }
    }
}

/// A file-system error as the session reports it: disk full and quota get
/// their own `[SYS/TEMP]` text, everything else names the operation.
pub fn fs_error(op: &str, path: &Path, e: &io::Error) -> MaildropError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => MaildropError::NoSpace {
            path: path.display().to_string(),
        },
        errno => MaildropError::Io {
            op: op.to_string(),
            path: path.display().to_string(),
            errno: errno.unwrap_or(0),
        },
    }
}

impl fmt::Display for MaildropError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaildropError::LockBusy { path, errno } => {
                write!(f, "{path} lock busy (errno {errno})")
            }
            MaildropError::Unlocking => f.write_str("the session lock file kept vanishing"),
            MaildropError::LockTimeout { what } => write!(f, "timed out waiting for {what}"),
            MaildropError::TempNotOwned { user } => {
                write!(f, "session lock file not owned by {user}")
            }
            MaildropError::TempAccessible { path } => write!(f, "{path} is accessible by others"),
            MaildropError::TempLinks => f.write_str("session lock file has more than one link"),
            MaildropError::TempNotRegular { path } => write!(f, "{path} is not a regular file"),
            MaildropError::TempOpen { path, errno } => {
                write!(f, "cannot open {path} (errno {errno})")
            }
            MaildropError::BadEnvelope { path } => {
                write!(f, "{path} does not start with a From line")
            }
            MaildropError::UnsafeSpool { path, why } | MaildropError::UnsafeFile { path, why } => {
                write!(f, "{path}: {why}")
            }
            MaildropError::Changed { path } => write!(
                f,
                "{path} was changed by another program during the session"
            ),
            MaildropError::NoSpace { path } => write!(f, "no space left while updating {path}"),
            MaildropError::Interrupted { path, errno } => write!(
                f,
                "update of {path} interrupted (errno {errno}); the journal is kept for the next login"
            ),
            MaildropError::RecoveryNeeded { path } => write!(
                f,
                "{path}: an interrupted update cannot be completed automatically"
            ),
            MaildropError::BadTempDrop { path } => {
                write!(f, "{path} is not empty and is not a mailbox")
            }
            MaildropError::NoMaildir { path } => write!(f, "{path} does not exist"),
            MaildropError::MaildirIncomplete { path, sub } => {
                write!(f, "{path} has no {sub}/ directory")
            }
            MaildropError::UnsafeMaildir { path, why } => write!(f, "{path}: {why}"),
            MaildropError::MessageGone { num } => {
                write!(f, "message {num} vanished from the Maildir")
            }
            MaildropError::MessageChanged { num } => {
                write!(f, "message {num} was changed by another program")
            }
            MaildropError::PartialUpdate {
                path,
                failed,
                errno,
            } => write!(
                f,
                "{failed} renames/unlinks in {path} failed (first errno {errno})"
            ),
            MaildropError::NotDurable { path, errno } => {
                write!(f, "fsync of {path}'s directories failed (errno {errno})")
            }
            MaildropError::Io { op, path, errno } => write!(f, "{op} {path}: errno {errno}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pop3_core::reply::{ErrReply, Reply};

    #[test]
    fn maildrop_texts() {
        let m = |e: MaildropError| {
            String::from_utf8(Reply::Err(ErrReply::Storage(e.into())).to_bytes()).unwrap()
        };
        assert_eq!(
            m(MaildropError::LockBusy {
                path: "/var/mail/.alice.pop".into(),
                errno: 11
            }),
            "-ERR [IN-USE] /var/mail/.alice.pop lock busy!  Is another session active? (11)\r\n"
        );
        assert_eq!(
            m(MaildropError::BadEnvelope {
                path: "/var/mail/alice".into()
            }),
            "-ERR [SYS/PERM] Unable to process From lines (envelopes), change recognition modes.\r\n"
        );
        assert_eq!(
            m(MaildropError::TempLinks),
            "-ERR [SYS/PERM] Your temporary file appears to have more than one link.\r\n"
        );
        assert_eq!(
            m(MaildropError::TempNotOwned {
                user: "alice".into()
            }),
            "-ERR [SYS/PERM] Temporary drop file not owned by alice.\r\n"
        );
        assert_eq!(
            m(MaildropError::TempAccessible {
                path: "/var/mail/.alice.pop".into()
            }),
            "-ERR [SYS/PERM] Your temporary file /var/mail/.alice.pop is accessable by others.  This must be fixed\r\n"
        );
        assert_eq!(
            m(MaildropError::TempNotRegular {
                path: "/var/mail/.alice.pop".into()
            }),
            "-ERR [SYS/PERM] Your temporary drop file /var/mail/.alice.pop is not type 'regular file'\r\n"
        );
        let p = || "/var/mail/alice".to_string();
        let exact = [
            (
                MaildropError::NoSpace { path: p() },
                "[SYS/TEMP] Disk full or quota exceeded updating /var/mail/alice; mailbox left unchanged.",
            ),
            (
                MaildropError::Unlocking,
                "[IN-USE] Maildrop being unlocked; try again.",
            ),
            (
                MaildropError::LockTimeout {
                    what: "mail spool lock (dotlock)".into(),
                },
                "[IN-USE] Timed out waiting for the mail spool lock (dotlock); try again later.",
            ),
            (
                MaildropError::TempOpen {
                    path: p(),
                    errno: 13,
                },
                "[SYS/TEMP] System error, can't open temporary file, do you own it?",
            ),
            (
                MaildropError::UnsafeSpool {
                    path: p(),
                    why: "it is a symbolic link".into(),
                },
                "[SYS/PERM] Mail spool /var/mail/alice refused: it is a symbolic link.",
            ),
            (
                MaildropError::Changed { path: p() },
                "[SYS/TEMP] /var/mail/alice was changed by another program during this session; no changes made.",
            ),
            (
                MaildropError::Interrupted {
                    path: p(),
                    errno: 5,
                },
                "[SYS/TEMP] Update of /var/mail/alice interrupted (5); it will be completed at your next login.",
            ),
            (
                MaildropError::RecoveryNeeded { path: p() },
                "[SYS/PERM] /var/mail/alice needs the administrator: an interrupted update cannot be completed; nothing was changed.",
            ),
            (
                MaildropError::BadTempDrop {
                    path: "/var/mail/.alice.pop".into(),
                },
                "[SYS/PERM] Your temporary drop file /var/mail/.alice.pop is not empty and is not a mailbox.",
            ),
            (
                MaildropError::Io {
                    op: "fsync".into(),
                    path: p(),
                    errno: 5,
                },
                "[SYS/TEMP] Error fsync /var/mail/alice (5); mailbox left unchanged.",
            ),
        ];
        let md = || "/home/alice/Maildir".to_string();
        let maildir = [
            (
                MaildropError::NoMaildir { path: md() },
                "[SYS/PERM] this user has no /home/alice/Maildir",
            ),
            (
                MaildropError::MaildirIncomplete {
                    path: md(),
                    sub: "cur".into(),
                },
                "[SYS/PERM] unable to scan /home/alice/Maildir: it has no cur/ directory",
            ),
            (
                MaildropError::UnsafeMaildir {
                    path: md(),
                    why: "it is a symbolic link".into(),
                },
                "[SYS/PERM] Maildir /home/alice/Maildir refused: it is a symbolic link.",
            ),
            (
                MaildropError::MessageGone { num: 3 },
                "[SYS/TEMP] Message 3 is no longer in the maildrop.",
            ),
            (
                MaildropError::MessageChanged { num: 3 },
                "[SYS/TEMP] Message 3 was changed by another program during this session.",
            ),
            (
                MaildropError::PartialUpdate {
                    path: md(),
                    failed: 2,
                    errno: 28,
                },
                "[SYS/TEMP] 2 changes to /home/alice/Maildir could not be made (28); the others were made.",
            ),
            (
                MaildropError::NotDurable {
                    path: md(),
                    errno: 5,
                },
                "[SYS/TEMP] The changes to /home/alice/Maildir were made but may not survive a crash (5).",
            ),
        ];
        for (e, text) in exact.into_iter().chain(maildir) {
            assert_eq!(m(e), format!("-ERR {text}\r\n"));
        }
    }
}
