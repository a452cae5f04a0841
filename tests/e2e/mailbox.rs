//! The mailbox through real sessions: byte-exact downloads of awkward
//! mail, exact sizes, stable UIDs, DELE + QUIT with mail delivered during
//! the session by a real delivery agent, and a second session for the
//! same user.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use popper_e2e::mail::{Message, mbox, tricky, wire};
use popper_e2e::pop::{Pop, unstuff};
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{TestUser, user};
use popper_e2e::wait::wait_until;

use crate::served;

/// Runs `tests/clients/poplib_fetch.py` against `port`; returns its output
/// directory's files by name.
pub fn poplib(sb: &Sandbox, port: u16, u: &TestUser, flags: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let out = sb
        .dir
        .join(format!("poplib-{}", popper_e2e::sandbox::free_port()));
    std::fs::create_dir(&out).unwrap();
    let script = popper_e2e::bins::root().join("tests/clients/poplib_fetch.py");
    popper_e2e::run(
        Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&u.name)
            .arg(&u.password)
            .arg(&out)
            .args(flags),
    );
    read_dir(&out)
}

/// The files of a directory by name.
pub fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// `n value` lines into a map.
pub fn listing(text: &[u8]) -> Vec<(u32, String)> {
    String::from_utf8_lossy(text)
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.parse().unwrap(), v.to_string())
        })
        .collect()
}

#[test]
fn awkward_mail_downloads_byte_exact_with_exact_sizes() {
    let alice = user("pt_alice");
    let (sb, port) = served("tricky", &[]);
    let msgs = tricky();
    let spool = mbox(&msgs);
    sb.write_spool(&alice, &spool);
    // The raw bytes first (poplib below cannot tell CRLF from a bare LF).
    // RSET before QUIT: no read marks, so the spool is not rewritten.
    let mut p = Pop::connect(port);
    p.login(&alice);
    let (_, raw_uidl) = p.multi("UIDL");
    let raw_uids = listing(
        &String::from_utf8(raw_uidl)
            .unwrap()
            .replace("\r\n", "\n")
            .into_bytes(),
    );
    for (i, m) in msgs.iter().enumerate() {
        let (status, body) = p.multi(&format!("RETR {}", i + 1));
        let want = wire(&m.content, &raw_uids[i].1);
        assert_eq!(
            status,
            format!("+OK {} octets", want.len()),
            "message {}",
            i + 1
        );
        assert_eq!(unstuff(&body), want, "raw RETR of message {}", i + 1);
    }
    assert!(p.cmd("RSET").starts_with("+OK Maildrop has "));
    p.cmd("QUIT");
    assert_eq!(
        sb.read_spool(&alice),
        spool,
        "a session with RSET writes nothing"
    );
    let files = poplib(&sb, port, &alice, &[]);
    let uids = listing(&files["uidl.txt"]);
    assert_eq!(uids, raw_uids);
    let sizes = listing(&files["list.txt"]);
    assert_eq!(uids.len(), msgs.len());
    let mut total = 0u64;
    for (i, m) in msgs.iter().enumerate() {
        let n = i + 1;
        let want = wire(&m.content, &uids[i].1);
        let got = &files[&format!("{n}.msg")];
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(&want),
            "message {n}"
        );
        assert_eq!(got, &want, "message {n}");
        let size: u64 = sizes[i].1.parse().unwrap();
        assert_eq!(size, want.len() as u64, "LIST size of message {n} is exact");
        total += size;
    }
    assert_eq!(
        String::from_utf8_lossy(&files["stat.txt"]),
        format!("{} {total}\n", msgs.len())
    );
    // The message with an X-UIDL header keeps it as its UID.
    assert!(uids.iter().any(|(_, u)| u == "kept-uid-0001"));
    // Every UID is unique and RFC 1939-shaped.
    let mut seen = std::collections::HashSet::new();
    for (_, u) in &uids {
        assert!(
            u.len() <= 70 && u.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{u}"
        );
        assert!(seen.insert(u.clone()), "duplicate UID {u}");
    }
}

