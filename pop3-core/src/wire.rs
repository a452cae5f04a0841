//! The wire form of a message: stored bytes in, the bytes RETR and TOP
//! send out (RFC 1939 §3: CRLF line ends, a leading `.` doubled).
//!
//! This is storage-neutral: what a message *is* (qpopper's inserted
//! `X-UIDL:` line, the headers an mbox drops, a Maildir file as it is) is
//! the maildrop's business; it feeds the result here. The encoder only
//!
//! * ends every line in CRLF: an LF gets a CR, a CR LF stays one CR LF
//!   (a spool written by a CRLF tool is not sent as CR CR LF), and a last
//!   line without LF is closed;
//! * doubles a `.` at the start of a line (byte-stuffing);
//! * for TOP, stops after the header's blank line and that many more lines.
//!
//! [`Encoder`] streams: it takes the message in chunks of any size, split
//! anywhere, keeps O(1) state, and counts the bytes it sends without the
//! stuffing, which is what the announced size must equal. [`measure`] is
//! that count for a message held in memory.

/// Exact size of what [`Encoder`] sends for `msg` with RETR, not counting
/// dot-stuffing: each line's content without one CR before its LF, plus
/// CRLF.
pub fn measure(msg: &[u8]) -> u64 {
    lines(msg)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len() as u64 + 2)
        .sum()
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
    /// Before the blank line that ends the header.
    Header,
    /// After it.
    Body,
    /// TOP has sent its lines: everything else is ignored.
    Done,
}

/// Streaming encoder for one RETR or TOP.
#[derive(Debug)]
pub struct Encoder {
    phase: Phase,
    /// The next byte starts a new line.
    at_start: bool,
    /// A CR ended the last chunk; sent unless an LF follows.
    pending_cr: bool,
    /// The current line has content (a byte other than its last CR).
    line_has_content: bool,
    /// TOP: body lines still to send (`None` for RETR).
    body_left: Option<u64>,
    /// Bytes sent not counting dot-stuffing (checked against the size).
    sent: u64,
}

