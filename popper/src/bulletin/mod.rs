//! Bulletins: qpopper's way to tell every user something, such as planned
//! downtime (qpopper.md §10, DECISIONS.md). Built with the default Cargo
//! feature `bulletins`; without it this module does not exist and `-b` is
//! refused.
//!
//! The administrator drops `NUMBER.name` files, each one complete message,
//! into the bulletin directory (`-b DIR` / `bulldir`). At login a user
//! receives every bulletin numbered above the one `~/.popbull` records —
//! a new user only the newest `max-bulletins` — as mail added to the end of
//! the spool (`maildrop/mbox/append.rs`, which makes "added" and
//! "recorded" one crash-safe step).
//!
//! COMPAT qpopper 2.53: if any bulletin due cannot be delivered (its first
//! line is not a `From ` envelope, or it cannot be read), none is, the
//! record is not advanced, and the log says which one; the next login
//! tries again.

pub mod compose;
pub mod dir;
pub mod state;

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::maildrop::error::MaildropError;
use crate::maildrop::error::fs_error;
use crate::maildrop::login_mail::{Arrivals, LoginMail};
use crate::privilege::Dropped;

pub use crate::limits::MAX_BULLETIN;

/// The bulletins of one login.
#[derive(Debug)]
pub struct BulletinSource {
    dir: PathBuf,
    max_new: u64,
    state: PathBuf,
    to: String,
    login_time: i64,
}

impl BulletinSource {
    /// Bulletins from `dir` for the user `owner` became: `home` holds
    /// `.popbull`, `to` is the `To:` they get (`USER@HOST`), `login_time`
    /// makes their UIDs. A new user gets the newest `max_new`.
    pub fn new(
        _owner: &Dropped,
        dir: &Path,
        max_new: u64,
        home: &Path,
        to: String,
        login_time: i64,
    ) -> BulletinSource {
        BulletinSource {
            dir: dir.to_path_buf(),
            max_new,
            state: home.join(".popbull"),
            to,
            login_time,
        }
    }
}

impl LoginMail for BulletinSource {
    fn arrivals(&self, notes: &mut Vec<String>) -> Option<Arrivals> {
        let (list, odd) = match dir::list(&self.dir) {
            Ok(l) => l,
            Err(e) => {
                // COMPAT qpopper 2.53: its wording (with the reason in
                // words added); the login goes on.
                notes.push(dir::open_error(&self.dir, &e));
                return None;
            }
        };
        notes.extend(odd);
        let newest = list.last()?.number;
        let shown = self.state.display();
        let (seen, new_user) = match state::read(&self.state) {
            Ok(Some(n)) => (n, false),
            Ok(None) => (newest.saturating_sub(self.max_new), true),
            Err(e) => {
                notes.push(format!("cannot read {shown}: {e}; no bulletins this time"));
                return None;
            }
        };
        let due: Vec<&dir::Bulletin> = list.iter().filter(|b| b.number > seen).collect();
        // Written before anything is added (as qpopper does for a new
        // user): a record that cannot be written would have every login
        // deliver the same bulletins again.
        if (new_user || !due.is_empty())
            && let Err(e) = state::write(&self.state, seen)
        {
            notes.push(format!("cannot write {shown}: {e}; no bulletins this time"));
            return None;
        }
        if due.is_empty() {
            return None;
        }
        let mut msgs = Vec::with_capacity(due.len());
        for (i, b) in due.iter().enumerate() {
            let bytes = match read_bulletin(&b.path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    notes.push(format!("Unable to read bulletin {}: {e}", b.name));
                    return None;
                }
            };
            let uid = format!("{}.{i:03}", self.login_time);
            match compose::compose(&bytes, &self.to, &uid) {
                Ok(m) => msgs.push(m),
                Err(compose::BadBulletin::NoEnvelope) => {
                    // COMPAT qpopper 2.53: its log line.
                    notes.push(format!(
                        "Bulletin {} does not start with a valid \"From \" separator",
                        b.name
                    ));
                    return None;
                }
            }
        }
        let names: Vec<&str> = due.iter().map(|b| b.name.as_str()).collect();
        Some(Arrivals {
            msgs,
            through: newest,
            what: format!("bulletins {}", names.join(", ")),
        })
    }

    fn record(&self, through: u64) -> Result<(), MaildropError> {
        state::write(&self.state, through).map_err(|e| fs_error("write", &self.state, &e))
    }
}

/// The bytes of one bulletin file: a regular file (a FIFO must not hang
/// the login) of at most [`MAX_BULLETIN`] bytes.
fn read_bulletin(path: &Path) -> io::Result<Vec<u8>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)?;
    let md = f.metadata()?;
    if !md.file_type().is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if md.len() > MAX_BULLETIN {
        return Err(io::Error::other(format!(
            "larger than {} bytes",
            MAX_BULLETIN
        )));
    }
    let mut bytes = Vec::with_capacity(md.len() as usize);
    f.take(MAX_BULLETIN + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BULLETIN {
        return Err(io::Error::other(format!(
            "larger than {} bytes",
            MAX_BULLETIN
        )));
    }
    Ok(bytes)
}
