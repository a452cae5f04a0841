//! The wire transform: a stored message in, the bytes RETR/TOP send out.
//!
//! COMPAT qpopper 2.53 (qpopper.md §3.4, §9.8): the envelope is not sent
//! (the caller passes only what follows it); `Content-Length:` and every
//! `X-UIDL:` header are dropped; one `X-UIDL: <uid>` line is inserted before
//! the first `Status:` header, or else before the blank line that ends the
//! header; lines end in CRLF; a line starting with `.` gets another `.`.
//!
//! DEVIATION: the continuation lines of a dropped header are dropped with it
//! (2.53 sent them, gluing them to the previous header); long lines are not
//! cut into 1023-byte fragments; a line that already ends in CRLF is sent
//! with one CRLF; a last line without LF is sent with CRLF.
//!
//! [`Encoder`] streams: it takes the message in chunks of any size, split
//! anywhere, and keeps O(1) state, so a message of any size goes to the
//! client through a bounded buffer. [`measure`] and [`HeaderState`] give the
//! exact size the encoder will produce (before dot-stuffing), which is the
//! size LIST, STAT and `+OK n octets` announce.

/// Longest header-name prefix that matters for classification
/// (`content-length:` is 15 bytes).
const CLASSIFY_LEN: usize = 15;

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

/// Header-phase state shared by the encoder and every size computation, so
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