impl Encoder {
    /// An encoder for one message; `body_lines` is TOP's line count,
    /// `None` for RETR.
    pub fn new(body_lines: Option<u64>) -> Self {
        Encoder {
            phase: Phase::Header,
            at_start: true,
            pending_cr: false,
            line_has_content: false,
            body_left: body_lines,
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

    /// Encodes the next chunk of the message into `out`.
    pub fn feed(&mut self, mut buf: &[u8], out: &mut Vec<u8>) {
        while !buf.is_empty() {
            match self.phase {
                Phase::Done => return,
                Phase::Body if self.body_left.is_none() => {
                    self.feed_body(buf, out);
                    return;
                }
                Phase::Header | Phase::Body => {}
            }
            // Line by line: the header (to find its end) and TOP's body
            // (to count lines).
            let (part, lf) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..i], true),
                None => (buf, false),
            };
            self.part(part, out);
            buf = &buf[part.len() + usize::from(lf)..];
            if lf {
                self.end_line(out);
            }
        }
    }

    /// The body of a RETR: the same rules as [`part`](Self::part) and
    /// [`end_line`](Self::end_line), in one tight loop over the chunk with
    /// the output space reserved once: this is where the bytes of a
    /// download go.
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

    /// Ends the message: closes a last line without LF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.phase != Phase::Done && !self.at_start {
            self.end_line(out);
        }
        self.phase = Phase::Done;
    }

    /// Sends part of the current line (no LF in `part`).
    fn part(&mut self, part: &[u8], out: &mut Vec<u8>) {
        let Some(&first) = part.first() else {
            return;
        };
        if self.at_start {
            self.at_start = false;
            if first == b'.' {
                out.push(b'.');
            }
        }
        if self.pending_cr {
            out.push(b'\r');
            self.sent += 1;
            self.pending_cr = false;
            self.line_has_content = true;
        }
        let (body, cr) = match part.split_last() {
            Some((b'\r', rest)) => (rest, true),
            _ => (part, false),
        };
        out.extend_from_slice(body);
        self.sent += body.len() as u64;
        self.line_has_content |= !body.is_empty();
        self.pending_cr = cr;
    }

    /// The stored line ended (LF, or end of message).
    fn end_line(&mut self, out: &mut Vec<u8>) {
        let blank = !self.line_has_content;
        self.pending_cr = false;
        self.line_has_content = false;
        self.at_start = true;
        out.extend_from_slice(b"\r\n");
        self.sent += 2;
        match self.phase {
            Phase::Header if blank => {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `msg` fed in pieces of `step` bytes.
    fn encode(msg: &[u8], top: Option<u64>, step: usize) -> Vec<u8> {
        let mut e = Encoder::new(top);
        let mut out = Vec::new();
        for chunk in msg.chunks(step.max(1)) {
            e.feed(chunk, &mut out);
        }
        e.finish(&mut out);
        out
    }

    /// Encodes at every chunk size and every two-piece split; all must agree.
    fn encode_all_ways(msg: &[u8], top: Option<u64>) -> Vec<u8> {
        let whole = encode(msg, top, msg.len().max(1));
        for step in 1..=17 {
            assert_eq!(encode(msg, top, step), whole, "step {step}");
        }
        for split in 0..=msg.len() {
            let mut e = Encoder::new(top);
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
        for l in wire.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(l.strip_prefix(b".").unwrap_or(l));
        }
        out
    }

    const MSG: &[u8] = b"Date: Wed, 2 Dec 1992 05:53:22 -0800\nSubject: hi\n\nHello\n.dot line\n\n";

    #[test]
    fn crlf_and_dot_stuffing() {
        let want = b"Date: Wed, 2 Dec 1992 05:53:22 -0800\r\nSubject: hi\r\n\r\nHello\r\n..dot line\r\n\r\n";
        let got = encode_all_ways(MSG, None);
        assert_eq!(got, want.to_vec());
        assert_eq!(measure(MSG), want.len() as u64 - 1);
    }

    #[test]
    fn top_counts_body_lines_after_the_blank_line() {
        let head = b"Date: Wed, 2 Dec 1992 05:53:22 -0800\r\nSubject: hi\r\n\r\n".to_vec();
        assert_eq!(encode_all_ways(MSG, Some(0)), head);
        let mut one = head.clone();
        one.extend_from_slice(b"Hello\r\n");
        assert_eq!(encode_all_ways(MSG, Some(1)), one);
        let mut two = one.clone();
        two.extend_from_slice(b"..dot line\r\n");
        assert_eq!(encode_all_ways(MSG, Some(2)), two);
        assert_eq!(encode_all_ways(MSG, Some(99)), encode_all_ways(MSG, None));
        assert_eq!(
            encode_all_ways(MSG, Some(u64::MAX)),
            encode_all_ways(MSG, None)
        );
        // A CRLF blank line ends the header as an LF one does.
        let crlf = b"A: b\r\n\r\nx\r\ny\r\n";
        assert_eq!(
            encode_all_ways(crlf, Some(1)),
            b"A: b\r\n\r\nx\r\n".to_vec()
        );
        // A line of one CR plus a byte is not blank.
        assert_eq!(
            encode_all_ways(b"A: b\n\rx\nc\n\nd\n", Some(0)),
            b"A: b\r\n\rx\r\nc\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn crlf_spool_lines_get_one_crlf() {
        let msg = b"Subject: s\r\n\r\nline\r\ncr\r\r\nbare\rcr\n";
        let want = b"Subject: s\r\n\r\nline\r\ncr\r\r\nbare\rcr\r\n";
        assert_eq!(encode_all_ways(msg, None), want.to_vec());
    }

    #[test]
    fn last_line_without_lf_is_closed() {
        assert_eq!(
            encode_all_ways(b"Subject: s\n\nno newline", None),
            b"Subject: s\r\n\r\nno newline\r\n".to_vec()
        );
        assert_eq!(encode(b"Subject: s\r", None, 4), b"Subject: s\r\n".to_vec());
        assert_eq!(encode(b"", None, 4), b"".to_vec());
        assert_eq!(encode(b"\n", None, 4), b"\r\n".to_vec());
    }

    #[test]
    fn dots_are_stuffed_in_header_and_body_only_at_line_start() {
        let msg = b".hdr: x\n\n.\n..\na.b\n.\r\n";
        let want = b"..hdr: x\r\n\r\n..\r\n...\r\na.b\r\n..\r\n";
        assert_eq!(encode_all_ways(msg, None), want.to_vec());
    }

    #[test]
    fn long_lines_are_not_fragmented() {
        let mut msg = b"Subject: s\n\n".to_vec();
        msg.extend_from_slice(&[b'.'; 5000]);
        msg.extend_from_slice(b"\nFrom x Wed Dec  2 05:53 1992\n");
        let got = encode(&msg, None, 1000);
        // One stuffed dot for the one line start, none inside the long line.
        assert_eq!(got.iter().filter(|b| **b == b'.').count(), 5001);
        assert_eq!(measure(&msg) + 1, got.len() as u64);
    }

    #[test]
    fn announced_size_equals_bytes_sent() {
        let pieces: &[&[u8]] = &[
            b"Subject: x\n",
            b" cont\n",
            b"\n",
            b"\r\n",
            b".\n",
            b"..x\n",
            b"a\rb\n",
            b"\r",
            b"x",
            b"\0\xff\n",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..400 {
            let n = (next() % 12) as usize;
            let msg: Vec<u8> = (0..n)
                .flat_map(|_| pieces[(next() % pieces.len() as u64) as usize].to_vec())
                .collect();
            let wire = encode_all_ways(&msg, None);
            assert_eq!(measure(&msg), unstuff(&wire).len() as u64, "{msg:?}");
            let mut e = Encoder::new(None);
            let mut out = Vec::new();
            e.feed(&msg, &mut out);
            e.finish(&mut out);
            assert_eq!(e.sent(), measure(&msg));
            assert!(wire.is_empty() || wire.ends_with(b"\r\n"));
            for l in wire.split_inclusive(|b| *b == b'\n') {
                assert!(l.ends_with(b"\r\n"), "{l:?} in {wire:?}");
            }
            for n in 0..4 {
                assert!(wire.starts_with(&encode(&msg, Some(n), 5)));
            }
        }
    }
}
