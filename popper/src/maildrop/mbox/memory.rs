//! mbox messages held in memory and sent the way the spool sends them
//! (qpopper's `X-UIDL:` line inserted, `Content-Length:` dropped): the
//! protocol core's in-memory maildrop with popper's mbox wire form, for
//! session tests and the whole-session fuzz target.
//!
//! Sizes come from the same [`render::measure`] the scan's arithmetic
//! matches, and sending goes through the same [`render::send_from`] as
//! [`MboxDrop`](super::MboxDrop)'s, reading from the bytes instead of the
//! spool.

use pop3_core::error::StorageError;
use pop3_core::index::{Entry, MsgIdx};
use pop3_core::marks::Marks;
use pop3_core::mem::MemDrop;

use super::render;
use crate::maildrop::{CommitStats, Maildrop, Output, SendError};

/// In-memory mbox messages (each the content after its envelope); the
/// bookkeeping (what was committed, failures to inject) is the core's
/// [`MemDrop`]'s.
#[derive(Debug, Clone, Default)]
pub struct MemMbox(pub MemDrop);

impl MemMbox {
    /// Messages `contents`, UIDs `uid1`, `uid2`, …, nothing read.
    pub fn new<I: IntoIterator<Item = Vec<u8>>>(contents: I) -> Self {
        MemMbox(MemDrop::new(contents))
    }
}

impl Maildrop for MemMbox {
    fn entries(&self) -> Vec<Entry> {
        self.0
            .entries_sized(|content, uid| render::wire_size(render::measure(content), uid))
    }

    fn send(
        &mut self,
        msg: MsgIdx,
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError> {
        let (m, uid) = self.0.message(msg)?;
        let fail = |_: Option<std::io::Error>| SendError::Storage(MemDrop::vanished(msg));
        render::send_from(
            m.content.as_slice(),
            (0, m.content.len() as u64),
            &uid,
            body_lines,
            self.0.chunk,
            out,
            &fail,
        )
    }

    fn commit(&mut self, marks: &Marks) -> Result<CommitStats, StorageError> {
        self.0.commit(marks)
    }

    fn abandon(&mut self) {
        self.0.abandon();
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
