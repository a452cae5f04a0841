//! Adding mail to a Maildir at login, exactly once (bulletins): each
//! message is delivered as any Maildir delivery agent delivers, then the
//! source records them.
//!
//! Delivery: `tmp/NAME` is made (`O_CREAT|O_EXCL`, 0600, never through a
//! link), written, fsynced, renamed to `new/NAME` (never replacing a
//! file), and `new/` is fsynced; only then is the next message written.
//! The content is `NewMessage::content` as it is: a Maildir message has
//! no `From ` envelope.
//!
//! Exactly once: delivering and recording (`~/.popbull`) are two steps, so
//! the name of each message says which delivery it is —
//! `TIME.popper-bulletin-THROUGH-I.HOST` for the `I`th message of the
//! arrivals recorded as `THROUGH` — and before delivering, a message whose
//! name in `new/` or `cur/` has `.popper-bulletin-THROUGH-I.` in it is
//! taken as delivered by a popper that died before it recorded. A crash
//! between the rename and the record therefore delivers nothing twice:
//! the next login finds the messages, delivers only the missing ones, and
//! records. A record that fails fails the login (as for the mbox spool):
//! the messages stay in `new/`, not served — a client could delete them,
//! and the next login would deliver them again. A delivery that cannot be
//! finished (a full disk) takes back what it put in `new/` and the login
//! goes on without them; only if that fails too does the login fail.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::list::Sub;
use super::ops::{rename_no_replace, sync_dir};
use crate::maildrop::error::MaildropError;
use crate::maildrop::login_mail::{Arrivals, LoginMail};

/// What every name popper delivers has in it.
const MARK: &str = ".popper-bulletin-";

/// The part of a name that identifies message `i` of the arrivals
/// recorded as `through` (with the dots around it, so `-1.` is not found
/// in `-10.`).
fn tag(through: u64, i: usize) -> String {
    format!("{MARK}{through}-{i}.")
}

/// The name message `i` of the arrivals recorded as `through` is delivered
/// under, at `time` on `host`.
pub fn name(time: i64, through: u64, i: usize, host: &str) -> String {
    format!("{time}{}{host}", tag(through, i))
}

/// The host name as a Maildir name may hold it: `/` and `:` written as
/// `\057` and `\072` (as qmail does), anything that is not printable
/// ASCII as `_`.
pub fn safe_host(host: &str) -> String {
    let mut out = String::with_capacity(host.len());
    for c in host.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            '!'..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    if out.is_empty() {
        out.push_str("localhost");
    }
    out
}

/// This host's name, made safe for a Maildir name.
fn host() -> String {
    let h = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    safe_host(&h)
}

/// The `(through, i)` of every message popper delivered that is in `new/`
/// or `cur/` now.
fn delivered(root: &Path) -> io::Result<HashSet<(u64, usize)>> {
    let mut out = HashSet::new();
    for sub in [Sub::New, Sub::Cur] {
        for entry in std::fs::read_dir(root.join(sub.dir()))? {
            let name = entry?.file_name();
            if let Some(key) = parse_tag(name.as_bytes()) {
                out.insert(key);
            }
        }
    }
    Ok(out)
}

/// The `(through, i)` a delivered name carries.
fn parse_tag(name: &[u8]) -> Option<(u64, usize)> {
    let at = memchr::memmem::find(name, MARK.as_bytes())?;
    let rest = &name[at + MARK.len()..];
    let dot = memchr::memchr(b'.', rest)?;
    let (through, i) = std::str::from_utf8(&rest[..dot]).ok()?.split_once('-')?;
    Some((through.parse().ok()?, i.parse().ok()?))
}

/// Asks `mail` what is due and delivers it into the Maildir `root`, then
/// records it. `tmp` says whether `tmp/` exists. A delivery that fails is
/// taken back and the login goes on (noted; the next login tries again);
/// a record that fails, or a delivery that cannot be taken back, fails
/// the login.
pub fn deliver(
    root: &Path,
    tmp: bool,
    mail: &dyn LoginMail,
    notes: &mut Vec<String>,
) -> Result<(), MaildropError> {
    let Some(a) = mail.arrivals(notes) else {
        return Ok(());
    };
    let shown = root.display();
    if !tmp {
        notes.push(format!(
            "{shown} has no tmp/ directory; {} wait for the next login",
            a.what
        ));
        return Ok(());
    }
    match write_all(root, &a) {
        Ok(0) => {}
        Ok(n) => notes.push(format!("added {} to {shown} ({n} messages)", a.what)),
        Err(e) => {
            notes.push(format!(
                "could not add {} to {shown}: {e}; tried again at the next login",
                a.what
            ));
            return take_back(root, a.through).map_err(|e| {
                notes.push(format!(
                    "could not take back the unrecorded messages added to {shown}: {e}"
                ));
                MaildropError::Interrupted {
                    path: shown.to_string(),
                    errno: e.raw_os_error().unwrap_or(0),
                }
            });
        }
    }
    mail.record(a.through).map_err(|e| {
        notes.push(format!(
            "messages added at login are in {shown} but could not be recorded as delivered ({e}); the next login records them"
        ));
        MaildropError::Interrupted {
            path: shown.to_string(),
            errno: 0,
        }
    })
}

