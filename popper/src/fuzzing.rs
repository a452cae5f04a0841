//! What each fuzz target checks, in one place: `fuzz/fuzz_targets/*` call
//! these, and `cargo test` replays every input kept in
//! `fuzz/regressions/TARGET/` through them, so a crash found once stays a
//! test without cargo-fuzz. Built for tests and with the `fuzzing` feature
//! (the fuzz workspace turns it on); not part of the server.
//!
//! Each function takes arbitrary bytes and panics on a broken invariant.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use pop3_core::command::Tokens;
use pop3_core::error::AuthError;
use pop3_core::limits::{MAX_DISCARD_NOTICES, MAX_LINE};
use pop3_core::line::{Frame, LineBuf};
use pop3_core::policy::{ClearText, Tls};
use pop3_core::session::{AuthRequest, Proof};
use pop3_core::sim::{SimConfig, run};
use pop3_core::wire::Encoder;

use crate::maildrop::mbox::cache::{self, Stamp};
use crate::maildrop::mbox::envelope::is_envelope;
use crate::maildrop::mbox::journal_header::{HEADER_LEN, Header, fnv};
use crate::maildrop::mbox::memory::MemMbox;
use crate::maildrop::mbox::render::{Render, UIDL_LINE_OVERHEAD};
use crate::maildrop::mbox::scan::{Format, scan};

/// A target's check of one input.
pub type Check = fn(&[u8]);

/// The targets by name (the directories of `fuzz/regressions`).
pub const TARGETS: &[(&str, Check)] = &[
    ("line_tokenizer", line_tokenizer),
    ("session", session),
    ("mbox_scan_wire", mbox_scan_wire),
    ("journal_header", journal_header),
    ("scan_index", scan_index),
    ("popauth_record", popauth_record),
    ("sasl", sasl),
    ("maildir_cache", maildir_cache),
    ("proxy_header", proxy_header),
];

/// The line reader and tokenizer on client bytes fed in pieces whose size
/// is the first byte: no line handed on is longer than 1023 bytes or
/// holds an LF; an over-long line is one `TooLong` frame, never a command,
/// and is counted once when it ends.
pub fn line_tokenizer(data: &[u8]) {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let mut lines = LineBuf::new();
    let (mut too_long, mut ended, mut discarded) = (0u64, 0u64, 0u64);
    for chunk in data.chunks(usize::from(step).max(1)) {
        lines.push(chunk);
        if let Some(n) = lines.take_discarded() {
            ended += 1;
            discarded += n;
        }
        loop {
            match lines.next_frame() {
                None => break,
                Some(Frame::TooLong) => too_long += 1,
                Some(Frame::Line(l)) => {
                    assert!(l.len() <= MAX_LINE, "a line of {} bytes", l.len());
                    assert!(!l.contains(&b'\n'));
                    if let Ok(Some(t)) = Tokens::split(l)
                        && let Some(v) = t.verb()
                    {
                        let _ = t.command(v);
                    }
                }
            }
            if let Some(n) = lines.take_discarded() {
                ended += 1;
                discarded += n;
            }
        }
    }
    let open = u64::from(lines.discarding().is_some());
    assert_eq!(ended + open, too_long, "over-long lines counted once each");
    assert!(discarded + lines.discarding().unwrap_or(0) <= data.len() as u64);
}

const MESSAGES: &[&[u8]] = &[
    b"Subject: one\n\nbody\n.dot\n..two\n\n",
    b"X-UIDL: dup\nStatus: RO\nSubject: two\n\nx\r\ny\n",
    b"X-UIDL: dup\n\n\n",
    b"Subject: no body, no LF",
    b"From: a\nContent-Length: 3\n\nabc\n.\n",
];

fn sim_auth(req: &AuthRequest) -> Result<(), AuthError> {
    match &req.proof {
        Proof::Pass(s) if req.user == b"alice" && s.expose() == b"secret" => Ok(()),
        Proof::Apop(_) | Proof::Chain if req.user == b"alice" => Ok(()),
        _ => Err(AuthError::BadPassword),
    }
}

