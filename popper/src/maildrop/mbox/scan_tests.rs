//! The scanner against qpopper's vectors, hand-made boundary cases, an
//! independent line-by-line model of the rules, the wire encoder (the
//! announced size must equal the bytes RETR sends) and hostile readers.

use std::cell::Cell;

use md5::{Digest, Md5};

use super::super::render::{Render, measure, wire_size};
use super::*;
use pop3_core::index::Index;
use pop3_core::wire::Encoder;

const ENV_A: &[u8] = b"From a@example.com Wed Dec  2 05:53:22 1992";
const ENV_B: &[u8] = b"From b@example.com Thu Dec  3 06:00 1992";
const ENV_C: &[u8] = b"From c Fri Dec  4 07:05:46 1992 -0700";
const MMDF_SEP: &[u8] = b"\x01\x01\x01\x01\n";

// ---------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------

fn scan_ok(b: &[u8]) -> Scan {
    match scan(b, b.len() as u64) {
        Ok(s) => s,
        Err(e) => panic!("scan failed: {e:?} on {:?}", show(b)),
    }
}

/// A spool for a failure message: its length and its first bytes.
fn show(b: &[u8]) -> String {
    format!(
        "{} bytes: {:?}",
        b.len(),
        String::from_utf8_lossy(&b[..b.len().min(200)])
    )
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn find(hay: &[u8], needle: &[u8]) -> u64 {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle))) as u64
}

fn uid_str(m: &MboxMsg) -> String {
    String::from_utf8(m.meta.uid.as_bytes().to_vec()).unwrap()
}

fn md5_hex(data: &[u8]) -> String {
    String::from_utf8(Uid::from_digest(&Md5::digest(data)).as_bytes().to_vec()).unwrap()
}

/// At most `max` bytes per read.
struct ShortReads<'a> {
    data: &'a [u8],
    max: usize,
}

impl ReadAt for ShortReads<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = buf.len().min(self.max);
        self.data.read_at(&mut buf[..n], offset)
    }
}

/// Every other read fails with EINTR; the others are short.
struct Interrupting<'a> {
    data: &'a [u8],
    calls: Cell<u64>,
}

impl ReadAt for Interrupting<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let c = self.calls.get();
        self.calls.set(c + 1);
        if c.is_multiple_of(2) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = buf.len().min(1 + (c as usize % 5000));
        self.data.read_at(&mut buf[..n], offset)
    }
}

/// Fails with a real error once `fail_at` bytes have been served.
struct Failing<'a> {
    data: &'a [u8],
    fail_at: u64,
}

impl ReadAt for Failing<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.fail_at {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min((self.fail_at - offset) as usize);
        self.data.read_at(&mut buf[..n], offset)
    }
}

/// RETR's bytes for `msg`, fed in `step`-byte chunks, and the encoder's
/// own count of them.
fn wire(msg: &[u8], uid: &[u8], step: usize) -> (Vec<u8>, u64) {
    let mut r = Render::new(uid);
    let mut e = Encoder::new(None);
    let mut out = Vec::new();
    for c in msg.chunks(step.max(1)) {
        r.feed(c, &mut e, &mut out);
    }
    r.finish(&mut e, &mut out);
    (out, e.sent())
}

/// Undoes dot-stuffing (one `.` off each line that starts with one).
fn unstuff(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire.len());
    for l in wire.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(l.strip_prefix(b".").unwrap_or(l));
    }
    out
}

// ---------------------------------------------------------------
// An independent model of the rules, one line at a time.
// ---------------------------------------------------------------

#[derive(Clone, Copy)]
struct MLine<'a> {
    off: usize,
    /// Without LF.
    text: &'a [u8],
    lf: bool,
}

impl MLine<'_> {
    fn end(&self) -> usize {
        self.off + self.text.len() + usize::from(self.lf)
    }
    fn empty(&self) -> bool {
        self.text.is_empty() || self.text == b"\r"
    }
    /// What the scanner keeps of a line (LINE_PREFIX bytes at most).
    fn prefix(&self) -> &[u8] {
        &self.text[..self.text.len().min(LINE_PREFIX)]
    }
    fn whole(&self) -> bool {
        self.text.len() <= LINE_PREFIX
    }
}

fn model_lines(b: &[u8], base: usize) -> Vec<MLine<'_>> {
    let mut v = Vec::new();
    let mut off = 0;
    while off < b.len() {
        match memchr::memchr(b'\n', &b[off..]) {
            Some(i) => {
                v.push(MLine {
                    off: base + off,
                    text: &b[off..off + i],
                    lf: true,
                });
                off += i + 1;
            }
            None => {
                v.push(MLine {
                    off: base + off,
                    text: &b[off..],
                    lf: false,
                });
                off = b.len();
            }
        }
    }
    v
}

/// A separator line in an mbox (the "after an empty line" half is the
/// caller's): a whole line passing the VALID test.
fn model_is_env(l: &MLine<'_>) -> bool {
    l.whole() && is_envelope(l.text)
}

/// What qpopper's `fgets(buf, 1024)` + `strlen` hashed of a line.
fn fgets_view(text: &[u8], lf: bool) -> Vec<u8> {
    let part = &text[..text.len().min(1023)];
    if let Some(nul) = part.iter().position(|b| *b == 0) {
        return part[..nul].to_vec();
    }
    let mut v = part.to_vec();
    if lf && text.len() < 1023 {
        v.push(b'\n');
    }
    v
}

fn strip_cr(t: &[u8]) -> &[u8] {
    t.strip_suffix(b"\r").unwrap_or(t)
}

fn model_msg(b: &[u8], sep: &MLine<'_>, end: usize, next: usize) -> MboxMsg {
    let content = sep.end();
    let mut md5 = Md5::new();
    md5.update(fgets_view(sep.prefix(), sep.whole() && sep.lf));
    let mut hdr_end = end;
    let mut seen = false;
    let mut x_uidl: Option<Option<Uid>> = None;
    for l in model_lines(&b[content..end], content) {
        if l.empty() {
            hdr_end = l.off;
            break;
        }
        let c = strip_cr(l.text);
        let c = &c[..c.len().min(LINE_PREFIX)];
        if starts_with_ci(c, b"x-uidl:") && x_uidl.is_none() {
            x_uidl = Some(x_uidl_value(c));
        }
        if starts_with_ci(c, b"status:") && c.contains(&b'R') {
            seen = true;
        }
        let names: [&[u8]; 4] = [b"received:", b"date:", b"message-id:", b"subject:"];
        if names.iter().any(|n| starts_with_ci(l.text, n)) {
            md5.update(fgets_view(l.prefix(), l.whole() && l.lf));
        }
    }
    let uid = match x_uidl {
        Some(Some(u)) => u,
        _ => Uid::from_digest(&md5.finalize()),
    };
    MboxMsg {
        start: sep.off as u64,
        content: content as u64,
        hdr_end: hdr_end as u64,
        end: end as u64,
        next: next as u64,
        meta: MsgMeta {
            size_without_uidl: measure(&b[content..end]),
            uid,
            seen,
        },
        sep_hash: sep_hash(sep.prefix()),
    }
}

/// The scan the rules call for, or `None` for BadEnvelope.
fn model(b: &[u8]) -> Option<Scan> {
    let lines = model_lines(b, 0);
    let Some(first) = lines.first() else {
        return Some(Scan::empty());
    };
    let mut msgs = Vec::new();
    if first.text.first() == Some(&0x01) {
        let sep_text = first.text;
        let mut cur = Some(*first);
        for l in &lines[1..] {
            let is_sep = l.whole() && l.text == sep_text;
            match cur {
                Some(s) if is_sep => {
                    msgs.push(model_msg(b, &s, l.off, l.end()));
                    cur = None;
                }
                Some(_) => {}
                None if is_sep => cur = Some(*l),
                None => {
                    if let Some(prev) = msgs.last_mut() {
                        prev.next = l.end() as u64;
                    }
                }
            }
        }
        if let Some(s) = cur {
            msgs.push(model_msg(b, &s, b.len(), b.len()));
        }
        // The UIDs as the session shows them: made unique by the core's
        // rule (tested in pop3-core).
        return Some(Scan::new(
            Format::Mmdf([first.prefix(), b"\n"].concat()),
            msgs,
            b.len() as u64,
        ));
    }
    if !model_is_env(first) {
        return None;
    }
    let mut starts = vec![0usize];
    for i in 1..lines.len() {
        if lines[i - 1].empty() && model_is_env(&lines[i]) {
            starts.push(i);
        }
    }
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(b.len(), |&n| lines[n].off);
        msgs.push(model_msg(b, &lines[s], end, end));
    }
    Some(Scan::new(Format::Mbox, msgs, b.len() as u64))
}

