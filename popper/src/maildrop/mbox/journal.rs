//! The update journal `SPOOL/.USER.pop.journal`: the new tail of the spool,
//! made durable before the spool itself is touched, so that an update cut
//! short at any instant can be finished at the next login (see the
//! protocol in `update.rs`).
//!
//! Layout: a 4096-byte header block (`journal_header.rs`), then the tail
//! bytes (written with `copy.rs`'s tail writer). The header is text (so an
//! administrator can read it with `head`), NUL-padded, ending in a
//! checksum line; a header of zeros (written when the journal is created)
//! means "not committed". The header is written once, after the tail is on
//! disk: a journal with a valid header is complete.
//!
//! The header's fields (`journal_header.rs`) say where the tail goes, the
//! spool's size and identity when the update began, and what recovery
//! needs to tell how far an interrupted update got.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::copy::{TailWriter, copy_bytes};
pub use super::journal_header::{HEADER_LEN, Header};
use crate::maildrop::error::{MaildropError, fs_error};
use crate::privilege::Dropped;
use crate::sys;

/// An open journal file.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// The journal's path for a session lock path `SPOOL/.USER.pop`.
    pub fn path_for(session_lock: &Path) -> PathBuf {
        super::lock::with_suffix(session_lock, ".journal")
    }

    /// Creates a new journal (it must not exist), mode 0600, not following
    /// a symlink, with its header block allocated (so the commit write
    /// cannot fail for lack of space).
    pub fn create(path: &Path) -> io::Result<Journal> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)?;
        let j = Journal {
            file,
            path: path.to_path_buf(),
        };
        if let Err(e) = j.file.write_all_at(&[0; HEADER_LEN as usize], 0) {
            j.discard();
            return Err(e);
        }
        Ok(j)
    }

    /// Opens an existing journal, checked like the session lock file (a
    /// regular file owned by the user privileges were dropped to, private,
    /// one link). `Ok(None)` when there is none.
    pub fn open(path: &Path, owner: &Dropped) -> Result<Option<Journal>, MaildropError> {
        let uid = owner.uid();
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(unsafe_journal(
                    path,
                    "the update journal is a symbolic link",
                ));
            }
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                return Err(unsafe_journal(
                    path,
                    "the update journal is not a regular file",
                ));
            }
            Err(e) => return Err(fs_error("open", path, &e)),
        };
        let md = file.metadata().map_err(|e| fs_error("stat", path, &e))?;
        if !md.file_type().is_file() {
            return Err(unsafe_journal(
                path,
                "the update journal is not a regular file",
            ));
        }
        if md.uid() != uid || md.nlink() != 1 || md.mode() & 0o077 != 0 {
            return Err(unsafe_journal(
                path,
                "the update journal is not a private file of the user",
            ));
        }
        Ok(Some(Journal {
            file,
            path: path.to_path_buf(),
        }))
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header, if the journal is complete.
    pub fn header(&self) -> io::Result<Option<Header>> {
        let mut block = vec![0u8; HEADER_LEN as usize];
        let mut got = 0;
        while got < block.len() {
            match self.file.read_at(&mut block[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Header::decode(&block[..got]))
    }

    /// Bytes of tail stored (the file's size past the header).
    pub fn stored_tail(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len().saturating_sub(HEADER_LEN))
    }

    /// A writer for the tail, which copies from `src` (the spool).
    pub fn writer<'a>(&'a self, src: &'a File) -> TailWriter<'a> {
        TailWriter::new(&self.file, src, HEADER_LEN)
    }

    /// The commit point: makes the tail durable, then writes the header and
    /// makes it, and the journal's directory entry, durable.
    pub fn commit(&self, h: &Header) -> io::Result<()> {
        self.file.sync_all()?;
        self.file.write_all_at(&h.encode(), 0)?;
        self.file.sync_all()?;
        sync_parent(&self.path)
    }

    /// Copies the tail into `spool` at `h.from` and gives the spool its new
    /// size. Safe to repeat: it only ever writes the final bytes.
    pub fn apply(&self, spool: &File, h: &Header) -> Result<(), ApplyError> {
        let new_len = h.new_len();
        let cur = spool.metadata().map_err(ApplyError::Before)?.len();
        // Nothing of the tail is written yet if growing fails: put the size
        // back (durably) and report the spool unchanged.
        let undo = |e: io::Error| match spool.set_len(cur).and_then(|()| spool.sync_all()) {
            Ok(()) => ApplyError::Before(e),
            Err(_) => ApplyError::After(e),
        };
        let mut copy_from = 0;
        if new_len > cur {
            match sys::allocate(spool.as_fd(), cur, new_len - cur) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    // No way to reserve blocks (NFSv3, some FUSE): write the
                    // part of the tail past the old end first. It lands in
                    // new space only, so running out of space there still
                    // leaves every old byte as it was.
                    let past = cur.max(h.from) - h.from;
                    copy_bytes(
                        &self.file,
                        HEADER_LEN + past,
                        spool,
                        h.from + past,
                        h.tail_len - past,
                    )
                    .map_err(undo)?;
                    copy_from = past;
                }
                Err(e) => return Err(undo(e)),
            }
        }
        // The part up to the old end (all of it, unless written above).
        let head = if copy_from > 0 { copy_from } else { h.tail_len };
        copy_bytes(&self.file, HEADER_LEN, spool, h.from, head).map_err(ApplyError::After)?;
        if cur > new_len {
            // A writer that ignored our locks may have appended during the
            // copy: then leave the size alone and let recovery keep it.
            let now = spool.metadata().map_err(ApplyError::After)?.len();
            if now != cur {
                return Err(ApplyError::After(io::Error::other(
                    "the spool grew during the update",
                )));
            }
            spool.set_len(new_len).map_err(ApplyError::After)?;
        }
        spool.sync_all().map_err(ApplyError::After)
    }

    /// Ends a journal whose update is applied (or was never committed):
    /// empties it durably first, so a directory entry that survives a
    /// crash names an empty file, never a stale journal; then unlinks it.
    pub fn clear(self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        std::fs::remove_file(&self.path)
    }

    /// Removes a journal that was never committed (best effort: a leftover
    /// uncommitted journal is discarded by the next login anyway).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Moves a journal that cannot be applied out of the way, keeping its
    /// bytes for the administrator. Returns the new path.
    pub fn set_aside(self) -> io::Result<PathBuf> {
        let to = super::lock::with_suffix(&self.path, &format!(".{}", crate::clock::now()));
        std::fs::rename(&self.path, &to)?;
        sync_parent(&to)?;
        Ok(to)
    }

    /// The journal file (recovery reads the tail through it).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// A journal popper will not touch: it is left for the administrator.
