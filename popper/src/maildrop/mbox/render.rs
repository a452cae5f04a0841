//! qpopper's wire form of a stored mbox message: what RETR and TOP send
//! of it, on top of the protocol core's CRLF / dot-stuffing / TOP encoder.
//!
//! COMPAT qpopper 2.53 (qpopper.md §3.4, §9.8): the envelope is not sent
//! (the caller passes only what follows it); `Content-Length:` and every
//! `X-UIDL:` header are dropped; one `X-UIDL: <uid>` line is inserted before
//! the first `Status:` header, or else before the blank line that ends the
//! header.
//!
//! DEVIATION: the continuation lines of a dropped header are dropped with it
//! (2.53 sent them, gluing them to the previous header); long lines are not
//! cut into 1023-byte fragments (the core's encoder does the rest: one CRLF
//! per line, a last line closed).
//!
//! [`Render`] streams like the encoder it feeds: chunks of any size, split
//! anywhere, O(1) state. [`HeaderState`] is the one classification both it
//! and the scan's size computation use, and [`wire_size`] adds the inserted
//! line, so the size LIST, STAT and `+OK n octets` announce is exactly what
//! RETR sends.

use std::io;

use pop3_core::index::Uid;
use pop3_core::maildrop::{Output, SendError};
use pop3_core::wire::{Encoder, lines};

use super::scan::ReadAt;

/// Longest header-name prefix that matters for classification
/// (`content-length:` is 15 bytes).
const CLASSIFY_LEN: usize = 15;

/// Bytes of the `X-UIDL: ` prefix and CRLF around an inserted UID.
pub const UIDL_LINE_OVERHEAD: u64 = 10;

/// What RETR sends for a message whose lines come to `size_without_uidl`
/// octets (the scan counts them) once `uid`'s line is inserted.
pub fn wire_size(size_without_uidl: u64, uid: &Uid) -> u64 {
    size_without_uidl.saturating_add(UIDL_LINE_OVERHEAD + uid.len() as u64)
}

/// What to do with one header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderAction {
    /// Send the line.
    Emit,
    /// Send the `X-UIDL:` line first, then this line (a `Status:` header).
    UidThenEmit,
    /// Do not send the line (a dropped header or its continuation).
    Drop,
    /// The blank line ending the header: send the `X-UIDL:` line if not yet
    /// sent, then the blank line; the body follows.
    EndOfHeader,
}

/// Header-phase state shared by the renderer and every size computation, so
/// that announced sizes and sent bytes cannot disagree.
#[derive(Debug, Clone, Default)]
pub struct HeaderState {
    uid_sent: bool,
    prev_dropped: bool,
}

impl HeaderState {
    /// Classifies a header line given its first bytes (`prefix`, at least
    /// [`CLASSIFY_LEN`] bytes or the whole line) and whether the line is
    /// empty (nothing but its line end).
    pub fn line(&mut self, prefix: &[u8], empty: bool) -> HeaderAction {
        if empty {
            return HeaderAction::EndOfHeader;
        }
        if matches!(prefix.first(), Some(b' ' | b'\t')) {
            return if self.prev_dropped {
                HeaderAction::Drop
            } else {
                HeaderAction::Emit
            };
        }
        if starts_with_ci(prefix, b"x-uidl:") || starts_with_ci(prefix, b"content-length:") {
            self.prev_dropped = true;
            return HeaderAction::Drop;
        }
        self.prev_dropped = false;
        if !self.uid_sent && starts_with_ci(prefix, b"status:") {
            self.uid_sent = true;
            return HeaderAction::UidThenEmit;
        }
        HeaderAction::Emit
    }

    /// True once the `X-UIDL:` line has been placed before a `Status:` line.
    pub fn uid_sent(&self) -> bool {
        self.uid_sent
    }
}

