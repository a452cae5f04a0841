//! Test mailboxes, and what popper must send for each message.
//!
//! [`wire`] states the RETR rules of DECISIONS.md directly and simply
//! (whole message in memory, line by line), independently of popper's
//! streaming encoder, so a test comparing the two checks one against the
//! other rather than popper against itself.

/// One message of a test mbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The `From ` line, without its LF.
    pub envelope: Vec<u8>,
    /// Everything after the envelope line up to the next message,
    /// including the empty line that separates them.
    pub content: Vec<u8>,
}

/// The envelope date used in every test message.
pub const DATE: &str = "Wed Dec  2 05:53:22 1992";

impl Message {
    /// A plain message from `from` with `subject` and `body` (LF lines),
    /// followed by the separating empty line.
    pub fn new(from: &str, subject: &str, body: &str) -> Message {
        Message {
            envelope: format!("From {from} {DATE}").into_bytes(),
            content: format!(
                "From: <{from}>\nTo: <user@example.com>\nSubject: {subject}\nDate: Wed, 2 Dec 1992 05:53:22 -0800\nMessage-Id: <{subject}@example.com>\n\n{body}\n"
            )
            .replace("\n\n\n", "\n\n")
            .into_bytes()
            .into_iter()
            .chain(*b"\n")
            .collect(),
        }
    }

    /// A message with exactly these content bytes.
    pub fn raw(from: &str, content: &[u8]) -> Message {
        Message {
            envelope: format!("From {from} {DATE}").into_bytes(),
            content: content.to_vec(),
        }
    }
}

/// The spool holding `msgs` in order.
pub fn mbox(msgs: &[Message]) -> Vec<u8> {
    let mut v = Vec::new();
    for m in msgs {
        v.extend_from_slice(&m.envelope);
        v.push(b'\n');
        v.extend_from_slice(&m.content);
    }
    v
}

fn starts_ci(l: &[u8], p: &[u8]) -> bool {
    l.len() >= p.len() && l[..p.len()].eq_ignore_ascii_case(p)
}

/// What RETR sends for a message with this content and UID, with the
/// dot-stuffing undone: no envelope; `Content-Length:` and `X-UIDL:`
/// headers (and their continuation lines) dropped; `X-UIDL: uid` inserted
/// before the first `Status:` header or else before the empty line ending
/// the header (or at the end of a header that never ends); one CR before
/// each LF dropped; every line ending in CRLF, a last line without LF too.
pub fn wire(content: &[u8], uid: &str) -> Vec<u8> {
    let uid_line = format!("X-UIDL: {uid}").into_bytes();
    let mut lines: Vec<&[u8]> = content.split(|b| *b == b'\n').collect();
    if content.ends_with(b"\n") || content.is_empty() {
        lines.pop();
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut in_header = true;
    let mut uid_done = false;
    let mut dropping = false;
    for raw in lines {
        let l = raw.strip_suffix(b"\r").unwrap_or(raw);
        if !in_header {
            out.push(l.to_vec());
            continue;
        }
        if l.is_empty() {
            if !uid_done {
                out.push(uid_line.clone());
                uid_done = true;
            }
            out.push(Vec::new());
            in_header = false;
            continue;
        }
        if l[0] == b' ' || l[0] == b'\t' {
            if !dropping {
                out.push(l.to_vec());
            }
            continue;
        }
        dropping = starts_ci(l, b"x-uidl:") || starts_ci(l, b"content-length:");
        if dropping {
            continue;
        }
        if !uid_done && starts_ci(l, b"status:") {
            out.push(uid_line.clone());
            uid_done = true;
        }
        out.push(l.to_vec());
    }
    if !uid_done {
        out.push(uid_line);
    }
    let mut v = Vec::new();
    for l in out {
        v.extend_from_slice(&l);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// The awkward mail of the core issue's list, one message each.
pub fn tricky() -> Vec<Message> {
    let long = "x".repeat(2000);
    let mut v = vec![
        Message::new(
            "a@example.com",
            "from-lines",
            "From the start of a line\n>From quoted\nFrom here to eternity",
        ),
        Message::new("b@example.com", "dots", ".\n..\n.leading dot\n...\nend"),
        Message::raw(
            "c@example.com",
            b"Subject: crlf\r\nFrom: <c@example.com>\r\n\r\nline one\r\n.dot\r\nline two\r\n\n",
        ),
        Message::new(
            "d@example.com",
            "8bit",
            "caf\u{e9} \u{fffd} \u{3042}\u{3044}",
        ),
        Message::raw(
            "e@example.com",
            format!("Subject: long\n\n{long}\n{long}{long}\n\n").as_bytes(),
        ),
        Message::raw("f@example.com", b"Subject: empty body\n\n\n"),
        Message::raw(
            "g@example.com",
            b"Subject: has uidl\nX-UIDL: kept-uid-0001\nStatus: RO\nContent-Length: 3\n\nabc\n\n",
        ),
        Message::raw(
            "h@example.com",
            b"Subject: status only\nStatus: U\n\nbody\n\n",
        ),
        Message::raw(
            "i@example.com",
            b"Subject: binary\nX-Bytes: \x01\x7f\xff\n\nnul \x00 here\n\xfe\xff\n\n",
        ),
    ];
    // Last: no final newline.
    v.push(Message::raw(
        "j@example.com",
        b"Subject: no final newline\n\nlast line",
    ));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_matches_qpopper_vector() {
        // qpopper.md §15.6.
        let content = b"Date: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\n\nHello\n.dot line\n\n";
        let want = b"Date: Wed, 2 Dec 1992 05:53:22 -0800\r\nFrom: Alice <alice@example.com>\r\nSubject: hi\r\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\r\n\r\nHello\r\n.dot line\r\n\r\n";
        assert_eq!(
            wire(content, "77ffa6bafb637ac9774fa2615b3b449b"),
            want.to_vec()
        );
    }

    #[test]
    fn oracle_edge_cases() {
        assert_eq!(wire(b"", "u"), b"X-UIDL: u\r\n".to_vec());
        assert_eq!(wire(b"S: x", "u"), b"S: x\r\nX-UIDL: u\r\n".to_vec());
        assert_eq!(
            wire(b"S: x\nX-UIDL: old\n cont\nStatus: O\n\nb\r\n", "u"),
            b"S: x\r\nX-UIDL: u\r\nStatus: O\r\n\r\nb\r\n".to_vec()
        );
    }
}
