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
pub mod copy;
pub mod crlf;
pub mod envelope;
pub mod heads;
pub mod journal;
pub mod journal_header;
pub mod lines;
pub mod lock;
pub mod memory;
pub mod recover;
pub mod render;
pub mod scan;
pub mod temp_drop;
pub mod uid;
pub mod update;
pub mod writeback;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use pop3_core::error::StorageError;
use pop3_core::index::{Entry, MsgIdx};
use pop3_core::marks::Marks;

use self::cache::Source;
use self::journal::Journal;
use self::lock::{LockConfig, SessionLock, SpoolLock};
use self::scan::{Scan, ScanError};
use super::{CommitStats, Maildrop, Note, Open, Output, SendError};
use crate::limits::SEND_CHUNK;
use crate::maildrop::error::{MaildropError, fs_error};
use crate::maildrop::login_mail::{Arrivals, LoginMail};
use crate::privilege::Dropped;

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
    /// The login's scan, its UIDs made unique (the ones the session shows
    /// and the update writes back).
    scan: Scan,
    /// Where the scan came from.
    source: Source,
    opts: MboxOptions,
    /// Log lines: stale locks broken, recoveries done.
    notes: Vec<String>,
    /// Log lines for `-d`: where the login's listing came from.
    detail: Vec<String>,
    /// Held until the session commits or abandons the maildrop; its
    /// `Drop` removes the file.
    session: Option<SessionLock>,
}

/// What [`MboxDrop::open`] takes.
pub struct MboxArgs<'a> {
    /// Proof that privileges were dropped to the mailbox's owner.
    pub owner: &'a Dropped,
    /// The login name (the spool is `SPOOL/USER`).
    pub user: &'a str,
    /// Settings.
    pub opts: MboxOptions,
    /// Mail to add at login (bulletins), if any.
    pub mail: Option<&'a dyn LoginMail>,
}

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
        let session = SessionLock::acquire(&opts.spool_dir, user, owner)?;
        let spool_path = opts.spool_dir.join(user);
        let journal_path = Journal::path_for(session.path());
        let index = opts.scan_index.then(|| cache::path_for(session.path()));
        let index = index.as_deref().map(|p| (p, owner));
        let mut file = lock::open_spool(&spool_path, owner)?;
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
            file = Some(lock::create_spool(&spool_path, owner)?);
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
                        owner,
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
        let (scan, source) = scan;
        let detail = vec![format!(
            "{}, {}",
            super::messages(scan.msgs.len()),
            match source {
                Source::Scan => "the spool scanned".to_string(),
                Source::Index => "the scan taken from the index".to_string(),
                Source::Tail { kept, bytes } =>
                    format!("the first {kept} from the index, {bytes} bytes after them scanned"),
            }
        )];
        Ok(MboxDrop {
            spool_path,
            journal_path,
            file,
            scan,
            source,
            opts,
            notes,
            detail,
            session: Some(session),
        })
    }

    /// Releases the session lock: the session is over for this maildrop.
    fn close(&mut self) {
        self.session = None;
    }

    /// The spool's path.
    pub fn spool_path(&self) -> &Path {
        &self.spool_path
    }

    /// The scan made at login.
    pub fn scan(&self) -> &Scan {
        &self.scan
    }

    /// Where the login scan came from: the index (`cache.rs`), the spool,
    /// or both.
    pub fn source(&self) -> Source {
        self.source
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
    index: Option<(&Path, &Dropped)>,
) -> Result<(Scan, Source), MaildropError> {
    let Some(f) = file else {
        return Ok((Scan::empty(), Source::Scan));
    };
    let meta = f.metadata().map_err(|e| fs_error("stat", path, &e))?;
    let stamp = cache::Stamp::of(&meta);
    let len = meta.len();
    let index = match index {
        Some((p, _)) if len < cache::MIN_SPOOL => {
            cache::remove(p);
            None
        }
        other => other,
    };
    let scan_error = |e| match e {
        ScanError::BadEnvelope => MaildropError::BadEnvelope {
            path: path.display().to_string(),
        },
        ScanError::Io(e) => fs_error("read", path, &e),
    };
    let scanned = match index {
        None => scan::scan(f, len).map(|s| (s, Source::Scan)),
        Some((p, owner)) => cache::scan(f, &stamp, p, owner, crate::clock::system_time()),
    };
    scanned.map_err(scan_error)
}

/// The index entries of a scan: its UIDs, and sizes with the UID's
/// inserted line (`render.rs`).
pub fn entries(scan: &Scan) -> Vec<Entry> {
    scan.msgs
        .iter()
        .map(|m| Entry {
            size: render::wire_size(m.meta.size_without_uidl, &m.meta.uid),
            uid: m.meta.uid.clone(),
            seen: m.meta.seen,
        })
        .collect()
}

impl Maildrop for MboxDrop {
    fn entries(&self) -> Vec<Entry> {
        entries(&self.scan)
    }

    fn send(
        &mut self,
        msg: MsgIdx,
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError> {
        let changed = || {
            SendError::Storage(
                MaildropError::Changed {
                    path: self.spool_path.display().to_string(),
                }
                .into(),
            )
        };
        let (Some(file), Some(m)) = (self.file.as_ref(), self.scan.msgs.get(msg.0)) else {
            return Err(changed());
        };
        writeback::check_envelope(file, m).map_err(|_| changed())?;
        let fail = |e: Option<io::Error>| match e {
            Some(e) => SendError::Storage(fs_error("read", &self.spool_path, &e).into()),
            None => changed(),
        };
        render::send_from(
            file,
            (m.content, m.end),
            &m.meta.uid,
            body_lines,
            SEND_CHUNK,
            out,
            &fail,
        )
    }

    fn commit(&mut self, marks: &Marks) -> Result<CommitStats, StorageError> {
        let result = match self.file.as_ref() {
            None => Ok(CommitStats::default()),
            Some(file) => {
                let target = update::Target {
                    spool_path: &self.spool_path,
                    file,
                    journal_path: &self.journal_path,
                    locks: &self.opts.locks,
                    update_status: self.opts.update_status,
                };
                update::update(&target, &self.scan, marks, &mut self.notes)
            }
        };
        self.close();
        result.map_err(StorageError::from)
    }

    fn abandon(&mut self) {
        self.close();
    }

    fn take_notes(&mut self) -> Vec<Note> {
        crate::maildrop::drain_notes(&mut self.detail, &mut self.notes)
    }
}

impl Open for MboxDrop {
    type Args<'a> = MboxArgs<'a>;

    fn open(a: MboxArgs<'_>) -> Result<MboxDrop, StorageError> {
        MboxDrop::open(a.owner, a.user, a.opts, a.mail).map_err(StorageError::from)
    }
}