/// Case-insensitive ASCII prefix test.
pub fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Exact size of what [`Render`] sends for `msg` (everything after the
/// envelope), without the inserted `X-UIDL:` line and without dot-stuffing.
pub fn measure(msg: &[u8]) -> u64 {
    let mut hs = HeaderState::default();
    let mut in_header = true;
    let mut size = 0u64;
    for line in lines(msg) {
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        if in_header {
            match hs.line(
                &content[..content.len().min(CLASSIFY_LEN)],
                content.is_empty(),
            ) {
                HeaderAction::Drop => continue,
                HeaderAction::EndOfHeader => in_header = false,
                HeaderAction::Emit | HeaderAction::UidThenEmit => {}
            }
        }
        size += content.len() as u64 + 2;
    }
    size
}

/// Streaming renderer for one RETR or TOP: stored bytes in, qpopper's
/// message into the core's [`Encoder`].
#[derive(Debug)]
pub struct Render {
    /// `X-UIDL: <uid>` and its LF, inserted once.
    uid_line: Vec<u8>,
    hs: HeaderState,
    /// Still in the header (after it, bytes pass straight through).
    in_header: bool,
    /// The next byte starts a new line.
    at_start: bool,
    /// First bytes of a header line not yet classified.
    head: [u8; CLASSIFY_LEN],
    head_len: usize,
    /// The current header line is still being classified.
    deciding: bool,
    /// The current line's bytes are sent.
    emitting: bool,
    /// The current line is the blank line that ends the header.
    blank: bool,
}

impl Render {
    /// A renderer for a message with `uid`.
    pub fn new(uid: &[u8]) -> Self {
        Render {
            uid_line: [b"X-UIDL: ", uid, b"\n"].concat(),
            hs: HeaderState::default(),
            in_header: true,
            at_start: true,
            head: [0; CLASSIFY_LEN],
            head_len: 0,
            deciding: false,
            emitting: true,
            blank: false,
        }
    }

    /// Renders the next chunk of the stored message into `enc`.
    pub fn feed(&mut self, mut buf: &[u8], enc: &mut Encoder, out: &mut Vec<u8>) {
        while !buf.is_empty() {
            if !self.in_header {
                enc.feed(buf, out);
                return;
            }
            if self.at_start {
                self.at_start = false;
                self.deciding = true;
                self.emitting = true;
                self.head_len = 0;
            }
            if self.deciding {
                buf = self.feed_head(buf, enc, out);
                continue;
            }
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    if self.emitting {
                        enc.feed(&buf[..=i], out);
                    }
                    self.end_line();
                    buf = &buf[i + 1..];
                }
                None => {
                    if self.emitting {
                        enc.feed(buf, out);
                    }
                    buf = b"";
                }
            }
        }
    }

    /// Ends the message: a header line cut short by the end is classified
    /// and closed, and the `X-UIDL:` line placed if the header never ended.
    pub fn finish(&mut self, enc: &mut Encoder, out: &mut Vec<u8>) {
        if self.in_header {
            if !self.at_start {
                if self.deciding {
                    self.classify(true, enc, out);
                }
                if self.emitting {
                    enc.feed(b"\n", out);
                }
                self.end_line();
            }
            if self.in_header && !self.hs.uid_sent() {
                enc.feed(&self.uid_line, out);
            }
            self.in_header = false;
        }
        enc.finish(out);
    }

    /// Collects the first bytes of a header line; classifies it once enough
    /// is known. Returns the unconsumed input.
    fn feed_head<'b>(&mut self, buf: &'b [u8], enc: &mut Encoder, out: &mut Vec<u8>) -> &'b [u8] {
        let room = CLASSIFY_LEN - self.head_len;
        match memchr::memchr(b'\n', &buf[..buf.len().min(room + 1)]) {
            Some(i) if i <= room => {
                self.head[self.head_len..self.head_len + i].copy_from_slice(&buf[..i]);
                self.head_len += i;
                self.classify(true, enc, out);
                if self.emitting {
                    enc.feed(b"\n", out);
                }
                self.end_line();
                &buf[i + 1..]
            }
            _ => {
                let take = room.min(buf.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&buf[..take]);
                self.head_len += take;
                if self.head_len == CLASSIFY_LEN {
                    self.classify(false, enc, out);
                }
                &buf[take..]
            }
        }
    }

    /// Decides what to do with the current header line from its buffered
    /// start (`complete` when the whole line is in `head`), and sends that
    /// start if the line is kept.
    fn classify(&mut self, complete: bool, enc: &mut Encoder, out: &mut Vec<u8>) {
        self.deciding = false;
        let head = &self.head[..self.head_len];
        let content = if complete {
            head.strip_suffix(b"\r").unwrap_or(head)
        } else {
            head
        };
        match self.hs.line(content, complete && content.is_empty()) {
            HeaderAction::Drop => self.emitting = false,
            HeaderAction::Emit => {}
            HeaderAction::UidThenEmit => enc.feed(&self.uid_line, out),
            HeaderAction::EndOfHeader => {
                if !self.hs.uid_sent() {
                    enc.feed(&self.uid_line, out);
                }
                self.blank = true;
            }
        }
        if self.emitting {
            enc.feed(&self.head[..self.head_len], out);
        }
    }

    /// The stored line ended: the body starts after the blank line.
    fn end_line(&mut self) {
        self.at_start = true;
        if self.blank {
            self.in_header = false;
        }
    }
}

