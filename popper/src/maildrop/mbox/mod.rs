//! The mbox spool maildrop: `SPOOL/USER`, in qpopper's format, shared with
//! the delivery agents that append to it.
//!
//! A session, as the mail user:
//! 1. takes the session lock `SPOOL/.USER.pop` (`lock.rs`);
//! 2. takes the spool locks, finishes an update a dead popper left behind
//!    and folds back a dead qpopper's temporary maildrop (`recover.rs`),
//!    scans the spool once (`scan.rs`), and releases the spool locks — so
//!    mail can be delivered while the client reads;
//! 3. serves RETR/TOP from the spool with `pread`, through the wire encoder;
//! 4. at the end applies its deletions and read marks (`update.rs`).
//!
//! Mail delivered during the session is appended after the length scanned
//! at login; the session never shows it and the update keeps it.

pub mod append;
pub mod cache;
pub mod envelope;
pub mod journal;
pub mod lock;
pub mod recover;
pub mod scan;
pub mod uid;
pub mod update;
pub mod writeback;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use self::append::{Arrivals, LoginMail};
use self::journal::Journal;
use self::lock::{LockConfig, SessionLock, SpoolLock};
use self::scan::{Scan, ScanError};
use super::{CommitStats, Maildrop, Output, SendError};
use crate::privilege::Dropped;
use crate::protocol::error::MaildropError;
use crate::protocol::index::{Index, MsgIdx, MsgMeta};
use crate::protocol::session::Marks;
use crate::protocol::wire::Encoder;

/// A file-system error as the session reports it: disk full and quota get
/// their own `[SYS/TEMP]` text, everything else names the operation.
pub fn fs_error(op: &str, path: &Path, e: &io::Error) -> MaildropError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => MaildropError::NoSpace {
            path: path.display().to_string(),
        },
        errno => MaildropError::Io {
            op: op.to_string(),
            path: path.display().to_string(),
            errno: errno.unwrap_or(0),
        },
    }
}

/// How the mbox maildrop is set up.
#[derive(Debug, Clone)]
pub struct MboxOptions {
    /// Where spools live (`spool-dir`).
    pub spool_dir: PathBuf,
    /// Spool lock settings.
    pub locks: LockConfig,
    /// Write `Status:`/`X-UIDL:` headers back (`update-status`).
    pub update_status: bool,
    /// Keep the login scan in `SPOOL/.USER.pop.index` for the next login
    /// (`scan-index`, `cache.rs`).
    pub scan_index: bool,
}

/// One user's mbox for the length of a session.
#[derive(Debug)]
pub struct MboxDrop {
    spool_path: PathBuf,
    journal_path: PathBuf,
    file: Option<File>,
    scan: Scan,
    /// The scan came from the index, not from reading the spool.
    scan_from_index: bool,
    opts: MboxOptions,
    notes: Vec<String>,
    /// Held until the maildrop is dropped; its `Drop` removes the file.
    _session: SessionLock,
}

/// Bytes read from the spool per `pread` while sending a message.
const SEND_CHUNK: usize = 64 << 10;

