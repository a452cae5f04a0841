//! What popauth does for each [`Action`], with qpopper 2.53's messages and
//! exit codes (qpopper.md §6.1, §15.10): every failure is one line
//! `popauth: TEXT` on standard error and exit status 1; success is 0.
//!
//! popauth is installed setuid `pop` (mode 6755), so that anyone can change
//! their own secret in a file only `pop` can read. It is safe as such:
//! * who the caller is comes from the **real** uid, never from arguments or
//!   the environment (which `main` clears before anything else);
//! * the only file it opens with privilege is the database, at a path fixed
//!   when it was built; no option names a file (4.x's `-trace` and
//!   `-debug` are unknown options here: CVE-2001-1487) — except `-import`,
//!   which is refused on the real uid before anything is opened unless
//!   the caller is root;
//! * the database is opened without following symlinks and must be mode
//!   0600 (`db.rs`); the exclusive lock is held only while writing, never
//!   while the user types.

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};
use zeroize::Zeroizing;

use crate::cli::{self, Action};
use crate::db::{Access, AuthDb, DbError, LOCK_WAIT, strip_os};
use crate::prompt::Prompter;
use crate::record::{self, BadSecret};
use crate::strength;

/// The account that owns the database (qpopper's `POPUID`).
pub const POP_USER: &str = "pop";

/// The database path popauth was built for (`POPAUTH_DB=... cargo build`).
pub fn db_path() -> PathBuf {
    PathBuf::from(option_env!("POPAUTH_DB").unwrap_or(crate::db::DEFAULT_PATH))
}

/// A failure: its message (without the `popauth: ` prefix).
#[derive(Debug, PartialEq, Eq)]
pub struct Fail(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail(msg.into()))
}

/// Who is running popauth.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Real uid.
    pub uid: u32,
    /// The `pop` account's uid and gid.
    pub pop: (u32, u32),
}

impl Caller {
    fn is_root(&self) -> bool {
        self.uid == 0
    }
    fn is_pop(&self) -> bool {
        self.uid == self.pop.0
    }
    fn privileged(&self) -> bool {
        self.is_root() || self.is_pop()
    }
}

/// Runs popauth with `args` (without the program name); returns the exit
/// status.
pub fn run(args: &[String]) -> u8 {
    let mut prompter = Prompter::new();
    match run_with(args, &db_path(), &mut prompter) {
        Ok(()) => 0,
        Err(Fail(msg)) => {
            if !msg.is_empty() {
                eprintln!("popauth: {msg}");
            }
            1
        }
    }
}

/// [`run`] against the database at `db`.
pub fn run_with(args: &[String], db: &Path, p: &mut Prompter) -> Result<(), Fail> {
    let action = cli::parse(args).map_err(|e| Fail(e.to_string()))?;
    if action == Action::Help {
        println!("{}\n{}", cli::USAGE, cli::HELP);
        return Ok(());
    }
    let pop = match User::from_name(POP_USER) {
        Ok(Some(u)) => (u.uid.as_raw(), u.gid.as_raw()),
        _ => return fail(format!("\"{POP_USER}\": user-id unknown")),
    };
    let me = Caller {
        uid: Uid::current().as_raw(),
        pop,
    };
    let own_list = matches!(&action, Action::List { name: Some(n) } if name_of(me.uid).as_deref() == Some(n.as_str()));
    let needs_privilege = matches!(
        action,
        Action::Init { .. } | Action::User { .. } | Action::Delete { .. } | Action::List { .. }
    ) && !own_list;
    if matches!(action, Action::Import { .. }) && !me.is_root() {
        return fail("Only superuser can import a database");
    }
    if needs_privilege && !me.privileged() {
        return fail("Only superuser or user 'pop' can perform the requested function");
    }
    become_for(&me)?;
    match action {
        Action::Help => Ok(()),
        Action::Init { safe } => init(&me, db, safe, p),
        Action::List { name } => list(db, name.as_deref()),
        Action::Import { base, dest, force } => {
            let dest = dest.map(PathBuf::from).unwrap_or_else(|| db.to_path_buf());
            import(&me, Path::new(&base), &dest, force)
        }
        Action::Delete { name } => delete(db, &name),
        Action::User {
            name,
            secret: Some(secret),
        } => {
            let name = canonical_name(&name)?;
            let value = encode(Zeroizing::new(secret.into_bytes()).as_slice())?;
            store(db, &name, &value)
        }
        Action::User { name, secret: None } => {
            let name = canonical_name(&name)?;
            change(&me, db, &name, p)
        }
        Action::ChangeOwn => {
            let Some(name) = name_of(me.uid) else {
                return fail(format!("Sorry, don't know who uid {} is.", me.uid));
            };
            change(&me, db, &name, p)
        }
    }
}

