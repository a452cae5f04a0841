//! Session transcripts through the shipping dispatch loop over in-memory
//! mbox messages: the wire behaviour of qpopper.md §15.4–§15.6 (with exact
//! sizes), byte for byte.

use super::*;
use pop3_core::error::AuthError;
use pop3_core::index::Uid;
use pop3_core::session::{AuthRequest, Proof, SessionEnd};
use pop3_core::sim::{SimConfig, Transcript, run};

const SPEC_MSG: &[u8] =
    b"Date: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\n\nHello\n.dot line\n\n";
const SPEC_UID: &[u8] = b"77ffa6bafb637ac9774fa2615b3b449b";
const BANNER: &str = "+OK QPOP (version 0.0.0) at sim.example starting.\r\n";
const BYE: &str = "+OK Pop server at sim.example signing off.\r\n";

fn spec_drop() -> MemMbox {
    let mut d = MemMbox::new([SPEC_MSG.to_vec()]);
    d.0.messages[0].uid = Uid::new(SPEC_UID).unwrap();
    d
}

fn accept_alice(req: &AuthRequest) -> Result<(), AuthError> {
    match (&req.user[..], &req.proof) {
        (b"alice", Proof::Pass(s)) if s.expose() == b"secret" => Ok(()),
        _ => Err(AuthError::BadPassword),
    }
}

fn session(input: &str) -> Transcript<MemMbox> {
    run(
        input.as_bytes(),
        spec_drop(),
        &SimConfig::default(),
        &accept_alice,
    )
}

/// A session that stops when its input does (no abort reply, no
/// sign-off), so the output is the replies to `input` alone.
fn unended(input: &str) -> Transcript<MemMbox> {
    run(
        input.as_bytes(),
        spec_drop(),
        &SimConfig {
            eof_abort: false,
            ..Default::default()
        },
        &accept_alice,
    )
}

/// Runs `commands` after logging in and returns the replies to them only.
fn after_login(commands: &str) -> String {
    let t = unended(&format!("USER alice\r\nPASS secret\r\n{commands}"));
    let text = t.text();
    let login = "+OK Password required for alice.\r\n+OK alice has 1 message (148 octets).\r\n";
    let rest = text
        .strip_prefix(BANNER)
        .unwrap()
        .strip_prefix(login)
        .unwrap_or_else(|| panic!("{text}"));
    rest.to_string()
}

#[test]
fn parser_and_dispatcher_table() {
    // qpopper.md §15.4
    let cases: &[(&str, &str)] = &[
        ("\r\n", ""),
        ("   \r\n", ""),
        ("foo\r\n", "-ERR Unknown command: \"foo\".\r\n"),
        ("STAT\r\n", "-ERR Unknown command: \"stat\".\r\n"),
        ("uSeR alice\r\n", "+OK Password required for alice.\r\n"),
        (
            "USER\r\n",
            "-ERR Too few arguments for the user command.\r\n",
        ),
        (
            "USER a b\r\n",
            "-ERR Too many arguments for the user command.\r\n",
        ),
        ("a b c d e f\r\n", "-ERR Too many arguments supplied.\r\n"),
        (
            "USER bob\r\nUSER bob\r\n",
            "+OK Password required for bob.\r\n-ERR Unknown command: \"user\".\r\n",
        ),
        ("PASS x\r\n", "-ERR Unknown command: \"pass\".\r\n"),
        ("APOP alice 0123\r\n", "-ERR Unknown command: \"apop\".\r\n"),
        ("RETR 1\r\n", "-ERR Unknown command: \"retr\".\r\n"),
    ];
    for (input, want) in cases {
        let t = unended(input);
        assert_eq!(t.text(), format!("{BANNER}{want}"), "input {input:?}");
    }
    let t = session("QUIT\r\n");
    assert_eq!(t.text(), format!("{BANNER}{BYE}"));
    assert_eq!(t.end, Some(SessionEnd::Quit));
    assert!(
        t.drop.0.committed.is_none(),
        "QUIT before login updates nothing"
    );
}

#[test]
fn pass_keeps_spaces() {
    let seen = std::cell::RefCell::new(Vec::new());
    let auth = |r: &AuthRequest| {
        if let Proof::Pass(s) = &r.proof {
            seen.borrow_mut().push(s.expose().to_vec());
        }
        Err(AuthError::BadPassword)
    };
    run(
        b"USER u\r\nPASS  my pass \r\n",
        spec_drop(),
        &SimConfig::default(),
        &auth,
    );
    assert_eq!(seen.borrow().as_slice(), &[b" my pass ".to_vec()]);
}

