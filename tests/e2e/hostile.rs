//! Bad input from the client or in the spool: each gets a clear `-ERR`,
//! never a crash, a hang or unbounded memory, and the mailbox is never
//! harmed.

use std::process::Command;
use std::time::{Duration, Instant};

use popper_e2e::mail::{Message, mbox};
use popper_e2e::pop::Pop;
use popper_e2e::sandbox::{Sandbox, peak_rss_kb, reset_peak_rss};
use popper_e2e::users::user;
use popper_e2e::wait::wait_for;

use crate::{login_lines, piped, served};

/// `Ok` when no byte waits in a queue of the connections on `port`
/// (sent but not yet received, or received but not yet read by popper);
/// else what `ss` shows.
fn queued(port: u16) -> Result<(), String> {
    let out = popper_e2e::run(Command::new("ss").args([
        "-Htn",
        "state",
        "established",
        &format!("( sport = :{port} or dport = :{port} )"),
    ]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let empty = text.lines().all(|l| {
        let mut q = l.split_whitespace();
        q.next() == Some("0") && q.next() == Some("0")
    });
    if empty && !text.trim().is_empty() {
        Ok(())
    } else {
        Err(text)
    }
}

const TOO_LONG: &str = "-ERR Command line too long; at most 1023 bytes are allowed.";

#[test]
fn over_long_lines_are_one_error_each_and_never_a_command() {
    let alice = user("pt_alice");
    let (sb, port) = served("longline", &[]);
    sb.write_spool(&alice, &mbox(&[Message::new("a@example.com", "keep", "x")]));
    let mut p = Pop::connect(port);
    // 100 KB without LF, whose tail looks like a command.
    let mut junk = vec![b'A'; 100 * 1024];
    junk.extend_from_slice(b" QUIT\r\n");
    p.send_raw(&junk);
    assert_eq!(p.line(), TOO_LONG);
    // 10 KB USER and PASS arguments: over-long lines as well.
    p.send_raw(format!("USER {}\r\n", "u".repeat(10 * 1024)).as_bytes());
    assert_eq!(p.line(), TOO_LONG);
    p.send_raw(format!("PASS {}\r\n", "p".repeat(10 * 1024)).as_bytes());
    assert_eq!(p.line(), TOO_LONG);
    assert!(p.login(&alice).starts_with("+OK"));
    // An over-long line in TRANSACTION that ends in DELE 1 deletes nothing.
    let mut junk = vec![b'B'; 5000];
    junk.extend_from_slice(b" DELE 1\r\n");
    p.send_raw(&junk);
    assert_eq!(p.line(), TOO_LONG);
    assert!(p.cmd("QUIT").contains("signing off"));
    assert!(
        String::from_utf8(sb.read_spool(&alice))
            .unwrap()
            .contains("Subject: keep")
    );
    assert!(
        sb.trace()
            .contains("Excessive input from 127.0.0.1; discarded"),
        "{}",
        sb.trace()
    );
}

#[test]
fn a_32_megabyte_line_costs_bounded_time_and_memory() {
    let alice = user("pt_alice");
    let (sb, port) = served("hugeline", &[]);
    let mut p = Pop::connect(port);
    p.login(&alice);
    let pid = sb.session_pid(&alice.name);
    reset_peak_rss(pid);
    let before = peak_rss_kb(pid);
    let mut w = p.writer();
    let t = Instant::now();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        w.write_all(&vec![b'z'; 32 << 20]).unwrap();
        w
    });
    assert_eq!(p.line(), TOO_LONG, "reported as soon as it is too long");
    let mut w = sender.join().unwrap();
    // The whole line is in popper (nothing left in either socket queue);
    // popper still waits for its LF.
    wait_for(
        "popper to read the whole 32 MB line",
        Duration::from_secs(30),
        || queued(port),
    );
    let grew = peak_rss_kb(pid).saturating_sub(before);
    assert!(
        grew < 4096,
        "a 32 MB line raised the peak RSS by {grew} KiB"
    );
    use std::io::Write;
    w.write_all(b"tail\r\nNOOP\r\nQUIT\r\n").unwrap();
    assert_eq!(p.line(), "+OK ");
    assert!(p.line().contains("signing off"));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[test]
fn pipelined_listings_of_a_big_mailbox_stay_in_bounded_memory() {
    // Regression (review): replies to a burst of pipelined commands were
    // all buffered until the burst was done: 16 KB of LIST lines took
    // 500 MB.
    let alice = user("pt_alice");
    let (sb, port) = served("biglist", &[]);
    let msgs: Vec<Message> = (1..=5000)
        .map(|i| Message::new("a@example.com", &format!("m{i}"), "x"))
        .collect();
    sb.write_spool(&alice, &mbox(&msgs));
    let mut p = Pop::connect(port);
    p.login(&alice);
    let pid = sb.session_pid(&alice.name);
    reset_peak_rss(pid);
    let before = peak_rss_kb(pid);
    let mut w = p.writer();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        w.write_all("LIST\r\nUIDL\r\n".repeat(300).as_bytes())
            .unwrap();
    });
    for _ in 0..600 {
        let (s, body) = p.multi_quiet();
        assert!(s.starts_with("+OK"), "{s}");
        assert!(body > 5000 * 4);
    }
    sender.join().unwrap();
    let grew = peak_rss_kb(pid).saturating_sub(before);
    assert!(
        grew < 8192,
        "600 pipelined listings raised the peak RSS by {grew} KiB"
    );
    assert!(p.cmd("QUIT").contains("signing off"));
}

