//! The qpopper CVE catalogue (qpopper.md §12) as tests against the real
//! binaries: each row's attack, and what popper must do instead. Rows whose
//! attack is tested elsewhere name the test:
//!
//! | row | test |
//! |---|---|
//! | CVE-1999-0006 long echoed arguments | [`long_arguments_are_answered_with_bounded_replies`] |
//! | CVE-2000-0442 EUIDL / UIDL n formats | [`format_strings_in_names_headers_and_uids_are_data`] |
//! | CVE-2000-0096 long LIST argument | [`long_arguments_are_answered_with_bounded_replies`] |
//! | 3.0 AUTH / 4.x MDEF overflows | [`long_arguments_are_answered_with_bounded_replies`] |
//! | CVE-2000-0320 1030-byte line + fake `From ` | [`a_long_line_cannot_smuggle_a_message`] |
//! | CVE-2001-1046 long user name | [`long_arguments_are_answered_with_bounded_replies`] |
//! | CVE-2001-1487 `popauth -trace` | [`popauth_has_no_trace_or_debug_file_options`]; hostile environment: `popauth::the_caller_cannot_signal_popauth_or_feed_it_odd_descriptors_or_environment`; symlinked DB: `popauth::a_symlink_at_the_database_path_is_refused` |
//! | CVE-2002-0454 long line without LF | `hostile::a_32_megabyte_line_costs_bounded_time_and_memory`, [`long_arguments_are_answered_with_bounded_replies`] (5000 bytes) |
//! | CVE-2003-1452 / CVE-2005-3098 poppassd | not applicable: popper ships no poppassd |
//! | 4.0.x trace/config files | [`a_trace_file_that_is_a_link_or_not_private_is_refused`] |
//! | temp drop `.USER.pop` attacks | `locks::a_symlinked_session_lock_…`, `…hard_linked…`, `…owned_by_someone_else…`, `…others_can_read…`; spool symlink: `locks::a_symlinked_spool_is_refused` |
//! | `~/.popbull` symlink, bulletins without envelope | `bulletins::popbull_that_is_a_link_or_a_fifo_is_refused`, `bulletins::a_bad_bulletin_delivers_nothing_and_is_logged` |
//! | huge `X-UIDL`, NUL bytes in mail | [`huge_uid_headers_and_nul_bytes_are_data`] |
//! | another user's spool | [`no_command_reaches_another_users_spool`] |

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use popper_e2e::mail::{Message, mbox, wire};
use popper_e2e::pop::{Pop, lf, unstuff};
use popper_e2e::users::user;
use popper_e2e::wait::{LIMIT, OutputWithin};

use crate::mailbox::listing;
use crate::served;

#[test]
fn long_arguments_are_answered_with_bounded_replies() {
    let alice = user("pt_alice");
    let (sb, port) = served("cve-long", &[]);
    sb.write_spool(&alice, &mbox(&[Message::new("a@example.com", "m", "x")]));
    let long = "A".repeat(2000);
    let mut p = Pop::connect(port);
    // USER: a name no account can have (CVE-2001-1046; qpopper cut it).
    let r = p.cmd(&format!("USER {}", "u".repeat(1000)));
    assert_eq!(r, "-ERR [AUTH] Invalid user name.");
    // 2000-byte arguments: over the 1023-byte line limit, one error each,
    // never executed (CVE-1999-0006: echoed into a fixed buffer).
    for cmd in ["USER", "PASS", "APOP", "LIST", "AUTH", "MDEF", "EUIDL"] {
        let r = p.cmd(&format!("{cmd} {long}"));
        assert!(r.starts_with("-ERR Command line too long"), "{cmd}: {r}");
        assert!(r.len() < 200, "{cmd}: a {}-byte reply", r.len());
    }
    // Under the limit: echoed, but bounded to 128 bytes.
    let mid = "9".repeat(900);
    assert!(p.cmd("USER pt_alice").starts_with("+OK"));
    assert!(
        p.cmd(&format!("PASS {}", alice.password))
            .starts_with("+OK")
    );
    let r = p.cmd(&format!("LIST {mid}"));
    assert!(r.starts_with("-ERR") && r.len() < 200, "{r}");
    for (cmd, err) in [
        ("AUTH", "-ERR Unknown command"),
        ("MDEF", "-ERR Unknown command"),
        ("EUIDL", "-ERR Parameter must be a number"),
        ("XTND", "-ERR Unknown command: \"xtnd bbb"),
        ("XTND XLST", "+OK xlst command accepted"),
    ] {
        let r = p.cmd(&format!("{cmd} {}", "B".repeat(900)));
        assert!(r.starts_with(err) && r.len() < 200, "{cmd}: {r}");
        if cmd == "XTND XLST" {
            assert_eq!(p.line(), ".");
        }
    }
    // 5000 bytes without LF, then a command: the command still works.
    p.send_raw("C".repeat(5000).as_bytes());
    p.send_raw(b"\r\n");
    assert!(p.line().starts_with("-ERR Command line too long"));
    assert!(p.cmd("STAT").starts_with("+OK 1 "));
    p.cmd("QUIT");
}

