//! Lines of a spool, read front to back in large chunks — and, where no
//! line needs looking at (a message body), whole stretches skipped at
//! memory speed up to the next line that may separate messages.
//!
//! Memory is O(1): a line longer than [`LINE_PREFIX`] bytes is streamed,
//! keeping only its first bytes (which is all any rule looks at).

use std::io;

use memchr::memmem::Finder;

use crate::limits::LINE_PREFIX;

/// Random-access reading, implemented for files and, in tests, for bytes.
pub trait ReadAt {
    /// Reads at `offset` into `buf`; 0 at end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// One line as the scanner sees it.
pub(crate) struct Line<'a> {
    /// File offset of its first byte.
    pub offset: u64,
    /// The line without LF if it is at most LINE_PREFIX bytes, else its
    /// first LINE_PREFIX bytes.
    pub prefix: &'a [u8],
    /// True when `prefix` is the whole line.
    pub whole: bool,
    /// Length without the LF.
    pub len: u64,
    /// It ended with LF (false only for a last line at end of file).
    pub has_lf: bool,
    /// The byte before the LF (or the last byte) is CR.
    pub cr: bool,
}

impl Line<'_> {
    /// Bytes sent for this line: content without one CR, plus CRLF.
    pub fn wire_len(&self) -> u64 {
        self.len - u64::from(self.cr) + 2
    }

    /// An empty line: just LF, or CR LF (or a lone CR at the very end).
    pub fn is_empty(&self) -> bool {
        self.len == u64::from(self.cr)
    }

    /// The content used for classification (without a trailing CR when whole).
    pub fn content(&self) -> &[u8] {
        if self.whole && self.cr {
            &self.prefix[..self.prefix.len() - 1]
        } else {
            self.prefix
        }
    }

    /// Offset just after the line (after its LF).
    pub fn end(&self) -> u64 {
        self.offset + self.len + u64::from(self.has_lf)
    }
}

/// Buffered line reader over a [`ReadAt`] between two offsets.
pub(crate) struct Lines<'r, R: ?Sized> {
    src: &'r R,
    limit: u64,
    buf: Vec<u8>,
    /// File offset of buf[0].
    base: u64,
    pos: usize,
    filled: usize,
    long_prefix: Vec<u8>,
}

impl<'r, R: ReadAt + ?Sized> Lines<'r, R> {
    /// Lines of `src` from `start` (a line start) up to `limit`, read
    /// `chunk` bytes at a time.
    pub fn new(src: &'r R, start: u64, limit: u64, chunk: usize) -> Self {
        Lines {
            src,
            limit,
            buf: vec![0; chunk.max(2 * LINE_PREFIX)],
            base: start,
            pos: 0,
            filled: 0,
            long_prefix: Vec::new(),
        }
    }

    /// Refills the buffer keeping the unconsumed tail; false at the limit.
    fn refill(&mut self) -> io::Result<bool> {
        let keep = self.filled - self.pos;
        self.buf.copy_within(self.pos..self.filled, 0);
        self.base += self.pos as u64;
        self.pos = 0;
        self.filled = keep;
        let at = self.base + keep as u64;
        let want = usize::try_from(self.limit.saturating_sub(at))
            .unwrap_or(usize::MAX)
            .min(self.buf.len() - keep);
        if want == 0 {
            return Ok(false);
        }
        loop {
            match self.src.read_at(&mut self.buf[keep..keep + want], at) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.filled += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line, or `None` at the limit.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            let avail = &self.buf[self.pos..self.filled];
            if let Some(i) = memchr::memchr(b'\n', avail) {
                let offset = self.base + self.pos as u64;
                let start = self.pos;
                self.pos += i + 1;
                let cr = i > 0 && self.buf[start + i - 1] == b'\r';
                // A line longer than LINE_PREFIX is seen by its prefix only,
                // even when it happens to be whole in the buffer, so that
                // results never depend on where reads and chunks end.
                return Ok(Some(Line {
                    offset,
                    prefix: &self.buf[start..start + i.min(LINE_PREFIX)],
                    whole: i <= LINE_PREFIX,
                    len: i as u64,
                    has_lf: true,
                    cr,
                }));
            }
            if avail.len() > LINE_PREFIX {
                return self.long_line().map(Some);
            }
            if !self.refill()? {
                // End of the scanned region: a last line without LF, if any.
                if self.pos == self.filled {
                    return Ok(None);
                }
                let offset = self.base + self.pos as u64;
                let start = self.pos;
                let n = self.filled - self.pos;
                self.pos = self.filled;
                let cr = self.buf[self.filled - 1] == b'\r';
                return Ok(Some(Line {
                    offset,
                    prefix: &self.buf[start..start + n],
                    whole: true,
                    len: n as u64,
                    has_lf: false,
                    cr,
                }));
            }
        }
    }

