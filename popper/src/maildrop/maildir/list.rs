//! Reading a Maildir at login: checking its directories, listing the
//! messages in `new/` and `cur/`, ordering them, and finding a message
//! again later under the name it has now.
//!
//! COMPAT qmail-pop3d (`maildir_scan`): the messages are the files of
//! `new/` and `cur/` (never `tmp/`, where deliveries are being written)
//! whose names do not start with `.`, in order of delivery time (the
//! file's mtime). qmail-pop3d orders by whole seconds only and leaves ties
//! in no particular order; popper breaks them by nanoseconds and then by
//! name, so every session shows the same numbering.
//!
//! DEVIATION: entries that are not regular files (symbolic links,
//! directories, FIFOs) are skipped with a notice; qmail-pop3d listed them
//! and failed when it opened them.
//!
//! A message another reader moves from `new/` to `cur/` while popper lists
//! the two directories may be seen in both: the same file (device and
//! inode) under the same base name is listed once, under its `cur/` name.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use pop3_core::index::Uid;

use super::flags;
use super::listing::{Listing, Rec};
use super::ops::Dirs;
use crate::maildrop::error::{MaildropError, fs_error};
use crate::privilege::Dropped;

/// Skipped names named in a notice, at most (the count is always given).
const NAMES_SHOWN: usize = 5;

/// Which of the two message directories a message is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Sub {
    /// `new/`: delivered, not yet seen by any reader.
    #[default]
    New,
    /// `cur/`: seen by a reader (its name may carry flags).
    Cur,
}

impl Sub {
    /// The directory's name.
    pub fn dir(self) -> &'static str {
        match self {
            Sub::New => "new",
            Sub::Cur => "cur",
        }
    }
}

/// One message file as listed at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The directory it is in now.
    pub sub: Sub,
    /// Its name there now (flags change it; the base name stays).
    pub name: OsString,
    /// `st_dev`: with the inode, what makes it the same message.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_size` at login: the bytes the session sends.
    pub len: u64,
    /// The delivery time: `st_mtime` and its nanoseconds.
    pub mtime: (i64, i64),
    /// The wire size (what RETR sends before dot-stuffing), once sized.
    pub wire: u64,
}

impl Listed {
    /// The name's bytes.
    pub fn name_bytes(&self) -> &[u8] {
        self.name.as_bytes()
    }

    /// The base name: the name up to the first `:`, the same in `new/` and
    /// in `cur/` whatever the flags.
    pub fn base(&self) -> &[u8] {
        flags::split(self.name_bytes()).0
    }

    /// Its path in the Maildir `root`.
    pub fn path(&self, root: &Path) -> PathBuf {
        root.join(self.sub.dir()).join(&self.name)
    }

    /// True when its flags say it was read.
    pub fn seen(&self) -> bool {
        flags::is_seen(self.name_bytes())
    }

    /// The session order ([`order`]).
    pub fn order(&self, other: &Listed) -> Ordering {
        order(
            (self.mtime, self.name_bytes(), self.sub),
            (other.mtime, other.name_bytes(), other.sub),
        )
    }

    /// Its UID before [`pop3_core::index::make_unique`]: the base name
    /// (COMPAT qmail-pop3d's UIDL), or, when that is not a valid RFC 1939
    /// unique-id (1–70 bytes of 0x21–0x7E), the lower-case hex MD5 of the
    /// base name. DEVIATION: qmail-pop3d sent such a name as it was.
    pub fn uid(&self) -> Uid {
        uid_of(self.name_bytes())
    }
}

/// The UID of a message named `name` ([`Listed::uid`]).
pub fn uid_of(name: &[u8]) -> Uid {
    let base = flags::split(name).0;
    Uid::new(base).unwrap_or_else(|| Uid::from_digest(&Md5::digest(base)))
}

/// A message as the session order sees it: delivery time, name, directory.
pub type OrderKey<'a> = ((i64, i64), &'a [u8], Sub);

