//! Test fixtures: Maildirs in temporary directories, messages with chosen
//! names and delivery times.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A directory of its own, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory named after `tag`.
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "popper-maildir-{tag}-{}-{:016x}",
            std::process::id(),
            crate::sys::random_u64()
        ));
        std::fs::create_dir(&d).unwrap();
        TempDir(d)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Maildir (`new/`, `cur/`, `tmp/`) in a temporary directory.
pub struct Fx {
    _dir: TempDir,
    /// The Maildir's path.
    pub root: PathBuf,
}

/// A delivery time: `secs` after an arbitrary fixed moment, plus `nanos`.
pub fn at(secs: u64, nanos: u32) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000 + secs, nanos)
}

impl Fx {
    /// An empty Maildir.
    pub fn new(tag: &str) -> Fx {
        let dir = TempDir::new(tag);
        let root = dir.path().join("Maildir");
        for d in ["", "new", "cur", "tmp"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        Fx { _dir: dir, root }
    }

    /// Puts a message `sub/name` delivered at `when`.
    pub fn put(&self, sub: &str, name: &str, content: &[u8], when: SystemTime) -> PathBuf {
        let p = self.root.join(sub).join(name);
        std::fs::write(&p, content).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(when)
            .unwrap();
        p
    }

    /// The sorted names in `sub`.
    pub fn names(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