impl MboxDrop {
    /// Opens `user`'s mailbox. Takes the [`Dropped`] token: a mailbox is
    /// only ever opened after privileges are dropped to its owner. `mail`
    /// adds messages at login (bulletins, `append.rs`).
    pub fn open(
        owner: &Dropped,
        user: &str,
        opts: MboxOptions,
        mail: Option<&dyn LoginMail>,
    ) -> Result<MboxDrop, MaildropError> {
        let uid = owner.uid();
        let session = SessionLock::acquire(&opts.spool_dir, user, uid)?;
        let spool_path = opts.spool_dir.join(user);
        let journal_path = Journal::path_for(session.path());
        let index = opts.scan_index.then(|| cache::path_for(session.path()));
        let index = index.as_deref().map(|p| (p, uid));
        let mut file = lock::open_spool(&spool_path, uid)?;
        let mut notes = Vec::new();
        let temp_drop = session
            .file()
            .metadata()
            .map_err(|e| fs_error("stat", session.path(), &e))?
            .len()
            > 0;
        let journal = std::fs::symlink_metadata(&journal_path).is_ok()
            || std::fs::symlink_metadata(lock::with_suffix(&journal_path, ".new")).is_ok();
        let recovering = temp_drop || journal;
        // With nothing to recover, what is to be added can be asked now, so
        // that a spool is made only when there is something to put in it.
        let mut due = None;
        if !recovering && let Some(m) = mail {
            due = m.arrivals(&mut notes);
        }
        if file.is_none() && (temp_drop || due.is_some()) {
            // Mail a dead qpopper left behind goes back into a spool, and
            // bulletins go into one: make it now, so it is locked like any
            // spool before it is written.
            file = Some(lock::create_spool(&spool_path, uid)?);
        }
        let scan = if file.is_some() || recovering {
            let mut spool_lock = SpoolLock::acquire(&spool_path, file.as_ref(), &opts.locks)?;
            notes.append(&mut spool_lock.notes);
            let unrecorded = std::cell::Cell::new(None);
            let record = |n: u64| {
                match mail {
                Some(m) => m.record(n).inspect_err(|e| {
                    unrecorded.set(Some(format!(
                        "messages added at login are in the spool but could not be recorded as delivered ({e}); the next login records them"
                    )));
                }),
                None => Ok(()),
            }
            };
            let result = (|| {
                if recovering {
                    let ctx = recover::Ctx {
                        spool_path: &spool_path,
                        journal_path: &journal_path,
                        session_file: session.file(),
                        session_path: session.path(),
                        uid,
                        record: mail.is_some().then_some(&record as _),
                    };
                    recover::recover(&ctx, &mut file, &mut notes)?;
                    if let Some(m) = mail {
                        due = m.arrivals(&mut notes);
                    }
                }
                if let Some(a) = due.take() {
                    add_at_login(
                        file.as_ref(),
                        &spool_path,
                        &journal_path,
                        a,
                        &record,
                        &mut notes,
                    )?;
                }
                scan_spool(file.as_ref(), &spool_path, index)
            })();
            notes.extend(unrecorded.take());
            spool_lock.release(&mut notes);
            result?
        } else {
            scan_spool(None, &spool_path, None)?
        };
        let (scan, scan_from_index) = scan;
        Ok(MboxDrop {
            spool_path,
            journal_path,
            file,
            scan,
            scan_from_index,
            opts,
            notes,
            _session: session,
        })
    }

    /// Log lines gathered since the last call (stale locks broken,
    /// recoveries done).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// The spool's path.
    pub fn spool_path(&self) -> &Path {
        &self.spool_path
    }

    /// The scan made at login.
    pub fn scan(&self) -> &Scan {
        &self.scan
    }

    /// True when the login scan was taken from the index (`cache.rs`)
    /// rather than made by reading the spool.
    pub fn scan_from_index(&self) -> bool {
        self.scan_from_index
    }
}

/// Appends what a [`LoginMail`] source supplied. A failure before the
/// journal's commit point leaves the spool as it was and the login goes on
/// (the source is asked again next time); after it, the login fails like
/// an interrupted update and the next login finishes the append.
fn add_at_login(
    file: Option<&File>,
    spool_path: &Path,
    journal_path: &Path,
    a: Arrivals,
    record: &dyn Fn(u64) -> Result<(), MaildropError>,
    notes: &mut Vec<String>,
) -> Result<(), MaildropError> {
    let shown = spool_path.display();
    let Some(f) = file else {
        notes.push(format!(
            "{shown} could not be made; {} wait for the next login",
            a.what
        ));
        return Ok(());
    };
    let (format, end) = append::spool_shape(f, spool_path)?;
    let bytes = append::frame(&format, &end, &a.msgs);
    match append::append(f, spool_path, journal_path, &bytes, a.through, record) {
        Ok(()) => {
            notes.push(format!(
                "added {} to {shown} ({} bytes)",
                a.what,
                bytes.len()
            ));
            Ok(())
        }
        Err(e @ MaildropError::Interrupted { .. }) => Err(e),
        Err(e) => {
            notes.push(format!(
                "could not add {} to {shown}: {e}; tried again at the next login",
                a.what
            ));
            Ok(())
        }
    }
}

