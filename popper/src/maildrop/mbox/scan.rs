//! One pass over an mbox spool: where each message is, its exact size, its
//! UID and whether it was read.
//!
//! The spool is read front to back in large chunks; lines are found with
//! `memchr`; memory is O(messages) — a line longer than [`LINE_PREFIX`]
//! bytes is streamed, keeping only its first bytes (which is all any rule
//! below looks at). The size of each message is computed with the same
//! [`HeaderState`] the wire encoder uses, so the announced size is exactly
//! the bytes RETR sends.
//!
//! COMPAT qpopper 2.53 (qpopper.md §9.2): a message starts at a valid
//! envelope line that is the first line of the file or follows an empty
//! line; a file whose first line starts with byte 0x01 is MMDF, where that
//! whole first line is the separator written before and after every
//! message. A non-empty file that is neither is refused (the caller answers
//! 2.53's "Unable to process From lines" text).
//!
//! DEVIATION: lines are never cut into 1023-byte fragments, so a long line
//! cannot make a `From ` in the middle of a line look like an envelope
//! (CVE-2000-0320 class spoofing), and an empty line may be LF or CRLF.

use std::io;

use super::envelope::is_envelope;
use super::render::{HeaderAction, HeaderState, starts_with_ci};
use super::uid::{UidHasher, x_uidl_value};
use pop3_core::index::{Uid, make_unique};

pub use crate::limits::LINE_PREFIX;
use crate::limits::SCAN_CHUNK as CHUNK;

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

/// How messages are separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `From ` envelope lines.
    Mbox,
    /// MMDF: this separator line (with its LF) before and after each message.
    Mmdf(Vec<u8>),
}

/// What the scan learns of a message for the session's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgMeta {
    /// Bytes RETR sends for this message (CRLF line ends, before
    /// dot-stuffing) **without** the `X-UIDL:` line popper inserts
    /// (`render.rs` adds it once the UID is final).
    pub size_without_uidl: u64,
    /// The UID found or derived (`X-UIDL:` header or 2.53 MD5), before the
    /// session makes the spool's UIDs unique.
    pub uid: Uid,
    /// True when the message was already read when the session began
    /// (a `Status:` header containing `R`).
    pub seen: bool,
}

/// Where one message lies in the spool, and what the session needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMsg {
    /// Offset of the envelope (or opening MMDF separator) line.
    pub start: u64,
    /// Offset of the first byte after that line.
    pub content: u64,
    /// Offset of the empty line that ends the header (or `end` when the
    /// message has no such line): the header is `content..hdr_end`.
    pub hdr_end: u64,
    /// End of the message content (the next envelope, the closing MMDF
    /// separator, or the end of the scanned spool).
    pub end: u64,
    /// End of everything that belongs to this message in the file (for
    /// MMDF: after the closing separator and anything up to the next one).
    pub next: u64,
    /// Size, UID and read flag for the index.
    pub meta: MsgMeta,
    /// Hash of the envelope line, to notice a spool changed under us.
    pub sep_hash: u64,
}

/// The result of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Separator style.
    pub format: Format,
    /// Messages in file order.
    pub msgs: Vec<MboxMsg>,
    /// Bytes scanned: the spool's length at login. Anything after this was
    /// delivered during the session.
    pub len: u64,
}

impl Scan {
    /// A scan of these messages, their UIDs made unique (as the session
    /// shows them and the update writes them back: see
    /// [`pop3_core::index::make_unique`]).
    pub fn new(format: Format, mut msgs: Vec<MboxMsg>, len: u64) -> Scan {
        make_unique(msgs.iter_mut().map(|m| &mut m.meta.uid));
        // Held for the whole session: no spare capacity.
        msgs.shrink_to_fit();
        Scan { format, msgs, len }
    }

    /// The scan of a spool that does not exist.
    pub fn empty() -> Scan {
        Scan {
            format: Format::Mbox,
            msgs: Vec::new(),
            len: 0,
        }
    }
}

