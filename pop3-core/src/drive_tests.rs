//! The dispatch loop's contract, through the in-memory host: what reaches
//! the client decides what is marked read, over-long lines are reported
//! once each, a `+OK` is taken back for a message that cannot be read, and
//! every maildrop is committed or abandoned exactly once.

use crate::error::AuthError;
use crate::index::MsgIdx;
use crate::mem::MemDrop;
use crate::session::{AuthRequest, Proof, SessionEnd};
use crate::sim::{SimConfig, Transcript, run};

fn alice(req: &AuthRequest) -> Result<(), AuthError> {
    match &req.proof {
        Proof::Pass(s) if req.user == b"alice" && s.expose() == b"secret" => Ok(()),
        _ => Err(AuthError::BadPassword),
    }
}

const LOGIN: &str = "USER alice\r\nPASS secret\r\n";

/// A maildrop of one small message and one of `big` bytes.
fn drop_with_big(big: usize) -> MemDrop {
    let mut body = b"Subject: big\n\n".to_vec();
    body.extend(std::iter::repeat_n(b'x', big));
    body.push(b'\n');
    MemDrop::new([b"Subject: small\n\nhi\n".to_vec(), body])
}

fn session(input: &str, drop: MemDrop, cfg: &SimConfig) -> Transcript<MemDrop> {
    run(input.as_bytes(), drop, cfg, &alice)
}

fn retrieved(t: &Transcript<MemDrop>) -> Vec<bool> {
    t.drop.committed.clone().expect("committed").1
}

#[test]
fn an_interrupted_retr_does_not_mark_the_message_read() {
    // Regression: a client that read 100 KB of a 5 MB message and hung up
    // found it marked read (qpopper marks at the start of RETR).
    let cfg = SimConfig {
        write_limit: Some(100_000),
        ..SimConfig::default()
    };
    let t = session(
        &format!("{LOGIN}RETR 2\r\n"),
        drop_with_big(5_000_000),
        &cfg,
    );
    assert_eq!(t.end, None, "the client hung up");
    assert!(t.output.len() <= 100_000);
    assert_eq!(retrieved(&t), vec![false, false], "update on abort ran");
    // The same message sent to its end is marked.
    let t = session(
        &format!("{LOGIN}RETR 2\r\n"),
        drop_with_big(5_000_000),
        &SimConfig::default(),
    );
    assert_eq!(retrieved(&t), vec![false, true]);
    assert_eq!(t.end, Some(SessionEnd::ClientGone));
}

#[test]
fn pipelined_retrs_are_marked_as_far_as_the_client_got() {
    // RETR 1's end left in the same write as the start of RETR 2, which
    // never got its terminator out.
    let input = format!("{LOGIN}RETR 1\r\nRETR 2\r\nLAST\r\n");
    for limit in [150, 300, 2_000, 40_000, 69_000] {
        let cfg = SimConfig {
            write_limit: Some(limit),
            ..SimConfig::default()
        };
        let t = session(&input, drop_with_big(200_000), &cfg);
        let out = t.text();
        let first_done = out.contains("\r\nhi\r\n.\r\n");
        assert_eq!(retrieved(&t), vec![first_done, false], "limit {limit}");
    }
    // Without a cut, LAST sees both at once, before any write.
    let t = session(&input, drop_with_big(200_000), &SimConfig::default());
    assert!(t.text().contains("+OK 2 is the last read message.\r\n"));
    assert_eq!(retrieved(&t), vec![true, true]);
}

#[test]
fn top_never_marks_and_a_second_retr_keeps_the_mark() {
    let t = session(
        &format!("{LOGIN}RETR 1\r\nTOP 2 0\r\n"),
        drop_with_big(10),
        &SimConfig::default(),
    );
    assert_eq!(retrieved(&t), vec![true, false]);
    // One byte a read: the first RETR 1 is written out before the second
    // is read; the second is cut short and must not take the mark back.
    let cfg = SimConfig {
        write_limit: Some(170),
        chunk: 1,
        ..SimConfig::default()
    };
    let t = session(
        &format!("{LOGIN}RETR 1\r\nRETR 1\r\n"),
        drop_with_big(10),
        &cfg,
    );
    assert_eq!(
        t.text().matches("\r\nhi\r\n.\r\n").count(),
        1,
        "{}",
        t.text()
    );
    assert_eq!(retrieved(&t), vec![true, false]);
}