// ---------------------------------------------------------------
// Invariants every scan must satisfy.
// ---------------------------------------------------------------

/// Partition, ordering, hdr_end, the envelope re-read that write-back
/// does, and THE size invariant (announced size == bytes RETR sends).
fn check_invariants(b: &[u8], s: &Scan) {
    let ctx = || show(b);
    assert_eq!(s.len, b.len() as u64, "{}", ctx());
    if s.msgs.is_empty() {
        assert!(
            b.is_empty(),
            "a non-empty spool always has a message: {}",
            ctx()
        );
    } else {
        assert_eq!(s.msgs[0].start, 0, "{}", ctx());
        assert_eq!(s.msgs.last().unwrap().next, s.len, "{}", ctx());
    }
    for w in s.msgs.windows(2) {
        assert_eq!(w[0].next, w[1].start, "{}", ctx());
    }
    for m in &s.msgs {
        assert!(m.start < m.content, "{m:?} {}", ctx());
        assert!(m.content <= m.hdr_end, "{m:?} {}", ctx());
        assert!(m.hdr_end <= m.end, "{m:?} {}", ctx());
        assert!(m.end <= m.next, "{m:?} {}", ctx());
        // The separator line is [start, content) and ends in LF unless
        // it is the last line of the file.
        let sep = &b[m.start as usize..m.content as usize];
        assert!(
            sep.ends_with(b"\n") || m.content == s.len,
            "{m:?} {}",
            ctx()
        );
        assert!(!sep[..sep.len() - 1].contains(&b'\n'), "{m:?} {}", ctx());
        match &s.format {
            Format::Mbox => {
                assert_eq!(m.end, m.next, "{}", ctx());
                assert!(sep.starts_with(b"From "), "{}", ctx());
            }
            Format::Mmdf(sepline) => {
                assert!(sepline.ends_with(b"\n"));
                // (A separator longer than LINE_PREFIX is kept only by
                // its prefix: see the test of that case.)
                assert!(
                    sep == sepline.as_slice() || m.content == s.len || sep.len() > LINE_PREFIX,
                    "{}",
                    ctx()
                );
                if m.end < m.next {
                    // The closing separator (its LF may be missing at
                    // the end of the file).
                    let close = &b[m.end as usize..m.next as usize];
                    assert!(
                        close.starts_with(sepline) || close == &sepline[..sepline.len() - 1],
                        "{}",
                        ctx()
                    );
                }
            }
        }
        // hdr_end: an empty line (LF or CRLF), or the end.
        if m.hdr_end < m.end {
            let rest = &b[m.hdr_end as usize..m.end as usize];
            assert!(
                rest.starts_with(b"\n") || rest.starts_with(b"\r\n") || rest == b"\r",
                "{m:?} {}",
                ctx()
            );
            assert!(m.hdr_end == m.content || b[m.hdr_end as usize - 1] == b'\n');
        }
        // Write-back re-reads the envelope with an 8 KiB reader and
        // compares its hash: that must find what the scan saw.
        let mut lines = Lines::new(b, m.start, m.content, 8192);
        let l = lines.next_line().unwrap().unwrap();
        assert_eq!(l.end(), m.content, "{m:?} {}", ctx());
        assert_eq!(sep_hash(l.prefix), m.sep_hash, "{m:?} {}", ctx());
    }
    // Announced sizes (through the index, whose UIDs the scan made
    // unique) equal what the encoder sends for [content, end).
    let index = Index::new(super::super::entries(s));
    assert_eq!(index.entries().len(), s.msgs.len());
    for (m, e) in s.msgs.iter().zip(index.entries()) {
        let msg = &b[m.content as usize..m.end as usize];
        assert_eq!(
            e.size,
            m.meta.size_without_uidl + 10 + e.uid.len() as u64,
            "{}",
            ctx()
        );
        assert_eq!(m.meta.size_without_uidl, measure(msg), "{m:?} {}", ctx());
        let steps: &[usize] = if msg.len() < 2000 {
            &[1, 7, 4096, usize::MAX]
        } else {
            &[7, 4096, usize::MAX]
        };
        let mut first: Option<Vec<u8>> = None;
        for &step in steps {
            let (out, sent) = wire(msg, e.uid.as_bytes(), step);
            let plain = unstuff(&out);
            assert_eq!(sent, e.size, "step {step} {m:?} {}", ctx());
            assert_eq!(plain.len() as u64, e.size, "step {step} {m:?} {}", ctx());
            match &first {
                None => first = Some(out),
                Some(f) => assert_eq!(f, &out, "step {step}"),
            }
        }
        assert_eq!(e.seen, m.meta.seen);
    }
}

/// Scan `b` every way: whole, through awkward readers, against the model.
fn check_all(b: &[u8]) -> Option<Scan> {
    let got = scan(b, b.len() as u64);
    let want = model(b);
    let got = match (got, want) {
        (Err(ScanError::BadEnvelope), None) => None,
        (Ok(g), Some(w)) => {
            assert_eq!(g, w, "scanner vs model on {:?}", show(b));
            check_invariants(b, &g);
            Some(g)
        }
        (g, w) => panic!(
            "scanner {:?} vs model {:?} on {:?}",
            g.map(|s| s.msgs.len()),
            w.map(|s| s.msgs.len()),
            show(b)
        ),
    };
    for max in [7, 4097] {
        let r = ShortReads { data: b, max };
        match (scan(&r, b.len() as u64), &got) {
            (Ok(s), Some(g)) => assert_eq!(&s, g, "reads of {max}"),
            (Err(ScanError::BadEnvelope), None) => {}
            (s, g) => panic!("reads of {max}: {:?} vs {:?}", s.is_ok(), g.is_some()),
        }
    }
    got
}

// ---------------------------------------------------------------
// 1. qpopper.md §15.6 and §15.7
// ---------------------------------------------------------------

const SPEC_SPOOL: &[u8] = b"From alice@example.com Wed Dec  2 05:53:22 1992\nDate: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\n\nHello\n.dot line\n\n";
const SPEC_UID: &str = "77ffa6bafb637ac9774fa2615b3b449b";

#[test]
fn qpopper_round_trip_vector() {
    assert_eq!(SPEC_SPOOL.len(), 147);
    let s = check_all(SPEC_SPOOL).unwrap();
    assert_eq!(s.format, Format::Mbox);
    assert_eq!(s.len, 147);
    assert_eq!(s.msgs.len(), 1);
    let m = &s.msgs[0];
    assert_eq!(m.start, 0);
    assert_eq!(m.content, 48);
    assert_eq!(
        &SPEC_SPOOL[..48],
        b"From alice@example.com Wed Dec  2 05:53:22 1992\n"
    );
    assert_eq!(m.hdr_end, find(SPEC_SPOOL, b"\n\nHello") + 1);
    assert_eq!(m.end, 147);
    assert_eq!(m.next, 147);
    assert_eq!(m.meta.size_without_uidl, 106);
    assert_eq!(m.meta.size_without_uidl + 42, 148);
    assert_eq!(uid_str(m), SPEC_UID);
    assert!(!m.meta.seen);
    assert_eq!(m.sep_hash, sep_hash(&SPEC_SPOOL[..47]));
    let index = Index::new(super::super::entries(&s));
    assert_eq!(index.total_size(), 148);
    assert_eq!(index.entries()[0].size, 148);
    assert_eq!(index.entries()[0].uid.as_bytes(), SPEC_UID.as_bytes());
    // And RETR's 149 bytes (148 + one stuffed dot).
    let (out, sent) = wire(&SPEC_SPOOL[48..], SPEC_UID.as_bytes(), 5);
    assert_eq!(sent, 148);
    assert_eq!(out.len(), 149);
    assert_eq!(
        out,
        b"Date: Wed, 2 Dec 1992 05:53:22 -0800\r\nFrom: Alice <alice@example.com>\r\nSubject: hi\r\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\r\n\r\nHello\r\n..dot line\r\n\r\n".to_vec()
    );
}

