//! Login-time recovery, run with the spool locks held, before the scan
//! (this file rolls journals forward; `temp_drop.rs` folds back qpopper's
//! temporary maildrop):
//!
//! 1. **An interrupted update** (a journal left by a popper that died, see
//!    `update.rs`): an uncommitted journal is deleted (the spool was never
//!    touched); a committed one is rolled forward.
//! 2. **A qpopper temporary maildrop**: qpopper 2.53 copied the spool into
//!    `SPOOL/.USER.pop` at login and emptied the spool; a qpopper that died
//!    left the user's mail there (qpopper.md §9.7). popper uses the same
//!    file as its session lock, so a non-empty one is folded back into the
//!    spool, in front of it as qpopper would have, through the journal.
//!
//! # Mail appended after a crash
//!
//! A popper killed mid-update leaves its dotlock. Delivery agents respect
//! it until they judge it stale (procmail after 1024 s, Postfix after
//! 500 s), and one that locks with fcntl or flock only does not wait at
//! all; any of them may append to the half-updated spool. Recovery must
//! keep that mail, so it works out where it begins from what the journal
//! says the update changes — always from the spool's contents, never from
//! the dotlock still being there:
//!
//! * the spool's size goes from `old` to `new` in one step: `fallocate`
//!   before the copy when it grows, `ftruncate` after the copy when it
//!   shrinks; appended mail starts at whichever of the two sizes the spool
//!   had then;
//! * growing: the bytes at `old` are zeros or tail bytes if the spool had
//!   already grown, and the start of a new message if not;
//! * shrinking: a size below `old` means the truncation happened; at or
//!   above it, the bytes at `new` are still the old bytes the journal
//!   sampled if it had not.
//!
//! The appended mail is then saved into a new journal (after the tail) and
//! the update rolled forward with it. A spool shorter than both sizes is
//! not something popper did: the journal is kept, nothing is written, and
//! the login fails with a message for the administrator.
//!
//! The one case this cannot tell apart is appended mail whose first bytes
//! equal, at exactly that offset, the tail (64 bytes compared) or the old
//! spool (256 bytes): a message delivered twice, byte for byte, landing
//! where its first copy was.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::copy::sample_at;
use super::journal::{HEADER_LEN, Header, Journal, sync_parent};
use super::journal_header::{BEFORE_LEN, fnv};
use super::lock::with_suffix;
use super::scan::ReadAt;
use super::temp_drop;
use super::update::apply_committed;
use crate::maildrop::error::MaildropError;
use crate::maildrop::error::fs_error;
use crate::privilege::Dropped;

/// What recovery needs.
pub struct Ctx<'a> {
    /// `SPOOL/USER`.
    pub spool_path: &'a Path,
    /// `SPOOL/.USER.pop.journal`.
    pub journal_path: &'a Path,
    /// The session lock file `SPOOL/.USER.pop`.
    pub session_file: &'a File,
    /// Its path.
    pub session_path: &'a Path,
    /// Proof that privileges were dropped to the mail user.
    pub owner: &'a Dropped,
    /// Records messages added at login as delivered (`append.rs`), for a
    /// journal that says to; `None` when this popper adds none.
    pub record: Option<&'a dyn Fn(u64) -> Result<(), MaildropError>>,
}

/// Runs both recovery steps. `spool` is the open spool, created if a
/// temporary maildrop has to be folded into a spool that does not exist.
/// Returns whether a committed update or a temporary maildrop was applied
/// (the spool changed).
pub fn recover(
    ctx: &Ctx<'_>,
    spool: &mut Option<File>,
    notes: &mut Vec<String>,
) -> Result<bool, MaildropError> {
    let finished = finish_journal(ctx, spool.as_ref(), notes)?;
    let merged = temp_drop::merge(ctx, spool, notes)?;
    Ok(finished || merged)
}

