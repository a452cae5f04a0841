//! Where the messages live: the [`Maildrop`] trait and its implementations.
//!
//! A maildrop is opened (locked, recovered, scanned) by the driver after
//! privileges are dropped, describes its messages as [`MsgMeta`]s for the
//! core's index, streams single messages through the wire encoder, and
//! applies a session's deletions and read marks at the end.
//!
//! * [`mbox`] — the Unix mbox spool `/var/mail/USER` (qpopper's format).
//! * [`mem`] — an in-memory maildrop for session tests and fuzzing.

pub mod mbox;
pub mod mem;

use std::io;

use crate::protocol::error::MaildropError;
use crate::protocol::index::{Index, MsgIdx, MsgMeta};
use crate::protocol::session::Marks;

/// Where message bytes go: an output buffer the maildrop appends to, and a
/// way to hand what has accumulated to the client when it grows large.
pub trait Output {
    /// The buffer to append wire bytes to.
    fn buffer(&mut self) -> &mut Vec<u8>;
    /// Writes the buffer to the client if it has grown past the driver's
    /// threshold. An error means the client is gone.
    fn drain(&mut self) -> io::Result<()>;
}

/// Why sending a message stopped.
#[derive(Debug)]
pub enum SendError {
    /// The maildrop could not be read (the connection must be closed: a
    /// partial message has been sent).
    Storage(MaildropError),
    /// Writing to the client failed.
    Client(io::Error),
}

/// What an update did, for the `-s` statistics line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Bytes written to the spool (0 for a session that changed nothing).
    pub bytes_written: u64,
}

/// A user's mailbox for the length of one session.
pub trait Maildrop {
    /// The messages, in order, as the index needs them.
    fn metas(&self) -> Vec<MsgMeta>;

    /// Streams message `msg` through the wire encoder into `out`: all of it
    /// (`body_lines` = `None`, RETR) or the header and that many body lines
    /// (TOP). `uid` is the UID the index gave it. The caller writes the
    /// `+OK` line before and the `.` line after.
    fn send(
        &mut self,
        msg: MsgIdx,
        uid: &[u8],
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError>;

    /// Applies the session's deletions and read marks: the smallest correct
    /// change, crash-safe, keeping mail delivered during the session.
    fn commit(&mut self, index: &Index, marks: &Marks) -> Result<CommitStats, MaildropError>;
}