#[test]
fn qpopper_written_back_vectors() {
    // qpopper.md §15.6: the spool after RETR + QUIT (199 bytes): same
    // UID, size 160, read; with `Status: U` instead, size 159, unread.
    let read = b"From alice@example.com Wed Dec  2 05:53:22 1992\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\nDate: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\nStatus: RO\n\nHello\n.dot line\n\n";
    assert_eq!(read.len(), 199);
    let unread = String::from_utf8_lossy(read).replace("Status: RO", "Status: U");
    for (spool, size, seen) in [
        (read.to_vec(), 160, true),
        (unread.into_bytes(), 159, false),
    ] {
        let s = check_all(&spool).unwrap();
        assert_eq!(s.msgs.len(), 1);
        let m = &s.msgs[0];
        assert_eq!(uid_str(m), SPEC_UID);
        assert_eq!(m.meta.seen, seen);
        assert_eq!(wire_size(m.meta.size_without_uidl, &m.meta.uid), size);
    }
}

#[test]
fn sizes_are_exact_where_qpopper_overcounted() {
    // qpopper.md §15.7 quirks that DECISIONS.md says we do not copy.
    let base = check_all(SPEC_SPOOL).unwrap().msgs[0]
        .meta
        .size_without_uidl;
    // Content-Length is not sent, so it is not counted.
    let cl = String::from_utf8_lossy(SPEC_SPOOL)
        .replace("Subject: hi\n", "Subject: hi\nContent-Length: 18\n");
    let s = check_all(cl.as_bytes()).unwrap();
    assert_eq!(s.msgs[0].meta.size_without_uidl, base);
    assert_eq!(
        uid_str(&s.msgs[0]),
        SPEC_UID,
        "Content-Length is not hashed"
    );
    // Two X-UIDL headers: the first is the UID, neither is counted.
    let two = String::from_utf8_lossy(SPEC_SPOOL).replace(
        "Subject: hi\n",
        "Subject: hi\nX-UIDL: first\nX-UIDL: second\n",
    );
    let s = check_all(two.as_bytes()).unwrap();
    assert_eq!(s.msgs[0].meta.size_without_uidl, base);
    assert_eq!(uid_str(&s.msgs[0]), "first");
    // A 1500-byte body line is 1502 bytes on the wire, counted 1502.
    let mut long = cat(&[ENV_A, b"\n\n"]);
    long.extend(std::iter::repeat_n(b'x', 1500));
    long.push(b'\n');
    let s = check_all(&long).unwrap();
    assert_eq!(s.msgs[0].meta.size_without_uidl, 2 + 1502);
    // A 1023-byte line + LF: 1025.
    let mut l1023 = cat(&[ENV_A, b"\n\n"]);
    l1023.extend(std::iter::repeat_n(b'x', 1023));
    l1023.push(b'\n');
    assert_eq!(
        check_all(&l1023).unwrap().msgs[0].meta.size_without_uidl,
        2 + 1025
    );
}

// ---------------------------------------------------------------
// 2. Message boundaries
// ---------------------------------------------------------------

#[test]
fn mbox_boundaries_table() {
    let e = |env: &[u8], eol: &[u8]| cat(&[env, eol]);
    // (name, spool, the envelope text each message starts with)
    type Case = (&'static str, Vec<u8>, Vec<&'static [u8]>);
    let cases: Vec<Case> = vec![
        (
            "three plain messages",
            cat(&[
                &e(ENV_A, b"\n"),
                b"Subject: 1\n\nbody 1\n\n",
                &e(ENV_B, b"\n"),
                b"Subject: 2\n\nbody 2\n\n",
                &e(ENV_C, b"\n"),
                b"Subject: 3\n\nbody 3\n",
            ]),
            vec![ENV_A, ENV_B, ENV_C],
        ),
        (
            "From line not after an empty line is body",
            cat(&[
                &e(ENV_A, b"\n"),
                b"Subject: 1\n\nline\n",
                &e(ENV_B, b"\n"),
                b"more\n",
            ]),
            vec![ENV_A],
        ),
        (
            "From line right after the envelope is body",
            cat(&[&e(ENV_A, b"\n"), &e(ENV_B, b"\n"), b"\nbody\n"]),
            vec![ENV_A],
        ),
        (
            "From line as a header line is body",
            cat(&[
                &e(ENV_A, b"\n"),
                b"Subject: x\n",
                &e(ENV_B, b"\n"),
                b"\nbody\n",
            ]),
            vec![ENV_A],
        ),
        (
            ">From after an empty line is body",
            cat(&[
                &e(ENV_A, b"\n"),
                b"\nbody\n\n>",
                &e(ENV_B, b"\n"),
                b"more\n",
            ]),
            vec![ENV_A],
        ),
        (
            "envelope after a CRLF empty line",
            cat(&[
                &e(ENV_A, b"\r\n"),
                b"Subject: 1\r\n\r\nbody\r\n\r\n",
                &e(ENV_B, b"\r\n"),
                b"Subject: 2\r\n\r\nbody\r\n",
            ]),
            vec![ENV_A, ENV_B],
        ),
        (
            "LF envelope after a CRLF empty line",
            cat(&[&e(ENV_A, b"\n"), b"\nbody\n\r\n", &e(ENV_B, b"\n"), b"x\n"]),
            vec![ENV_A, ENV_B],
        ),
        (
            "CRLF envelope after an LF empty line (DECISIONS: CRLF spools)",
            cat(&[&e(ENV_A, b"\n"), b"\nbody\n\n", &e(ENV_B, b"\r\n"), b"x\n"]),
            vec![ENV_A, ENV_B],
        ),
        (
            "CR CR LF is not an empty line",
            cat(&[
                &e(ENV_A, b"\n"),
                b"\nbody\n\r\r\n",
                &e(ENV_B, b"\n"),
                b"x\n",
            ]),
            vec![ENV_A],
        ),
        (
            "a line of spaces is not an empty line",
            cat(&[&e(ENV_A, b"\n"), b"\nbody\n \n", &e(ENV_B, b"\n"), b"x\n"]),
            vec![ENV_A],
        ),
        (
            "a tab line is not an empty line",
            cat(&[&e(ENV_A, b"\n"), b"\nbody\n\t\n", &e(ENV_B, b"\n"), b"x\n"]),
            vec![ENV_A],
        ),
        (
            "envelope right after the header-ending empty line",
            cat(&[
                &e(ENV_A, b"\n"),
                b"\n",
                &e(ENV_B, b"\n"),
                b"Subject: 2\n\nx\n",
            ]),
            vec![ENV_A, ENV_B],
        ),
        (
            "several empty lines before the envelope",
            cat(&[&e(ENV_A, b"\n"), b"\nbody\n\n\n\r\n\n", &e(ENV_B, b"\n")]),
            vec![ENV_A, ENV_B],
        ),
        (
            "From here to eternity after an empty line is body",
            cat(&[
                &e(ENV_A, b"\n"),
                b"\nbody\n\nFrom here to eternity\n\nFrom: x Wed Dec  2 05:53 1992\n",
            ]),
            vec![ENV_A],
        ),
        (
            "envelope with a trailing space is body",
            cat(&[&e(ENV_A, b"\n"), b"\nbody\n\n", &e(ENV_B, b" \n")]),
            vec![ENV_A],
        ),
        (
            "lower-case from is body",
            cat(&[
                &e(ENV_A, b"\n"),
                b"\nbody\n\nfrom b Thu Dec  3 06:00 1992\n",
            ]),
            vec![ENV_A],
        ),
        (
            "leading space is body",
            cat(&[
                &e(ENV_A, b"\n"),
                b"\nbody\n\n From b Thu Dec  3 06:00 1992\n",
            ]),
            vec![ENV_A],
        ),
        (
            "remote from envelope",
            cat(&[
                &e(ENV_A, b"\n"),
                b"\nbody\n\nFrom b Thu Dec  3 06:00:01 1992 remote from bar\nx\n",
            ]),
            vec![ENV_A, b"From b Thu Dec  3 06:00:01 1992 remote from bar"],
        ),
        (
            "every §15.8 envelope shape",
            cat(&[
                b"From user Wed Dec  2 05:53 1992\n\n",
                b"From user Wed Dec  2 05:53:22 1992\n\n",
                b"From user Wed Dec  2 05:53 PST 1992\n\n",
                b"From user Wed Dec  2 05:53:22 -0700 1992\n\n",
                b"From user Wed Dec  2 05:53:22 1992 PST\n\n",
                b"From user Wed Dec  2 05:53:22 1992 -0700\n\n",
                b"From user Wed Dec  2 05:53:22 1992 remote from bar\n\n",
            ]),
            vec![
                b"From user Wed Dec  2 05:53 1992\n",
                b"From user Wed Dec  2 05:53:22 1992\n",
                b"From user Wed Dec  2 05:53 PST 1992\n",
                b"From user Wed Dec  2 05:53:22 -0700 1992\n",
                b"From user Wed Dec  2 05:53:22 1992 PST\n",
                b"From user Wed Dec  2 05:53:22 1992 -0700\n",
                b"From user Wed Dec  2 05:53:22 1992 remote from bar\n",
            ],
        ),
        (
            "last message without a final newline",
            cat(&[
                &e(ENV_A, b"\n"),
                b"\nbody\n\n",
                &e(ENV_B, b"\n"),
                b"Subject: 2\n\nno newline",
            ]),
            vec![ENV_A, ENV_B],
        ),
        (
            "last line is a lone CR",
            cat(&[&e(ENV_A, b"\n"), b"Subject: 1\n\r"]),
            vec![ENV_A],
        ),
        ("only an envelope, no LF", ENV_A.to_vec(), vec![ENV_A]),
        ("only an envelope with LF", e(ENV_A, b"\n"), vec![ENV_A]),
        ("only an envelope with CRLF", e(ENV_A, b"\r\n"), vec![ENV_A]),
        (
            "a last envelope without LF",
            cat(&[&e(ENV_A, b"\n"), b"\n", ENV_B]),
            vec![ENV_A, ENV_B],
        ),
        (
            "NUL and 8-bit bytes around",
            cat(&[
                &e(ENV_A, b"\n"),
                b"Subject: \xff\0\n\n\0\n\n",
                &e(ENV_B, b"\n"),
                b"\x80\xfe\n",
            ]),
            vec![ENV_A, ENV_B],
        ),
        (
            "a NUL-only line is not empty",
            cat(&[&e(ENV_A, b"\n"), b"\n\0\n", &e(ENV_B, b"\n")]),
            vec![ENV_A],
        ),
    ];
    for (name, spool, starts) in &cases {
        let s = check_all(spool).unwrap_or_else(|| panic!("{name}: BadEnvelope"));
        assert_eq!(s.format, Format::Mbox, "{name}");
        assert_eq!(s.msgs.len(), starts.len(), "{name}: {:?}", s.msgs);
        let mut from = 0usize;
        for (m, st) in s.msgs.iter().zip(starts) {
            let at = from as u64 + find(&spool[from..], st);
            assert_eq!(m.start, at, "{name}");
            let nl = spool[at as usize..].iter().position(|b| *b == b'\n');
            let content = nl.map_or(spool.len() as u64, |i| at + i as u64 + 1);
            assert_eq!(m.content, content, "{name}");
            from = content as usize;
        }
    }
    // `>From` is sent unchanged (no un-escaping).
    let spool = cat(&[ENV_A, b"\n\nbody\n\n>", ENV_B, b"\n"]);
    let s = check_all(&spool).unwrap();
    let m = &s.msgs[0];
    let (out, _) = wire(&spool[m.content as usize..m.end as usize], b"u", 3);
    assert!(out.ends_with(&cat(&[b"\r\n>", ENV_B, b"\r\n"])));
}