/// Sends the stored message `content..end` of `src` (after its envelope)
/// as RETR (`body_lines` `None`) or TOP, read `chunk` bytes at a time:
/// the one sending path of the spool and of the in-memory test maildrop.
/// Returns the bytes sent without dot-stuffing; a failed read is
/// `fail(Some(e))`, one that comes up short `fail(None)` (the spool was
/// cut under us).
pub fn send_from<R: ReadAt + ?Sized>(
    src: &R,
    (content, end): (u64, u64),
    uid: &Uid,
    body_lines: Option<u64>,
    chunk: usize,
    out: &mut dyn Output,
    fail: &dyn Fn(Option<io::Error>) -> SendError,
) -> Result<u64, SendError> {
    let mut render = Render::new(uid.as_bytes());
    let mut enc = Encoder::new(body_lines);
    let mut buf = vec![0u8; chunk.max(1)];
    let mut at = content;
    while at < end && !enc.is_done() {
        let want = (end - at).min(buf.len() as u64) as usize;
        let n = match src.read_at(&mut buf[..want], at) {
            Ok(0) => return Err(fail(None)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(Some(e))),
        };
        render.feed(&buf[..n], &mut enc, out.buffer());
        out.drain().map_err(SendError::Client)?;
        at += n as u64;
    }
    render.finish(&mut enc, out.buffer());
    Ok(enc.sent())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &[u8] = b"77ffa6bafb637ac9774fa2615b3b449b";

    /// Encodes `msg` fed in pieces of `step` bytes.
    fn encode(msg: &[u8], uid: &[u8], top: Option<u64>, step: usize) -> Vec<u8> {
        let mut r = Render::new(uid);
        let mut e = Encoder::new(top);
        let mut out = Vec::new();
        for chunk in msg.chunks(step.max(1)) {
            r.feed(chunk, &mut e, &mut out);
        }
        r.finish(&mut e, &mut out);
        out
    }

    /// Encodes at every chunk size and every two-piece split; all must agree.
    fn encode_all_ways(msg: &[u8], top: Option<u64>) -> Vec<u8> {
        let whole = encode(msg, UID, top, msg.len().max(1));
        for step in 1..=17 {
            assert_eq!(encode(msg, UID, top, step), whole, "step {step}");
        }
        for split in 0..=msg.len() {
            let mut r = Render::new(UID);
            let mut e = Encoder::new(top);
            let mut out = Vec::new();
            r.feed(&msg[..split], &mut e, &mut out);
            r.feed(&msg[split..], &mut e, &mut out);
            r.finish(&mut e, &mut out);
            assert_eq!(out, whole, "split {split}");
        }
        whole
    }

    /// Undoes dot-stuffing (line-initial `..` → `.`).
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, l) in wire.split_inclusive(|b| *b == b'\n').enumerate() {
            let _ = i;
            out.extend_from_slice(l.strip_prefix(b".").unwrap_or(l));
        }
        out
    }

    const SPEC_MSG: &[u8] = b"Date: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\n\nHello\n.dot line\n\n";

    #[test]
    fn qpopper_round_trip_vector() {
        // qpopper.md §15.6: RETR 1 sends exactly these 149 bytes.
        let want = b"Date: Wed, 2 Dec 1992 05:53:22 -0800\r\nFrom: Alice <alice@example.com>\r\nSubject: hi\r\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\r\n\r\nHello\r\n..dot line\r\n\r\n";
        let got = encode_all_ways(SPEC_MSG, None);
        assert_eq!(got, want.to_vec());
        assert_eq!(got.len(), 149);
        assert_eq!(measure(SPEC_MSG) + 42, 148);
    }

    #[test]
    fn sizes_include_the_inserted_uidl_line() {
        // qpopper.md §15.6: 106 counted octets + 42 for the X-UIDL line.
        assert_eq!(measure(SPEC_MSG), 106);
        assert_eq!(wire_size(106, &Uid::new(UID).unwrap()), 148);
    }

    #[test]
    fn top_counts_body_lines_after_the_blank_line() {
        let head = b"Date: Wed, 2 Dec 1992 05:53:22 -0800\r\nFrom: Alice <alice@example.com>\r\nSubject: hi\r\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\r\n\r\n".to_vec();
        assert_eq!(encode_all_ways(SPEC_MSG, Some(0)), head);
        let mut one = head.clone();
        one.extend_from_slice(b"Hello\r\n");
        assert_eq!(encode_all_ways(SPEC_MSG, Some(1)), one);
        let mut two = one.clone();
        two.extend_from_slice(b"..dot line\r\n");
        assert_eq!(encode_all_ways(SPEC_MSG, Some(2)), two);
        assert_eq!(
            encode_all_ways(SPEC_MSG, Some(99)),
            encode_all_ways(SPEC_MSG, None)
        );
        assert_eq!(
            encode_all_ways(SPEC_MSG, Some(u64::MAX)),
            encode_all_ways(SPEC_MSG, None)
        );
    }

    #[test]
    fn uidl_goes_before_the_first_status_header() {
        let msg = b"Subject: s\nStatus: RO\nX-Other: 1\nStatus: U\n\nbody\n";
        let want =
            b"Subject: s\r\nX-UIDL: u\r\nStatus: RO\r\nX-Other: 1\r\nStatus: U\r\n\r\nbody\r\n";
        assert_eq!(encode(msg, b"u", None, 3), want.to_vec());
    }

    #[test]
    fn content_length_and_x_uidl_headers_are_dropped_with_continuations() {
        let msg = b"X-UIDL: old\n  folded old\nCONTENT-LENGTH: 5\nSubject: s\n\tfolded s\nx-uidl: second\n\nX-UIDL: in body stays\nContent-Length: also\n";
        let want = b"Subject: s\r\n\tfolded s\r\nX-UIDL: u\r\n\r\nX-UIDL: in body stays\r\nContent-Length: also\r\n";
        let got = encode(msg, b"u", None, 1);
        assert_eq!(got, want.to_vec());
        assert_eq!(measure(msg) + 10 + 1, got.len() as u64);
    }

    #[test]
    fn crlf_spool_lines_get_one_crlf() {
        let msg = b"Subject: s\r\n\r\nline\r\ncr\r\r\nbare\rcr\n";
        let want = b"Subject: s\r\nX-UIDL: u\r\n\r\nline\r\ncr\r\r\nbare\rcr\r\n";
        for step in 1..8 {
            assert_eq!(encode(msg, b"u", None, step), want.to_vec(), "step {step}");
        }
    }

    #[test]
    fn last_line_without_lf_is_closed() {
        assert_eq!(
            encode(b"Subject: s\n\nno newline", b"u", None, 4),
            b"Subject: s\r\nX-UIDL: u\r\n\r\nno newline\r\n".to_vec()
        );
        // Header only, no blank line, no LF: the UID line goes at the end.
        assert_eq!(
            encode(b"Subject: s", b"u", None, 4),
            b"Subject: s\r\nX-UIDL: u\r\n".to_vec()
        );
        assert_eq!(encode(b"", b"u", None, 4), b"X-UIDL: u\r\n".to_vec());
        assert_eq!(encode(b"\n", b"u", None, 4), b"X-UIDL: u\r\n\r\n".to_vec());
    }

    #[test]
    fn dots_are_stuffed_in_header_and_body_only_at_line_start() {
        let msg = b".hdr: x\n\n.\n..\na.b\n.\r\n";
        let want = b"..hdr: x\r\nX-UIDL: u\r\n\r\n..\r\n...\r\na.b\r\n..\r\n";
        assert_eq!(encode(msg, b"u", None, 1), want.to_vec());
        assert_eq!(encode(msg, b"u", None, 64), want.to_vec());
    }

    #[test]
    fn long_lines_are_not_fragmented() {
        let mut msg = b"Subject: s\n\n".to_vec();
        let long = vec![b'.'; 5000];
        msg.extend_from_slice(&long);
        msg.extend_from_slice(b"\nFrom x Wed Dec  2 05:53 1992\n");
        let got = encode(&msg, b"u", None, 1000);
        // One stuffed dot for the one line start, none inside the long line.
        assert_eq!(got.iter().filter(|b| **b == b'.').count(), 5001);
        assert_eq!(measure(&msg) + 11 + 1, got.len() as u64);
    }

    /// A small deterministic generator of awkward messages.
    fn awkward_messages() -> Vec<Vec<u8>> {
        let pieces: &[&[u8]] = &[
            b"Subject: x\n",
            b"X-UIDL: abc\n",
            b" cont\n",
            b"\tcont\n",
            b"Content-Length: 3\n",
            b"Status: R\n",
            b"\n",
            b"\r\n",
            b".\n",
            b"..x\n",
            b"From y Wed Dec  2 05:53 1992\n",
            b">From z\n",
            b"a\rb\n",
            b"\r",
            b"x",
            b"\0\xff\n",
            b"status: O\r\n",
            b"CONTENT-LENGTH:\n",
            b"long-header-name-exceeding: v\n",
        ];
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        (0..400)
            .map(|_| {
                let n = (next() % 12) as usize;
                (0..n)
                    .flat_map(|_| pieces[(next() % pieces.len() as u64) as usize].to_vec())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn announced_size_equals_bytes_sent() {
        for msg in awkward_messages() {
            let wire = encode_all_ways(&msg, None);
            let unstuffed = unstuff(&wire);
            assert_eq!(
                measure(&msg) + 10 + UID.len() as u64,
                unstuffed.len() as u64,
                "{msg:?}"
            );
            let mut r = Render::new(UID);
            let mut e = Encoder::new(None);
            let mut out = Vec::new();
            r.feed(&msg, &mut e, &mut out);
            r.finish(&mut e, &mut out);
            assert_eq!(e.sent(), unstuffed.len() as u64);
            // Every line of the output ends in CRLF and there is no bare LF.
            assert!(wire.is_empty() || wire.ends_with(b"\r\n"));
            for l in wire.split_inclusive(|b| *b == b'\n') {
                assert!(l.ends_with(b"\r\n"), "{l:?} in {wire:?}");
            }
            // TOP never sends more than RETR and is a prefix of it.
            for n in 0..4 {
                let top = encode(&msg, UID, Some(n), 5);
                assert!(wire.starts_with(&top));
            }
        }
    }
}
