//! Real POP3 clients from Debian against popper under inetd: curl,
//! fetchmail and mpop. Each download is compared byte for byte with what
//! the spool's messages must look like on the wire.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use popper_e2e::mail::{Message, mbox, tricky, wire};
use popper_e2e::pop::lf;
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::TestUser;
use popper_e2e::wait::{LIMIT, OutputWithin};

use crate::mailbox::read_dir;
use crate::served;

/// The tricky mail without NUL bytes: fetchmail and mpop hand messages to
/// C string code that stops at a NUL (curl and poplib get it).
pub(crate) fn client_mail() -> Vec<Message> {
    tricky()
        .into_iter()
        .filter(|m| !m.content.contains(&0))
        .collect()
}

/// The expected wire bytes of each message, keyed by UID, with UIDs taken
/// from a UIDL listing.
pub(crate) fn expected(msgs: &[Message], uidl: &str) -> BTreeMap<String, Vec<u8>> {
    let uids: Vec<&str> = uidl.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(uids.len(), msgs.len(), "{uidl}");
    msgs.iter()
        .zip(uids)
        .map(|(m, u)| (u.to_string(), wire(&m.content, u)))
        .collect()
}

/// The value of the `X-UIDL:` header a delivered message carries.
pub(crate) fn uid_of(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    text.lines()
        .find_map(|l| l.strip_prefix("X-UIDL: "))
        .unwrap_or_else(|| panic!("no X-UIDL in {text}"))
        .trim_end()
        .to_string()
}

fn curl(args: &[&str]) -> Vec<u8> {
    popper_e2e::run(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "60"])
            .args(args),
    )
    .stdout
}

fn uidl_of(sb: &Sandbox, port: u16, u: &TestUser) -> String {
    let _ = sb;
    let mut p = popper_e2e::pop::Pop::connect(port);
    p.login(u);
    let (_, l) = p.multi("UIDL");
    p.cmd("QUIT");
    String::from_utf8(l).unwrap().replace("\r\n", "\n")
}

#[test]
fn curl_lists_and_retrieves_every_message() {
    let alice = popper_e2e::users::user("pt_alice");
    let (sb, port) = served("curl", &[]);
    let msgs = tricky();
    sb.write_spool(&alice, &mbox(&msgs));
    let want = expected(&msgs, &uidl_of(&sb, port, &alice));
    let base = format!("pop3://{}:{}@127.0.0.1:{port}/", alice.name, alice.password);
    let list = String::from_utf8(curl(&[&base])).unwrap();
    assert_eq!(list.lines().count(), msgs.len(), "{list}");
    // One curl run fetches every message over one connection (curl reuses
    // it), so all of them come from the same session's view of the spool:
    // a session that RETRs marks mail read at QUIT, which changes the next
    // session's headers (Status:).
    let mut args: Vec<String> = Vec::new();
    for n in 1..=msgs.len() {
        args.push(format!("{base}{n}"));
        args.push("-o".into());
        args.push(sb.dir.join(format!("curl-{n}")).display().to_string());
    }
    curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let uids: Vec<String> = want.keys().cloned().collect();
    for n in 1..=msgs.len() {
        let got = std::fs::read(sb.dir.join(format!("curl-{n}"))).unwrap();
        let uid = uid_of(&got);
        assert!(uids.contains(&uid));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want[&uid]),
            "message {n}"
        );
        assert_eq!(got, want[&uid], "message {n}");
        let size: usize = list
            .lines()
            .nth(n - 1)
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(size, got.len(), "LIST size of message {n}");
    }
    let log = sb.trace();
    assert_eq!(
        log.matches("POP login by user").count(),
        3,
        "UIDL, LIST and one session for all RETRs: {log}"
    );
}