#[test]
fn format_strings_in_names_headers_and_uids_are_data() {
    // CVE-2000-0442 (EUIDL) and 2.53's UIDL n used header text as printf
    // formats.
    let alice = user("pt_alice");
    let (sb, port) = served("cve-format", &[]);
    let m = Message::raw(
        "a@example.com",
        b"From: %s%n%x%n <evil@example.com>\nX-UIDL: %s%n%x%d\nSubject: %n%n%n%n\n\n%s%s%s\n\n",
    );
    sb.write_spool(&alice, &mbox(std::slice::from_ref(&m)));
    let mut p = Pop::connect(port);
    let r = p.cmd("USER %s%n%x%n");
    assert!(r.starts_with("+OK Password required for %s%n%x%n."), "{r}");
    assert!(
        p.cmd("PASS %n%n")
            .starts_with("-ERR [AUTH] Password supplied for \"%s%n%x%n\"")
    );
    p.login(&alice);
    assert_eq!(p.cmd("UIDL 1"), "+OK 1 %s%n%x%d");
    let (_, all) = p.multi("UIDL");
    assert_eq!(lf(&all), b"1 %s%n%x%d\n");
    let size = p.cmd("LIST 1");
    let size = size.strip_prefix("+OK 1 ").unwrap();
    assert_eq!(
        p.cmd("EUIDL 1"),
        format!("+OK 1 %s%n%x%d {size} %s%n%x%n <evil@example.com>")
    );
    let (status, body) = p.multi("RETR 1");
    let want = wire(&m.content, "%s%n%x%d");
    assert_eq!(status, format!("+OK {} octets", want.len()));
    assert_eq!(unstuff(&body), want);
    p.cmd("QUIT");
}

#[test]
fn a_long_line_cannot_smuggle_a_message() {
    // CVE-2000-0320 class: 2.53 cut lines at 1023 bytes, so a fake `From `
    // line after a 1030-byte line started a new (spoofed) message.
    let alice = user("pt_alice");
    let (sb, port) = served("cve-spoof", &[]);
    let body = format!(
        "{}From x Wed Dec  2 05:53 1992\nSubject: spoofed\n\nfake\n",
        "y".repeat(1030)
    );
    let m = Message::new("a@example.com", "real", &body);
    let other = Message::new("b@example.com", "second", "ok");
    sb.write_spool(&alice, &mbox(&[m.clone(), other]));
    let mut p = Pop::connect(port);
    let r = p.login(&alice);
    assert!(r.contains("has 2 messages"), "{r}");
    let (_, list) = p.multi("LIST");
    let sizes = listing(&lf(&list));
    let (_, uidl) = p.multi("UIDL");
    let uids = listing(&lf(&uidl));
    let (status, got) = p.multi("RETR 1");
    let want = wire(&m.content, &uids[0].1);
    assert_eq!(status, format!("+OK {} octets", want.len()));
    assert_eq!(unstuff(&got), want, "the fake From line is body text");
    assert_eq!(sizes[0].1, want.len().to_string());
    p.cmd("RSET");
    p.cmd("QUIT");
}

