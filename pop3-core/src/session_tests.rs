//! STLS, the clear-text policy and SASL AUTH, whole sessions through the
//! shipping dispatch loop on the in-memory host.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::AuthError;
use crate::mem::MemDrop;
use crate::policy::{ClearText, Tls};
use crate::sasl;
use crate::session::{AuthRequest, Proof, SessionEnd};
use crate::sim::{SimConfig, Transcript, run};

fn alice(req: &AuthRequest) -> Result<(), AuthError> {
    match &req.proof {
        Proof::Pass(s) if req.user == b"alice" && s.expose() == b"secret" => Ok(()),
        _ => Err(AuthError::BadPassword),
    }
}

fn drop() -> MemDrop {
    MemDrop::new([b"Subject: one\n\nhi\n".to_vec()])
}

fn session(input: &str, cfg: &SimConfig) -> Transcript<MemDrop> {
    run(input.as_bytes(), drop(), cfg, &alice)
}

fn offered() -> SimConfig {
    SimConfig {
        tls: Tls::Offered,
        ..SimConfig::default()
    }
}

const LOGGED_IN: &str = "+OK alice has 1 message (20 octets).\r\n";

#[test]
fn stls_is_listed_only_while_it_can_work() {
    let t = session("CAPA\r\nQUIT\r\n", &offered());
    assert!(t.text().contains("\r\nSTLS\r\n"), "{}", t.text());
    for tls in [Tls::Off, Tls::Broken, Tls::Active] {
        let cfg = SimConfig {
            tls,
            ..SimConfig::default()
        };
        let t = session("CAPA\r\nQUIT\r\n", &cfg);
        assert!(!t.text().contains("STLS"), "{tls:?}: {}", t.text());
    }
    // After USER it can no longer work: not listed.
    let t = session("USER alice\r\nCAPA\r\nQUIT\r\n", &offered());
    assert!(!t.text().contains("STLS"), "{}", t.text());
}

#[test]
fn what_follows_stls_in_the_same_read_is_never_a_command() {
    // CVE-2011-0411: a man in the middle appends commands to STLS in clear.
    let cfg = offered();
    let t = session("STLS\r\nUSER alice\r\nPASS secret\r\nQUIT\r\n", &cfg);
    let at = t.tls_at.expect("the handshake ran");
    assert_eq!(
        &t.text()[..at],
        "+OK QPOP (version 0.0.0) at sim.example starting.\r\n+OK Begin TLS negotiation now.\r\n"
    );
    assert_eq!(
        t.dropped,
        vec!["USER alice\r\nPASS secret\r\nQUIT\r\n".len()]
    );
    // Only the end of input is answered (in TLS): no USER, no PASS.
    assert_eq!(
        &t.text()[at..],
        "-ERR POP EOF received\r\n+OK Pop server at sim.example signing off.\r\n"
    );
}

#[test]
fn after_the_handshake_a_clean_slate() {
    // Each line arrives in a read of its own (6 bytes), as from a client
    // that waits for each reply.
    let cfg = SimConfig {
        chunk: 6,
        ..offered()
    };
    let t = session("STLS\r\nCAPA\r\nSTLS\r\nQUIT\r\n", &cfg);
    let after = &t.text()[t.tls_at.unwrap()..];
    assert!(!after.contains("\r\nSTLS\r\n"), "{after}");
    assert!(after.contains("-ERR TLS is already active\r\n"), "{after}");
    assert!(t.dropped.is_empty());
    assert_eq!(t.end, Some(SessionEnd::Quit));
}

#[test]
fn stls_refusals() {
    let t = session("USER alice\r\nSTLS\r\nPASS secret\r\nQUIT\r\n", &offered());
    assert!(
        t.text()
            .contains("-ERR STLS is only allowed before USER\r\n"),
        "{}",
        t.text()
    );
    assert!(t.text().contains(LOGGED_IN), "USER is still pending");
    let broken = SimConfig {
        tls: Tls::Broken,
        ..SimConfig::default()
    };
    let t = session("STLS\r\nQUIT\r\n", &broken);
    assert!(
        t.text()
            .contains("-ERR [SYS/PERM] TLS is not available on this server\r\n")
    );
    let t = session("STLS\r\nQUIT\r\n", &SimConfig::default());
    assert!(t.text().contains("-ERR Unknown command: \"stls\".\r\n"));
    let t = session("USER alice\r\nPASS secret\r\nSTLS\r\nQUIT\r\n", &offered());
    assert!(t.text().contains("-ERR Unknown command: \"stls\".\r\n"));
}

