//! A bulletin file made into the message one user receives (qpopper.md §10):
//! pure bytes in, bytes out.
//!
//! COMPAT qpopper 2.53: the file is one message whose first line is a
//! valid `From ` envelope; its `X-UIDL:` and `Status:` header lines are
//! dropped, its `To:` becomes `To: USER@HOST`, and `X-UIDL: UID` is put
//! right after the envelope, so the bulletin has the UID qpopper gave it
//! (`<login time>.<nnn>`).
//!
//! DEVIATION: a dropped or replaced header goes with its continuation
//! lines, and several `To:` headers become one (2.53 rewrote each line
//! that began `To:` and left the continuations in place).

use crate::maildrop::login_mail::NewMessage;
use crate::maildrop::mbox::envelope::is_envelope;
use crate::maildrop::mbox::render::starts_with_ci;

/// Why a bulletin file cannot be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadBulletin {
    /// Its first line is not a valid `From ` envelope.
    NoEnvelope,
}

/// The message for `to` (`USER@HOST`) with UID `uid`, from the bytes of a
/// bulletin file.
pub fn compose(file: &[u8], to: &str, uid: &str) -> Result<NewMessage, BadBulletin> {
    let (first, rest) = match memchr::memchr(b'\n', file) {
        Some(i) => (&file[..i], &file[i + 1..]),
        None => (file, &[][..]),
    };
    let envelope = first.strip_suffix(b"\r").unwrap_or(first);
    if !is_envelope(envelope) {
        return Err(BadBulletin::NoEnvelope);
    }
    let mut content = format!("X-UIDL: {uid}\n").into_bytes();
    let mut lines = rest.split_inclusive(|b| *b == b'\n');
    let mut dropping = false;
    let mut to_done = false;
    for line in lines.by_ref() {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare.is_empty() {
            // The end of the header: the rest is copied as it is.
            content.extend_from_slice(line);
            break;
        }
        if dropping && matches!(bare.first(), Some(b' ' | b'\t')) {
            continue;
        }
        dropping = false;
        if starts_with_ci(bare, b"x-uidl:") || starts_with_ci(bare, b"status:") {
            dropping = true;
        } else if starts_with_ci(bare, b"to:") {
            dropping = true;
            if !to_done {
                content.extend_from_slice(format!("To: {to}\n").as_bytes());
                to_done = true;
            }
        } else {
            content.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                content.push(b'\n');
            }
        }
    }
    for line in lines {
        content.extend_from_slice(line);
    }
    if content.last() != Some(&b'\n') {
        content.push(b'\n');
    }
    Ok(NewMessage {
        envelope: envelope.to_vec(),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "From root Mon Nov 30 10:00:00 2026";

    fn text(m: &NewMessage) -> String {
        String::from_utf8_lossy(&m.content).into_owned()
    }

    #[test]
    fn qpopper_rewrite() {
        let file = format!(
            "{ENV}\nX-UIDL: stale\nTo: all-users\nStatus: RO\nSubject: downtime\nFrom: root\n\nThe server is down on Sunday.\nTo: this body line stays\n"
        );
        let m = compose(file.as_bytes(), "alice@pophost", "912345678.000").unwrap();
        assert_eq!(m.envelope, ENV.as_bytes());
        assert_eq!(
            text(&m),
            "X-UIDL: 912345678.000\nTo: alice@pophost\nSubject: downtime\nFrom: root\n\nThe server is down on Sunday.\nTo: this body line stays\n"
        );
    }

    #[test]
    fn continuations_go_with_their_header_and_to_is_one() {
        let file = format!(
            "{ENV}\nTo: a,\n b,\n\tc\nSubject: s\n continued\nTO: d\nstatus: O\n x\n\nbody"
        );
        let m = compose(file.as_bytes(), "bob@h", "1.001").unwrap();
        assert_eq!(
            text(&m),
            "X-UIDL: 1.001\nTo: bob@h\nSubject: s\n continued\n\nbody\n"
        );
    }

    #[test]
    fn no_envelope_no_message() {
        for bad in [
            "Subject: no envelope\n\nbody\n",
            "",
            "From here on it is a bulletin\n\n",
            "\nFrom root Mon Nov 30 10:00:00 2026\n",
        ] {
            assert_eq!(
                compose(bad.as_bytes(), "a@h", "1.000"),
                Err(BadBulletin::NoEnvelope),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn odd_shapes() {
        // Only an envelope; CRLF lines; a header without an end.
        let m = compose(ENV.as_bytes(), "a@h", "1.000").unwrap();
        assert_eq!(text(&m), "X-UIDL: 1.000\n");
        let m = compose(
            format!("{ENV}\r\nSubject: s\r\n\r\nbody\r\n").as_bytes(),
            "a@h",
            "1.000",
        )
        .unwrap();
        assert_eq!(m.envelope, ENV.as_bytes());
        assert_eq!(text(&m), "X-UIDL: 1.000\nSubject: s\r\n\r\nbody\r\n");
        let m = compose(format!("{ENV}\nSubject: s").as_bytes(), "a@h", "1.000").unwrap();
        assert_eq!(text(&m), "X-UIDL: 1.000\nSubject: s\n");
    }
}
