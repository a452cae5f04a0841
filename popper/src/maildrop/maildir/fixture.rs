//! Test fixtures: Maildirs in temporary directories, messages with chosen
//! names and delivery times, and the marks of a real protocol session.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pop3_core::capa::Capabilities;
use pop3_core::greeting::Greeting;
use pop3_core::index::{Entry, Index, MsgIdx};
use pop3_core::marks::Marks;
use pop3_core::reply::Reply;
use pop3_core::sasl::Nonces;
use pop3_core::session::{Session, SessionConfig, Step};

use super::{MaildirDrop, MaildirOptions};
use crate::maildrop::error::MaildropError;
use crate::maildrop::login_mail::LoginMail;
use crate::privilege::Dropped;

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

    /// Its `new/` and `cur/`, open.
    pub fn dirs(&self) -> super::ops::Dirs {
        super::ops::Dirs::open(&self.root).unwrap()
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

    /// The settings of a test: everything on.
    pub fn opts(&self) -> MaildirOptions {
        MaildirOptions {
            path: self.root.clone(),
            update_status: true,
            size_index: true,
        }
    }

    /// Opens the Maildir as the user running the tests.
    pub fn open(&self) -> Result<MaildirDrop, MaildropError> {
        MaildirDrop::open(&Dropped::current_for_tests(), self.opts(), None)
    }

    /// Opens as [`Fx::open`] does ten seconds from now: the directories
    /// just made count as settled (`stamp.rs`), so the listing cache may
    /// be written whole, and taken whole.
    pub fn open_later(&self) -> Result<MaildirDrop, MaildropError> {
        MaildirDrop::open_at(&Dropped::current_for_tests(), self.opts(), None, || {
            SystemTime::now() + Duration::from_secs(10)
        })
    }

    /// Opens with these settings and this login mail.
    pub fn open_with(
        &self,
        opts: MaildirOptions,
        mail: Option<&dyn LoginMail>,
    ) -> Result<MaildirDrop, MaildropError> {
        MaildirDrop::open(&Dropped::current_for_tests(), opts, mail)
    }
}

/// A reply or a message sent; for a message, which and how.
fn expect_reply(step: Step<'_>, what: &str) -> Option<(MsgIdx, Option<u64>)> {
    match step {
        Step::Reply(Reply::Err(e)) => panic!("{what}: -ERR {e:?}"),
        Step::Reply(_) => None,
        Step::Send {
            msg, body_lines, ..
        } => Some((msg, body_lines)),
        other => panic!("{what}: unexpected step {other:?}"),
    }
}

/// Runs a real protocol session over `entries`: USER, PASS, `cmds`, QUIT.
/// Returns the marks the commit is given.
pub fn session_marks(entries: Vec<Entry>, cmds: &[&str]) -> Marks {
    let index = Index::new(entries);
    let cfg = SessionConfig::new(
        Greeting::new("test.example", "0.0.0", false, None),
        Capabilities::new(false, "0.0.0"),
        Nonces::new([0; 32]),
    );
    let mut s = Session::new(cfg);
    expect_reply(s.on_line(b"USER u"), "USER");
    match s.on_line(b"PASS secret") {
        Step::Authenticate(_) => {}
        other => panic!("PASS: {other:?}"),
    }
    expect_reply(s.on_auth(Ok(index.into())), "login");
    for c in cmds {
        if let Some((msg, body_lines)) = expect_reply(s.on_line(c.as_bytes()), c) {
            s.on_sent(msg, body_lines);
        }
    }
    match s.on_line(b"QUIT") {
        Step::Commit { .. } => {}
        other => panic!("QUIT: {other:?}"),
    }
    let (_, marks) = s.commit_marks().unwrap();
    marks.clone()
}