#[test]
fn failed_login_returns_to_authorization() {
    let t =
        session("USER nosuch\r\nPASS x\r\nPASS x\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n");
    let want = [
        BANNER,
        "+OK Password required for nosuch.\r\n",
        "-ERR [AUTH] Password supplied for \"nosuch\" is incorrect.\r\n",
        "-ERR Unknown command: \"pass\".\r\n",
        "+OK Password required for alice.\r\n",
        "+OK alice has 1 message (148 octets).\r\n",
        "+OK 1 148\r\n",
        BYE,
    ]
    .concat();
    assert_eq!(t.text(), want);
}

#[test]
fn too_many_failed_logins_close_the_connection() {
    let input = "USER alice\r\nPASS a\r\nUSER alice\r\nPASS b\r\nUSER alice\r\nPASS c\r\nUSER alice\r\nPASS secret\r\n";
    let cfg = SimConfig {
        max_auth_failures: 3,
        ..Default::default()
    };
    let t = run(input.as_bytes(), spec_drop(), &cfg, &accept_alice);
    let fail = "-ERR [AUTH] Password supplied for \"alice\" is incorrect.\r\n";
    let asked = "+OK Password required for alice.\r\n";
    let want = [
        BANNER,
        asked,
        fail,
        asked,
        fail,
        asked,
        "-ERR [AUTH] Too many failed login attempts; closing the connection.\r\n",
        BYE,
    ]
    .concat();
    assert_eq!(t.text(), want, "the fourth try is never read");
    assert_eq!(t.end, Some(SessionEnd::AuthLimit));
    // A success before the limit resets nothing and counts nothing.
    let input =
        "USER alice\r\nPASS a\r\nUSER alice\r\nPASS b\r\nUSER alice\r\nPASS secret\r\nQUIT\r\n";
    let t = run(input.as_bytes(), spec_drop(), &cfg, &accept_alice);
    assert!(t.text().contains("+OK alice has 1 message"), "{}", t.text());
    assert_eq!(t.end, Some(SessionEnd::Quit));
}

#[test]
fn mailbox_round_trip_vector() {
    // qpopper.md §15.6, with exact sizes.
    assert_eq!(after_login("STAT\r\n"), "+OK 1 148\r\n");
    assert_eq!(
        after_login("LIST\r\n"),
        "+OK 1 messages (148 octets)\r\n1 148\r\n.\r\n"
    );
    assert_eq!(after_login("LIST 1\r\n"), "+OK 1 148\r\n");
    assert_eq!(
        after_login("LIST 2\r\n"),
        "-ERR Message 2 does not exist.\r\n"
    );
    assert_eq!(
        after_login("LIST x\r\n"),
        "-ERR Message x does not exist.\r\n"
    );
    assert_eq!(
        after_login("UIDL\r\n"),
        "+OK uidl command accepted.\r\n1 77ffa6bafb637ac9774fa2615b3b449b\r\n.\r\n"
    );
    assert_eq!(
        after_login("UIDL 1\r\n"),
        "+OK 1 77ffa6bafb637ac9774fa2615b3b449b\r\n"
    );
    assert_eq!(
        after_login("UIDL 0\r\n"),
        "-ERR Parameter must be a number (range 1 to 1)\r\n"
    );
    assert_eq!(
        after_login("UIDL 5\r\n"),
        "-ERR Message out of range.  1 messages in mail drop.\r\n"
    );
    let body = "Date: Wed, 2 Dec 1992 05:53:22 -0800\r\nFrom: Alice <alice@example.com>\r\nSubject: hi\r\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\r\n\r\n";
    assert_eq!(
        after_login("RETR 1\r\n"),
        format!("+OK 148 octets\r\n{body}Hello\r\n..dot line\r\n\r\n.\r\n")
    );
    assert_eq!(
        after_login("TOP 1 0\r\n"),
        format!("+OK 148 octets\r\n{body}.\r\n")
    );
    assert_eq!(
        after_login("TOP 1 1\r\n"),
        format!("+OK 148 octets\r\n{body}Hello\r\n.\r\n")
    );
    assert_eq!(
        after_login("LAST\r\n"),
        "+OK 0 is the last read message.\r\n"
    );
    assert!(after_login("RETR 1\r\nLAST\r\n").ends_with("+OK 1 is the last read message.\r\n"));
    assert!(after_login("TOP 1 1\r\nLAST\r\n").ends_with("+OK 0 is the last read message.\r\n"));
    assert_eq!(
        after_login(
            "DELE 1\r\nDELE 1\r\nRETR 1\r\nSTAT\r\nLIST\r\nUIDL\r\nUIDL 1\r\nLIST 1\r\nRSET\r\nSTAT\r\n"
        ),
        [
            "+OK Message 1 has been deleted.\r\n",
            "-ERR Message 1 has already been deleted.\r\n",
            "-ERR Message 1 has been deleted.\r\n",
            "+OK 0 0\r\n",
            "+OK 0 messages (0 octets)\r\n.\r\n",
            "+OK uidl command accepted.\r\n.\r\n",
            "-ERR Message 1 has been marked for deletion.\r\n",
            "-ERR Message 1 has been deleted.\r\n",
            "+OK Maildrop has 1 messages (148 octets)\r\n",
            "+OK 1 148\r\n",
        ]
        .concat()
    );
    assert_eq!(after_login("NOOP\r\n"), "+OK \r\n");
}

