//! The session's listing held compactly: one fixed-size [`Rec`] per
//! message and every name in one byte arena, so a Maildir of 20 000
//! messages costs two allocations, not one per message, and about 100
//! bytes a message (issue 14: memory after login O(messages) and no more
//! than the mbox path's).
//!
//! A message is taken out as a [`Listed`] (an owned copy) only where one
//! is worked on alone: a send, or an update step that must find the file
//! again. A name changes only when a send finds the file moved (another
//! reader renamed it); the new name is appended to the arena.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::list::{Listed, OrderKey, Sub, order};

/// One message of a [`Listing`]: [`Listed`]'s fields, its name in the
/// arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rec {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_size` at login.
    pub len: u64,
    /// The wire size.
    pub wire: u64,
    /// `st_mtime`.
    pub secs: i64,
    /// Its nanoseconds.
    pub nanos: u32,
    /// Where its name starts in the arena.
    at: u32,
    /// Its name's length (a name is at most 255 bytes).
    name_len: u8,
    /// The directory it is in.
    pub sub: Sub,
}

impl Rec {
    /// A record of a file's identity, size, time and wire size (its name
    /// and directory are given to [`Listing::push_parts`]).
    pub fn new(dev: u64, ino: u64, len: u64, (secs, nanos): (i64, u32), wire: u64) -> Rec {
        Rec {
            dev,
            ino,
            len,
            wire,
            secs,
            nanos,
            ..Rec::default()
        }
    }
}

/// The messages of a session, in session order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    names: Vec<u8>,
    recs: Vec<Rec>,
}

impl Listing {
    /// An empty listing with room for `n` messages of names of `bytes` in
    /// all.
    pub fn with_capacity(n: usize, bytes: usize) -> Listing {
        Listing {
            names: Vec::with_capacity(bytes),
            recs: Vec::with_capacity(n),
        }
    }

    /// Adds a message at the end. `None` (nothing added) when its name is
    /// longer than 255 bytes or the arena would pass 4 GiB.
    pub fn push(&mut self, m: &Listed) -> Option<()> {
        let nanos = u32::try_from(m.mtime.1).ok()?;
        let rec = Rec::new(m.dev, m.ino, m.len, (m.mtime.0, nanos), m.wire);
        self.push_parts(m.sub, m.name_bytes(), rec)
    }

    /// Adds message `sub/name` with `rec`'s sizes, identity and time.
    pub fn push_parts(&mut self, sub: Sub, name: &[u8], rec: Rec) -> Option<()> {
        let name_len = u8::try_from(name.len()).ok()?;
        let at = u32::try_from(self.names.len()).ok()?;
        u32::try_from(self.names.len() + name.len()).ok()?;
        self.names.extend_from_slice(name);
        self.recs.push(Rec {
            at,
            name_len,
            sub,
            ..rec
        });
        Some(())
    }