/// Unlinks from `new/` the messages of the arrivals recorded as `through`
/// after a delivery that could not be finished: unrecorded, they must not
/// be served (a client could delete one, and the next login would deliver
/// it again). One another reader already moved to `cur/` stays.
fn take_back(root: &Path, through: u64) -> io::Result<()> {
    let new = root.join(Sub::New.dir());
    let mut any = false;
    for entry in std::fs::read_dir(&new)? {
        let name = entry?.file_name();
        if parse_tag(name.as_bytes()).is_some_and(|(t, _)| t == through) {
            match std::fs::remove_file(new.join(&name)) {
                Ok(()) => any = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if any {
        sync_dir(&new)?;
    }
    Ok(())
}

/// Delivers the messages not yet in the Maildir; returns how many.
fn write_all(root: &Path, a: &Arrivals) -> io::Result<usize> {
    let done = delivered(root)?;
    let (time, host) = (crate::clock::now(), host());
    let mut n = 0;
    for (i, m) in a.msgs.iter().enumerate() {
        if done.contains(&(a.through, i)) {
            continue;
        }
        let name = name(time, a.through, i, &host);
        write_one(root, &name, &m.content)?;
        n += 1;
    }
    Ok(n)
}

/// Delivers one message as `new/NAME` through `tmp/NAME`.
fn write_one(root: &Path, name: &str, content: &[u8]) -> io::Result<()> {
    let tmp = root.join("tmp").join(name);
    let new = root.join("new").join(name);
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(&tmp)
    };
    let mut f = match open() {
        // Left by a popper that died before its rename (the name is not in
        // new/ or cur/): ours to replace.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp)?;
            open()?
        }
        other => other?,
    };
    let written = f
        .write_all(content)
        .and_then(|()| f.sync_all())
        .and_then(|()| rename_no_replace(&tmp, &new));
    drop(f);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&root.join("new"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildrop::login_mail::NewMessage;
    use crate::maildrop::maildir::fixture::{Fx, at};
    use std::cell::{Cell, RefCell};

    /// A bulletin source: `due` until recorded, recording made to fail.
    struct Source {
        due: Vec<Vec<u8>>,
        through: u64,
        recorded: Cell<Option<u64>>,
        fail_record: Cell<bool>,
        asked: RefCell<u32>,
    }

    impl Source {
        fn new(due: &[&str], through: u64) -> Source {
            Source {
                due: due.iter().map(|d| d.as_bytes().to_vec()).collect(),
                through,
                recorded: Cell::new(None),
                fail_record: Cell::new(false),
                asked: RefCell::new(0),
            }
        }
    }

    impl LoginMail for Source {
        fn arrivals(&self, _notes: &mut Vec<String>) -> Option<Arrivals> {
            *self.asked.borrow_mut() += 1;
            if self.recorded.get() >= Some(self.through) || self.due.is_empty() {
                return None;
            }
            Some(Arrivals {
                msgs: self
                    .due
                    .iter()
                    .map(|c| NewMessage {
                        envelope: b"From root Mon Nov 30 10:00:00 2026".to_vec(),
                        content: c.clone(),
                    })
                    .collect(),
                through: self.through,
                what: "bulletins 7.a, 8.b".into(),
            })
        }

        fn record(&self, through: u64) -> Result<(), MaildropError> {
            if self.fail_record.get() {
                return Err(MaildropError::Io {
                    op: "write".into(),
                    path: "/home/u/.popbull".into(),
                    errno: libc::EIO,
                });
            }
            self.recorded.set(Some(through));
            Ok(())
        }
    }

    fn contents(fx: &Fx, sub: &str) -> Vec<Vec<u8>> {
        fx.names(sub)
            .iter()
            .map(|n| std::fs::read(fx.root.join(sub).join(n)).unwrap())
            .collect()
    }

    #[test]
    fn names_and_tags() {
        assert_eq!(safe_host("mail.example"), "mail.example");
        assert_eq!(safe_host("a/b:c d"), "a\\057b\\072c_d");
        assert_eq!(safe_host(""), "localhost");
        let n = name(1_700_000_000, 8, 1, "h");
        assert_eq!(n, "1700000000.popper-bulletin-8-1.h");
        type Case<'a> = (&'a [u8], Option<(u64, usize)>);
        let cases: &[Case] = &[
            (b"1700000000.popper-bulletin-8-1.h", Some((8, 1))),
            (b"1700000000.popper-bulletin-8-10.h:2,S", Some((8, 10))),
            (b"1700000000.popper-bulletin-8.h", None),
            (b"1700000000.M1P2.h", None),
            (b"x.popper-bulletin-a-1.h", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_tag(name), *want, "{name:?}");
        }
    }

    #[test]
    fn delivered_once_then_recorded() {
        let fx = Fx::new("deliver");
        let src = Source::new(&["Subject: one\n\nbody\n", "Subject: two\n\n"], 8);
        let mut notes = Vec::new();
        deliver(&fx.root, true, &src, &mut notes).unwrap();
        assert_eq!(src.recorded.get(), Some(8));
        let names = fx.names("new");
        assert_eq!(names.len(), 2);
        assert!(names[0].contains(".popper-bulletin-8-0."), "{names:?}");
        assert!(names[1].contains(".popper-bulletin-8-1."), "{names:?}");
        assert_eq!(
            contents(&fx, "new"),
            [
                b"Subject: one\n\nbody\n".to_vec(),
                b"Subject: two\n\n".to_vec()
            ]
        );
        assert!(fx.names("tmp").is_empty());
        for n in &names {
            let md = std::fs::metadata(fx.root.join("new").join(n)).unwrap();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
                0o600
            );
        }
        assert_eq!(
            notes,
            [format!(
                "added bulletins 7.a, 8.b to {} (2 messages)",
                fx.root.display()
            )]
        );
        // Recorded: nothing more.
        deliver(&fx.root, true, &src, &mut Vec::new()).unwrap();
        assert_eq!(fx.names("new").len(), 2);
    }

    #[test]
    fn a_crash_before_the_record_delivers_nothing_twice() {
        let fx = Fx::new("deliver-crash");
        let src = Source::new(
            &["Subject: one\n\n", "Subject: two\n\n", "Subject: three\n\n"],
            8,
        );
        // The first login dies after delivering (the record fails, as a
        // crash before it would leave things): the login fails.
        src.fail_record.set(true);
        let mut notes = Vec::new();
        let e = deliver(&fx.root, true, &src, &mut notes).unwrap_err();
        assert!(matches!(e, MaildropError::Interrupted { .. }));
        assert!(
            notes.iter().any(|n| n.contains("could not be recorded")),
            "{notes:?}"
        );
        assert_eq!(fx.names("new").len(), 3);
        // Meanwhile a reader moved one to cur/ and another dies half-way:
        // one is gone from new/ (as if its rename never happened).
        let names = fx.names("new");
        std::fs::rename(
            fx.root.join("new").join(&names[0]),
            fx.root.join("cur").join(format!("{}:2,S", names[0])),
        )
        .unwrap();
        std::fs::remove_file(fx.root.join("new").join(&names[2])).unwrap();
        // The next login delivers only the missing one, and records.
        src.fail_record.set(false);
        let mut notes = Vec::new();
        deliver(&fx.root, true, &src, &mut notes).unwrap();
        assert_eq!(src.recorded.get(), Some(8));
        assert_eq!(fx.names("cur").len(), 1);
        let new = fx.names("new");
        assert_eq!(new.len(), 2, "{new:?}");
        assert!(new.iter().any(|n| n.contains("-8-1.")) && new.iter().any(|n| n.contains("-8-2.")));
        assert!(notes[0].contains("(1 messages)"), "{notes:?}");
        // Once more: nothing.
        deliver(&fx.root, true, &src, &mut Vec::new()).unwrap();
        assert_eq!(fx.names("new").len() + fx.names("cur").len(), 3);
    }

    #[test]
    fn a_delivery_that_fails_is_taken_back() {
        let fx = Fx::new("deliver-fail");
        let src = Source::new(&["Subject: one\n\n", "Subject: two\n\n"], 8);
        // The first was delivered by a popper that died; the second cannot
        // be written (tmp/ is not a directory).
        let first = name(1, 8, 0, "h");
        fx.put("new", &first, b"Subject: one\n\n", at(0, 0));
        fx.put("new", "1.other.h", b"x\n", at(0, 0));
        std::fs::remove_dir(fx.root.join("tmp")).unwrap();
        std::fs::write(fx.root.join("tmp"), b"").unwrap();
        let mut notes = Vec::new();
        deliver(&fx.root, true, &src, &mut notes).unwrap();
        assert_eq!(src.recorded.get(), None);
        assert_eq!(fx.names("new"), ["1.other.h"]);
        assert!(notes[0].starts_with("could not add bulletins"), "{notes:?}");
    }

    #[test]
    fn a_stale_temporary_file_is_replaced_and_no_tmp_waits() {
        let fx = Fx::new("deliver-tmp");
        let src = Source::new(&["Subject: one\n\n"], 3);
        let now = crate::clock::now();
        for t in [now, now + 1] {
            let n = name(t, 3, 0, &host());
            std::fs::write(fx.root.join("tmp").join(&n), b"half").unwrap();
        }
        deliver(&fx.root, true, &src, &mut Vec::new()).unwrap();
        assert_eq!(contents(&fx, "new"), [b"Subject: one\n\n".to_vec()]);
        let fx = Fx::new("deliver-notmp");
        let src = Source::new(&["Subject: one\n\n"], 3);
        let mut notes = Vec::new();
        deliver(&fx.root, false, &src, &mut notes).unwrap();
        assert_eq!(src.recorded.get(), None);
        assert!(fx.names("new").is_empty());
        assert!(notes[0].contains("no tmp/"), "{notes:?}");
    }
}
