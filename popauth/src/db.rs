//! `/etc/pop.auth`: a gdbm file of [`record`](crate::record)s, mode 0600,
//! owned by `pop`.
//!
//! Opening: the file is opened without following a symlink and checked
//! with `fstat` on that same descriptor (a regular file, permission bits
//! exactly 0600 — qpopper refused anything else), then locked with `flock`
//! — shared to read, exclusive to write — waiting up to a timeout, and
//! only then handed to gdbm (with gdbm's own non-waiting lock off). Every
//! gdbm program locks the file the same way, so popauth, popper and
//! qpopper's tools exclude each other correctly.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::record;
use crate::sys::{Gdbm, GdbmError, Mode};

/// Where the database is.
pub const DEFAULT_PATH: &str = "/etc/pop.auth";

/// How long to wait for another program's lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Why the database could not be used.
#[derive(Debug)]
pub enum DbError {
    /// There is no database (`ENOENT`).
    Missing,
    /// It could not be opened (permission, a symlink, …).
    Open(io::Error),
    /// It is not a regular file.
    NotRegular,
    /// Its permission bits are not 0600 (holds them).
    WrongMode(u32),
    /// It is owned by a user it must not be (holds the uid).
    WrongOwner(u32),
    /// Its lock could not be had.
    Lock(io::Error),
    /// gdbm refused it or an operation on it.
    Gdbm(GdbmError),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Missing => f.write_str("No such file or directory"),
            DbError::Open(e) | DbError::Lock(e) => write!(f, "{}", strip_os(e)),
            DbError::NotRegular => f.write_str("not a regular file"),
            DbError::WrongMode(m) => write!(f, "wrong mode (0{m:o})"),
            DbError::WrongOwner(u) => write!(f, "owned by uid {u}, not root or pop"),
            DbError::Gdbm(e) => write!(f, "{e}"),
        }
    }
}

/// `io::Error`'s text without Rust's " (os error N)" suffix, as C's
/// strerror prints it (popauth's messages are qpopper's).
pub fn strip_os(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Reading or writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Shared lock, read only.
    Read,
    /// Exclusive lock, read and write.
    Write,
}

/// The open database, locked.
#[derive(Debug)]
pub struct AuthDb {
    // Field order matters: gdbm (holding a duplicate of the descriptor)
    // closes first, then the descriptor that holds the lock.
    db: Gdbm,
    _lock: File,
    path: PathBuf,
}

fn open_flags(write: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK);
    o
}

/// Takes an flock on `f`, waiting until `wait` has passed.
pub(crate) fn lock(f: &File, exclusive: bool, wait: Duration) -> io::Result<()> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        let r = if exclusive {
            f.try_lock()
        } else {
            f.try_lock_shared()
        };
        match r {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::from_raw_os_error(libc::EWOULDBLOCK));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

impl AuthDb {
    /// Opens the database at `path` for `access`, checked and locked as
    /// the module documentation says.
    pub fn open(path: &Path, access: Access, wait: Duration) -> Result<AuthDb, DbError> {
        Self::open_owned(path, access, wait, &[])
    }

