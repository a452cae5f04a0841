//! How a kept message is written back into the spool.
//!
//! COMPAT qpopper 2.53 (qpopper.md §9.6 step 5): the envelope line, then
//! `X-UIDL: <uid>` right after it (every other `X-UIDL:` header removed),
//! then the header, where a message retrieved in this session gets its
//! first `Status:` line replaced by `Status: RO`; a header without
//! `Status:` gets `Status: RO` (retrieved) or `Status: U` (not) before the
//! blank line; then the body, byte for byte.
//!
//! Writing the UID into the message is what keeps it stable when a later
//! edit (or a spam filter) changes `Subject:` or `Date:`.
//!
//! A message already in that form is copied as one range, so that a
//! mailbox rewritten once is afterwards moved by large kernel copies. The
//! header is walked twice (once to decide, once to write) rather than held
//! in memory, so a huge header costs no memory.
//!
//! DEVIATION: the continuation lines of a removed `X-UIDL:` header (or of
//! a replaced `Status:` line) go with it; inserted lines end as the
//! message's own lines do — its first header line's ending, or the
//! envelope's when it has no header — so a message written by a CRLF tool
//! after an LF envelope gets no bare-LF lines in its header.

use std::fs::File;
use std::io;

use super::copy::TailWriter;
use super::scan::{Lines, MboxMsg, sep_hash};
use crate::maildrop::mbox::render::starts_with_ci;
use pop3_core::index::Uid;

/// One piece of the written-back message.
enum Piece<'a> {
    /// Bytes of the spool, `(from, len)`.
    Range(u64, u64),
    /// Bytes made here.
    Lit(&'a [u8]),
}

/// Why a message could not be written back.
#[derive(Debug)]
pub enum WriteBackError {
    /// The envelope is not where the login scan saw it: another program
    /// rewrote the spool during the session.
    Moved,
    /// Reading or writing failed.
    Io(io::Error),
}

impl From<io::Error> for WriteBackError {
    fn from(e: io::Error) -> Self {
        WriteBackError::Io(e)
    }
}

/// Checks that message `m` still starts where the scan saw it.
pub fn check_envelope(src: &File, m: &MboxMsg) -> Result<(), WriteBackError> {
    let mut lines = Lines::new(src, m.start, m.content, 8192);
    match lines.next_line()? {
        Some(l) if l.end() == m.content && sep_hash(l.prefix) == m.sep_hash => Ok(()),
        _ => Err(WriteBackError::Moved),
    }
}

/// Writes message `m` of `src` into `out` as qpopper writes kept messages:
/// `uid` is the session's UID for it, `read` whether it was retrieved.
pub fn write_message(
    src: &File,
    m: &MboxMsg,
    uid: &Uid,
    read: bool,
    out: &mut TailWriter<'_>,
) -> Result<(), WriteBackError> {
    check_envelope(src, m)?;
    let changed = walk(src, m, uid, read, &mut |_| Ok(()))?;
    if !changed {
        out.copy(m.start, m.next - m.start)?;
        return Ok(());
    }
    walk(src, m, uid, read, &mut |p| match p {
        Piece::Range(from, len) => out.copy(from, len),
        Piece::Lit(bytes) => out.lit(bytes),
    })?;
    Ok(())
}

