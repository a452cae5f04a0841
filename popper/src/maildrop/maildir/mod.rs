//! The Maildir maildrop: `~/Maildir` (or any Maildir the caller names),
//! read and updated as qmail-pop3d and Dovecot do, with qmail-pop3d's
//! UIDs, so its users' clients download nothing twice after the switch.
//!
//! A session, as the mail user (the [`Dropped`] token proves it):
//! 1. checks the Maildir's directories (`list.rs`) and takes the session
//!    lock `Maildir/.popper.lock` (`lock.rs`: a second session gets
//!    `[IN-USE]`);
//! 2. delivers mail due at login (bulletins, `deliver.rs`), exactly once;
//! 3. lists `new/` and `cur/` in delivery order (`list.rs`): UID = the
//!    name up to its first `:` (COMPAT qmail-pop3d), seen = `S` among the
//!    `:2,` flags (`flags.rs`), exact wire sizes counted (`size.rs`) — or
//!    takes the whole listing, or the sizes, from the listing cache
//!    `Maildir/.popper-sizes` (`cache.rs`);
//! 4. streams RETR/TOP from the files (`send.rs`), finding a file again if
//!    another reader moved it;
//! 5. at QUIT unlinks the deleted messages and renames the read ones
//!    (`update.rs`), then releases the lock; an abandoned session only
//!    releases it.
//!
//! Crash safety: popper never rewrites a message. Every change it makes is
//! one `rename` (within the Maildir, one file system) or one `unlink`, each
//! atomic, none depending on another: a crash at any point leaves every
//! message exactly once — at its old name or its new one, deleted or not.
//! A bulletin is written under `tmp/` and appears in `new/` by one rename,
//! so it is in the Maildir whole or not at all; its name says which
//! delivery it is, so a crash before the delivery is recorded cannot
//! deliver it twice (`deliver.rs`). The size cache and the lock file are
//! popper's own: losing either costs nothing but a recount.
//!
//! Messages delivered during the session are not in the listing and are
//! never touched. Every per-message step is relative to the open `new/`
//! and `cur/` (`ops::Dirs`). Memory is O(messages): one [`Listed`] each
//! (a name, an inode, two sizes, a time); the session's entries are made
//! from them once, for the core; a message's bytes are never held, only
//! [`SEND_CHUNK`] of them at a time.
//!
//! DEVIATIONs (each explained where it is made): exact CRLF sizes rather
//! than `st_size` (`size.rs`); a name that is not a valid unique-id gets
//! its MD5 as UID (`list.rs`); entries that are not regular files are
//! skipped (`list.rs`); a session lock (`lock.rs`); failed update steps do
//! not stop the others (`update.rs`); `tmp/` is not cleaned (qmail-pop3d
//! removes files older than 36 hours there: that is the delivery agent's
//! business, and popper does not delete mail it did not list).
//!
//! [`SEND_CHUNK`]: crate::limits::SEND_CHUNK

pub mod cache;
pub mod deliver;
pub mod flags;
pub mod list;
pub mod listing;
pub mod lock;
pub mod ops;
pub mod send;
pub mod size;
pub mod update;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use pop3_core::error::StorageError;
use pop3_core::index::{Entry, MsgIdx, make_unique};
use pop3_core::marks::Marks;

use self::cache::Stored;
use self::listing::{Listing, Rec};
use self::lock::SessionLock;
use self::ops::Dirs;
use super::{CommitStats, Maildrop, Note, Open, Output, SendError};
use crate::limits::SEND_CHUNK;
use crate::maildrop::error::{MaildropError, fs_error};
use crate::maildrop::login_mail::LoginMail;
use crate::maildrop::stamp::Stamp;
use crate::privilege::Dropped;

/// How the Maildir maildrop is set up.
#[derive(Debug, Clone)]
pub struct MaildirOptions {
    /// The Maildir directory: absolute, already resolved by the caller
    /// (`~/Maildir` of the user, or the configured one).
    pub path: PathBuf,
    /// Mark retrieved messages seen (`update-status`): `new/X` →
    /// `cur/X:2,S`, `S` added in `cur/`. Off: qmail-pop3d's update.
    pub update_status: bool,
    /// Keep the exact sizes in `Maildir/.popper-sizes` for the next login
    /// (`size.rs`; for the server, what `scan-index` is for the mbox).
    pub size_index: bool,
}

/// What [`MaildirDrop::open`] takes (for [`Open`]).
pub struct MaildirArgs<'a> {
    /// Proof that privileges were dropped to the Maildir's owner.
    pub owner: &'a Dropped,
    /// Settings.
    pub opts: MaildirOptions,
    /// Mail to add at login (bulletins), if any.
    pub mail: Option<&'a dyn LoginMail>,
}