    /// [`AuthDb::open`], also refusing a file owned by anyone but `owners`
    /// (any owner when empty), checked before gdbm reads it.
    pub fn open_owned(
        path: &Path,
        access: Access,
        wait: Duration,
        owners: &[u32],
    ) -> Result<AuthDb, DbError> {
        let write = access == Access::Write;
        let file = match open_flags(write).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(DbError::Missing),
            Err(e) => return Err(DbError::Open(e)),
        };
        let md = file.metadata().map_err(DbError::Open)?;
        if !md.file_type().is_file() {
            return Err(DbError::NotRegular);
        }
        let mode = md.mode() & 0o7777;
        if mode != 0o600 {
            return Err(DbError::WrongMode(mode));
        }
        if !owners.is_empty() && !owners.contains(&md.uid()) {
            return Err(DbError::WrongOwner(md.uid()));
        }
        lock(&file, write, wait).map_err(DbError::Lock)?;
        let dup: OwnedFd = file.try_clone().map_err(DbError::Open)?.into();
        let mode = if write { Mode::Writer } else { Mode::Reader };
        let db = Gdbm::open_fd(dup, &path.display().to_string(), mode).map_err(DbError::Gdbm)?;
        Ok(AuthDb {
            db,
            _lock: file,
            path: path.to_path_buf(),
        })
    }

    /// Creates a new, empty database at `path`, which must not exist
    /// (mode 0600, not following a symlink), and returns it open for
    /// writing. `popauth -init` makes it under a temporary name and renames
    /// it into place.
    pub fn create(path: &Path) -> Result<AuthDb, DbError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)
            .map_err(DbError::Open)?;
        lock(&file, true, Duration::ZERO).map_err(DbError::Lock)?;
        let dup: OwnedFd = file.try_clone().map_err(DbError::Open)?.into();
        let db =
            Gdbm::open_fd(dup, &path.display().to_string(), Mode::NewDb).map_err(DbError::Gdbm)?;
        Ok(AuthDb {
            db,
            _lock: file,
            path: path.to_path_buf(),
        })
    }

    /// The database's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file (for `fchown`/`fsync` by `popauth -init`).
    pub fn file(&self) -> &File {
        &self._lock
    }

    /// `name`'s stored value, if it has a record (the raw bytes, not yet
    /// decoded: popauth's old-password check compares both forms).
    pub fn raw(&self, name: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        self.db.fetch(&record::key(name)).map_err(DbError::Gdbm)
    }

    /// `name`'s APOP secret, if it has a record.
    pub fn secret(&self, name: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self.raw(name)?.map(|v| record::decode(&v)))
    }

    /// Stores `name`'s secret (already checked to be storable).
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), DbError> {
        self.db
            .store(&record::key(name), value)
            .map_err(DbError::Gdbm)?;
        self.db.sync();
        Ok(())
    }

    /// Stores `records` (key and value bytes as they are) into a database
    /// just made by [`AuthDb::create`], with gdbm's per-store fsync off
    /// and one sync at the end (`popauth -import`; the file is renamed
    /// into place only afterwards). Returns how many keys it then holds.
    pub fn fill(&mut self, records: &[(Vec<u8>, Vec<u8>)]) -> Result<usize, DbError> {
        self.db.set_sync(false).map_err(DbError::Gdbm)?;
        for (k, v) in records {
            self.db.store(k, v).map_err(DbError::Gdbm)?;
        }
        self.db.sync();
        self.db.set_sync(true).map_err(DbError::Gdbm)?;
        Ok(self.db.keys().map_err(DbError::Gdbm)?.len())
    }

    /// Deletes `name`'s record; `Ok(false)` when there was none.
    pub fn delete(&mut self, name: &[u8]) -> Result<bool, DbError> {
        let done = self.db.delete(&record::key(name)).map_err(DbError::Gdbm)?;
        self.db.sync();
        Ok(done)
    }

    /// Every user name with a record, sorted.
    pub fn names(&self) -> Result<Vec<Vec<u8>>, DbError> {
        let mut v: Vec<Vec<u8>> = self
            .db
            .keys()
            .map_err(DbError::Gdbm)?
            .iter()
            .map(|k| record::name_of(k).to_vec())
            .collect();
        v.sort();
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("popauth-db-{}-{}", std::process::id(), rand()));
        std::fs::create_dir(&d).unwrap();
        d
    }

    fn rand() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }

    #[test]
    fn create_store_fetch_delete_list() {
        let d = tempdir();
        let p = d.join("pop.auth");
        let mut db = AuthDb::create(&p).unwrap();
        db.set(b"alice", &record::encode(b"tanstaaf").unwrap())
            .unwrap();
        db.set(b"bob", &record::encode(b"secret").unwrap()).unwrap();
        drop(db);
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let db = AuthDb::open(&p, Access::Read, LOCK_WAIT).unwrap();
        assert_eq!(db.secret(b"alice").unwrap().unwrap(), b"tanstaaf");
        assert_eq!(
            db.raw(b"bob").unwrap().unwrap(),
            [0x8c, 0x9a, 0x9c, 0x8d, 0x9a, 0x8b, 0x00]
        );
        assert_eq!(db.secret(b"carol").unwrap(), None);
        assert_eq!(
            db.names().unwrap(),
            vec![b"alice".to_vec(), b"bob".to_vec()]
        );
        // Readers share the lock.
        let db2 = AuthDb::open(&p, Access::Read, LOCK_WAIT).unwrap();
        assert!(matches!(
            AuthDb::open(&p, Access::Write, Duration::from_millis(50)),
            Err(DbError::Lock(_))
        ));
        drop((db, db2));
        let mut w = AuthDb::open(&p, Access::Write, LOCK_WAIT).unwrap();
        assert!(w.delete(b"alice").unwrap());
        assert!(!w.delete(b"alice").unwrap());
        assert!(matches!(
            AuthDb::open(&p, Access::Read, Duration::from_millis(50)),
            Err(DbError::Lock(_))
        ));
        drop(w);
        let db = AuthDb::open(&p, Access::Read, LOCK_WAIT).unwrap();
        assert_eq!(db.names().unwrap(), vec![b"bob".to_vec()]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn wrong_mode_symlink_garbage_and_missing_are_refused() {
        let d = tempdir();
        let p = d.join("pop.auth");
        assert!(matches!(
            AuthDb::open(&p, Access::Read, LOCK_WAIT),
            Err(DbError::Missing)
        ));
        drop(AuthDb::create(&p).unwrap());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        match AuthDb::open(&p, Access::Read, LOCK_WAIT) {
            Err(e @ DbError::WrongMode(0o644)) => assert_eq!(e.to_string(), "wrong mode (0644)"),
            other => panic!("{other:?}"),
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = d.join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(matches!(
            AuthDb::open(&link, Access::Read, LOCK_WAIT),
            Err(DbError::Open(_))
        ));
        let junk = d.join("junk");
        std::fs::write(&junk, vec![0x55u8; 5000]).unwrap();
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            AuthDb::open(&junk, Access::Read, LOCK_WAIT),
            Err(DbError::Gdbm(_))
        ));
        assert!(AuthDb::create(&p).is_err(), "create never reuses a file");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
