//! The listing cache `Maildir/.popper-sizes`: the last full listing of
//! `new/` and `cur/` with every message's exact wire size, so that a login
//! to an unchanged Maildir neither reads nor stats a single message, and a
//! login after a change counts only the new ones.
//!
//! What it holds: the [`Stamp`]s of `new/` and `cur/` read (`fstat` of the
//! open directories) *before* they were listed, whether the listing may be
//! taken whole, and each message as listed — directory, name, device,
//! inode, `st_size`, mtime and wire size — in session order.
//!
//! Two ways it is used (`mod.rs`):
//!
//! * **whole**, with no directory read, when both directories' stamps are
//!   exactly those recorded and the cache says it may be: the listing was
//!   complete (nothing skipped, every size counted whole) and both stamps
//!   were settled when it was written ([`Stamp::settled`], the rule the mbox
//!   scan index uses). Any entry made, renamed or removed in a directory
//!   moves its mtime and ctime; settled stamps mean such a change after the
//!   stamp was read cannot have left it equal. So the listing is the one a
//!   full listing would give now: the same names, UIDs, sizes and order.
//!   What a directory's stamp cannot show is a file changed in place
//!   (Maildir files never are: delivery agents write under `tmp/`, readers
//!   rename); such a file is caught when it is sent (its size or inode is
//!   checked then, `send.rs`) and fails with `-ERR`, never sent wrong.
//! * **per file** otherwise: the directories are listed and an entry's wire
//!   size is used for a file with that base name, inode, size and mtime.
//!
//! Trust: the file is the user's own (written as the user, 0600, by a
//! temporary name and a rename, never through a link: `own_file.rs`), so a
//! forged one can mislead only the user's own session; still every byte is
//! checked: the layout's version, a checksum, every field's range, every
//! name (no `/`, NUL or leading `.`), and the entries' strict session
//! order. Anything amiss and the cache is ignored (a full listing, every
//! size counted, and a new cache written). A cache lost in a crash only
//! costs the next login a recount, so it is not fsynced.

use std::io;
use std::path::Path;

use super::list::{Sub, order};
use super::listing::{Listing, Rec};
use crate::limits::MAX_SIZE_CACHE;
use crate::maildrop::own_file;
use crate::maildrop::stamp::{self, Stamp};
use crate::privilege::Dropped;

/// The cache's file name in the Maildir's root.
pub const NAME: &str = ".popper-sizes";

/// First bytes; the number is the layout's version (version 1 was a text
/// file of sizes without stamps: it fails this check and is replaced).
const MAGIC: &[u8; 16] = b"popper-sizes 02\n";

/// Magic, the whole flag, two stamps and the entry count.
const HEADER: usize = MAGIC.len() + 1 + 2 * stamp::ENCODED + 4;

/// Bytes of an entry before its name: directory, name length, device,
/// inode, size, wire size, mtime seconds, mtime nanoseconds.
const FIXED: usize = 1 + 2 + 5 * 8 + 4;

/// The checksum at the end.
const SUM: usize = 8;

/// Longest name kept (Linux's `NAME_MAX`).
const MAX_NAME: usize = 255;

/// A cache as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `new/`'s and `cur/`'s stamps when the listing began.
    pub stamps: [Stamp; 2],
    /// The listing may be taken whole while the stamps are unchanged.
    pub whole: bool,
    /// The listing, in session order, sized.
    pub files: Listing,
}

/// The 64-bit checksum at the end, over everything before it, eight bytes
/// at a time (FNV-1a's constants on words: damage, not forgery, is what
/// it is for — a forger can only mislead their own session, and every
/// field is checked anyway). Fed in pieces, as the file is read.
struct Sum {
    h: u64,
    word: [u8; 8],
    fill: usize,
}

const PRIME: u64 = 0x0000_0100_0000_01b3;

impl Sum {
    /// For a body of `len` bytes.
    fn new(len: u64) -> Sum {
        Sum {
            h: 0xcbf2_9ce4_8422_2325u64 ^ len,
            word: [0; 8],
            fill: 0,
        }
    }