/// The spool's scan: from its index when `index` (the index's path and the
/// user's uid) names a valid one for the spool as it is now, else by
/// reading the spool — and then the index is rewritten for next time.
/// Returns whether the index was used. Runs with the spool locked.
fn scan_spool(
    file: Option<&File>,
    path: &Path,
    index: Option<(&Path, u32)>,
) -> Result<(Scan, bool), MaildropError> {
    let Some(f) = file else {
        return Ok((Scan::empty(), false));
    };
    let meta = f.metadata().map_err(|e| fs_error("stat", path, &e))?;
    let stamp = cache::Stamp::of(&meta);
    let index = match index {
        Some((p, _)) if meta.len() < cache::MIN_SPOOL => {
            cache::remove(p);
            None
        }
        other => other,
    };
    if let Some((p, uid)) = index
        && let Some(s) = cache::load(p, uid, f, &stamp)
    {
        return Ok((s, true));
    }
    let scan = scan::scan(f, meta.len()).map_err(|e| match e {
        ScanError::BadEnvelope => MaildropError::BadEnvelope {
            path: path.display().to_string(),
        },
        ScanError::Io(e) => fs_error("read", path, &e),
    })?;
    // Stored only if nothing wrote to the spool while it was read (a
    // writer that ignores the locks); a failure to store costs only the
    // next login a scan.
    if let Some((p, _)) = index
        && f.metadata().is_ok_and(|m| cache::Stamp::of(&m) == stamp)
    {
        let _ = cache::store(p, &scan, &stamp, std::time::SystemTime::now());
    }
    Ok((scan, false))
}

impl Maildrop for MboxDrop {
    fn metas(&self) -> Vec<MsgMeta> {
        self.scan.msgs.iter().map(|m| m.meta.clone()).collect()
    }

    fn send(
        &mut self,
        msg: MsgIdx,
        uid: &[u8],
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError> {
        let changed = || {
            SendError::Storage(MaildropError::Changed {
                path: self.spool_path.display().to_string(),
            })
        };
        let (Some(file), Some(m)) = (self.file.as_ref(), self.scan.msgs.get(msg.0)) else {
            return Err(changed());
        };
        writeback::check_envelope(file, m).map_err(|_| changed())?;
        let read_err = |e: io::Error| SendError::Storage(fs_error("read", &self.spool_path, &e));
        let mut enc = Encoder::new(uid, body_lines);
        let mut buf = vec![0u8; SEND_CHUNK];
        let mut at = m.content;
        while at < m.end && !enc.is_done() {
            let want = (m.end - at).min(SEND_CHUNK as u64) as usize;
            let n = match std::os::unix::fs::FileExt::read_at(file, &mut buf[..want], at) {
                Ok(0) => return Err(changed()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            enc.feed(&buf[..n], out.buffer());
            out.drain().map_err(SendError::Client)?;
            at += n as u64;
        }
        enc.finish(out.buffer());
        Ok(enc.sent())
    }

    fn commit(&mut self, index: &Index, marks: &Marks) -> Result<CommitStats, MaildropError> {
        let Some(file) = self.file.as_ref() else {
            return Ok(CommitStats::default());
        };
        let target = update::Target {
            spool_path: &self.spool_path,
            file,
            journal_path: &self.journal_path,
            locks: &self.opts.locks,
            update_status: self.opts.update_status,
        };
        update::update(&target, &self.scan, index, marks, &mut self.notes)
    }
}
