//! The scan index: what a scan writes reads back identical; nothing that a
//! scan could not have produced, or that belongs to another spool state, is
//! ever taken; the file is made only from settled spools and read only when
//! it is the user's own.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

use super::*;
use crate::maildrop::mbox::scan::scan;

const SPOOLS: &[&[u8]] = &[
    b"",
    b"From a Wed Dec  2 05:53:22 1992\nSubject: one\n\nbody\n",
    b"From a Wed Dec  2 05:53:22 1992\nX-UIDL: abc\nStatus: RO\n\nx\n\nFrom b Thu Dec  3 06:00 1992\n\ny",
    b"From a Wed Dec  2 05:53:22 1992\n\n\nFrom b x\nFrom c y\n\n",
    b"\x01\x01\x01\x01\nSubject: m\n\nbody\n\x01\x01\x01\x01\njunk\n\x01\x01\x01\x01\n\n\x01\x01\x01\x01\n",
    b"\x01\x01\x01\x01\nunclosed",
];

fn stamp(size: u64) -> Stamp {
    Stamp {
        dev: 2049,
        ino: 77,
        size,
        mtime: (1_000_000, 5),
        ctime: (1_000_000, 6),
    }
}

fn scanned(b: &[u8]) -> Scan {
    scan(b, b.len() as u64).expect("scan")
}

