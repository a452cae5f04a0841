//! The scan index follows a spool that changes between sessions: whatever
//! happened to the spool or to the index file, a session served with the
//! index shows exactly what a session without it shows (LIST, UIDL, every
//! RETR's bytes, TOP, LAST), and a delivery costs a scan of the new mail
//! only (issue 16; popper/src/maildrop/mbox/cache.rs).

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use popper_e2e::mail::{Message, mbox};
use popper_e2e::pop::Pop;
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{TestUser, user};

use crate::mailbox::{scan_sources, settle};
use crate::served;

/// Everything a client can learn of the mailbox in one session that
/// changes nothing (`update-status` is off in these sandboxes).
fn transcript(port: u16, u: &TestUser) -> Vec<u8> {
    let mut p = Pop::connect(port);
    p.login(u);
    let mut out = p.cmd("STAT").into_bytes();
    let (_, list) = p.multi("LIST");
    let (_, uidl) = p.multi("UIDL");
    out.extend(list);
    out.extend(uidl);
    let n: usize = out
        .split(|b| *b == b' ')
        .nth(1)
        .and_then(|w| std::str::from_utf8(w).ok()?.parse().ok())
        .unwrap();
    for i in 1..=n {
        let (_, top) = p.multi(&format!("TOP {i} 2"));
        out.extend(top);
        let (_, body) = p.multi(&format!("RETR {i}"));
        out.extend(body);
    }
    out.extend(p.cmd("LAST").into_bytes());
    p.cmd("QUIT");
    out
}

/// The transcript without the index, then with it: they must be equal.
/// Returns it.
fn same_with_and_without_index(sb: &Sandbox, port: u16, u: &TestUser, what: &str) -> Vec<u8> {
    sb.set("set scan-index = false");
    let plain = transcript(port, u);
    sb.set("set scan-index = true");
    let indexed = transcript(port, u);
    assert!(
        plain == indexed,
        "{what}: the index changed what the client sees"
    );
    indexed
}

/// 60 messages of ~20 KB (over the index's 1 MiB floor), some with
/// qpopper's X-UIDL (two alike, which must be made unique alike), some
/// read.
fn messages() -> Vec<Message> {
    (0..60)
        .map(|i| {
            let uidl = match i % 10 {
                3 => "X-UIDL: same-uid\n".to_string(),
                7 => format!("X-UIDL: uid-{i:03}\n"),
                _ => String::new(),
            };
            let status = if i % 4 == 0 { "Status: RO\n" } else { "" };
            Message::raw(
                "a@example.com",
                format!(
                    "{uidl}{status}Subject: m{i}\nDate: Wed, 2 Dec 1992 05:53:{:02} -0800\n\n{}\n\n",
                    i % 60,
                    format!("line {i}\n").repeat(3_000)
                )
                .as_bytes(),
            )
        })
        .collect()
}