#[test]
fn hostile_names_and_bytes() {
    let sb = Sandbox::new("names");
    // Four failed PASS on one connection: past the default limit.
    sb.set("set max-auth-failures = 0");
    let input = b"USER %s%n%x\r\nPASS %s%n\r\nUSER a\0b\r\nUSER \xff\xfe\r\nUSER ../../etc/passwd\r\n\x00\x01\x02\r\n\xc3\xa9t\xc3\xa9\r\nUSER x\r\nPASS\x0bHunter2secret\r\nUSER x\r\n\x0bPASS Hunter3secret\r\nUSER x\r\nPASS\r\nQUIT\r\n";
    let (out, code) = piped(&sb, &[], input);
    let want = [
        "+OK Password required for %s%n%x.",
        "-ERR [AUTH] Password supplied for \"%s%n%x\" is incorrect.",
        "-ERR [AUTH] Invalid user name.",
        "-ERR [AUTH] Invalid user name.",
        "-ERR [AUTH] Invalid user name.",
        "-ERR Unknown command: \"???\".",
        "-ERR Unknown command: \"??t??\".",
        "+OK Password required for x.",
        "-ERR [AUTH] Password supplied for \"x\" is incorrect.",
        "+OK Password required for x.",
        "-ERR [AUTH] Password supplied for \"x\" is incorrect.",
        "+OK Password required for x.",
        // COMPAT qpopper 2.53: PASS alone tries the empty password.
        "-ERR [AUTH] Password supplied for \"x\" is incorrect.",
    ];
    let got: Vec<&str> = out.split("\r\n").skip(1).take(want.len()).collect();
    assert_eq!(got, want, "{out}");
    assert_eq!(code, 0);
    // The log shows the bytes escaped, one line per entry.
    let log = sb.trace();
    assert!(log.contains("Received: \"USER a\\x00b\""), "{log}");
    assert!(!log.contains('\0'));
    // A password after a vertical tab (C isspace) is masked too.
    assert!(!log.contains("Hunter"), "{log}");
    assert_eq!(
        log.matches("Received: \"PASS xxxxxxxx\"").count(),
        4,
        "{log}"
    );
}

#[test]
fn commands_in_the_wrong_state() {
    let alice = user("pt_alice");
    let sb = Sandbox::new("states");
    sb.write_spool(&alice, &mbox(&[Message::new("a@example.com", "s", "x")]));
    let input = format!(
        "STAT\r\nRETR 1\r\nPASS x\r\nUSER {u}\r\nUSER {u}\r\nLIST\r\nPASS {p}\r\nUSER {u}\r\nPASS {p}\r\nAPOP a b\r\nQUIT\r\n",
        u = alice.name,
        p = alice.password
    );
    let (out, _) = piped(&sb, &[], input.as_bytes());
    let got: Vec<&str> = out.split("\r\n").skip(1).collect();
    assert_eq!(got[0], "-ERR Unknown command: \"stat\".");
    assert_eq!(got[1], "-ERR Unknown command: \"retr\".");
    assert_eq!(got[2], "-ERR Unknown command: \"pass\".");
    assert!(got[3].starts_with("+OK Password required"));
    assert_eq!(got[4], "-ERR Unknown command: \"user\".");
    assert_eq!(got[5], "-ERR Unknown command: \"list\".");
    assert!(got[6].starts_with("+OK pt_alice has 1 message"), "{out}");
    assert_eq!(got[7], "-ERR Unknown command: \"user\".");
    assert_eq!(got[8], "-ERR Unknown command: \"pass\".");
    assert_eq!(got[9], "-ERR Unknown command: \"apop\".");
}

