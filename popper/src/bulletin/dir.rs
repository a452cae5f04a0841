//! The bulletin directory: which files are bulletins, and in what order.
//!
//! COMPAT qpopper 2.53 (qpopper.md §10): a bulletin is any file whose name
//! starts with a digit; its number is the leading digits (`23` of
//! `23.pophost_down_sunday`), the rest of the name is free text. Other
//! names (`notes`, `.hidden`, `README`) are not bulletins.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One bulletin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bulletin {
    /// The leading digits of its name.
    pub number: u64,
    /// Its file name, for the log.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
}

/// The number a file name gives a bulletin: `None` when the name does not
/// start with a digit, `Some(None)` when its digits overflow.
pub fn number_of(name: &[u8]) -> Option<Option<u64>> {
    let digits = name.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    Some(name[..digits].iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    }))
}

/// The log line for a bulletin directory that cannot be listed:
/// qpopper's words, which administrators grep for, then the reason in
/// words and its errno (2.53 gave only the number: "(2)").
pub fn open_error(dir: &Path, e: &io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(n) => format!("{}, errno {n}", nix::errno::Errno::from_raw(n).desc()),
        None => e.to_string(),
    };
    format!(
        "Unable to open bulletin directory '{}'. ({why})",
        dir.display()
    )
}

/// Why `dir` cannot be listed now, if it cannot: for `popper -V`, which
/// runs as root (a login reads it as the user, who may still be refused).
pub fn unreadable(dir: &Path) -> Option<String> {
    std::fs::read_dir(dir).err().map(|e| open_error(dir, &e))
}

/// The bulletins in `dir`, by number (then name). Names that cannot be a
/// number are reported in the second list, for the log.
pub fn list(dir: &Path) -> io::Result<(Vec<Bulletin>, Vec<String>)> {
    let mut found = Vec::new();
    let mut odd = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let shown = name.to_string_lossy().into_owned();
        match number_of(name.as_bytes()) {
            None => {}
            Some(None) => odd.push(format!(
                "bulletin {shown} is ignored: its number is too large"
            )),
            Some(Some(number)) => found.push(Bulletin {
                number,
                name: shown,
                path: entry.path(),
            }),
        }
    }
    found.sort_by(|a, b| (a.number, &a.name).cmp(&(b.number, &b.name)));
    Ok((found, odd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_names() {
        assert_eq!(number_of(b"23.pophost_down_sunday"), Some(Some(23)));
        assert_eq!(number_of(b"7"), Some(Some(7)));
        assert_eq!(number_of(b"007.x"), Some(Some(7)));
        assert_eq!(number_of(b"notes"), None);
        assert_eq!(number_of(b".1"), None);
        assert_eq!(number_of(b""), None);
        assert_eq!(number_of(b"99999999999999999999999.x"), Some(None));
    }

    #[test]
    fn listing_is_sorted_and_skips_other_files() {
        let dir = std::env::temp_dir().join(format!("popper-bulldir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in [
            "10.ten",
            "2.downtime",
            "1.welcome",
            "notes",
            ".3.hidden",
            "2.again",
        ] {
            std::fs::write(dir.join(n), b"x").unwrap();
        }
        let (got, odd) = list(&dir).unwrap();
        let names: Vec<&str> = got.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["1.welcome", "2.again", "2.downtime", "10.ten"]);
        assert!(odd.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(list(&dir).is_err());
    }

    #[test]
    fn a_missing_directory_is_said_in_words() {
        let dir = Path::new("/nonexistent-bulls");
        assert_eq!(
            unreadable(dir).as_deref(),
            Some(
                "Unable to open bulletin directory '/nonexistent-bulls'. (No such file or directory, errno 2)"
            )
        );
        assert_eq!(unreadable(Path::new("/")), None);
    }
}
