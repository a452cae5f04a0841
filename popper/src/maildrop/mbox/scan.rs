//! One pass over an mbox spool: where each message is, its exact size, its
//! UID and whether it was read.
//!
//! The spool is read front to back in large chunks (`lines.rs`); memory is
//! O(messages). Header lines are classified one by one, with the same
//! [`HeaderState`] the wire encoder uses, so the announced size is exactly
//! the bytes RETR sends; bodies are only searched for the next separator
//! and counted (`crlf.rs`), which keeps a warm scan at memory speed.
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
pub use super::lines::ReadAt;
use super::lines::Seek;
pub(crate) use super::lines::{Line, Lines};
use super::render::{HeaderAction, HeaderState, starts_with_ci};
use super::uid::{UidHasher, x_uidl_value};
use pop3_core::index::{Uid, make_unique};

pub use crate::limits::LINE_PREFIX;
use crate::limits::SCAN_CHUNK as CHUNK;

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
///
/// Header lines are read one by one (they decide the UID, the read flag
/// and which lines the wire form drops); a body is skipped with
/// [`Lines::seek`] to the next line that may be a separator, so its bytes
/// are only searched and counted, never split into lines.
pub fn scan<R: ReadAt + ?Sized>(src: &R, len: u64) -> Result<Scan, ScanError> {
    let mut lines = Lines::new(src, 0, len, CHUNK);
    let Some(first) = lines.next_line().map_err(ScanError::Io)? else {
        return Ok(Scan {
            format: Format::Mbox,
            msgs: Vec::new(),
            len: 0,
        });
    };
    if first.prefix.first() == Some(&0x01) {
        let sep_line = first.prefix.to_vec();
        let cur = Current::new(first.offset, &first);
        return scan_mmdf(lines, cur, sep_line, len);
    }
    if !(first.whole && is_envelope(first.prefix)) {
        return Err(ScanError::BadEnvelope);
    }
    let cur = Current::new(first.offset, &first);
    let msgs = scan_mbox(lines, cur, len)?;
    Ok(Scan::new(Format::Mbox, msgs, len))
}

/// The messages of an mbox spool from offset `from`, which must be the
/// start of a message (an envelope line that is the first of the file or
/// follows an empty line), to `len`: what [`scan`] finds there, before
/// UIDs are made unique. The scan index (`cache.rs`) scans only the part
/// of a spool it has not indexed this way: a scan's state at a message
/// start is fresh (nothing before an envelope line decides anything
/// after it), so the result is exactly a full scan's from there.
pub fn scan_tail<R: ReadAt + ?Sized>(
    src: &R,
    from: u64,
    len: u64,
) -> Result<Vec<MboxMsg>, ScanError> {
    let mut lines = Lines::new(src, from, len, CHUNK);
    let cur = match lines.next_line().map_err(ScanError::Io)? {
        Some(first) if first.whole && is_envelope(first.prefix) => {
            Current::new(first.offset, &first)
        }
        _ => return Err(ScanError::BadEnvelope),
    };
    scan_mbox(lines, cur, len)
}

/// The mbox messages from `cur`, the message whose envelope line was just
/// read, to `len`.
fn scan_mbox<R: ReadAt + ?Sized>(
    mut lines: Lines<'_, R>,
    mut cur: Current,
    len: u64,
) -> Result<Vec<MboxMsg>, ScanError> {
    let seek = Seek::new(b"From ", true);
    let mut msgs = Vec::new();
    let mut prev_empty = false;
    loop {
        if !cur.in_header {
            cur.size += lines.seek(&seek, prev_empty).map_err(ScanError::Io)?;
            // A line found follows an empty line.
            prev_empty = true;
        }
        let Some(line) = lines.next_line().map_err(ScanError::Io)? else {
            break;
        };
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
    Ok(msgs)
}

/// The rest of an MMDF spool after its first separator `sep_line`, which
/// opened `cur`: messages run from one separator line to the next; what
/// lies between a closing separator and the next opening one belongs to
/// the message before.
fn scan_mmdf<R: ReadAt + ?Sized>(
    mut lines: Lines<'_, R>,
    cur: Current,
    sep_line: Vec<u8>,
    len: u64,
) -> Result<Scan, ScanError> {
    let seek = Seek::new(&sep_line, false);
    let mut msgs: Vec<MboxMsg> = Vec::new();
    let mut cur = Some(cur);
    loop {
        match cur.as_mut() {
            Some(c) if c.in_header => {}
            Some(c) => c.size += lines.seek(&seek, true).map_err(ScanError::Io)?,
            None => {
                lines.seek(&seek, true).map_err(ScanError::Io)?;
                if let Some(prev) = msgs.last_mut() {
                    prev.next = lines.offset();
                }
            }
        }
        let Some(line) = lines.next_line().map_err(ScanError::Io)? else {
            break;
        };
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
                if let Some(prev) = msgs.last_mut() {
                    prev.next = line.end();
                }
            }
        }
    }
    if let Some(c) = cur {
        msgs.push(c.finish(len, len));
    }
    let mut sep = sep_line;
    sep.push(b'\n');
    Ok(Scan::new(Format::Mmdf(sep), msgs, len))
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "scan_reference.rs"]
pub(crate) mod reference;

#[cfg(test)]
#[path = "scan_diff_tests.rs"]
mod diff_tests;