/// Settles popauth's identity for good. Root runs as root (the setuid bit
/// made the effective uid pop; -init must create and chown in /etc). Anyone
/// else becomes pop entirely — real, effective and saved ids — so the
/// caller, who owns the real uid of a setuid process, can no longer stop
/// or kill it while it holds the database (a stopped writer holds every
/// APOP login off; a killed one can leave gdbm's file half written).
fn become_for(me: &Caller) -> Result<(), Fail> {
    use nix::unistd::{setresgid, setresuid};
    if me.is_root() {
        let root = Uid::from_raw(0);
        return setresuid(root, root, root).map_err(|e| Fail(format!("setresuid: {e}")));
    }
    let (uid, gid) = (Uid::from_raw(me.pop.0), Gid::from_raw(me.pop.1));
    setresgid(gid, gid, gid).map_err(|e| Fail(format!("setresgid: {e}")))?;
    setresuid(uid, uid, uid).map_err(|e| Fail(format!("setresuid: {e}")))?;
    Ok(())
}

/// Runs `f` with the signals a terminal can send blocked (they bypass the
/// uid check: ^C, ^\\, ^Z) and with the file-size signal off, so that a
/// database write is never cut short by the caller.
fn uninterrupted<T>(f: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGHUP,
        Signal::SIGXFSZ,
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    let mut old = SigSet::empty();
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old));
    let r = f();
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    r
}

fn name_of(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The passwd name for `name` (COMPAT qpopper 2.53's text, with `%s`).
fn canonical_name(name: &str) -> Result<String, Fail> {
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u.name),
        _ => fail(format!("Sorry, don't know who uid {name} is.")),
    }
}

fn encode(secret: &[u8]) -> Result<Vec<u8>, Fail> {
    record::encode(secret).map_err(|e| match e {
        BadSecret::Empty => Fail("Password unchanged.".into()),
        BadSecret::Unstorable => Fail("a secret cannot contain NUL or 0xFF bytes".into()),
    })
}

fn open_read(db: &Path) -> Result<AuthDb, Fail> {
    AuthDb::open(db, Access::Read, LOCK_WAIT).map_err(|e| match e {
        DbError::Lock(_) => Fail(format!(
            "{}: unable to lock POP authorization DB",
            db.display()
        )),
        e @ DbError::WrongMode(_) => Fail(format!("POP authorization DB has {e}")),
        e => Fail(format!("unable to open POP authorization DB: {e}")),
    })
}

fn open_write(db: &Path) -> Result<AuthDb, Fail> {
    AuthDb::open(db, Access::Write, LOCK_WAIT).map_err(|e| match e {
        DbError::Lock(_) => Fail(format!(
            "{}: unable to lock POP authorization DB",
            db.display()
        )),
        e @ DbError::WrongMode(_) => Fail(format!("POP authorization DB has {e}")),
        _ => Fail(format!(
            "{}: unable to open POP authorization DB",
            db.display()
        )),
    })
}

fn init(me: &Caller, db: &Path, safe: bool, p: &mut Prompter) -> Result<(), Fail> {
    if !me.is_root() {
        return fail("Only superuser can init the database");
    }
    if std::fs::symlink_metadata(db).is_ok() {
        if safe {
            // 4.x's install step runs `popauth -init -safe`: keep what is there.
            return Ok(());
        }
        let answer = p
            .ask("Really initialize POP authorization DB? ")
            .map_err(|e| Fail(e.to_string()))?;
        if !answer.is_some_and(|a| a.starts_with('y')) {
            return fail("");
        }
    }
    // Made under a temporary name and renamed into place: the database is
    // always either the old one or a complete new one, never half made.
    let dir = db.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.new.{}",
        db.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let created = AuthDb::create(&tmp)
        .map_err(|e| Fail(format!("unable to create POP authorization DB: {e}")))?;
    let setup = (|| -> Result<(), String> {
        nix::unistd::fchown(
            created.file(),
            Some(Uid::from_raw(me.pop.0)),
            Some(Gid::from_raw(me.pop.1)),
        )
        .map_err(|e| format!("error setting ownership of POP authorization DB: {e}"))?;
        created
            .file()
            .sync_all()
            .map_err(|e| format!("unable to create POP authorization DB: {}", strip_os(&e)))?;
        Ok(())
    })();
    drop(created);
    let done = setup.and_then(|()| {
        std::fs::rename(&tmp, db)
            .map_err(|e| format!("unable to create POP authorization DB: {}", strip_os(&e)))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| strip_os(&e))
    });
    if let Err(msg) = done {
        let _ = std::fs::remove_file(&tmp);
        return fail(msg);
    }
    Ok(())
}

