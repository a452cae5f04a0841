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
//!    `:2,` flags (`flags.rs`), exact wire sizes counted or taken from the
//!    size cache `Maildir/.popper-sizes` (`size.rs`);
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
//! never touched. Memory is O(messages): one name, one inode and two sizes
//! each; a message's bytes are never held, only [`SEND_CHUNK`] of them at
//! a time.
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

pub mod deliver;
pub mod flags;
pub mod list;
pub mod lock;
pub mod ops;
pub mod send;
pub mod size;
pub mod update;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use pop3_core::error::StorageError;
use pop3_core::index::{Entry, MsgIdx, make_unique};
use pop3_core::marks::Marks;

use self::list::Listed;
use self::lock::SessionLock;
use self::size::{Cache, Known};
use super::{CommitStats, Maildrop, Note, Open, Output, SendError};
use crate::limits::SEND_CHUNK;
use crate::maildrop::error::{MaildropError, fs_error};
use crate::maildrop::login_mail::LoginMail;
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
    /// The files listed at login, in session order (names updated when a
    /// send finds one moved).
    files: Vec<Listed>,
    /// Their entries: exact sizes, unique UIDs, seen flags.
    entries: Vec<Entry>,
    /// Sizes taken from the size cache at login (the rest were counted).
    sizes_cached: usize,
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
        let root = opts.path.clone();
        let tmp = list::check(&root, owner)?;
        let session = SessionLock::acquire(&root, owner)?;
        let mut notes = Vec::new();
        if let Some(m) = mail {
            deliver::deliver(&root, tmp, m, &mut notes)?;
        }
        let mut files = list::list(&root, &mut notes)?;
        let cache_path = root.join(size::NAME);
        let cache = if opts.size_index {
            size::load(&cache_path, owner)
        } else {
            None
        };
        let sized = sizes(&root, &mut files, cache.as_ref())?;
        let mut entries: Vec<Entry> = files
            .iter()
            .zip(&sized.wire)
            .map(|(f, &size)| Entry {
                size,
                uid: f.uid(),
                seen: f.seen(),
            })
            .collect();
        make_unique(entries.iter_mut().map(|e| &mut e.uid));
        let mut detail = vec![format!(
            "{}, {} sizes from the size cache, {} counted",
            super::messages(entries.len()),
            sized.cached,
            sized.counted
        )];
        if sized.vanished > 0 {
            detail.push(format!(
                "{} messages vanished while {} was listed",
                sized.vanished,
                root.display()
            ));
        }
        let stale = match &cache {
            Some(c) => c.len() != sized.cached,
            None => std::fs::symlink_metadata(&cache_path).is_ok(),
        };
        if opts.size_index && (sized.counted > 0 || stale) {
            let bytes = size::encode(
                files
                    .iter()
                    .zip(&sized.known)
                    .filter_map(|(f, k)| Some((f.base(), f.ino, (*k)?))),
            );
            if let Err(e) = size::store(&cache_path, &bytes) {
                notes.push(format!(
                    "could not write the size cache {}: {e}",
                    cache_path.display()
                ));
            }
        }
        Ok(MaildirDrop {
            opts,
            files,
            entries,
            sizes_cached: sized.cached,
            notes,
            detail,
            session: Some(session),
        })
    }

    /// The Maildir's path.
    pub fn path(&self) -> &Path {
        &self.opts.path
    }

    /// How many sizes came from the size cache rather than from reading
    /// the messages.
    pub fn sizes_cached(&self) -> usize {
        self.sizes_cached
    }

    /// Releases the session lock: the session is over for this maildrop.
    fn close(&mut self) {
        self.session = None;
    }
}

/// The sizes of the files listed, in order, and where they came from.
struct Sized {
    /// Each file's wire size.
    wire: Vec<u64>,
    /// What the cache is to know of each file (`None`: not to be cached —
    /// a file cut while it was counted).
    known: Vec<Option<Known>>,
    cached: usize,
    counted: usize,
    vanished: usize,
}

/// Sizes every file from `cache` or by counting it; drops from `files`
/// those that vanished meanwhile (another reader deleted them).
fn sizes(
    root: &Path,
    files: &mut Vec<Listed>,
    cache: Option<&Cache>,
) -> Result<Sized, MaildropError> {
    let mut s = Sized {
        wire: Vec::with_capacity(files.len()),
        known: Vec::with_capacity(files.len()),
        cached: 0,
        counted: 0,
        vanished: 0,
    };
    let mut buf = Vec::new();
    let mut kept = Vec::with_capacity(files.len());
    for mut f in files.drain(..) {
        if let Some(wire) = cache.and_then(|c| c.get(f.base(), f.ino, f.len, f.mtime)) {
            s.cached += 1;
            s.wire.push(wire);
            s.known.push(Some(Known {
                len: f.len,
                mtime: f.mtime,
                wire,
            }));
            kept.push(f);
            continue;
        }
        let file = match send::open_message(root, &mut f) {
            Ok(Some(file)) => file,
            Ok(None) => {
                s.vanished += 1;
                continue;
            }
            Err(e) => return Err(fs_error("scan", &root.join(f.sub.dir()), &e)),
        };
        let path = f.path(root);
        let md = file.metadata().map_err(|e| fs_error("stat", &path, &e))?;
        if buf.is_empty() {
            buf = vec![0u8; SEND_CHUNK];
        }
        let (read, wire) = size::measure_file(&file, md.len(), &mut buf)
            .map_err(|e| fs_error("read", &path, &e))?;
        f.len = read;
        f.mtime = {
            use std::os::unix::fs::MetadataExt;
            (md.mtime(), md.mtime_nsec())
        };
        s.counted += 1;
        s.wire.push(wire);
        s.known.push((read == md.len()).then_some(Known {
            len: read,
            mtime: f.mtime,
            wire,
        }));
        kept.push(f);
    }
    *files = kept;
    Ok(s)
}

impl Maildrop for MaildirDrop {
    fn entries(&self) -> Vec<Entry> {
        self.entries.clone()
    }

    fn send(
        &mut self,
        msg: MsgIdx,
        body_lines: Option<u64>,
        out: &mut dyn Output,
    ) -> Result<u64, SendError> {
        let num = msg.num().0;
        let (Some(f), Some(e)) = (self.files.get_mut(msg.0), self.entries.get(msg.0)) else {
            return Err(SendError::Storage(
                MaildropError::MessageGone { num }.into(),
            ));
        };
        send::send(&self.opts.path, f, (num, e.size), body_lines, out)
    }

    fn commit(&mut self, marks: &Marks) -> Result<CommitStats, StorageError> {
        let result = update::commit(
            &self.opts.path,
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
