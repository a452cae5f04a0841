//! Who may log in: BLOCK_UID (by default, by configuration, by build), and
//! the allow and deny lists, for PASS and for APOP — each refusal with its
//! exact text and with or without the failure delay (measured, with the
//! delay configured short).

use std::path::Path;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use popper_e2e::pop::Pop;
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{TestUser, user, user_with_uid};

use crate::popauth::write_with_python;

const DELAY: f64 = 0.6;
const SECRET: &str = "policy-Secret1";

/// The users of the table: uid 0 is root itself (no second root account
/// with a known password is made).
struct Users {
    uid10: TestUser,
    uid11: TestUser,
    uid999: TestUser,
    alice: TestUser,
    bob: TestUser,
    carol: TestUser,
}

fn users() -> Users {
    Users {
        uid10: user_with_uid("pt_uid10", Some(10)),
        uid11: user_with_uid("pt_uid11", Some(11)),
        uid999: user_with_uid("pt_uid999", Some(999)),
        alice: user("pt_alice"),
        bob: user("pt_bob"),
        carol: user("pt_carol"),
    }
}

/// A sandbox serving `popper` with the failure delay set to [`DELAY`],
/// `conf` added, and APOP secrets for every test user.
fn serve(name: &str, popper: &Path, conf: &str, u: &Users) -> (Sandbox, u16) {
    let mut sb = Sandbox::new(name);
    sb.overlay_etc();
    sb.set(&format!("set auth-fail-delay = {DELAY}"));
    for l in conf.lines() {
        sb.set(l);
    }
    let names = [&u.uid10, &u.uid11, &u.uid999, &u.alice, &u.bob, &u.carol];
    let records: Vec<(&str, &str)> = names
        .iter()
        .map(|t| (t.name.as_str(), SECRET))
        .chain([("root", SECRET)])
        .collect();
    write_with_python(&sb.etc("pop.auth"), &records);
    let port = sb.inetd(popper, &crate::popper_args(&sb, &[]));
    (sb, port)
}

/// USER + PASS with the user's password (the APOP record would make USER
/// refuse, so PASS runs on a database-less server; see `pass_server`).
fn pass(port: u16, name: &str, password: &str) -> (String, Duration) {
    let mut p = Pop::connect(port);
    let r = p.cmd(&format!("USER {name}"));
    assert!(r.starts_with("+OK"), "USER {name}: {r}");
    let t = Instant::now();
    let r = p.cmd(&format!("PASS {password}"));
    (r, t.elapsed())
}

fn apop(port: u16, name: &str) -> (String, Duration) {
    let mut p = Pop::connect(port);
    let c = &p.greeting[p.greeting.find('<').unwrap()..];
    let d: String = Md5::digest([c.as_bytes(), SECRET.as_bytes()].concat())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let t = Instant::now();
    let r = p.cmd(&format!("APOP {name} {d}"));
    (r, t.elapsed())
}

/// A server for PASS: the same settings, but no APOP database (with one,
/// USER refuses every user who has a secret).
fn pass_server(name: &str, popper: &Path, conf: &str) -> (Sandbox, u16) {
    let mut sb = Sandbox::new(name);
    sb.set(&format!("set auth-fail-delay = {DELAY}"));
    for l in conf.lines() {
        sb.set(l);
    }
    let port = sb.inetd(popper, &crate::popper_args(&sb, &[]));
    (sb, port)
}

fn delayed(d: Duration) -> bool {
    d >= Duration::from_secs_f64(DELAY * 0.9)
}

fn e1(name: &str) -> String {
    format!("-ERR [AUTH] Password supplied for \"{name}\" is incorrect.")
}

#[test]
fn block_uid_default_10() {
    let u = users();
    let popper = popper_e2e::bins::popper();
    let (_sb, port) = pass_server("policy-block10", &popper, "");
    // uid 0 and uid 10: refused at once (COMPAT: "below" means "at or below").
    let (r, d) = pass(port, "root", "whatever");
    assert_eq!(r, "-ERR [AUTH] Access is blocked for UIDs below 10");
    assert!(!delayed(d), "BLOCK_UID is answered at once: {d:?}");
    let (r, d) = pass(port, &u.uid10.name, &u.uid10.password);
    assert_eq!(r, "-ERR [AUTH] Access is blocked for UIDs below 10");
    assert!(!delayed(d));
    for t in [&u.uid11, &u.uid999] {
        let (r, _) = pass(port, &t.name, &t.password);
        assert!(r.starts_with(&format!("+OK {} has ", t.name)), "{r}");
    }
    // APOP does not apply BLOCK_UID: only root is refused.
    let (_sb, port) = serve("policy-block10-apop", &popper, "", &u);
    let (r, d) = apop(port, "root");
    assert_eq!(r, "-ERR [AUTH] User root login denied.");
    assert!(!delayed(d));
    for t in [&u.uid10, &u.uid11, &u.uid999] {
        let (r, _) = apop(port, &t.name);
        assert!(r.starts_with(&format!("+OK {} has ", t.name)), "{r}");
    }
}