/// `-import BASE [DEST] [-f]`: reads the 2.53 database at `base`
/// ([`crate::import`]), then writes its records into a new gdbm file
/// under a temporary name beside `dest` (made with O_EXCL, 0600, owned by
/// pop, synced) and renames it over `dest` — without `-f` with
/// RENAME_NOREPLACE, so an existing database is never replaced, not even
/// one made meanwhile. Any failure leaves `dest` as it was.
fn import(me: &Caller, base: &Path, dest: &Path, force: bool) -> Result<(), Fail> {
    // The destination must not be one of the source's own files: -f would
    // replace the database being read with its copy half-way.
    for ext in ["dir", "pag", "db"] {
        if crate::import::with_ext(base, ext) == dest {
            return fail(format!(
                "{} is the database being imported: name another destination; nothing written",
                dest.display()
            ));
        }
    }
    if !force && std::fs::symlink_metadata(dest).is_ok() {
        return fail(format!(
            "{} exists: -import -f replaces it; nothing written",
            dest.display()
        ));
    }
    let source = crate::import::read(base).map_err(Fail)?;
    if source.records.is_empty() {
        return fail(format!(
            "{} holds no records: nothing to import (popauth -init makes an empty database); nothing written",
            source.data.display()
        ));
    }
    let foreign = crate::import::foreign_records(&source.records);
    let written = uninterrupted(|| write_import(me, dest, &source.records, force))?;
    let records = |n: usize| format!("{n} record{}", if n == 1 { "" } else { "s" });
    println!(
        "popauth: read {} from {} ({}); wrote {} to {}",
        records(source.records.len()),
        source.data.display(),
        source.flavour.describe(),
        records(written),
        dest.display()
    );
    if foreign > 0 {
        eprintln!(
            "popauth: warning: {foreign} of them have no NUL after the name (not qpopper's format): copied as they are, but popper will not find them"
        );
    }
    Ok(())
}

fn write_import(
    me: &Caller,
    dest: &Path,
    records: &[(Vec<u8>, Vec<u8>)],
    force: bool,
) -> Result<usize, Fail> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        Some(_) => Path::new("."),
        None => Path::new("/"),
    };
    let Some(name) = dest.file_name() else {
        return fail(format!("{}: not a file name", dest.display()));
    };
    let tmp = dir.join(format!(
        ".{}.import.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut created = AuthDb::create(&tmp).map_err(|e| {
        Fail(format!(
            "{}: unable to create POP authorization DB: {e}; nothing written",
            tmp.display()
        ))
    })?;
    let filled = (|| -> Result<usize, String> {
        nix::unistd::fchown(
            created.file(),
            Some(Uid::from_raw(me.pop.0)),
            Some(Gid::from_raw(me.pop.1)),
        )
        .map_err(|e| format!("error setting ownership of POP authorization DB: {e}"))?;
        let n = created
            .fill(records)
            .map_err(|e| format!("unable to write POP authorization DB: {e}"))?;
        if n != records.len() {
            return Err(format!(
                "wrote {n} records but read {}: duplicate keys?",
                records.len()
            ));
        }
        created
            .file()
            .sync_all()
            .map_err(|e| format!("unable to write POP authorization DB: {}", strip_os(&e)))?;
        Ok(n)
    })();
    drop(created);
    let done = filled.and_then(|n| {
        let flags = if force {
            nix::fcntl::RenameFlags::empty()
        } else {
            nix::fcntl::RenameFlags::RENAME_NOREPLACE
        };
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &tmp,
            nix::fcntl::AT_FDCWD,
            dest,
            flags,
        )
        .map_err(|e| match e {
            nix::errno::Errno::EEXIST => {
                format!("{} exists: -import -f replaces it", dest.display())
            }
            e => format!("{}: {}", dest.display(), e.desc()),
        })?;
        // The rename itself made durable.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| strip_os(&e))?;
        Ok(n)
    });
    match done {
        Ok(n) => Ok(n),
        Err(msg) => {
            let _ = std::fs::remove_file(&tmp);
            fail(format!("{msg}; nothing written"))
        }
    }
}