#[test]
fn bad_message_numbers() {
    for (arg, echo) in [
        ("0", "0"),
        ("-1", "-1"),
        ("abc", "abc"),
        ("99999999999999999999", "99999999999999999999"),
        ("1x", "1x"),
    ] {
        for cmd in ["RETR", "DELE", "LIST"] {
            assert_eq!(
                after_login(&format!("{cmd} {arg}\r\n")),
                format!("-ERR Message {echo} does not exist.\r\n"),
                "{cmd} {arg}"
            );
        }
        assert_eq!(
            after_login(&format!("TOP {arg} 1\r\n")),
            format!("-ERR Message {echo} does not exist.\r\n")
        );
    }
    assert_eq!(
        after_login("TOP 1 -1\r\n"),
        "-ERR Number of lines must be a non-negative number, not \"-1\".\r\n"
    );
    assert_eq!(
        after_login("TOP 1 x\r\n"),
        "-ERR Number of lines must be a non-negative number, not \"x\".\r\n"
    );
    assert_eq!(
        after_login("UIDL abc\r\n"),
        "-ERR Parameter must be a number (range 1 to 1)\r\n"
    );
    assert_eq!(
        after_login("UIDL -1\r\n"),
        "-ERR Parameter must be a number (range 1 to 1)\r\n"
    );
    assert!(after_login("TOP 1 99999999999999999999999\r\n").starts_with("-ERR Number of lines"));
    assert!(after_login("TOP 1 18446744073709551615\r\n").starts_with("+OK 148 octets\r\n"));
}

#[test]
fn quit_commits_marks() {
    let t = session("USER alice\r\nPASS secret\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n");
    assert!(
        t.text()
            .ends_with(&format!("+OK Message 1 has been deleted.\r\n{BYE}"))
    );
    assert_eq!(t.drop.0.committed, Some((vec![true], vec![true])));
    assert_eq!(t.end, Some(SessionEnd::Quit));
}

#[test]
fn rset_clears_deletions_and_read_marks() {
    let t = session("USER alice\r\nPASS secret\r\nRETR 1\r\nDELE 1\r\nRSET\r\nQUIT\r\n");
    assert_eq!(t.drop.0.committed, Some((vec![false], vec![false])));
}

#[test]
fn eof_in_transaction_updates_as_qpopper_does() {
    let t = session("USER alice\r\nPASS secret\r\nDELE 1\r\n");
    assert!(t.text().ends_with(&format!(
        "+OK Message 1 has been deleted.\r\n-ERR POP EOF received\r\n{BYE}"
    )));
    assert_eq!(t.drop.0.committed, Some((vec![true], vec![false])));
    assert_eq!(t.end, Some(SessionEnd::ClientGone));
    // With update-on-abort off (RFC 1939), nothing is committed.
    let cfg = SimConfig {
        update_on_abort: false,
        ..Default::default()
    };
    let t = run(
        b"USER alice\r\nPASS secret\r\nDELE 1\r\n",
        spec_drop(),
        &cfg,
        &accept_alice,
    );
    assert!(t.drop.0.committed.is_none());
    assert!(
        t.text()
            .ends_with(&format!("-ERR POP EOF received\r\n{BYE}"))
    );
}

