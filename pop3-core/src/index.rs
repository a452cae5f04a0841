//! The session's view of a maildrop: one entry per message, fixed at login.
//!
//! Every maildrop describes its messages as [`Entry`]s — the exact size it
//! will send, the UID, the read flag — and the core builds the [`Index`]
//! from them. UID validation ([`Uid::new`]) and uniqueness
//! ([`make_unique`]) live here, once, for every kind of storage; a
//! maildrop whose wire form contains the UID (qpopper's inserted
//! `X-UIDL:` line) makes its UIDs unique with [`make_unique`] before it
//! sizes its messages, and [`Index::new`] then changes nothing.
//!
//! Message numbers: the wire uses 1-based [`MsgNum`]s, storage uses 0-based
//! [`MsgIdx`]es. They are different types, converted only by
//! [`Index::lookup`], so an off-by-one cannot type-check.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use crate::limits::MAX_UID_LEN;

/// A message's unique id, valid per RFC 1939 by construction.
///
/// Kept in place when short (qpopper's 32 hex digits, a bulletin's
/// `time.nnn`): a mailbox of 20 000 messages then costs no allocation per
/// UID, and a clone is a copy.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Uid(Repr);

/// Bytes a [`Uid`] holds without allocating: qpopper's 32 hex digits and
/// a qmail Maildir name (`TIME.MusecPpid.host`, 41 bytes with a 16-byte
/// host name) both fit, so neither mailbox form costs an allocation per
/// message (a 20 000-message Maildir held 1 MB of them at 38). 46 makes
/// the whole `Uid` 48 bytes.
const INLINE: usize = 46;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// `len` bytes at the start of `buf`, the rest zero (so the derived
    /// equality and hash see only the UID).
    Inline { len: u8, buf: [u8; INLINE] },
    /// Longer UIDs (up to 70 bytes).
    Heap(Box<[u8]>),
}

impl Uid {
    /// `Some` when `bytes` is 1–70 bytes of 0x21–0x7E.
    pub fn new(bytes: &[u8]) -> Option<Uid> {
        let ok = !bytes.is_empty()
            && bytes.len() <= MAX_UID_LEN
            && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
        ok.then(|| Uid::from_valid(bytes))
    }

    /// Stores bytes already known to be a valid UID.
    fn from_valid(bytes: &[u8]) -> Uid {
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Uid(Repr::Inline {
                len: bytes.len() as u8,
                buf,
            })
        } else {
            Uid(Repr::Heap(bytes.into()))
        }
    }

    /// The lower-case hex of a digest: always a valid UID for digests of
    /// 1–35 bytes (MD5's 16 give qpopper's 32 hex digits).
    pub fn from_digest(digest: &[u8]) -> Uid {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut v = [0u8; MAX_UID_LEN];
        let mut n = 0;
        for b in digest.iter().take(MAX_UID_LEN / 2) {
            v[n] = HEX[usize::from(b >> 4)];
            v[n + 1] = HEX[usize::from(b & 15)];
            n += 2;
        }
        if n == 0 {
            v[0] = b'0';
            n = 1;
        }
        Uid::from_valid(&v[..n])
    }

    /// The UID's bytes (always printable ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Heap(b) => b,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Never true: a `Uid` has at least one byte. (For clippy's sake.)
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

impl std::fmt::Debug for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uid({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A 1-based message number as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MsgNum(pub u32);

/// A 0-based position in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgIdx(pub usize);

impl MsgIdx {
    /// The wire number of this index entry.
    pub fn num(self) -> MsgNum {
        // An index never holds more than u32::MAX messages (checked in Index::new).
        MsgNum(u32::try_from(self.0 + 1).unwrap_or(u32::MAX))
    }
}

/// One message as the session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Exact size in octets: what RETR sends, before dot-stuffing and
    /// without the terminating `.` line (the maildrop knows its wire form).
    pub size: u64,
    /// The unique id, unique within this index.
    pub uid: Uid,
    /// Read before this session began.
    pub seen: bool,
}

impl Entry {
    /// The entry as [`Index`] lends entries out.
    pub fn view(&self) -> EntryRef<'_> {
        EntryRef {
            size: self.size,
            uid: &self.uid,
            seen: self.seen,
        }
    }
}

/// One message as [`Index`] lends it out: its size, UID and read flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// Exact size in octets (see [`Entry::size`]).
    pub size: u64,
    /// The unique id.
    pub uid: &'a Uid,
    /// Read before this session began.
    pub seen: bool,
}