#[test]
fn a_failed_handshake_ends_without_a_word() {
    let cfg = SimConfig {
        handshake_ok: false,
        ..offered()
    };
    let t = session("STLS\r\n", &cfg);
    assert_eq!(t.end, Some(SessionEnd::TlsFailed));
    assert!(t.text().ends_with("+OK Begin TLS negotiation now.\r\n"));
}

#[test]
fn the_clear_text_policy_at_user_and_auth() {
    let needs_tls = "-ERR [AUTH] You must use TLS/SSL or stronger authentication such as APOP to connect to this server\r\n";
    let cfg = SimConfig {
        clear_text: ClearText::Tls,
        chunk: 6,
        ..offered()
    };
    for name in ["alice", "nosuchuser"] {
        let t = session(&format!("USER {name}\r\nQUIT\r\n"), &cfg);
        assert!(t.text().contains(needs_tls), "{name}: {}", t.text());
    }
    let t = session("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nQUIT\r\n", &cfg);
    assert!(t.text().contains(needs_tls), "{}", t.text());
    let t = session("CAPA\r\nQUIT\r\n", &cfg);
    assert!(!t.text().contains("USER") && !t.text().contains("SASL"));
    // Under TLS the same login works.
    let t = session("STLS\r\nUSER alice\r\nPASS secret\r\nQUIT\r\n", &cfg);
    assert!(t.text().contains(LOGGED_IN), "{}", t.text());

    let never = SimConfig {
        clear_text: ClearText::Never,
        tls: Tls::Active,
        ..SimConfig::default()
    };
    let t = session("USER alice\r\nQUIT\r\n", &never);
    assert!(t.text().contains("-ERR [AUTH] You must use stronger authentication such as APOP to connect to this server\r\n"));
    let local = SimConfig {
        clear_text: ClearText::Local,
        local: false,
        ..SimConfig::default()
    };
    let t = session("USER alice\r\nQUIT\r\n", &local);
    assert!(t.text().contains("-ERR [AUTH] You must use stronger"));
    let t = session(
        "USER alice\r\nPASS secret\r\nQUIT\r\n",
        &SimConfig {
            local: true,
            ..local
        },
    );
    assert!(t.text().contains(LOGGED_IN));
}

#[test]
fn the_apop_record_rule_only_in_clear_under_default() {
    let cfg = SimConfig {
        apop: true,
        apop_users: vec![b"alice".to_vec()],
        chunk: 6,
        ..offered()
    };
    let refused = "-ERR [AUTH] You must use APOP to connect to this server\r\n";
    let t = session("USER alice\r\nQUIT\r\n", &cfg);
    assert!(t.text().contains(refused));
    let t = session("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nQUIT\r\n", &cfg);
    assert!(t.text().contains(refused), "{}", t.text());
    let t = session("STLS\r\nUSER alice\r\nPASS secret\r\nQUIT\r\n", &cfg);
    assert!(t.text().contains(LOGGED_IN), "{}", t.text());
    let always = SimConfig {
        clear_text: ClearText::Always,
        ..cfg
    };
    let t = session("USER alice\r\nPASS secret\r\nQUIT\r\n", &always);
    assert!(t.text().contains(LOGGED_IN));
}

#[test]
fn plain_and_login() {
    let cfg = SimConfig::default();
    let b64 = |s: &str| sasl::encode(s.as_bytes());
    let t = session(
        &format!("AUTH PLAIN {}\r\nSTAT\r\nQUIT\r\n", b64("\0alice\0secret")),
        &cfg,
    );
    assert!(t.text().contains(LOGGED_IN), "{}", t.text());
    let t = session(
        &format!("AUTH PLAIN\r\n{}\r\nQUIT\r\n", b64("alice\0alice\0secret")),
        &cfg,
    );
    assert!(t.text().contains("\r\n+ \r\n"), "{}", t.text());
    assert!(t.text().contains(LOGGED_IN), "{}", t.text());
    let t = session(
        &format!(
            "AUTH LOGIN\r\n{}\r\n{}\r\nQUIT\r\n",
            b64("alice"),
            b64("secret")
        ),
        &cfg,
    );
    assert!(t.text().contains("+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n"));
    assert!(t.text().contains(LOGGED_IN), "{}", t.text());
    let t = session(
        &format!("AUTH PLAIN {}\r\nQUIT\r\n", b64("\0alice\0wrong")),
        &cfg,
    );
    assert!(
        t.text()
            .contains("-ERR [AUTH] Password supplied for \"alice\" is incorrect.\r\n")
    );
}