#[test]
fn uids_are_stable_across_sessions_and_write_backs() {
    let alice = user("pt_alice");
    let (sb, port) = served("uids", &[]);
    let msgs: Vec<Message> = (1..=6)
        .map(|i| Message::new("a@example.com", &format!("m{i}"), "x"))
        .collect();
    sb.write_spool(&alice, &mbox(&msgs));
    let first = {
        let mut p = Pop::connect(port);
        p.login(&alice);
        let (_, u) = p.multi("UIDL");
        p.cmd("QUIT");
        u
    };
    let mut p = Pop::connect(port);
    p.login(&alice);
    assert_eq!(p.multi("UIDL").1, first, "same UIDs in the next session");
    // RETR marks read: the QUIT writes X-UIDL and Status back.
    p.multi("RETR 1");
    p.multi("RETR 4");
    p.cmd("QUIT");
    let spool = String::from_utf8(sb.read_spool(&alice)).unwrap();
    assert_eq!(spool.matches("\nX-UIDL: ").count(), 6, "{spool}");
    assert_eq!(spool.matches("\nStatus: RO\n").count(), 2);
    assert_eq!(spool.matches("\nStatus: U\n").count(), 4);
    let mut p = Pop::connect(port);
    p.login(&alice);
    assert_eq!(
        p.multi("UIDL").1,
        first,
        "UIDs survive being written into the mail"
    );
    assert_eq!(p.cmd("LAST"), "+OK 4 is the last read message.");
    p.cmd("QUIT");
}