#[test]
fn each_over_long_line_is_reported_once_and_reports_are_bounded() {
    // One 50 MiB line fed in 16 KiB reads: one report, with its total.
    let mut input = LOGIN.as_bytes().to_vec();
    input.extend(std::iter::repeat_n(b'z', 50 << 20));
    input.extend_from_slice(b"\r\nQUIT\r\n");
    let cfg = SimConfig {
        chunk: 16 << 10,
        ..SimConfig::default()
    };
    let t = run(&input, MemDrop::new([]), &cfg, &alice);
    assert_eq!(t.discarded, vec![(50 << 20) + 2]);
    assert_eq!(t.end, Some(SessionEnd::Quit));
    // Thirty of them: ten reports, then silence.
    let mut input = Vec::new();
    for _ in 0..30 {
        input.extend(std::iter::repeat_n(b'y', 2000));
        input.extend_from_slice(b"\n");
    }
    let t = run(&input, MemDrop::new([]), &SimConfig::default(), &alice);
    assert_eq!(t.discarded, vec![2001; 10]);
    assert_eq!(t.text().matches("-ERR Command line too long").count(), 30);
    // A line still going when the client leaves is reported with what came.
    let t = run(
        &[b'w'; 3000],
        MemDrop::new([]),
        &SimConfig::default(),
        &alice,
    );
    assert_eq!(t.discarded, vec![3000]);
}

#[test]
fn a_message_gone_before_its_first_byte_gets_its_ok_taken_back() {
    let mut drop = MemDrop::new([b"Subject: a\n\nx\n".to_vec(), b"Subject: b\n\ny\n".to_vec()]);
    drop.fail_send = Some(MsgIdx(1));
    let t = session(
        &format!("{LOGIN}RETR 1\r\nRETR 2\r\nNOOP\r\n"),
        drop,
        &SimConfig::default(),
    );
    let text = t.text();
    assert!(
        text.contains("\r\n.\r\n-ERR [SYS/TEMP] Message 2 is no longer in the maildrop.\r\n+OK Pop server at sim.example signing off.\r\n"),
        "{text}"
    );
    // Both messages are 17 octets: only RETR 1's head is left.
    assert_eq!(text.matches("+OK 17 octets").count(), 1, "{text}");
    assert!(!text.contains("\r\n+OK \r\n"), "NOOP was never read");
    assert_eq!(t.end, Some(SessionEnd::ServerFault));
    // The RETR that worked is not lost: the maildrop is let go unchanged.
    assert!(t.drop.abandoned && t.drop.committed.is_none());
    let last = t.replies.last().copied();
    assert_eq!(last.map(|(_, multiline)| multiline), Some(false));
}

#[test]
fn every_maildrop_is_committed_or_abandoned_once() {
    let drop = || MemDrop::new([b"Subject: a\n\nx\n".to_vec()]);
    let quit = session(&format!("{LOGIN}QUIT\r\n"), drop(), &SimConfig::default());
    assert!(quit.drop.committed.is_some() && !quit.drop.abandoned);
    let no_update = SimConfig {
        update_on_abort: false,
        ..SimConfig::default()
    };
    let gone = session(&format!("{LOGIN}DELE 1\r\n"), drop(), &no_update);
    assert!(gone.drop.committed.is_none() && gone.drop.abandoned);
    assert_eq!(gone.end, Some(SessionEnd::ClientGone));
    let never = session("USER alice\r\nQUIT\r\n", drop(), &SimConfig::default());
    assert!(never.drop.committed.is_none() && !never.drop.abandoned);
}

#[test]
fn replies_are_recorded_with_their_shape() {
    let t = session(
        &format!("{LOGIN}LIST\r\nSTAT\r\nRETR 1\r\nBOGUS\r\nQUIT\r\n"),
        MemDrop::new([b"Subject: a\n\nx\n".to_vec()]),
        &SimConfig::default(),
    );
    let shapes: Vec<bool> = t.replies.iter().map(|(_, m)| *m).collect();
    // USER, PASS, LIST, STAT, RETR, BOGUS.
    assert_eq!(shapes, [false, false, true, false, true, false]);
    for (at, _) in &t.replies {
        let rest = &t.output[*at..];
        assert!(rest.starts_with(b"+OK") || rest.starts_with(b"-ERR"));
    }
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "out of turn")]
fn an_answer_out_of_turn_is_loud_in_debug_builds() {
    use crate::capa::Capabilities;
    use crate::greeting::Greeting;
    use crate::index::Index;
    use crate::sasl::Nonces;
    use crate::session::{Session, SessionConfig};
    let mut s = Session::new(SessionConfig::new(
        Greeting::new("h", "0", false, None),
        Capabilities::new(false, "0"),
        Nonces::new([0; 32]),
    ));
    // No PASS was asked for: a driver that answers one anyway.
    let _ = s.on_auth(Ok(Index::default().into()));
}

