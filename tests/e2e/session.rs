//! The session as a client and an administrator see it: greeting, login,
//! flags, logging, timeouts, aborted sessions.

use std::process::Command;
use std::time::{Duration, Instant};

use popper_e2e::mail::{Message, mbox};
use popper_e2e::pop::Pop;
use popper_e2e::users::user;
use popper_e2e::wait::{LIMIT, OutputWithin, wait_for, wait_output};

use crate::{login_lines, piped, served};

#[test]
fn greeting_login_and_sign_off_under_inetd() {
    let alice = user("pt_alice");
    let (sb, port) = served("greeting", &[]);
    sb.write_spool(
        &alice,
        &mbox(&[Message::new("x@example.com", "one", "hello")]),
    );
    let mut p = Pop::connect(port);
    // No APOP database: the greeting ends at "starting." (DECISIONS.md).
    let g = &p.greeting.clone();
    assert!(g.starts_with("+OK QPOP (version "), "{g}");
    assert!(g.ends_with(" starting."), "{g}");
    assert_eq!(
        p.cmd(&format!("USER {}", alice.name)),
        format!("+OK Password required for {}.", alice.name)
    );
    let r = p.cmd(&format!("PASS {}", alice.password));
    assert!(
        r.starts_with(&format!("+OK {} has 1 message (", alice.name)),
        "{r}"
    );
    let (s, caps) = p.multi("CAPA");
    assert_eq!(s, "+OK Capability list follows");
    let caps = String::from_utf8(caps).unwrap();
    for c in [
        "TOP",
        "USER",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "IMPLEMENTATION popper-",
    ] {
        assert!(caps.contains(c), "{c} missing in {caps}");
    }
    assert!(p.cmd("STAT").starts_with("+OK 1 "));
    let host = g
        .split(" at ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        p.cmd("QUIT"),
        format!("+OK Pop server at {host} signing off.")
    );
    assert!(p.rest().is_empty(), "connection closed after the sign-off");
    // The session's last log line (the statistics) and its last act (the
    // session lock removed) may come just after the connection closed.
    let stats = format!("Stats: {} 0 0 1 ", alice.name);
    let lock = sb.mail.join(format!(".{}.pop", alice.name));
    wait_for("the session's end", Duration::from_secs(10), || {
        let log = sb.trace();
        if log.contains(&stats) && !lock.exists() {
            Ok(())
        } else {
            Err(format!("session lock there: {}\n{log}", lock.exists()))
        }
    });
    // One message is "1 message" in the login line (regression: "1 messages").
    let log = sb.trace();
    assert!(
        log.contains("(1 message, ") && !log.contains("(1 messages"),
        "{log}"
    );
    let log = sb.trace();
    assert!(
        log.contains("Servicing request from \"127.0.0.1\""),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "POP login by user \"{}\" at 127.0.0.1",
            alice.name
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("Stats: {} 0 0 1 ", alice.name)),
        "{log}"
    );
    assert!(log.contains("Received: \"PASS xxxxxxxx\""), "{log}");
    assert!(
        !log.contains(&alice.password),
        "the password must never be logged: {log}"
    );
    assert!(
        !sb.mail.join(format!(".{}.pop", alice.name)).exists(),
        "session lock removed"
    );
}

