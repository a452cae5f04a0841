//! A session's marks on its index: which messages are deleted and which
//! were retrieved. This module is the only code that changes them; the
//! session decides when, the maildrop reads them at the update.

use crate::index::{Index, MsgIdx};

/// Deletions and reads of one session, one flag each per message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    deleted: Vec<bool>,
    retrieved: Vec<bool>,
    ndeleted: usize,
    deleted_octets: u64,
}

impl Marks {
    /// No marks on an index of `n` messages.
    pub fn new(n: usize) -> Self {
        Marks {
            deleted: vec![false; n],
            retrieved: vec![false; n],
            ndeleted: 0,
            deleted_octets: 0,
        }
    }

    /// True when message `i` is marked deleted.
    pub fn is_deleted(&self, i: MsgIdx) -> bool {
        self.deleted.get(i.0).copied().unwrap_or(false)
    }

    /// True when message `i` was retrieved with RETR in this session.
    pub fn is_retrieved(&self, i: MsgIdx) -> bool {
        self.retrieved.get(i.0).copied().unwrap_or(false)
    }

    /// Count and size of the messages not marked deleted.
    pub fn visible_totals(&self, index: &Index) -> (usize, u64) {
        (
            index.len().saturating_sub(self.ndeleted),
            index.total_size().saturating_sub(self.deleted_octets),
        )
    }

    /// Count and size of the messages marked deleted.
    pub fn deleted_totals(&self) -> (usize, u64) {
        (self.ndeleted, self.deleted_octets)
    }

    /// True when nothing was deleted or retrieved.
    pub fn is_pristine(&self) -> bool {
        self.ndeleted == 0 && !self.retrieved.iter().any(|r| *r)
    }

    /// Marks message `i` (of `size` octets) deleted; false if it already was.
    pub(crate) fn delete(&mut self, i: MsgIdx, size: u64) -> bool {
        match self.deleted.get_mut(i.0) {
            Some(d) if !*d => {
                *d = true;
                self.ndeleted += 1;
                self.deleted_octets = self.deleted_octets.saturating_add(size);
                true
            }
            _ => false,
        }
    }

    /// Marks message `i` retrieved; true if it was not before.
    pub(crate) fn retrieve(&mut self, i: MsgIdx) -> bool {
        match self.retrieved.get_mut(i.0) {
            Some(r) if !*r => {
                *r = true;
                true
            }
            _ => false,
        }
    }

    /// Takes back a mark [`retrieve`](Self::retrieve) set, for a message
    /// whose end never reached the client.
    pub(crate) fn unretrieve(&mut self, i: MsgIdx) {
        if let Some(r) = self.retrieved.get_mut(i.0) {
            *r = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Entry, Uid};

    #[test]
    fn totals_follow_deletions() {
        let e = |u: &[u8], size| Entry {
            size,
            uid: Uid::new(u).unwrap(),
            seen: false,
        };
        let ix = Index::new(vec![e(b"a", 10), e(b"b", 5)]);
        let mut m = Marks::new(2);
        assert!(m.is_pristine());
        assert!(m.delete(MsgIdx(1), 5));
        assert!(!m.delete(MsgIdx(1), 5), "twice is once");
        assert!(!m.delete(MsgIdx(7), 5), "out of range");
        assert_eq!(m.visible_totals(&ix), (1, 10));
        assert_eq!(m.deleted_totals(), (1, 5));
        assert!(m.retrieve(MsgIdx(0)));
        assert!(!m.retrieve(MsgIdx(0)));
        m.unretrieve(MsgIdx(0));
        assert!(!m.is_retrieved(MsgIdx(0)));
        assert!(!m.is_pristine());
    }
}
