//! The fast scan against the line-by-line reference (`scan_reference.rs`)
//! on generated spools made to catch a skip that goes wrong: envelope-like
//! lines in bodies with and without an empty line before them, LF and
//! CR LF and lone CRs mixed, NULs, lines around and far over
//! [`LINE_PREFIX`], MMDF separators, no final LF, and every kind of read
//! (whole, short, split at every offset near a candidate).

use super::reference::scan_reference;
use super::*;

/// xorshift64*: reproducible spools.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ENVS: [&[u8]; 4] = [
    b"From a@example.com Wed Dec  2 05:53:22 1992",
    b"From b Thu Dec  3 06:00 1992",
    b"From c Fri Dec  4 07:05:46 1992 -0700",
    b"From d Sat Dec  5 07:05:46 1992 remote from bar",
];

/// One random line (without its end) from a mix that favours whatever the
/// scanner treats specially.
fn line(r: &mut Rng, mmdf: &[u8]) -> Vec<u8> {
    match r.below(24) {
        0 | 1 => ENVS[r.below(4)].to_vec(),
        2 => b"From here to eternity".to_vec(),
        3 => b">From a Wed Dec  2 05:53 1992".to_vec(),
        4 => b"From ".to_vec(),
        5 => b"Fro".to_vec(),
        6 => mmdf.to_vec(),
        7 => [mmdf, b"x"].concat(),
        8 => b"Status: RO".to_vec(),
        9 => b"X-UIDL: abc123".to_vec(),
        10 => b"Content-Length: 12".to_vec(),
        11 => b" continued".to_vec(),
        12 => b"Subject: a\0b".to_vec(),
        13 => b"Received: by x".to_vec(),
        14 => {
            // An envelope of a length around the prefix the scanner keeps:
            // a line longer than that is never a separator.
            let n = [
                LINE_PREFIX - 1,
                LINE_PREFIX,
                LINE_PREFIX + 1,
                3 * LINE_PREFIX,
            ][r.below(4)];
            let date: &[u8] = b" Wed Dec  2 05:53:22 1992";
            let mut l = b"From x".to_vec();
            l.resize(n - date.len(), b'y');
            l.extend_from_slice(date);
            l
        }
        15 => vec![b'\r'],
        16 => b"\r\r".to_vec(),
        17..=19 => Vec::new(),
        _ => {
            let n = r.below(90);
            (0..n).map(|_| b"abcFrom \r\n\0 "[r.below(12)]).collect()
        }
    }
}

/// A spool of `n` random lines with random line ends, starting with an
/// envelope or an MMDF separator.
fn spool(r: &mut Rng, n: usize) -> Vec<u8> {
    let mmdf: &[u8] = [
        b"\x01\x01\x01\x01".as_slice(),
        b"\x01\x01\x01\x01\r",
        b"\x01x",
    ][r.below(3)];
    let mut out = if r.below(5) == 0 {
        mmdf.to_vec()
    } else {
        ENVS[r.below(4)].to_vec()
    };
    for _ in 0..n {
        out.extend_from_slice(match r.below(8) {
            0 => b"\r\n",
            1 if r.below(4) == 0 => b"\r",
            _ => b"\n",
        });
        out.extend(line(r, mmdf));
    }
    if r.below(3) != 0 {
        out.push(b'\n');
    }
    out
}

/// The fast scan of `src` up to `len` (`src` reading `b`) is the
/// reference's scan of `b` up to `len`.
fn same_to<R: ReadAt + ?Sized>(b: &[u8], src: &R, len: u64, what: &str) {
    let got = scan(src, len);
    let want = scan_reference(b, len);
    match (got, want) {
        (Ok(g), Ok(w)) => {
            if g != w {
                let i = g.msgs.iter().zip(&w.msgs).position(|(a, b)| a != b);
                let at = i.map(|i| (g.msgs[i].clone(), w.msgs[i].clone()));
                let from = at.as_ref().map_or(0, |(a, _)| a.start as usize);
                panic!(
                    "{what}: {} messages against {}; first difference {at:#?} in {:?}",
                    g.msgs.len(),
                    w.msgs.len(),
                    String::from_utf8_lossy(&b[from..b.len().min(from + 300)])
                );
            }
        }
        (Err(ScanError::BadEnvelope), Err(ScanError::BadEnvelope)) => {}
        (g, w) => panic!(
            "{what}: {:?} against {:?}",
            g.map(|s| s.msgs.len()),
            w.map(|s| s.msgs.len())
        ),
    }
}

fn same(b: &[u8], src: &(impl ReadAt + ?Sized), what: &str) {
    same_to(b, src, b.len() as u64, what);
}

/// At most `max` bytes per read.
struct Short<'a>(&'a [u8], usize);

impl ReadAt for Short<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = buf.len().min(self.1);
        self.0.read_at(&mut buf[..n], offset)
    }
}

#[test]
fn random_spools_scan_as_the_reference_does() {
    let mut r = Rng(0x5eed);
    for i in 0..3000 {
        let n = 1 + r.below(if i % 10 == 0 { 400 } else { 40 });
        let b = spool(&mut r, n);
        same(&b, b.as_slice(), "whole reads");
        if i % 7 == 0 {
            let max = 1 + r.below(40);
            same(&b, &Short(&b, max), "short reads");
        }
    }
}

#[test]
fn reads_ending_at_every_offset_near_a_candidate_change_nothing() {
    let mut r = Rng(42);
    for _ in 0..40 {
        let b = spool(&mut r, 30);
        for max in 1..12 {
            same(&b, &Short(&b, max), "tiny reads");
        }
    }
}

#[test]
fn chunk_boundaries_inside_separators_and_empty_lines() {
    // Bodies long enough that the 256 KiB chunk ends inside `\nFrom `, a
    // CR LF or the MMDF separator, at every offset around it.
    let env = ENVS[0];
    for sep_at in CHUNK - 12..CHUNK + 4 {
        for (blank, sep) in [
            (b"\n".as_slice(), env),
            (b"\r\n", env),
            (b"\n", b"\x01\x01\x01\x01".as_slice()),
            (b"x\n", env),
        ] {
            let mmdf = sep[0] == 1;
            let mut b = [sep, b"\nSubject: s\n\n"].concat();
            while b.len() + blank.len() + 1 < sep_at {
                b.extend_from_slice(b"body line\r\n"[..1 + b.len() % 11].as_ref());
                b.push(b'\n');
            }
            b.truncate(sep_at - blank.len() - 1);
            b.push(b'\n');
            b.extend_from_slice(blank);
            b.extend_from_slice(sep);
            b.extend_from_slice(b"\nSubject: t\n\nlast");
            if mmdf {
                b.extend_from_slice(b"\n\x01\x01\x01\x01\n");
            }
            same(&b, b.as_slice(), "chunk boundary");
        }
    }
}

#[test]
fn truncated_views_and_nul_filled_spools() {
    let mut r = Rng(7);
    for _ in 0..300 {
        let b = spool(&mut r, 25);
        for cut in [b.len() / 3, b.len() / 2, b.len().saturating_sub(1)] {
            same_to(&b, b.as_slice(), cut as u64, "scan to a shorter length");
            // The length asked is longer than the file: reads stop early.
            same_to(
                &b[..cut],
                &b[..cut],
                b.len() as u64,
                "file shorter than asked",
            );
        }
    }
    let mut b = ENVS[0].to_vec();
    b.extend(std::iter::repeat_n(0u8, 1 << 20));
    same(&b, b.as_slice(), "NULs");
}
