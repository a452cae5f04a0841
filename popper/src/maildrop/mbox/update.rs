//! Applying a session's deletions and read marks to the mbox spool: the
//! smallest correct change, made so that no message is ever lost or
//! duplicated, whenever the process dies.
//!
//! # What is written
//!
//! Let *k* be the first message the session changed: deleted, or (with
//! `update-status`) retrieved with RETR while not yet marked read.
//!
//! * No such message: nothing is written and no lock is taken. A session
//!   that only reads a mailbox costs no writes at all (qpopper copied the
//!   whole spool twice per session).
//! * Message *k* and every later one deleted, and no mail arrived during
//!   the session: one `ftruncate` to the start of *k*. Deleting everything
//!   is O(1) in the size of the mailbox.
//! * Otherwise the spool is rewritten from the start *P* of message *k* on.
//!   The new tail *T* is every kept message from *k* on, written back as
//!   qpopper writes it (`writeback.rs`), then the mail delivered during the
//!   session, byte for byte. Bytes before *P* are never written.
//!
//! # The protocol
//!
//! Every step runs with the spool locks held (dotlock, fcntl, flock, in
//! that order; `lock.rs`). The journal is `SPOOL/.USER.pop.journal`
//! (`journal.rs`).
//!
//! | step | on disk if popper dies right after it | what the next login does |
//! |---|---|---|
//! | 1. lock; check the spool is the file scanned at login, not shorter, with every envelope from *k* on where the scan saw it (else `-ERR [SYS/TEMP]`, nothing written) | unchanged | nothing |
//! | 2. create the journal; write *T* into it | spool unchanged; journal without header | deletes the journal |
//! | 3. fsync the journal; write its header; fsync it; fsync the directory — **the commit point** | spool unchanged; journal complete | rolls forward: steps 4–7 |
//! | 4. if the spool grows: `fallocate` it to its new size | spool longer, tail not yet written | rolls forward |
//! | 5. copy *T* into the spool at *P* | spool partly rewritten | rolls forward |
//! | 6. if the spool shrinks: `ftruncate` it; fsync the spool | spool final | rolls forward (rewrites the same bytes) |
//! | 7. empty the journal; fsync it; unlink it | done | nothing (an empty journal is no journal) |
//! | 8. release the locks, the dotlock last | done | nothing |
//!
//! The truncate-only case is step 1, `ftruncate`, fsync: one atomic change.
//!
//! Rolling forward is safe to repeat because it only ever writes final
//! bytes: the tail, at the offset and size the journal records. What a
//! delivery agent appended to a spool whose update was cut short (after
//! breaking the dead popper's dotlock as stale) is found and kept by
//! `recover.rs`.
//!
//! # Failures
//!
//! * An error in steps 2–3 (disk full, quota): the journal is removed, the
//!   spool was never touched: `-ERR [SYS/TEMP]`, nothing lost.
//! * An error in step 4 (no space to grow): the spool's size is put back,
//!   the journal cleared: spool as it was, `-ERR [SYS/TEMP]`.
//! * An error in steps 5–6 (the blocks were allocated in step 4, so this is
//!   an I/O error, or a copy-on-write filesystem): retried; if it persists
//!   the journal stays for the next login to finish (`-ERR [SYS/TEMP]`).
//!
//! In every case the dotlock is removed at the end (DECISIONS.md): mail a
//! delivery agent appends to a half-written spool meanwhile is found and
//! kept by the recovery.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::copy::{marks_at, sample_at};
use super::journal::{ApplyError, Header, Journal};
use super::lock::{LockConfig, SpoolLock};
use super::scan::Scan;
use super::writeback::{WriteBackError, check_envelope, write_message};
use crate::maildrop::CommitStats;
use crate::maildrop::error::MaildropError;
use crate::maildrop::error::fs_error;
use pop3_core::index::MsgIdx;
use pop3_core::marks::Marks;

/// Everything an update needs to know about the spool.
#[derive(Debug)]
pub struct Target<'a> {
    /// `SPOOL/USER`.
    pub spool_path: &'a Path,
    /// The spool as opened at login.
    pub file: &'a File,
    /// `SPOOL/.USER.pop.journal`.
    pub journal_path: &'a Path,
    /// Lock settings.
    pub locks: &'a LockConfig,
    /// Write `Status:`/`X-UIDL:` headers (`update-status`).
    pub update_status: bool,
}

/// How many times steps 5–6 are tried before the journal is left for the
/// next login.
const APPLY_TRIES: u32 = 3;

/// Applies the session's marks. `notes` collects lines for the log.
pub fn update(
    t: &Target<'_>,
    scan: &Scan,
    marks: &Marks,
    notes: &mut Vec<String>,
) -> Result<CommitStats, MaildropError> {
    let n = scan.msgs.len();
    let changes = |i: usize| {
        marks.is_deleted(MsgIdx(i))
            || (t.update_status && marks.is_retrieved(MsgIdx(i)) && !scan.msgs[i].meta.seen)
    };
    let Some(k) = (0..n).find(|&i| changes(i)) else {
        return Ok(CommitStats::default());
    };
    let mut lock = SpoolLock::acquire(t.spool_path, Some(t.file), t.locks)?;
    notes.append(&mut lock.notes);
    let result = locked_update(t, scan, marks, k, &lock);
    lock.release(notes);
    result
}