/// A whole session through the shipping dispatch loop, over in-memory
/// mbox messages, driven by client bytes after two option bytes. Every
/// RETR sends exactly the size announced; every byte sent is part of a
/// CRLF line; every reply starts `+OK` or `-ERR`, is one line or (when the
/// loop says a body follows) ends with the first `.` line; a session whose
/// output was not cut short ends with the sign-off.
pub fn session(data: &[u8]) {
    let [flags, more, input @ ..] = data else {
        return;
    };
    let cfg = SimConfig {
        apop: flags & 1 != 0,
        apop_only: flags & 2 != 0,
        update_on_abort: flags & 4 != 0,
        chunk: usize::from(flags >> 3).max(1),
        eof_abort: more & 1 == 0,
        apop_users: if more & 2 != 0 {
            vec![b"alice".to_vec()]
        } else {
            Vec::new()
        },
        max_auth_failures: u32::from(flags >> 6),
        write_limit: (more & 4 != 0).then(|| u64::from(*more) * 61),
        start: if more & 0x80 != 0 && more & 0x40 != 0 {
            pop3_core::session::Start::Authenticated(b"alice".to_vec())
        } else {
            pop3_core::session::Start::Greeting
        },
        // The TLS and SASL options reuse bits of the two option bytes, so
        // the inputs kept from before they existed still mean a session.
        tls: match (more >> 5) & 3 {
            0 => Tls::Off,
            1 => Tls::Offered,
            2 => Tls::Broken,
            _ => Tls::Active,
        },
        handshake_ok: more & 0x10 == 0,
        clear_text: ClearText::from_number(&((flags >> 3) % 5).to_string()).unwrap_or_default(),
        local: flags & 0x20 == 0,
        secrets: if flags & 0x10 != 0 {
            vec![(b"alice".to_vec(), b"secret".to_vec())]
        } else {
            Vec::new()
        },
    };
    let mut drop = MemMbox::new(MESSAGES.iter().map(|m| m.to_vec()));
    drop.0.chunk = usize::from(more >> 3).max(1);
    let t = run(input, drop, &cfg, &sim_auth);
    assert!(t.size_mismatches.is_empty(), "{:?}", t.size_mismatches);
    assert!(t.discarded.len() <= MAX_DISCARD_NOTICES as usize);
    let out = &t.output;
    // A failed handshake ends the connection without a sign-off.
    let tls_failed = t.end == Some(pop3_core::session::SessionEnd::TlsFailed);
    let cut = cfg.write_limit.is_some() || !cfg.eof_abort || tls_failed;
    if !cut {
        assert!(out.ends_with(b"\r\n"), "output does not end a line");
    }
    for line in out.split_inclusive(|b| *b == b'\n') {
        assert!(
            line.ends_with(b"\r\n") || !line.ends_with(b"\n"),
            "a bare LF: {line:?}"
        );
    }
    let starts: Vec<(usize, bool)> = t
        .replies
        .iter()
        .copied()
        .filter(|(at, _)| *at < out.len())
        .collect();
    let sign_off = out
        .windows(2)
        .rposition(|w| w == b"\r\n")
        .and_then(|end| out[..end].windows(2).rposition(|w| w == b"\r\n"))
        .map_or(0, |i| i + 2);
    for (i, &(at, multiline)) in starts.iter().enumerate() {
        let end = match starts.get(i + 1) {
            Some(&(next, _)) => next,
            None if cut => break,
            None => sign_off,
        };
        let reply = &out[at..end];
        assert!(
            reply.starts_with(b"+OK") || reply.starts_with(b"-ERR") || reply.starts_with(b"+ "),
            "not a reply: {:?}",
            String::from_utf8_lossy(reply)
        );
        let lines: Vec<&[u8]> = reply.split_inclusive(|b| *b == b'\n').collect();
        if multiline {
            assert_eq!(lines.last().copied(), Some(&b".\r\n"[..]), "unterminated");
            assert!(
                !lines[..lines.len() - 1].contains(&&b".\r\n"[..]),
                "an unstuffed dot line inside a body"
            );
        } else {
            assert_eq!(lines.len(), 1, "a one-line reply of {} lines", lines.len());
        }
    }
    if !cut {
        assert!(
            out[sign_off..].ends_with(b"signing off.\r\n"),
            "no sign-off: {:?}",
            String::from_utf8_lossy(&out[sign_off..])
        );
    }
}