#[test]
fn bad_responses_cancel_and_the_mechanism_list() {
    let cfg = SimConfig::default();
    let t = session(
        "AUTH PLAIN\r\n*\r\nAUTH PLAIN !!!\r\nAUTH X\r\nAUTH\r\nQUIT\r\n",
        &cfg,
    );
    let text = t.text();
    assert!(
        text.contains("-ERR [AUTH] Authentication cancelled\r\n"),
        "{text}"
    );
    assert!(
        text.contains("-ERR [AUTH] Invalid base64 data\r\n"),
        "{text}"
    );
    assert!(
        text.contains("-ERR [AUTH] Unrecognized authentication mechanism\r\n"),
        "{text}"
    );
    assert!(
        text.contains("+OK List of SASL mechanisms follows\r\nPLAIN\r\nLOGIN\r\n.\r\n"),
        "{text}"
    );
    assert_eq!(t.end, Some(SessionEnd::Quit));
    // An over-long response abandons the exchange; the next line is a
    // command again.
    let long = "A".repeat(3000);
    let t = session(&format!("AUTH PLAIN\r\n{long}\r\nQUIT\r\n"), &cfg);
    assert!(
        t.text()
            .contains("-ERR [AUTH] Authentication response too long\r\n"),
        "{}",
        t.text()
    );
    assert_eq!(t.end, Some(SessionEnd::Quit));
    // The digests are not offered without secrets.
    let t = session("AUTH CRAM-MD5\r\nQUIT\r\n", &cfg);
    assert!(
        t.text()
            .contains("-ERR [AUTH] Unrecognized authentication mechanism")
    );
}

fn with_secret() -> SimConfig {
    SimConfig {
        secrets: vec![(b"alice".to_vec(), b"tanstaaf".to_vec())],
        chunk: 1,
        ..SimConfig::default()
    }
}

/// The base64 of the last `+ ` line in `out`, decoded.
fn last_challenge(out: &str) -> Vec<u8> {
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("+ "))
        .expect("a challenge");
    sasl::decode(line.as_bytes()).unwrap().to_vec()
}

/// A client that answers each challenge as `answer` computes it: the
/// input is fed in one-byte reads, so the session has sent each
/// challenge before the answer is read; the test runs the exchange twice,
/// first to learn the challenges (the nonces are seeded, so they repeat).
/// How a test client answers a challenge.
type Answer<'a> = &'a dyn Fn(&[u8]) -> String;

fn converse(cfg: &SimConfig, first: &str, answers: &[Answer<'_>]) -> String {
    let mut lines = vec![first.to_string()];
    for answer in answers {
        let input = format!("{}\r\n", lines.join("\r\n"));
        let t = session(&input, cfg);
        lines.push(answer(&last_challenge(&t.text())));
    }
    let input = format!("{}\r\nSTAT\r\nQUIT\r\n", lines.join("\r\n"));
    session(&input, cfg).text()
}

#[test]
fn cram_md5() {
    let cfg = with_secret();
    let answer = |secret: &'static [u8]| {
        move |challenge: &[u8]| {
            let mut mac = Hmac::<md5::Md5>::new_from_slice(secret).unwrap();
            mac.update(challenge);
            let hex: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            sasl::encode(format!("alice {hex}").as_bytes())
        }
    };
    let good = answer(b"tanstaaf");
    let out = converse(&cfg, "AUTH CRAM-MD5", &[&good]);
    assert!(out.contains(LOGGED_IN), "{out}");
    let bad = answer(b"guess");
    let out = converse(&cfg, "AUTH CRAM-MD5", &[&bad]);
    assert!(
        out.contains("-ERR [AUTH] authentication failure\r\n"),
        "{out}"
    );
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn scram_sha_256_with_the_server_signature_before_the_ok() {
    let cfg = with_secret();
    let client_first_bare = "n=alice,r=clientnonce123";
    let first = format!(
        "AUTH SCRAM-SHA-256 {}",
        sasl::encode(format!("n,,{client_first_bare}").as_bytes())
    );
    let final_for = |password: &'static [u8]| {
        move |server_first: &[u8]| {
            let server_first = std::str::from_utf8(server_first).unwrap().to_string();
            let field = |k: &str| {
                server_first
                    .split(',')
                    .find_map(|f| f.strip_prefix(k))
                    .unwrap()
                    .to_string()
            };
            let (nonce, salt, iter) = (field("r="), field("s="), field("i="));
            let salt = sasl::decode(salt.as_bytes()).unwrap();
            let mut salted = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, iter.parse().unwrap(), &mut salted);
            let client_key = hmac256(&salted, b"Client Key");
            let stored = Sha256::digest(&client_key);
            let without_proof = format!("c=biws,r={nonce}");
            let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
            let sig = hmac256(&stored, auth_message.as_bytes());
            let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
            sasl::encode(format!("{without_proof},p={}", sasl::encode(&proof)).as_bytes())
        }
    };
    let good = final_for(b"tanstaaf");
    let empty = |_: &[u8]| String::new();
    let out = converse(&cfg, &first, &[&good, &empty]);
    // The server-final (v=...) comes as a challenge, then the +OK.
    let v = out
        .lines()
        .filter_map(|l| l.strip_prefix("+ "))
        .nth(1)
        .expect("server-final");
    assert!(
        String::from_utf8(sasl::decode(v.as_bytes()).unwrap().to_vec())
            .unwrap()
            .starts_with("v=")
    );
    assert!(out.contains(LOGGED_IN), "{out}");
    assert!(out.contains("+OK 1 20\r\n"), "STAT in TRANSACTION: {out}");
    let bad = final_for(b"guess");
    let out = converse(&cfg, &first, &[&bad]);
    assert!(
        out.contains("-ERR [AUTH] authentication failure\r\n"),
        "{out}"
    );
}

