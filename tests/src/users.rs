//! Test accounts: real entries in passwd and shadow, made (or repaired)
//! once per test run with `useradd` and `chpasswd`, so their passwords are
//! hashed the way Debian hashes them (yescrypt). They are kept after the
//! run (the next one reuses them); all are named `pt_*`, as the README
//! says, so they are easy to find and remove.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::wait::{LIMIT, OutputWithin};

/// A test account.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// Login name.
    pub name: String,
    /// Its password.
    pub password: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

static MADE: Mutex<Option<HashMap<String, TestUser>>> = Mutex::new(None);

/// The test account `name` (e.g. `pt_alice`), with password
/// `pw-NAME-1`, made if missing. `uid` asks for a specific uid (for
/// BLOCK_UID tests); `None` lets useradd pick one above 1000.
pub fn user_with_uid(name: &str, uid: Option<u32>) -> TestUser {
    crate::require_root();
    // The README tells administrators the tests leave accounts named
    // pt_* behind (and how to remove them): no other name may be made.
    assert!(
        name.starts_with("pt_"),
        "test account {name:?}: every test account is named pt_* (README)"
    );
    let mut made = MADE.lock().unwrap();
    let map = made.get_or_insert_with(HashMap::new);
    if let Some(u) = map.get(name) {
        return u.clone();
    }
    let password = format!("pw-{name}-1");
    if lookup(name).is_none() {
        let mut cmd = Command::new("useradd");
        cmd.args(["--create-home", "--user-group", "--shell", "/bin/sh"]);
        if let Some(uid) = uid {
            cmd.args(["--uid", &uid.to_string(), "--non-unique"]);
        }
        cmd.arg(name);
        crate::run(&mut cmd);
    }
    let mut child = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("chpasswd");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{name}:{password}\n").as_bytes())
        .unwrap();
    let out = crate::wait::wait_output(child, crate::wait::LIMIT);
    assert!(out.status.success(), "chpasswd {name}: {}", out.status);
    let (uid, gid, home) = lookup(name).expect("user just made");
    let u = TestUser {
        name: name.to_string(),
        password,
        uid,
        gid,
        home: PathBuf::from(home),
    };
    map.insert(name.to_string(), u.clone());
    u
}

/// The test account `name` with a uid chosen by useradd.
pub fn user(name: &str) -> TestUser {
    user_with_uid(name, None)
}

fn lookup(name: &str) -> Option<(u32, u32, String)> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output_within(LIMIT);
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8(out.stdout).ok()?;
    let f: Vec<&str> = line.trim_end().split(':').collect();
    Some((
        f.get(2)?.parse().ok()?,
        f.get(3)?.parse().ok()?,
        f.get(5)?.to_string(),
    ))
}

/// The gid of the `mail` group (Debian: 8).
pub fn mail_gid() -> u32 {
    let out = crate::run(Command::new("getent").args(["group", "mail"]));
    String::from_utf8(out.stdout)
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap()
}

/// The `pop` system account popauth runs as (made by `scripts/setup.sh`,
/// as `make install` does); its uid and gid.
pub fn pop() -> (u32, u32) {
    let out = Command::new("getent")
        .args(["passwd", "pop"])
        .output_within(LIMIT);
    assert!(
        out.status.success(),
        "there is no `pop` user: scripts/setup.sh test makes it (adduser --system --group pop)"
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = line.trim_end().split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}