fn finish_journal(
    ctx: &Ctx<'_>,
    spool: Option<&File>,
    notes: &mut Vec<String>,
) -> Result<bool, MaildropError> {
    // A replacement journal that was being written when popper died: the
    // journal it was to replace is still whole.
    let newer = with_suffix(ctx.journal_path, ".new");
    if let Some(j) = Journal::open(&newer, ctx.owner)? {
        j.discard();
    }
    let Some(journal) = Journal::open(ctx.journal_path, ctx.owner)? else {
        return Ok(false);
    };
    let jshown = ctx.journal_path.display().to_string();
    let header = journal
        .header()
        .map_err(|e| fs_error("read", ctx.journal_path, &e))?;
    let Some(header) = header else {
        notes.push(format!(
            "removed {jshown}: an update that never reached its commit point (the spool was not changed)"
        ));
        journal.discard();
        return Ok(false);
    };
    let stored = journal
        .stored_tail()
        .map_err(|e| fs_error("stat", ctx.journal_path, &e))?;
    let identity = spool
        .map(File::metadata)
        .transpose()
        .map_err(|e| fs_error("stat", ctx.spool_path, &e))?
        .map(|m| (m.dev(), m.ino()));
    let Some(file) = spool.filter(|_| identity == Some(header.spool) && stored >= header.tail_len)
    else {
        let kept = journal
            .set_aside()
            .map_err(|e| fs_error("rename", ctx.journal_path, &e))?;
        notes.push(format!(
            "an interrupted update journal belongs to a spool that is no longer there, or is short; its mail is kept in {} for the administrator",
            kept.display()
        ));
        return Ok(false);
    };
    let size = file
        .metadata()
        .map_err(|e| fs_error("stat", ctx.spool_path, &e))?
        .len();
    let tail = TailView {
        journal: journal.file(),
    };
    if !still_ours(file, size, &header, &tail) {
        notes.push(format!(
            "{} was rewritten by another program after an update of popper was interrupted; nothing changed, left for the administrator with {jshown}",
            ctx.spool_path.display()
        ));
        return Err(MaildropError::RecoveryNeeded {
            path: ctx.spool_path.display().to_string(),
        });
    }
    let Some(appended) = appended_start(file, size, &header, &tail) else {
        notes.push(format!(
            "{} is not in a state an interrupted update of popper can leave (size {size}, journal {header:?}); left for the administrator with {jshown}",
            ctx.spool_path.display()
        ));
        return Err(MaildropError::RecoveryNeeded {
            path: ctx.spool_path.display().to_string(),
        });
    };
    let (journal, header) = match appended {
        None => (journal, header),
        Some(at) => {
            notes.push(format!(
                "{} bytes were delivered to {} after an update was interrupted; they are kept",
                size - at,
                ctx.spool_path.display()
            ));
            rejournal(ctx, file, journal, &header, at, size)?
        }
    };
    let merges = header.merges_temp_drop;
    let through = header.delivered_through;
    apply_committed(file, ctx.spool_path, journal, &header, &|| {
        if merges {
            temp_drop::empty(ctx)?;
        }
        match (through, ctx.record) {
            (Some(n), Some(record)) => record(n),
            _ => Ok(()),
        }
    })?;
    if let (Some(n), None) = (through, ctx.record) {
        notes.push(format!(
            "an interrupted update added messages recorded as number {n}, but this popper does not record them"
        ));
    }
    notes.push(format!(
        "completed an interrupted update of {} (process {})",
        ctx.spool_path.display(),
        header.pid
    ));
    Ok(true)
}

/// Reads the tail stored in a journal as if it started at offset 0.
struct TailView<'a> {
    journal: &'a File,
}

impl ReadAt for TailView<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self.journal, buf, HEADER_LEN.saturating_add(offset))
    }
}

/// Whether the spool around the journal's `from` is still what the update
/// left: the bytes before it as they were, and at it the old bytes or the
/// tail's (the copy may have started), nothing else. Rolling forward over
/// a mailbox another program rewrote after the crash would destroy it.
fn still_ours<S: ReadAt + ?Sized, T: ReadAt + ?Sized>(
    spool: &S,
    size: u64,
    h: &Header,
    tail: &T,
) -> bool {
    let start = h.from.saturating_sub(BEFORE_LEN);
    let mut before = vec![0u8; (h.from - start) as usize];
    if read_full(spool, &mut before, start).is_none() || fnv(&before) != h.before {
        return false;
    }
    // Only the first bytes that can hold nothing but old or tail bytes:
    // past the tail's end (after a shrink) may be appended mail.
    let n = (h.at.len() as u64)
        .min(h.tail_len)
        .min(size.saturating_sub(h.from)) as usize;
    let (mut now, mut new) = (vec![0u8; n], vec![0u8; n]);
    if read_full(spool, &mut now, h.from).is_none() || read_full(tail, &mut new, 0).is_none() {
        return false;
    }
    now.iter()
        .zip(&h.at)
        .zip(&new)
        .all(|((c, o), t)| c == o || c == t)
}

