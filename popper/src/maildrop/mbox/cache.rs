//! The scan index: `SPOOL/.USER.pop.index`, the login scan of a spool kept
//! for the next login, so a leave-on-server check of an unchanged mailbox
//! reads a few kilobytes instead of the whole spool (`make bench`, row b).
//!
//! Trust: the file is the user's own (made by popper running as the user,
//! 0600, never followed through a link, one link, owned by the user), so a
//! forged one can mislead only the user's own session — and every entry is
//! still checked against the spool before it is used. Its checksum must
//! hold, its messages must partition what it indexed exactly as a scan's
//! do, and the spool must be the same file (device and inode). Then:
//!
//! * **Unchanged**: the spool's size, mtime and ctime (to the nanosecond)
//!   are exactly those the index was made from, and that state had
//!   settled (last changed over [`RACY`] before the index was made, as git
//!   does for its index: a later change cannot leave the timestamps as
//!   they were; ctime cannot be set by any user): the index is the scan,
//!   once the first and last separator lines hash as recorded.
//! * **Grown, shrunk, or indexed while still changing**: the spool is the
//!   indexed one plus or minus a tail — mail appended, or popper's own
//!   update rewriting from the first changed message on. Each indexed
//!   message's *head* (`heads.rs`: its separator, the bytes before it and
//!   its header) is hashed again, in order; the messages before the first
//!   one that differs are kept, and the spool is scanned from the last
//!   head that still holds (that message may have grown) to its end
//!   (`scan::scan_tail`). A new delivery to a 1 GB mailbox costs a scan
//!   of the new message and a few milliseconds of hashing, not a scan of
//!   the gigabyte.
//! * **Same size, other timestamps**: an edit in place; a full scan.
//!
//! What clients see (numbering, sizes, UIDs) is a full scan's: the UIDs
//! are made unique again over the whole list, which leaves already unique
//! leading UIDs as they are and gives the new ones what a full scan would
//! (`make_unique` takes the smallest free suffix, in order). The one edit
//! this cannot see is named in `heads.rs`: a body changed in place to the
//! same length with a different number of lines, which no mail program
//! makes. Anything amiss means a full scan, which then replaces the index.
//!
//! DEVIATION: qpopper read the whole spool at every login and left no
//! file of its own behind; this one stays beside the spool (`scan-index`
//! turns it off).
//!
//! Written beside the session lock, as the user, by write-to-temporary and
//! rename, while the session lock is held; a crash leaves either the old
//! index, the new one, or a stray `.new` that the next write replaces.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::scan::MsgMeta;
use super::scan::{Format, LINE_PREFIX, MboxMsg, Scan, ScanError, scan_tail, sep_hash};
use crate::maildrop::own_file;
use crate::privilege::Dropped;
use pop3_core::index::Uid;

/// First bytes of an index file; the number is the layout's version (and
/// of what the scanner records): change it with either.
pub const MAGIC: &[u8; 16] = b"popper-index 02\n";

pub use crate::maildrop::stamp::{RACY, Stamp};

/// Smaller spools are scanned every time (well under a millisecond) and
/// get no index; an index left from when the spool was larger is removed.
pub const MIN_SPOOL: u64 = 1 << 20;

use crate::limits::MAX_INDEX_FILE as MAX_FILE;

/// Bytes of one entry before its UID: five offsets, the size, the
/// separator hash, the head hash, the seen flag and the UID's length.
const ENTRY_FIXED: usize = 8 * 8 + 2;

/// Where the index of the spool whose session lock is `session_lock` lives.
pub fn path_for(session_lock: &Path) -> PathBuf {
    super::lock::with_suffix(session_lock, ".index")
}

/// What an index holds besides the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// The spool's state when it was scanned.
    pub stamp: Stamp,
    /// That state had settled ([`Stamp::settled`]): an equal stamp later
    /// means an unchanged spool.
    pub settled: bool,
    /// Each message's head hash (`heads.rs`).
    pub heads: Vec<u64>,
}

/// The index as bytes: `scan` with `made.heads[i]` for each message.
pub fn encode(scan: &Scan, made: &Made) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + scan.msgs.len() * (ENTRY_FIXED + 24));
    out.extend_from_slice(MAGIC);
    made.stamp.encode(&mut out);
    out.push(u8::from(made.settled));
    out.extend_from_slice(&scan.len.to_le_bytes());
    match &scan.format {
        Format::Mbox => out.extend_from_slice(&0u32.to_le_bytes()),
        Format::Mmdf(sep) => {
            out.extend_from_slice(&(sep.len() as u32).to_le_bytes());
            out.extend_from_slice(sep);
        }
    }
    out.extend_from_slice(&(scan.msgs.len() as u64).to_le_bytes());
    for (m, head) in scan.msgs.iter().zip(&made.heads) {
        for v in [
            m.start,
            m.content,
            m.hdr_end,
            m.end,
            m.next,
            m.meta.size_without_uidl,
            m.sep_hash,
            *head,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(m.meta.seen));
        let uid = m.meta.uid.as_bytes();
        out.push(uid.len() as u8);
        out.extend_from_slice(uid);
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Reads little-endian fields off the front of a byte slice.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
}