/// Why a scan failed.
#[derive(Debug)]
pub enum ScanError {
    /// The first line is not a separator.
    BadEnvelope,
    /// Reading failed.
    Io(io::Error),
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
    fn wire_len(&self) -> u64 {
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

/// A message being scanned.
struct Current {
    start: u64,
    content: u64,
    hdr_end: Option<u64>,
    in_header: bool,
    headers: HeaderState,
    size: u64,
    hasher: UidHasher,
    first_x_uidl: Option<Option<Uid>>,
    seen: bool,
    sep_hash: u64,
}

impl Current {
    fn new(start: u64, sep: &Line<'_>) -> Self {
        let mut hasher = UidHasher::default();
        hasher.envelope(sep.prefix, sep.whole && sep.has_lf);
        Current {
            start,
            content: sep.end(),
            hdr_end: None,
            in_header: true,
            headers: HeaderState::default(),
            size: 0,
            hasher,
            first_x_uidl: None,
            seen: false,
            sep_hash: sep_hash(sep.prefix),
        }
    }

    fn add(&mut self, line: &Line<'_>) {
        if self.in_header {
            let content = line.content();
            match self.headers.line(content, line.is_empty()) {
                HeaderAction::Drop => {
                    if self.first_x_uidl.is_none() && starts_with_ci(content, b"x-uidl:") {
                        self.first_x_uidl = Some(x_uidl_value(content));
                    }
                    return;
                }
                HeaderAction::EndOfHeader => {
                    self.in_header = false;
                    self.hdr_end = Some(line.offset);
                }
                HeaderAction::Emit | HeaderAction::UidThenEmit => {
                    if starts_with_ci(content, b"status:") && content.contains(&b'R') {
                        self.seen = true;
                    }
                    self.hasher.header(line.prefix, line.whole && line.has_lf);
                }
            }
        }
        self.size += line.wire_len();
    }

    fn finish(self, end: u64, next: u64) -> MboxMsg {
        let uid = match self.first_x_uidl {
            Some(Some(uid)) => uid,
            _ => self.hasher.finish(),
        };
        MboxMsg {
            start: self.start,
            content: self.content,
            hdr_end: self.hdr_end.unwrap_or(end),
            end,
            next,
            meta: MsgMeta {
                size_without_uidl: self.size,
                uid,
                seen: self.seen,
            },
            sep_hash: self.sep_hash,
        }
    }
}

/// FNV-1a of a separator line's bytes (as far as the scanner keeps them).
pub fn sep_hash(line: &[u8]) -> u64 {
    line.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Scans `src` from offset 0 to `len`.
pub fn scan<R: ReadAt + ?Sized>(src: &R, len: u64) -> Result<Scan, ScanError> {
    let mut lines = Lines::new(src, 0, len, CHUNK);
    let mut msgs = Vec::new();
    let Some(first) = lines.next_line().map_err(ScanError::Io)? else {
        return Ok(Scan {
            format: Format::Mbox,
            msgs,
            len: 0,
        });
    };
    if first.prefix.first() == Some(&0x01) {
        let mut sep = first.prefix.to_vec();
        sep.push(b'\n');
        let sep_line = first.prefix.to_vec();
        let mut cur = Some(Current::new(first.offset, &first));
        while let Some(line) = lines.next_line().map_err(ScanError::Io)? {
            let is_sep = line.whole && line.prefix == sep_line.as_slice();
            match cur.take() {
                Some(c) if is_sep => {
                    msgs.push(c.finish(line.offset, line.end()));
                }
                Some(mut c) => {
                    c.add(&line);
                    cur = Some(c);
                }
                None if is_sep => cur = Some(Current::new(line.offset, &line)),
                None => {
                    // Between messages: belongs to the previous message's extent.
                    if let Some(prev) = msgs.last_mut() {
                        prev.next = line.end();
                    }
                }
            }
        }
        if let Some(c) = cur {
            msgs.push(c.finish(len, len));
        }
        return Ok(Scan::new(Format::Mmdf(sep), msgs, len));
    }
    if !(first.whole && is_envelope(first.prefix)) {
        return Err(ScanError::BadEnvelope);
    }
    let mut cur = Current::new(first.offset, &first);
    let mut prev_empty = false;
    while let Some(line) = lines.next_line().map_err(ScanError::Io)? {
        if prev_empty && line.whole && is_envelope(line.prefix) {
            let done = std::mem::replace(&mut cur, Current::new(line.offset, &line));
            msgs.push(done.finish(line.offset, line.offset));
            prev_empty = false;
            continue;
        }
        prev_empty = line.is_empty();
        cur.add(&line);
    }
    msgs.push(cur.finish(len, len));
    Ok(Scan::new(Format::Mbox, msgs, len))
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
