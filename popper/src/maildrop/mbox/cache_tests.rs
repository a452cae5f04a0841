//! The scan index: what a scan writes reads back identical; nothing that a
//! scan could not have produced, or that belongs to another file, is ever
//! taken; a changed spool is served exactly as a full scan serves it; the
//! file is read only when it is the user's own.

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

/// How an index of `s` made at `stamp` records itself (settled).
fn made(s: &Scan, stamp: Stamp) -> Made {
    Made {
        stamp,
        settled: true,
        heads: (0..s.msgs.len() as u64).map(|i| i * 7 + 1).collect(),
    }
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
        let m = made(&s, stamp(b.len() as u64));
        assert_eq!(decode(&encode(&s, &m)), Some((s, m)));
    }
}

#[test]
fn another_file_or_an_edit_in_place_is_never_taken() {
    let st = stamp(1000);
    let settled = Made {
        stamp: st,
        settled: true,
        heads: Vec::new(),
    };
    let racy = Made {
        settled: false,
        ..settled.clone()
    };
    let mbox = Format::Mbox;
    assert_eq!(check(&settled, &st, &mbox), Check::Unchanged);
    // Another file.
    for other in [Stamp { dev: 1, ..st }, Stamp { ino: 78, ..st }] {
        assert_eq!(check(&settled, &other, &mbox), Check::Refuse);
        assert_eq!(check(&racy, &other, &mbox), Check::Refuse);
    }
    // The same size with other timestamps: an edit in place.
    for edited in [
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
    ] {
        assert_eq!(check(&settled, &edited, &mbox), Check::Refuse);
        assert_eq!(check(&racy, &edited, &mbox), Check::Refuse);
    }
    // Grown or shrunk: by the heads; and an index made while the spool was
    // changing is never taken on its timestamps alone.
    for size in [999, 1001, 5000] {
        let moved = Stamp {
            size,
            ctime: (st.ctime.0 + 1, 0),
            ..st
        };
        assert_eq!(check(&settled, &moved, &mbox), Check::Heads);
    }
    assert_eq!(check(&racy, &st, &mbox), Check::Heads);
    // MMDF spools are taken only unchanged.
    let mmdf = Format::Mmdf(b"\x01\x01\x01\x01\n".to_vec());
    assert_eq!(check(&settled, &st, &mmdf), Check::Unchanged);
    assert_eq!(check(&racy, &st, &mmdf), Check::Refuse);
}

#[test]
fn any_damage_is_refused() {
    let b = SPOOLS[2];
    let s = scanned(b);
    let bytes = encode(&s, &made(&s, stamp(b.len() as u64)));
    for i in 0..bytes.len() {
        let mut d = bytes.clone();
        d[i] ^= 0x20;
        assert_eq!(decode(&d), None, "byte {i} flipped");
    }
    for n in 0..bytes.len() {
        assert_eq!(decode(&bytes[..n]), None, "cut at {n}");
    }
    let mut longer = bytes.clone();
    longer.insert(bytes.len() - 8, 0);
    assert_eq!(decode(&longer), None);
}

