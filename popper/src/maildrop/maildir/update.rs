//! QUIT on a Maildir: the session's deletions and read marks, each made
//! by one unlink or one rename.
//!
//! For each message listed at login, found under the name it has now
//! (`list::locate`: another reader may have moved it or changed its
//! flags since):
//!
//! * deleted → unlinked (already gone is fine);
//! * with `update-status` on, kept and retrieved with RETR: `new/X` →
//!   `cur/X:2,S`, and in `cur/` without `S` → the name with `S` added to
//!   its flags (kept in ASCII order, as the Maildir spec says) — Dovecot's
//!   behaviour;
//! * with `update-status` off, exactly what qmail-pop3d does (COMPAT
//!   qmail-pop3d `pop3_quit`): every kept message in `new/` goes to
//!   `cur/X:2,`, and nothing else changes.
//!
//! Mail delivered during the session is not in the listing and is never
//! touched. Every step is relative to the open `new/` and `cur/`
//! (`ops::Dirs`). A deleted message in a directory whose stamp is
//! unchanged since a settled listing (`mod.rs`: nothing was made, renamed
//! or removed there since, so each listed name is still the file listed)
//! is unlinked by its listed name without a look first — DELE of all is
//! one `unlinkat` per message; elsewhere it is found first. A rename never replaces a file (`ops::rename_no_replace`): if
//! the target name exists and is the same file (a reader's half-done
//! move), the old name is unlinked; if it is another file, both stay.
//!
//! Crash safety: each step is a single rename or unlink within one file
//! system, which the kernel makes atomic — the file has its old name or
//! its new one, never both and never neither; an unlink removes it or
//! does not. No step depends on another. So a crash at any point leaves
//! every message exactly once, each either changed or not, and a later
//! session simply sees the state reached. `new/` and `cur/` are fsynced
//! once at the end; the session's QUIT reply says whether that worked.
//!
//! DEVIATION: a failed step does not stop the others (qmail-pop3d stops
//! at the first failed unlink and ignores failed renames): all are tried,
//! and the reply says how many failed.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use pop3_core::index::MsgIdx;
use pop3_core::maildrop::CommitStats;
use pop3_core::marks::Marks;

use super::flags;
use super::list::{Finder, Listed, Sub};
use super::listing::Listing;
use super::ops::Dirs;
use crate::maildrop::error::MaildropError;

/// Failures named one by one in the notes, at most.
const FAILURES_SHOWN: usize = 5;

/// Tries per message when another reader keeps moving it.
const TRIES: usize = 3;

/// What one message's update is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing.
    Keep,
    /// Unlink it.
    Unlink,
    /// Rename it to this directory and name.
    Rename(Sub, OsString),
}

/// What to do with a message now at `sub/name`: deleted, retrieved in
/// this session, and the `update-status` setting.
pub fn step(sub: Sub, name: &[u8], deleted: bool, retrieved: bool, update_status: bool) -> Step {
    if deleted {
        return Step::Unlink;
    }
    let target = if update_status {
        if !retrieved {
            return Step::Keep;
        }
        // A name whose info is not the flags form cannot carry S; in
        // new/ it still goes to cur/.
        flags::with_flag(name, flags::SEEN).unwrap_or_else(|| flags::for_cur(name))
    } else {
        if sub == Sub::Cur {
            return Step::Keep;
        }
        flags::for_cur(name)
    };
    if sub == Sub::Cur && target == name {
        return Step::Keep;
    }
    Step::Rename(Sub::Cur, OsString::from_vec(target))
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// Changed as planned.
    Changed,
    /// Nothing was to be done, or it was already gone.
    Nothing,
}