/// The session order: delivery time, then base name, then name, then
/// directory — a total order, so every session numbers alike.
pub fn order(a: OrderKey<'_>, b: OrderKey<'_>) -> Ordering {
    let base = |n| flags::split(n).0;
    (a.0, base(a.1), a.1, a.2).cmp(&(b.0, base(b.1), b.1, b.2))
}

/// Checks the Maildir's directories: `root`, `cur/` and `new/` must be
/// directories (not symbolic links) owned by the user; so must `tmp/` if it
/// exists. Returns whether `tmp/` exists (only adding mail needs it:
/// qmail-pop3d reads a Maildir without one too).
pub fn check(root: &Path, owner: &Dropped) -> Result<bool, MaildropError> {
    let shown = root.display().to_string();
    if !root.is_absolute() {
        return Err(MaildropError::UnsafeMaildir {
            path: shown,
            why: "it is not an absolute path".into(),
        });
    }
    if !check_dir(root, owner)? {
        return Err(MaildropError::NoMaildir { path: shown });
    }
    for sub in [Sub::Cur, Sub::New] {
        if !check_dir(&root.join(sub.dir()), owner)? {
            // qmail-pop3d: "unable to scan". Not made here: a Maildir
            // without it was not made by a delivery agent, and one made
            // now would hide the mistake.
            return Err(MaildropError::MaildirIncomplete {
                path: shown,
                sub: sub.dir().into(),
            });
        }
    }
    check_dir(&root.join("tmp"), owner)
}

/// `Ok(false)` when `dir` does not exist; an error unless it is a
/// directory of the user's, not reached through a symbolic link.
fn check_dir(dir: &Path, owner: &Dropped) -> Result<bool, MaildropError> {
    let refuse = |why: &str| MaildropError::UnsafeMaildir {
        path: dir.display().to_string(),
        why: why.into(),
    };
    let md = match std::fs::symlink_metadata(dir) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(fs_error("stat", dir, &e)),
    };
    if md.file_type().is_symlink() {
        return Err(refuse("it is a symbolic link"));
    }
    if !md.is_dir() {
        return Err(refuse("it is not a directory"));
    }
    if md.uid() != owner.uid() {
        return Err(refuse("it is not owned by the user"));
    }
    Ok(true)
}

/// The messages of `new/` and `cur/` (open in `dirs`; `root` names them
/// in notes and errors), in delivery order ([`order`]), not yet sized.
/// Entries that are not regular files are skipped with a notice in
/// `notes`; a file that vanishes while listed (another reader took it) is
/// simply not listed. The flag is true when nothing was skipped (the
/// listing is then all there is to know of the directories).
pub fn list(
    dirs: &Dirs,
    root: &Path,
    notes: &mut Vec<String>,
) -> Result<(Listing, bool), MaildropError> {
    // Counted first (names only, no stat), so the listing is made at its
    // size: grown by doubling, each step would hold the old copy and the
    // new one at once (glibc's heap, past its mmap threshold) — the
    // login's peak.
    let (mut n, mut bytes) = (0usize, 0usize);
    for sub in [Sub::New, Sub::Cur] {
        dirs.read(sub, |name, _| {
            n += 1;
            bytes += name.to_bytes().len();
            Ok(())
        })
        .map_err(|e| fs_error("scan", &root.join(sub.dir()), &e))?;
    }
    let mut all = Listing::with_capacity(n, bytes);
    let before = notes.len();
    for sub in [Sub::New, Sub::Cur] {
        list_sub(dirs, root, sub, &mut all, notes)?;
    }
    // The same file seen in new/ and then in cur/: once, as it is in cur/.
    // Found through new/'s identities, sorted (new/ holds only the mail
    // since the last session: no map of every message is built).
    let recs = all.recs();
    let mut in_new: Vec<(u64, u64, usize)> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.sub == Sub::New)
        .map(|(i, r)| (r.dev, r.ino, i))
        .collect();
    in_new.sort_unstable();
    let mut twice: Vec<usize> = Vec::new();
    for r in recs.iter().filter(|r| r.sub == Sub::Cur) {
        let from = in_new.partition_point(|&(d, i, _)| (d, i) < (r.dev, r.ino));
        let base = flags::split(all.name(r)).0;
        for &(_, _, i) in in_new[from..]
            .iter()
            .take_while(|&&(d, i, _)| (d, i) == (r.dev, r.ino))
        {
            if flags::split(all.name(&recs[i])).0 == base {
                twice.push(i);
            }
        }
    }
    drop(in_new);
    twice.sort_unstable();
    all.remove(&twice);
    all.sort();
    all.shrink_to_fit();
    Ok((all, notes.len() == before))
}