/// One user's Maildir for the length of a session.
#[derive(Debug)]
pub struct MaildirDrop {
    opts: MaildirOptions,
    /// `new/` and `cur/`, open for the session.
    dirs: Dirs,
    /// Their stamps before they were listed, and whether those were
    /// settled (no later change can leave them equal): then an unchanged
    /// stamp at QUIT means every listed name is still the file listed.
    stamps: [Stamp; 2],
    settled: bool,
    /// The files listed at login, in session order, sized (names updated
    /// when a send finds one moved).
    files: Listing,
    /// Sizes taken from the listing cache at login (the rest were counted).
    sizes_cached: usize,
    /// The whole listing came from the cache (no directory read).
    listed_from_cache: bool,
    /// Log lines: skipped entries, bulletins, failures.
    notes: Vec<String>,
    /// Log lines for `-d`: where the listing's sizes came from.
    detail: Vec<String>,
    /// Held until the session commits or abandons the maildrop.
    session: Option<SessionLock>,
}

impl MaildirDrop {
    /// Opens the Maildir `opts.path`. Takes the [`Dropped`] token: a
    /// maildrop is only ever opened after privileges are dropped to its
    /// owner. `mail` adds messages at login (bulletins, `deliver.rs`).
    pub fn open(
        owner: &Dropped,
        opts: MaildirOptions,
        mail: Option<&dyn LoginMail>,
    ) -> Result<MaildirDrop, MaildropError> {
        Self::open_at(owner, opts, mail, SystemTime::now)
    }

    /// [`MaildirDrop::open`] with the clock the racy rule reads (tests
    /// pass a later one to see directories they just made as settled).
    fn open_at(
        owner: &Dropped,
        opts: MaildirOptions,
        mail: Option<&dyn LoginMail>,
        clock: fn() -> SystemTime,
    ) -> Result<MaildirDrop, MaildropError> {
        let root = opts.path.clone();
        let tmp = list::check(&root, owner)?;
        let session = SessionLock::acquire(&root, owner)?;
        let mut notes = Vec::new();
        if let Some(m) = mail {
            deliver::deliver(&root, tmp, m, &mut notes)?;
        }
        let dirs = Dirs::open(&root).map_err(|e| fs_error("open", &root, &e))?;
        // Read before the listing: a change made while listing moves them
        // past what is recorded, so the next login lists again.
        let stamps = dirs.stamps().map_err(|e| fs_error("stat", &root, &e))?;
        let now = clock();
        let settled = stamps.iter().all(|s| s.settled(now));
        let cache_path = root.join(cache::NAME);
        let stored = if opts.size_index {
            cache::load(&cache_path, owner)
        } else {
            None
        };
        let mut detail = Vec::new();
        let (files, sizes_cached, listed_from_cache) = match stored {
            Some(s) if s.whole && s.stamps == stamps => {
                detail.push(format!(
                    "{}, listed from the listing cache (new/ and cur/ unchanged)",
                    super::messages(s.files.len())
                ));
                let n = s.files.len();
                (s.files, n, true)
            }
            stored => {
                let (mut files, clean) = list::list(&dirs, &root, &mut notes)?;
                let sized = sizes(&dirs, &root, &mut files, stored.as_ref())?;
                detail.push(format!(
                    "{}, {} sizes from the size cache, {} counted",
                    super::messages(files.len()),
                    sized.cached,
                    sized.counted
                ));
                if sized.vanished > 0 {
                    detail.push(format!(
                        "{} messages vanished while {} was listed",
                        sized.vanished,
                        root.display()
                    ));
                }
                let whole = clean && settled && sized.cut.is_empty();
                let unchanged = stored.as_ref().is_some_and(|s| {
                    s.stamps == stamps
                        && s.whole == whole
                        && sized.counted == 0
                        && s.files.len() == files.len()
                });
                drop(stored);
                if opts.size_index && !unchanged {
                    let keep = |i: usize| sized.cut.binary_search(&i).is_err();
                    if let Err(e) = cache::store(&cache_path, &stamps, whole, &files, keep) {
                        notes.push(format!(
                            "could not write the size cache {}: {e}",
                            cache_path.display()
                        ));
                    }
                }
                (files, sized.cached, false)
            }
        };
        Ok(MaildirDrop {
            opts,
            dirs,
            stamps,
            settled,
            files,
            sizes_cached,
            listed_from_cache,
            notes,
            detail,
            session: Some(session),
        })
    }

    /// The Maildir's path.
    pub fn path(&self) -> &Path {
        &self.opts.path
    }

    /// How many sizes came from the listing cache rather than from reading
    /// the messages.
    pub fn sizes_cached(&self) -> usize {
        self.sizes_cached
    }

    /// True when the whole listing came from the cache.
    pub fn listed_from_cache(&self) -> bool {
        self.listed_from_cache
    }

    /// Releases the session lock: the session is over for this maildrop.
    fn close(&mut self) {
        self.session = None;
    }
}