/// Applies the session's `marks` to the messages listed at login, in
/// `dirs` (`root` names them in notes). `unchanged`: per directory (`new/`,
/// `cur/`), nothing changed there since a settled listing. Notes for the
/// log go to `notes`. Nothing is written, only renamed and unlinked, so
/// the stats' `bytes_written` is 0.
pub fn commit(
    dirs: &Dirs,
    root: &Path,
    unchanged: [bool; 2],
    msgs: &Listing,
    marks: &Marks,
    update_status: bool,
    notes: &mut Vec<String>,
) -> Result<CommitStats, MaildropError> {
    let mut changed = 0usize;
    let mut failed = 0usize;
    let mut first_errno = None;
    let mut finder = Finder::new(dirs);
    let mut touched = [false; 2];
    let shown = |sub: Sub, name: &[u8]| root.join(sub.dir()).join(OsStr::from_bytes(name));
    for (i, r) in msgs.recs().iter().enumerate() {
        let (deleted, retrieved) = (marks.is_deleted(MsgIdx(i)), marks.is_retrieved(MsgIdx(i)));
        let name = msgs.name(r);
        if step(r.sub, name, deleted, retrieved, update_status) == Step::Keep {
            continue;
        }
        let at = usize::from(r.sub == Sub::Cur);
        if deleted && unchanged[at] {
            match dirs.unlink(r.sub, name) {
                Ok(()) => {
                    changed += 1;
                    touched[at] = true;
                    continue;
                }
                // Another reader moved it during this QUIT: look for it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed += 1;
                    first_errno.get_or_insert(e.raw_os_error().unwrap_or(0));
                    if failed <= FAILURES_SHOWN {
                        let path = shown(r.sub, name);
                        notes.push(format!("could not update {}: {e}", path.display()));
                    }
                    continue;
                }
            }
        }
        touched = [true; 2];
        // Found first: worked on as an owned copy.
        let Some(m) = msgs.get(i) else { continue };
        let m = &m;
        match apply(
            &mut finder,
            root,
            m,
            deleted,
            retrieved,
            update_status,
            notes,
        ) {
            Ok(Done::Changed) => changed += 1,
            Ok(Done::Nothing) => {}
            Err(e) => {
                failed += 1;
                first_errno.get_or_insert(e.raw_os_error().unwrap_or(0));
                if failed <= FAILURES_SHOWN {
                    notes.push(format!("could not update {}: {e}", m.path(root).display()));
                }
            }
        }
    }
    let shown = root.display().to_string();
    if failed > 0 {
        return Err(MaildropError::PartialUpdate {
            path: shown,
            failed,
            errno: first_errno.unwrap_or(0),
        });
    }
    if changed > 0 {
        for sub in [Sub::New, Sub::Cur] {
            if !touched[usize::from(sub == Sub::Cur)] {
                continue;
            }
            dirs.sync(sub).map_err(|e| MaildropError::NotDurable {
                path: shown.clone(),
                errno: e.raw_os_error().unwrap_or(0),
            })?;
        }
    }
    Ok(CommitStats::default())
}

/// Makes one message's step, finding it again first; tried again when
/// another reader moves it between the look and the change.
fn apply(
    finder: &mut Finder<'_>,
    root: &Path,
    m: &Listed,
    deleted: bool,
    retrieved: bool,
    update_status: bool,
    notes: &mut Vec<String>,
) -> io::Result<Done> {
    let dirs = finder.dirs();
    let mut last = None;
    for _ in 0..TRIES {
        let Some((sub, name)) = finder.locate(m)? else {
            return Ok(Done::Nothing);
        };
        let name = name.as_bytes();
        let result = match step(sub, name, deleted, retrieved, update_status) {
            Step::Keep => return Ok(Done::Nothing),
            Step::Unlink => dirs.unlink(sub, name),
            Step::Rename(to_sub, to_name) => {
                let to_name = to_name.as_bytes();
                match dirs.rename_no_replace((sub, name), (to_sub, to_name)) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let same = dirs
                            .lstat(to_sub, to_name)
                            .is_ok_and(|st| st.st_dev == m.dev && st.st_ino == m.ino);
                        if !same {
                            let path = |s: Sub, n: &[u8]| {
                                root.join(s.dir()).join(std::ffi::OsStr::from_bytes(n))
                            };
                            notes.push(format!(
                                "kept {} as it is: {} is another file",
                                path(sub, name).display(),
                                path(to_sub, to_name).display()
                            ));
                            return Ok(Done::Nothing);
                        }
                        // The same file under both names: keep the new one.
                        dirs.unlink(sub, name)
                    }
                    other => other,
                }
            }
        };
        match result {
            Ok(()) => return Ok(Done::Changed),
            // Moved meanwhile: look again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::NotFound.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    #[test]
    fn steps() {
        use Step::*;
        use Sub::{Cur, New};
        // (dir, name, deleted, retrieved, update_status, step)
        let cases: &[(Sub, &str, bool, bool, bool, Step)] = &[
            (New, "x", true, false, true, Unlink),
            (Cur, "x:2,S", true, true, false, Unlink),
            (New, "x", false, true, true, Rename(Cur, os("x:2,S"))),
            (New, "x", false, false, true, Keep),
            (Cur, "x:2,", false, true, true, Rename(Cur, os("x:2,S"))),
            (Cur, "x:2,RT", false, true, true, Rename(Cur, os("x:2,RST"))),
            (Cur, "x:2,S", false, true, true, Keep),
            (Cur, "x", false, true, true, Rename(Cur, os("x:2,S"))),
            (Cur, "x:2,", false, false, true, Keep),
            (Cur, "x:1,odd", false, true, true, Keep),
            (
                New,
                "x:1,odd",
                false,
                true,
                true,
                Rename(Cur, os("x:1,odd")),
            ),
            (New, "x:2,F", false, true, true, Rename(Cur, os("x:2,FS"))),
            // qmail-pop3d: every kept message in new/ to cur/X:2,.
            (New, "x", false, false, false, Rename(Cur, os("x:2,"))),
            (New, "x", false, true, false, Rename(Cur, os("x:2,"))),
            (New, "x:2,F", false, true, false, Rename(Cur, os("x:2,F"))),
            (Cur, "x:2,", false, true, false, Keep),
            (Cur, "x", false, true, false, Keep),
        ];
        for (sub, name, d, r, u, want) in cases {
            assert_eq!(
                &step(*sub, name.as_bytes(), *d, *r, *u),
                want,
                "{sub:?} {name} deleted {d} retrieved {r} update_status {u}"
            );
        }
    }
}
