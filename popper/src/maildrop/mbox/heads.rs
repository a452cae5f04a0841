//! Head hashes: what the scan index keeps of each message so that a later
//! login can tell, without reading bodies, that the messages it indexed
//! are still where and what they were.
//!
//! A message's head is the two bytes before its separator line (the end
//! of the empty line a separator must follow; none for the first message),
//! the separator line and the header, up to the empty line that ends it:
//! `[start - 2, hdr_end)`. Everything a client sees of an indexed message
//! but its body's line count comes from those bytes — the UID (`X-UIDL:` or
//! the 2.53 MD5 of header lines), the read flag (`Status:`), the header's
//! share of the size — and a message boundary can only move by moving a
//! separator. So a prefix whose heads all hash as recorded is the prefix a
//! scan would find, unless a body was edited in place to the same length
//! with a different number of lines: no mail program does that (delivery
//! agents append; mail readers and popper rewrite from the first changed
//! message on, which moves every later separator). `cache.rs` uses heads
//! only for a spool that changed since it was indexed.
//!
//! The hash is XXH3-64: fast enough (tens of GB/s) that hashing the heads
//! of a 1 GB mailbox costs a few milliseconds, and not a defence against a
//! forger — but the only writer of a spool besides delivery is its owner,
//! who can change their own mail anyway.

use std::io;
use std::os::unix::fs::FileExt;

use xxhash_rust::xxh3::Xxh3;

use super::scan::MboxMsg;

/// Ranges closer than this are read in one `pread`, gap and all: reading
/// a few kilobytes more costs less than a system call.
const GAP: u64 = 16 << 10;

/// The most one read asks for.
const READ: usize = 256 << 10;

/// The bytes a message's head hash covers.
pub fn range(m: &MboxMsg) -> (u64, u64) {
    (m.start.saturating_sub(2), m.hdr_end)
}

/// Hashes of the heads of `msgs`, in order, read from `src`; stops (the
/// result shorter than `msgs`) at the first message whose head is not all
/// below `len` or whose hash `expect` (when given) says differs — so a
/// caller checking an index learns how many leading messages still hold.
pub fn hashes(
    src: &impl FileExt,
    len: u64,
    msgs: &[MboxMsg],
    expect: Option<&[u64]>,
) -> io::Result<Vec<u64>> {
    let mut out = Vec::with_capacity(msgs.len());
    let mut buf = Vec::new();
    let mut i = 0;
    while i < msgs.len() {
        let (from, to) = range(&msgs[i]);
        if to > len || from > to {
            break;
        }
        // The messages that fit one read from `from`: consecutive heads
        // with small gaps, up to READ bytes.
        let mut end = to;
        let mut j = i + 1;
        while j < msgs.len() {
            let (f, t) = range(&msgs[j]);
            if t > len || f < end || f - end > GAP || t - from > READ as u64 {
                break;
            }
            end = t;
            j += 1;
        }
        let mut h = Xxh3::new();
        if end - from <= READ as u64 {
            buf.resize((end - from) as usize, 0);
            src.read_exact_at(&mut buf, from)?;
            for m in &msgs[i..j] {
                let (f, t) = range(m);
                h.reset();
                h.update(&buf[(f - from) as usize..(t - from) as usize]);
                out.push(h.digest());
                if expect.is_some_and(|e| e.get(out.len() - 1) != out.last()) {
                    out.pop();
                    return Ok(out);
                }
            }
        } else {
            // One head larger than a read: streamed.
            let mut pos = from;
            buf.resize(READ, 0);
            while pos < to {
                let n = (to - pos).min(READ as u64) as usize;
                src.read_exact_at(&mut buf[..n], pos)?;
                h.update(&buf[..n]);
                pos += n as u64;
            }
            out.push(h.digest());
            if expect.is_some_and(|e| e.get(out.len() - 1) != out.last()) {
                out.pop();
                return Ok(out);
            }
        }
        i = j;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildrop::mbox::scan::scan;

    fn spool(n: usize, body: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..n {
            v.extend_from_slice(
                format!("From a@b Mon Jan  1 00:00:00 2024\nSubject: {i}\n\n").as_bytes(),
            );
            v.extend(std::iter::repeat_n(b'x', body));
            v.extend_from_slice(b"\n\n");
        }
        v
    }

    fn file(bytes: &[u8]) -> std::fs::File {
        let dir = std::env::temp_dir().join(format!(
            "popper-heads-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        std::fs::write(&dir, bytes).expect("write");
        let f = std::fs::File::open(&dir).expect("open");
        std::fs::remove_file(&dir).expect("rm");
        f
    }

    /// Grouped reads give the hashes single reads give, whatever the
    /// message sizes (small ones share a read, large ones do not).
    #[test]
    fn grouped_and_single_reads_agree() {
        for body in [0, 10, 20_000, 300_000] {
            let b = spool(40, body);
            let f = file(&b);
            let s = scan(&f, b.len() as u64).expect("scan");
            let all = hashes(&f, b.len() as u64, &s.msgs, None).expect("hash");
            assert_eq!(all.len(), s.msgs.len());
            for (k, m) in s.msgs.iter().enumerate() {
                let one = hashes(&f, b.len() as u64, std::slice::from_ref(m), None).expect("one");
                assert_eq!(one, vec![all[k]], "body {body} message {k}");
                let (x, y) = range(m);
                assert_eq!(
                    all[k],
                    xxhash_rust::xxh3::xxh3_64(&b[x as usize..y as usize])
                );
            }
        }
    }

    /// Checking stops at the first head that differs, or that the file
    /// no longer holds.
    #[test]
    fn checking_stops_at_the_first_difference() {
        let b = spool(10, 100);
        let f = file(&b);
        let s = scan(&f, b.len() as u64).expect("scan");
        let good = hashes(&f, b.len() as u64, &s.msgs, None).expect("hash");
        let mut bad = good.clone();
        bad[6] ^= 1;
        let got = hashes(&f, b.len() as u64, &s.msgs, Some(&bad)).expect("check");
        assert_eq!(got, good[..6]);
        let short = s.msgs[4].hdr_end - 1;
        let got = hashes(&f, short, &s.msgs, Some(&good)).expect("check");
        assert_eq!(got, good[..4]);
    }
}