/// The scan an index holds and how it was made, if it is well formed and
/// describes a partition of what it indexed as a scan would.
pub fn decode(bytes: &[u8]) -> Option<(Scan, Made)> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
        return None;
    }
    let mut f = Fields(body);
    if f.bytes(MAGIC.len())? != MAGIC {
        return None;
    }
    let got = Stamp {
        dev: f.u64()?,
        ino: f.u64()?,
        size: f.u64()?,
        mtime: (f.i64()?, f.i64()?),
        ctime: (f.i64()?, f.i64()?),
    };
    let settled = match f.u8()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let len = f.u64()?;
    if len != got.size {
        return None;
    }
    let sep_len = f.u32()? as usize;
    let format = match sep_len {
        0 => Format::Mbox,
        n if n <= LINE_PREFIX + 1 => Format::Mmdf(f.bytes(n)?.to_vec()),
        _ => return None,
    };
    let count = usize::try_from(f.u64()?).ok()?;
    // Each entry takes at least ENTRY_FIXED + 1 bytes: a count the file
    // cannot hold is refused before anything is allocated for it.
    if count > f.0.len() / (ENTRY_FIXED + 1) {
        return None;
    }
    if got.size != 0 && count == 0 {
        return None;
    }
    let mut msgs = Vec::with_capacity(count);
    let mut heads = Vec::with_capacity(count);
    for _ in 0..count {
        let (start, content, hdr_end, end, next) =
            (f.u64()?, f.u64()?, f.u64()?, f.u64()?, f.u64()?);
        let size_without_uidl = f.u64()?;
        let sep = f.u64()?;
        heads.push(f.u64()?);
        let seen = match f.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let n = f.u8()? as usize;
        let uid = Uid::new(f.bytes(n)?)?;
        msgs.push(MboxMsg {
            start,
            content,
            hdr_end,
            end,
            next,
            meta: MsgMeta {
                size_without_uidl,
                uid,
                seen,
            },
            sep_hash: sep,
        });
    }
    if !f.0.is_empty() {
        return None;
    }
    let scan = Scan { format, msgs, len };
    let made = Made {
        stamp: got,
        settled,
        heads,
    };
    partitions(&scan).then_some((scan, made))
}

/// True when the messages lie as a scan leaves them: the first at 0, each
/// one's extent beginning where the last ended, the last ending at the
/// scanned length, and within each `start < content <= hdr_end <= end <=
/// next`. A scan of any bytes passes (tested); so any index that passes
/// describes byte ranges of the spool that RETR, TOP and the update can
/// use safely.
pub fn partitions(scan: &Scan) -> bool {
    if scan.msgs.is_empty() {
        return scan.len == 0;
    }
    let mut at = 0;
    for m in &scan.msgs {
        if !(m.start == at
            && m.start < m.content
            && m.content <= m.hdr_end
            && m.hdr_end <= m.end
            && m.end <= m.next)
        {
            return false;
        }
        at = m.next;
    }
    at == scan.len
}

/// What an index gives a login.
#[derive(Debug)]
pub enum Loaded {
    /// The spool is as indexed: this is its scan.
    Whole(Scan),
    /// The spool changed after its first messages: `kept` (their UIDs as
    /// the index made them unique) and their `heads` hold, and the spool
    /// is to be scanned from `resume`, the start of the message after them.
    Prefix {
        /// The messages that still hold.
        kept: Vec<MboxMsg>,
        /// Their head hashes.
        heads: Vec<u64>,
        /// Where the scan of the rest begins.
        resume: u64,
    },
}

/// How an index made as `made` may be used for a spool now at `stamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Not at all: another file, or a same-size edit in place.
    Refuse,
    /// As it is: the spool has not changed since a settled state.
    Unchanged,
    /// By its heads, message by message (`heads.rs`).
    Heads,
}

/// The rule of the module doc.
pub fn check(made: &Made, stamp: &Stamp, format: &Format) -> Check {
    let was = made.stamp;
    if (was.dev, was.ino) != (stamp.dev, stamp.ino) {
        return Check::Refuse;
    }
    if was == *stamp && made.settled {
        return Check::Unchanged;
    }
    if (was.size == stamp.size && was != *stamp) || *format != Format::Mbox {
        return Check::Refuse;
    }
    Check::Heads
}