#[test]
fn block_uid_1000_by_configuration() {
    let u = users();
    let popper = popper_e2e::bins::popper();
    let (_sb, port) = pass_server("policy-block1000", &popper, "set block-uid = 1000");
    for t in [&u.uid10, &u.uid11, &u.uid999] {
        let (r, d) = pass(port, &t.name, &t.password);
        assert_eq!(
            r, "-ERR [AUTH] Access is blocked for UIDs below 1000",
            "{}",
            t.name
        );
        assert!(!delayed(d));
    }
    let (r, _) = pass(port, &u.alice.name, &u.alice.password);
    assert!(r.starts_with("+OK"), "{r}");
    let (_sb, port) = serve("policy-block1000-apop", &popper, "set block-uid = 1000", &u);
    let (r, _) = apop(port, &u.uid999.name);
    assert!(r.starts_with("+OK"), "APOP ignores BLOCK_UID: {r}");
}

#[test]
fn block_uid_1000_by_build_and_root_overrides_it() {
    let u = users();
    let popper = popper_e2e::bins::popper_block_uid_1000();
    let v = popper_e2e::run(std::process::Command::new(&popper).arg("-V"));
    assert!(String::from_utf8_lossy(&v.stdout).contains("\nblock-uid = 1000\n"));
    let (_sb, port) = pass_server("policy-build1000", &popper, "");
    let (r, _) = pass(port, &u.uid999.name, &u.uid999.password);
    assert_eq!(r, "-ERR [AUTH] Access is blocked for UIDs below 1000");
    let (_sb, port) = pass_server("policy-build1000-conf", &popper, "set block-uid = 10");
    let (r, _) = pass(port, &u.uid999.name, &u.uid999.password);
    assert!(r.starts_with("+OK"), "the configuration file wins: {r}");
}

