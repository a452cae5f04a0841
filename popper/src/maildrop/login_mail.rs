//! Mail added to a maildrop at login, exactly once (bulletins).
//!
//! A [`LoginMail`] source (the bulletin directory) says what is due and
//! keeps its own record of what was delivered; each storage backend adds
//! the messages so that "added" and "recorded" are one crash-safe step
//! (for the mbox spool: through the update journal, `mbox/append.rs`).
//! Neither side knows the other's format.

use crate::maildrop::error::MaildropError;

/// One message to add: its envelope line and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The `From ` line, without its LF (not written to an MMDF spool).
    pub envelope: Vec<u8>,
    /// Header, empty line and body; every line ends with LF.
    pub content: Vec<u8>,
}

/// Messages to add at login and the number that records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrivals {
    /// In the order they are to appear.
    pub msgs: Vec<NewMessage>,
    /// Handed to [`LoginMail::record`] once they are in the spool.
    pub through: u64,
    /// What they are, for the log (`bulletins 2.downtime, 3.newsrv`).
    pub what: String,
}

/// A source of mail added to the spool at login (bulletins).
pub trait LoginMail {
    /// What to add, asked with the spool locked and any interrupted update
    /// finished. `None`: nothing (log lines go to `notes`).
    fn arrivals(&self, notes: &mut Vec<String>) -> Option<Arrivals>;

    /// Records `through` as delivered, durably. Called once the messages
    /// are in the spool, and by recovery for a journal left by a popper
    /// that died after its commit point. A failure keeps the journal, so
    /// the next login records again; the login fails meanwhile (the
    /// messages are in the spool, but not yet recorded: serving them now
    /// could deliver them twice).
    fn record(&self, through: u64) -> Result<(), MaildropError>;
}