#[test]
fn first_line_must_be_a_separator() {
    let mut long_env = b"From ".to_vec();
    long_env.extend(std::iter::repeat_n(b'x', 5000));
    long_env.extend_from_slice(b" Wed Dec  2 05:53 1992\n\nbody\n");
    let bad: Vec<Vec<u8>> = vec![
        b"Subject: x\n\nbody\n".to_vec(),
        cat(&[b"\n", ENV_A, b"\n"]),
        cat(&[b"\r\n", ENV_A, b"\n"]),
        cat(&[b" ", ENV_A, b"\n"]),
        cat(&[b">", ENV_A, b"\n"]),
        cat(&[ENV_A, b" \n"]),
        cat(&[ENV_A, b"\r\r\n"]),
        b"From here to eternity\n".to_vec(),
        b"From \n".to_vec(),
        b"x".to_vec(),
        b"\n".to_vec(),
        b"\r".to_vec(),
        b"\0\x01\n".to_vec(),
        long_env,
    ];
    for b in &bad {
        assert!(
            matches!(
                scan(b.as_slice(), b.len() as u64),
                Err(ScanError::BadEnvelope)
            ),
            "{:?}",
            show(b)
        );
        assert!(check_all(b).is_none());
    }
}

#[test]
fn empty_and_truncated_scans() {
    let s = scan_ok(b"");
    assert_eq!(s, Scan::empty());
    assert_eq!(s.len, 0);
    // Only `len` bytes are scanned: the rest came during the session.
    let s = scan(SPEC_SPOOL, 0).unwrap();
    assert_eq!(s, Scan::empty());
    // A scan up to any message start is the full scan's first messages.
    let spool = cat(&[
        ENV_A,
        b"\n\nx\n\n",
        ENV_B,
        b"\r\nSubject: y\r\n\r\n\r\n",
        ENV_C,
        b"\n\nz",
    ]);
    let full = check_all(&spool).unwrap();
    assert_eq!(full.msgs.len(), 3);
    for k in 0..full.msgs.len() {
        let cut = full.msgs[k].start;
        let s = scan(spool.as_slice(), cut).unwrap();
        assert_eq!(s.len, cut);
        assert_eq!(s.msgs, full.msgs[..k].to_vec());
    }
    // A scan limit in the middle of a line ends that line there.
    let cut = full.msgs[1].content + 5;
    let s = scan(spool.as_slice(), cut).unwrap();
    assert_eq!(s.msgs.len(), 2);
    assert_eq!(s.msgs[1].content, full.msgs[1].content);
    assert_eq!(s.msgs[1].hdr_end, cut);
    assert_eq!(s.msgs[1].end, cut);
    assert_eq!(s.msgs[1].meta.size_without_uidl, 5 + 2);
    // A limit inside the next envelope: that line is cut, so no
    // envelope, and the bytes are the previous message's.
    let cut = full.msgs[1].content - 3;
    let s = scan(spool.as_slice(), cut).unwrap();
    assert_eq!(s.msgs.len(), 1);
    assert_eq!(s.msgs[0].end, cut);
    // A limit past the end of the file (the file shrank after fstat):
    // the same messages, no panic. (`end`/`len` then follow the limit.)
    let s = scan(spool.as_slice(), spool.len() as u64 + 100).unwrap();
    assert_eq!(s.msgs.len(), 3);
    assert_eq!(s.msgs[..2], full.msgs[..2]);
}

#[test]
fn read_errors_are_reported() {
    let spool = cat(&[ENV_A, b"\n\nx\n\n", ENV_B, b"\n"]);
    for fail_at in [0, 1, 10, spool.len() as u64 - 1] {
        let r = Failing {
            data: &spool,
            fail_at,
        };
        assert!(
            matches!(scan(&r, spool.len() as u64), Err(ScanError::Io(_))),
            "{fail_at}"
        );
    }
}