/// A maildrop's UIDs, in message order, held once: a maildrop that keeps
/// them for itself anyway (the mbox writes them back into the spool) lends
/// the same list to the session's [`Index`] instead of a copy of every UID
/// (48 bytes a message).
pub trait Uids {
    /// How many.
    fn count(&self) -> usize;
    /// The UID of message `i` (`i < count()`).
    fn uid(&self, i: usize) -> &Uid;
}

impl Uids for Vec<Uid> {
    fn count(&self) -> usize {
        self.len()
    }
    fn uid(&self, i: usize) -> &Uid {
        &self[i]
    }
}

/// What a maildrop lists at login: per message its size and read flag,
/// and its UIDs (unique, or made so by [`Index::from_contents`]).
pub struct Contents {
    /// Each message's exact size (see [`Entry::size`]) and read flag.
    pub sizes: Vec<(u64, bool)>,
    /// The UIDs, as many as `sizes`.
    pub uids: Arc<dyn Uids>,
}

impl From<Vec<Entry>> for Contents {
    fn from(entries: Vec<Entry>) -> Contents {
        let sizes = entries.iter().map(|e| (e.size, e.seen)).collect();
        let uids: Vec<Uid> = entries.into_iter().map(|e| e.uid).collect();
        Contents {
            sizes,
            uids: Arc::new(uids),
        }
    }
}

/// The top bit of a stored size: the message was read before the session.
const SEEN: u64 = 1 << 63;

/// The fixed list of messages of a session: 8 bytes a message of its own
/// (the size, with the read flag in its top bit — no message is 2^63
/// bytes), and the maildrop's UIDs.
#[derive(Clone)]
pub struct Index {
    sizes: Vec<u64>,
    uids: Arc<dyn Uids>,
    total: u64,
}

impl Default for Index {
    fn default() -> Index {
        Index::new(Vec::new())
    }
}

impl PartialEq for Index {
    fn eq(&self, other: &Index) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Index {}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Index {
    /// Builds the index from a maildrop's entries, in order, making their
    /// UIDs unique with [`make_unique`] (a no-op for a maildrop that
    /// already did).
    pub fn new(entries: Vec<Entry>) -> Index {
        Index::from_contents(Contents::from(entries))
    }

    /// Builds the index from a maildrop's contents, keeping the maildrop's
    /// UIDs when they are unique (they are, from every maildrop of
    /// popper's: checked here in O(n) hashes) and otherwise a copy made
    /// unique with [`make_unique`].
    pub fn from_contents(contents: Contents) -> Index {
        let Contents {
            mut sizes,
            mut uids,
        } = contents;
        let n = sizes.len().min(uids.count()).min(u32::MAX as usize);
        sizes.truncate(n);
        sizes.shrink_to_fit();
        if uids.count() != n || !all_distinct((0..n).map(|i| uids.uid(i))) {
            let mut own: Vec<Uid> = (0..n).map(|i| uids.uid(i).clone()).collect();
            make_unique(own.iter_mut());
            uids = Arc::new(own);
        }
        let total = sizes.iter().fold(0u64, |t, (s, _)| t.saturating_add(*s));
        let sizes = sizes
            .into_iter()
            .map(|(s, seen)| s.min(SEEN - 1) | if seen { SEEN } else { 0 })
            .collect();
        Index { sizes, uids, total }
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// True for an empty maildrop.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Sum of all sizes.
    pub fn total_size(&self) -> u64 {
        self.total
    }

    /// The entry at `idx`.
    pub fn get(&self, idx: MsgIdx) -> Option<EntryRef<'_>> {
        let s = *self.sizes.get(idx.0)?;
        Some(EntryRef {
            size: s & !SEEN,
            uid: self.uids.uid(idx.0),
            seen: s & SEEN != 0,
        })
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> + '_ {
        (0..self.len()).filter_map(|i| self.get(MsgIdx(i)))
    }

    /// A copy of every entry (for tests and tools; the session uses
    /// [`Index::iter`]).
    pub fn entries(&self) -> Vec<Entry> {
        self.iter()
            .map(|e| Entry {
                size: e.size,
                uid: e.uid.clone(),
                seen: e.seen,
            })
            .collect()
    }

    /// The index and entry for a wire number, if that message exists.
    pub fn find(&self, num: u64) -> Option<(MsgIdx, EntryRef<'_>)> {
        let i = self.lookup(num)?;
        Some((i, self.get(i)?))
    }

    /// The index for a wire number, if that message exists.
    pub fn lookup(&self, num: u64) -> Option<MsgIdx> {
        let i = usize::try_from(num).ok()?.checked_sub(1)?;
        (i < self.sizes.len()).then_some(MsgIdx(i))
    }
}

/// True when no two of `uids` are alike (one sorted 64-bit hash each;
/// equal hashes are checked exactly).
fn all_distinct<'a>(uids: impl Iterator<Item = &'a Uid>) -> bool {
    let mut hashes: Vec<(u64, &Uid)> = uids.map(|u| (uid_hash(u), u)).collect();
    hashes.sort_unstable_by_key(|(h, _)| *h);
    hashes
        .windows(2)
        .all(|w| w[0].0 != w[1].0 || w[0].1 != w[1].1)
}