/// A deterministic xorshift, for generated spools.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Spools made of pieces that exercise the scanner's rules: envelopes with
/// and without a blank line before them, MMDF separators, long lines,
/// headers, no final LF.
fn generated(n: usize) -> Vec<Vec<u8>> {
    let pieces: &[&[u8]] = &[
        b"From x Wed Dec  2 05:53:22 1992\n",
        b"\n",
        b"Subject: s\n",
        b"X-UIDL: u1\n",
        b"Status: R\n",
        b"body line\n",
        b">From quoted\n",
        b"From not-an-envelope\n",
        b"\x01\x01\x01\x01\n",
        b"no LF",
        b".\n",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::new();
    for _ in 0..n {
        let mut s = b"From first Wed Dec  2 05:53:22 1992\n".to_vec();
        if rng(&mut seed).is_multiple_of(4) {
            s = b"\x01\x01\x01\x01\n".to_vec();
        }
        for _ in 0..rng(&mut seed) % 40 {
            let p = pieces[(rng(&mut seed) % pieces.len() as u64) as usize];
            s.extend_from_slice(p);
            if rng(&mut seed).is_multiple_of(50) {
                s.extend(std::iter::repeat_n(b'L', 5000));
                s.push(b'\n');
            }
        }
        out.push(s);
    }
    out
}

#[test]
fn every_scan_round_trips_and_partitions_its_spool() {
    let mut all: Vec<Vec<u8>> = SPOOLS.iter().map(|s| s.to_vec()).collect();
    all.extend(generated(400));
    for b in &all {
        let Ok(s) = scan(&b[..], b.len() as u64) else {
            continue;
        };
        assert!(
            partitions(&s),
            "a real scan fails the partition check: {b:?}"
        );
        let st = stamp(b.len() as u64);
        assert_eq!(decode(&encode(&s, &st), &st), Some(s));
    }
}

#[test]
fn another_spool_state_is_never_taken() {
    let b = SPOOLS[2];
    let s = scanned(b);
    let st = stamp(b.len() as u64);
    let bytes = encode(&s, &st);
    let variants = [
        Stamp { dev: 1, ..st },
        Stamp { ino: 78, ..st },
        Stamp {
            size: st.size + 1,
            ..st
        },
        Stamp {
            mtime: (st.mtime.0, st.mtime.1 + 1),
            ..st
        },
        Stamp {
            mtime: (st.mtime.0 + 1, st.mtime.1),
            ..st
        },
        Stamp {
            ctime: (st.ctime.0, st.ctime.1 + 1),
            ..st
        },
    ];
    for v in variants {
        assert_eq!(decode(&bytes, &v), None, "{v:?}");
    }
}

#[test]
fn any_damage_is_refused() {
    let b = SPOOLS[2];
    let s = scanned(b);
    let st = stamp(b.len() as u64);
    let bytes = encode(&s, &st);
    for i in 0..bytes.len() {
        let mut d = bytes.clone();
        d[i] ^= 0x20;
        assert_eq!(decode(&d, &st), None, "byte {i} flipped");
    }
    for n in 0..bytes.len() {
        assert_eq!(decode(&bytes[..n], &st), None, "cut at {n}");
    }
    let mut longer = bytes.clone();
    longer.insert(bytes.len() - 8, 0);
    assert_eq!(decode(&longer, &st), None);
}

/// Re-signs `body` (everything but the checksum) as `encode` would.
fn signed(mut body: Vec<u8>) -> Vec<u8> {
    let sum = fnv(&body);
    body.extend_from_slice(&sum.to_le_bytes());
    body
}

#[test]
fn a_well_signed_index_that_no_scan_could_make_is_refused() {
    let b = SPOOLS[2];
    let good = scanned(b);
    let st = stamp(b.len() as u64);
    let mut forged = Vec::new();
    // Overlapping messages, a gap, an end past the spool, a header end
    // before the content, a message not starting at 0.
    let mut s = good.clone();
    s.msgs[1].start -= 1;
    forged.push(s);
    let mut s = good.clone();
    s.msgs[0].next -= 1;
    forged.push(s);
    let mut s = good.clone();
    s.msgs[1].end += 1000;
    s.msgs[1].next += 1000;
    forged.push(s);
    let mut s = good.clone();
    s.msgs[0].hdr_end = s.msgs[0].content - 1;
    forged.push(s);
    let mut s = good.clone();
    s.msgs.remove(0);
    forged.push(s);
    for s in forged {
        assert_eq!(decode(&encode(&s, &st), &st), None, "{s:?}");
    }
    // A count far beyond what the file holds allocates nothing and fails.
    let bytes = encode(&good, &st);
    let count_at = MAGIC.len() + 7 * 8 + 8 + 4;
    let mut body = bytes[..bytes.len() - 8].to_vec();
    body[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(decode(&signed(body), &st), None);
    // A seen flag other than 0 or 1, a UID with a space.
    let mut body = bytes[..bytes.len() - 8].to_vec();
    let first_entry = count_at + 8;
    body[first_entry + 7 * 8] = 2;
    assert_eq!(decode(&signed(body), &st), None);
    let mut body = bytes[..bytes.len() - 8].to_vec();
    body[first_entry + 7 * 8 + 2] = b' ';
    assert_eq!(decode(&signed(body), &st), None);
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("popper-cache-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).unwrap();
    d
}

#[test]
fn stored_only_from_a_settled_spool_and_loaded_only_if_own_and_matching() {
    let d = tempdir("store");
    let spool_path = d.join("alice");
    std::fs::write(&spool_path, SPOOLS[2]).unwrap();
    let spool = File::open(&spool_path).unwrap();
    let meta = spool.metadata().unwrap();
    let st = Stamp::of(&meta);
    let s = scanned(SPOOLS[2]);
    let idx = d.join(".alice.pop.index");
    let changed = SystemTime::UNIX_EPOCH + Duration::from_secs(meta.mtime() as u64);
    // Changed just now: not written.
    assert!(!store(&idx, &s, &st, changed + Duration::from_secs(1)).unwrap());
    assert!(!idx.exists());
    // Settled: written, 0600, and read back.
    assert!(store(&idx, &s, &st, changed + RACY + Duration::from_secs(1)).unwrap());
    let m = std::fs::metadata(&idx).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o600);
    assert!(!super::super::lock::with_suffix(&idx, ".new").exists());
    let me = meta.uid();
    assert_eq!(
        load(&idx, &Dropped::for_tests(me), &spool, &st),
        Some(s.clone())
    );
    // Another owner's index is not read.
    assert_eq!(load(&idx, &Dropped::for_tests(me + 1), &spool, &st), None);
    // Nor one reached through a symbolic link.
    let link = d.join(".link.index");
    std::os::unix::fs::symlink(&idx, &link).unwrap();
    assert_eq!(load(&link, &Dropped::for_tests(me), &spool, &st), None);
    // Nor one with a second name.
    let hard = d.join(".hard.index");
    std::fs::hard_link(&idx, &hard).unwrap();
    assert_eq!(load(&idx, &Dropped::for_tests(me), &spool, &st), None);
    std::fs::remove_file(&hard).unwrap();
    assert_eq!(
        load(&idx, &Dropped::for_tests(me), &spool, &st),
        Some(s.clone())
    );
    // A stray temporary from a crash is replaced.
    std::fs::write(super::super::lock::with_suffix(&idx, ".new"), b"junk").unwrap();
    assert!(store(&idx, &s, &st, changed + RACY + Duration::from_secs(1)).unwrap());
    assert_eq!(load(&idx, &Dropped::for_tests(me), &spool, &st), Some(s));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_spool_whose_separators_differ_is_scanned_again() {
    // Same length, different envelope: even with the stamp matching (as a
    // forged index could claim), the separator check refuses it.
    let d = tempdir("sep");
    let a = SPOOLS[2];
    let mut b = a.to_vec();
    b[5] = b'z';
    let spool_path = d.join("bob");
    std::fs::write(&spool_path, &b).unwrap();
    let spool = File::open(&spool_path).unwrap();
    let st = Stamp::of(&spool.metadata().unwrap());
    let idx = d.join(".bob.pop.index");
    std::fs::write(&idx, encode(&scanned(a), &st)).unwrap();
    std::fs::set_permissions(&idx, std::fs::Permissions::from_mode(0o600)).unwrap();
    let me = spool.metadata().unwrap().uid();
    assert_eq!(load(&idx, &Dropped::for_tests(me), &spool, &st), None);
    std::fs::write(&idx, encode(&scanned(&b), &st)).unwrap();
    assert_eq!(
        load(&idx, &Dropped::for_tests(me), &spool, &st),
        Some(scanned(&b))
    );
    std::fs::remove_dir_all(&d).unwrap();
}