fn list(db: &Path, name: Option<&str>) -> Result<(), Fail> {
    let d = open_read(db)?;
    let mut out = std::io::stdout().lock();
    match name {
        Some(n) => match d.raw(n.as_bytes()) {
            Ok(Some(_)) => {
                let _ = writeln!(out, "{n}");
                Ok(())
            }
            Ok(None) => fail("no such entry in POP authorization DB"),
            Err(e) => fail(format!("unable to read POP authorization DB: {e}")),
        },
        None => {
            let names = d
                .names()
                .map_err(|e| Fail(format!("unable to read POP authorization DB: {e}")))?;
            for n in names {
                let shown = String::from_utf8_lossy(&n);
                match d.raw(&n) {
                    // A record without an APOP secret (empty, or qpopper 4's
                    // SCRAM-only layout) is flagged as 2.53 flagged empty ones.
                    Ok(Some(v)) if !record::decode(&v).is_empty() => {
                        let _ = writeln!(out, "{shown}");
                    }
                    _ => {
                        let _ = writeln!(out, "{shown} - no information?!?");
                    }
                }
            }
            Ok(())
        }
    }
}

fn delete(db: &Path, name: &str) -> Result<(), Fail> {
    uninterrupted(|| {
        let mut d = open_write(db)?;
        match d.delete(name.as_bytes()) {
            Ok(true) => Ok(()),
            Ok(false) => fail(format!("User '{name}' not found in apop database")),
            Err(_) => fail(format!("Unable to delete user '{name}' from apop database")),
        }
    })
}

fn store(db: &Path, name: &str, value: &[u8]) -> Result<(), Fail> {
    uninterrupted(|| {
        let mut d = open_write(db)?;
        d.set(name.as_bytes(), value)
            .map_err(|_| Fail("POP authorization DB may be corrupt?!?".into()))
    })
}

fn io_fail(e: std::io::Error) -> Fail {
    Fail(strip_os(&e))
}

/// Prompts for and stores `name`'s new secret (qpopper.md §6.1 steps 2–6).
fn change(me: &Caller, db: &Path, name: &str, p: &mut Prompter) -> Result<(), Fail> {
    // COMPAT qpopper 2.53: the database is opened first, then the banner.
    let old = {
        let d = open_read(db)?;
        d.raw(name.as_bytes())
            .map_err(|e| Fail(format!("unable to read POP authorization DB: {e}")))?
    };
    eprintln!("Changing POP password for {name}.");
    let old = old.map(Zeroizing::new);
    let old_secret = old.as_ref().map(|v| Zeroizing::new(record::decode(v)));
    if !me.privileged()
        && let (Some(raw), Some(decoded)) = (&old, &old_secret)
    {
        let given = p
            .secret("Old password:")
            .map_err(io_fail)?
            .unwrap_or_default();
        let stored_len = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        // COMPAT qpopper 2.53: the old password is compared as stored (an
        // old un-obscured database) and decoded.
        let same = |a: &[u8], b: &[u8]| {
            a.len() == b.len() && bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
        };
        let right = !given.is_empty()
            && given.len() == stored_len
            && (same(&given, &raw[..stored_len]) | same(&given, decoded));
        if !right {
            return fail("Sorry, password entered incorrectly\n");
        }
    }
    let mut new = Zeroizing::new(Vec::new());
    for round in 0..2 {
        new = p
            .secret("New password:")
            .map_err(io_fail)?
            .unwrap_or_default();
        let prefix_of_old = old_secret
            .as_ref()
            .is_some_and(|o| o.len() >= new.len() && o[..new.len()] == new[..]);
        if new.is_empty() || prefix_of_old {
            return fail("Password unchanged.");
        }
        match strength::check(&new) {
            Ok(()) => break,
            // COMPAT qpopper 2.53: a second weak password is taken.
            Err(w) if round == 0 => println!("{}", w.hint()),
            Err(_) => {}
        }
    }
    let again = p
        .secret("Retype new password:")
        .map_err(io_fail)?
        .unwrap_or_default();
    if again.as_slice() != new.as_slice() {
        return fail("Mismatch - password unchanged.");
    }
    let value = Zeroizing::new(encode(&new)?);
    store(db, name, &value)
}
