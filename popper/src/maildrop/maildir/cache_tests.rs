//! The listing cache's layout and validation (`cache.rs`): what is written
//! is read back exactly, and a damaged, cut, foreign or out-of-order file
//! is never taken. Its use at login (whole only while the directories are
//! unchanged and were settled; the same listing as a full one) is tested
//! in `tests.rs`.

use super::*;
use crate::maildrop::maildir::fixture::TempDir;
use crate::maildrop::maildir::list::Listed;
use std::os::unix::fs::MetadataExt;

fn file(sub: Sub, name: &str, mtime: (i64, i64), len: u64, wire: u64) -> Listed {
    Listed {
        sub,
        name: name.into(),
        dev: 3,
        ino: len.wrapping_add(1000),
        len,
        mtime,
        wire,
    }
}

/// A listing of these files.
fn listing(files: &[Listed]) -> Listing {
    let mut l = Listing::default();
    for f in files {
        l.push(f).unwrap();
    }
    l
}

fn encode(stamps: &[Stamp; 2], whole: bool, files: &[Listed]) -> Vec<u8> {
    to_bytes(stamps, whole, &listing(files))
}

fn sample() -> Vec<Listed> {
    vec![
        file(Sub::Cur, "100.a.host:2,S", (-1, 0), 0, 0),
        file(Sub::New, "100.b.host", (1_700_000_000, 5), 10, 12),
        file(
            Sub::Cur,
            "odd name with spaces\nand an LF:2,",
            (1_700_000_000, 5),
            1,
            3,
        ),
        file(
            Sub::New,
            "zzz",
            (1_700_000_001, 999_999_999),
            u64::MAX,
            u64::MAX,
        ),
    ]
}

fn stamps() -> [Stamp; 2] {
    let st = |ino| Stamp {
        dev: 3,
        ino,
        size: 4096,
        mtime: (1_700_000_000, 1),
        ctime: (1_700_000_002, 2),
    };
    [st(10), st(11)]
}

#[test]
fn round_trip() {
    for whole in [false, true] {
        let files = sample();
        let got = decode(&encode(&stamps(), whole, &files)).unwrap();
        assert_eq!(
            got,
            Stored {
                stamps: stamps(),
                whole,
                files: listing(&files),
            }
        );
    }
    let empty = decode(&encode(&stamps(), true, &[])).unwrap();
    assert!(empty.files.is_empty() && empty.whole);
}

#[test]
fn only_the_files_kept_are_written() {
    let files = listing(&sample());
    let mut b = Vec::new();
    encode_to(&stamps(), false, &files, |i| i != 1, &mut b);
    let got = decode(&b).unwrap();
    let mut want = sample();
    want.remove(1);
    assert_eq!(got.files.to_vec(), want);
}

fn encode_to(
    s: &[Stamp; 2],
    whole: bool,
    f: &Listing,
    keep: impl Fn(usize) -> bool,
    out: &mut Vec<u8>,
) {
    super::encode(s, whole, f, keep, out).unwrap();
}