// EUIDL and XTND XLST (qpopper.md §3.4, §15.6).

/// §15.6's message as the in-memory maildrop holds it (sent as stored):
/// its UID, and a second message whose headers hold format strings.
fn big_mailbox_drop() -> MemDrop {
    let mut d = MemDrop::new([
        b"Date: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\n\nHello\n.dot line\n\n".to_vec(),
        b"X-UIDL: %s%n%x\nfrom:\t%s%n%x%s%s%s%s\nReceived: by a\n  via b\n\tvia c\n.Dotted: yes\n\nFrom: not a header\n".to_vec(),
        b"Subject: no from\n\nbody\n".to_vec(),
    ]);
    d.messages[0].uid = crate::index::Uid::new(b"77ffa6bafb637ac9774fa2615b3b449b").unwrap();
    d.messages[1].uid = crate::index::Uid::new(b"%s%n%x").unwrap();
    d
}

fn trans(commands: &str) -> String {
    let input = format!("USER alice\r\nPASS secret\r\n{commands}");
    let cfg = SimConfig {
        eof_abort: false,
        ..SimConfig::default()
    };
    let t = run(input.as_bytes(), big_mailbox_drop(), &cfg, &alice);
    assert!(t.size_mismatches.is_empty());
    let text = t.text();
    let at = text.find(" octets).\r\n").expect("logged in") + " octets).\r\n".len();
    text[at..].to_string()
}

#[test]
fn euidl_the_vectors_of_15_6() {
    let size = |m: &[u8]| crate::wire::measure(m);
    let d = big_mailbox_drop();
    let (s1, s2, s3) = (
        size(&d.messages[0].content),
        size(&d.messages[1].content),
        size(&d.messages[2].content),
    );
    assert_eq!(
        trans("EUIDL 1\r\n"),
        format!("+OK 1 77ffa6bafb637ac9774fa2615b3b449b {s1} Alice <alice@example.com>\r\n")
    );
    // The format strings come back as they are: nothing interprets them
    // (CVE-2000-0442), and a message without From: has an empty value.
    assert_eq!(
        trans("EUIDL\r\n"),
        format!(
            "+OK uidl command accepted.\r\n\
             1 77ffa6bafb637ac9774fa2615b3b449b {s1} Alice <alice@example.com>\r\n\
             2 %s%n%x {s2} %s%n%x%s%s%s%s\r\n\
             3 uid3 {s3} \r\n\
             .\r\n"
        )
    );
}

#[test]
fn euidl_has_uidls_errors_and_leaves_deleted_messages_out() {
    assert_eq!(
        trans("EUIDL 0\r\nEUIDL x\r\nEUIDL 4\r\nEUIDL 1 2\r\n"),
        "-ERR Parameter must be a number (range 1 to 3)\r\n\
         -ERR Parameter must be a number (range 1 to 3)\r\n\
         -ERR Message out of range.  3 messages in mail drop.\r\n\
         -ERR Too many arguments for the euidl command.\r\n"
    );
    let out = trans("DELE 2\r\nEUIDL 2\r\nEUIDL\r\n");
    assert!(
        out.starts_with(
            "+OK Message 2 has been deleted.\r\n-ERR Message 2 has been marked for deletion.\r\n"
        ),
        "{out}"
    );
    assert!(!out.contains("\r\n2 "), "{out}");
    assert!(out.contains("\r\n3 uid3 "), "{out}");
}