#[test]
fn mmdf_boundaries() {
    let sep = MMDF_SEP;
    let n = sep.len() as u64;
    // Two messages, back to back.
    let spool = cat(&[
        sep,
        b"Subject: a\n\nbody a\n",
        sep,
        sep,
        b"Subject: b\n\nbody b\n",
        sep,
    ]);
    let s = check_all(&spool).unwrap();
    assert_eq!(s.format, Format::Mmdf(sep.to_vec()));
    assert_eq!(s.msgs.len(), 2);
    let close0 = n + 19;
    assert_eq!(&spool[close0 as usize..(close0 + n) as usize], sep);
    let m0 = &s.msgs[0];
    assert_eq!(
        (m0.start, m0.content, m0.hdr_end, m0.end, m0.next),
        (0, n, n + 11, close0, close0 + n)
    );
    let m1 = &s.msgs[1];
    let st1 = close0 + n;
    let len = spool.len() as u64;
    assert_eq!(
        (m1.start, m1.content, m1.hdr_end, m1.end, m1.next),
        (st1, st1 + n, st1 + n + 11, len - n, len)
    );
    // The UID hashes the separator line as the envelope.
    assert_eq!(uid_str(m0), md5_hex(b"\x01\x01\x01\x01\nSubject: a\n"));
    assert_eq!(uid_str(m1), md5_hex(b"\x01\x01\x01\x01\nSubject: b\n"));

    // Junk between and after messages belongs to the message before it.
    let spool = cat(&[
        sep,
        b"a\n",
        sep,
        b"junk\n\n",
        sep,
        b"b\n",
        sep,
        b"trailing\nno lf",
    ]);
    let s = check_all(&spool).unwrap();
    assert_eq!(s.msgs.len(), 2);
    assert_eq!(s.msgs[0].end, n + 2);
    assert_eq!(s.msgs[0].next, 2 * n + 2 + 6);
    assert_eq!(s.msgs[1].start, 2 * n + 2 + 6);
    assert_eq!(s.msgs[1].end, s.msgs[1].content + 2);
    assert_eq!(s.msgs[1].next, spool.len() as u64);
    assert_eq!(
        s.msgs[0].hdr_end, s.msgs[0].end,
        "no empty line: hdr_end == end"
    );

    // An unterminated last message runs to the end.
    let spool = cat(&[
        sep,
        b"a\n",
        sep,
        sep,
        b"b\n\nFrom x Wed Dec  2 05:53 1992\n\n",
    ]);
    let s = check_all(&spool).unwrap();
    assert_eq!(s.msgs.len(), 2);
    assert_eq!(s.msgs[1].end, spool.len() as u64);
    assert_eq!(s.msgs[1].next, spool.len() as u64);

    // Envelopes are body; a separator with CR or extra bytes is body.
    let spool = cat(&[
        sep,
        b"Subject: a\n\n",
        ENV_A,
        b"\n\n\x01\x01\x01\x01\r\n\x01\x01\x01\x01x\n\x01\x01\x01\n \x01\x01\x01\x01\n",
        sep,
    ]);
    let s = check_all(&spool).unwrap();
    assert_eq!(s.msgs.len(), 1);
    assert_eq!(s.msgs[0].end, spool.len() as u64 - n);

    // A CRLF separator: only the identical line separates.
    let crsep: &[u8] = b"\x01\x01\x01\x01\r\n";
    let spool = cat(&[crsep, b"a\r\n", sep, crsep, crsep, b"b\r\n", crsep]);
    let s = check_all(&spool).unwrap();
    assert_eq!(s.format, Format::Mmdf(crsep.to_vec()));
    assert_eq!(s.msgs.len(), 2);
    assert_eq!(s.msgs[0].end, 6 + 3 + 5);

    // Only a separator (no LF), only a separator pair, an empty message.
    for (spool, count) in [
        (b"\x01\x01\x01\x01".to_vec(), 1),
        (cat(&[sep, sep]), 1),
        (cat(&[sep, sep, sep, sep]), 2),
        (cat(&[sep, sep, b"\n\n"]), 1),
        (b"\x01\n".to_vec(), 1),
        (b"\x01".to_vec(), 1),
        (b"\x01junk\nbody\n\x01junk\n".to_vec(), 1),
    ] {
        let s = check_all(&spool).unwrap();
        assert_eq!(s.msgs.len(), count, "{spool:?}");
    }
}

// ---------------------------------------------------------------
// 3 + 4 + 9. Generated spools
// ---------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn eol(&mut self) -> &'static [u8] {
        if self.chance(15) { b"\r\n" } else { b"\n" }
    }
    fn long_len(&mut self) -> usize {
        const L: [usize; 12] = [
            1022, 1023, 1024, 1030, 4094, 4095, 4096, 4097, 4098, 5000, 8193, 9000,
        ];
        L[self.below(L.len())]
    }
}

fn filled(head: &[u8], fill: u8, total: usize, tail: &[u8]) -> Vec<u8> {
    let mut v = head.to_vec();
    v.extend(std::iter::repeat_n(
        fill,
        total.saturating_sub(head.len() + tail.len()),
    ));
    v.extend_from_slice(tail);
    v
}

const ENVS: [&[u8]; 6] = [
    b"From alice@example.com Wed Dec  2 05:53:22 1992",
    b"From MAILER-DAEMON Fri Nov 27 07:05:46 2026",
    b"From x Wed Dec 12 05:53 1992 remote from bar",
    b"From user Wed Dec  2 05:53:22 1992 -0700",
    b"From user Wed Dec  2 05:53 PST 1992",
    b"From \xff\0odd Wed Dec  2 05:53 1992",
];

fn header_line(r: &mut Rng, n: usize) -> Vec<u8> {
    match r.below(27) {
        0 => format!("Subject: s{n}").into_bytes(),
        1 => b"Date: Wed, 2 Dec 1992 05:53:22 -0800".to_vec(),
        2 => format!("Received: from h{n} by mx").into_bytes(),
        3 => format!("Message-Id: <{n}@x>").into_bytes(),
        4 => b"From: Someone <a@b>".to_vec(),
        5 => format!("X-UIDL: uid{n}").into_bytes(),
        6 => b"X-UIDL: two words".to_vec(),
        7 => filled(b"x-uidl: ", b'a', 8 + 71, b""),
        8 => b"Content-Length: 42".to_vec(),
        9 => b"Status: RO".to_vec(),
        10 => b"Status: U".to_vec(),
        11 => b"status: O".to_vec(),
        12 => b" continuation".to_vec(),
        13 => b"\tcontinuation".to_vec(),
        14 => {
            let n = r.long_len();
            filled(b"X-Long: ", b'h', n, b"")
        }
        15 => {
            let n = r.long_len();
            filled(b"Subject: ", b'y', n, b"")
        }
        16 => b".dotheader: x".to_vec(),
        17 => b"X-Bin: \0\xff\x80 x".to_vec(),
        18 => b"CONTENT-LENGTH:".to_vec(),
        19 => b"Status:".to_vec(),
        20 => b"long-header-name-exceeding: v".to_vec(),
        21 => b"a\rb: c".to_vec(),
        22 => b"X-UIDL:".to_vec(),
        23 => {
            let n = r.long_len();
            filled(b"Status: O", b's', n, b"R")
        }
        24 => {
            let n = r.long_len();
            filled(b"X-UIDL: ", b'u', n, b"")
        }
        25 => filled(b"Received: ", b'r', 1022, b""),
        _ => b"Subject:\r".to_vec(),
    }
}

fn body_line(r: &mut Rng) -> Vec<u8> {
    match r.below(26) {
        0 => b"Hello".to_vec(),
        1 => b".".to_vec(),
        2 => b".dot line".to_vec(),
        3 => b"..".to_vec(),
        4 => b"From here to eternity".to_vec(),
        5 => b">From x Wed Dec  2 05:53 1992".to_vec(),
        6 => b"From x Wed Dec  2 05:53 1992".to_vec(),
        7..=9 => Vec::new(),
        10 => b"\r".to_vec(),
        11 => b"Status: RO".to_vec(),
        12 => b"X-UIDL: body".to_vec(),
        13 => b"a\rb".to_vec(),
        14 => b"\0\x01\xfe\xff".to_vec(),
        15 => {
            let n = r.long_len();
            filled(b"", b'L', n, b"")
        }
        16 => {
            let n = r.long_len();
            filled(b".", b'.', n, b"")
        }
        17 => {
            let n = r.long_len();
            filled(b"", b'c', n, b"\r")
        }
        18 => {
            let n = r.long_len();
            filled(b"", b'A', n, b"From x Wed Dec  2 05:53 1992")
        }
        19 => {
            // Envelope-shaped but longer than LINE_PREFIX: only a prefix
            // is seen, so never a separator.
            let n = r.long_len().max(LINE_PREFIX + 1);
            filled(b"From ", b'z', n, b" Wed Dec  2 05:53 1992")
        }
        20 => b"\r\r".to_vec(),
        21 => b"Subject: in body".to_vec(),
        22 => b" \t".to_vec(),
        23 => b"\x01\x01\x01\x01".to_vec(),
        24 => b"\x01\x01\x01\x01\r".to_vec(),
        _ => ENVS[r.below(ENVS.len())].to_vec(),
    }
}