    /// A line longer than LINE_PREFIX: keep its prefix, stream the rest.
    fn long_line(&mut self) -> io::Result<Line<'_>> {
        let offset = self.base + self.pos as u64;
        self.long_prefix.clear();
        self.long_prefix
            .extend_from_slice(&self.buf[self.pos..self.pos + LINE_PREFIX]);
        let mut len = 0u64;
        let mut last = 0u8;
        loop {
            let avail = &self.buf[self.pos..self.filled];
            if let Some(i) = memchr::memchr(b'\n', avail) {
                if i > 0 {
                    last = avail[i - 1];
                }
                len += i as u64;
                self.pos += i + 1;
                return Ok(Line {
                    offset,
                    prefix: &self.long_prefix,
                    whole: false,
                    len,
                    has_lf: true,
                    cr: last == b'\r',
                });
            }
            if let Some(&b) = avail.last() {
                last = b;
            }
            len += avail.len() as u64;
            self.pos = self.filled;
            if !self.refill()? {
                return Ok(Line {
                    offset,
                    prefix: &self.long_prefix,
                    whole: false,
                    len,
                    has_lf: false,
                    cr: last == b'\r',
                });
            }
        }
    }
}

/// What [`Lines::seek`] looks for: lines starting with `needle[1..]`
/// (`needle` is an LF and the start of a separator line).
pub(crate) struct Seek {
    finder: Finder<'static>,
    /// Only lines right after an empty line count (mbox envelopes).
    after_empty: bool,
}

impl Seek {
    /// Lines starting with `start`; with `after_empty`, only those that
    /// follow an empty line (LF or CR LF).
    pub fn new(start: &[u8], after_empty: bool) -> Self {
        let needle = [b"\n", start].concat();
        Seek {
            finder: Finder::new(&needle).into_owned(),
            after_empty,
        }
    }

    /// The start the lines are sought by (without the LF).
    fn start(&self) -> &[u8] {
        &self.finder.needle()[1..]
    }
}

impl<R: ReadAt + ?Sized> Lines<'_, R> {
    /// File offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Skips from a line start to the next line that `seek` finds — a
    /// candidate the caller classifies with [`Lines::next_line`] — or to
    /// the limit. The line at the start is a candidate when `first` is
    /// true. Returns the bytes the skipped lines come to on the wire (each
    /// line's content without one CR before its LF, plus CRLF, as
    /// [`Line::wire_len`]): their length plus one for each LF not after a
    /// CR, plus the CR LF a last line without LF gets.
    ///
    /// Why: a body is most of a spool and no rule looks inside its lines;
    /// one vectorised search and one vectorised count over each chunk are
    /// what keep the scan at memory speed.
    pub fn seek(&mut self, seek: &Seek, first: bool) -> io::Result<u64> {
        let start_len = seek.start().len();
        if first {
            while self.filled - self.pos < start_len && self.refill()? {}
            if self.buf[self.pos..self.filled].starts_with(seek.start()) {
                return Ok(0);
            }
        }
        let mut run = Run {
            size: 0,
            last: [b'\n', b'\n'],
        };
        loop {
            let hay = &self.buf[self.pos..self.filled];
            if let Some(i) = seek.finder.find(hay) {
                // The candidate line starts after the LF at `lf`.
                let lf = self.pos + i;
                // The line the LF ends is empty when the byte before the
                // LF, or the two bytes before it, end the line before: the
                // bytes before `pos` are the last ones skipped.
                let back = |j: usize| match (lf - self.pos).checked_sub(j) {
                    Some(_) => self.buf[lf - j],
                    None => run.last[j - (lf - self.pos) - 1],
                };
                let empty_before = back(1) == b'\n' || (back(1) == b'\r' && back(2) == b'\n');
                run.take(&self.buf[self.pos..=lf]);
                self.pos = lf + 1;
                if empty_before || !seek.after_empty {
                    return Ok(run.size);
                }
                continue;
            }
            // No candidate starts in `hay`; one may start in its last
            // `needle - 1` bytes and end in the next read.
            let keep = seek.finder.needle().len() - 1;
            let safe = self.filled.saturating_sub(keep).max(self.pos);
            run.take(&self.buf[self.pos..safe]);
            self.pos = safe;
            if !self.refill()? {
                run.take(&self.buf[self.pos..self.filled]);
                self.pos = self.filled;
                // A last line without LF is sent with a CRLF (its CR, if
                // it ends in one, taken as the line end).
                if run.last[0] != b'\n' {
                    run.size += 2 - u64::from(run.last[0] == b'\r');
                }
                return Ok(run.size);
            }
        }
    }
}

/// Bytes skipped by [`Lines::seek`]: their wire size so far and the last
/// two of them (`last[0]` the very last), LF before the first.
struct Run {
    size: u64,
    last: [u8; 2],
}

impl Run {
    fn take(&mut self, b: &[u8]) {
        let Some(&end) = b.last() else {
            return;
        };
        self.size += b.len() as u64 + super::crlf::bare_lfs(self.last[0], b);
        self.last = [
            end,
            if b.len() > 1 {
                b[b.len() - 2]
            } else {
                self.last[0]
            },
        ];
    }
}