/// Appends the regular files of `sub` to `out`.
fn list_sub(
    dirs: &Dirs,
    root: &Path,
    sub: Sub,
    out: &mut Listing,
    notes: &mut Vec<String>,
) -> Result<(), MaildropError> {
    let dir = root.join(sub.dir());
    let mut skipped = Vec::new();
    dirs.read(sub, |name, _| {
        let name = name.to_bytes();
        if name.starts_with(b".") {
            return Ok(());
        }
        // Not followed through a symbolic link (lstat).
        let st = match dirs.lstat(sub, name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let listed = st.st_mode & libc::S_IFMT == libc::S_IFREG
            && out
                .push_parts(
                    sub,
                    name,
                    Rec::new(
                        st.st_dev,
                        st.st_ino,
                        u64::try_from(st.st_size).unwrap_or(0),
                        (st.st_mtime, u32::try_from(st.st_mtime_nsec).unwrap_or(0)),
                        0,
                    ),
                )
                .is_some();
        // (A name longer than 255 bytes, which Linux never gives, is
        // skipped too: not listed, so never touched.)
        if !listed {
            skipped.push(OsString::from_vec(name.to_vec()));
        }
        Ok(())
    })
    .map_err(|e| fs_error("scan", &dir, &e))?;
    if !skipped.is_empty() {
        skipped.sort();
        let shown: Vec<String> = skipped
            .iter()
            .take(NAMES_SHOWN)
            .map(|n| format!("{:?}", n.to_string_lossy()))
            .collect();
        notes.push(format!(
            "skipped {} entries of {} that are not regular files: {}{}",
            skipped.len(),
            dir.display(),
            shown.join(", "),
            if skipped.len() > NAMES_SHOWN {
                ", …"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// Where message `m` is now: its listed name if the same file is still
/// there, else the name in `cur/` or `new/` with the same base name that
/// is the same file (another reader moved it to `cur/` or changed its
/// flags). `None`: it is gone.
pub fn locate(dirs: &Dirs, m: &Listed) -> io::Result<Option<(Sub, OsString)>> {
    Finder::new(dirs).locate(m)
}

/// Every name in `cur/` and `new/`, by base name.
type ByBase = HashMap<Vec<u8>, Vec<(Sub, OsString)>>;

/// Times a [`Finder`] reads the directories again for a message it cannot
/// find in what it read before. Bounded, so that an update after another
/// reader deleted every message costs a few directory reads, not one per
/// message; a message not found is then left as it is (kept, not renamed:
/// the safe side).
const REREADS: u32 = 3;

/// Finds messages again by base name; the directories are read once, on
/// the first message not where it was listed, and again (up to
/// `REREADS` times) when what was read is out of date.
#[derive(Debug)]
pub struct Finder<'a> {
    dirs: &'a Dirs,
    names: Option<ByBase>,
    rereads: u32,
}

impl<'a> Finder<'a> {
    /// A finder in the open directories `dirs`.
    pub fn new(dirs: &'a Dirs) -> Finder<'a> {
        Finder {
            dirs,
            names: None,
            rereads: 0,
        }
    }

    /// The directories it looks in.
    pub fn dirs(&self) -> &'a Dirs {
        self.dirs
    }

    /// True when `sub/name` is the file `m` (same device and inode).
    fn same(&self, m: &Listed, sub: Sub, name: &[u8]) -> bool {
        self.dirs.lstat(sub, name).is_ok_and(|st| {
            st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_dev == m.dev && st.st_ino == m.ino
        })
    }

    /// Where message `m` is now (see [`locate`]).
    pub fn locate(&mut self, m: &Listed) -> io::Result<Option<(Sub, OsString)>> {
        if self.same(m, m.sub, m.name_bytes()) {
            return Ok(Some((m.sub, m.name.clone())));
        }
        for fresh in [self.names.is_none(), self.rereads < REREADS] {
            if fresh {
                if self.names.is_some() {
                    self.rereads += 1;
                }
                self.names = Some(self.read()?);
            }
            let found = self
                .names
                .as_ref()
                .and_then(|n| n.get(m.base()))
                .into_iter()
                .flatten()
                .find(|(sub, name)| self.same(m, *sub, name.as_bytes()));
            if let Some(f) = found {
                return Ok(Some(f.clone()));
            }
            if fresh || self.rereads >= REREADS {
                break;
            }
        }
        Ok(None)
    }

    /// Every name in `cur/` and `new/` (in that order), by base name.
    fn read(&self) -> io::Result<ByBase> {
        let mut names = ByBase::new();
        for sub in [Sub::Cur, Sub::New] {
            self.dirs.read(sub, |name, _| {
                let name = name.to_bytes();
                let base = flags::split(name).0.to_vec();
                names
                    .entry(base)
                    .or_default()
                    .push((sub, OsString::from_vec(name.to_vec())));
                Ok(())
            })?;
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildrop::maildir::fixture::{Fx, at};

    fn names(v: &[Listed]) -> Vec<(Sub, String)> {
        v.iter()
            .map(|m| (m.sub, m.name.to_string_lossy().into_owned()))
            .collect()
    }

    #[test]
    fn messages_are_regular_files_of_new_and_cur_in_delivery_order() {
        let fx = Fx::new("list");
        // (dir, name, seconds, nanoseconds): listed in this order.
        let listed = [
            ("cur", "100.a.host:2,S", 1, 0),
            ("new", "100.b.host", 1, 0),
            ("new", "099.z.host", 1, 5),
            ("cur", "001.c.host:2,", 2, 0),
            ("cur", "002.d.host", 3, 0),
        ];
        for (sub, name, s, ns) in listed.iter().rev() {
            fx.put(sub, name, b"x\n", at(*s, *ns));
        }
        fx.put("tmp", "000.t.host", b"being delivered\n", at(0, 0));
        fx.put("new", ".hidden", b"x\n", at(0, 0));
        fx.put("cur", ".popper-sizes", b"x\n", at(0, 0));
        std::fs::create_dir(fx.root.join("cur/adir")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", fx.root.join("new/alink")).unwrap();
        let mut notes = Vec::new();
        let (got, clean) = list(&fx.dirs(), &fx.root, &mut notes).unwrap();
        let got = got.to_vec();
        assert!(!clean, "entries were skipped");
        let want: Vec<(Sub, String)> = listed
            .iter()
            .map(|(sub, name, ..)| {
                let s = if *sub == "new" { Sub::New } else { Sub::Cur };
                (s, name.to_string())
            })
            .collect();
        assert_eq!(names(&got), want);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("1 entries") && n.contains("\"adir\""))
        );
        assert!(notes.iter().any(|n| n.contains("\"alink\"")));
        assert!(got[0].seen());
        assert!(!got[1].seen() && !got[3].seen());
        assert_eq!(got[0].base(), b"100.a.host");
        assert_eq!(got[0].len, 2);
    }

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn uids_are_base_names_or_their_md5() {
        let long = "x".repeat(71);
        let cases: &[(&str, String)] = &[
            ("1234.M1P2.host:2,S", "1234.M1P2.host".into()),
            ("1234.M1P2.host", "1234.M1P2.host".into()),
            (&long, hex(&Md5::digest(long.as_bytes()))),
            ("with space:2,S", hex(&Md5::digest(b"with space"))),
            (":2,S", "d41d8cd98f00b204e9800998ecf8427e".into()),
        ];
        for (name, uid) in cases {
            let m = Listed {
                sub: Sub::Cur,
                name: name.into(),
                dev: 0,
                ino: 0,
                len: 0,
                mtime: (0, 0),
                wire: 0,
            };
            assert_eq!(m.uid().as_bytes(), uid.as_bytes(), "{name}");
        }
    }

    #[test]
    fn a_file_moved_while_listed_is_listed_once() {
        let fx = Fx::new("list-dup");
        fx.put("new", "5.x.host", b"x\n", at(1, 0));
        // Another reader's rename, seen half-done: both names, one file.
        std::fs::hard_link(
            fx.root.join("new/5.x.host"),
            fx.root.join("cur/5.x.host:2,S"),
        )
        .unwrap();
        // A copy (another file) with the same base name stays.
        fx.put("cur", "5.x.host:2,", b"x\n", at(1, 0));
        let (got, clean) = list(&fx.dirs(), &fx.root, &mut Vec::new()).unwrap();
        let got = got.to_vec();
        assert!(clean);
        assert_eq!(
            names(&got),
            [
                (Sub::Cur, "5.x.host:2,".to_string()),
                (Sub::Cur, "5.x.host:2,S".to_string())
            ]
        );
    }

    #[test]
    fn located_under_its_new_name() {
        let fx = Fx::new("locate");
        fx.put("new", "7.y.host", b"x\n", at(1, 0));
        fx.put("cur", "7.y.hostile:2,S", b"x\n", at(1, 0));
        let dirs = fx.dirs();
        let m = list(&dirs, &fx.root, &mut Vec::new())
            .unwrap()
            .0
            .to_vec()
            .into_iter()
            .find(|m| m.name == "7.y.host")
            .unwrap();
        assert_eq!(
            locate(&dirs, &m).unwrap(),
            Some((Sub::New, "7.y.host".into()))
        );
        std::fs::rename(
            fx.root.join("new/7.y.host"),
            fx.root.join("cur/7.y.host:2,RS"),
        )
        .unwrap();
        assert_eq!(
            locate(&dirs, &m).unwrap(),
            Some((Sub::Cur, "7.y.host:2,RS".into()))
        );
        // Another file under its name is not it (made before the old one
        // goes, or it may get the same inode number).
        fx.put("new", "7.y.host", b"x\n", at(1, 0));
        std::fs::remove_file(fx.root.join("cur/7.y.host:2,RS")).unwrap();
        assert_eq!(locate(&dirs, &m).unwrap(), None);
    }

    #[test]
    fn directories_are_checked() {
        let me = Dropped::current_for_tests();
        let fx = Fx::new("check");
        assert_eq!(check(&fx.root, &me), Ok(true));
        std::fs::remove_dir(fx.root.join("tmp")).unwrap();
        assert_eq!(check(&fx.root, &me), Ok(false));
        let other = Dropped::for_tests(me.uid() + 1);
        assert!(matches!(
            check(&fx.root, &other),
            Err(MaildropError::UnsafeMaildir { why, .. }) if why.contains("owned")
        ));
        assert!(matches!(
            check(Path::new("Maildir"), &me),
            Err(MaildropError::UnsafeMaildir { why, .. }) if why.contains("absolute")
        ));
        std::fs::remove_dir(fx.root.join("cur")).unwrap();
        std::os::unix::fs::symlink(fx.root.join("new"), fx.root.join("cur")).unwrap();
        assert!(matches!(
            check(&fx.root, &me),
            Err(MaildropError::UnsafeMaildir { why, .. }) if why.contains("symbolic")
        ));
        std::fs::remove_file(fx.root.join("cur")).unwrap();
        assert_eq!(
            check(&fx.root, &me),
            Err(MaildropError::MaildirIncomplete {
                path: fx.root.display().to_string(),
                sub: "cur".into()
            })
        );
        std::fs::write(fx.root.join("cur"), b"").unwrap();
        assert!(matches!(
            check(&fx.root, &me),
            Err(MaildropError::UnsafeMaildir { why, .. }) if why.contains("not a directory")
        ));
        let gone = fx.root.join("nothing");
        assert_eq!(
            check(&gone, &me),
            Err(MaildropError::NoMaildir {
                path: gone.display().to_string()
            })
        );
    }
}