#[test]
fn bad_password_and_unknown_user_get_the_same_delayed_text() {
    let alice = user("pt_alice");
    let (sb, port) = served("badpass", &[]);
    sb.set("set auth-fail-delay = 0.6");
    let mut p = Pop::connect(port);
    for (name, pass) in [(alice.name.as_str(), "wrong"), ("pt_nosuch", "x")] {
        p.cmd(&format!("USER {name}"));
        let t = Instant::now();
        let r = p.cmd(&format!("PASS {pass}"));
        assert_eq!(
            r,
            format!("-ERR [AUTH] Password supplied for \"{name}\" is incorrect.")
        );
        assert!(
            t.elapsed() >= Duration::from_millis(550),
            "no failure delay: {:?}",
            t.elapsed()
        );
    }
    // Back in AUTHORIZATION: PASS without USER is refused, a good login works.
    assert_eq!(p.cmd("PASS x"), "-ERR Unknown command: \"pass\".");
    assert!(p.login(&alice).starts_with("+OK"));
    p.cmd("QUIT");
    let log = sb.trace();
    assert!(
        log.contains(&format!(
            "Failed attempted login to {} from host 127.0.0.1",
            alice.name
        )),
        "{log}"
    );
    assert!(
        log.contains("Failed attempted login to pt_nosuch from host 127.0.0.1"),
        "{log}"
    );
}

#[test]
fn every_debian_password_hash_works() {
    let sb = popper_e2e::sandbox::Sandbox::new("hashes");
    for (name, method) in [
        ("pt_sha512", "SHA512"),
        ("pt_sha256", "SHA256"),
        ("pt_md5", "MD5"),
        ("pt_yes", "YESCRYPT"),
    ] {
        let u = user(name);
        let mut child = Command::new("chpasswd")
            .args(["-c", method])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{}:{}\n", u.name, u.password).as_bytes())
            .unwrap();
        assert!(wait_output(child, LIMIT).status.success());
        let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
        let hash = shadow
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .to_string();
        let prefix = match method {
            "SHA512" => "$6$",
            "SHA256" => "$5$",
            "MD5" => "$1$",
            _ => "$y$",
        };
        assert!(hash.starts_with(prefix), "{name}: {hash}");
        let (out, code) = piped(
            &sb,
            &[],
            format!("{}STAT\r\nQUIT\r\n", login_lines(&u)).as_bytes(),
        );
        assert!(
            out.contains(&format!("+OK {} has 0 messages (0 octets).", u.name)),
            "{method}: {out}"
        );
        assert_eq!(code, 0);
    }
}

#[test]
fn expired_account_is_refused() {
    let u = user("pt_expired");
    popper_e2e::run(Command::new("chage").args(["-E", "1", &u.name]));
    let sb = popper_e2e::sandbox::Sandbox::new("expired");
    let (out, _) = piped(&sb, &[], login_lines(&u).as_bytes());
    assert!(
        out.contains(&format!("-ERR [AUTH] \"{}\": account expired.", u.name)),
        "{out}"
    );
    // A wrong password never reveals the expiry.
    let (out, _) = piped(
        &sb,
        &[],
        format!("USER {}\r\nPASS nope\r\n", u.name).as_bytes(),
    );
    assert!(out.contains("Password supplied for"), "{out}");
}

