//! Locks, in the one order popper takes them:
//!
//! 1. **Session lock** — `flock(LOCK_EX|LOCK_NB)` on `SPOOL/.USER.pop`,
//!    held for the whole session, so a second session for the same user
//!    gets qpopper's "lock busy" text with `[IN-USE]` at once. The file is
//!    checked as qpopper did (qpopper.md §9.3): not a symlink, a regular
//!    file, owned by the user, not accessible by group or others, one link.
//! 2. **Spool locks** — held only while scanning at login and while
//!    updating at the end, so delivery agents can append during the session:
//!    * dotlock `SPOOL/USER.lock`, made with the link() method that is safe
//!      on NFS; one older than `dotlock-stale-age`, or left by a popper that
//!      died (we hold the session lock, so no live popper can own it), is
//!      broken;
//!    * `fcntl(F_SETLK)` write lock on the whole spool (procmail, exim,
//!      postfix, mutt);
//!    * `flock(LOCK_EX)` on the spool (qpopper, BSD tools).
//!
//!    Each is retried until `lock-timeout`, then `-ERR [IN-USE]`.
//!
//! All three are released in reverse order, including after errors; our
//! dotlock is removed only if it is still ours.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::maildrop::error::MaildropError;
use crate::maildrop::error::fs_error as io_err;
use crate::maildrop::session_lock::Unsafe;
use crate::privilege::Dropped;

/// Ownership of the session lock file.
#[derive(Debug)]
pub struct SessionLock {
    file: File,
    path: PathBuf,
}

impl SessionLock {
    /// Takes the session lock for `user`, as that user: `owner` is the
    /// proof that privileges were dropped to them.
    pub fn acquire(
        spool_dir: &Path,
        user: &str,
        owner: &Dropped,
    ) -> Result<SessionLock, MaildropError> {
        let path = spool_dir.join(format!(".{user}.pop"));
        let shown = path.display().to_string();
        // COMPAT qpopper 2.53: its texts for a temporary drop it refused.
        let refuse = |why: Unsafe| match why {
            Unsafe::Link | Unsafe::NotRegular => MaildropError::TempNotRegular {
                path: shown.clone(),
            },
            Unsafe::NotOwned => MaildropError::TempNotOwned {
                user: user.to_string(),
            },
            Unsafe::Accessible => MaildropError::TempAccessible {
                path: shown.clone(),
            },
            Unsafe::Links => MaildropError::TempLinks,
        };
        let open_error = |e: io::Error| MaildropError::TempOpen {
            path: shown.clone(),
            errno: e.raw_os_error().unwrap_or(0),
        };
        let file = crate::maildrop::session_lock::lock(&path, owner, &refuse, &open_error)?;
        Ok(SessionLock { file, path })
    }

    /// The lock file. It is empty, except when a qpopper that died left
    /// its temporary maildrop in it (see `recover.rs`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SessionLock {
    /// Removes the lock file (when empty, as qpopper did) and then releases
    /// the lock, in that order: a session that opened the file before the
    /// unlink finds it locked; one that opens the path later makes a new
    /// file, and `acquire` checks that the path still names what it locked.
    fn drop(&mut self) {
        if self.file.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Settings for the spool locks.
#[derive(Debug, Clone)]
pub struct LockConfig {
    /// A dotlock older than this is stale.
    pub stale_age: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// This host's name (written into our dotlocks).
    pub host: String,
}

/// Opens the spool for reading and writing as the mail user, without
/// following a symlink, and checks that it is a regular file with one
/// link owned by the user privileges were dropped to. `Ok(None)` when
/// there is no spool (no mail yet).
pub fn open_spool(spool: &Path, owner: &Dropped) -> Result<Option<File>, MaildropError> {
    let uid = owner.uid();
    let unsafe_spool = |why: &str| MaildropError::UnsafeSpool {
        path: spool.display().to_string(),
        why: why.to_string(),
    };
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(spool)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(unsafe_spool("it is a symbolic link"));
        }
        Err(e) => return Err(io_err("open", spool, &e)),
    };
    let md = file.metadata().map_err(|e| io_err("stat", spool, &e))?;
    if !md.file_type().is_file() {
        return Err(unsafe_spool("it is not a regular file"));
    }
    if md.uid() != uid {
        return Err(unsafe_spool("it is not owned by the user"));
    }
    if md.nlink() != 1 {
        return Err(unsafe_spool("it has more than one link"));
    }
    Ok(Some(file))
}