    fn mix(&mut self, w: [u8; 8]) {
        self.h = (self.h ^ u64::from_le_bytes(w)).wrapping_mul(PRIME);
        self.h ^= self.h >> 29;
    }

    fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.fill == 0 && b.len() >= 8 {
                let mut words = b.chunks_exact(8);
                for w in &mut words {
                    let mut x = [0u8; 8];
                    x.copy_from_slice(w);
                    self.mix(x);
                }
                b = words.remainder();
                continue;
            }
            let take = (8 - self.fill).min(b.len());
            self.word[self.fill..self.fill + take].copy_from_slice(&b[..take]);
            self.fill += take;
            b = &b[take..];
            if self.fill == 8 {
                self.mix(self.word);
                self.fill = 0;
            }
        }
    }

    fn finish(mut self) -> u64 {
        for b in &self.word[..self.fill] {
            self.h = (self.h ^ u64::from(*b)).wrapping_mul(PRIME);
        }
        self.h
    }
}

/// The checksum of `bytes` whole.
#[cfg(any(test, feature = "fuzzing"))]
fn sum(bytes: &[u8]) -> u64 {
    let mut s = Sum::new(bytes.len() as u64);
    s.feed(bytes);
    s.finish()
}

/// `body` with its checksum after it: a file whose every other part the
/// decoder must check (the fuzz target's way past the checksum).
#[cfg(any(test, feature = "fuzzing"))]
pub fn seal(body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    b.extend_from_slice(&sum(body).to_le_bytes());
    b
}

/// Writes the cache of `files` (in session order) to `out`, those whose
/// index `keep` accepts, summing as it writes (no copy of the file is
/// made in memory).
pub fn encode(
    stamps: &[Stamp; 2],
    whole: bool,
    files: &Listing,
    keep: impl Fn(usize) -> bool,
    out: &mut impl io::Write,
) -> io::Result<()> {
    let kept = || (0..files.len()).filter(|&i| keep(i));
    let count = u32::try_from(kept().count()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let body = HEADER as u64
        + kept()
            .filter_map(|i| files.rec(i))
            .map(|r| (FIXED + files.name(r).len()) as u64)
            .sum::<u64>();
    let mut sum = Sum::new(body);
    let mut put = |b: &[u8]| {
        sum.feed(b);
        out.write_all(b)
    };
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(MAGIC);
    head.push(u8::from(whole));
    for s in stamps {
        s.encode(&mut head);
    }
    head.extend_from_slice(&count.to_le_bytes());
    put(&head)?;
    let mut e = [0u8; FIXED];
    for r in kept().filter_map(|i| files.rec(i)) {
        let name = files.name(r);
        e[0] = u8::from(r.sub == Sub::Cur);
        e[1..3].copy_from_slice(&(name.len() as u16).to_le_bytes());
        for (k, v) in [r.dev, r.ino, r.len, r.wire].into_iter().enumerate() {
            e[3 + 8 * k..11 + 8 * k].copy_from_slice(&v.to_le_bytes());
        }
        e[35..43].copy_from_slice(&r.secs.to_le_bytes());
        e[43..47].copy_from_slice(&r.nanos.to_le_bytes());
        put(&e)?;
        put(name)?;
    }
    let s = sum.finish();
    out.write_all(&s.to_le_bytes())
}

/// [`encode`] of every file, into memory.
pub fn to_bytes(stamps: &[Stamp; 2], whole: bool, files: &Listing) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = encode(stamps, whole, files, |_| true, &mut out);
    out
}

/// Reads the body's fields in order, never past its end, summing them.
struct Reader<R> {
    r: R,
    left: u64,
    sum: Sum,
}

impl<R: io::Read> Reader<R> {
    fn fill(&mut self, buf: &mut [u8]) -> Option<()> {
        self.left = self.left.checked_sub(buf.len() as u64)?;
        self.r.read_exact(buf).ok()?;
        self.sum.feed(buf);
        Some(())
    }
    fn word<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut w = [0u8; N];
        self.fill(&mut w)?;
        Some(w)
    }
}

/// True for a name a Maildir message can have and popper lists.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.starts_with(b".") && !name.iter().any(|b| *b == b'/' || *b == 0)
}