    /// The session order's key of `r`.
    pub fn key<'a>(&'a self, r: &Rec) -> OrderKey<'a> {
        ((r.secs, i64::from(r.nanos)), self.name(r), r.sub)
    }

    /// Puts the messages in session order ([`order`]). In place: the order
    /// is total (no two messages of a listing have the same directory and
    /// name), so an unstable sort gives the one result, with no scratch
    /// copy of the records (a stable sort's would be the login's peak).
    pub fn sort(&mut self) {
        let Listing { names, recs } = self;
        let name = |r: &Rec| {
            let at = r.at as usize;
            names
                .get(at..at + usize::from(r.name_len))
                .unwrap_or_default()
        };
        recs.sort_unstable_by(|a, b| {
            order(
                ((a.secs, i64::from(a.nanos)), name(a), a.sub),
                ((b.secs, i64::from(b.nanos)), name(b), b.sub),
            )
        });
    }

    /// Removes the messages at `sorted` (ascending indices); their names
    /// stay in the arena until the listing goes.
    pub fn remove(&mut self, sorted: &[usize]) {
        if sorted.is_empty() {
            return;
        }
        let mut i = 0;
        self.recs.retain(|_| {
            i += 1;
            sorted.binary_search(&(i - 1)).is_err()
        });
    }

    /// The record of message `i`, to be sized.
    pub fn rec_mut(&mut self, i: usize) -> Option<&mut Rec> {
        self.recs.get_mut(i)
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// The record of message `i`.
    pub fn rec(&self, i: usize) -> Option<&Rec> {
        self.recs.get(i)
    }

    /// Every record, in order.
    pub fn recs(&self) -> &[Rec] {
        &self.recs
    }

    /// The name of `r` (a record of this listing).
    pub fn name(&self, r: &Rec) -> &[u8] {
        let at = r.at as usize;
        self.names
            .get(at..at + usize::from(r.name_len))
            .unwrap_or_default()
    }

    /// Message `i` as an owned [`Listed`].
    pub fn get(&self, i: usize) -> Option<Listed> {
        let r = self.recs.get(i)?;
        Some(Listed {
            sub: r.sub,
            name: OsString::from_vec(self.name(r).to_vec()),
            dev: r.dev,
            ino: r.ino,
            len: r.len,
            mtime: (r.secs, i64::from(r.nanos)),
            wire: r.wire,
        })
    }

    /// Every message as an owned [`Listed`] (tests, and what is worked on
    /// one at a time).
    pub fn to_vec(&self) -> Vec<Listed> {
        (0..self.len()).filter_map(|i| self.get(i)).collect()
    }

    /// Message `i` is now `sub/name` (another reader moved it). A name too
    /// long to keep leaves the old one (found again at the next look).
    pub fn set_place(&mut self, i: usize, sub: Sub, name: &[u8]) {
        let (Ok(name_len), Ok(at)) = (u8::try_from(name.len()), u32::try_from(self.names.len()))
        else {
            return;
        };
        if u32::try_from(self.names.len() + name.len()).is_err() {
            return;
        }
        if let Some(r) = self.recs.get_mut(i) {
            if self
                .names
                .get(r.at as usize..r.at as usize + usize::from(r.name_len))
                == Some(name)
                && r.sub == sub
            {
                return;
            }
            self.names.extend_from_slice(name);
            r.at = at;
            r.name_len = name_len;
            r.sub = sub;
        }
    }

    /// Returns the spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.names.shrink_to_fit();
        self.recs.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(sub: Sub, name: &str, ino: u64) -> Listed {
        Listed {
            sub,
            name: name.into(),
            dev: 1,
            ino,
            len: 10,
            mtime: (-5, 999_999_999),
            wire: 12,
        }
    }

    #[test]
    fn holds_what_it_is_given_and_follows_moves() {
        let a = listed(Sub::New, "1.a.host", 7);
        let b = listed(Sub::Cur, "2.b.host:2,S", 8);
        let mut l = Listing::with_capacity(2, 0);
        l.push(&a).unwrap();
        l.push(&b).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l.to_vec(), [a.clone(), b.clone()]);
        assert_eq!(l.name(l.rec(1).unwrap()), b"2.b.host:2,S");
        l.set_place(0, Sub::Cur, b"1.a.host:2,S");
        let moved = l.get(0).unwrap();
        assert_eq!(
            (moved.sub, moved.name.clone()),
            (Sub::Cur, "1.a.host:2,S".into())
        );
        assert_eq!(l.get(1), Some(b));
        assert_eq!(l.get(2), None);
        assert!(l.push(&listed(Sub::New, &"x".repeat(256), 9)).is_none());
        l.set_place(1, Sub::New, &[b'y'; 256]);
        assert_eq!(l.len(), 2);
        assert_eq!(l.name(l.rec(1).unwrap()), b"2.b.host:2,S", "kept");
    }

    #[test]
    fn a_record_is_small() {
        assert!(std::mem::size_of::<Rec>() <= 56);
    }
}