/// The mbox scanner and qpopper's wire form on arbitrary spool bytes
/// (after a chunk-size byte): the messages partition the file, each starts
/// at a valid envelope that is the first line or follows an empty line;
/// what RETR sends, in any chunk size, is CRLF lines only, dot-stuffed, and
/// exactly the size announced; the scan index reads every scan back.
pub fn mbox_scan_wire(data: &[u8]) {
    let Some((&step, spool)) = data.split_first() else {
        return;
    };
    let stamp = Stamp {
        dev: 1,
        ino: 2,
        size: spool.len() as u64,
        mtime: (3, 4),
        ctime: (5, 6),
    };
    let _ = cache::decode(spool);
    let Ok(sc) = scan(spool, spool.len() as u64) else {
        return;
    };
    assert!(cache::partitions(&sc), "a scan fails the partition check");
    let made = cache::Made {
        stamp,
        settled: step & 1 == 0,
        heads: (0..sc.msgs.len() as u64).collect(),
    };
    let back = cache::decode(&cache::encode(&sc, &made));
    assert!(
        back.as_ref().is_some_and(|(s, m)| *s == sc && *m == made),
        "the index does not read back"
    );
    let Some(first) = sc.msgs.first() else {
        assert!(spool.is_empty());
        return;
    };
    assert_eq!(first.start, 0);
    for w in sc.msgs.windows(2) {
        assert_eq!(w[0].next, w[1].start, "messages do not partition the spool");
    }
    assert_eq!(sc.msgs.last().map(|m| m.next), Some(spool.len() as u64));
    let mut uids: Vec<&[u8]> = sc.msgs.iter().map(|m| m.meta.uid.as_bytes()).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), sc.msgs.len(), "UIDs not unique");
    for m in &sc.msgs {
        let (start, content, end) = (m.start as usize, m.content as usize, m.end as usize);
        assert!(start <= content && content <= end && end <= spool.len());
        if sc.format == Format::Mbox {
            let line = &spool[start..content];
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            assert!(is_envelope(line), "a message starts at a non-envelope");
            if start > 0 {
                let before = &spool[..start];
                assert!(
                    before.ends_with(b"\n\n") || before.ends_with(b"\n\r\n"),
                    "an envelope that does not follow an empty line"
                );
            }
        }
        let uid = m.meta.uid.as_bytes();
        let mut render = Render::new(uid);
        let mut enc = Encoder::new(None);
        let mut out = Vec::new();
        for chunk in spool[content..end].chunks(usize::from(step).max(1)) {
            render.feed(chunk, &mut enc, &mut out);
        }
        render.finish(&mut enc, &mut out);
        assert_eq!(
            enc.sent(),
            m.meta.size_without_uidl + UIDL_LINE_OVERHEAD + uid.len() as u64,
            "sent bytes differ from the announced size"
        );
        for l in out.split_inclusive(|b| *b == b'\n') {
            assert!(l.ends_with(b"\r\n"), "a line not ended by CRLF");
            assert!(!l[..l.len() - 2].contains(&b'\n'));
            // "." alone would end the reply: it must have been stuffed.
            assert_ne!(l, b".\r\n", "an unstuffed dot line");
        }
    }
}

/// The update journal's header codec: arbitrary text, sealed with a valid
/// checksum so the parser is reached, decodes or is refused without a
/// panic; whatever decodes encodes back to the same header; and arbitrary
/// raw blocks (torn writes) decode only if intact.
pub fn journal_header(data: &[u8]) {
    let _ = Header::decode(data);
    let mut text = data.to_vec();
    text.retain(|b| *b != 0);
    text.extend_from_slice(format!("check {:016x}\n", fnv(&text)).as_bytes());
    text.resize(text.len().max(HEADER_LEN as usize), 0);
    if let Some(h) = Header::decode(&text) {
        let block = h.encode();
        assert_eq!(block.len(), HEADER_LEN as usize);
        assert_eq!(Header::decode(&block), Some(h), "encode/decode round trip");
    }
}