#[test]
fn flags_version_usage_and_help() {
    let popper = popper_e2e::bins::popper();
    let v = Command::new(&popper).arg("-V").output_within(LIMIT);
    assert!(v.status.success());
    let text = String::from_utf8(v.stdout).unwrap();
    assert!(text.starts_with("popper version "), "{text}");
    assert!(text.contains("\nblock-uid = 10\n"), "{text}");
    for bad in [&["-x"][..], &["-T"], &["-T", "abc"], &["stray"]] {
        let o = Command::new(&popper).args(bad).output_within(LIMIT);
        assert_eq!(o.status.code(), Some(1), "{bad:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.contains("Usage: popper [-d] [-s]"), "{bad:?}: {err}");
    }
    let h = Command::new(&popper).arg("--help").output_within(LIMIT);
    assert!(h.status.success());
    let help = String::from_utf8(h.stdout).unwrap();
    assert!(help.contains("-T SECONDS"));
    // Every flag line is indented alike, the first too (regression).
    let flags: Vec<&str> = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .collect();
    assert!(flags.len() >= 8, "{help}");
    assert!(flags.iter().all(|l| l.starts_with("  -")), "{help}");
    let dir = std::env::temp_dir().join(format!("popper-badconf-{}", std::process::id()));
    std::fs::write(&dir, "set timeout = 5\nset nosuch = 1\n").unwrap();
    let o = Command::new(&popper)
        .args(["-f"])
        .arg(&dir)
        .output_within(LIMIT);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains(&format!("{}:2: unknown setting \"nosuch\"", dir.display())),
        "{err}"
    );
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn idle_timeout_in_authorization_and_transaction() {
    let alice = user("pt_alice");
    let (sb, port) = served("timeout", &["-T", "1"]);
    sb.write_spool(
        &alice,
        &mbox(&[
            Message::new("a@example.com", "one", "1"),
            Message::new("b@example.com", "two", "2"),
        ]),
    );
    let mut p = Pop::connect(port);
    let t = Instant::now();
    assert_eq!(p.line(), "-ERR POP timeout");
    assert!(p.line().contains("signing off."));
    assert!(t.elapsed() >= Duration::from_millis(900));
    // In TRANSACTION the pending deletion is applied, as qpopper does.
    let mut p = Pop::connect(port);
    p.login(&alice);
    assert_eq!(p.cmd("DELE 1"), "+OK Message 1 has been deleted.");
    assert_eq!(p.line(), "-ERR POP timeout");
    assert!(p.line().contains("signing off."));
    let left = sb.read_spool(&alice);
    let left = String::from_utf8_lossy(&left);
    assert!(
        !left.contains("Subject: one") && left.contains("Subject: two"),
        "{left}"
    );
}

#[test]
fn client_gone_in_transaction_applies_deletions_unless_told_not_to() {
    let alice = user("pt_alice");
    let sb = popper_e2e::sandbox::Sandbox::new("abort");
    let two = mbox(&[
        Message::new("a@example.com", "one", "1"),
        Message::new("b@example.com", "two", "2"),
    ]);
    sb.write_spool(&alice, &two);
    let (out, code) = piped(
        &sb,
        &[],
        format!("{}DELE 1\r\n", login_lines(&alice)).as_bytes(),
    );
    assert!(out.ends_with(" signing off.\r\n"), "{out}");
    assert!(out.contains("-ERR POP EOF received\r\n"), "{out}");
    assert_eq!(code, 3, "client gone");
    let left = String::from_utf8(sb.read_spool(&alice)).unwrap();
    assert!(
        !left.contains("Subject: one") && left.contains("Subject: two"),
        "{left}"
    );
    // RFC 1939 behaviour when asked for.
    sb.write_spool(&alice, &two);
    sb.set("reset update-on-abort");
    piped(
        &sb,
        &[],
        format!("{}DELE 1\r\n", login_lines(&alice)).as_bytes(),
    );
    assert_eq!(sb.read_spool(&alice), two);
}

#[test]
fn runs_on_a_pipe_with_an_unknown_peer() {
    let alice = user("pt_alice");
    let sb = popper_e2e::sandbox::Sandbox::new("pipe");
    let (out, code) = piped(
        &sb,
        &[],
        format!("{}QUIT\r\n", login_lines(&alice)).as_bytes(),
    );
    assert!(out.starts_with("+OK QPOP (version "), "{out}");
    assert_eq!(code, 0);
    let log = sb.trace();
    assert!(log.contains("Servicing request from \"unknown\""), "{log}");
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let alice = user("pt_alice");
    let (sb, port) = served("pipelining", &[]);
    let msgs: Vec<Message> = (1..=20)
        .map(|i| Message::new("a@example.com", &format!("m{i}"), &format!("body {i}")))
        .collect();
    sb.write_spool(&alice, &mbox(&msgs));
    let mut p = Pop::connect(port);
    let mut batch = login_lines(&alice);
    for i in 1..=20 {
        batch.push_str(&format!("RETR {i}\r\n"));
    }
    batch.push_str("QUIT\r\n");
    p.send_raw(batch.as_bytes());
    let all = String::from_utf8_lossy(&p.rest()).into_owned();
    assert_eq!(all.matches(" octets\r\n").count(), 20, "{all}");
    for i in 1..=20 {
        assert!(all.contains(&format!("Subject: m{i}\r\n")));
    }
    assert!(all.ends_with(" signing off.\r\n"));
}

#[test]
fn after_login_popper_runs_as_the_user_with_the_spool_group() {
    let alice = user("pt_alice");
    let (sb, port) = served("privdrop", &[]);
    sb.write_spool(&alice, &mbox(&[Message::new("a@example.com", "s", "x")]));
    let mut p = Pop::connect(port);
    assert!(p.login(&alice).starts_with("+OK"));
    let pid = sb.session_pid(&alice.name);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    assert_eq!(
        field("Uid:"),
        vec![alice.uid; 4],
        "real, effective, saved, fs uid"
    );
    assert_eq!(field("Gid:"), vec![alice.gid; 4]);
    let mut groups = field("Groups:");
    groups.sort();
    let mut want = vec![alice.gid, popper_e2e::users::mail_gid()];
    want.sort();
    assert_eq!(
        groups, want,
        "the user's groups plus the spool directory's group"
    );
    p.cmd("QUIT");
}

#[test]
fn sighup_ends_the_session_with_the_update() {
    let alice = user("pt_alice");
    let (sb, port) = served("sighup", &[]);
    sb.write_spool(
        &alice,
        &mbox(&[
            Message::new("a@example.com", "one", "1"),
            Message::new("b@example.com", "two", "2"),
        ]),
    );
    let mut p = Pop::connect(port);
    p.login(&alice);
    assert!(p.cmd("DELE 1").starts_with("+OK"));
    let pid = sb.session_pid(&alice.name);
    popper_e2e::run(Command::new("kill").args(["-HUP", &pid.to_string()]));
    assert_eq!(p.line(), "-ERR POP hangup");
    assert!(p.line().contains("signing off."));
    let left = String::from_utf8(sb.read_spool(&alice)).unwrap();
    assert!(
        !left.contains("Subject: one") && left.contains("Subject: two"),
        "{left}"
    );
}

#[test]
fn logs_to_syslog_with_ident_popper_pid_and_facility_local0() {
    let alice = user("pt_alice");
    let mut sb = popper_e2e::sandbox::Sandbox::new("syslog");
    // A private /dev whose /dev/log is read by a small receiver: the real
    // glibc syslog(3) path, without touching the machine's /dev.
    sb.capture_syslog();
    let args: Vec<String> = ["-s", "-d", "-f"]
        .iter()
        .map(|a| a.to_string())
        .chain([sb.conf().display().to_string()])
        .collect();
    let input = format!(
        "USER pt_nosuch\r\nPASS x\r\n{}STAT\r\nQUIT\r\n",
        login_lines(&alice)
    );
    let out = sb.pipe(&popper_e2e::bins::popper(), &args, input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The statistics line is the session's last.
    let log = wait_for(
        "the Stats line in the syslog",
        Duration::from_secs(10),
        || {
            let log = sb.syslog();
            if log.contains("Stats: pt_alice ") {
                Ok(log)
            } else {
                Err(log)
            }
        },
    );
    // <133> = facility local0 (16) * 8 + notice (5); <135> = local0.debug.
    let login = log
        .lines()
        .find(|l| l.contains("POP login by user"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(login.starts_with("<133>"), "{login}");
    let ident = login.split_whitespace().nth(3).unwrap();
    assert!(
        ident.starts_with("popper[") && ident.ends_with("]:"),
        "{login}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("<135>") && l.contains("Received: \"STAT\"")),
        "{log}"
    );
    assert!(
        log.contains("Failed attempted login to pt_nosuch from host unknown"),
        "{log}"
    );
    assert!(!log.contains(&alice.password));
}
