//! Adding messages to the spool at login, exactly once: how bulletins
//! become mail (qpopper.md §10).
//!
//! qpopper appended bulletins to its temporary copy of the spool, which
//! went back into the spool at QUIT. popper serves the spool in place, so
//! the bulletins are appended to the spool itself, at login, before the
//! scan: from then on they are ordinary messages — sizes exact, UIDs from
//! the `X-UIDL` the source gave them, deleted or kept like any other.
//!
//! Two things must change together: the spool gains the messages, and the
//! source's record (`~/.popbull`) says they were delivered. Neither order
//! of two plain writes survives a crash (first the spool: delivered twice;
//! first the record: never delivered). So the append goes through the
//! update journal (`journal.rs`) like any rewrite: the messages are the
//! tail, put at the spool's current end, and the header carries the number
//! to record (`delivered-through`). Once the spool is final and before the
//! journal is cleared, the record is written; a popper that dies anywhere
//! after the commit point leaves a journal that the next login rolls
//! forward *and* records (`recover.rs`). Mail a delivery agent appends
//! after such a crash is kept as it is for any interrupted update.
//!
//! Nothing here knows what a bulletin is: a [`LoginMail`] source
//! (`maildrop/login_mail.rs`) supplies the messages and keeps its record.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::copy::marks_at;
use super::envelope::is_envelope;
use super::journal::{Header, Journal};
use super::scan::Format;
use super::update::apply_committed;
use crate::maildrop::error::MaildropError;
use crate::maildrop::error::fs_error;
use crate::maildrop::login_mail::NewMessage;

/// The bytes to append to a spool of `format` whose last bytes are `end`
/// (at most two; empty for an empty spool).
///
/// mbox: the spool first gets the empty line a `From ` line must follow;
/// each message is its envelope, its content — with a `>` before any body
/// line that would read as an envelope, so one message stays one — and an
/// empty line, as delivery agents write them. MMDF: each message between
/// two separator lines (a content line that is the separator gets a `>`).
pub fn frame(format: &Format, end: &[u8], msgs: &[NewMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        Format::Mbox => {
            out.extend_from_slice(blank_line_after(end));
            for m in msgs {
                out.extend_from_slice(&m.envelope);
                out.push(b'\n');
                let mut after_empty = false;
                for line in lines(&m.content) {
                    let bare = line.strip_suffix(b"\n").unwrap_or(line);
                    let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
                    if after_empty && is_envelope(bare) {
                        out.push(b'>');
                    }
                    out.extend_from_slice(line);
                    after_empty = bare.is_empty();
                }
                ensure_lf(&mut out);
                out.push(b'\n');
            }
        }
        Format::Mmdf(sep) => {
            if !end.is_empty() && end.last() != Some(&b'\n') {
                out.push(b'\n');
            }
            for m in msgs {
                out.extend_from_slice(sep);
                for line in lines(&m.content) {
                    if line == sep.as_slice() {
                        out.push(b'>');
                    }
                    out.extend_from_slice(line);
                }
                ensure_lf(&mut out);
                out.extend_from_slice(sep);
            }
        }
    }
    out
}

/// What a spool ending in `end` needs before a new `From ` line: nothing
/// if it is empty or already ends in an empty line.
pub fn blank_line_after(end: &[u8]) -> &'static [u8] {
    match end {
        [] => b"",
        [.., b'\n', b'\n'] => b"",
        [b'\n'] => b"",
        [.., b'\n'] => b"\n",
        _ => b"\n\n",
    }
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split_inclusive(|b| *b == b'\n')
}

fn ensure_lf(out: &mut Vec<u8>) {
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
}

/// The spool's separator style, judged by its first line as the scanner
/// does, and its last two bytes.
pub fn spool_shape(file: &File, path: &Path) -> Result<(Format, Vec<u8>), MaildropError> {
    let len = file
        .metadata()
        .map_err(|e| fs_error("stat", path, &e))?
        .len();
    let mut first = vec![0u8; 1024];
    let n = read_some(file, &mut first, 0).map_err(|e| fs_error("read", path, &e))?;
    let first = &first[..n];
    let format = if first.first() == Some(&0x01) {
        let line_end = memchr::memchr(b'\n', first).map_or(first.len(), |i| i + 1);
        let mut sep = first[..line_end].to_vec();
        ensure_lf(&mut sep);
        Format::Mmdf(sep)
    } else {
        Format::Mbox
    };
    let at = len.saturating_sub(2);
    let mut end = vec![0u8; (len - at) as usize];
    let n = read_some(file, &mut end, at).map_err(|e| fs_error("read", path, &e))?;
    end.truncate(n);
    Ok((format, end))
}