fn unsafe_journal(path: &Path, why: &str) -> MaildropError {
    MaildropError::UnsafeFile {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// Why applying a journal failed.
#[derive(Debug)]
pub enum ApplyError {
    /// Before any byte of the spool changed (it is as it was).
    Before(io::Error),
    /// After the spool began to change (the journal must be kept).
    After(io::Error),
}

/// fsync of the directory holding `path`, so a created, renamed or removed
/// name is durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_write_commit_apply_clear() {
        let dir = tempdir();
        let spool_path = dir.join("spool");
        std::fs::write(&spool_path, b"0123456789OLDTAIL-OLDTAIL").unwrap();
        let spool = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&spool_path)
            .unwrap();
        let jpath = dir.join(".u.pop.journal");
        let j = Journal::create(&jpath).unwrap();
        assert!(Journal::create(&jpath).is_err(), "must not reuse a journal");
        let mut w = j.writer(&spool);
        w.lit(b"NEW").unwrap();
        w.copy(0, 4).unwrap();
        w.copy(4, 2).unwrap();
        w.lit(b"!").unwrap();
        let tail_len = w.finish().unwrap();
        assert_eq!(tail_len, 10);
        assert_eq!(j.header().unwrap(), None, "not committed yet");
        let h = Header {
            pid: 1,
            spool: (0, 0),
            from: 10,
            old_len: 25,
            tail_len,
            sample: Vec::new(),
            before: 0,
            at: Vec::new(),
            merges_temp_drop: false,
            delivered_through: None,
        };
        j.commit(&h).unwrap();
        let j = Journal::open(&jpath, &Dropped::current_for_tests())
            .unwrap()
            .unwrap();
        assert_eq!(j.header().unwrap(), Some(h.clone()));
        j.apply(&spool, &h).unwrap();
        // Applying again changes nothing.
        j.apply(&spool, &h).unwrap();
        assert_eq!(std::fs::read(&spool_path).unwrap(), b"0123456789NEW012345!");
        j.clear().unwrap();
        assert!(!jpath.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn apply_grows_the_spool() {
        let dir = tempdir();
        let spool_path = dir.join("spool");
        std::fs::write(&spool_path, b"abc").unwrap();
        let spool = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&spool_path)
            .unwrap();
        let j = Journal::create(&dir.join("j")).unwrap();
        let big = vec![b'x'; 200_000];
        let mut w = j.writer(&spool);
        w.lit(&big).unwrap();
        w.copy(0, 3).unwrap();
        let tail_len = w.finish().unwrap();
        let h = Header {
            pid: 1,
            spool: (0, 0),
            from: 1,
            old_len: 3,
            tail_len,
            sample: Vec::new(),
            before: 0,
            at: Vec::new(),
            merges_temp_drop: false,
            delivered_through: None,
        };
        j.commit(&h).unwrap();
        j.apply(&spool, &h).unwrap();
        let got = std::fs::read(&spool_path).unwrap();
        assert_eq!(got.len(), 1 + 200_003);
        assert_eq!(&got[..1], b"a");
        assert!(got.ends_with(b"xabc"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn large_copies_are_merged_and_exact() {
        let dir = tempdir();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.join("src"), &data).unwrap();
        let src = File::open(dir.join("src")).unwrap();
        let j = Journal::create(&dir.join("j")).unwrap();
        let mut w = j.writer(&src);
        w.copy(0, 1_000_000).unwrap();
        w.copy(1_000_000, 1_000_000).unwrap();
        w.lit(b"|").unwrap();
        w.copy(2_500_000, 10).unwrap();
        w.copy(2_900_000, 100_000).unwrap();
        assert_eq!(w.finish().unwrap(), 2_000_000 + 1 + 10 + 100_000);
        let got = std::fs::read(dir.join("j")).unwrap();
        let tail = &got[HEADER_LEN as usize..];
        let mut want = data[..2_000_000].to_vec();
        want.push(b'|');
        want.extend_from_slice(&data[2_500_000..2_500_010]);
        want.extend_from_slice(&data[2_900_000..]);
        assert!(tail == want.as_slice());
        let mut w = j.writer(&src);
        w.copy(2_999_990, 100).unwrap();
        assert!(
            w.finish().is_err(),
            "reading past the end of the spool is an error"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_journal_that_is_a_link_or_not_private_is_refused_as_the_journal() {
        // Regression: a symlinked journal was reported as a "temporary drop
        // file" (qpopper's .USER.pop text).
        let dir = tempdir();
        let jpath = dir.join(".u.pop.journal");
        std::os::unix::fs::symlink("/etc/passwd", &jpath).unwrap();
        let me = Dropped::current_for_tests();
        let e = Journal::open(&jpath, &me).unwrap_err();
        let text = String::from_utf8(
            pop3_core::reply::Reply::Err(pop3_core::reply::ErrReply::Storage(e.into())).to_bytes(),
        )
        .unwrap();
        assert_eq!(
            text,
            format!(
                "-ERR [SYS/PERM] {} refused: the update journal is a symbolic link.\r\n",
                jpath.display()
            )
        );
        std::fs::remove_file(&jpath).unwrap();
        std::fs::create_dir(&jpath).unwrap();
        let e = Journal::open(&jpath, &me).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("the update journal is not a regular file"),
            "{e}"
        );
        std::fs::remove_dir(&jpath).unwrap();
        nix::unistd::mkfifo(&jpath, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = Journal::open(&jpath, &me).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("the update journal is not a regular file"),
            "{e}"
        );
        std::fs::remove_file(&jpath).unwrap();
        std::fs::write(&jpath, b"").unwrap();
        std::fs::set_permissions(&jpath, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let e = Journal::open(&jpath, &me).unwrap_err();
        assert!(matches!(e, MaildropError::UnsafeFile { .. }), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "popper-journal-test-{}-{:x}",
            std::process::id(),
            sys::random_u64()
        ));
        std::fs::create_dir(&d).unwrap();
        d
    }
}