#[test]
fn a_message_another_reader_took_is_an_err_and_the_session_goes_on() {
    let mut drop = MemDrop::new([b"Subject: a\n\nx\n".to_vec(), b"Subject: b\n\ny\n".to_vec()]);
    drop.gone = Some(MsgIdx(0));
    let t = session(
        &format!("{LOGIN}RETR 1\r\nRETR 2\r\nDELE 1\r\nQUIT\r\n"),
        drop,
        &SimConfig::default(),
    );
    let text = t.text();
    assert!(
        text.contains("\r\n-ERR [SYS/TEMP] Message 1 is no longer in the maildrop.\r\n+OK 17 octets\r\nSubject: b\r\n"),
        "{text}"
    );
    assert!(text.ends_with(
        "+OK Message 1 has been deleted.\r\n+OK Pop server at sim.example signing off.\r\n"
    ));
    assert_eq!(t.end, Some(SessionEnd::Quit));
    assert_eq!(
        t.drop.committed,
        Some((vec![true, false], vec![false, true]))
    );
    let shapes: Vec<bool> = t.replies.iter().map(|(_, m)| *m).collect();
    assert_eq!(
        shapes,
        [false, false, false, true, false],
        "the taken-back +OK is an -ERR"
    );
}

#[test]
fn a_session_authenticated_before_it_began_starts_in_transaction() {
    let cfg = SimConfig {
        start: crate::session::Start::Authenticated(b"alice".to_vec()),
        ..SimConfig::default()
    };
    let chain = |r: &AuthRequest| match r.proof {
        Proof::Chain if r.user == b"alice" => Ok(()),
        _ => Err(AuthError::BadPassword),
    };
    let drop = MemDrop::new([b"Subject: a\n\nx\n".to_vec()]);
    let t = run(b"STAT\r\nUSER bob\r\nQUIT\r\n", drop.clone(), &cfg, &chain);
    assert_eq!(
        t.text(),
        "+OK alice has 1 message (17 octets).\r\n+OK 1 17\r\n-ERR Unknown command: \"user\".\r\n+OK Pop server at sim.example signing off.\r\n",
        "no greeting: the first line answers the chain's PASS"
    );
    assert_eq!(t.end, Some(SessionEnd::Quit));
    // A chain that proves nothing ends the session at once.
    let t = run(b"STAT\r\nUSER alice\r\n", drop, &cfg, &|_| {
        Err(AuthError::RootDenied)
    });
    assert_eq!(
        t.text(),
        "-ERR [AUTH] User alice login denied.\r\n+OK Pop server at sim.example signing off.\r\n",
        "no second chance: the first link owns AUTHORIZATION"
    );
    assert_eq!(t.end, Some(SessionEnd::ServerFault));
}

#[test]
fn a_login_handed_to_another_program_ends_without_a_word() {
    use crate::drive::{Host, Input, drive};
    use crate::maildrop::Output;
    use crate::session::AuthFailure;

    struct Handing {
        input: Vec<u8>,
        out: Vec<u8>,
        sent: Vec<u8>,
    }
    impl Output for Handing {
        fn buffer(&mut self) -> &mut Vec<u8> {
            &mut self.out
        }
        fn drain(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Host for Handing {
        type Drop = MemDrop;
        fn read(&mut self, buf: &mut [u8]) -> Input {
            let n = self.input.len().min(buf.len());
            if n == 0 {
                return Input::Eof;
            }
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Input::Data(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.sent.append(&mut self.out);
            Ok(())
        }
        fn written(&self) -> u64 {
            self.sent.len() as u64
        }
        fn check_user(&mut self, _: &[u8]) -> Result<(), AuthError> {
            Ok(())
        }
        fn start_tls(&mut self) -> bool {
            false
        }
        fn login(
            &mut self,
            _: &AuthRequest,
            _: Option<&str>,
        ) -> Result<crate::drive::Opened<MemDrop>, AuthFailure> {
            Err(AuthFailure::HandedOver)
        }
    }
    let mut h = Handing {
        input: b"USER alice\r\nPASS secret\r\nSTAT\r\n".to_vec(),
        out: Vec::new(),
        sent: Vec::new(),
    };
    let cfg = crate::session::SessionConfig::new(
        crate::greeting::Greeting::new("h", "0", false, None),
        crate::capa::Capabilities::new(false, "0"),
        crate::sasl::Nonces::new([0; 32]),
    );
    let o = drive(&mut h, cfg);
    assert_eq!(o.end, SessionEnd::HandedOver);
    assert_eq!(
        String::from_utf8(h.sent).unwrap(),
        "+OK QPOP (version 0) at h starting.\r\n+OK Password required for alice.\r\n",
        "what came before the hand-over was written out first; nothing after"
    );
}