fn locked_update(
    t: &Target<'_>,
    scan: &Scan,
    marks: &Marks,
    k: usize,
    lock: &SpoolLock,
) -> Result<CommitStats, MaildropError> {
    let path = t.spool_path;
    let clean = |op: &str, e: io::Error| fs_error(op, path, &e);
    let md = t.file.metadata().map_err(|e| clean("stat", e))?;
    let same_file = std::fs::symlink_metadata(path)
        .is_ok_and(|now| now.ino() == md.ino() && now.dev() == md.dev());
    let cur_len = md.len();
    if !same_file || cur_len < scan.len {
        return Err(MaildropError::Changed {
            path: path.display().to_string(),
        });
    }
    let msgs = &scan.msgs;
    let from = msgs[k].start;
    let all_deleted = (k..msgs.len()).all(|i| marks.is_deleted(MsgIdx(i)));
    if all_deleted && cur_len == scan.len {
        // The spool is as long as at login and the first and last of the
        // messages to go are where the scan saw them: checking every one
        // would cost a read per message (20 000 seeks on a cold cache)
        // for a change that only ever removes bytes.
        let first_last = [&msgs[k], &msgs[msgs.len() - 1]];
        for m in first_last {
            check_envelope(t.file, m).map_err(|e| writeback_error(path, t.journal_path, e))?;
        }
        t.file.set_len(from).map_err(|e| clean("ftruncate", e))?;
        t.file.sync_all().map_err(|e| clean("fsync", e))?;
        return Ok(CommitStats { bytes_written: 0 });
    }
    let journal =
        Journal::create(t.journal_path).map_err(|e| fs_error("create", t.journal_path, &e))?;
    let header = match write_tail(t, scan, marks, k, &journal, (md.dev(), md.ino()), cur_len) {
        Ok(h) => h,
        Err(e) => {
            journal.discard();
            return Err(e);
        }
    };
    if let Err(e) = journal.commit(&header) {
        let jpath = journal.path().to_path_buf();
        journal.discard();
        return Err(fs_error("write", &jpath, &e));
    }
    // Writing the journal may have taken a while: keep the dotlock fresh.
    lock.touch();
    apply_committed(t.file, path, journal, &header, &|| Ok(()))?;
    Ok(CommitStats {
        bytes_written: header.tail_len,
    })
}

/// Steps 4–7 for a committed journal: shared by the update and by
/// recovery at login. `on_applied` runs after the spool is final and
/// before the journal is cleared, so what it does is redone by the next
/// login if popper dies before the clear (recovery uses it to empty a
/// merged qpopper temporary maildrop).
pub fn apply_committed(
    file: &File,
    path: &Path,
    journal: Journal,
    header: &Header,
    on_applied: &dyn Fn() -> Result<(), MaildropError>,
) -> Result<(), MaildropError> {
    // After the spool is final, an error is reported as an interrupted
    // update (the journal stays; the next login finishes), never as a
    // mailbox "left unchanged".
    let interrupted = |e: Option<&io::Error>| MaildropError::Interrupted {
        path: path.display().to_string(),
        errno: e.and_then(io::Error::raw_os_error).unwrap_or(0),
    };
    let mut last = None;
    for attempt in 0..APPLY_TRIES {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        match journal.apply(file, header) {
            Ok(()) => {
                on_applied().map_err(|_| interrupted(None))?;
                return journal.clear().map_err(|e| interrupted(Some(&e)));
            }
            Err(ApplyError::Before(e)) => {
                // The spool is as it was: the update did not happen.
                let jpath = journal.path().to_path_buf();
                return Err(match journal.clear() {
                    Ok(()) => fs_error("grow", path, &e),
                    Err(c) => fs_error("clear", &jpath, &c),
                });
            }
            Err(ApplyError::After(e)) => last = Some(e),
        }
    }
    Err(interrupted(last.as_ref()))
}

/// Step 2: the new tail into the journal; returns its header.
fn write_tail(
    t: &Target<'_>,
    scan: &Scan,
    marks: &Marks,
    k: usize,
    journal: &Journal,
    spool: (u64, u64),
    cur_len: u64,
) -> Result<Header, MaildropError> {
    let path = t.spool_path;
    let mut w = journal.writer(t.file);
    let jerr = |e: io::Error| fs_error("write", t.journal_path, &e);
    for (i, m) in scan.msgs.iter().enumerate().skip(k) {
        let idx = MsgIdx(i);
        if marks.is_deleted(idx) {
            check_envelope(t.file, m).map_err(|e| writeback_error(path, t.journal_path, e))?;
            continue;
        }
        if !t.update_status {
            check_envelope(t.file, m).map_err(|e| writeback_error(path, t.journal_path, e))?;
            w.copy(m.start, m.next - m.start).map_err(jerr)?;
            continue;
        }
        write_message(t.file, m, &m.meta.uid, marks.is_retrieved(idx), &mut w)
            .map_err(|e| writeback_error(path, t.journal_path, e))?;
    }
    // Mail delivered during the session, byte for byte.
    w.copy(scan.len, cur_len - scan.len).map_err(jerr)?;
    let tail_len = w.finish().map_err(jerr)?;
    let from = scan.msgs[k].start;
    let new_len = from + tail_len;
    let sample = sample_at(t.file, new_len, cur_len).map_err(|e| fs_error("read", path, &e))?;
    let (before, at) = marks_at(t.file, from).map_err(|e| fs_error("read", path, &e))?;
    Ok(Header {
        pid: std::process::id(),
        spool,
        from,
        old_len: cur_len,
        tail_len,
        sample,
        before,
        at,
        merges_temp_drop: false,
        delivered_through: None,
    })
}

/// A write-back failure as the session reports it: the spool moved under
/// us, a read of the spool failed, or a write to the journal failed.
fn writeback_error(spool: &Path, journal: &Path, e: WriteBackError) -> MaildropError {
    match e {
        WriteBackError::Moved => MaildropError::Changed {
            path: spool.display().to_string(),
        },
        WriteBackError::Io(e)
            if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) =>
        {
            fs_error("write", journal, &e)
        }
        WriteBackError::Io(e) => fs_error("copy", spool, &e),
    }
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