/// The scan-index decoder on arbitrary entries behind a valid magic, stamp
/// and checksum: it refuses or returns a scan that partitions what it
/// indexed, with a head hash per message, which encodes back to itself;
/// and it takes arbitrary whole files apart without a panic. (UIDs are
/// made unique again by every login that uses an index.)
pub fn scan_index(data: &[u8]) {
    let size = data
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    let stamp = Stamp {
        dev: 7,
        ino: 8,
        size,
        mtime: (9, 10),
        ctime: (11, 12),
    };
    let _ = cache::decode(data);
    let mut bytes = cache::MAGIC.to_vec();
    stamp.encode(&mut bytes);
    bytes.extend_from_slice(data);
    let sum = xxhash_rust::xxh3::xxh3_64(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    if let Some((sc, made)) = cache::decode(&bytes) {
        assert!(cache::partitions(&sc));
        assert_eq!(made.stamp, stamp);
        assert_eq!(made.heads.len(), sc.msgs.len());
        assert_eq!(
            cache::decode(&cache::encode(&sc, &made)),
            Some((sc, made)),
            "the index does not read back"
        );
    }
}

/// The Maildir listing cache's decoder on arbitrary files, and on
/// arbitrary bodies behind a valid checksum: it refuses, or returns a
/// listing of valid names in strict session order that encodes back to
/// the very same bytes (nothing accepted is read any other way than it
/// was written).
pub fn maildir_cache(data: &[u8]) {
    use crate::maildrop::maildir::cache as mc;
    use crate::maildrop::maildir::list::order;
    let _ = mc::decode(data);
    let sealed = mc::seal(data);
    if let Some(st) = mc::decode(&sealed) {
        let f = &st.files;
        for w in f.recs().windows(2) {
            assert!(order(f.key(&w[0]), f.key(&w[1])).is_lt(), "out of order");
        }
        for r in f.recs() {
            let name = f.name(r);
            assert!(!name.is_empty() && !name.starts_with(b".") && !name.contains(&b'/'));
            assert!(r.wire >= r.len && r.nanos < 1_000_000_000);
        }
        assert_eq!(
            mc::to_bytes(&st.stamps, st.whole, f),
            sealed,
            "not read back"
        );
    }
}

/// The pop.auth record codec on what gdbm hands popper from the database
/// file: decoding never yields the terminating NUL; every secret `encode`
/// accepts decodes back to itself; a name without NUL round-trips through
/// its key.
pub fn popauth_record(data: &[u8]) {
    use popauth::record;
    let secret = record::decode(data);
    assert!(secret.len() <= data.len());
    let _ = record::name_of(data);
    if let Ok(v) = record::encode(data) {
        assert_eq!(record::decode(&v), data, "encode/decode round trip");
    }
    if !data.contains(&0) {
        let key = record::key(data);
        assert_eq!(record::name_of(&key), data, "key/name round trip");
    }
}

/// The SASL decoders on client bytes (after a byte that picks the
/// step): never a panic; whatever decodes re-encodes to the same bytes;
/// PLAIN's user has no NUL; CRAM-MD5's digest is 32 lower-case hex; a
/// SCRAM exchange built on any client-first takes any client-final.
pub fn sasl(data: &[u8]) {
    use pop3_core::{cram, sasl, scram};
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    if let Ok(bytes) = sasl::decode(data)
        && !bytes.is_empty()
    {
        assert_eq!(sasl::encode(&bytes).as_bytes(), data, "base64 round trip");
    }
    match which % 4 {
        0 => {
            if let Ok((user, _)) = sasl::plain(data) {
                assert!(!user.is_empty() && !user.contains(&0));
            }
        }
        1 => {
            if let Ok((_, digest)) = cram::parse_response(data) {
                assert!(
                    digest
                        .iter()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
                );
            }
            let _ = cram::verify(data, "<1.2@h>", data);
        }
        _ => {
            let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
            let (first, last) = data.split_at(split);
            if let Ok(f) = scram::parse_client_first(first) {
                let mut ex = scram::Exchange::new(f, "server", [1; 16], 1);
                let _ = ex.server_first();
                if let Ok(p) = ex.take_client_final(last.get(1..).unwrap_or(b"")) {
                    let _ = scram::verify(&p, b"secret");
                }
            }
        }
    }
}

/// The PROXY header parser on arbitrary bytes: no panic; `NeedMore` asks
/// for at least one byte; a header is no longer than its version allows,
/// depends only on its own bytes (the same header whatever follows), and
/// no strict prefix of it is anything but `NeedMore` for no more bytes
/// than the header still lacks (so the reader never consumes a byte past
/// it); an error stays an error whatever bytes are added.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy::header::{Parsed, V1_MAX, V2_MAX, parse};
    match parse(data) {
        Ok(Parsed::NeedMore(k)) => assert!((1..=V2_MAX).contains(&k), "NeedMore({k})"),
        Ok(Parsed::Header(h)) => {
            let max = if h.version == 1 { V1_MAX } else { V2_MAX };
            assert!(h.len <= data.len() && h.len <= max, "{h:?}");
            assert_eq!(parse(&data[..h.len]), Ok(Parsed::Header(h)));
            let step = (h.len / 300).max(1);
            for n in (0..h.len).step_by(step) {
                match parse(&data[..n]) {
                    Ok(Parsed::NeedMore(k)) => assert!(k >= 1 && k <= h.len - n, "{k} at {n}"),
                    other => panic!("{other:?} for {n} of a {}-byte header", h.len),
                }
            }
        }
        Err(e) => {
            let mut more = data.to_vec();
            more.extend_from_slice(b"\r\n\r\n");
            assert!(parse(&more).is_err(), "{e:?} became good with more bytes");
            let _ = e.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input a fuzzer ever found is replayed (and the directory of
    /// each target exists, so none is silently skipped).
    #[test]
    fn fuzz_regressions_replay() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
        let mut replayed = 0;
        for (name, check) in TARGETS {
            let dir = root.join(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for e in entries {
                let path = e.unwrap().path();
                if path.file_name().is_some_and(|n| n == "README") {
                    continue;
                }
                check(&std::fs::read(&path).unwrap());
                replayed += 1;
            }
        }
        assert!(
            replayed >= 1,
            "no regression input found under {}",
            root.display()
        );
    }

    /// The seed shapes each target starts from pass.
    #[test]
    fn seeds_pass() {
        session(b"\x00\x00USER alice\r\nPASS secret\r\nLIST\r\nRETR 1\r\nRETR 2\r\nTOP 3 0\r\nDELE 1\r\nQUIT\r\n");
        session(b"\x4d\x05USER alice\r\nPASS secret\r\nRETR 1\r\nRETR 5\r\nQUIT\r\n");
        // EUIDL and XTND XLST listings are framed like LIST (one `.` line
        // after the items; a single EUIDL is one line), in any chunk size
        // and when the client stops reading.
        for opts in [b"\x00\x00", b"\x4d\x25", b"\xff\x04", b"\x08\x08"] {
            let mut input = opts.to_vec();
            input.extend_from_slice(b"USER alice\r\nPASS secret\r\nEUIDL\r\nEUIDL 5\r\nEUIDL 2\r\nXTND XLST from\r\nXTND XLST x-uidl 2\r\nDELE 2\r\nXTND XLST s 2\r\nXTND XLST Subject\r\nXTND XMIT\r\nXTND FOO\r\nQUIT\r\n");
            session(&input);
        }
        line_tokenizer(&[b'\x07'; 3000]);
        mbox_scan_wire(b"\x03From a Wed Dec  2 05:53:22 1992\nX-UIDL: a\n\nx\n\nFrom b Wed Dec  2 05:53:22 1992\nX-UIDL: a\n\n.\n");
        journal_header(b"popper-journal 1\npid 1\nspool 2:3\nfrom 0\nold-length 5\ntail-length 6\nsample \nbefore 0000000000000000\nat \nmerges-temp-drop 0\n");
        scan_index(&[0u8; 24]);
        popauth_record(b"\x9e\x9a\x00");
        sasl(b"\x00AGFsaWNlAHNlY3JldA==");
        sasl(b"\x02n,,n=alice,r=abc\nc=biws,r=abcserver,p=AAAA");
        let mut l = crate::maildrop::maildir::listing::Listing::default();
        for (i, name) in ["1.a.host", "2.b.host:2,S"].into_iter().enumerate() {
            let rec = crate::maildrop::maildir::listing::Rec::new(1, 2, 3, (i as i64, 5), 4);
            let sub = crate::maildrop::maildir::list::Sub::Cur;
            l.push_parts(sub, name.as_bytes(), rec).unwrap();
        }
        let file = crate::maildrop::maildir::cache::to_bytes(&[Stamp::default(); 2], true, &l);
        assert!(crate::maildrop::maildir::cache::decode(&file).is_some());
        maildir_cache(&file[..file.len() - 8]);
        maildir_cache(&file);
        proxy_header(b"PROXY TCP4 192.0.2.7 10.0.0.1 5000 110\r\nUSER alice\r\n");
        proxy_header(b"PROXY TCP6 2001:db8::7 2001:db8::1 5000 995\r\n\x16\x03\x01");
        proxy_header(b"PROXY UNKNOWN\r\n");
        proxy_header(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\x0a\x00\x00\x01\x13\x88\x00\x6eUSER");
        proxy_header(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00");
        proxy_header(b"PROXY TCP4 1.2.3.4");
    }
}