#[test]
fn xtnd_xlst_lists_the_first_matching_field_with_its_continuation_lines() {
    assert_eq!(
        trans("XTND XLST received\r\n"),
        "+OK xlst command accepted; headers coming.\r\n\
         2 Received: by a\r\n  via b\r\n\tvia c\r\n\
         .\r\n"
    );
    // A prefix, case ignored; the body is never looked at.
    assert_eq!(
        trans("xtnd xlst FROM\r\n"),
        "+OK xlst command accepted; headers coming.\r\n\
         1 From: Alice <alice@example.com>\r\n\
         2 from:\t%s%n%x%s%s%s%s\r\n\
         .\r\n"
    );
    assert_eq!(
        trans("XTND XLST x-uidl 2\r\nXTND XLST .dot\r\n"),
        "+OK xlst command accepted; headers coming.\r\n\
         2 X-UIDL: %s%n%x\r\n\
         .\r\n\
         +OK xlst command accepted; headers coming.\r\n\
         2 .Dotted: yes\r\n\
         .\r\n"
    );
    assert_eq!(
        trans("XTND XLST Nothing\r\n"),
        "+OK xlst command accepted; headers coming.\r\n.\r\n"
    );
}

#[test]
fn xtnd_errors_and_xmit_is_refused() {
    assert_eq!(
        trans(
            "XTND XLST Subject 4\r\nXTND XLST Subject x\r\nXTND\r\nXTND FOO\r\n\
             XTND XLST\r\nXTND XLST a 1 2\r\nXTND XMIT\r\nXTND XMIT now\r\n"
        ),
        "-ERR Message 4 does not exist.\r\n\
         -ERR Message x does not exist.\r\n\
         -ERR Too few arguments for the xtnd command.\r\n\
         -ERR Unknown command: \"xtnd foo\".\r\n\
         -ERR Too few arguments for the xtnd xlst command.\r\n\
         -ERR Too many arguments for the xtnd xlst command.\r\n\
         -ERR XTND XMIT is not supported: this server does not send mail.\r\n\
         -ERR Too many arguments for the xtnd xmit command.\r\n"
    );
    // COMPAT qpopper 2.53: a deleted message is left out, not refused.
    assert_eq!(
        trans("DELE 1\r\nXTND XLST Subject 1\r\n"),
        "+OK Message 1 has been deleted.\r\n\
         +OK xlst command accepted; headers coming.\r\n.\r\n"
    );
}

#[test]
fn euidl_and_xtnd_are_transaction_commands() {
    let t = session("EUIDL\r\nXTND XLST From\r\nQUIT\r\n", &SimConfig::default());
    assert!(
        t.text()
            .contains("-ERR Unknown command: \"euidl\".\r\n-ERR Unknown command: \"xtnd\".\r\n"),
        "{}",
        t.text()
    );
}

#[test]
fn a_header_that_cannot_be_read_is_an_err_and_the_session_goes_on() {
    let mut d = big_mailbox_drop();
    d.fail_send = Some(crate::index::MsgIdx(0));
    let cfg = SimConfig {
        eof_abort: false,
        ..SimConfig::default()
    };
    let t = run(
        b"USER alice\r\nPASS secret\r\nEUIDL 1\r\nXTND XLST From\r\nEUIDL 3\r\n",
        d,
        &cfg,
        &alice,
    );
    let text = t.text();
    assert!(
        text.ends_with(
            "-ERR [SYS/TEMP] Message 1 is no longer in the maildrop.\r\n\
             -ERR [SYS/TEMP] Message 1 is no longer in the maildrop.\r\n\
             +OK 3 uid3 26 \r\n"
        ),
        "{text}"
    );
}

#[test]
fn a_header_that_fails_mid_list_ends_the_session() {
    // Enough messages that the start of the list has left when the last
    // one cannot be read: the list cannot be ended honestly.
    let n = 4000;
    let mut d = MemDrop::new((0..n).map(|i| format!("From: {i}\n\nx\n").into_bytes()));
    d.fail_send = Some(crate::index::MsgIdx(n - 1));
    let t = run(
        b"USER alice\r\nPASS secret\r\nEUIDL\r\n",
        d,
        &SimConfig::default(),
        &alice,
    );
    assert_eq!(t.end, Some(SessionEnd::ServerFault));
    let text = t.text();
    assert!(text.contains("\r\n3000 uid3000 17 2999\r\n"), "{text}");
    assert!(!text.contains("\r\n.\r\n"));
}
