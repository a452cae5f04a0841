//! What real clients found (issue 13), end to end: the log is not flooded
//! by one long line, a RETR cut short by a hang-up does not mark the
//! message read, and the idle timeout is RFC 1939's ten minutes.

use std::io::{Read, Write};
use std::time::Duration;

use popper_e2e::mail::{Message, mbox};
use popper_e2e::pop::Pop;
use popper_e2e::users::user;

use crate::served;

#[test]
fn one_huge_line_is_one_log_notice_with_its_total() {
    // Regression: a 50 MiB line logged "Excessive input … discarded"
    // once per 16 KiB read (3206 lines).
    let alice = user("pt_alice");
    let (sb, port) = served("logflood", &[]);
    let mut p = Pop::connect(port);
    p.login(&alice);
    let mut w = p.writer();
    let sender = std::thread::spawn(move || {
        w.write_all(&vec![b'q'; 50 << 20]).unwrap();
        w.write_all(b"\r\n").unwrap();
        for _ in 0..15 {
            w.write_all(&[b'r'; 2000]).unwrap();
            w.write_all(b"\n").unwrap();
        }
        w.write_all(b"QUIT\r\n").unwrap();
    });
    for _ in 0..16 {
        assert!(p.line().starts_with("-ERR Command line too long"));
    }
    assert!(p.line().contains("signing off"));
    sender.join().unwrap();
    let trace = sb.trace();
    let notices: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("Excessive input from"))
        .collect();
    assert_eq!(
        notices.len(),
        11,
        "ten notices and the last word: {notices:#?}"
    );
    assert!(
        notices[0].ends_with(&format!("discarded {} bytes", (50 << 20) + 2)),
        "{}",
        notices[0]
    );
    assert!(
        notices[1..10]
            .iter()
            .all(|l| l.ends_with("discarded 2001 bytes"))
    );
    assert!(notices[10].contains("further over-long lines in this session are not logged"));
}

#[test]
fn a_retr_cut_short_by_a_hang_up_leaves_the_message_unread() {
    // Regression: a client that read 100 KB of a 5 MB message and hung up
    // got Status: RO written into it (update on abort), so LAST-based
    // clients skipped a message they never received.
    let alice = user("pt_alice");
    let (sb, port) = served("cutretr", &[]);
    let big = format!("{}\n", "b".repeat(5 << 20));
    sb.write_spool(
        &alice,
        &mbox(&[
            Message::new("a@example.com", "small", "hello"),
            Message::new("a@example.com", "big", &big),
        ]),
    );
    let mut p = Pop::connect(port);
    p.login(&alice);
    let (head, _) = p.multi("RETR 1");
    assert!(head.starts_with("+OK"), "{head}");
    p.send_raw(b"RETR 2\r\n");
    let mut got = vec![0u8; 100 << 10];
    let mut s = p.writer();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.read_exact(&mut got).unwrap();
    s.shutdown(std::net::Shutdown::Both).unwrap();
    drop(p);
    drop(s);
    // The session ends (update on abort) and lets the mailbox go.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let spool = loop {
        let text = String::from_utf8_lossy(&sb.read_spool(&alice)).into_owned();
        if text.contains("X-UIDL") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session did not update the spool in 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let msgs: Vec<&str> = spool.split("\nFrom a@example.com").collect();
    assert_eq!(msgs.len(), 2, "both messages kept");
    assert!(
        msgs[0].contains("\nStatus: RO\n"),
        "RETR 1 reached its end: read"
    );
    assert!(
        msgs[1].contains("\nStatus: U\n") && !msgs[1].contains("Status: RO"),
        "RETR 2 was cut short: not read"
    );
    // The next session's LAST says so.
    let mut p = Pop::connect(port);
    p.login(&alice);
    assert_eq!(p.cmd("LAST"), "+OK 1 is the last read message.");
    assert!(p.cmd("QUIT").contains("signing off"));
}

#[test]
fn the_idle_timeout_is_ten_minutes_unless_set() {
    let v = |args: &[&str]| {
        let o = std::process::Command::new(popper_e2e::bins::popper())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    assert!(v(&["-V"]).contains("\ntimeout = 600\n"));
    assert!(v(&["-T", "120", "-V"]).contains("\ntimeout = 120\n"));
}