fn uid_hash(u: &Uid) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
        .hash_one(u.as_bytes())
}

/// Makes the UIDs unique, in order: a UID seen earlier in the list gets the
/// smallest suffix `-2`, `-3`, … that makes it unique (the base shortened
/// if needed to stay within 70 bytes). Deterministic, so the same mailbox
/// gives the same UIDs in every session, and idempotent: unique UIDs are
/// left as they are.
///
/// Almost every mailbox has no duplicate at all, so that is checked first
/// with one sorted 64-bit hash per UID (16 bytes a message, no copy of any
/// UID): only when two hashes are equal does the exact pass below run,
/// with its set of UIDs. A login's peak memory is then not a set of every
/// UID on top of the index.
pub fn make_unique<'a>(uids: impl Iterator<Item = &'a mut Uid>) {
    let mut uids: Vec<&'a mut Uid> = uids.collect();
    let mut hashes: Vec<u64> = uids
        .iter()
        .map(|u| {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(u.as_bytes())
        })
        .collect();
    hashes.sort_unstable();
    if hashes.windows(2).all(|w| w[0] != w[1]) {
        return;
    }
    drop(hashes);
    make_unique_exact(uids.iter_mut().map(|u| &mut **u));
}

/// [`make_unique`]'s rule, with a set of every UID seen.
fn make_unique_exact<'a>(uids: impl Iterator<Item = &'a mut Uid>) {
    let (lower, _) = uids.size_hint();
    let mut seen: HashSet<Uid> = HashSet::with_capacity(lower);
    // The next suffix to try per duplicated UID: every smaller one is
    // taken (the set only grows), so this keeps the smallest-free rule
    // while making n copies of one UID cost O(n), not O(n²) — mail from
    // outside can carry any X-UIDL header, thousands of times.
    let mut next: HashMap<Uid, u64> = HashMap::new();
    for uid in uids {
        if seen.contains(uid) {
            let from = next.entry(uid.clone()).or_insert(2);
            let (unique, n) = unique_variant(uid, &seen, *from);
            *from = n + 1;
            *uid = unique;
        }
        seen.insert(uid.clone());
    }
}

