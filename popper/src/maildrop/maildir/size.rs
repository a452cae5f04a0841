//! Exact message sizes, and the cache that spares reading every message at
//! every login.
//!
//! DEVIATION: qmail-pop3d reports a Maildir file's `st_size`, in which a
//! line end is one byte, while RETR sends two; popper reports what RETR
//! sends (before dot-stuffing): each line without one CR before its LF,
//! plus CRLF — [`pop3_core::wire::measure`], counted here by [`Counter`]
//! a chunk at a time, so a message is never held whole. `,W=` in a name
//! (Courier's and Dovecot's wire size) is never trusted: any program can
//! name a file.
//!
//! Counting reads every byte of every message, so the sizes are kept in
//! `Maildir/.popper-sizes` (setting `size_index`; a dot-file in the
//! Maildir's root, which qmail and Dovecot ignore): one line per message,
//! `INODE ST_SIZE MTIME MTIME_NSEC WIRE_SIZE BASE_NAME`, after a magic line
//! and before an MD5 of everything before it. An entry is used only for a
//! file with that base name, inode, size and mtime — a message's content is
//! never changed in place in a Maildir, and a rewrite gets a new inode or
//! mtime. The file is the user's own (written by popper as the user, 0600,
//! never through a link, by a temporary name and a rename); one that is
//! not a regular file of the user's with one link, is too large, or does
//! not check out, is ignored (every size counted) and rewritten. A cache
//! lost in a crash only costs the next login the counting, so it is not
//! fsynced.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use md5::{Digest, Md5};

use crate::limits::MAX_SIZE_CACHE;
use crate::maildrop::own_file;
use crate::privilege::Dropped;

/// The cache's file name in the Maildir's root.
pub const NAME: &str = ".popper-sizes";

/// Its first line; the number is the layout's version.
const MAGIC: &[u8] = b"popper-sizes 1\n";

/// The last line's start: the MD5 of everything before it follows.
const SUM: &[u8] = b"md5 ";

/// The wire size of a message, counted a chunk at a time, split anywhere:
/// equal to [`pop3_core::wire::measure`] of the bytes fed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counter {
    bytes: u64,
    lfs: u64,
    /// LFs with a CR right before them (that CR is not sent twice).
    crlfs: u64,
    last: Option<u8>,
}

impl Counter {
    /// Counts the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        for i in memchr::memchr_iter(b'\n', chunk) {
            self.lfs += 1;
            let before = match i {
                0 => self.last,
                _ => Some(chunk[i - 1]),
            };
            if before == Some(b'\r') {
                self.crlfs += 1;
            }
        }
        self.bytes += chunk.len() as u64;
        if let Some(&b) = chunk.last() {
            self.last = Some(b);
        }
    }

    /// The size so far, the last line closed as the encoder closes it.
    pub fn total(&self) -> u64 {
        // Each LF gains a CR unless it had one; a last line without LF
        // gains CRLF, or only the LF after a last CR.
        let tail = match self.last {
            None | Some(b'\n') => 0,
            Some(b'\r') => 1,
            Some(_) => 2,
        };
        self.bytes + self.lfs - self.crlfs + tail
    }
}