fn gen_message(r: &mut Rng, out: &mut Vec<u8>, n: usize) {
    for _ in 0..r.below(7) {
        out.extend(header_line(r, n));
        out.extend_from_slice(r.eol());
    }
    if r.chance(85) {
        out.extend_from_slice(r.eol());
    }
    for _ in 0..r.below(9) {
        out.extend(body_line(r));
        out.extend_from_slice(r.eol());
    }
}

fn gen_mbox(r: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    if r.chance(4) {
        out.extend_from_slice(if r.chance(50) { b"garbage\n" } else { b"\n" });
    }
    for m in 0..r.below(5) {
        if m > 0 && r.chance(85) {
            out.extend_from_slice(r.eol());
        }
        out.extend_from_slice(ENVS[r.below(ENVS.len())]);
        out.extend_from_slice(r.eol());
        gen_message(r, &mut out, m);
    }
    finish_tail(r, &mut out);
    out
}

fn gen_mmdf(r: &mut Rng) -> Vec<u8> {
    let sep: &[u8] = if r.chance(20) {
        b"\x01\x01\x01\x01\r\n"
    } else {
        MMDF_SEP
    };
    let mut out = Vec::new();
    let n = 1 + r.below(4);
    for m in 0..n {
        if m > 0 && r.chance(15) {
            out.extend(body_line(r));
            out.extend_from_slice(b"\n");
        }
        out.extend_from_slice(sep);
        gen_message(r, &mut out, m);
        if m + 1 < n || r.chance(80) {
            out.extend_from_slice(sep);
        }
    }
    finish_tail(r, &mut out);
    out
}

fn finish_tail(r: &mut Rng, out: &mut Vec<u8>) {
    if r.chance(15) && out.ends_with(b"\n") {
        out.pop();
    }
    if r.chance(10) {
        out.extend_from_slice(b"partial last line");
    }
    if r.chance(5) {
        out.push(b'\r');
    }
}

fn generated_spools() -> Vec<Vec<u8>> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut v: Vec<Vec<u8>> = (0..300).map(|_| gen_mbox(&mut r)).collect();
    v.extend((0..80).map(|_| gen_mmdf(&mut r)));
    v
}

#[test]
fn generated_spools_match_the_model_and_the_encoder() {
    let spools = generated_spools();
    let (mut msgs, mut bad, mut long, mut mmdf) = (0, 0, 0, 0);
    for b in &spools {
        match check_all(b) {
            None => bad += 1,
            Some(s) => {
                msgs += s.msgs.len();
                if matches!(s.format, Format::Mmdf(_)) {
                    mmdf += 1;
                }
            }
        }
        if model_lines(b, 0).iter().any(|l| !l.whole()) {
            long += 1;
        }
    }
    // The generator must really exercise what it is meant to.
    assert!(msgs > 500, "{msgs} messages");
    assert!(bad > 3, "{bad} bad spools");
    assert!(long > 100, "{long} spools with long lines");
    assert_eq!(mmdf, 80);
}

#[test]
fn short_reads_and_eintr_give_the_same_scan() {
    let mut r = Rng(0x1234_5678_9abc_def1);
    let spools: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            if i % 4 == 3 {
                gen_mmdf(&mut r)
            } else {
                gen_mbox(&mut r)
            }
        })
        .chain([SPEC_SPOOL.to_vec()])
        .collect();
    for b in &spools {
        let want = scan(b.as_slice(), b.len() as u64);
        let same = |got: Result<Scan, ScanError>, how: &str| match (&want, got) {
            (Ok(w), Ok(g)) => assert_eq!(w, &g, "{how}"),
            (Err(ScanError::BadEnvelope), Err(ScanError::BadEnvelope)) => {}
            (w, g) => panic!("{how}: {:?} vs {:?}", w.is_ok(), g.is_ok()),
        };
        for max in [1, 2, 3, 7, 64, 4095, 4096, 4097, 8191, 65536] {
            if max < 7 && b.len() > 20_000 {
                continue; // quadratic in the tail kept by refill; slow, not wrong
            }
            same(
                scan(&ShortReads { data: b, max }, b.len() as u64),
                &format!("max {max}"),
            );
        }
        let r = Interrupting {
            data: b,
            calls: Cell::new(0),
        };
        same(scan(&r, b.len() as u64), "EINTR");
    }
}

/// What a test looks at in one [`Line`]: offset, prefix, whole, len,
/// has_lf, cr.
type LineView = (u64, Vec<u8>, bool, u64, bool, bool);

fn read_lines<R: ReadAt + ?Sized>(src: &R, from: u64, to: u64, chunk: usize) -> Vec<LineView> {
    let mut l = Lines::new(src, from, to, chunk);
    let mut v = Vec::new();
    while let Some(x) = l.next_line().unwrap() {
        v.push((x.offset, x.prefix.to_vec(), x.whole, x.len, x.has_lf, x.cr));
    }
    v
}

/// The line reader itself: every chunk size and read size sees the
/// same lines (offset, length, LF, CR, whole, prefix), also between
/// offsets as write-back uses it.
#[test]
fn line_reader_matches_the_model() {
    let mut r = Rng(0x0bad_cafe_f00d_d00d);
    let mut spools: Vec<Vec<u8>> = (0..30).map(|_| gen_mbox(&mut r)).collect();
    // Lines around the buffer and prefix sizes, with and without CR.
    for n in [4095, 4096, 4097, 8190, 8191, 8192, 8193, 12_289, 16_384] {
        let mut v = filled(b"", b'q', n, b"\n");
        v.extend(filled(b"", b'w', n, b"\r\n"));
        v.extend(filled(b"", b'e', n, b"\r"));
        spools.push(v);
        spools.push(filled(b"\n", b'r', n, b""));
    }
    for b in &spools {
        let len = b.len() as u64;
        let ranges = [
            (0, len),
            (len / 3, len),
            (0, len / 2),
            (len / 5, len - len / 5),
        ];
        for (from, to) in ranges {
            let want: Vec<LineView> = model_lines(&b[from as usize..to as usize], from as usize)
                .iter()
                .map(|w| {
                    let cr = w.text.last() == Some(&b'\r');
                    (
                        w.off as u64,
                        w.prefix().to_vec(),
                        w.whole(),
                        w.text.len() as u64,
                        w.lf,
                        cr,
                    )
                })
                .collect();
            let data = b.as_slice();
            for chunk in [0, 8192, 10_000, CHUNK] {
                let got = read_lines(data, from, to, chunk);
                assert!(got == want, "chunk {chunk} {from}..{to} of {}", show(b));
            }
            for max in [7, 4097] {
                let got = read_lines(&ShortReads { data, max }, from, to, CHUNK);
                assert!(got == want, "reads of {max} {from}..{to} of {}", show(b));
            }
        }
    }
}

// ---------------------------------------------------------------
// 5. UIDs
// ---------------------------------------------------------------

fn msg_with(env: &[u8], headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut v = env.to_vec();
    v.push(b'\n');
    for h in headers {
        v.extend_from_slice(h);
        v.push(b'\n');
    }
    v.push(b'\n');
    v.extend_from_slice(body);
    v
}

fn only_msg(b: &[u8]) -> MboxMsg {
    let s = check_all(b).unwrap();
    assert_eq!(s.msgs.len(), 1, "{:?}", show(b));
    s.msgs[0].clone()
}