/// Where mail appended after the crash begins (`Some(None)`: nothing was
/// appended), or `None` when the spool's state is not one popper's update
/// leaves. See the module documentation.
pub fn appended_start<S: ReadAt + ?Sized, T: ReadAt + ?Sized>(
    spool: &S,
    size: u64,
    h: &Header,
    tail: &T,
) -> Option<Option<u64>> {
    let (old, new) = (h.old_len, h.new_len());
    if size < old.min(new) {
        return None;
    }
    if new == old {
        return Some((size > old).then_some(old));
    }
    if new > old {
        if size == old {
            return Some(None);
        }
        // Growing. Our bytes past the old end are zeros (allocated, maybe
        // only in part: ext4 keeps what it allocated before ENOSPC) or tail
        // bytes (copied); the first byte that is neither begins mail
        // appended when the spool had that size.
        let end = size.min(new);
        let mut at = old;
        let mut ours = vec![0u8; 64 << 10];
        let mut theirs = vec![0u8; 64 << 10];
        while at < end {
            let n = ((end - at) as usize).min(ours.len());
            read_full(spool, &mut theirs[..n], at)?;
            read_full(tail, &mut ours[..n], at - h.from)?;
            if let Some(i) = theirs[..n]
                .iter()
                .zip(&ours[..n])
                .position(|(s, t)| *s != 0 && s != t)
            {
                return Some(Some(message_start(spool, old, at + i as u64)));
            }
            at += n as u64;
        }
        return Some((size > new).then_some(new));
    }
    // Shrinking: was the truncation done?
    if size < old {
        return Some((size > new).then_some(new));
    }
    let mut at_new = vec![0u8; h.sample.len()];
    read_full(spool, &mut at_new, new)?;
    let truncated = at_new != h.sample;
    Some(if truncated {
        Some(new)
    } else {
        (size > old).then_some(old)
    })
}

