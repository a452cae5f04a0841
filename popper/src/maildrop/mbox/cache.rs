//! The scan index: `SPOOL/.USER.pop.index`, the login scan of a spool kept
//! for the next login, so a leave-on-server check of an unchanged mailbox
//! reads a few kilobytes instead of the whole spool (`make bench`, row b).
//!
//! Trust: the file is the user's own (made by popper running as the user,
//! 0600, never followed through a link, one link, owned by the user), so a
//! forged one can mislead only the user's own session — and every entry is
//! still checked against the spool before it is used: the index is taken
//! only when the spool's device, inode, size, mtime and ctime (to the
//! nanosecond) are exactly those it was made from, its checksum holds, the
//! messages partition the spool exactly as a scan's do, and the first and
//! last separator lines hash as recorded. ctime cannot be set by any user,
//! and any write moves it; an index is made only from a spool last changed
//! over [`RACY`] ago (as git does for its index), so a change within the
//! file system's timestamp granularity after the scan cannot look unchanged.
//! Anything amiss means a full scan, which then replaces the index.
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

use super::journal_header::fnv;
use super::scan::MsgMeta;
use super::scan::{Format, LINE_PREFIX, MboxMsg, Scan, sep_hash};
use crate::maildrop::own_file;
use crate::privilege::Dropped;
use pop3_core::index::Uid;

/// First bytes of an index file; the number is the layout's version (and
/// of what the scanner records): change it with either.
pub const MAGIC: &[u8; 16] = b"popper-index 01\n";

pub use crate::maildrop::stamp::{RACY, Stamp};

/// Smaller spools are scanned every time (well under a millisecond) and
/// get no index; an index left from when the spool was larger is removed.
pub const MIN_SPOOL: u64 = 1 << 20;

use crate::limits::MAX_INDEX_FILE as MAX_FILE;

/// Bytes of one entry before its UID: five offsets, the size, the
/// separator hash, the seen flag and the UID's length.
const ENTRY_FIXED: usize = 7 * 8 + 2;

/// Where the index of the spool whose session lock is `session_lock` lives.
pub fn path_for(session_lock: &Path) -> PathBuf {
    super::lock::with_suffix(session_lock, ".index")
}

/// The index as bytes.
pub fn encode(scan: &Scan, stamp: &Stamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + scan.msgs.len() * (ENTRY_FIXED + 24));
    out.extend_from_slice(MAGIC);
    stamp.encode(&mut out);
    out.extend_from_slice(&scan.len.to_le_bytes());
    match &scan.format {
        Format::Mbox => out.extend_from_slice(&0u32.to_le_bytes()),
        Format::Mmdf(sep) => {
            out.extend_from_slice(&(sep.len() as u32).to_le_bytes());
            out.extend_from_slice(sep);
        }
    }
    out.extend_from_slice(&(scan.msgs.len() as u64).to_le_bytes());
    for m in &scan.msgs {
        for v in [
            m.start,
            m.content,
            m.hdr_end,
            m.end,
            m.next,
            m.meta.size_without_uidl,
            m.sep_hash,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(m.meta.seen));
        let uid = m.meta.uid.as_bytes();
        out.push(uid.len() as u8);
        out.extend_from_slice(uid);
    }
    let sum = fnv(&out);
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

/// The scan an index holds, if it is well formed, belongs to a spool with
/// exactly `stamp`, and describes a partition of it as a scan would.
pub fn decode(bytes: &[u8], stamp: &Stamp) -> Option<Scan> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if fnv(body).to_le_bytes() != sum {
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
    let len = f.u64()?;
    if got != *stamp || len != stamp.size {
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
    let mut msgs = Vec::with_capacity(count);
    for _ in 0..count {
        let (start, content, hdr_end, end, next) =
            (f.u64()?, f.u64()?, f.u64()?, f.u64()?, f.u64()?);
        let size_without_uidl = f.u64()?;
        let sep = f.u64()?;
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
    partitions(&scan).then_some(scan)
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

/// The scan of `spool` (whose `fstat` is `stamp`) from its index, if there
/// is a valid one. Besides [`decode`]'s checks, the first and last
/// messages' separator lines are read back and must hash as recorded.
pub fn load(path: &Path, owner: &Dropped, spool: &File, stamp: &Stamp) -> Option<Scan> {
    let bytes = own_file::read(path, owner, MAX_FILE)?;
    let scan = decode(&bytes, stamp)?;
    drop(bytes);
    let ends = [scan.msgs.first(), scan.msgs.last()];
    for m in ends.into_iter().flatten() {
        if !separator_matches(spool, m) {
            return None;
        }
    }
    Some(scan)
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

/// Removes the index (a spool that no longer needs one); a missing one is
/// fine, and other failures only leave a stale index, which is never used.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Writes the index of `scan`, made from a spool with `stamp`, unless the
/// spool changed too recently for its timestamps to be trusted ([`RACY`]).
/// Returns whether it wrote. Failures (a spool directory the user cannot
/// write, a full disk) only mean the next login scans.
pub fn store(path: &Path, scan: &Scan, stamp: &Stamp, now: SystemTime) -> io::Result<bool> {
    if !stamp.settled(now) {
        return Ok(false);
    }
    own_file::replace(path, &encode(scan, stamp))?;
    Ok(true)
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
