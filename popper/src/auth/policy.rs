//! Who may log in at all: qpopper's `AUTHFILE` (allow list) and
//! `NONAUTHFILE` (deny list), qpopper.md §8.
//!
//! COMPAT qpopper 2.53: one user name per line, matched exactly and case
//! sensitively against the name the client gave; an allow list that is
//! missing or unreadable lets nobody in; a deny list that is missing lets
//! everybody through. PASS checks the deny list first, APOP the allow list
//! first (the order only matters for which text a user listed in both
//! gets, and both give the same one).
//!
//! DEVIATION (DECISIONS.md): lines are trimmed of a CR and trailing blanks,
//! `#` starts a comment, and a last line without LF counts — 2.53 dropped
//! the last byte of every line, so a final line lost its last character
//! and CRLF files never matched.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

// Names longer than this cannot be logins (qpopper truncated to 64).
use crate::limits::MAX_USER as MAX_NAME;

/// The allow and deny lists in force (`None`: not enabled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lists<'a> {
    /// `auth-file`: only users listed here may log in.
    pub allow: Option<&'a Path>,
    /// `nonauth-file`: users listed here may not.
    pub deny: Option<&'a Path>,
}

/// Whether a list names `user`. A missing or unreadable list is `Err`.
pub fn lists_user(path: &Path, user: &[u8]) -> io::Result<bool> {
    let f = File::open(path)?;
    contains(BufReader::new(f), user)
}

/// [`lists_user`] over any reader (the file's contents).
pub fn contains<R: BufRead>(mut r: R, user: &[u8]) -> io::Result<bool> {
    if user.is_empty() || user.len() > MAX_NAME {
        return Ok(false);
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        // Lines are read with a bound: no user name is longer than 64
        // bytes, so a longer line is skipped to its end without storing it.
        let n = (&mut r).take(4096).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(false);
        }
        if !line.ends_with(b"\n") && n == 4096 {
            skip_line(&mut r)?;
            continue;
        }
        let mut entry = line.as_slice();
        if let Some(hash) = entry.iter().position(|b| *b == b'#') {
            entry = &entry[..hash];
        }
        while let Some((last, rest)) = entry.split_last() {
            if matches!(last, b'\n' | b'\r' | b' ' | b'\t') {
                entry = rest;
            } else {
                break;
            }
        }
        if entry == user {
            return Ok(true);
        }
    }
}

fn skip_line<R: BufRead>(r: &mut R) -> io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                r.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

/// Why the lists refuse a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Listed in the deny list.
    Denied,
    /// Not in the allow list.
    NotAllowed,
    /// The allow list could not be read (everyone is refused).
    AllowListUnreadable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Denied => f.write_str("listed in the deny list (nonauth-file)"),
            Refusal::NotAllowed => f.write_str("not in the allow list (auth-file)"),
            Refusal::AllowListUnreadable(e) => {
                write!(f, "the allow list (auth-file) cannot be read: {e}")
            }
        }
    }
}

/// Checks `user` against the lists, the deny list first (PASS order).
pub fn check_pass_order(lists: &Lists<'_>, user: &[u8]) -> Result<(), Refusal> {
    deny(lists, user)?;
    allow(lists, user)
}

/// Checks `user` against the lists, the allow list first (APOP order).
pub fn check_apop_order(lists: &Lists<'_>, user: &[u8]) -> Result<(), Refusal> {
    allow(lists, user)?;
    deny(lists, user)
}

fn deny(lists: &Lists<'_>, user: &[u8]) -> Result<(), Refusal> {
    match lists.deny.map(|p| lists_user(p, user)) {
        Some(Ok(true)) => Err(Refusal::Denied),
        // A missing or unreadable deny list refuses nobody.
        _ => Ok(()),
    }
}

fn allow(lists: &Lists<'_>, user: &[u8]) -> Result<(), Refusal> {
    match lists.allow.map(|p| lists_user(p, user)) {
        None | Some(Ok(true)) => Ok(()),
        Some(Ok(false)) => Err(Refusal::NotAllowed),
        Some(Err(e)) => Err(Refusal::AllowListUnreadable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(text: &[u8], user: &str) -> bool {
        contains(text, user.as_bytes()).unwrap()
    }

    #[test]
    fn matching_rules() {
        let list =
            b"alice\nbob\r\n  # a comment\ncarol   \n#dave\nerin # trailing comment\n\nfrank";
        for u in ["alice", "bob", "carol", "erin", "frank"] {
            assert!(has(list, u), "{u}");
        }
        for u in [
            "dave",
            "Alice",
            "alic",
            "alicex",
            "",
            " alice",
            "#dave",
            "a comment",
        ] {
            assert!(!has(list, u), "{u:?}");
        }
        // Leading blanks are kept, as qpopper kept them: " alice" is not alice.
        assert!(!has(b" alice\n", "alice"));
    }

    #[test]
    fn long_lines_and_names() {
        let mut list = vec![b'x'; 100_000];
        list.extend_from_slice(b"\nalice\n");
        assert!(has(&list, "alice"));
        let long = "a".repeat(65);
        let text = format!("{long}\n");
        assert!(
            !has(text.as_bytes(), &long),
            "no login is longer than 64 bytes"
        );
        let name64 = "b".repeat(64);
        assert!(has(format!("{name64}\n").as_bytes(), &name64));
    }

    #[test]
    fn missing_lists() {
        let nowhere = Path::new("/nonexistent/popper-list");
        let deny_only = Lists {
            allow: None,
            deny: Some(nowhere),
        };
        assert_eq!(check_pass_order(&deny_only, b"alice"), Ok(()));
        let allow_only = Lists {
            allow: Some(nowhere),
            deny: None,
        };
        assert!(matches!(
            check_pass_order(&allow_only, b"alice"),
            Err(Refusal::AllowListUnreadable(_))
        ));
        assert!(matches!(
            check_apop_order(&allow_only, b"alice"),
            Err(Refusal::AllowListUnreadable(_))
        ));
        assert_eq!(check_pass_order(&Lists::default(), b"alice"), Ok(()));
    }
}