#[test]
fn huge_uid_headers_and_nul_bytes_are_data() {
    let alice = user("pt_alice");
    let (sb, port) = served("cve-uid-nul", &[]);
    let huge = format!("X-UIDL: {}\n", "u".repeat(1000));
    let mut content = huge.clone().into_bytes();
    content.extend_from_slice(b"Subject: nul\n\nbefore\0after\n\0\n\n");
    let m = Message::raw("a@example.com", &content);
    sb.write_spool(&alice, &mbox(std::slice::from_ref(&m)));
    let mut p = Pop::connect(port);
    p.login(&alice);
    let r = p.cmd("UIDL 1");
    let uid = r.strip_prefix("+OK 1 ").unwrap().to_string();
    assert!(
        uid.len() == 32 && uid.bytes().all(|b| b.is_ascii_hexdigit()),
        "a 1000-byte X-UIDL is not a UID; the MD5 is used: {uid}"
    );
    let (status, got) = p.multi("RETR 1");
    let want = wire(&m.content, &uid);
    assert_eq!(status, format!("+OK {} octets", want.len()));
    assert_eq!(unstuff(&got), want, "NUL bytes are sent as they are");
    p.cmd("RSET");
    p.cmd("QUIT");
}

#[test]
fn a_trace_file_that_is_a_link_or_not_private_is_refused() {
    // 4.0.x opened its trace file as root wherever the path pointed.
    let sb = popper_e2e::sandbox::Sandbox::new("cve-trace");
    let target = sb.dir.join("shadow-copy");
    std::fs::write(&target, "root:x:...\n").unwrap();
    let link = sb.dir.join("trace-link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let open = sb.dir.join("trace-open");
    std::fs::write(&open, "").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
    for (path, why) in [(&link, "symbolic link"), (&open, "writable")] {
        let out = std::process::Command::new(popper_e2e::bins::popper())
            .arg("-t")
            .arg(path)
            .stdin(std::process::Stdio::null())
            .output_within(LIMIT);
        assert_eq!(out.status.code(), Some(1), "{why}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&path.display().to_string()), "{why}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "root:x:...\n");
    assert_eq!(std::fs::read(&open).unwrap(), b"");
}

#[test]
fn popauth_has_no_trace_or_debug_file_options() {
    // CVE-2001-1487: `popauth -trace FILE` wrote FILE as the pop user,
    // following symlinks.
    let e = crate::popauth::Env::new("cve-popauth-trace");
    assert_eq!(e.root(&["-init"], "").code, 0);
    let alice = user("pt_alice");
    let victim = e.sb.dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    for opt in ["-trace", "-d", "-debug", "-t"] {
        let r = e.as_user(&alice, &[opt, &victim.display().to_string()], "");
        assert_ne!(r.code, 0, "{opt} accepted");
        assert!(!r.err.is_empty(), "{opt}: no message");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn no_command_reaches_another_users_spool() {
    let alice = user("pt_alice");
    let bob = user("pt_bob");
    let (sb, port) = served("cve-other", &[]);
    let secret = mbox(&[Message::new("c@example.com", "for bob only", "bob's mail")]);
    sb.write_spool(&bob, &secret);
    // Names that walk out of the spool directory, or into bob's spool.
    let mut p = Pop::connect(port);
    for name in [
        "../pt_bob",
        "pt_alice/../pt_bob",
        "/var/mail/pt_bob",
        "pt_bob\0",
    ] {
        let r = p.cmd(&format!("USER {name}"));
        assert_eq!(r, "-ERR [AUTH] Invalid user name.", "{name:?}");
    }
    // A hard link of bob's spool as alice's: not alice's file.
    let alice_spool = sb.spool(&alice);
    std::fs::hard_link(sb.spool(&bob), &alice_spool).unwrap();
    let r = Pop::connect(port).login(&alice);
    assert!(r.starts_with("-ERR [SYS/PERM]"), "hard link: {r}");
    std::fs::remove_file(&alice_spool).unwrap();
    // A symbolic link to it.
    std::os::unix::fs::symlink(Path::new("/var/mail/pt_bob"), &alice_spool).unwrap();
    let r = Pop::connect(port).login(&alice);
    assert!(r.starts_with("-ERR [SYS/PERM]"), "symlink: {r}");
    std::fs::remove_file(&alice_spool).unwrap();
    // Logged in as alice: every command sees only alice's (empty) mailbox.
    let mut p = Pop::connect(port);
    assert!(p.login(&alice).contains("has 0 messages"));
    for cmd in ["RETR 1", "TOP 1 0", "LIST 1", "UIDL 1", "DELE 1"] {
        assert!(p.cmd(cmd).starts_with("-ERR"), "{cmd}");
    }
    p.cmd("QUIT");
    assert_eq!(sb.read_spool(&bob), secret, "bob's spool untouched");
    let log = sb.trace();
    assert!(!log.contains("for bob only"), "{log}");
}

#[test]
fn before_authentication_popper_opens_only_its_own_files() {
    // What popper opens as root, before any PASS or APOP: the program's
    // libraries, its configuration, its trace file, the APOP database and
    // the account database (to see whether USER is allowed) — never a
    // mailbox, a home directory or anything a user controls.
    let alice = user("pt_alice");
    let mut sb = popper_e2e::sandbox::Sandbox::new("priv-opens");
    sb.overlay_etc();
    crate::popauth::write_with_python(&sb.etc("pop.auth"), &[("pt_bob", "Bob-Secret1")]);
    let (uid, gid) = popper_e2e::users::pop();
    std::os::unix::fs::chown(sb.etc("pop.auth"), Some(uid), Some(gid)).unwrap();
    sb.write_spool(&alice, &mbox(&[Message::new("a@example.com", "m", "x")]));
    let log = sb.dir.join("strace.log");
    let mut args: Vec<String> = [
        "-f",
        "-qq",
        "-s",
        "4096",
        "-e",
        "trace=open,openat,openat2,creat",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(log.display().to_string());
    args.push(popper_e2e::bins::popper().display().to_string());
    args.extend(sb.popper_args(&[]));
    let input = b"CAPA\r\nUSER pt_bob\r\nUSER pt_alice\r\n";
    let out = sb.pipe(Path::new("/usr/bin/strace"), &args, input);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+OK Password required for pt_alice."),
        "{text}"
    );
    assert!(text.contains("You must use APOP"), "{text}");
    let conf = sb.conf().display().to_string();
    let trace = sb.trace_path().display().to_string();
    let mut opened = Vec::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        // Only what was opened: a failed lookup (the loader trying the
        // library path cargo sets for tests) opened nothing.
        if !line.contains("open") || line.contains(" = -1 ") {
            continue;
        }
        let Some(path) = line.split('"').nth(1) else {
            continue;
        };
        opened.push(path.to_string());
        let allowed = path.starts_with("/etc/ld.so.cache")
            || path.starts_with("/lib/")
            || path.starts_with("/lib64/")
            || path.starts_with("/usr/lib/")
            // glibc reads the main thread's stack bounds here.
            || path == "/proc/self/maps"
            || path == conf
            || path == trace
            || path == "/etc/pop.auth"
            || path == "/etc/passwd"
            || path == "/etc/nsswitch.conf"
            || path == "/etc/group";
        assert!(allowed, "opened {path} before authentication: {line}");
    }
    assert!(opened.iter().any(|p| p == "/etc/pop.auth"), "{opened:?}");
    assert!(
        !opened
            .iter()
            .any(|p| p.starts_with("/var/mail") || p.starts_with("/home")),
        "{opened:?}"
    );
}