#[test]
fn fetchmail_downloads_everything_and_deletes() {
    let alice = popper_e2e::users::user("pt_alice");
    let (sb, port) = served("fetchmail", &[]);
    let msgs = client_mail();
    sb.write_spool(&alice, &mbox(&msgs));
    let want = expected(&msgs, &uidl_of(&sb, port, &alice));
    let out = sb.dir.join("fetched");
    std::fs::create_dir(&out).unwrap();
    let rc = sb.dir.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no syslog\npoll 127.0.0.1 protocol pop3 port {port} user \"{}\" password \"{}\" fetchall no rewrite\n  mda \"/bin/sh -c 'cat > {}/msg.$$'\"\n",
            alice.name,
            alice.password,
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = Command::new("fetchmail")
        .args(["--invisible", "--nodetach", "--sslproto", "", "-f"])
        .arg(&rc)
        .arg("--pidfile")
        .arg(sb.dir.join("fetchmail.pid"))
        .env("HOME", &sb.dir)
        .output_within(LIMIT);
    let log = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "fetchmail: {log}");
    assert!(!log.to_lowercase().contains("mismatch"), "{log}");
    let got = read_dir(&out);
    assert_eq!(got.len(), msgs.len(), "{log}");
    for msg in got.values() {
        let uid = uid_of(msg);
        assert_eq!(
            String::from_utf8_lossy(msg),
            String::from_utf8_lossy(&lf(&want[&uid])),
            "UID {uid}"
        );
    }
    // Without `keep`, fetchmail deleted what it fetched.
    assert_eq!(sb.read_spool(&alice), b"", "{log}");
}

/// One mpop run into the maildir `md`, keeping the mail on the server.
fn mpop(
    sb: &Sandbox,
    port: u16,
    u: &TestUser,
    md: &std::path::Path,
    only_new: bool,
) -> std::process::Output {
    Command::new("mpop")
        .args([
            "--host=127.0.0.1",
            &format!("--port={port}"),
            &format!("--user={}", u.name),
        ])
        .arg(format!("--passwordeval=echo {}", u.password))
        .args([
            "--auth=user",
            "--tls=off",
            "--keep=on",
            "--received-header=off",
        ])
        .arg(format!(
            "--only-new={}",
            if only_new { "on" } else { "off" }
        ))
        .arg(format!("--delivery=maildir,{}", md.display()))
        .arg(format!("--uidls-file={}", sb.dir.join("uidls").display()))
        .env("HOME", &sb.dir)
        .output_within(LIMIT)
}

#[test]
fn mpop_downloads_everything_into_a_maildir() {
    let alice = popper_e2e::users::user("pt_alice");
    let (sb, port) = served("mpop", &[]);
    let msgs = client_mail();
    let spool = mbox(&msgs);
    sb.write_spool(&alice, &spool);
    let want = expected(&msgs, &uidl_of(&sb, port, &alice));
    let md = sb.dir.join("Maildir");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    let o = mpop(&sb, port, &alice, &md, false);
    let log = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "mpop: {log}");
    let got = read_dir(&md.join("new"));
    assert_eq!(got.len(), msgs.len(), "{log}");
    for msg in got.values() {
        let uid = uid_of(msg);
        assert_eq!(
            String::from_utf8_lossy(msg),
            String::from_utf8_lossy(&lf(&want[&uid])),
            "UID {uid}"
        );
    }
    // With keep=on mpop retrieves (RETR marks read): the messages stay, now
    // carrying their X-UIDL and Status: RO — each inserted line ending as
    // its message's lines do (the CRLF one gets CRLF, no bare LF).
    let after = String::from_utf8(sb.read_spool(&alice)).unwrap();
    assert_eq!(
        after.matches("\nStatus: RO\n").count() + after.matches("\r\nStatus: RO\r\n").count(),
        msgs.len(),
        "{after}"
    );
    assert!(
        after.contains("\r\nSubject: crlf\r\nFrom: <c@example.com>\r\nStatus: RO\r\n\r\n"),
        "{after}"
    );
    // A second run with only-new fetches nothing: the UIDs did not change.
    let o = mpop(&sb, port, &alice, &md, true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        read_dir(&md.join("new")).len(),
        msgs.len(),
        "nothing downloaded twice"
    );
}
