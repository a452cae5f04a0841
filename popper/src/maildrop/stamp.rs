//! The state of a file or directory that popper's caches are tied to (the
//! mbox scan index, the Maildir listing cache), and the rule that says
//! when that state can be trusted to show every later change.
//!
//! A cache made from a file or directory is taken again only while its
//! device, inode, size, mtime and ctime (to the nanosecond) are exactly
//! the [`Stamp`] recorded. ctime cannot be set by any user, and every
//! write, rename or unlink moves it. But timestamps are coarse (a kernel
//! tick, or a second on some file systems): a change made just after the
//! stamp was read can leave it unchanged. So a cache is made only from a
//! state that is [`Stamp::settled`] — last changed over [`RACY`] before,
//! in whole seconds, as git does for its index — after which any change
//! gets a later timestamp than the one recorded.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

/// A cache is made only from a state whose mtime and ctime are this far in
/// the past.
pub const RACY: Duration = Duration::from_secs(2);

/// The identity and state of a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_size`.
    pub size: u64,
    /// `st_mtime` and its nanoseconds.
    pub mtime: (i64, i64),
    /// `st_ctime` and its nanoseconds.
    pub ctime: (i64, i64),
}

/// Bytes of [`Stamp::encode`].
pub const ENCODED: usize = 7 * 8;

impl Stamp {
    /// The stamp of an `fstat`.
    pub fn of(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// True when the state last changed at least [`RACY`] before `now`, in
    /// whole seconds: a later change cannot leave the stamp as it is.
    pub fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let limit = now.as_secs() as i64 - RACY.as_secs() as i64;
        self.mtime.0 < limit && self.ctime.0 < limit
    }

    /// The stamp as the caches store it ([`ENCODED`] bytes, little-endian).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.dev, self.ino, self.size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// The stamp [`Stamp::encode`] wrote at the start of `b`.
    pub fn decode(b: &[u8]) -> Option<Stamp> {
        let b = b.get(..ENCODED)?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            w
        };
        let (u, s) = (
            |i| u64::from_le_bytes(word(i)),
            |i| i64::from_le_bytes(word(i)),
        );
        Some(Stamp {
            dev: u(0),
            ino: u(1),
            size: u(2),
            mtime: (s(3), s(4)),
            ctime: (s(5), s(6)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_means_whole_seconds_before_racy() {
        let st = Stamp {
            mtime: (100, 999_999_999),
            ctime: (100, 0),
            ..Stamp::default()
        };
        let at = |s: u64, ns: u32| SystemTime::UNIX_EPOCH + Duration::new(s, ns);
        assert!(!st.settled(at(102, 999_999_999)), "100 is not < 102 - 2");
        assert!(st.settled(at(103, 0)));
        let recent_ctime = Stamp {
            ctime: (101, 0),
            ..st
        };
        assert!(!recent_ctime.settled(at(103, 0)), "ctime counts too");
        assert!(!st.settled(SystemTime::UNIX_EPOCH - Duration::from_secs(1)));
    }

    #[test]
    fn encodes_and_decodes() {
        let st = Stamp {
            dev: 1,
            ino: u64::MAX,
            size: 3,
            mtime: (-4, 5),
            ctime: (6, 999_999_999),
        };
        let mut b = Vec::new();
        st.encode(&mut b);
        assert_eq!(b.len(), ENCODED);
        assert_eq!(Stamp::decode(&b), Some(st));
        assert_eq!(Stamp::decode(&b[..ENCODED - 1]), None);
    }
}
