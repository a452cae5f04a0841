//! Where the messages live: popper's storage backends behind the core's
//! [`Maildrop`] trait.
//!
//! A maildrop is opened (locked, recovered, listed) by the login after
//! privileges are dropped, describes its messages to the core's index,
//! streams single messages through the core's wire encoder, and applies
//! a session's deletions and read marks at the end.
//!
//! * [`mbox`] — the Unix mbox spool `/var/mail/USER` (qpopper's format).
//! * [`maildir`] — a Maildir `~/Maildir` (qmail-pop3d's and Dovecot's
//!   semantics, qmail-pop3d's UIDs).
//! * [`error`] — every backend's typed failures, and the
//!   [`pop3_core::error::StorageError`] each becomes at the seam.

pub mod error;
pub mod login_mail;
pub mod maildir;
pub mod mbox;
pub mod own_file;
pub mod session_lock;
pub mod stamp;

pub use pop3_core::maildrop::{CommitStats, Maildrop, Note, Open, Output, SendError};

/// "1 message", "2 messages": for the log lines that count mail.
pub fn messages(n: usize) -> String {
    if n == 1 {
        "1 message".to_string()
    } else {
        format!("{n} messages")
    }
}

/// A backend's log lines, taken: its detail (for `-d`) first, then its
/// notices.
pub fn drain_notes(detail: &mut Vec<String>, notices: &mut Vec<String>) -> Vec<Note> {
    let detail = detail.drain(..).map(Note::Debug);
    detail.chain(notices.drain(..).map(Note::Notice)).collect()
}