/// Creates an empty spool (mode 0600, not following a symlink) or, if a
/// delivery agent made one meanwhile, opens that one.
pub fn create_spool(spool: &Path, owner: &Dropped) -> Result<File, MaildropError> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(spool)
    {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => open_spool(spool, owner)?
            .ok_or_else(|| io_err("open", spool, &io::ErrorKind::NotFound.into())),
        Err(e) => Err(io_err("create", spool, &e)),
    }
}

/// The spool locks, held together; dropping the guard releases them.
///
/// The guard owns a clone of the spool's descriptor: fcntl locks belong to
/// the process and go away when any descriptor of the file is closed, so
/// closing the clone releases the fcntl lock, while the session's own
/// descriptor stays open for reading.
#[derive(Debug)]
pub struct SpoolLock {
    dotlock: Option<(PathBuf, u64)>,
    spool: Option<File>,
    /// Messages for the log (stale locks broken, dotlocking impossible).
    pub notes: Vec<String>,
}

impl SpoolLock {
    /// Takes the dotlock `SPOOL/USER.lock`, then an fcntl write lock and an
    /// flock on `file` (the open spool, if there is one), each retried until
    /// `lock-timeout`.
    pub fn acquire(
        spool: &Path,
        file: Option<&File>,
        cfg: &LockConfig,
    ) -> Result<SpoolLock, MaildropError> {
        let deadline = crate::clock::monotonic() + cfg.timeout;
        let mut lock = SpoolLock {
            dotlock: None,
            spool: None,
            notes: Vec::new(),
        };
        lock.dotlock = dotlock(spool, cfg, deadline, &mut lock)?;
        let Some(file) = file else {
            return Ok(lock);
        };
        let file = file.try_clone().map_err(|e| io_err("dup", spool, &e))?;
        let fl = libc::flock {
            l_type: libc::F_WRLCK as i16,
            l_whence: libc::SEEK_SET as i16,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        retry(
            deadline,
            "mail spool lock (fcntl)",
            || match nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETLK(&fl)) {
                Ok(_) => Ok(true),
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(false),
                Err(e) => Err(io_err("fcntl", spool, &io::Error::from(e))),
            },
        )?;
        lock.spool = Some(file);
        retry(deadline, "mail spool lock (flock)", || {
            match lock.spool.as_ref().map(File::try_lock) {
                Some(Ok(())) | None => Ok(true),
                Some(Err(std::fs::TryLockError::WouldBlock)) => Ok(false),
                Some(Err(std::fs::TryLockError::Error(e))) => Err(io_err("flock", spool, &e)),
            }
        })?;
        Ok(lock)
    }

    /// Refreshes the dotlock's time, so that delivery agents that judge a
    /// dotlock by its age (Postfix after 500 s, procmail after 1024 s) do not
    /// break it during a long update.
    pub fn touch(&self) {
        if let Some((path, ino)) = &self.dotlock
            && let Ok(f) = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
            && f.metadata().is_ok_and(|m| m.ino() == *ino)
        {
            let _ = f.set_modified(crate::clock::system_time());
        }
    }

    /// Releases the locks, noting in `notes` a dotlock that could not be
    /// removed.
    pub fn release(mut self, notes: &mut Vec<String>) {
        if let Some(path) = self.release_inner() {
            notes.push(format!(
                "could not remove the dotlock {}; the next login will",
                path.display()
            ));
        }
    }

    /// Releases everything; returns the dotlock's path if it stayed.
    fn release_inner(&mut self) -> Option<PathBuf> {
        if let Some(f) = self.spool.take() {
            let _ = f.unlock();
            // Closing the clone releases the fcntl lock.
            drop(f);
        }
        let (path, ino) = self.dotlock.take()?;
        (!remove_own_dotlock(&path, ino)).then_some(path)
    }
}

/// Removes our dotlock (if it is still ours), retrying a failed unlink: a
/// dotlock left behind by a live session would hold every delivery agent
/// off until they judge it stale. Returns false if it could not be removed
/// (the next popper for this user breaks it: it names a popper).
fn remove_own_dotlock(path: &Path, ino: u64) -> bool {
    for attempt in 0..5 {
        if !std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == ino) {
            return true;
        }
        match std::fs::remove_file(path) {
            Ok(()) => return true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(_) => std::thread::sleep(Duration::from_millis(20 << attempt)),
        }
    }
    false
}