#[test]
fn bad_message_numbers() {
    let alice = user("pt_alice");
    let sb = Sandbox::new("numbers");
    sb.write_spool(&alice, &mbox(&[Message::new("a@example.com", "s", "x")]));
    let mut input = login_lines(&alice);
    let args = ["0", "-1", "abc", "99999999999999999999", "2", "1x", "+1"];
    for a in args {
        input.push_str(&format!(
            "RETR {a}\r\nDELE {a}\r\nLIST {a}\r\nTOP {a} 1\r\n"
        ));
    }
    input.push_str("TOP 1 -1\r\nTOP 1 x\r\nUIDL 0\r\nUIDL abc\r\nUIDL 2\r\nSTAT\r\nQUIT\r\n");
    let (out, _) = piped(&sb, &[], input.as_bytes());
    let lines: Vec<&str> = out.split("\r\n").skip(3).collect();
    let mut i = 0;
    for a in args {
        for _ in 0..4 {
            assert_eq!(
                lines[i],
                format!("-ERR Message {a} does not exist."),
                "{out}"
            );
            i += 1;
        }
    }
    assert_eq!(
        lines[i],
        "-ERR Number of lines must be a non-negative number, not \"-1\"."
    );
    assert_eq!(
        lines[i + 1],
        "-ERR Number of lines must be a non-negative number, not \"x\"."
    );
    assert_eq!(
        lines[i + 2],
        "-ERR Parameter must be a number (range 1 to 1)"
    );
    assert_eq!(
        lines[i + 3],
        "-ERR Parameter must be a number (range 1 to 1)"
    );
    assert_eq!(
        lines[i + 4],
        "-ERR Message out of range.  1 messages in mail drop."
    );
    assert!(
        lines[i + 5].starts_with("+OK 1 "),
        "nothing was deleted: {out}"
    );
}

#[test]
fn a_hundred_thousand_commands() {
    let alice = user("pt_alice");
    let (sb, port) = served("many", &[]);
    sb.write_spool(&alice, &mbox(&[Message::new("a@example.com", "s", "x")]));
    let mut p = Pop::connect(port);
    p.login(&alice);
    let t = Instant::now();
    let mut batch = "NOOP\r\nSTAT\r\n".repeat(50_000);
    batch.push_str("QUIT\r\n");
    // Send from another thread: the replies must be read while sending.
    let mut w = p.writer();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        w.write_all(batch.as_bytes()).unwrap();
    });
    let all = String::from_utf8(p.rest()).unwrap();
    assert_eq!(all.matches("+OK \r\n").count(), 50_000);
    assert_eq!(all.matches("+OK 1 ").count(), 50_000);
    sender.join().unwrap();
    assert!(all.ends_with(" signing off.\r\n"));
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
}

#[test]
fn a_corrupt_spool_is_refused_and_left_alone() {
    let alice = user("pt_alice");
    let sb = Sandbox::new("corrupt");
    let bad = b"This is not an envelope\nSubject: x\n\nbody\n".to_vec();
    sb.write_spool(&alice, &bad);
    let (out, code) = piped(
        &sb,
        &[],
        format!("{}DELE 1\r\nQUIT\r\n", login_lines(&alice)).as_bytes(),
    );
    assert!(
        out.contains("-ERR [SYS/PERM] Unable to process From lines (envelopes), change recognition modes.\r\n"),
        "{out}"
    );
    assert!(out.ends_with(" signing off.\r\n"));
    assert_eq!(code, 2);
    assert_eq!(sb.read_spool(&alice), bad);
    assert!(!sb.mail.join(format!(".{}.pop", alice.name)).exists());
}
