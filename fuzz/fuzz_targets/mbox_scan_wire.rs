//! The mbox scanner and the wire encoder on arbitrary spool bytes.
//!
//! Invariants: no panic; the messages partition the file (the first starts
//! at 0, each ends where the next starts, the last at the end); each one
//! starts with a valid envelope that is the first line or follows an empty
//! line, so no `From ` inside a long line or a body line can start one;
//! the encoder, fed in any chunk size, sends CRLF lines only, dot-stuffed,
//! and exactly the size the scan announced; the scan index (`cache.rs`)
//! reads every scan back unchanged and takes no arbitrary bytes apart with
//! a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popper::maildrop::mbox::cache::{self, Stamp};
use popper::maildrop::mbox::envelope::is_envelope;
use popper::maildrop::mbox::scan::{Format, scan};
use popper::protocol::index::UIDL_LINE_OVERHEAD;
use popper::protocol::wire::Encoder;

fuzz_target!(|data: &[u8]| {
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
    let _ = cache::decode(spool, &stamp);
    let Ok(sc) = scan(spool, spool.len() as u64) else {
        return;
    };
    assert!(
        cache::partitions(&sc),
        "a scan fails the index's partition check"
    );
    assert_eq!(
        cache::decode(&cache::encode(&sc, &stamp), &stamp).as_ref(),
        Some(&sc),
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
        let mut enc = Encoder::new(uid, None);
        let mut out = Vec::new();
        for chunk in spool[content..end].chunks(usize::from(step).max(1)) {
            enc.feed(chunk, &mut out);
        }
        enc.finish(&mut out);
        assert_eq!(
            enc.sent(),
            m.meta.size_without_uidl + UIDL_LINE_OVERHEAD + uid.len() as u64,
            "sent bytes differ from the announced size"
        );
        for l in out.split_inclusive(|b| *b == b'\n') {
            assert!(l.ends_with(b"\r\n"), "a line not ended by CRLF");
            assert!(!l[..l.len() - 2].contains(&b'\n'));
        }
        for l in out.split_inclusive(|b| *b == b'\n') {
            // "." alone would end the reply: it must have been stuffed.
            assert_ne!(l, b".\r\n", "an unstuffed dot line");
        }
    }
});
