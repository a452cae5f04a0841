//! qpopper's big-mailbox extras through a real popper on a real spool:
//! EUIDL and XTND XLST (qpopper.md §3.4, §15.6) with a delivered mail
//! whose `From:` and `X-UIDL:` headers are format strings (CVE-2000-0442:
//! 2.53 passed them to printf), XTND XMIT refused, and qpopper 4's `-e`
//! announced in CAPA.

use popper_e2e::pop::Pop;
use popper_e2e::users::user;

use crate::served;

#[test]
fn euidl_and_xlst_echo_format_strings_literally() {
    let alice = user("pt_alice");
    let (sb, port) = served("xtnd", &["-e", "login_delay=900,expire=never"]);
    let spool = b"From alice@example.com Wed Dec  2 05:53:22 1992\n\
Date: Wed, 2 Dec 1992 05:53:22 -0800\n\
From: Alice <alice@example.com>\n\
Subject: hi\n\
\n\
Hello\n\
.dot line\n\
\n\
From mallory@example.com Wed Dec  2 05:54:00 1992\n\
X-UIDL: %s%n%x%n%n\n\
From: %s%n%x%s%s%s%s%s%s%s%n <mallory@example.com>\n\
Message-Id: <%n%n%n@example.com>\n\
Subject: %p%p%p\n\
\x20%n%n\n\
\n\
From: in the body\n";
    sb.write_spool(&alice, spool);
    let mut p = Pop::connect(port);
    assert!(p.login(&alice).contains(" has 2 messages ("));
    // Only announced (qpopper 4's -e): RFC 2449 §6.5, §6.7.
    let (_, capa) = p.multi("CAPA");
    let capa = String::from_utf8(capa).unwrap();
    assert!(
        capa.contains("\r\nLOGIN-DELAY 900\r\nEXPIRE NEVER\r\n"),
        "{capa}"
    );
    assert_eq!(p.cmd("LIST 1"), "+OK 1 148");
    let size2 = p.cmd("LIST 2");
    let size2 = size2.strip_prefix("+OK 2 ").unwrap();
    assert_eq!(
        p.cmd("EUIDL 1"),
        "+OK 1 77ffa6bafb637ac9774fa2615b3b449b 148 Alice <alice@example.com>"
    );
    let evil = "%s%n%x%s%s%s%s%s%s%s%n <mallory@example.com>";
    assert_eq!(p.cmd("EUIDL 2"), format!("+OK 2 %s%n%x%n%n {size2} {evil}"));
    let (head, body) = p.multi("EUIDL");
    assert_eq!(head, "+OK uidl command accepted.");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!(
            "1 77ffa6bafb637ac9774fa2615b3b449b 148 Alice <alice@example.com>\r\n\
             2 %s%n%x%n%n {size2} {evil}\r\n"
        )
    );
    let (head, body) = p.multi("XTND XLST Message-Id");
    assert_eq!(head, "+OK xlst command accepted; headers coming.");
    assert_eq!(body, b"2 Message-Id: <%n%n%n@example.com>\r\n");
    let (_, body) = p.multi("xtnd xlst subject");
    assert_eq!(body, b"1 Subject: hi\r\n2 Subject: %p%p%p\r\n %n%n\r\n");
    let (_, body) = p.multi("XTND XLST X-UIDL 1");
    assert_eq!(body, b"1 X-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\r\n");
    assert_eq!(p.cmd("XTND XLST From 3"), "-ERR Message 3 does not exist.");
    assert_eq!(
        p.cmd("XTND XMIT"),
        "-ERR XTND XMIT is not supported: this server does not send mail."
    );
    assert_eq!(p.cmd("XTND FOO"), "-ERR Unknown command: \"xtnd foo\".");
    // The session is unharmed: the spool is as it was after QUIT without
    // RETR (only the UIDs and Status: U written back).
    assert_eq!(p.cmd("STAT").split(' ').nth(1), Some("2"));
    p.cmd("QUIT");
    let after = String::from_utf8(sb.read_spool(&alice)).unwrap();
    assert!(after.contains("\nFrom: %s%n%x%s%s%s%s%s%s%s%n <mallory@example.com>\n"));
}
