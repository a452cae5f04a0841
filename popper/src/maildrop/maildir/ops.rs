//! The file-system steps every Maildir change is made of: opening a file
//! without following a link, a rename that never replaces another file,
//! and a directory's fsync — by path, and relative to the session's open
//! `new/` and `cur/` ([`Dirs`]).
//!
//! Each change popper makes to a Maildir is one of these renames or one
//! unlink, so each is atomic (see the module documentation of `mod.rs`).
//!
//! [`Dirs`] holds the two directories open for the session: every
//! per-message step is one `openat`/`fstatat`/`renameat2`/`unlinkat` on a
//! name in them (no path built, no lookup of the Maildir's path again per
//! message, and the session keeps working on the directories it listed
//! even if the Maildir is moved meanwhile).

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::list::Sub;
use crate::maildrop::stamp::Stamp;

/// `new/` and `cur/` of one Maildir, open (never through a symbolic link).
#[derive(Debug)]
pub struct Dirs {
    new: File,
    cur: File,
}

impl Dirs {
    /// Opens `root/new` and `root/cur`.
    pub fn open(root: &Path) -> io::Result<Dirs> {
        let dir = |sub: Sub| {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_DIRECTORY)
                .open(root.join(sub.dir()))
        };
        Ok(Dirs {
            new: dir(Sub::New)?,
            cur: dir(Sub::Cur)?,
        })
    }

    /// The open directory `sub`.
    pub fn fd(&self, sub: Sub) -> BorrowedFd<'_> {
        match sub {
            Sub::New => self.new.as_fd(),
            Sub::Cur => self.cur.as_fd(),
        }
    }

    /// The stamps of `new/` and `cur/` now (`fstat`), in that order.
    pub fn stamps(&self) -> io::Result<[Stamp; 2]> {
        Ok([
            Stamp::of(&self.new.metadata()?),
            Stamp::of(&self.cur.metadata()?),
        ])
    }

    /// Opens `sub/name` for reading as [`open_read`] does.
    pub fn open_read(&self, sub: Sub, name: &[u8]) -> io::Result<File> {
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY
            | OFlag::O_NONBLOCK;
        let fd: OwnedFd = openat(self.fd(sub), name, flags, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// `lstat` of `sub/name`.
    pub fn lstat(&self, sub: Sub, name: &[u8]) -> io::Result<FileStat> {
        Ok(fstatat(
            self.fd(sub),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    /// Unlinks `sub/name`.
    pub fn unlink(&self, sub: Sub, name: &[u8]) -> io::Result<()> {
        Ok(unlinkat(self.fd(sub), name, UnlinkatFlags::NoRemoveDir)?)
    }

    /// Renames `from` to `to` unless `to` exists, as [`rename_no_replace`].
    pub fn rename_no_replace(&self, from: (Sub, &[u8]), to: (Sub, &[u8])) -> io::Result<()> {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            use nix::fcntl::{RenameFlags, renameat2};
            match renameat2(
                self.fd(from.0),
                from.1,
                self.fd(to.0),
                to.1,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => return Ok(()),
                Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        match self.lstat(to.0, to.1) {
            Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(nix::fcntl::renameat(
                self.fd(from.0),
                from.1,
                self.fd(to.0),
                to.1,
            )?),
            Err(e) => Err(e),
        }
    }

    /// Makes the entries of `sub` durable.
    pub fn sync(&self, sub: Sub) -> io::Result<()> {
        match sub {
            Sub::New => self.new.sync_all(),
            Sub::Cur => self.cur.sync_all(),
        }
    }

    /// Calls `each` with every name in `sub` but `.` and `..`, and the
    /// type `readdir` gives (`None`: unknown, `lstat` it).
    pub fn read(
        &self,
        sub: Sub,
        mut each: impl FnMut(&CStr, Option<nix::dir::Type>) -> io::Result<()>,
    ) -> io::Result<()> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut dir = nix::dir::Dir::openat(self.fd(sub), ".", flags, Mode::empty())?;
        for entry in dir.iter() {
            let entry = entry?;
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            each(name, entry.file_type())?;
        }
        Ok(())
    }
}

/// Opens `path` for reading: never through a symbolic link, never blocking
/// on a FIFO, never becoming the controlling terminal.
pub fn open_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
}

/// Renames `from` to `to` unless `to` exists (then `EEXIST`): a message
/// never replaces another one. Atomic where the file system has
/// `RENAME_NOREPLACE`; elsewhere a check of `to` first (a race only with
/// the user's own programs, which then keep the file they wrote).
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            // The file system cannot do it: check, then rename.
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    match std::fs::symlink_metadata(to) {
        Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::rename(from, to),
        Err(e) => Err(e),
    }
}

/// Makes the directory's entries durable (the renames, unlinks and new
/// names in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_DIRECTORY)
        .open(dir)?
        .sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildrop::maildir::fixture::TempDir;

    #[test]
    fn rename_never_replaces() {
        let d = TempDir::new("ops");
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let e = rename_no_replace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        rename_no_replace(&a, &c).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), b"a");
        assert!(!a.exists());
        assert_eq!(
            rename_no_replace(&a, &d.path().join("x"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        sync_dir(d.path()).unwrap();
        std::os::unix::fs::symlink(&c, d.path().join("l")).unwrap();
        assert!(open_read(&d.path().join("l")).is_err());
        assert!(sync_dir(&d.path().join("l")).is_err());
    }

    #[test]
    fn dirs_work_on_names_in_new_and_cur() {
        let d = TempDir::new("dirs");
        for sub in ["new", "cur"] {
            std::fs::create_dir(d.path().join(sub)).unwrap();
        }
        std::fs::write(d.path().join("new/a"), b"a").unwrap();
        std::fs::write(d.path().join("cur/b:2,S"), b"b").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("new/l")).unwrap();
        let dirs = Dirs::open(d.path()).unwrap();
        let mut names = Vec::new();
        dirs.read(Sub::New, |n, _| {
            names.push(n.to_bytes().to_vec());
            Ok(())
        })
        .unwrap();
        names.sort();
        assert_eq!(names, [b"a".to_vec(), b"l".to_vec()]);
        assert!(
            dirs.open_read(Sub::New, b"l").is_err(),
            "never through a link"
        );
        assert_eq!(dirs.lstat(Sub::New, b"a").unwrap().st_size, 1);
        let e = dirs
            .rename_no_replace((Sub::New, b"a"), (Sub::Cur, b"b:2,S"))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        dirs.rename_no_replace((Sub::New, b"a"), (Sub::Cur, b"a:2,S"))
            .unwrap();
        assert_eq!(std::fs::read(d.path().join("cur/a:2,S")).unwrap(), b"a");
        let before = dirs.stamps().unwrap();
        dirs.unlink(Sub::Cur, b"a:2,S").unwrap();
        assert_eq!(
            dirs.unlink(Sub::Cur, b"a:2,S").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_ne!(dirs.stamps().unwrap()[1], before[1], "cur/ changed");
        dirs.sync(Sub::New).unwrap();
        dirs.sync(Sub::Cur).unwrap();
        std::fs::remove_dir_all(d.path().join("cur")).unwrap();
        std::os::unix::fs::symlink(d.path().join("new"), d.path().join("cur")).unwrap();
        assert!(Dirs::open(d.path()).is_err(), "cur/ through a link");
    }
}