/// The cache in `bytes`, if they are one exactly as [`encode`] writes it.
pub fn decode(bytes: &[u8]) -> Option<Stored> {
    decode_from(bytes, bytes.len() as u64)
}

/// The cache in the `size` bytes `r` gives, if they are one exactly as
/// [`encode`] writes it: parsed as read, so no copy of the file is held.
fn decode_from(r: impl io::Read, size: u64) -> Option<Stored> {
    let body = size.checked_sub(SUM as u64)?;
    let mut r = Reader {
        r,
        left: body,
        sum: Sum::new(body),
    };
    if r.word::<16>()? != *MAGIC {
        return None;
    }
    let whole = match r.word::<1>()? {
        [0] => false,
        [1] => true,
        _ => return None,
    };
    let stamps = [
        Stamp::decode(&r.word::<{ stamp::ENCODED }>()?)?,
        Stamp::decode(&r.word::<{ stamp::ENCODED }>()?)?,
    ];
    let count = u32::from_le_bytes(r.word()?) as usize;
    if count as u64 > r.left / (FIXED as u64 + 1) {
        return None;
    }
    // The names' bytes are what the entries leave of the body: the
    // listing is made at its size (`Listing::with_capacity`).
    let names = (r.left as usize).saturating_sub(count * FIXED);
    let mut files = Listing::with_capacity(count, names);
    let mut name = [0u8; MAX_NAME];
    for _ in 0..count {
        let sub = match r.word::<1>()? {
            [0] => Sub::New,
            [1] => Sub::Cur,
            _ => return None,
        };
        let name_len = usize::from(u16::from_le_bytes(r.word()?));
        let mut u = || Some(u64::from_le_bytes(r.word()?));
        let (dev, ino, len, wire) = (u()?, u()?, u()?, u()?);
        let secs = i64::from_le_bytes(r.word()?);
        let nanos = u32::from_le_bytes(r.word()?);
        let name = name.get_mut(..name_len)?;
        r.fill(name)?;
        // A wire size is never below the file's (CRs are only added).
        if !valid_name(name) || nanos >= 1_000_000_000 || wire < len {
            return None;
        }
        let rec = Rec::new(dev, ino, len, (secs, nanos), wire);
        let key = ((secs, i64::from(nanos)), &name[..], sub);
        let in_order = files
            .recs()
            .last()
            .is_none_or(|p| order(files.key(p), key).is_lt());
        if !in_order {
            return None;
        }
        files.push_parts(sub, name, rec)?;
    }
    files.shrink_to_fit();
    let (left, mut rest) = (r.left, r.r);
    let mut want = [0u8; SUM];
    if left != 0 || rest.read_exact(&mut want).is_err() {
        return None;
    }
    if u64::from_le_bytes(want) != r.sum.finish() {
        return None;
    }
    Some(Stored {
        stamps,
        whole,
        files,
    })
}

/// The cache at `path`, if it is a regular file of `owner`'s with one link,
/// not reached through a symbolic link, not larger than
/// [`MAX_SIZE_CACHE`], and well formed. `None` means: list and count.
pub fn load(path: &Path, owner: &Dropped) -> Option<Stored> {
    let (file, size) = own_file::open(path, owner, MAX_SIZE_CACHE)?;
    decode_from(io::BufReader::with_capacity(READ_CHUNK, file), size)
}

/// Bytes read from the cache file at a time.
const READ_CHUNK: usize = 64 << 10;

/// Writes the cache of `files` (those `keep` accepts) at `path`,
/// replacing it whole (`own_file.rs`): a symbolic link or a foreign file
/// there is replaced, never followed.
pub fn store(
    path: &Path,
    stamps: &[Stamp; 2],
    whole: bool,
    files: &Listing,
    keep: impl Fn(usize) -> bool,
) -> io::Result<()> {
    own_file::replace_with(path, |out| {
        let mut out = io::BufWriter::with_capacity(READ_CHUNK, out);
        encode(stamps, whole, files, keep, &mut out)?;
        io::Write::flush(&mut out)
    })
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
