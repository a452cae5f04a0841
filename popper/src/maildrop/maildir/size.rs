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
//! Counting reads every byte of every message, so the sizes are kept for
//! the next login in the listing cache (`cache.rs`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildrop::maildir::fixture::TempDir;
    use pop3_core::wire::measure;

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
}