/// Where the sizes of a listing came from.
struct Sized {
    /// The files (by index, ascending) whose size is not known for the
    /// whole file as listed (changed or cut while counted): sent as
    /// counted, but not cached.
    cut: Vec<usize>,
    cached: usize,
    counted: usize,
    vanished: usize,
}

/// Sizes every file from `stored` (per file: same base name, inode, size
/// and mtime) or by counting it; drops from `files` those that vanished
/// meanwhile (another reader deleted them).
fn sizes(
    dirs: &Dirs,
    root: &Path,
    files: &mut Listing,
    stored: Option<&Stored>,
) -> Result<Sized, MaildropError> {
    let known: HashMap<(u64, &[u8]), &Rec> = stored
        .map(|s| {
            let f = &s.files;
            f.recs()
                .iter()
                .map(|r| ((r.ino, flags::split(f.name(r)).0), r))
                .collect()
        })
        .unwrap_or_default();
    let mut s = Sized {
        cut: Vec::new(),
        cached: 0,
        counted: 0,
        vanished: 0,
    };
    let mut buf = Vec::new();
    let mut vanished = Vec::new();
    for i in 0..files.len() {
        let Some(&r) = files.rec(i) else { break };
        let base = flags::split(files.name(&r)).0;
        if let Some(k) = known
            .get(&(r.ino, base))
            .filter(|k| (k.len, k.secs, k.nanos) == (r.len, r.secs, r.nanos))
        {
            s.cached += 1;
            let wire = k.wire;
            if let Some(r) = files.rec_mut(i) {
                r.wire = wire;
            }
            continue;
        }
        // Counting reads the whole file: one owned copy of its entry is
        // nothing beside that.
        let Some(mut m) = files.get(i) else { break };
        let file = match send::open_message(dirs, &mut m) {
            Ok(Some(file)) => file,
            Ok(None) => {
                s.vanished += 1;
                vanished.push(i);
                continue;
            }
            Err(e) => return Err(fs_error("scan", &root.join(m.sub.dir()), &e)),
        };
        files.set_place(i, m.sub, m.name_bytes());
        let path = m.path(root);
        let md = file.metadata().map_err(|e| fs_error("stat", &path, &e))?;
        if buf.is_empty() {
            buf = vec![0u8; SEND_CHUNK];
        }
        let (read, wire) = size::measure_file(&file, md.len(), &mut buf)
            .map_err(|e| fs_error("read", &path, &e))?;
        // Changed since it was listed (or cut while counted): sent as
        // counted now, but not cached (its listed mtime may be out of
        // order, or the bytes out of date).
        let as_listed = {
            use std::os::unix::fs::MetadataExt;
            md.len() == m.len && (md.mtime(), md.mtime_nsec()) == m.mtime
        };
        if let Some(r) = files.rec_mut(i) {
            r.len = read;
            r.wire = wire;
        }
        s.counted += 1;
        if !(read == md.len() && as_listed) {
            s.cut.push(i);
        }
    }
    drop(known);
    files.remove(&vanished);
    // The indices of `cut` after the removal.
    for c in &mut s.cut {
        *c -= vanished.partition_point(|v| v < c);
    }
    Ok(s)
}

impl Maildrop for MaildirDrop {
    fn entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .files
            .recs()
            .iter()
            .map(|r| {
                let name = self.files.name(r);
                Entry {
                    size: r.wire,
                    uid: list::uid_of(name),
                    seen: flags::is_seen(name),
                }
            })
            .collect();
        make_unique(entries.iter_mut().map(|e| &mut e.uid));
        entries
    }

    fn send(
        &mut self,
        msg: MsgIdx,
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError> {
        let num = msg.num().0;
        let Some(mut m) = self.files.get(msg.0) else {
            return Err(SendError::Storage(
                MaildropError::MessageGone { num }.into(),
            ));
        };
        let size = m.wire;
        let sent = send::send(
            &self.dirs,
            &self.opts.path,
            &mut m,
            (num, size),
            body_lines,
            out,
        );
        // Found moved by another reader: looked for there next time.
        self.files.set_place(msg.0, m.sub, m.name_bytes());
        sent
    }

    fn commit(&mut self, marks: &Marks) -> Result<CommitStats, StorageError> {
        // Unchanged since a settled listing: every listed name is still
        // the file listed, so a deletion needs no look first.
        let unchanged = self
            .dirs
            .stamps()
            .ok()
            .map(|now| [0, 1].map(|i| self.settled && now[i] == self.stamps[i]));
        let result = update::commit(
            &self.dirs,
            &self.opts.path,
            unchanged.unwrap_or([false; 2]),
            &self.files,
            marks,
            self.opts.update_status,
            &mut self.notes,
        );
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

impl Open for MaildirDrop {
    type Args<'a> = MaildirArgs<'a>;

    fn open(a: MaildirArgs<'_>) -> Result<MaildirDrop, StorageError> {
        MaildirDrop::open(a.owner, a.opts, a.mail).map_err(StorageError::from)
    }
}
