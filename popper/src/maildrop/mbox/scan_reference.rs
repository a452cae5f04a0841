//! The scan as it was before it skipped bodies (line by line, every line
//! classified), kept as the reference the fast scan is tested against:
//! `scan_diff_tests.rs` checks that both give the same [`Scan`] on every
//! spool it makes. Test-only.

use super::super::envelope::is_envelope;
use super::super::lines::{Line, Lines, ReadAt};
use super::super::render::{HeaderAction, HeaderState, starts_with_ci};
use super::super::uid::{UidHasher, x_uidl_value};
use super::{Format, MboxMsg, MsgMeta, Scan, ScanError, sep_hash};
use crate::limits::SCAN_CHUNK as CHUNK;
use pop3_core::index::Uid;

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

/// Scans `src` (line by line) from offset 0 to `len`.
pub fn scan_reference<R: ReadAt + ?Sized>(src: &R, len: u64) -> Result<Scan, ScanError> {
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