impl Drop for SpoolLock {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

/// Retries `attempt` (true = got it) with growing pauses until `deadline`.
fn retry(
    deadline: Instant,
    what: &str,
    mut attempt: impl FnMut() -> Result<bool, MaildropError>,
) -> Result<(), MaildropError> {
    let mut pause = Duration::from_millis(10);
    loop {
        if attempt()? {
            return Ok(());
        }
        let now = crate::clock::monotonic();
        if now >= deadline {
            return Err(MaildropError::LockTimeout {
                what: what.to_string(),
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// The text popper writes into its dotlocks: who holds it, so that a
/// later popper can tell a lock left by a popper that died.
fn token(host: &str) -> String {
    format!("popper:{host}:{}\n", std::process::id())
}

/// The pid in a dotlock written by a popper on `host`, if it is one.
fn popper_pid(text: &str, host: &str) -> Option<u32> {
    let rest = text
        .strip_prefix("popper:")?
        .strip_prefix(host)?
        .strip_prefix(':')?;
    rest.trim_end().parse().ok()
}

/// Creates `SPOOL/USER.lock`; `Ok(None)` when the directory does not let
/// us create files (then only fcntl and flock protect the spool, as with
/// qpopper 2.53, and a note says so).
///
/// A dotlock is broken when it is older than `dotlock-stale-age`, or when
/// a popper on this host wrote it: we hold the user's session lock, so no
/// live popper can be holding this spool's dotlock.
fn dotlock(
    spool: &Path,
    cfg: &LockConfig,
    deadline: Instant,
    lock: &mut SpoolLock,
) -> Result<Option<(PathBuf, u64)>, MaildropError> {
    let path = with_suffix(spool, ".lock");
    let tmp = {
        let name = spool
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        spool.with_file_name(format!(".{name}.lock.{:016x}", crate::sys::random_u64()))
    };
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
    {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
            ) =>
        {
            lock.notes.push(format!(
                "cannot create dotlock {} ({e}); using fcntl and flock only",
                path.display()
            ));
            return Ok(None);
        }
        Err(e) => return Err(io_err("create", &tmp, &e)),
    };
    let written = f.write_all(token(&cfg.host).as_bytes());
    drop(f);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err("write", &tmp, &e));
    }
    let result = retry(deadline, "mail spool lock (dotlock)", || {
        let linked = std::fs::hard_link(&tmp, &path);
        // NFS: link() may report failure after succeeding; the link count
        // of our file tells the truth.
        if linked.is_ok() || std::fs::metadata(&tmp).is_ok_and(|m| m.nlink() == 2) {
            return Ok(true);
        }
        // A full disk (or quota) will not clear while we wait for a lock.
        if let Err(e) = &linked
            && matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        {
            return Err(io_err("link", &path, e));
        }
        if let Ok(md) = std::fs::symlink_metadata(&path) {
            let age = crate::clock::now() - md.mtime();
            let orphan = read_small(&path).and_then(|t| popper_pid(&t, &cfg.host));
            if orphan.is_some() || age > cfg.stale_age.as_secs() as i64 {
                let why = match orphan {
                    Some(pid) => format!("left by popper process {pid}, which died"),
                    None => "as stale".to_string(),
                };
                lock.notes.push(format!(
                    "removed dotlock {} {why} ({age} s old)",
                    path.display()
                ));
                // Only if it is still the lock judged stale: another
                // program may have broken it and made its own meanwhile.
                let same = std::fs::symlink_metadata(&path)
                    .is_ok_and(|again| again.ino() == md.ino() && again.mtime() == md.mtime());
                if same {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(false)
    });
    let ino = std::fs::metadata(&tmp).map(|m| m.ino());
    let _ = std::fs::remove_file(&tmp);
    result?;
    let ino = ino.map_err(|e| io_err("stat", &tmp, &e))?;
    Ok(Some((path, ino)))
}

fn read_small(path: &Path) -> Option<String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let mut s = String::new();
    f.take(256).read_to_string(&mut s).ok()?;
    Some(s)
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}