#[test]
fn failed_update_is_reported_before_sign_off() {
    let mut d = spec_drop();
    d.0.fail_commit = Some(
        crate::maildrop::error::MaildropError::NoSpace {
            path: "/var/mail/alice".into(),
        }
        .into(),
    );
    let t = run(
        b"USER alice\r\nPASS secret\r\nDELE 1\r\nQUIT\r\n",
        d,
        &SimConfig::default(),
        &accept_alice,
    );
    assert!(t.text().ends_with(&format!(
        "-ERR [SYS/TEMP] Disk full or quota exceeded updating /var/mail/alice; mailbox left unchanged.\r\n{BYE}"
    )));
    assert_eq!(t.end, Some(SessionEnd::ServerFault));
    let mut d = spec_drop();
    d.0.fail_commit =
        Some(crate::maildrop::error::MaildropError::NoSpace { path: "x".into() }.into());
    let t = run(
        b"USER alice\r\nPASS secret\r\nDELE 1\r\n",
        d,
        &SimConfig::default(),
        &accept_alice,
    );
    assert!(t.text().ends_with(&format!(
        "-ERR POP EOF received\r\n-ERR POP mailbox update failed!\r\n{BYE}"
    )));
}

#[test]
fn pipelined_input_at_every_chunk_size() {
    let input = "USER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 1\r\nDELE 1\r\nLAST\r\nQUIT\r\n";
    let whole = session(input).text();
    assert!(whole.ends_with(BYE));
    for chunk in 1..40 {
        let cfg = SimConfig {
            chunk,
            ..Default::default()
        };
        let t = run(input.as_bytes(), spec_drop(), &cfg, &accept_alice);
        assert_eq!(t.text(), whole, "chunk {chunk}");
    }
}

#[test]
fn over_long_line_is_one_error_and_never_a_command() {
    let mut input = b"USER alice\r\nPASS secret\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100 * 1024 - 7));
    input.extend_from_slice(b" DELE 1\r\nSTAT\r\nQUIT\r\n");
    let t = run(
        &input,
        spec_drop(),
        &SimConfig {
            chunk: 1000,
            ..Default::default()
        },
        &accept_alice,
    );
    assert!(t.text().ends_with(&format!(
        "-ERR Command line too long; at most 1023 bytes are allowed.\r\n+OK 1 148\r\n{BYE}"
    )));
    assert_eq!(t.drop.0.committed, Some((vec![false], vec![false])));
}

#[test]
fn hostile_names_and_bytes() {
    for name in ["a\0b", "\u{ff}\u{fe}", "a/b", &"x".repeat(65)] {
        let t = session(&format!("USER {name}\r\n"));
        assert!(
            t.text().contains("-ERR [AUTH] Invalid user name.\r\n"),
            "{name:?}"
        );
    }
    let t = session("USER %s%n%x\r\n");
    assert!(t.text().contains("+OK Password required for %s%n%x.\r\n"));
    let t = run(
        b"\xff\x00\x01\r\n",
        spec_drop(),
        &SimConfig::default(),
        &accept_alice,
    );
    assert!(t.text().contains("-ERR Unknown command: \"???\".\r\n"));
}

#[test]
fn a_hundred_thousand_commands() {
    let mut input = String::from("USER alice\r\nPASS secret\r\n");
    for _ in 0..100_000 {
        input.push_str("NOOP\r\n");
    }
    input.push_str("QUIT\r\n");
    let t = session(&input);
    assert_eq!(t.text().matches("+OK \r\n").count(), 100_000);
    assert_eq!(t.end, Some(SessionEnd::Quit));
}

#[test]
fn capa_in_every_state() {
    let caps = "+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION popper-0.0.0\r\n.\r\n";
    assert_eq!(
        session("CAPA\r\n").text(),
        format!("{BANNER}{caps}-ERR POP EOF received\r\n{BYE}")
    );
    assert!(after_login("CAPA\r\n").starts_with(caps));
    let cfg = SimConfig {
        apop_only: true,
        apop: true,
        ..Default::default()
    };
    let t = run(b"CAPA\r\nUSER alice\r\n", spec_drop(), &cfg, &accept_alice);
    assert!(!t.text().contains("\r\nUSER\r\n"));
    assert!(
        t.text()
            .contains("-ERR [AUTH] You must use APOP authentication to connect to this server\r\n")
    );
}