#[test]
fn the_allow_list() {
    let u = users();
    let popper = popper_e2e::bins::popper();
    let dir = std::env::temp_dir().join(format!("popper-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("authfile");
    // CRLF, a comment, trailing blanks and a last line without LF.
    std::fs::write(
        &list,
        format!(
            "{}\r\n# staff only\n{}  \n{}",
            u.alice.name, u.uid11.name, u.carol.name
        ),
    )
    .unwrap();
    let conf = format!("set auth-file = {}", list.display());
    let (_sb, port) = pass_server("policy-allow", &popper, &conf);
    for t in [&u.alice, &u.uid11, &u.carol] {
        let (r, _) = pass(port, &t.name, &t.password);
        assert!(r.starts_with("+OK"), "{}: {r}", t.name);
    }
    let (r, d) = pass(port, &u.bob.name, &u.bob.password);
    assert_eq!(
        r,
        e1(&u.bob.name),
        "an unlisted user looks like a wrong password"
    );
    assert!(delayed(d), "{d:?}");
    let (_sb, port) = serve("policy-allow-apop", &popper, &conf, &u);
    let (r, d) = apop(port, &u.bob.name);
    assert_eq!(r, "-ERR [AUTH] Permission denied.");
    assert!(!delayed(d));
    let (r, _) = apop(port, &u.alice.name);
    assert!(r.starts_with("+OK"), "{r}");
    // Missing: nobody may log in.
    let conf = "set auth-file = /nonexistent/authfile";
    let (_sb, port) = pass_server("policy-allow-missing", &popper, conf);
    let (r, d) = pass(port, &u.alice.name, &u.alice.password);
    assert_eq!(r, e1(&u.alice.name));
    assert!(delayed(d));
    let (_sb, port) = serve("policy-allow-missing-apop", &popper, conf, &u);
    assert_eq!(
        apop(port, &u.alice.name).0,
        "-ERR [AUTH] Permission denied."
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_allow_list_at_its_default_path() {
    let u = users();
    let mut sb = Sandbox::new("policy-allow-default");
    sb.overlay_etc();
    std::fs::write(sb.etc("authfile"), format!("{}\n", u.alice.name)).unwrap();
    sb.set(&format!("set auth-fail-delay = {DELAY}"));
    sb.set("set auth-file");
    let port = sb.inetd(&popper_e2e::bins::popper(), &crate::popper_args(&sb, &[]));
    assert!(
        pass(port, &u.alice.name, &u.alice.password)
            .0
            .starts_with("+OK")
    );
    assert_eq!(pass(port, &u.bob.name, &u.bob.password).0, e1(&u.bob.name));
    assert!(
        sb.trace().contains(&format!(
            "Failed attempted login to {} from host 127.0.0.1 (not in the allow list (auth-file))",
            u.bob.name
        )),
        "{}",
        sb.trace()
    );
}

#[test]
fn the_deny_list() {
    let u = users();
    let popper = popper_e2e::bins::popper();
    let dir = std::env::temp_dir().join(format!("popper-policy-deny-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("nonauthfile");
    std::fs::write(&list, format!("{}\n", u.bob.name)).unwrap();
    let conf = format!("set nonauth-file = {}", list.display());
    let (_sb, port) = pass_server("policy-deny", &popper, &conf);
    let (r, d) = pass(port, &u.bob.name, &u.bob.password);
    assert_eq!(r, e1(&u.bob.name));
    assert!(delayed(d), "{d:?}");
    assert!(
        pass(port, &u.alice.name, &u.alice.password)
            .0
            .starts_with("+OK")
    );
    let (_sb, port) = serve("policy-deny-apop", &popper, &conf, &u);
    let (r, d) = apop(port, &u.bob.name);
    assert_eq!(r, "-ERR [AUTH] Permission denied.");
    assert!(!delayed(d));
    assert!(apop(port, &u.alice.name).0.starts_with("+OK"));
    // Missing: nobody is denied.
    let (_sb, port) = pass_server(
        "policy-deny-missing",
        &popper,
        "set nonauth-file = /nonexistent/nonauthfile",
    );
    assert!(
        pass(port, &u.bob.name, &u.bob.password)
            .0
            .starts_with("+OK")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failed_attempts_are_delayed_logged_and_limited_per_connection() {
    let u = users();
    let popper = popper_e2e::bins::popper();
    // The default limit is 3.
    let v = popper_e2e::run(std::process::Command::new(&popper).arg("-V"));
    assert!(String::from_utf8_lossy(&v.stdout).contains("max-auth-failures = 3\n"));
    let (sb, port) = pass_server("policy-limit", &popper, "set max-auth-failures = 2");
    let mut p = Pop::connect(port);
    p.cmd(&format!("USER {}", u.alice.name));
    let t = Instant::now();
    assert_eq!(p.cmd("PASS wrong-1"), e1(&u.alice.name));
    assert!(delayed(t.elapsed()));
    p.cmd(&format!("USER {}", u.alice.name));
    assert_eq!(
        p.cmd("PASS wrong-2"),
        "-ERR [AUTH] Too many failed login attempts; closing the connection."
    );
    assert!(p.line().contains("signing off"));
    assert!(p.rest().is_empty(), "the connection is closed");
    let log = sb.trace();
    assert!(
        log.contains("Too many failed login attempts from host 127.0.0.1"),
        "{log}"
    );
    assert_eq!(
        log.matches("Failed attempted login to pt_alice from host 127.0.0.1")
            .count(),
        2,
        "each failure is logged with the client address: {log}"
    );
    // 0: no limit.
    let (_sb, port) = pass_server("policy-nolimit", &popper, "set max-auth-failures = 0");
    let mut p = Pop::connect(port);
    for _ in 0..4 {
        p.cmd(&format!("USER {}", u.alice.name));
        assert_eq!(p.cmd("PASS wrong"), e1(&u.alice.name));
    }
    p.cmd(&format!("USER {}", u.alice.name));
    assert!(
        p.cmd(&format!("PASS {}", u.alice.password))
            .starts_with("+OK")
    );
}

#[test]
fn a_wrong_apop_digest_is_delayed_like_a_wrong_password() {
    // DEVIATION: 2.53 answered a wrong digest at once.
    let u = users();
    let popper = popper_e2e::bins::popper();
    let (_sb, port) = serve("policy-apop-delay", &popper, "", &u);
    let mut p = Pop::connect(port);
    let t = Instant::now();
    let r = p.cmd(&format!(
        "APOP {} 0123456789abcdef0123456789abcdef",
        u.alice.name
    ));
    assert_eq!(r, "-ERR [AUTH] authentication failure");
    assert!(delayed(t.elapsed()), "{:?}", t.elapsed());
    let t = Instant::now();
    let r = p.cmd("APOP pt_nosuch_user 0123456789abcdef0123456789abcdef");
    assert_eq!(r, e1("pt_nosuch_user"));
    assert!(delayed(t.elapsed()));
    // A good digest is not.
    let (r, d) = apop(port, &u.alice.name);
    assert!(r.starts_with("+OK"), "{r}");
    assert!(!delayed(d));
}
