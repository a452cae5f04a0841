//! An in-memory maildrop for session tests and fuzzing.
//!
//! Messages are sent as they are stored (no header is added or dropped),
//! so sizes are [`wire::measure`]'s. It records what the session
//! committed, and can be made to fail a commit or a read.

use crate::error::{StorageError, StorageKind};
use crate::index::{Entry, MsgIdx, Uid, make_unique};
use crate::maildrop::{CommitStats, Maildrop, Open, Output, SendError};
use crate::marks::Marks;
use crate::wire::{self, Encoder};

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemMessage {
    /// Its bytes.
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
    /// Set by `abandon`.
    pub abandoned: bool,
    /// Fail the next commit with this error (tests).
    pub fail_commit: Option<StorageError>,
    /// Fail sending this message as a storage fault (the session ends).
    pub fail_send: Option<MsgIdx>,
    /// This message vanished (another reader took it): sending it is
    /// [`SendError::Gone`].
    pub gone: Option<MsgIdx>,
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
            chunk: 4096,
            ..MemDrop::default()
        }
    }

    /// The messages' UIDs made unique, as [`Maildrop::entries`] reports them.
    pub fn unique_uids(&self) -> Vec<Uid> {
        let mut uids: Vec<Uid> = self.messages.iter().map(|m| m.uid.clone()).collect();
        make_unique(uids.iter_mut());
        uids
    }

    /// The error a read of a message that is not there gives.
    pub fn vanished(msg: MsgIdx) -> StorageError {
        StorageError {
            kind: StorageKind::Temp,
            reply: format!("Message {} is no longer in the maildrop.", msg.num().0),
            log: format!("message {} vanished", msg.num().0),
        }
    }

    /// The entries, each message sized by `size` (its bytes and final
    /// UID): the in-memory maildrop of any wire form.
    pub fn entries_sized(&self, size: impl Fn(&[u8], &Uid) -> u64) -> Vec<Entry> {
        self.messages
            .iter()
            .zip(self.unique_uids())
            .map(|(m, uid)| Entry {
                size: size(&m.content, &uid),
                uid,
                seen: m.seen,
            })
            .collect()
    }

    /// Message `msg` and its final UID, to send; the vanished error for a
    /// message that is not there or is made to fail.
    pub fn message(&self, msg: MsgIdx) -> Result<(&MemMessage, Uid), SendError> {
        let m = self.stored(msg)?;
        let uid = self.unique_uids().into_iter().nth(msg.0);
        uid.map(|uid| (m, uid))
            .ok_or_else(|| SendError::Storage(Self::vanished(msg)))
    }

    /// Message `msg` (without the work of making its UID unique).
    fn stored(&self, msg: MsgIdx) -> Result<&MemMessage, SendError> {
        match self.messages.get(msg.0) {
            _ if self.gone == Some(msg) => Err(SendError::Gone(Self::vanished(msg))),
            Some(m) if self.fail_send != Some(msg) => Ok(m),
            _ => Err(SendError::Storage(Self::vanished(msg))),
        }
    }
}

impl Maildrop for MemDrop {
    fn entries(&self) -> Vec<Entry> {
        self.entries_sized(|content, _| wire::measure(content))
    }

    fn send(
        &mut self,
        msg: MsgIdx,
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError> {
        let m = self.stored(msg)?;
        let mut enc = Encoder::new(body_lines);
        for piece in m.content.chunks(self.chunk.max(1)) {
            enc.feed(piece, out.buffer());
            out.drain().map_err(SendError::Client)?;
            if enc.is_done() {
                break;
            }
        }
        enc.finish(out.buffer());
        Ok(enc.sent())
    }

    fn commit(&mut self, marks: &Marks) -> Result<CommitStats, StorageError> {
        if let Some(e) = self.fail_commit.take() {
            return Err(e);
        }
        let n = self.messages.len();
        let deleted = (0..n).map(|i| marks.is_deleted(MsgIdx(i))).collect();
        let retrieved = (0..n).map(|i| marks.is_retrieved(MsgIdx(i))).collect();
        self.committed = Some((deleted, retrieved));
        Ok(CommitStats::default())
    }

    fn abandon(&mut self) {
        self.abandoned = true;
    }
}

impl Open for MemDrop {
    type Args<'a> = MemDrop;

    fn open(drop: MemDrop) -> Result<MemDrop, StorageError> {
        Ok(drop)
    }
}
