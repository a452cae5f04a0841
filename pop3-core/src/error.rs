//! The typed failures the driver reports back to the core.
//!
//! These are plain data (no I/O types), so the core can turn each into its
//! exact wire text in `reply.rs` and the host can log it with `Display`.
//! A client's mistake is not here: that is an [`crate::reply::ErrReply`]
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
    /// The clear-text policy refuses a password in clear here
    /// (`never`, or `local` from another machine).
    ClearTextRefused,
    /// The clear-text policy takes a password only under TLS (`tls`).
    ClearTextNeedsTls,
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
    /// The password could not be checked now (a checkpassword program
    /// that failed temporarily, hung or crashed): try again later. Holds
    /// the reason for the log.
    Unavailable(String),
}

/// How a storage failure is answered: the response code that tells the
/// client whether trying again can help (RFC 2449, RFC 3206).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// Another session holds the maildrop (`[IN-USE]`).
    InUse,
    /// A passing failure: try again later (`[SYS/TEMP]`).
    Temp,
    /// Needs the administrator (`[SYS/PERM]`).
    Perm,
}

/// Why the maildrop could not be opened, read or updated, as the core
/// needs it: the kind picks the response code, `reply` is the rest of the
/// `-ERR` line and `log` what the log says. Each storage backend turns its
/// own typed errors into this at the seam, so the core names none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    /// Which response code the reply carries.
    pub kind: StorageKind,
    /// The reply text after the response code.
    pub reply: String,
    /// The log's wording (more detail, no response code).
    pub log: String,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.log)
    }
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
            AuthError::ClearTextRefused => f.write_str("clear-text password refused by policy"),
            AuthError::ClearTextNeedsTls => {
                f.write_str("clear-text password refused without TLS by policy")
            }
            AuthError::PermissionDenied => f.write_str("refused by auth-file/nonauth-file"),
            AuthError::RootDenied => f.write_str("APOP as root refused"),
            AuthError::NotAuthorized => f.write_str("no APOP record"),
            AuthError::DigestMismatch => f.write_str("wrong APOP digest"),
            AuthError::ApopDbMode(m) => write!(f, "APOP database has mode 0{m:o}, not 0600"),
            AuthError::ApopDbLock(s) => write!(f, "cannot lock the APOP database: {s}"),
            AuthError::ApopDbUnavailable(s) => write!(f, "APOP database not available: {s}"),
            AuthError::System(s) => write!(f, "system error: {s}"),
            AuthError::Unavailable(s) => write!(f, "the password could not be checked: {s}"),
        }
    }
}