/// Splits a stored line (without its LF) into the content that is sent,
/// dropping one CR before the LF.
fn content_of(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Exact size of what [`Encoder`] sends for `msg` (everything after the
/// envelope), without the inserted `X-UIDL:` line and without dot-stuffing.
pub fn measure(msg: &[u8]) -> u64 {
    let mut hs = HeaderState::default();
    let mut in_header = true;
    let mut size = 0u64;
    for line in lines(msg) {
        let content = content_of(line);
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

/// The lines of `msg` without their LFs; a last line without LF is a line.
pub fn lines(msg: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = msg;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                let l = &rest[..i];
                rest = &rest[i + 1..];
                Some(l)
            }
            None => {
                let l = rest;
                rest = b"";
                Some(l)
            }
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Body,
    Done,
}

/// Streaming encoder for one RETR or TOP.
#[derive(Debug)]
pub struct Encoder<'u> {
    uid: &'u [u8],
    phase: Phase,
    hs: HeaderState,
    /// The next byte starts a new line.
    at_start: bool,
    /// First bytes of a header line not yet classified.
    head: [u8; CLASSIFY_LEN],
    head_len: usize,
    /// The current header line is still being classified.
    deciding: bool,
    /// The current line's bytes are sent.
    emitting: bool,
    /// A CR ended the last chunk; sent unless an LF follows.
    pending_cr: bool,
    /// TOP: body lines still to send (`None` for RETR).
    body_left: Option<u64>,
    /// The blank line ending the header was classified; the body starts
    /// when its line end is sent.
    header_ended: bool,
    /// Bytes sent not counting dot-stuffing (checked against the size).
    sent: u64,
}

impl<'u> Encoder<'u> {
    /// An encoder for a message with `uid`; `body_lines` is TOP's line
    /// count, `None` for RETR.
    pub fn new(uid: &'u [u8], body_lines: Option<u64>) -> Self {
        Encoder {
            uid,
            phase: Phase::Header,
            hs: HeaderState::default(),
            at_start: true,
            head: [0; CLASSIFY_LEN],
            head_len: 0,
            deciding: false,
            emitting: true,
            pending_cr: false,
            body_left: body_lines,
            header_ended: false,
            sent: 0,
        }
    }

    /// True when TOP has sent all it will: the caller may stop reading.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Bytes sent so far, not counting dot-stuffing: at the end this equals
    /// the announced size for RETR.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Encodes the next chunk of the stored message into `out`.
    pub fn feed(&mut self, mut buf: &[u8], out: &mut Vec<u8>) {
        while !buf.is_empty() && self.phase != Phase::Done {
            if self.phase == Phase::Body && self.body_left.is_none() {
                self.feed_body(buf, out);
                return;
            }
            if self.at_start {
                self.start_line(buf[0], out);
            }
            if self.deciding {
                buf = self.feed_head(buf, out);
                continue;
            }
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    self.part(&buf[..i], out);
                    self.end_line(out);
                    buf = &buf[i + 1..];
                }
                None => {
                    self.part(buf, out);
                    buf = b"";
                }
            }
        }
    }

    /// The body of a RETR: every line as it is, CRLF-ended, dot-stuffed,
    /// one CR before each LF dropped. The same rules as the line-by-line
    /// path (start_line, part, end_line), in one tight loop over the
    /// chunk, with the output space reserved once: this is where the bytes
    /// of a download go.
    fn feed_body(&mut self, buf: &[u8], out: &mut Vec<u8>) {
        // Worst case: every line one byte, stuffed, with a CR added.
        out.reserve(buf.len() + buf.len() / 2 + 4);
        let mut rest = buf;
        while !rest.is_empty() {
            if self.at_start {
                self.at_start = false;
                if rest[0] == b'.' {
                    out.push(b'.');
                }
            }
            let (line, ended) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            if self.pending_cr && !line.is_empty() {
                // The CR that ended the last chunk was not the line's last.
                out.push(b'\r');
                self.sent += 1;
            }
            self.pending_cr = false;
            let (body, cr) = match line.split_last() {
                Some((b'\r', head)) => (head, true),
                _ => (line, false),
            };
            out.extend_from_slice(body);
            self.sent += body.len() as u64;
            if ended {
                out.extend_from_slice(b"\r\n");
                self.sent += 2;
                self.at_start = true;
                rest = &rest[line.len() + 1..];
            } else {
                self.pending_cr = cr;
                rest = &[];
            }
        }
    }

    /// Ends the message: closes a last line without LF and places the
    /// `X-UIDL:` line if the header never ended.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.phase == Phase::Done {
            return;
        }
        if !self.at_start {
            if self.deciding {
                self.classify(true, out);
            }
            self.end_line(out);
        }
        if self.phase == Phase::Header && !self.hs.uid_sent() {
            self.uid_line(out);
        }
        self.phase = Phase::Done;
    }

    fn start_line(&mut self, first: u8, out: &mut Vec<u8>) {
        self.at_start = false;
        self.emitting = true;
        self.pending_cr = false;
        match self.phase {
            Phase::Header => {
                self.deciding = true;
                self.head_len = 0;
            }
            Phase::Body => {
                if first == b'.' {
                    out.push(b'.');
                }
            }
            Phase::Done => {}
        }
    }

    /// Collects the first bytes of a header line; classifies it once enough
    /// is known. Returns the unconsumed input.
    fn feed_head<'b>(&mut self, buf: &'b [u8], out: &mut Vec<u8>) -> &'b [u8] {
        let room = CLASSIFY_LEN - self.head_len;
        let lf = memchr::memchr(b'\n', &buf[..buf.len().min(room + 1)]);
        match lf {
            Some(i) if i <= room => {
                self.head[self.head_len..self.head_len + i].copy_from_slice(&buf[..i]);
                self.head_len += i;
                self.classify(true, out);
                self.end_line(out);
                &buf[i + 1..]
            }
            _ => {
                let take = room.min(buf.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&buf[..take]);
                self.head_len += take;
                if self.head_len == CLASSIFY_LEN {
                    self.classify(false, out);
                }
                &buf[take..]
            }
        }
    }

    /// Decides what to do with the current header line from its buffered
    /// start; `complete` when the whole line is in `head`.
    fn classify(&mut self, complete: bool, out: &mut Vec<u8>) {
        self.deciding = false;
        let head = self.head;
        let mut content = &head[..self.head_len];
        if complete {
            content = content_of(content);
        }
        let empty = complete && content.is_empty();
        match self.hs.line(content, empty) {
            HeaderAction::Drop => self.emitting = false,
            HeaderAction::Emit => {}
            HeaderAction::UidThenEmit => self.uid_line(out),
            HeaderAction::EndOfHeader => {
                if !self.hs.uid_sent() {
                    self.uid_line(out);
                }
                // The blank line is sent by end_line, which then starts the body.
                self.header_ended = true;
                return;
            }
        }
        if self.emitting && content.first() == Some(&b'.') {
            out.push(b'.');
        }
        if complete {
            // The whole line is known and its one CR already removed: any
            // CR left is content.
            if self.emitting {
                out.extend_from_slice(content);
                self.sent += content.len() as u64;
            }
        } else {
            self.part(&head[..self.head_len], out);
        }
    }

    /// Sends part of the current line's content (no LF in `part`).
    fn part(&mut self, part: &[u8], out: &mut Vec<u8>) {
        if !self.emitting || part.is_empty() {
            return;
        }
        if self.pending_cr {
            out.push(b'\r');
            self.sent += 1;
            self.pending_cr = false;
        }
        let (body, cr) = match part.split_last() {
            Some((b'\r', rest)) => (rest, true),
            _ => (part, false),
        };
        out.extend_from_slice(body);
        self.sent += body.len() as u64;
        self.pending_cr = cr;
    }

    /// The stored line ended (LF, or end of message).
    fn end_line(&mut self, out: &mut Vec<u8>) {
        self.pending_cr = false;
        self.at_start = true;
        if self.emitting {
            out.extend_from_slice(b"\r\n");
            self.sent += 2;
        }
        match self.phase {
            Phase::Header if self.header_ended => {
                self.phase = Phase::Body;
                // TOP n counts the lines after the blank line.
                if self.body_left == Some(0) {
                    self.phase = Phase::Done;
                }
            }
            Phase::Body => {
                if let Some(left) = self.body_left.as_mut() {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        self.phase = Phase::Done;
                    }
                }
            }
            Phase::Header | Phase::Done => {}
        }
    }

    fn uid_line(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"X-UIDL: ");
        out.extend_from_slice(self.uid);
        out.extend_from_slice(b"\r\n");
        self.sent += 10 + self.uid.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &[u8] = b"77ffa6bafb637ac9774fa2615b3b449b";

    /// Encodes `msg` fed in pieces of `step` bytes.
    fn encode(msg: &[u8], uid: &[u8], top: Option<u64>, step: usize) -> Vec<u8> {
        let mut e = Encoder::new(uid, top);
        let mut out = Vec::new();
        for chunk in msg.chunks(step.max(1)) {
            e.feed(chunk, &mut out);
        }
        e.finish(&mut out);
        out
    }

    /// Encodes at every chunk size and every two-piece split; all must agree.
    fn encode_all_ways(msg: &[u8], top: Option<u64>) -> Vec<u8> {
        let whole = encode(msg, UID, top, msg.len().max(1));
        for step in 1..=17 {
            assert_eq!(encode(msg, UID, top, step), whole, "step {step}");
        }
        for split in 0..=msg.len() {
            let mut e = Encoder::new(UID, top);
            let mut out = Vec::new();
            e.feed(&msg[..split], &mut out);
            e.feed(&msg[split..], &mut out);
            e.finish(&mut out);
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
            let mut e = Encoder::new(UID, None);
            let mut out = Vec::new();
            e.feed(&msg, &mut out);
            e.finish(&mut out);
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