#[test]
fn qpopper_round_trip_vector() {
    // qpopper.md §15.6, with exact sizes.
    let alice = user("pt_alice");
    let (sb, port) = served("vector", &[]);
    let spool = b"From alice@example.com Wed Dec  2 05:53:22 1992\nDate: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\n\nHello\n.dot line\n\n";
    assert_eq!(spool.len(), 147);
    sb.write_spool(&alice, spool);
    let mut p = Pop::connect(port);
    assert_eq!(
        p.login(&alice),
        format!("+OK {} has 1 message (148 octets).", alice.name)
    );
    assert_eq!(p.cmd("LIST 1"), "+OK 1 148");
    assert_eq!(p.cmd("UIDL 1"), "+OK 1 77ffa6bafb637ac9774fa2615b3b449b");
    let (s, body) = p.multi("RETR 1");
    assert_eq!(s, "+OK 148 octets");
    assert_eq!(
        body,
        b"Date: Wed, 2 Dec 1992 05:53:22 -0800\r\nFrom: Alice <alice@example.com>\r\nSubject: hi\r\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\r\n\r\nHello\r\n..dot line\r\n\r\n".to_vec()
    );
    assert_eq!(unstuff(&body).len(), 148);
    p.cmd("QUIT");
    let after = sb.read_spool(&alice);
    assert_eq!(
        String::from_utf8_lossy(&after),
        "From alice@example.com Wed Dec  2 05:53:22 1992\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\nDate: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\nStatus: RO\n\nHello\n.dot line\n\n"
    );
    assert_eq!(after.len(), 199);
    assert!(!sb.mail.join(format!(".{}.pop", alice.name)).exists());
    let mut p = Pop::connect(port);
    assert_eq!(
        p.login(&alice),
        format!("+OK {} has 1 message (160 octets).", alice.name)
    );
    assert_eq!(p.cmd("UIDL 1"), "+OK 1 77ffa6bafb637ac9774fa2615b3b449b");
    assert_eq!(p.cmd("LAST"), "+OK 1 is the last read message.");
    // A session that changes nothing writes nothing.
    let mtime = std::fs::metadata(sb.spool(&alice))
        .unwrap()
        .modified()
        .unwrap();
    p.multi("RETR 1");
    p.cmd("QUIT");
    assert_eq!(sb.read_spool(&alice), after);
    assert_eq!(
        std::fs::metadata(sb.spool(&alice))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
}

#[test]
fn dele_and_quit_keep_the_rest_and_mail_delivered_meanwhile() {
    let alice = user("pt_alice");
    let (sb, port) = served("dele", &[]);
    let msgs: Vec<Message> = (1..=5)
        .map(|i| Message::new("a@example.com", &format!("m{i}"), &format!("body {i}")))
        .collect();
    let spool = mbox(&msgs);
    sb.write_spool(&alice, &spool);
    let mut p = Pop::connect(port);
    p.login(&alice);
    assert_eq!(p.cmd("DELE 2"), "+OK Message 2 has been deleted.");
    assert_eq!(p.cmd("DELE 4"), "+OK Message 4 has been deleted.");
    // A real delivery agent appends while the session is open.
    for i in [6, 7] {
        sb.deliver(
            &alice,
            format!("From: <x@example.com>\nSubject: m{i}\n\nnew mail {i}\n").as_bytes(),
        );
    }
    assert!(
        p.cmd("STAT").starts_with("+OK 3 "),
        "new mail is not shown in this session"
    );
    assert!(p.cmd("QUIT").contains("signing off"));
    let after = sb.read_spool(&alice);
    let text = String::from_utf8_lossy(&after);
    // Message 1 comes before the first deletion: byte for byte unchanged.
    assert!(after.starts_with(&mbox(&msgs[..1])), "{text}");
    let subjects: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Subject: "))
        .collect();
    assert_eq!(subjects, ["m1", "m3", "m5", "m6", "m7"], "{text}");
    assert_eq!(text.matches("new mail 6").count(), 1);
    assert_eq!(text.matches("new mail 7").count(), 1);
    // And the next session sees exactly those five.
    let files = poplib(&sb, port, &alice, &[]);
    assert_eq!(
        String::from_utf8_lossy(&files["stat.txt"])
            .split(' ')
            .next(),
        Some("5")
    );
    assert!(String::from_utf8_lossy(&files["5.msg"]).contains("new mail 7"));
}

#[test]
fn deleting_everything_empties_the_spool() {
    let alice = user("pt_alice");
    let (sb, port) = served("deleall", &[]);
    let msgs: Vec<Message> = (1..=4)
        .map(|i| Message::new("a@example.com", &format!("m{i}"), "x"))
        .collect();
    sb.write_spool(&alice, &mbox(&msgs));
    let files = poplib(&sb, port, &alice, &["--dele"]);
    assert_eq!(files.keys().filter(|k| k.ends_with(".msg")).count(), 4);
    assert_eq!(sb.read_spool(&alice), b"");
    assert!(sb.spool(&alice).exists(), "the spool file itself stays");
}

#[test]
fn a_second_session_gets_in_use_and_changes_nothing() {
    let alice = user("pt_alice");
    let (sb, port) = served("inuse", &[]);
    let spool = mbox(&[
        Message::new("a@example.com", "m1", "x"),
        Message::new("a@example.com", "m2", "y"),
    ]);
    sb.write_spool(&alice, &spool);
    let mut a = Pop::connect(port);
    let login = a.login(&alice);
    let octets = login
        .split('(')
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let mut b = Pop::connect(port);
    b.cmd(&format!("USER {}", alice.name));
    assert_eq!(
        b.cmd(&format!("PASS {}", alice.password)),
        format!(
            "-ERR [IN-USE] /var/mail/.{}.pop lock busy!  Is another session active? (11)",
            alice.name
        )
    );
    assert!(b.line().contains("signing off"));
    assert!(b.rest().is_empty());
    // The first session is unaffected.
    assert_eq!(a.cmd("STAT"), format!("+OK 2 {octets}"));
    a.cmd("QUIT");
    assert_eq!(sb.read_spool(&alice), spool);
    // Once the first session is over, logging in works again.
    let mut c = Pop::connect(port);
    assert!(c.login(&alice).starts_with("+OK"));
    c.cmd("QUIT");
}

#[test]
fn top_sends_the_header_and_n_body_lines() {
    let alice = user("pt_alice");
    let (sb, port) = served("top", &[]);
    let m = Message::new("a@example.com", "top", "line 1\n.line 2\nline 3");
    sb.write_spool(&alice, &mbox(std::slice::from_ref(&m)));
    let mut p = Pop::connect(port);
    p.login(&alice);
    let (_, uidl) = p.multi("UIDL");
    let uid = String::from_utf8(uidl)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let full = wire(&m.content, &uid);
    let (s, all) = p.multi("RETR 1");
    assert_eq!(s, format!("+OK {} octets", full.len()));
    for n in 0..5usize {
        let (s, body) = p.multi(&format!("TOP 1 {n}"));
        assert_eq!(
            s,
            format!("+OK {} octets", full.len()),
            "TOP announces the whole size"
        );
        let got = unstuff(&body);
        let head_end = full.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body_lines: Vec<&[u8]> = full[head_end..].split_inclusive(|b| *b == b'\n').collect();
        let want: Vec<u8> = full[..head_end]
            .iter()
            .copied()
            .chain(body_lines.iter().take(n).flat_map(|l| l.iter().copied()))
            .collect();
        assert_eq!(got, want, "TOP 1 {n}");
        assert!(all.starts_with(&body));
    }
    p.cmd("QUIT");
}

#[test]
fn retr_of_a_spool_another_program_rewrote_is_refused_cleanly() {
    // Regression (man page review): the +OK line went out, then the
    // connection closed with no body and no terminator.
    let alice = user("pt_alice");
    let (sb, port) = served("rewritten", &[]);
    let msgs: Vec<Message> = (1..=3)
        .map(|i| Message::new("a@example.com", &format!("m{i}"), "x"))
        .collect();
    sb.write_spool(&alice, &mbox(&msgs));
    let mut p = Pop::connect(port);
    p.login(&alice);
    // Another program (not a delivery agent: it rewrites) shifts the spool.
    let mut other =
        b"From x@example.com Wed Dec  2 05:53:22 1992\nSubject: new first\n\nhello\n\n".to_vec();
    other.extend(mbox(&msgs));
    let spool = sb.spool(&alice);
    std::fs::write(&spool, &other).unwrap();
    let r = p.cmd("RETR 2");
    assert_eq!(
        r,
        "-ERR [SYS/TEMP] /var/mail/pt_alice was changed by another program during this session; no changes made."
    );
    assert_eq!(sb.read_spool(&alice), other, "nothing written");
}

/// LIST and UIDL of a session that reads nothing (so it changes nothing).
fn list_and_uidl(port: u16, u: &TestUser) -> (Vec<u8>, Vec<u8>) {
    let mut p = Pop::connect(port);
    p.login(u);
    let (_, list) = p.multi("LIST");
    let (_, uidl) = p.multi("UIDL");
    p.cmd("QUIT");
    (list, uidl)
}

/// How many sessions logged "the scan taken from the index", "... from
/// the index, N bytes after them scanned" and "the spool scanned" (popper
/// -d, serve/login.rs).
pub fn scan_sources(sb: &Sandbox, user: &str) -> (usize, usize, usize) {
    let t = sb.trace();
    let count = |what: &str| {
        t.lines()
            .filter(|l| l.contains(&format!("{user}: ")) && l.contains(what))
            .count()
    };
    (
        count("the scan taken from the index"),
        count("bytes after them scanned"),
        count("the spool scanned"),
    )
}

/// Waits until `spool` last changed more than the scan index's racy limit
/// ago (cache.rs RACY, 2 s: the spool's mtime and ctime, in whole seconds,
/// both before now - 2), so that a login may index it. This is time that
/// must pass, not a condition to make true: the ctime cannot be set into
/// the past, and an index of a spool whose ctime is recent is exactly what
/// popper refuses.
pub fn settle(spool: &Path) {
    use std::os::unix::fs::MetadataExt;
    wait_until(
        "the spool to be older than the scan index's 2 s racy limit",
        std::time::Duration::from_secs(10),
        || {
            let m = std::fs::metadata(spool).unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            m.mtime().max(m.ctime()) < now - 2
        },
    );
}

#[test]
fn an_unchanged_spool_is_served_from_its_index_and_every_change_is_seen() {
    let alice = user("pt_alice");
    let (sb, port) = served("scan-index", &[]);
    // Over cache.rs's MIN_SPOOL (1 MiB): 60 messages of 20 KB, each with
    // an X-UIDL header, so a changed UID is visible in UIDL.
    let msgs: Vec<Message> = (0..60)
        .map(|i| {
            Message::raw(
                "a@example.com",
                format!(
                    "X-UIDL: uid-{i:03}\nSubject: m{i}\n\n{}\n\n",
                    "x".repeat(20_000)
                )
                .as_bytes(),
            )
        })
        .collect();
    sb.write_spool(&alice, &mbox(&msgs));
    let index = sb.mail.join(".pt_alice.pop.index");
    // A spool changed this second is scanned and indexed, but its index is
    // not taken on its timestamps alone (they could still be matched by a
    // change: cache.rs RACY): the next login checks every message's head
    // and scans only the last message again.
    let first = list_and_uidl(port, &alice);
    let m = std::fs::symlink_metadata(&index).expect("the index");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (m.uid(), m.mode() & 0o7777, m.nlink()),
        (alice.uid, 0o600, 1)
    );
    settle(&sb.spool(&alice));
    let second = list_and_uidl(port, &alice);
    assert_eq!(second, first);
    assert_eq!(scan_sources(&sb, "pt_alice"), (0, 1, 1));
    // Unchanged since a settled state: the scan comes from the index,
    // with the same answers.
    assert_eq!(list_and_uidl(port, &alice), first);
    assert_eq!(scan_sources(&sb, "pt_alice"), (1, 1, 1));

    // Another program changes one UID in place, same size, and puts the
    // mtime back: the ctime moved, so the spool is scanned and the new UID
    // is served.
    let spool = sb.spool(&alice);
    let bytes = sb.read_spool(&alice);
    let at = bytes.windows(11).position(|w| w == b"X-UIDL: uid").unwrap() + 8;
    let old_mtime = std::fs::metadata(&spool).unwrap().modified().unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&spool)
            .unwrap();
        f.write_all_at(b"UID", at as u64).unwrap();
        f.set_modified(old_mtime).unwrap();
    }
    let (list, uidl) = list_and_uidl(port, &alice);
    assert_eq!(list, first.0);
    assert_ne!(uidl, first.1);
    assert!(
        String::from_utf8_lossy(&uidl).starts_with("1 UID-000\r\n"),
        "{}",
        String::from_utf8_lossy(&uidl)
    );
    assert_eq!(scan_sources(&sb, "pt_alice"), (1, 1, 2));

    // A delivery: only the new message (and the one before) scanned, the
    // new message there.
    sb.deliver(&alice, b"From: b@example.com\nSubject: new\n\nnew mail\n");
    let (list, _) = list_and_uidl(port, &alice);
    assert!(String::from_utf8_lossy(&list).contains("\r\n61 "));
    assert_eq!(scan_sources(&sb, "pt_alice"), (1, 2, 2));

    // A session whose scan came from the index reads and deletes as any:
    // RETR sends the message's exact bytes, and its DELE is applied.
    settle(&spool);
    list_and_uidl(port, &alice);
    let mut p = Pop::connect(port);
    p.login(&alice);
    let (_, got) = p.multi("RETR 2");
    assert_eq!(got, wire(&msgs[1].content, "uid-001"));
    assert!(p.cmd("DELE 5").starts_with("+OK"));
    p.cmd("QUIT");
    assert_eq!(scan_sources(&sb, "pt_alice"), (2, 3, 2));
    let (list, uidl) = list_and_uidl(port, &alice);
    let uidl = String::from_utf8_lossy(&uidl).into_owned();
    assert_eq!(listing(&list).len(), 60);
    assert!(
        !uidl.contains(" uid-004\r\n") && uidl.contains(" uid-005\r\n"),
        "{uidl}"
    );

    // Deleting everything leaves a spool under MIN_SPOOL: its index goes.
    let mut p = Pop::connect(port);
    p.login(&alice);
    for i in 1..=60 {
        assert!(p.cmd(&format!("DELE {i}")).starts_with("+OK"));
    }
    p.cmd("QUIT");
    list_and_uidl(port, &alice);
    assert!(!index.exists(), "the index of a small spool is removed");
}

#[test]
fn scan_index_off_writes_no_index() {
    let alice = user("pt_alice");
    let (sb, port) = served("scan-index-off", &[]);
    sb.set("set scan-index = false");
    let msgs: Vec<Message> = (0..60)
        .map(|i| Message::new("a@example.com", &format!("m{i}"), &"y".repeat(20_000)))
        .collect();
    sb.write_spool(&alice, &mbox(&msgs));
    settle(&sb.spool(&alice));
    let first = list_and_uidl(port, &alice);
    assert_eq!(list_and_uidl(port, &alice), first);
    assert!(!sb.mail.join(".pt_alice.pop.index").exists());
    assert_eq!(scan_sources(&sb, "pt_alice"), (0, 0, 2));
}