fn append(spool: &Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(spool)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn every_change_to_the_spool_is_served_as_a_full_scan_would() {
    let alice = user("pt_alice");
    let (sb, port) = served("index-follows", &[]);
    sb.set("set update-status = false");
    let spool = sb.spool(&alice);
    let index = sb.mail.join(".pt_alice.pop.index");
    sb.write_spool(&alice, &mbox(&messages()));
    settle(&spool);
    same_with_and_without_index(&sb, port, &alice, "the first sessions");
    assert!(index.exists());
    let before = scan_sources(&sb, "pt_alice");

    // A delivery by procmail: only the new mail is scanned.
    sb.deliver(&alice, b"From: b@example.com\nSubject: new\n\nnew mail\n");
    let t = same_with_and_without_index(&sb, port, &alice, "after a delivery");
    assert!(String::from_utf8_lossy(&t).starts_with("+OK 61 "));
    let after = scan_sources(&sb, "pt_alice");
    assert_eq!(after.1, before.1 + 1, "the delivery was a tail scan");

    // An append without a trailing newline, then another message right
    // after it (which is then part of the last message: no empty line
    // before its envelope).
    append(
        &spool,
        b"From c@example.com Wed Dec  2 05:53:22 1992\nSubject: cut\n\nno newline",
    );
    same_with_and_without_index(&sb, port, &alice, "after an append without LF");
    append(
        &spool,
        b"\nFrom d@example.com Wed Dec  2 05:53:22 1992\nSubject: glued\n\nglued on\n",
    );
    same_with_and_without_index(&sb, port, &alice, "after mail glued on");
    sb.deliver(&alice, b"From: e@example.com\nSubject: after glue\n\nx\n");
    same_with_and_without_index(&sb, port, &alice, "after a delivery after the glue");

    // Truncated inside a message.
    let len = std::fs::metadata(&spool).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&spool)
        .unwrap()
        .set_len(len * 2 / 3)
        .unwrap();
    same_with_and_without_index(&sb, port, &alice, "after a truncation");

    // Rewritten by another program to the same size, the mtime put back
    // (touch -d): a header line and a body line changed.
    let mut bytes = sb.read_spool(&alice);
    let at = bytes.windows(6).position(|w| w == b"m17\nDa").unwrap();
    bytes[at + 1] = b'9';
    let body = bytes.windows(9).position(|w| w == b"line 23\nl").unwrap();
    bytes[body + 5] = b'X';
    let mtime = std::fs::metadata(&spool).unwrap().mtime();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&spool)
        .unwrap()
        .write_all_at(&bytes, 0)
        .unwrap();
    let out = std::process::Command::new("touch")
        .arg("-d")
        .arg(format!("@{mtime}"))
        .arg(&spool)
        .output()
        .unwrap();
    assert!(out.status.success());
    let t = same_with_and_without_index(&sb, port, &alice, "after a same-size rewrite");
    assert!(String::from_utf8_lossy(&t).contains("Subject: m97"));

    // A message deleted and delivered again (a mail reader expunged it,
    // the user bounced it back to themselves).
    let bytes = sb.read_spool(&alice);
    let start = bytes
        .windows(22)
        .position(|w| w == b"\n\nFrom a@example.com W")
        .unwrap()
        + 2;
    let next = start
        + 2
        + bytes[start + 2..]
            .windows(7)
            .position(|w| w == b"\n\nFrom ")
            .unwrap()
        + 2;
    let mut moved = bytes[..start].to_vec();
    moved.extend_from_slice(&bytes[next..]);
    moved.extend_from_slice(&bytes[start..next]);
    sb.write_spool(&alice, &moved);
    same_with_and_without_index(&sb, port, &alice, "after a message was moved to the end");
}

#[test]
fn an_index_file_that_cannot_be_trusted_is_never_used() {
    let alice = user("pt_alice");
    let bob = user("pt_bob");
    let (sb, port) = served("index-attacks", &[]);
    sb.set("set update-status = false");
    let spool = sb.spool(&alice);
    let index = sb.mail.join(".pt_alice.pop.index");
    sb.write_spool(&alice, &mbox(&messages()));
    settle(&spool);
    let truth = same_with_and_without_index(&sb, port, &alice, "the first sessions");
    let good = std::fs::read(&index).unwrap();
    let mut scanned = scan_sources(&sb, "pt_alice").2;
    let place = |bytes: &[u8], uid: u32| {
        let _ = std::fs::remove_file(&index);
        std::fs::write(&index, bytes).unwrap();
        std::os::unix::fs::chown(&index, Some(uid), None).unwrap();
        std::fs::set_permissions(&index, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    };
    type Damage<'a> = Box<dyn Fn() + 'a>;
    let mut cases: Vec<(&str, Damage)> = vec![
        (
            "truncated",
            Box::new(|| place(&good[..good.len() / 2], alice.uid)),
        ),
        (
            "bit-flipped",
            Box::new(|| {
                let mut b = good.clone();
                let i = b.len() / 3;
                b[i] ^= 4;
                place(&b, alice.uid)
            }),
        ),
        ("another user's", Box::new(|| place(&good, bob.uid))),
        (
            "a symlink to a valid copy",
            Box::new(|| {
                let copy = sb.mail.join(".pt_alice.copy");
                place(&good, alice.uid);
                std::fs::rename(&index, &copy).unwrap();
                std::os::unix::fs::symlink(&copy, &index).unwrap();
            }),
        ),
        (
            "huge",
            Box::new(|| {
                place(&good, alice.uid);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&index)
                    .unwrap();
                f.set_len(300 << 20).unwrap();
            }),
        ),
        (
            "group-readable",
            Box::new(|| {
                place(&good, alice.uid);
                std::fs::set_permissions(
                    &index,
                    std::os::unix::fs::PermissionsExt::from_mode(0o640),
                )
                .unwrap();
            }),
        ),
    ];
    for (what, damage) in cases.drain(..) {
        damage();
        // With the index on only: the session is served by a full scan.
        let t = transcript(port, &alice);
        assert!(t == truth, "an index {what}: the client saw something else");
        let now = scan_sources(&sb, "pt_alice").2;
        assert_eq!(now, scanned + 1, "an index {what} was used");
        scanned = now;
        let m = std::fs::symlink_metadata(&index).unwrap();
        assert_eq!(
            (m.file_type().is_file(), m.uid(), m.len()),
            (true, alice.uid, good.len() as u64),
            "an index {what} is replaced by a good one"
        );
    }
}
