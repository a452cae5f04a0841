//! popper's own small files beside the mail (the mbox scan index, the
//! Maildir listing cache): read only if they are the user's, and replaced
//! whole, never written in place.
//!
//! A file an attacker could plant there (a symbolic link, a FIFO, another
//! user's file, a huge one, one that group or others may read or write —
//! the spool directory's group, `mail`, is shared with every delivery agent)
//! is never read: it is opened without following a link or blocking, and
//! used only if it is a regular file of the user's, mode 0600 or stricter,
//! with one link, of at most the caller's bound. A new version goes to
//! `NAME.new`, made afresh (0600, not through a link), and is renamed over
//! `NAME` — which replaces whatever is there, never what it points to.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::privilege::Dropped;

/// `path` open for reading, and its size, if it is a file of `owner`'s of
/// at most `max` bytes (for a reader that parses as it reads, holding no
/// copy of the file).
pub fn open(path: &Path, owner: &Dropped, max: u64) -> Option<(File, u64)> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    if !(m.file_type().is_file()
        && m.uid() == owner.uid()
        && m.mode() & 0o077 == 0
        && m.nlink() == 1
        && m.size() <= max)
    {
        return None;
    }
    Some((f, m.size()))
}

/// The bytes of `path`, if it is a file of `owner`'s of at most `max` bytes.
pub fn read(path: &Path, owner: &Dropped, max: u64) -> Option<Vec<u8>> {
    let (f, size) = open(path, owner, max)?;
    let mut bytes = Vec::with_capacity(size as usize);
    f.take(max).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// `path` with `.new` after its name.
pub fn new_name(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".new");
    PathBuf::from(tmp)
}

/// Replaces `path` with `bytes` (through `NAME.new` and a rename).
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_with(path, |f| f.write_all(bytes))
}

/// Replaces `path` with what `write` writes (through `NAME.new` and a
/// rename: a failed write leaves `path` as it was).
pub fn replace_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = new_name(path);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(&tmp)?;
    let written = write(&mut f);
    drop(f);
    let written = written.and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
