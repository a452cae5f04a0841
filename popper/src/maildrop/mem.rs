//! An in-memory maildrop for session tests and fuzzing.
//!
//! Messages are stored as they would be in a spool after the envelope; sizes
//! come from [`wire::measure`], so a test over `MemDrop` checks the same
//! size arithmetic the mbox maildrop uses.

use super::{CommitStats, Maildrop, Output, SendError};
use crate::protocol::error::MaildropError;
use crate::protocol::index::{Index, MsgIdx, MsgMeta, Uid};
use crate::protocol::session::Marks;
use crate::protocol::wire::{self, Encoder};

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemMessage {
    /// Content after the envelope line.
    pub content: Vec<u8>,
    /// Its UID.
    pub uid: Uid,
    /// Read before the session.
    pub seen: bool,
}

/// An in-memory maildrop.
#[derive(Debug, Clone, Default)]
pub struct MemDrop {
    /// The messages.
    pub messages: Vec<MemMessage>,
    /// Set by `commit`: which messages were deleted and retrieved.
    pub committed: Option<(Vec<bool>, Vec<bool>)>,
    /// Fail the next commit with this error (tests).
    pub fail_commit: Option<MaildropError>,
    /// Chunk size used when streaming (tests vary it).
    pub chunk: usize,
}

impl MemDrop {
    /// A maildrop holding `contents`, UIDs `uid1`, `uid2`, … and nothing read.
    pub fn new<I: IntoIterator<Item = Vec<u8>>>(contents: I) -> Self {
        let messages = contents
            .into_iter()
            .enumerate()
            .map(|(i, content)| MemMessage {
                content,
                uid: Uid::new(format!("uid{}", i + 1).as_bytes())
                    .unwrap_or_else(|| Uid::from_digest(&[0])),
                seen: false,
            })
            .collect();
        MemDrop {
            messages,
            committed: None,
            fail_commit: None,
            chunk: 4096,
        }
    }
}

impl Maildrop for MemDrop {
    fn metas(&self) -> Vec<MsgMeta> {
        self.messages
            .iter()
            .map(|m| MsgMeta {
                size_without_uidl: wire::measure(&m.content),
                uid: m.uid.clone(),
                seen: m.seen,
            })
            .collect()
    }

    fn send(
        &mut self,
        msg: MsgIdx,
        uid: &[u8],
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError> {
        let m = self.messages.get(msg.0).ok_or_else(|| {
            SendError::Storage(MaildropError::Io {
                op: "read".into(),
                path: "memory".into(),
                errno: 0,
            })
        })?;
        let mut enc = Encoder::new(uid, body_lines);
        for chunk in m.content.chunks(self.chunk.max(1)) {
            enc.feed(chunk, out.buffer());
            out.drain().map_err(SendError::Client)?;
            if enc.is_done() {
                break;
            }
        }
        enc.finish(out.buffer());
        Ok(enc.sent())
    }

    fn commit(&mut self, index: &Index, marks: &Marks) -> Result<CommitStats, MaildropError> {
        if let Some(e) = self.fail_commit.take() {
            return Err(e);
        }
        let n = index.len();
        let deleted = (0..n).map(|i| marks.is_deleted(MsgIdx(i))).collect();
        let retrieved = (0..n).map(|i| marks.is_retrieved(MsgIdx(i))).collect();
        self.committed = Some((deleted, retrieved));
        Ok(CommitStats::default())
    }
}