#[test]
fn every_damaged_byte_and_every_cut_is_noticed() {
    let bytes = encode(&stamps(), true, &sample());
    for i in 0..bytes.len() {
        for bit in [0x01, 0x20, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            assert_eq!(decode(&b), None, "byte {i} bit {bit:#x}");
        }
        assert_eq!(decode(&bytes[..i]), None, "cut at {i}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(decode(&longer), None);
}

/// `bytes` with its checksum made right again: what a forger (the user,
/// the only one who can write the file) or a careful bug could produce.
fn resummed(mut body: Vec<u8>) -> Vec<u8> {
    body.truncate(body.len() - SUM);
    let s = sum(&body);
    body.extend_from_slice(&s.to_le_bytes());
    body
}

#[test]
fn well_summed_nonsense_is_refused() {
    let good = encode(&stamps(), true, &sample());
    assert!(decode(&resummed(good.clone())).is_some());
    let first_entry = HEADER;
    type Change = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Change)> = vec![
        ("other version", Box::new(|b| b[14] = b'1')),
        ("whole flag 2", Box::new(|b| b[MAGIC.len()] = 2)),
        ("count too large", Box::new(|b| b[HEADER - 1] = 0xff)),
        ("count one more", Box::new(|b| b[HEADER - 4] += 1)),
        ("count one less", Box::new(|b| b[HEADER - 4] -= 1)),
        ("directory 2", Box::new(move |b| b[first_entry] = 2)),
        (
            "name length past the end",
            Box::new(move |b| b[first_entry + 2] = 0xff),
        ),
        (
            "nanoseconds of 10^9",
            Box::new(move |b| {
                let at = first_entry + FIXED - 4;
                b[at..at + 4].copy_from_slice(&1_000_000_000u32.to_le_bytes());
            }),
        ),
        (
            "wire size below the file's",
            Box::new(move |b| {
                // Entry 2 (len 10, wire 12): wire := 9.
                let e2 = first_entry + FIXED + "100.a.host:2,S".len();
                let at = e2 + 3 + 3 * 8;
                b[at..at + 8].copy_from_slice(&9u64.to_le_bytes());
            }),
        ),
    ];
    for (what, change) in cases {
        let mut b = good.clone();
        change(&mut b);
        assert_eq!(decode(&resummed(b)), None, "{what}");
    }
    for bad in [".hidden", "a/b", "nul\0", ""] {
        let mut files = sample();
        files[3].name = bad.into();
        let b = encode(&stamps(), true, &files);
        assert_eq!(decode(&b), None, "name {bad:?}");
    }
    // Out of session order (or twice): a full listing never gives that.
    let mut files = sample();
    files.swap(1, 2);
    assert_eq!(decode(&encode(&stamps(), true, &files)), None);
    let mut files = sample();
    files.push(files[3].clone());
    assert_eq!(decode(&encode(&stamps(), true, &files)), None);
}

#[test]
fn the_file_is_private_and_checked() {
    let d = TempDir::new("listing-cache");
    let p = d.path().join(NAME);
    let me = Dropped::current_for_tests();
    assert_eq!(load(&p, &me), None);
    let bytes = encode(&stamps(), true, &sample());
    store(&p, &stamps(), true, &listing(&sample()), |_| true).unwrap();
    let md = std::fs::symlink_metadata(&p).unwrap();
    assert_eq!(md.mode() & 0o777, 0o600);
    assert_eq!(load(&p, &me), decode(&bytes));
    assert_eq!(load(&p, &Dropped::for_tests(me.uid() + 1)), None, "foreign");
    let link = d.path().join("hard");
    std::fs::hard_link(&p, &link).unwrap();
    assert_eq!(load(&p, &me), None, "two links");
    std::fs::remove_file(&link).unwrap();
    let real = d.path().join("real");
    std::fs::rename(&p, &real).unwrap();
    std::os::unix::fs::symlink(&real, &p).unwrap();
    assert_eq!(load(&p, &me), None, "a symbolic link");
    store(&p, &stamps(), true, &listing(&sample()), |_| true).unwrap();
    assert!(
        !std::fs::symlink_metadata(&p)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    std::fs::remove_file(&p).unwrap();
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert_eq!(load(&p, &me), None, "a FIFO does not hang the login");
    // Version 1 (text) is not read as version 2.
    std::fs::remove_file(&p).unwrap();
    std::fs::write(
        &p,
        b"popper-sizes 1\nmd5 d41d8cd98f00b204e9800998ecf8427e\n",
    )
    .unwrap();
    assert_eq!(load(&p, &me), None);
}

#[test]
fn the_sum_fed_in_pieces_is_the_sum_of_the_whole() {
    let bytes: Vec<u8> = (0..100u8).map(|b| b.wrapping_mul(37)).collect();
    for len in [0, 1, 7, 8, 9, 64, 100] {
        let whole = sum(&bytes[..len]);
        for split in 0..=len {
            for step in [1, 3, 8, 13] {
                let mut s = Sum::new(len as u64);
                s.feed(&bytes[..split]);
                for c in bytes[split..len].chunks(step) {
                    s.feed(c);
                }
                assert_eq!(s.finish(), whole, "len {len} split {split} step {step}");
            }
        }
    }
}