/// Where appended mail begins, given `p`, the first of its bytes that
/// differs from the tail: mail begins with a separator (`From ` or MMDF's
/// four ^A), and when the tail begins the same way — a bulletin appended at
/// the old end always does — the first bytes match and `p` lies inside it.
/// The start is the last separator at or before `p`, not before `floor`.
fn message_start<S: ReadAt + ?Sized>(spool: &S, floor: u64, p: u64) -> u64 {
    const SEPS: [&[u8]; 2] = [b"From ", b"\x01\x01\x01\x01"];
    const BACK: u64 = 4096;
    let lo = p - p.saturating_sub(floor).min(BACK);
    let mut win = vec![0u8; (p - lo) as usize + 5];
    let mut n = 0;
    while n < win.len() {
        match spool.read_at(&mut win[n..], lo + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let win = &win[..n];
    (lo..=p)
        .rev()
        .find(|&q| {
            let rest = win.get((q - lo) as usize..).unwrap_or(&[]);
            SEPS.iter().any(|s| rest.starts_with(s))
        })
        .unwrap_or(p)
}

fn read_full<R: ReadAt + ?Sized>(src: &R, buf: &mut [u8], mut offset: u64) -> Option<()> {
    let mut got = 0;
    while got < buf.len() {
        match src.read_at(&mut buf[got..], offset) {
            Ok(0) => return None,
            Ok(n) => {
                got += n;
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(())
}

/// Saves the mail appended at `at..size` after the journal's tail in a new
/// journal, which replaces the old one atomically.
fn rejournal(
    ctx: &Ctx<'_>,
    file: &File,
    old: Journal,
    h: &Header,
    at: u64,
    size: u64,
) -> Result<(Journal, Header), MaildropError> {
    let newer = with_suffix(ctx.journal_path, ".new");
    let jerr = |e: io::Error| fs_error("write", &newer, &e);
    let j = Journal::create(&newer).map_err(jerr)?;
    let mut w = j.writer(file);
    w.copy_other(old.file(), HEADER_LEN, h.tail_len)
        .map_err(jerr)?;
    w.copy(at, size - at).map_err(jerr)?;
    let tail_len = w.finish().map_err(jerr)?;
    let header = Header {
        pid: std::process::id(),
        spool: h.spool,
        from: h.from,
        old_len: size,
        tail_len,
        sample: sample_at(file, h.from + tail_len, size)
            .map_err(|e| fs_error("read", ctx.spool_path, &e))?,
        before: h.before,
        at: h.at.clone(),
        merges_temp_drop: h.merges_temp_drop,
        delivered_through: h.delivered_through,
    };
    j.commit(&header).map_err(jerr)?;
    std::fs::rename(&newer, ctx.journal_path).map_err(jerr)?;
    sync_parent(ctx.journal_path).map_err(jerr)?;
    drop(old);
    let j = Journal::open(ctx.journal_path, ctx.owner)?
        .ok_or_else(|| fs_error("open", ctx.journal_path, &io::ErrorKind::NotFound.into()))?;
    Ok((j, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(old_len: u64, from: u64, tail_len: u64, sample: &[u8]) -> Header {
        Header {
            pid: 7,
            spool: (1, 2),
            from,
            old_len,
            tail_len,
            sample: sample.to_vec(),
            before: 0,
            at: Vec::new(),
            merges_temp_drop: false,
            delivered_through: None,
        }
    }

    #[test]
    fn mail_appended_by_an_fcntl_only_writer_after_the_truncation() {
        // Regression (review): shrink 1000 -> 500, truncated, then 300 bytes
        // appended by a writer that ignores dotlocks: size 800 lies between
        // the two sizes, and the 300 bytes must be kept.
        let old: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let h = header(1000, 100, 400, &old[500..756]);
        let tail = vec![b't'; 400];
        let mut s = old[..100].to_vec();
        s.extend_from_slice(&tail);
        s.extend_from_slice(&[b'M'; 300]);
        assert_eq!(
            appended_start(s.as_slice(), 800, &h, tail.as_slice()),
            Some(Some(500))
        );
    }

    #[test]
    fn mail_appended_where_an_append_of_ours_begins_the_same_way() {
        // Regression: messages added at the old end (bulletins) begin with
        // `From `, as does mail a delivery agent appends there after a
        // crash before the growth; the first differing byte is inside the
        // envelope, but the mail begins at the old end.
        let old = b"From a Wed Dec  2 05:53 1992\n\nold\n\n".to_vec();
        let ours = b"From MAILER-DAEMON Mon Nov 30 10:00:00 2026\nX-UIDL: 1.000\n\nbulletin\n\n";
        let h = header(old.len() as u64, old.len() as u64, ours.len() as u64, b"");
        for theirs in [
            &b"From MAILER-DAEMON Tue Dec  1 05:53:00 2026\n\nbounce\n"[..],
            &b"From bob Tue Dec  1 05:53:00 2026\n\nhi\n"[..],
            &b"\x01\x01\x01\x01\nmmdf\n\x01\x01\x01\x01\n"[..],
        ] {
            let mut s = old.clone();
            s.extend_from_slice(theirs);
            assert_eq!(
                appended_start(s.as_slice(), s.len() as u64, &h, &ours[..]),
                Some(Some(old.len() as u64)),
                "{}",
                String::from_utf8_lossy(theirs)
            );
        }
        // Part of ours written (no fallocate), theirs after it, mid-line.
        let mut s = old.clone();
        s.extend_from_slice(&ours[..50]);
        s.extend_from_slice(b"From bob Tue Dec  1 05:53:00 2026\n\nhi\n");
        assert_eq!(
            appended_start(s.as_slice(), s.len() as u64, &h, &ours[..]),
            Some(Some(old.len() as u64 + 50))
        );
    }

    #[test]
    fn growth_cases() {
        // old 100, tail 120 bytes from offset 0: new 120.
        let tail: Vec<u8> = (0..120u8).map(|i| b'a' + i % 26).collect();
        let h = header(100, 0, 120, b"");
        let mail = b"From new Wed Dec  2 05:53 1992\n\nhi\n";
        // Not grown, mail appended at the old end.
        let mut s = vec![b'o'; 100];
        s.extend_from_slice(mail);
        assert_eq!(
            appended_start(s.as_slice(), s.len() as u64, &h, tail.as_slice()),
            Some(Some(100))
        );
        // Grown (zeros), partially copied, mail appended at the new end.
        let mut s = tail[..50].to_vec();
        s.resize(120, 0);
        s.extend_from_slice(mail);
        assert_eq!(
            appended_start(s.as_slice(), s.len() as u64, &h, tail.as_slice()),
            Some(Some(120))
        );
        // Fully copied, then mail appended at the new end.
        let mut s = tail.clone();
        s.extend_from_slice(mail);
        assert_eq!(
            appended_start(s.as_slice(), s.len() as u64, &h, tail.as_slice()),
            Some(Some(120))
        );
        // Grown and nothing appended.
        assert_eq!(
            appended_start(tail.as_slice(), 120, &h, tail.as_slice()),
            Some(None)
        );
        // Not grown and nothing appended.
        let s = vec![b'o'; 100];
        assert_eq!(
            appended_start(s.as_slice(), 100, &h, tail.as_slice()),
            Some(None)
        );
        // Shorter than either size: not our doing.
        assert_eq!(appended_start(s.as_slice(), 99, &h, tail.as_slice()), None);
    }

    #[test]
    fn a_partial_growth_then_mail_appended_at_that_size() {
        // Review: ext4 keeps what fallocate allocated before ENOSPC: the
        // spool grew from 100 to 110 (zeros), then 30 bytes were appended.
        let tail: Vec<u8> = (0..120u8).map(|i| b'a' + i % 26).collect();
        let h = header(100, 0, 120, b"");
        let mut s = vec![b'o'; 100];
        s.resize(110, 0);
        s.extend_from_slice(
            b"From new Wed Dec  2 05:53 1992
",
        );
        assert_eq!(
            appended_start(s.as_slice(), s.len() as u64, &h, tail.as_slice()),
            Some(Some(110))
        );
        // Grown in part and nothing appended.
        let mut s = vec![b'o'; 100];
        s.resize(110, 0);
        assert_eq!(
            appended_start(s.as_slice(), 110, &h, tail.as_slice()),
            Some(None)
        );
    }

    #[test]
    fn shrink_cases() {
        // old 200, tail 50 bytes from offset 50: new 100; sample = old bytes at 100.
        let old: Vec<u8> = (0..200u32).map(|i| b'A' + (i % 26) as u8).collect();
        let sample = old[100..200].to_vec();
        let h = header(200, 50, 50, &sample);
        let tail = vec![b't'; 50];
        let mail = vec![b'M'; 30];
        // Not truncated (old bytes still at 100), mail appended at 200.
        let mut s = old.clone();
        s.extend_from_slice(&mail);
        assert_eq!(
            appended_start(s.as_slice(), s.len() as u64, &h, tail.as_slice()),
            Some(Some(200))
        );
        // Not truncated, nothing appended.
        assert_eq!(
            appended_start(old.as_slice(), 200, &h, tail.as_slice()),
            Some(None)
        );
        // Truncated, then 30 bytes appended at 100.
        let mut s = old[..50].to_vec();
        s.extend_from_slice(&tail);
        s.extend_from_slice(&mail);
        assert_eq!(
            appended_start(s.as_slice(), 130, &h, tail.as_slice()),
            Some(Some(100))
        );
        // Truncated, then exactly 100 bytes appended (size equals the old size).
        let mut s = old[..50].to_vec();
        s.extend_from_slice(&tail);
        s.extend_from_slice(&[b'M'; 100]);
        assert_eq!(
            appended_start(s.as_slice(), 200, &h, tail.as_slice()),
            Some(Some(100))
        );
        // Truncated, then more than 100 bytes appended.
        s.extend_from_slice(&[b'N'; 50]);
        assert_eq!(
            appended_start(s.as_slice(), 250, &h, tail.as_slice()),
            Some(Some(100))
        );
        // Truncated, nothing appended.
        assert_eq!(
            appended_start(s.as_slice(), 100, &h, tail.as_slice()),
            Some(None)
        );
        assert_eq!(appended_start(s.as_slice(), 99, &h, tail.as_slice()), None);
    }
}