#[test]
fn uid_md5_covers_envelope_and_four_headers_only() {
    let base_h: [&[u8]; 7] = [
        b"Received: by mx",
        b"Date: d",
        b"From: a",
        b"Message-Id: <1@x>",
        b"Subject: s",
        b"X-Other: o",
        b"Status: U",
    ];
    let base = only_msg(&msg_with(ENV_A, &base_h, b"body\n"));
    let want = md5_hex(&cat(&[
        ENV_A,
        b"\nReceived: by mx\nDate: d\nMessage-Id: <1@x>\nSubject: s\n",
    ]));
    assert_eq!(uid_str(&base), want);
    let with = |i: usize, new: &[u8]| {
        let mut h = base_h.to_vec();
        h[i] = new;
        uid_str(&only_msg(&msg_with(ENV_A, &h, b"body\n")))
    };
    // Not hashed: From:, other headers, Status, the body, continuations.
    assert_eq!(with(2, b"From: somebody else"), want);
    assert_eq!(with(5, b"X-Other: changed"), want);
    assert_eq!(with(6, b"Status: RO"), want);
    assert_eq!(with(5, b" continuation of Subject"), want);
    assert_eq!(with(5, b"Content-Length: 99"), want);
    assert_eq!(
        uid_str(&only_msg(&msg_with(
            ENV_A,
            &base_h,
            b"other body\nSubject: x\n"
        ))),
        want
    );
    // Hashed: each of the four, by its bytes (the name's case too).
    for (i, new) in [
        (0, b"Received: by other".as_slice()),
        (1, b"Date: e"),
        (3, b"Message-Id: <2@x>"),
        (4, b"Subject: changed"),
        (4, b"SUBJECT: s"),
        (1, b"date: d"),
    ] {
        assert_ne!(with(i, new), want, "{}", String::from_utf8_lossy(new));
    }
    // Prefix match on the name: `Subject:x`, `Date:`; `Subjects:` is not one.
    assert_eq!(
        uid_str(&only_msg(&msg_with(ENV_A, &[b"Subjects: x"], b""))),
        md5_hex(&cat(&[ENV_A, b"\n"]))
    );
    assert_eq!(
        uid_str(&only_msg(&msg_with(ENV_A, &[b"Subject:x", b"Date:"], b""))),
        md5_hex(&cat(&[ENV_A, b"\nSubject:x\nDate:\n"]))
    );
    // The envelope is hashed.
    let other = msg_with(ENV_B, &base_h, b"body\n");
    assert_ne!(uid_str(&only_msg(&other)), want);
    // CRLF lines are hashed with their CR (as qpopper's fgets saw them).
    let crlf = cat(&[ENV_A, b"\r\nSubject: s\r\n\r\nbody\r\n"]);
    assert_eq!(
        uid_str(&only_msg(&crlf)),
        md5_hex(&cat(&[ENV_A, b"\r\nSubject: s\r\n"]))
    );
    // No header at all: the envelope alone.
    assert_eq!(
        uid_str(&only_msg(&cat(&[ENV_A, b"\n"]))),
        md5_hex(&cat(&[ENV_A, b"\n"]))
    );
    assert_eq!(uid_str(&only_msg(ENV_A)), md5_hex(ENV_A));
    // Long hashed lines: only what fgets(1024) saw.
    let long = filled(b"Subject: ", b'y', 5000, b"");
    assert_eq!(
        uid_str(&only_msg(&msg_with(ENV_A, &[&long], b""))),
        md5_hex(&cat(&[ENV_A, b"\n", &long[..1023]]))
    );
    // Same message content, different spool positions: same UID.
    let two = cat(&[
        &msg_with(ENV_A, &base_h, b"body\n"),
        b"\n",
        &msg_with(ENV_A, &base_h, b"body\n"),
    ]);
    let s = check_all(&two).unwrap();
    assert_eq!(s.msgs.len(), 2);
    // ... which the scan then makes unique: the second is the first's
    // with `-2` (so the two hashed alike).
    let first = s.msgs[0].meta.uid.as_bytes();
    assert_eq!(first, want.as_bytes());
    assert_eq!(s.msgs[1].meta.uid.as_bytes(), [first, b"-2"].concat());
}

#[test]
fn x_uidl_header_wins() {
    let md5_of = |hdrs: &[&[u8]]| {
        let mut v = cat(&[ENV_A, b"\n"]);
        for h in hdrs {
            if [b"subject:".as_slice(), b"date:"]
                .iter()
                .any(|n| starts_with_ci(h, n))
            {
                v.extend_from_slice(h);
                v.push(b'\n');
            }
        }
        md5_hex(&v)
    };
    let seventy = filled(b"X-UIDL: ", b'k', 8 + 70, b"");
    let seventy_one = filled(b"X-UIDL: ", b'k', 8 + 71, b"");
    let cases: Vec<(Vec<&[u8]>, Option<&str>)> = vec![
        (vec![b"Subject: s", b"X-UIDL: abc"], Some("abc")),
        (vec![b"X-UIDL: abc", b"Subject: s"], Some("abc")),
        (vec![b"x-uidl:abc"], Some("abc")),
        (vec![b"X-Uidl: \t abc \t"], Some("abc")),
        (vec![b"X-UIDL: first", b"X-UIDL: second"], Some("first")),
        (vec![b"X-UIDL: %s%n", b"Date: d"], Some("%s%n")),
        (
            vec![&seventy],
            Some(std::str::from_utf8(&seventy[8..]).unwrap()),
        ),
        // Invalid values: the MD5 is used.
        (vec![b"X-UIDL: two words", b"Subject: s"], None),
        (vec![&seventy_one, b"Subject: s"], None),
        (vec![b"X-UIDL:", b"Subject: s"], None),
        (vec![b"X-UIDL:   "], None),
        (vec![b"X-UIDL: caf\xc3\xa9"], None),
        (vec![b"X-UIDL: a\0b"], None),
        // The first X-UIDL header decides, even when it is invalid.
        (vec![b"X-UIDL: bad one", b"X-UIDL: good"], None),
        // Not X-UIDL headers.
        (vec![b"X-UIDLX: abc", b"Subject: s"], None),
        (vec![b" X-UIDL: abc", b"Subject: s"], None),
        (vec![b"Subject: s", b" X-UIDL: folded"], None),
    ];
    for (hdrs, want) in &cases {
        let m = only_msg(&msg_with(ENV_A, hdrs, b"X-UIDL: in-body\n"));
        let want = want.map_or_else(|| md5_of(hdrs), str::to_owned);
        assert_eq!(uid_str(&m), want, "{hdrs:?}");
        // X-UIDL headers are never counted in the size.
        let kept: Vec<&[u8]> = hdrs
            .iter()
            .copied()
            .filter(|h| !starts_with_ci(h, b"x-uidl:"))
            .collect();
        let plain = only_msg(&msg_with(ENV_A, &kept, b"X-UIDL: in-body\n"));
        if !hdrs.iter().any(|h| h.starts_with(b" ")) {
            assert_eq!(
                m.meta.size_without_uidl, plain.meta.size_without_uidl,
                "{hdrs:?}"
            );
        }
    }
    // X-UIDL in the body is ignored; with CRLF the CR is not part of it.
    let m = only_msg(&msg_with(ENV_A, &[b"Subject: s"], b"X-UIDL: body\n"));
    assert_eq!(uid_str(&m), md5_of(&[b"Subject: s"]));
    let m = only_msg(&cat(&[ENV_A, b"\r\nX-UIDL: crlf\r\n\r\n"]));
    assert_eq!(uid_str(&m), "crlf");
    // In MMDF too.
    let s = check_all(&cat(&[MMDF_SEP, b"X-UIDL: mm\n\nb\n", MMDF_SEP])).unwrap();
    assert_eq!(uid_str(&s.msgs[0]), "mm");
}

// ---------------------------------------------------------------
// 6. Status / seen
// ---------------------------------------------------------------