fn read_some(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Appends `bytes` at the spool's end through the journal and records
/// `through` (see the module documentation). Call with the spool locks
/// held. On an error before the commit point the spool is as it was.
pub fn append(
    file: &File,
    spool_path: &Path,
    journal_path: &Path,
    bytes: &[u8],
    through: u64,
    record: &dyn Fn(u64) -> Result<(), MaildropError>,
) -> Result<(), MaildropError> {
    let md = file
        .metadata()
        .map_err(|e| fs_error("stat", spool_path, &e))?;
    let cur = md.len();
    let jerr = |e: io::Error| fs_error("write", journal_path, &e);
    let (before, at) = marks_at(file, cur).map_err(|e| fs_error("read", spool_path, &e))?;
    let journal = Journal::create(journal_path).map_err(jerr)?;
    let mut w = journal.writer(file);
    let tail_len = match w.lit(bytes).and_then(|()| w.finish()) {
        Ok(n) => n,
        Err(e) => {
            journal.discard();
            return Err(jerr(e));
        }
    };
    let header = Header {
        pid: std::process::id(),
        spool: (md.dev(), md.ino()),
        from: cur,
        old_len: cur,
        tail_len,
        sample: Vec::new(),
        before,
        at,
        merges_temp_drop: false,
        delivered_through: Some(through),
    };
    if let Err(e) = journal.commit(&header) {
        journal.discard();
        return Err(jerr(e));
    }
    apply_committed(file, spool_path, journal, &header, &|| record(through))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildrop::mbox::scan::scan;

    fn msg(content: &str) -> NewMessage {
        NewMessage {
            envelope: b"From root Mon Nov 30 10:00:00 2026".to_vec(),
            content: content.as_bytes().to_vec(),
        }
    }

    #[test]
    fn blank_line_before_the_envelope() {
        for (end, want) in [
            (&b""[..], &b""[..]),
            (b"\n", b""),
            (b"\n\n", b""),
            (b"x\n", b"\n"),
            (b"xy", b"\n\n"),
            (b"\r\n", b"\n"),
        ] {
            assert_eq!(blank_line_after(end), want, "{end:?}");
        }
    }

    #[test]
    fn framed_messages_scan_as_themselves() {
        let old = b"From a Wed Dec  2 05:53 1992\nSubject: x\n\nold mail".to_vec();
        let body = "X-UIDL: 5.000\nSubject: b\n\nline\n\nFrom here on\n\nFrom root Mon Nov 30 10:00:00 2026\nend";
        let new = [msg(body), msg("X-UIDL: 5.001\n\nsecond\n")];
        let mut spool = old.clone();
        spool.extend(frame(&Format::Mbox, &old[old.len() - 2..], &new));
        let sc = scan(spool.as_slice(), spool.len() as u64).unwrap();
        assert_eq!(sc.msgs.len(), 3, "{}", String::from_utf8_lossy(&spool));
        assert_eq!(sc.msgs[1].meta.uid.as_bytes(), b"5.000");
        assert_eq!(sc.msgs[2].meta.uid.as_bytes(), b"5.001");
        let text = String::from_utf8_lossy(&spool);
        assert!(text.contains("old mail\n\nFrom root"), "{text}");
        assert!(text.contains("\n\n>From root Mon Nov 30"), "{text}");
        assert!(
            text.contains("\n\nFrom here on\n"),
            "not an envelope: {text}"
        );
        assert!(text.ends_with("second\n\n"));
    }

    #[test]
    fn mmdf_spools_get_mmdf_messages() {
        let sep = b"\x01\x01\x01\x01\n".to_vec();
        let mut spool = [&sep[..], b"Subject: a\n\nold\n", &sep[..]].concat();
        let new = [msg("X-UIDL: 5.000\n\n\x01\x01\x01\x01\nbody")];
        spool.extend(frame(&Format::Mmdf(sep.clone()), b"1\n", &new));
        let sc = scan(spool.as_slice(), spool.len() as u64).unwrap();
        assert_eq!(sc.msgs.len(), 2, "{}", String::from_utf8_lossy(&spool));
        assert_eq!(sc.msgs[1].meta.uid.as_bytes(), b"5.000");
        assert!(spool.ends_with(b">\x01\x01\x01\x01\nbody\n\x01\x01\x01\x01\n"));
    }

    #[test]
    fn spool_shape_reads_format_and_end() {
        let dir = std::env::temp_dir().join(format!("popper-append-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s");
        for (bytes, mmdf, end) in [
            (&b""[..], false, &b""[..]),
            (b"x", false, b"x"),
            (b"From a Wed Dec  2 05:53 1992\n\nhi\n", false, b"i\n"),
            (
                b"\x01\x01\x01\x01\nS: a\n\x01\x01\x01\x01\n",
                true,
                b"\x01\n",
            ),
        ] {
            std::fs::write(&p, bytes).unwrap();
            let f = File::open(&p).unwrap();
            let (format, got) = spool_shape(&f, &p).unwrap();
            assert_eq!(matches!(format, Format::Mmdf(_)), mmdf);
            assert_eq!(got, end);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