/// Produces the written-back message as pieces; returns whether it differs
/// from the stored one.
fn walk(
    src: &File,
    m: &MboxMsg,
    uid: &Uid,
    read: bool,
    emit: &mut dyn FnMut(Piece<'_>) -> io::Result<()>,
) -> io::Result<bool> {
    let mut lines = Lines::new(src, m.start, m.hdr_end, 64 << 10);
    let Some(env) = lines.next_line()? else {
        return Ok(false);
    };
    let ending = |cr: bool| -> &'static [u8] { if cr { b"\r\n" } else { b"\n" } };
    // The message's line ending: its first header line's, found as the
    // loop reads it (inserted lines are first needed there).
    let mut msg_cr: Option<bool> = None;
    let env_cr = env.cr;
    emit(Piece::Range(env.offset, env.end() - env.offset))?;
    // A spool may end in an envelope without LF (a delivery cut short):
    // the inserted lines must start on a line of their own.
    let mut changed = !env.has_lf;
    if changed {
        emit(Piece::Lit(ending(env_cr)))?;
    }
    let uid_line = [b"X-UIDL: ", uid.as_bytes()].concat();
    let mut uid_done = false;
    let mut status_seen = false;
    let mut dropping = false;
    let mut last_lf = true;
    while let Some(line) = lines.next_line()? {
        let cr = *msg_cr.get_or_insert(line.cr);
        let eol = ending(cr);
        let content = line.content();
        let range = Piece::Range(line.offset, line.end() - line.offset);
        last_lf = line.has_lf;
        if matches!(content.first(), Some(b' ' | b'\t')) {
            if dropping {
                changed = true;
            } else {
                emit(range)?;
            }
            continue;
        }
        dropping = false;
        if !uid_done {
            uid_done = true;
            if line.whole && content == uid_line.as_slice() && line.cr == cr {
                emit(range)?;
                continue;
            }
            changed = true;
            emit(Piece::Lit(&uid_line))?;
            emit(Piece::Lit(eol))?;
        }
        if starts_with_ci(content, b"x-uidl:") {
            changed = true;
            dropping = true;
            continue;
        }
        if !status_seen && starts_with_ci(content, b"status:") {
            status_seen = true;
            if read && !(line.whole && content == b"Status: RO" && line.cr == cr) {
                changed = true;
                dropping = true;
                emit(Piece::Lit(b"Status: RO"))?;
                emit(Piece::Lit(if line.has_lf { eol } else { b"" }))?;
                continue;
            }
        }
        emit(range)?;
    }
    let eol = ending(msg_cr.unwrap_or(env_cr));
    if !uid_done {
        changed = true;
        emit(Piece::Lit(&uid_line))?;
        emit(Piece::Lit(eol))?;
    }
    if !status_seen {
        changed = true;
        if !last_lf {
            emit(Piece::Lit(eol))?;
        }
        emit(Piece::Lit(if read { b"Status: RO" } else { b"Status: U" }))?;
        emit(Piece::Lit(eol))?;
    }
    emit(Piece::Range(m.hdr_end, m.next - m.hdr_end))?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::super::journal::{HEADER_LEN, Journal};
    use super::super::scan::scan;
    use super::*;

    /// Writes every message of `spool` back (`read` per message) and
    /// returns the result.
    fn rewrite(spool: &[u8], read: &[bool]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!(
            "popper-wb-{}-{:x}",
            std::process::id(),
            crate::sys::random_u64()
        ));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("spool"), spool).unwrap();
        let src = File::open(dir.join("spool")).unwrap();
        let sc = scan(&src, spool.len() as u64).unwrap();
        let j = Journal::create(&dir.join("j")).unwrap();
        let mut w = j.writer(&src);
        for (m, r) in sc.msgs.iter().zip(read) {
            write_message(&src, m, &m.meta.uid, *r, &mut w).unwrap();
        }
        w.finish().unwrap();
        let out = std::fs::read(dir.join("j")).unwrap()[HEADER_LEN as usize..].to_vec();
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    const SPEC: &[u8] = b"From alice@example.com Wed Dec  2 05:53:22 1992\nDate: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\n\nHello\n.dot line\n\n";

    #[test]
    fn qpopper_vector_read_and_unread() {
        // qpopper.md §15.6: RETR 1, QUIT gives these 199 bytes.
        let want = b"From alice@example.com Wed Dec  2 05:53:22 1992\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\nDate: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\nStatus: RO\n\nHello\n.dot line\n\n";
        let got = rewrite(SPEC, &[true]);
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
        assert_eq!(got.len(), 199);
        let unread = rewrite(SPEC, &[false]);
        assert_eq!(unread, want.to_vec().replace_status(b"Status: U"));
        // Written back once, the message is already in its final form.
        assert_eq!(rewrite(&got, &[true]), got);
        assert_eq!(rewrite(&unread, &[false]), unread);
    }

    trait ReplaceStatus {
        fn replace_status(self, with: &[u8]) -> Vec<u8>;
    }
    impl ReplaceStatus for Vec<u8> {
        fn replace_status(self, with: &[u8]) -> Vec<u8> {
            let s = String::from_utf8(self).unwrap();
            s.replace("Status: RO", std::str::from_utf8(with).unwrap())
                .into_bytes()
        }
    }

    #[test]
    fn old_uidl_headers_go_and_status_is_replaced() {
        let msg = b"From a Wed Dec  2 05:53 1992\nSubject: s\nX-UIDL: keep-me\nx-uidl: second\n  folded\nStatus: O\n\tfolded status\nStatus: U\n\nbody\nX-UIDL: in body\n";
        let got = rewrite(msg, &[true]);
        assert_eq!(
            String::from_utf8_lossy(&got),
            "From a Wed Dec  2 05:53 1992\nX-UIDL: keep-me\nSubject: s\nStatus: RO\nStatus: U\n\nbody\nX-UIDL: in body\n"
        );
        let got = rewrite(msg, &[false]);
        assert_eq!(
            String::from_utf8_lossy(&got),
            "From a Wed Dec  2 05:53 1992\nX-UIDL: keep-me\nSubject: s\nStatus: O\n\tfolded status\nStatus: U\n\nbody\nX-UIDL: in body\n"
        );
    }

    #[test]
    fn crlf_messages_get_crlf_lines() {
        let msg = b"From a Wed Dec  2 05:53 1992\r\nSubject: s\r\n\r\nbody\r\n";
        let got = rewrite(msg, &[false]);
        let uid = scan(msg.as_slice(), msg.len() as u64).unwrap().msgs[0]
            .meta
            .uid
            .clone();
        let want = [
            b"From a Wed Dec  2 05:53 1992\r\nX-UIDL: ".as_slice(),
            uid.as_bytes(),
            b"\r\nSubject: s\r\nStatus: U\r\n\r\nbody\r\n",
        ]
        .concat();
        assert_eq!(got, want);
    }

    #[test]
    fn crlf_messages_after_an_lf_envelope_get_crlf_lines() {
        // Regression: procmail writes the envelope with LF and a message
        // written by a CRLF tool as it is; the inserted lines had a bare LF.
        let msg = b"From a Wed Dec  2 05:53 1992\nSubject: s\r\nStatus: O\r\n\r\nbody\r\n";
        for read in [true, false] {
            let got = rewrite(msg, &[read]);
            let header = &got[b"From a Wed Dec  2 05:53 1992\n".len()..];
            for l in header.split_inclusive(|b| *b == b'\n') {
                assert!(
                    l.ends_with(b"\r\n"),
                    "bare LF in {:?}",
                    String::from_utf8_lossy(&got)
                );
            }
            assert_eq!(rewrite(&got, &[read]), got, "final after one write-back");
        }
        let no_status = b"From a Wed Dec  2 05:53 1992\nSubject: s\r\n\r\nbody\r\n";
        let got = String::from_utf8(rewrite(no_status, &[true])).unwrap();
        assert!(
            got.contains("\r\nSubject: s\r\nStatus: RO\r\n\r\n"),
            "{got:?}"
        );
        assert!(
            got.starts_with("From a Wed Dec  2 05:53 1992\nX-UIDL: "),
            "{got:?}"
        );
    }

    #[test]
    fn header_without_blank_line_or_final_newline() {
        let msg = b"From a Wed Dec  2 05:53 1992\nSubject: s";
        let got = rewrite(msg, &[true]);
        let s = String::from_utf8_lossy(&got).into_owned();
        assert!(
            s.starts_with("From a Wed Dec  2 05:53 1992\nX-UIDL: "),
            "{s}"
        );
        assert!(s.ends_with("\nSubject: s\nStatus: RO\n"), "{s}");
        // Only an envelope.
        let got = rewrite(b"From a Wed Dec  2 05:53 1992\n", &[false]);
        assert!(String::from_utf8_lossy(&got).ends_with("\nStatus: U\n"));
    }

    #[test]
    fn an_envelope_without_lf_at_the_end_stays_a_separator() {
        // Regression: X-UIDL was glued to the envelope and the next login
        // refused the spool.
        let spool = b"From a@example.com Wed Dec  2 05:53:22 1992\nSubject: one\n\nbody\n\nFrom b@example.com Wed Dec  2 05:53:22 1992";
        let got = rewrite(spool, &[false, false]);
        let again = scan(got.as_slice(), got.len() as u64).unwrap();
        assert_eq!(again.msgs.len(), 2, "{}", String::from_utf8_lossy(&got));
        let s = String::from_utf8_lossy(&got).into_owned();
        assert_eq!(s.matches(" 1992\nX-UIDL: ").count(), 2, "{s}");
        assert!(s.ends_with("\nStatus: U\n"), "{s}");
        assert_eq!(rewrite(&got, &[false, false]), got);
    }

    #[test]
    fn mmdf_keeps_its_separators() {
        let msg = b"\x01\x01\x01\x01\nSubject: one\n\nbody 1\n\x01\x01\x01\x01\n\x01\x01\x01\x01\nSubject: two\nStatus: RO\n\nbody 2\n\x01\x01\x01\x01\n";
        let got = rewrite(msg, &[false, true]);
        let s = String::from_utf8_lossy(&got).into_owned();
        let parts: Vec<&str> = s.split("\x01\x01\x01\x01\n").collect();
        assert_eq!(parts.len(), 5, "{s:?}");
        assert!(
            parts[1].starts_with("X-UIDL: ")
                && parts[1].ends_with("Subject: one\nStatus: U\n\nbody 1\n")
        );
        assert!(parts[3].ends_with("Subject: two\nStatus: RO\n\nbody 2\n"));
        assert_eq!(rewrite(&got, &[false, true]), got);
    }

    #[test]
    fn long_header_lines_are_copied_whole() {
        let mut msg = b"From a Wed Dec  2 05:53 1992\nX-Long: ".to_vec();
        msg.extend(std::iter::repeat_n(b'q', 100_000));
        msg.extend_from_slice(b"\nX-UIDL: ");
        msg.extend(std::iter::repeat_n(b'z', 20_000));
        msg.extend_from_slice(b"\n\nbody\n");
        let got = rewrite(&msg, &[true]);
        assert_eq!(got.iter().filter(|b| **b == b'q').count(), 100_000);
        assert_eq!(got.iter().filter(|b| **b == b'z').count(), 0);
        assert!(String::from_utf8_lossy(&got).ends_with("\nStatus: RO\n\nbody\n"));
    }
}
