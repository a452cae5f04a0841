//! A whole sans-IO session driven by arbitrary client bytes over an
//! in-memory maildrop of awkward messages.
//!
//! Invariants: no panic; every byte sent is part of a CRLF-ended line (no
//! bare LF); every reply line starts `+OK` or `-ERR`, or is a line of a
//! multi-line body that the `.` line ends; every RETR sends exactly the
//! size announced; the session ends with the sign-off line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popper::maildrop::mem::MemDrop;
use popper::protocol::error::AuthError;
use popper::protocol::session::{AuthRequest, Proof};
use popper::sim::{SimConfig, run};

const MESSAGES: &[&[u8]] = &[
    b"Subject: one\n\nbody\n.dot\n..two\n\n",
    b"X-UIDL: dup\nStatus: RO\nSubject: two\n\nx\r\ny\n",
    b"X-UIDL: dup\n\n\n",
    b"Subject: no body, no LF",
    b"From: a\nContent-Length: 3\n\nabc\n.\n",
];

fn auth(req: &AuthRequest) -> Result<(), AuthError> {
    match &req.proof {
        Proof::Pass(s) if req.user == b"alice" && s.expose() == b"secret" => Ok(()),
        Proof::Apop(_) if req.user == b"alice" => Ok(()),
        _ => Err(AuthError::BadPassword),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let cfg = SimConfig {
        apop: flags & 1 != 0,
        apop_only: flags & 2 != 0,
        update_on_abort: flags & 4 != 0,
        chunk: usize::from(flags >> 3).max(1),
        eof_abort: true,
        apop_users: Vec::new(),
        max_auth_failures: u32::from(flags >> 6),
    };
    let drop = MemDrop::new(MESSAGES.iter().map(|m| m.to_vec()));
    let t = run(input, drop, &cfg, &auth);
    assert!(t.size_mismatches.is_empty(), "{:?}", t.size_mismatches);
    let out = &t.output;
    assert!(out.ends_with(b"\r\n"), "output does not end a line");
    let mut in_body = false;
    for line in out.split_inclusive(|b| *b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "a bare LF: {line:?}");
        if in_body {
            if line == b".\r\n" {
                in_body = false;
            }
            continue;
        }
        assert!(
            line.starts_with(b"+OK") || line.starts_with(b"-ERR"),
            "not a reply: {:?}",
            String::from_utf8_lossy(line)
        );
        in_body = opens_body(line);
    }
    assert!(!in_body, "a multi-line reply was not terminated");
    let last = out.rsplit(|b| *b == b'\n').nth(1).unwrap_or(b"");
    assert!(
        last.ends_with(b"signing off.\r"),
        "no sign-off: {:?}",
        String::from_utf8_lossy(last)
    );
});

/// The `+OK` lines that a body follows (LIST, UIDL, CAPA, RETR, TOP
/// without an argument): exactly the texts popper uses for them, matched
/// word by word — RSET's `+OK Maildrop has N messages (M octets)` must not
/// count as LIST's `+OK N messages (M octets)` (the first crash this
/// target found was that confusion, in this function).
fn opens_body(line: &[u8]) -> bool {
    let l = String::from_utf8_lossy(line);
    let words: Vec<&str> = l.trim_end().split(' ').collect();
    let number = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
    match words[..] {
        ["+OK", n, "messages", m, "octets)"] => {
            number(n) && m.strip_prefix('(').is_some_and(number)
        }
        ["+OK", n, "octets"] => number(n),
        ["+OK", "uidl", "command", "accepted."] => true,
        ["+OK", "Capability", "list", "follows"] => true,
        _ => false,
    }
}