/// The first `base-N`, N ≥ `from`, not in `taken`, and its N.
fn unique_variant(base: &Uid, taken: &HashSet<Uid>, from: u64) -> (Uid, u64) {
    for n in from.. {
        let suffix = format!("-{n}");
        let keep = base.len().min(MAX_UID_LEN - suffix.len());
        let mut v = base.as_bytes()[..keep].to_vec();
        v.extend_from_slice(suffix.as_bytes());
        // Both parts are printable ASCII and the length is at most 70.
        if let Some(uid) = Uid::new(&v)
            && !taken.contains(&uid)
        {
            return (uid, n);
        }
    }
    // Unreachable: there are fewer UIDs than suffixes.
    (base.clone(), from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_check_changes_nothing_unique_and_catches_far_duplicates() {
        let mut v: Vec<Uid> = (0..10_000)
            .map(|i| Uid::new(format!("u{i}").as_bytes()).unwrap())
            .collect();
        let before = v.clone();
        make_unique(v.iter_mut());
        assert_eq!(v, before);
        v.push(Uid::new(b"u0").unwrap());
        v.push(Uid::new(b"u0-2").unwrap());
        make_unique(v.iter_mut());
        assert_eq!(&v[..10_000], &before[..]);
        assert_eq!(v[10_000].as_bytes(), b"u0-2");
        assert_eq!(v[10_001].as_bytes(), b"u0-2-2");
    }

    #[test]
    fn uids_short_and_long_are_the_same_to_everyone() {
        assert!(std::mem::size_of::<Uid>() <= 48);
        for len in [1, 32, 41, 46, 47, 70] {
            let bytes = vec![b'a' + (len % 26) as u8; len];
            let u = Uid::new(&bytes).unwrap();
            assert_eq!(u.as_bytes(), bytes.as_slice());
            assert_eq!(u.len(), len);
            assert_eq!(u.clone(), u);
            let mut set = HashSet::new();
            set.insert(u.clone());
            assert!(set.contains(&Uid::new(&bytes).unwrap()));
        }
        assert_ne!(Uid::new(b"ab").unwrap(), Uid::new(b"abc").unwrap());
        assert_eq!(Uid::new(&[b'x'; 71]), None);
        assert_eq!(
            Uid::from_digest(&[0xab; 16]).as_bytes(),
            "ab".repeat(16).as_bytes()
        );
        assert_eq!(format!("{:?}", Uid::new(b"k1").unwrap()), "Uid(\"k1\")");
    }

    fn meta(uid: &str, size: u64) -> Entry {
        Entry {
            size,
            uid: Uid::new(uid.as_bytes()).unwrap(),
            seen: false,
        }
    }

    #[test]
    fn uid_validity() {
        assert!(Uid::new(b"").is_none());
        assert!(Uid::new(b"a b").is_none());
        assert!(Uid::new(b"a\x7f").is_none());
        assert!(Uid::new(&[b'a'; 71]).is_none());
        assert!(Uid::new(&[b'a'; 70]).is_some());
        assert!(Uid::new(b"%s%n").is_some());
    }

    #[test]
    fn sizes_are_the_maildrops_and_add_up() {
        let ix = Index::new(vec![meta("a", 148), meta("b", 2)]);
        assert_eq!(ix.get(MsgIdx(0)).unwrap().size, 148);
        assert_eq!(ix.total_size(), 150);
    }

    #[test]
    fn duplicate_uids_get_deterministic_suffixes() {
        let ix = Index::new(vec![
            meta("abc", 1),
            meta("abc", 1),
            meta("abc-2", 1),
            meta("abc", 1),
        ]);
        let uids: Vec<&[u8]> = ix.iter().map(|e| e.uid.as_bytes()).collect();
        assert_eq!(uids, vec![&b"abc"[..], b"abc-2", b"abc-2-2", b"abc-3"]);
        let long = "x".repeat(70);
        let ix = Index::new(vec![meta(&long, 1), meta(&long, 1)]);
        let second = &ix.entries()[1].uid;
        assert_eq!(second.len(), 70);
        assert!(second.as_bytes().ends_with(b"-2"));
        // Unique UIDs are left as they are.
        let mut again: Vec<Uid> = ix.entries().iter().map(|e| e.uid.clone()).collect();
        make_unique(again.iter_mut());
        assert!(again.iter().zip(ix.entries()).all(|(a, e)| *a == e.uid));
    }

    #[test]
    fn many_copies_of_one_uid_are_linear() {
        // Regression: 30 000 identical X-UIDL headers took 60 s of CPU.
        let metas: Vec<Entry> = (0..50_000).map(|_| meta("samesame", 1)).collect();
        let t = std::time::Instant::now();
        let ix = Index::new(metas);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(ix.entries()[0].uid.as_bytes(), b"samesame");
        assert_eq!(ix.entries()[1].uid.as_bytes(), b"samesame-2");
        assert_eq!(ix.entries()[49_999].uid.as_bytes(), b"samesame-50000");
        let unique: HashSet<&Uid> = ix.iter().map(|e| e.uid).collect();
        assert_eq!(unique.len(), 50_000);
    }

    #[test]
    fn lookup_is_one_based_and_bounded() {
        let ix = Index::new(vec![meta("a", 1), meta("b", 1)]);
        assert_eq!(ix.lookup(0), None);
        assert_eq!(ix.lookup(1), Some(MsgIdx(0)));
        assert_eq!(ix.lookup(2), Some(MsgIdx(1)));
        assert_eq!(ix.lookup(3), None);
        assert_eq!(ix.lookup(u64::MAX), None);
        assert_eq!(MsgIdx(1).num(), MsgNum(2));
    }
}