/// What the index at `path` says of `spool` (whose `fstat` is `stamp`),
/// if it is valid and of this spool (see the module doc for the rules).
pub fn load(path: &Path, owner: &Dropped, spool: &File, stamp: &Stamp) -> Option<Loaded> {
    let bytes = own_file::read(path, owner, MAX_FILE)?;
    let (mut scan, made) = decode(&bytes)?;
    drop(bytes);
    match check(&made, stamp, &scan.format) {
        Check::Refuse => return None,
        Check::Unchanged => {
            let ends = [scan.msgs.first(), scan.msgs.last()];
            for m in ends.into_iter().flatten() {
                if !separator_matches(spool, m) {
                    return None;
                }
            }
            return Some(Loaded::Whole(scan));
        }
        Check::Heads => {}
    }
    let mut heads = super::heads::hashes(spool, stamp.size, &scan.msgs, Some(&made.heads)).ok()?;
    // The last message that holds may have grown (mail appended to a
    // spool without a final empty line is part of it): scanned again.
    let last = heads.len().checked_sub(1)?;
    let resume = scan.msgs[last].start;
    scan.msgs.truncate(last);
    heads.truncate(last);
    Some(Loaded::Prefix {
        kept: scan.msgs,
        heads,
        resume,
    })
}

/// True when the separator line at `m.start` hashes to `m.sep_hash` (the
/// scanner hashes the line without its LF, at most LINE_PREFIX bytes).
fn separator_matches(spool: &File, m: &MboxMsg) -> bool {
    let n = (m.content - m.start).min(LINE_PREFIX as u64 + 1) as usize;
    let mut line = vec![0u8; n];
    if spool.read_exact_at(&mut line, m.start).is_err() {
        return false;
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    line.truncate(LINE_PREFIX);
    sep_hash(&line) == m.sep_hash
}

/// The login scan of `spool` (whose `fstat` is `stamp`), with the index at
/// `path`: taken whole, extended by a scan of the spool's tail, or made
/// by a full scan — what clients see is the same in every case — and the
/// index then written for the next login when it changed. `now` decides
/// whether the spool's state has settled ([`store`]).
pub fn scan(
    spool: &File,
    stamp: &Stamp,
    path: &Path,
    owner: &Dropped,
    now: SystemTime,
) -> Result<(Scan, Source), ScanError> {
    let len = stamp.size;
    let (scan, mut heads, source) = match load(path, owner, spool, stamp) {
        Some(Loaded::Whole(s)) => return Ok((s, Source::Index)),
        Some(Loaded::Prefix {
            mut kept,
            heads,
            resume,
        }) => match scan_tail(spool, resume, len) {
            Ok(mut tail) => {
                let source = Source::Tail {
                    kept: kept.len(),
                    bytes: len - resume,
                };
                kept.append(&mut tail);
                (Scan::new(Format::Mbox, kept, len), heads, source)
            }
            // The last message that held is no message start after all
            // (short of a forged index, it cannot be): a full scan.
            Err(ScanError::BadEnvelope) => (full_scan(spool, len)?, Vec::new(), Source::Scan),
            Err(e) => return Err(e),
        },
        None => (full_scan(spool, len)?, Vec::new(), Source::Scan),
    };
    // Stored only if nothing wrote to the spool while it was read (a
    // writer that ignores the locks); a failure to store costs only the
    // next login a scan.
    let rest = &scan.msgs[heads.len().min(scan.msgs.len())..];
    if let Ok(mut more) = super::heads::hashes(spool, len, rest, None) {
        heads.append(&mut more);
        if spool.metadata().is_ok_and(|m| Stamp::of(&m) == *stamp) {
            let _ = store(path, &scan, heads, stamp, now);
        }
    }
    Ok((scan, source))
}

fn full_scan(spool: &File, len: u64) -> Result<Scan, ScanError> {
    super::scan::scan(spool, len)
}

/// Where a login's scan came from, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The whole spool was read.
    Scan,
    /// The index, for an unchanged spool.
    Index,
    /// The index's first `kept` messages, and a scan of the last `bytes`.
    Tail {
        /// Messages taken from the index.
        kept: usize,
        /// Bytes scanned.
        bytes: u64,
    },
}

/// Removes the index (a spool that no longer needs one); a missing one is
/// fine, and other failures only leave a stale index, which is never used.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Writes the index of `scan` with its messages' `heads`, made from a
/// spool with `stamp`; one made from a spool that changed too recently
/// for its timestamps to be trusted ([`RACY`]) is marked so, and is then
/// checked by its heads, never taken on its timestamps alone. Failures (a
/// spool directory the user cannot write, a full disk) only mean the next
/// login scans.
pub fn store(
    path: &Path,
    scan: &Scan,
    heads: Vec<u64>,
    stamp: &Stamp,
    now: SystemTime,
) -> io::Result<()> {
    if heads.len() != scan.msgs.len() {
        return Err(io::Error::other("a head hash for every message"));
    }
    let made = Made {
        stamp: *stamp,
        settled: stamp.settled(now),
        heads,
    };
    own_file::replace(path, &encode(scan, &made))
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