#[test]
fn status_with_capital_r_marks_seen() {
    let cases: [(&[&[u8]], bool); 17] = [
        (&[b"Status: RO"], true),
        (&[b"Status: R"], true),
        (&[b"Status: OR"], true),
        (&[b"status: R"], true),
        (&[b"STATUS: RO"], true),
        (&[b"Status:R"], true),
        (&[b"Status: RO\r"], true),
        (&[b"Status: O", b"Status: R"], true),
        (
            &[b"Subject: x", b"Status: U", b"X-Other: y", b"Status: RO"],
            true,
        ),
        (&[b"Status: O"], false),
        (&[b"Status: U"], false),
        (&[b"Status: "], false),
        (&[b"Status: r"], false),
        (&[b"X-Status: R"], false),
        (&[b"Subject: Re: R"], false),
        (&[b"Subject: x", b" Status: R"], false),
        (&[], false),
    ];
    for (hdrs, seen) in cases {
        let m = only_msg(&msg_with(ENV_A, hdrs, b"Status: R\n"));
        assert_eq!(m.meta.seen, seen, "{hdrs:?}");
        let mm = check_all(&cat(&[
            MMDF_SEP,
            &msg_with(b"", hdrs, b"Status: R\n")[1..],
            MMDF_SEP,
        ]))
        .unwrap();
        assert_eq!(mm.msgs[0].meta.seen, seen, "MMDF {hdrs:?}");
    }
    // In the body it does not count, in either format.
    let m = only_msg(&msg_with(ENV_A, &[b"Subject: x"], b"Status: RO\n"));
    assert!(!m.meta.seen);
    // With no empty line the whole message is header.
    let m = only_msg(&cat(&[ENV_A, b"\nSubject: x\nStatus: RO"]));
    assert!(m.meta.seen);
    // Per message.
    let s = check_all(&cat(&[
        &msg_with(ENV_A, &[b"Status: RO"], b"x\n\n"),
        &msg_with(ENV_B, &[b"Status: O"], b"x\n\n"),
        &msg_with(ENV_C, &[b"Status: R"], b"x\n"),
    ]))
    .unwrap();
    let seen: Vec<bool> = s.msgs.iter().map(|m| m.meta.seen).collect();
    assert_eq!(seen, [true, false, true]);
}

// ---------------------------------------------------------------
// 7. CVE-2000-0320 class spoofing
// ---------------------------------------------------------------

#[test]
fn long_lines_cannot_spoof_an_envelope() {
    let fake = b"From x Wed Dec  2 05:53 1992";
    for n in [
        1, 1000, 1022, 1023, 1024, 1030, 2046, 2047, 4090, 4096, 4097, 5000, 9000,
    ] {
        for eol in [b"\n".as_slice(), b"\r\n"] {
            // A long body line ending in an envelope, after an empty line.
            let line = filled(b"", b'A', n + fake.len(), fake);
            let spool = cat(&[ENV_A, b"\nSubject: s\n\nbody\n\n", &line, eol, b"\nmore\n"]);
            let s = check_all(&spool).unwrap();
            assert_eq!(s.msgs.len(), 1, "{n}");
            // The same with the fake after spaces.
            let line = filled(b"", b' ', n + fake.len(), fake);
            let spool = cat(&[ENV_A, b"\n\n", &line, eol]);
            assert_eq!(check_all(&spool).unwrap().msgs.len(), 1, "{n}");
            // A long line, then the envelope on the next line with no
            // empty line in between: body.
            let spool = cat(&[
                ENV_A,
                b"\n\n",
                &filled(b"", b'B', n, b""),
                eol,
                fake,
                eol,
                b"x\n",
            ]);
            assert_eq!(check_all(&spool).unwrap().msgs.len(), 1, "{n}");
            // A long line ending in LF, an empty line, a real envelope:
            // a new message, right where the envelope is.
            let long = filled(b"", b'C', n, b"");
            let spool = cat(&[
                ENV_A,
                b"\n\n",
                &long,
                eol,
                eol,
                fake,
                eol,
                b"Subject: 2\n\nbody\n",
            ]);
            let s = check_all(&spool).unwrap();
            assert_eq!(s.msgs.len(), 2, "{n}");
            assert_eq!(s.msgs[1].start, find(&spool, fake));
            assert_eq!(s.msgs[0].end, s.msgs[1].start);
            let body = 2 + n as u64 + 2 + 2; // blank, long line, blank
            assert_eq!(s.msgs[0].meta.size_without_uidl, body, "{n}");
        }
    }
}

#[test]
fn envelope_longer_than_the_line_prefix_is_not_a_separator() {
    // Lines longer than LINE_PREFIX are seen only by their prefix, so a
    // separator decision must not depend on whether the whole line
    // happened to be in the read buffer.
    for n in [LINE_PREFIX + 1, 5000, 9000, 70_000] {
        let long_env = filled(b"From ", b'z', n, b" Wed Dec  2 05:53 1992");
        let spool = cat(&[ENV_A, b"\n\nbody\n\n", &long_env, b"\nSubject: x\n\nbody\n"]);
        let full = check_all(&spool).unwrap();
        assert_eq!(full.msgs.len(), 1, "{n}");
        let short = scan(
            &ShortReads {
                data: &spool,
                max: 7,
            },
            spool.len() as u64,
        )
        .unwrap();
        assert_eq!(short, full, "{n}");
    }
    // At exactly LINE_PREFIX it is whole and a separator.
    let env = filled(b"From ", b'z', LINE_PREFIX, b" Wed Dec  2 05:53 1992");
    assert_eq!(env.len(), LINE_PREFIX);
    let spool = cat(&[ENV_A, b"\n\nbody\n\n", &env, b"\nSubject: x\n\nbody\n"]);
    assert_eq!(check_all(&spool).unwrap().msgs.len(), 2);
    // A line whose first LINE_PREFIX bytes look like an envelope but
    // which goes on: not one, as first line or later.
    let mut cont = env.clone();
    cont.extend_from_slice(b" and more");
    let spool = cat(&[&cont, b"\nSubject: x\n\nbody\n"]);
    assert!(check_all(&spool).is_none());
    let spool = cat(&[ENV_A, b"\n\nbody\n\n", &cont, b"\nSubject: x\n\nbody\n"]);
    assert_eq!(check_all(&spool).unwrap().msgs.len(), 1);
    // An MMDF separator longer than LINE_PREFIX can never be compared
    // whole, so nothing closes the first message (deterministically).
    let long_sep = filled(b"\x01", b'\x01', LINE_PREFIX + 10, b"");
    let spool = cat(&[&long_sep, b"\na\n", &long_sep, b"\n", &long_sep, b"\nb\n"]);
    let s = check_all(&spool).unwrap();
    assert_eq!(s.msgs.len(), 1);
    assert_eq!(s.msgs[0].end, spool.len() as u64);
    // NOTE: Format::Mmdf then holds only the separator's prefix + LF,
    // not the real separator line.
    assert_eq!(
        s.format,
        Format::Mmdf([&long_sep[..LINE_PREFIX], b"\n"].concat())
    );
}

// ---------------------------------------------------------------
// 8. hdr_end
// ---------------------------------------------------------------

#[test]
fn hdr_end_is_the_empty_line_or_the_end() {
    // (message after the envelope line, hdr_end as an offset into it,
    // None for "== end")
    let cases: [(&[u8], Option<usize>); 12] = [
        (b"Subject: s\n\nbody\n", Some(11)),
        (b"\nbody\n", Some(0)),
        (b"\r\nbody\n", Some(0)),
        (b"Subject: s\r\n\r\nbody\r\n", Some(12)),
        (b"Subject: s\n\r\r\nbody\n\nmore\n", Some(19)),
        (b"Subject: s\n \n\nbody\n", Some(13)),
        (b"Subject: s\nX: y\n", None),
        (b"Subject: s\nX: y", None),
        (b"", None),
        (b"Subject: s\n\r", Some(11)),
        (b"Subject: s\n\n\n\n", Some(11)),
        (b"Subject: s\n\0\n\nb\n", Some(13)),
    ];
    for (msg, want) in cases {
        let spool = cat(&[ENV_A, b"\n", msg]);
        let m = only_msg(&spool);
        let want = want.map_or(m.end, |o| m.content + o as u64);
        assert_eq!(m.hdr_end, want, "{:?}", String::from_utf8_lossy(msg));
        assert_eq!(m.end, spool.len() as u64);
    }
    // The empty line before the next envelope ends a header that had none.
    let spool = cat(&[ENV_A, b"\nSubject: s\n\n", ENV_B, b"\nSubject: t\n"]);
    let s = check_all(&spool).unwrap();
    assert_eq!(s.msgs.len(), 2);
    assert_eq!(s.msgs[0].hdr_end, s.msgs[0].end - 1);
    assert_eq!(s.msgs[1].hdr_end, s.msgs[1].end);
    // A long header line does not end the header.
    let long = filled(b"X-Long: ", b'h', 9000, b"");
    let spool = cat(&[ENV_A, b"\n", &long, b"\n\nbody\n"]);
    let m = only_msg(&spool);
    assert_eq!(m.hdr_end, m.content + 9001);
}
