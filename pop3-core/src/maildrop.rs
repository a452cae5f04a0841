//! The seam between the session and where messages live.
//!
//! A maildrop is opened by the host once the login is good (for popper:
//! after privileges are dropped), describes its messages as [`Entry`]s
//! (exact wire sizes and unique UIDs, which it knows because it knows its
//! own wire form), streams single messages through [`crate::wire::Encoder`],
//! and ends in exactly one of [`Maildrop::commit`] (apply the session's
//! [`Marks`]) or [`Maildrop::abandon`] (change nothing). Nothing here
//! names a storage format: mbox, Maildir and the in-memory [`MemDrop`]
//! (`mem.rs`) are all just maildrops.
//!
//! [`MemDrop`]: crate::mem::MemDrop

use std::io;

use crate::error::{StorageError, StorageKind};
use crate::header::HeaderScan;
use crate::index::{Contents, Entry, MsgIdx};
use crate::marks::Marks;

/// Where message bytes go: an output buffer the maildrop appends to, and a
/// way to hand what has accumulated to the client when it grows large.
pub trait Output {
    /// The buffer to append wire bytes to.
    fn buffer(&mut self) -> &mut Vec<u8>;
    /// Writes the buffer to the client if it has grown past the host's
    /// threshold. An error means the client is gone.
    fn drain(&mut self) -> io::Result<()>;
}

/// Why sending a message stopped.
#[derive(Debug)]
pub enum SendError {
    /// The maildrop could not be read (the connection must be closed: a
    /// partial message may have been sent).
    Storage(StorageError),
    /// This one message is no longer there (another reader deleted it):
    /// when none of it was sent, the client is told so and the session
    /// goes on.
    Gone(StorageError),
    /// Writing to the client failed.
    Client(io::Error),
}

/// What an update did, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Bytes written to storage (0 for a session that changed nothing).
    pub bytes_written: u64,
}

/// A line for the log from the maildrop (a stale lock broken, a recovery
/// done, where the login's listing came from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Logged always.
    Notice(String),
    /// Logged with `-d`.
    Debug(String),
}

/// A user's mailbox for the length of one session.
pub trait Maildrop {
    /// The messages, in order: the exact size each will send (CRLF line
    /// ends, before dot-stuffing), its UID (unique: see
    /// [`crate::index::make_unique`]) and whether it was read before.
    fn entries(&self) -> Vec<Entry>;

    /// The same as [`Maildrop::entries`], for the session's index: a
    /// maildrop that keeps its UIDs anyway lends them instead of copying
    /// them (one copy of every UID per session, not two).
    fn contents(&self) -> Contents {
        Contents::from(self.entries())
    }

    /// Streams message `msg` through the wire encoder into `out`: all of it
    /// (`body_lines` = `None`, RETR) or the header and that many body lines
    /// (TOP). Returns the bytes sent not counting dot-stuffing. The caller
    /// writes the `+OK` line before and the `.` line after.
    fn send(
        &mut self,
        msg: MsgIdx,
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError>;

    /// The first header field of message `msg` whose line starts with
    /// `prefix` (ASCII case ignored), with its continuation lines joined
    /// by CRLF, at most `max` bytes of it; `None` when the header has no
    /// such line. The header is the one TOP sends (EUIDL's `From:`,
    /// `XTND XLST`): by default it is found in what
    /// [`send`](Self::send) produces for TOP 0, read no further than the
    /// field's end.
    fn header(
        &mut self,
        msg: MsgIdx,
        prefix: &[u8],
        max: usize,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let mut scan = Scanning {
            buf: Vec::new(),
            scan: HeaderScan::new(prefix, max),
        };
        match self.send(msg, Some(0), &mut scan) {
            Ok(_) => {}
            // Only the scan's own "found it" stops a send this way.
            Err(SendError::Client(_)) if scan.scan.is_done() => {}
            Err(SendError::Client(e)) => {
                return Err(StorageError {
                    kind: StorageKind::Temp,
                    reply: "Unable to read the message header.".into(),
                    log: format!("header scan of message {}: {e}", msg.num().0),
                });
            }
            Err(SendError::Storage(e) | SendError::Gone(e)) => return Err(e),
        }
        let Scanning { mut buf, scan } = scan;
        Ok(scan.finish(&mut buf))
    }

    /// Applies the session's deletions and read marks (the smallest
    /// correct change, crash-safe, keeping mail delivered during the
    /// session) and lets the maildrop go.
    fn commit(&mut self, marks: &Marks) -> Result<CommitStats, StorageError>;

    /// Lets the maildrop go without changing it (the session ended before
    /// an update, or the client vanished with `update-on-abort` off).
    fn abandon(&mut self);

    /// Log lines gathered since the last call.
    fn take_notes(&mut self) -> Vec<Note> {
        Vec::new()
    }
}

/// A boxed maildrop is one: a host that chooses the storage at login
/// (mbox or Maildir) hands the loop a `Box<dyn Maildrop>`.
impl<M: Maildrop + ?Sized> Maildrop for Box<M> {
    fn entries(&self) -> Vec<Entry> {
        (**self).entries()
    }
    fn contents(&self) -> Contents {
        (**self).contents()
    }

    fn send(
        &mut self,
        msg: MsgIdx,
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError> {
        (**self).send(msg, body_lines, out)
    }

    fn header(
        &mut self,
        msg: MsgIdx,
        prefix: &[u8],
        max: usize,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        (**self).header(msg, prefix, max)
    }

    fn commit(&mut self, marks: &Marks) -> Result<CommitStats, StorageError> {
        (**self).commit(marks)
    }

    fn abandon(&mut self) {
        (**self).abandon()
    }

    fn take_notes(&mut self) -> Vec<Note> {
        (**self).take_notes()
    }
}

/// TOP 0 output going into a [`HeaderScan`] instead of to a client; it
/// stops the send (as a client error) once the field has ended.
struct Scanning {
    buf: Vec<u8>,
    scan: HeaderScan,
}

impl Output for Scanning {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn drain(&mut self) -> io::Result<()> {
        self.scan.feed(&mut self.buf);
        if self.scan.is_done() {
            return Err(io::Error::other("header field found"));
        }
        Ok(())
    }
}

/// Opening a maildrop of one kind: what it needs is the backend's own
/// business (paths, settings, the privilege token); failing is a
/// [`StorageError`] like any other.
pub trait Open: Maildrop + Sized {
    /// What opening takes.
    type Args<'a>;
    /// Opens (locks, recovers, lists) the maildrop.
    fn open(args: Self::Args<'_>) -> Result<Self, StorageError>;
}