/// Counts the first `len` bytes of `file`, `buf.len()` at a time. Returns
/// the bytes there were (fewer than `len` for a file cut meanwhile) and
/// their wire size.
pub fn measure_file(file: &File, len: u64, buf: &mut [u8]) -> io::Result<(u64, u64)> {
    let mut c = Counter::default();
    let mut at = 0;
    while at < len && !buf.is_empty() {
        let want = (len - at).min(buf.len() as u64) as usize;
        match file.read_at(&mut buf[..want], at) {
            Ok(0) => break,
            Ok(n) => {
                c.feed(&buf[..n]);
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((at, c.total()))
}

/// What the cache knows of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// `st_size`.
    pub len: u64,
    /// `st_mtime` and its nanoseconds.
    pub mtime: (i64, i64),
    /// The wire size.
    pub wire: u64,
}

/// The sizes a cache file holds, by base name and inode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cache {
    map: HashMap<(Box<[u8]>, u64), Known>,
}

impl Cache {
    /// The wire size of the file `base` with inode `ino`, if the cache
    /// knows it with this size and mtime.
    pub fn get(&self, base: &[u8], ino: u64, len: u64, mtime: (i64, i64)) -> Option<u64> {
        self.map
            .get(&(Box::from(base), ino))
            .filter(|k| k.len == len && k.mtime == mtime)
            .map(|k| k.wire)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when it has none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The cache file's bytes for these files (base name, inode, what is
/// known). A base name with an LF cannot be written and is left out
/// (counted again at each login).
pub fn encode<'a>(items: impl Iterator<Item = (&'a [u8], u64, Known)>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (base, ino, k) in items {
        if base.contains(&b'\n') {
            continue;
        }
        out.extend_from_slice(
            format!("{ino} {} {} {} {} ", k.len, k.mtime.0, k.mtime.1, k.wire).as_bytes(),
        );
        out.extend_from_slice(base);
        out.push(b'\n');
    }
    let sum = hex(&Md5::digest(&out));
    out.extend_from_slice(SUM);
    out.extend_from_slice(sum.as_bytes());
    out.push(b'\n');
    out
}

/// The cache in `bytes`, if they are one exactly as [`encode`] writes it.
pub fn decode(bytes: &[u8]) -> Option<Cache> {
    let body_len = bytes.len().checked_sub(SUM.len() + 32 + 1)?;
    let (body, footer) = bytes.split_at(body_len);
    let sum = footer.strip_prefix(SUM)?.strip_suffix(b"\n")?;
    if sum != hex(&Md5::digest(body)).as_bytes() {
        return None;
    }
    let lines = body.strip_prefix(MAGIC)?;
    let mut map = HashMap::new();
    for line in lines.split_inclusive(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\n")?;
        let mut f = line.splitn(6, |b| *b == b' ');
        let mut num = || std::str::from_utf8(f.next()?).ok()?.parse::<i64>().ok();
        let (ino, len, ms, mns, wire) = (num()?, num()?, num()?, num()?, num()?);
        let base = f.next().filter(|b| !b.is_empty())?;
        let known = Known {
            len: u64::try_from(len).ok()?,
            mtime: (ms, mns),
            wire: u64::try_from(wire).ok()?,
        };
        map.insert((Box::from(base), u64::try_from(ino).ok()?), known);
    }
    Some(Cache { map })
}

/// The cache at `path`, if it is a regular file of `owner`'s with one link,
/// not reached through a symbolic link, not larger than
/// [`MAX_SIZE_CACHE`], and well formed. `None` means: count every size.
pub fn load(path: &Path, owner: &Dropped) -> Option<Cache> {
    decode(&own_file::read(path, owner, MAX_SIZE_CACHE)?)
}

/// Writes `bytes` as the cache at `path`, replacing it whole
/// (`own_file.rs`): a symbolic link or a foreign file there is replaced,
/// never followed.
pub fn store(path: &Path, bytes: &[u8]) -> io::Result<()> {
    own_file::replace(path, bytes)
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildrop::maildir::fixture::TempDir;
    use pop3_core::wire::measure;
    use std::os::unix::fs::MetadataExt;

    const MESSAGES: &[&[u8]] = &[
        b"",
        b"\n",
        b"\r",
        b"\r\n",
        b"\r\r\n",
        b"Subject: lf\n\nbody\n",
        b"Subject: crlf\r\n\r\nbody\r\n",
        b"Subject: mixed\r\n\nbody\r\nmore\n\rcr\r",
        b"Subject: no lf at the end\n\nlast line",
        b"Subject: x\n\n.dot\n..\n",
        b"a\rb\rc\n\n\n",
    ];

    #[test]
    fn counts_what_measure_counts_however_split() {
        for msg in MESSAGES {
            let want = measure(msg);
            for split in 0..=msg.len() {
                let mut c = Counter::default();
                c.feed(&msg[..split]);
                c.feed(&msg[split..]);
                assert_eq!(c.total(), want, "{msg:?} split {split}");
            }
            for step in 1..4 {
                let mut c = Counter::default();
                for chunk in msg.chunks(step) {
                    c.feed(chunk);
                }
                assert_eq!(c.total(), want, "{msg:?} step {step}");
            }
        }
    }

    #[test]
    fn files_are_measured_in_chunks() {
        let d = TempDir::new("size");
        let p = d.path().join("m");
        for msg in MESSAGES {
            std::fs::write(&p, msg).unwrap();
            let f = File::open(&p).unwrap();
            let len = msg.len() as u64;
            for chunk in [1, 3, 64 << 10] {
                let mut buf = vec![0; chunk];
                assert_eq!(
                    measure_file(&f, len, &mut buf).unwrap(),
                    (len, measure(msg))
                );
            }
            // Cut under us: the bytes there are.
            let mut buf = vec![0; 4];
            assert_eq!(measure_file(&f, len + 5, &mut buf).unwrap().0, len);
        }
    }

    fn sample() -> Vec<(&'static [u8], u64, Known)> {
        vec![
            (
                b"1.a.host",
                7,
                Known {
                    len: 10,
                    mtime: (1_700_000_000, 5),
                    wire: 12,
                },
            ),
            (
                b"odd name with spaces",
                8,
                Known {
                    len: 0,
                    mtime: (-1, 0),
                    wire: 0,
                },
            ),
            (
                b"bad\nname",
                9,
                Known {
                    len: 1,
                    mtime: (1, 1),
                    wire: 3,
                },
            ),
        ]
    }

    #[test]
    fn cache_round_trip_and_damage() {
        let bytes = encode(sample().into_iter());
        let c = decode(&bytes).unwrap();
        assert_eq!(c.len(), 2, "the name with an LF is left out");
        assert_eq!(c.get(b"1.a.host", 7, 10, (1_700_000_000, 5)), Some(12));
        assert_eq!(c.get(b"1.a.host", 8, 10, (1_700_000_000, 5)), None, "inode");
        assert_eq!(c.get(b"1.a.host", 7, 11, (1_700_000_000, 5)), None, "size");
        assert_eq!(c.get(b"1.a.host", 7, 10, (1_700_000_000, 6)), None, "mtime");
        assert_eq!(c.get(b"odd name with spaces", 8, 0, (-1, 0)), Some(0));
        assert_eq!(c.get(b"bad\nname", 9, 1, (1, 1)), None);
        // Every change of a byte, and every cut, is noticed.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert_eq!(decode(&b), None, "byte {i}");
            assert_eq!(decode(&bytes[..i]), None, "cut at {i}");
        }
        assert!(decode(&encode(std::iter::empty())).unwrap().is_empty());
    }

    #[test]
    fn cache_file_is_private_and_checked() {
        let d = TempDir::new("cache");
        let p = d.path().join(NAME);
        let me = Dropped::current_for_tests();
        assert_eq!(load(&p, &me), None);
        let bytes = encode(sample().into_iter());
        store(&p, &bytes).unwrap();
        let md = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(md.mode() & 0o777, 0o600);
        assert_eq!(load(&p, &me), decode(&bytes));
        assert!(load(&p, &me).is_some());
        assert_eq!(load(&p, &Dropped::for_tests(me.uid() + 1)), None);
        // Two links: refused.
        let link = d.path().join("hard");
        std::fs::hard_link(&p, &link).unwrap();
        assert_eq!(load(&p, &me), None);
        std::fs::remove_file(&link).unwrap();
        // Through a symbolic link: refused; the store replaces the link.
        let real = d.path().join("real");
        std::fs::rename(&p, &real).unwrap();
        std::os::unix::fs::symlink(&real, &p).unwrap();
        assert_eq!(load(&p, &me), None);
        store(&p, &encode(std::iter::empty())).unwrap();
        assert!(
            !std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), bytes, "the target untouched");
        assert!(load(&p, &me).unwrap().is_empty());
        // A FIFO does not hang the login.
        std::fs::remove_file(&p).unwrap();
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(load(&p, &me), None);
    }
}