#[test]
fn sizes_announced_equal_bytes_sent_for_awkward_mail() {
    let msgs: Vec<Vec<u8>> = vec![
        b"Subject: crlf\r\n\r\nline\r\n".to_vec(),
        b"Subject: no final newline\n\nend".to_vec(),
        b"X-UIDL: keep\nContent-Length: 99\nStatus: RO\n\n.\n..\n>From x\nFrom y Wed Dec  2 05:53 1992\n".to_vec(),
        [b"Subject: long\n\n".as_slice(), &vec![b'a'; 2000], b"\n"].concat(),
        b"".to_vec(),
        b"\n".to_vec(),
        b"Subject: 8bit \xe9\xff\0\n\n\x80\n".to_vec(),
    ];
    let n = msgs.len();
    let mut input = String::from("USER alice\r\nPASS secret\r\n");
    for i in 1..=n {
        input.push_str(&format!("RETR {i}\r\nTOP {i} 0\r\n"));
    }
    let t = run(
        input.as_bytes(),
        MemMbox::new(msgs),
        &SimConfig::default(),
        &accept_alice,
    );
    assert!(t.size_mismatches.is_empty(), "{:?}", t.size_mismatches);
}

#[test]
fn with_apop_user_checks_for_a_record_and_apop_logs_in() {
    let cfg = SimConfig {
        apop: true,
        apop_users: vec![b"bob".to_vec()],
        ..Default::default()
    };
    let auth = |r: &AuthRequest| match (&r.user[..], &r.proof) {
        (b"alice", Proof::Apop(d)) if d == b"right" => Ok(()),
        (_, Proof::Apop(_)) => Err(AuthError::DigestMismatch),
        _ => Err(AuthError::BadPassword),
    };
    let t = run(
        b"USER bob\r\nUSER alice\r\nQUIT\r\n",
        spec_drop(),
        &cfg,
        &auth,
    );
    let text = t.text();
    assert!(
        text.contains("\r\n-ERR [AUTH] You must use APOP to connect to this server\r\n+OK Password required for alice.\r\n"),
        "{text}"
    );
    let t = run(
        b"APOP alice wrong\r\nAPOP alice right\r\nSTAT\r\nQUIT\r\n",
        spec_drop(),
        &cfg,
        &auth,
    );
    let text = t.text();
    assert!(
        text.starts_with(
            "+OK QPOP (version 0.0.0) at sim.example starting.  <1.2.3@sim.example>\r\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("-ERR [AUTH] authentication failure\r\n+OK alice has 1 message(s) (148 octets).\r\n+OK 1 148\r\n"),
        "{text}"
    );
}

#[test]
fn euidl_vectors_of_15_6() {
    // 4.x's form: the value without 2.53's stray LF.
    assert_eq!(
        after_login("EUIDL\r\nEUIDL 1\r\n"),
        "+OK uidl command accepted.\r\n\
         1 77ffa6bafb637ac9774fa2615b3b449b 148 Alice <alice@example.com>\r\n\
         .\r\n\
         +OK 1 77ffa6bafb637ac9774fa2615b3b449b 148 Alice <alice@example.com>\r\n"
    );
    assert_eq!(
        after_login("EUIDL 0\r\nEUIDL 5\r\n"),
        "-ERR Parameter must be a number (range 1 to 1)\r\n\
         -ERR Message out of range.  1 messages in mail drop.\r\n"
    );
}

#[test]
fn xtnd_xlst_sees_the_header_as_top_sends_it() {
    // The canonical X-UIDL line qpopper's wire form inserts is there.
    assert_eq!(
        after_login("XTND XLST X-UIDL\r\nXTND XLST subject 1\r\n"),
        "+OK xlst command accepted; headers coming.\r\n\
         1 X-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\r\n\
         .\r\n\
         +OK xlst command accepted; headers coming.\r\n\
         1 Subject: hi\r\n\
         .\r\n"
    );
}

#[test]
fn header_lookup_over_the_mbox_wire_form() {
    // Content-Length is not sent, so it is not found; a stored X-UIDL is
    // replaced by the canonical line; format strings stay text.
    let msg = b"Content-Length: 3\nX-UIDL: %s%n%x\nFrom: %n%n%n%n <x@y>\n\nabc\n".to_vec();
    let mut d = MemMbox::new([msg]);
    d.0.messages[0].uid = Uid::new(b"%s%n%x").unwrap();
    for chunk in [1, 3, 4096] {
        d.0.chunk = chunk;
        let h = |d: &mut MemMbox, name: &[u8]| d.header(MsgIdx(0), name, 100).unwrap();
        assert_eq!(h(&mut d, b"content-length"), None);
        assert_eq!(
            h(&mut d, b"x-uidl").as_deref(),
            Some(&b"X-UIDL: %s%n%x"[..])
        );
        assert_eq!(
            h(&mut d, b"from:").as_deref(),
            Some(&b"From: %n%n%n%n <x@y>"[..])
        );
    }
}