/// Re-signs `body` (everything but the checksum) as `encode` would.
fn signed(mut body: Vec<u8>) -> Vec<u8> {
    let sum = xxhash_rust::xxh3::xxh3_64(&body);
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
    let mut s = good.clone();
    s.msgs.clear();
    forged.push(s);
    for s in forged {
        assert_eq!(decode(&encode(&s, &made(&s, st))), None, "{s:?}");
    }
    // A length other than the stamp's size.
    let mut s = good.clone();
    s.len += 1;
    s.msgs[1].end += 1;
    s.msgs[1].next += 1;
    assert_eq!(decode(&encode(&s, &made(&s, st))), None);
    // A count far beyond what the file holds allocates nothing and fails.
    let bytes = encode(&good, &made(&good, st));
    let count_at = MAGIC.len() + 7 * 8 + 1 + 8 + 4;
    let mut body = bytes[..bytes.len() - 8].to_vec();
    body[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(decode(&signed(body)), None);
    // A settled flag, or a seen flag, other than 0 or 1; a UID with a space.
    let mut body = bytes[..bytes.len() - 8].to_vec();
    body[MAGIC.len() + 7 * 8] = 2;
    assert_eq!(decode(&signed(body)), None);
    let mut body = bytes[..bytes.len() - 8].to_vec();
    let first_entry = count_at + 8;
    body[first_entry + 8 * 8] = 2;
    assert_eq!(decode(&signed(body)), None);
    let mut body = bytes[..bytes.len() - 8].to_vec();
    body[first_entry + 8 * 8 + 2] = b' ';
    assert_eq!(decode(&signed(body)), None);
    // The untouched body, re-signed, still reads (the offsets above are
    // the fields they name).
    let body = bytes[..bytes.len() - 8].to_vec();
    assert!(decode(&signed(body)).is_some());
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("popper-cache-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).unwrap();
    d
}

/// A spool file in `d`, its index path, the owner token and "now" far
/// enough past the spool's last change for its state to have settled.
struct Fixture {
    d: std::path::PathBuf,
    spool: std::path::PathBuf,
    index: std::path::PathBuf,
    me: Dropped,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let d = tempdir(tag);
        let spool = d.join("alice");
        let index = d.join(".alice.pop.index");
        let me = Dropped::for_tests(std::fs::metadata(&d).unwrap().uid());
        Fixture {
            d,
            spool,
            index,
            me,
        }
    }

    fn write(&self, b: &[u8]) {
        std::fs::write(&self.spool, b).unwrap();
    }

    /// The login scan with the index, and a full scan of the same file.
    fn login(&self, settled: bool) -> (Scan, Source, Scan) {
        let f = File::open(&self.spool).unwrap();
        let meta = f.metadata().unwrap();
        let st = Stamp::of(&meta);
        let changed =
            SystemTime::UNIX_EPOCH + Duration::from_secs(meta.ctime().max(meta.mtime()) as u64);
        let now = if settled {
            changed + RACY + Duration::from_secs(1)
        } else {
            changed
        };
        let (s, src) = super::scan(&f, &st, &self.index, &self.me, now).expect("login scan");
        let full = super::super::scan::scan(&f, st.size).expect("full scan");
        (s, src, full)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.d);
    }
}

#[test]
fn loaded_only_if_own_and_not_through_links() {
    let fx = Fixture::new("own");
    fx.write(SPOOLS[2]);
    let spool = File::open(&fx.spool).unwrap();
    let st = Stamp::of(&spool.metadata().unwrap());
    let s = scanned(SPOOLS[2]);
    let now = SystemTime::now() + RACY + Duration::from_secs(5);
    let heads = super::super::heads::hashes(&spool, st.size, &s.msgs, None).unwrap();
    store(&fx.index, &s, heads.clone(), &st, now).unwrap();
    let m = std::fs::metadata(&fx.index).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o600);
    assert!(!super::super::lock::with_suffix(&fx.index, ".new").exists());
    let whole = |l: Option<Loaded>| match l {
        Some(Loaded::Whole(s)) => Some(s),
        _ => None,
    };
    assert_eq!(whole(load(&fx.index, &fx.me, &spool, &st)), Some(s.clone()));
    // Another owner's index is not read.
    let other = Dropped::for_tests(m.uid() + 1);
    assert!(load(&fx.index, &other, &spool, &st).is_none());
    // Nor one reached through a symbolic link.
    let link = fx.d.join(".link.index");
    std::os::unix::fs::symlink(&fx.index, &link).unwrap();
    assert!(load(&link, &fx.me, &spool, &st).is_none());
    // Nor one with a second name.
    let hard = fx.d.join(".hard.index");
    std::fs::hard_link(&fx.index, &hard).unwrap();
    assert!(load(&fx.index, &fx.me, &spool, &st).is_none());
    std::fs::remove_file(&hard).unwrap();
    assert_eq!(whole(load(&fx.index, &fx.me, &spool, &st)), Some(s.clone()));
    // A stray temporary from a crash is replaced.
    std::fs::write(super::super::lock::with_suffix(&fx.index, ".new"), b"junk").unwrap();
    store(&fx.index, &s, heads.clone(), &st, now).unwrap();
    assert_eq!(whole(load(&fx.index, &fx.me, &spool, &st)), Some(s.clone()));
    // Heads that do not match the messages are not stored.
    assert!(store(&fx.index, &s, Vec::new(), &st, now).is_err());
}

