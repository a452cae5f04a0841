//! The typed failures the driver reports back to the core.
//!
//! These are plain data (no I/O types), so the core can turn each into its
//! exact wire text in `reply.rs` and the driver can log it with `Display`.
//! A client's mistake is not here: that is an [`super::reply::ErrReply`]
//! value produced by the core itself.

use std::fmt;

/// Why authentication failed (after the driver checked policy and proof).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown user, wrong password, locked account, list policy: the one
    /// vague text that reveals nothing.
    BadPassword,
    /// The shadow entry's account expiry date has passed.
    AccountExpired,
    /// The password is older than its maximum age, or must be changed.
    PasswordExpired,
    /// The account's uid is at or below BLOCK_UID (holds BLOCK_UID).
    UidBlocked(u32),
    /// The user has an APOP record and must use APOP.
    MustUseApop,
    /// This build accepts only APOP.
    ApopOnly,
    /// APOP by a user the allow/deny lists refuse.
    PermissionDenied,
    /// APOP for uid 0 (COMPAT qpopper 2.53: APOP refuses only root).
    RootDenied,
    /// APOP for a user without a record in the database.
    NotAuthorized,
    /// APOP digest does not match.
    DigestMismatch,
    /// The APOP database's permission bits are not 0600 (holds them).
    ApopDbMode(u32),
    /// The APOP database's lock could not be had (holds the reason).
    ApopDbLock(String),
    /// The APOP database could not be opened or read (reason logged).
    ApopDbUnavailable(String),
    /// Something on the server failed while checking (logged; vague on the wire).
    System(String),
}

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

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::BadPassword => f.write_str("bad password or unknown user"),
            AuthError::AccountExpired => f.write_str("account expired"),
            AuthError::PasswordExpired => f.write_str("password expired"),
            AuthError::UidBlocked(n) => write!(f, "uid at or below BLOCK_UID {n}"),
            AuthError::MustUseApop => f.write_str("user has an APOP record"),
            AuthError::ApopOnly => f.write_str("this popper accepts only APOP"),
            AuthError::PermissionDenied => f.write_str("refused by auth-file/nonauth-file"),
            AuthError::RootDenied => f.write_str("APOP as root refused"),
            AuthError::NotAuthorized => f.write_str("no APOP record"),
            AuthError::DigestMismatch => f.write_str("wrong APOP digest"),
            AuthError::ApopDbMode(m) => write!(f, "APOP database has mode 0{m:o}, not 0600"),
            AuthError::ApopDbLock(s) => write!(f, "cannot lock the APOP database: {s}"),
            AuthError::ApopDbUnavailable(s) => write!(f, "APOP database not available: {s}"),
            AuthError::System(s) => write!(f, "system error: {s}"),
        }
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
            MaildropError::UnsafeSpool { path, why } => write!(f, "{path}: {why}"),
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
            MaildropError::Io { op, path, errno } => write!(f, "{op} {path}: errno {errno}"),
        }
    }
}