#[test]
fn a_spool_whose_separators_differ_is_scanned_again() {
    // Same length, different envelope: even with the stamp matching (as a
    // forged index could claim), the separator check refuses it.
    let fx = Fixture::new("sep");
    let a = SPOOLS[2];
    let mut b = a.to_vec();
    b[5] = b'z';
    fx.write(&b);
    let spool = File::open(&fx.spool).unwrap();
    let st = Stamp::of(&spool.metadata().unwrap());
    let write_index = |s: &Scan| {
        std::fs::write(&fx.index, encode(s, &made(s, st))).unwrap();
        std::fs::set_permissions(&fx.index, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write_index(&scanned(a));
    assert!(load(&fx.index, &fx.me, &spool, &st).is_none());
    write_index(&scanned(&b));
    assert!(
        matches!(load(&fx.index, &fx.me, &spool, &st), Some(Loaded::Whole(s)) if s == scanned(&b))
    );
}

/// A message as procmail delivers it.
fn message(i: usize, uidl: bool, body_lines: usize) -> Vec<u8> {
    let mut m = format!(
        "From sender{i}@example.org Mon Jan  1 00:00:00 2024\nReceived: by mx; {i}\nSubject: message {i}\nDate: Mon, 1 Jan 2024 00:00:{:02} +0000\n",
        i % 60
    )
    .into_bytes();
    if uidl {
        // Duplicates on purpose: the unique-making must come out the same.
        m.extend_from_slice(format!("X-UIDL: dup{}\n", i % 3).as_bytes());
    }
    if i.is_multiple_of(4) {
        m.extend_from_slice(b"Status: RO\n");
    }
    m.push(b'\n');
    for l in 0..body_lines {
        m.extend_from_slice(format!("line {l} of {i}\n").as_bytes());
    }
    m.push(b'\n');
    m
}

fn spool_of(range: std::ops::Range<usize>) -> Vec<u8> {
    range
        .flat_map(|i| message(i, i % 5 == 1, 20 + i % 7))
        .collect()
}

/// Every way a spool changes between two logins: the login with the index
/// (made at the first) sees exactly what a full scan sees, and the index
/// is used whenever it can be.
#[test]
fn a_changed_spool_is_served_as_a_full_scan_serves_it() {
    type Mutation = fn(&mut Vec<u8>);
    let base = spool_of(0..40);
    let mutations: Vec<(&str, Mutation, bool)> = vec![
        ("one delivery", |b| b.extend(message(100, false, 3)), true),
        (
            "a delivery with a duplicate X-UIDL",
            |b| b.extend(message(101, true, 3)),
            true,
        ),
        (
            "ten deliveries",
            |b| (200..210).for_each(|i| b.extend(message(i, i % 2 == 0, 5))),
            true,
        ),
        (
            "an append without a trailing newline, then one after it",
            |b| {
                b.extend_from_slice(
                    b"From x@y Mon Jan  1 00:00:00 2024\nSubject: cut\n\nno newline",
                );
            },
            true,
        ),
        (
            "mail appended right after a last line without LF",
            |b| {
                b.pop();
                b.pop();
                b.extend(message(300, false, 2));
            },
            true,
        ),
        (
            "truncated inside a body",
            |b| {
                let n = b.len() * 2 / 3;
                b.truncate(n);
            },
            true,
        ),
        (
            "truncated inside a header",
            |b| {
                let n = b.len() / 2;
                let at = b[n..].windows(9).position(|w| w == b"Subject: ").unwrap() + n + 3;
                b.truncate(at);
            },
            true,
        ),
        (
            "the first message deleted",
            |b| {
                let s = scanned(b);
                b.drain(..s.msgs[1].start as usize);
            },
            false,
        ),
        (
            "a message rewritten with Status: RO (popper's update)",
            |b| {
                let s = scanned(b);
                let at = s.msgs[5].hdr_end as usize;
                b.splice(at..at, b"Status: RO\n".iter().copied());
            },
            true,
        ),
        // The same size: an edit in place, scanned whole.
        (
            "a message deleted and delivered again",
            |b| {
                let s = scanned(b);
                let m = b[s.msgs[7].start as usize..s.msgs[7].next as usize].to_vec();
                b.drain(s.msgs[7].start as usize..s.msgs[7].next as usize);
                b.extend(m);
            },
            false,
        ),
        (
            "an envelope edited in place (same size)",
            |b| {
                let s = scanned(b);
                b[s.msgs[9].start as usize + 6] ^= 1;
            },
            false,
        ),
        (
            "a header edited, then mail appended",
            |b| {
                let s = scanned(b);
                let at = s.msgs[9].content as usize + 2;
                b[at] = b'X';
                b.extend(message(400, false, 1));
            },
            true,
        ),
        (
            "a separator made a body line, then mail appended",
            |b| {
                let s = scanned(b);
                let at = s.msgs[12].start as usize;
                b[at] = b'>';
                b.extend(message(401, false, 1));
            },
            true,
        ),
        (
            "an envelope added in a body, then mail appended",
            |b| {
                let s = scanned(b);
                let at = s.msgs[3].hdr_end as usize + 1;
                b.splice(
                    at..at,
                    b"\nFrom new@x Mon Jan  1 00:00:00 2024\n".iter().copied(),
                );
                b.extend(message(402, false, 1));
            },
            true,
        ),
        ("everything deleted", |b| b.clear(), false),
        (
            "the whole spool replaced by another, longer",
            |b| {
                *b = spool_of(1000..1045);
            },
            false,
        ),
    ];
    for settled in [true, false] {
        for (what, mutate, tail) in &mutations {
            let fx = Fixture::new("mut");
            fx.write(&base);
            let (first, _, full) = fx.login(settled);
            assert_eq!(first, full, "{what}: the first login");
            // The spool is changed by writing the same file (same inode),
            // as delivery agents and mail readers do.
            let mut b = base.clone();
            mutate(&mut b);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&fx.spool)
                .unwrap();
            use std::io::Write;
            f.write_all(&b).unwrap();
            f.set_len(b.len() as u64).unwrap();
            drop(f);
            if b.is_empty() || scan(&b[..], b.len() as u64).is_err() {
                continue;
            }
            let (s, src, full) = fx.login(settled);
            assert_eq!(s, full, "{what} (settled {settled}): served as a full scan");
            // And once more, now from the index just written.
            let (again, src2, full2) = fx.login(true);
            assert_eq!(again, full2, "{what}: the login after");
            assert_ne!(src2, Source::Scan, "{what}: the login after uses the index");
            assert_eq!(
                matches!(src, Source::Tail { .. }),
                *tail,
                "{what} (settled {settled}): {src:?}"
            );
        }
    }
}

/// The index is used for the part of the spool that still holds: after a
/// delivery only the new message is scanned, after an update that
/// rewrote from message k on only from there.
#[test]
fn only_the_changed_tail_is_scanned() {
    let fx = Fixture::new("tail");
    let base = spool_of(0..50);
    fx.write(&base);
    let (_, src, _) = fx.login(true);
    assert_eq!(src, Source::Scan);
    let (_, src, _) = fx.login(true);
    assert_eq!(src, Source::Index);
    let s = scanned(&base);
    let last_start = s.msgs[49].start;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&fx.spool)
        .unwrap();
    use std::io::Write;
    let new = message(77, false, 4);
    f.write_all(&new).unwrap();
    drop(f);
    let (got, src, _) = fx.login(true);
    assert_eq!(got.msgs.len(), 51);
    assert_eq!(
        src,
        Source::Tail {
            kept: 49,
            bytes: base.len() as u64 + new.len() as u64 - last_start
        }
    );
    // A spool whose index was made while it was still changing (a check
    // right after a delivery) is not scanned whole the next time either.
    let fx = Fixture::new("racy");
    fx.write(&base);
    let (_, src, _) = fx.login(false);
    assert_eq!(src, Source::Scan);
    let (_, src, _) = fx.login(false);
    assert!(matches!(src, Source::Tail { kept: 49, .. }), "{src:?}");
}
