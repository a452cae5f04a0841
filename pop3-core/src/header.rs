//! Finding one header field in a message as the client would see it.
//!
//! EUIDL and `XTND XLST` (qpopper.md §3.4) show a header of each message.
//! The field is looked for in what TOP 0 sends (CRLF line ends,
//! dot-stuffed, the header a maildrop renders: mbox's canonical `X-UIDL:`
//! line in it), so every maildrop answers through its own sending path
//! and a header line is never read past the blank line that ends the
//! header. [`HeaderScan`] takes that output in pieces of any size and
//! keeps at most a bounded field and one bounded partial line, however
//! long the header is.
//!
//! COMPAT qpopper 2.53 (`xtnd_xlst.c`): the first line that starts
//! (case-insensitively) with the name the client gave is the field; its
//! continuation lines (starting with a space or a tab) belong to it.

use crate::limits::MAX_LINE;

/// A line longer than this is looked at in pieces (its start decides what
/// it is: a name is at most a command line long).
const PIECE: usize = 4 * (MAX_LINE + 1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No matching line yet.
    Looking,
    /// In the field: its line or a continuation line.
    Collecting,
    /// The field (or the header) has ended.
    Done,
}

/// Scans TOP 0 output for the first header line starting with a name.
#[derive(Debug)]
pub struct HeaderScan {
    prefix: Vec<u8>,
    max: usize,
    state: State,
    /// The current line started at an earlier piece; `Some(true)` when it
    /// belongs to the field.
    mid_line: Option<bool>,
    /// The field so far (its lines joined by CRLF), at most `max` bytes.
    field: Vec<u8>,
    /// A matching line was seen.
    found: bool,
}

impl HeaderScan {
    /// Looks for the first line that starts with `prefix` (ASCII case
    /// ignored); the field kept is at most `max` bytes.
    pub fn new(prefix: &[u8], max: usize) -> HeaderScan {
        HeaderScan {
            prefix: prefix.to_vec(),
            max,
            state: State::Looking,
            mid_line: None,
            field: Vec::new(),
            found: false,
        }
    }

    /// True once the field (or the header without it) has ended: the rest
    /// of the message need not be read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the complete lines at the front of `buf` (and a partial line
    /// that has grown past a piece) and removes them from it.
    pub fn feed(&mut self, buf: &mut Vec<u8>) {
        let mut at = 0;
        while self.state != State::Done {
            let rest = &buf[at..];
            match memchr_lf(rest) {
                Some(i) => {
                    let line = &rest[..i];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let line = line.to_vec();
                    self.piece(&line, true);
                    at += i + 1;
                }
                None if rest.len() > PIECE => {
                    // Keep the last byte: it may be the CR of a CRLF.
                    let take = rest.len() - 1;
                    let piece = rest[..take].to_vec();
                    self.piece(&piece, false);
                    at += take;
                }
                None => break,
            }
        }
        if self.state == State::Done {
            buf.clear();
        } else {
            buf.drain(..at);
        }
    }

    /// The end of the output: whatever is left is the last line.
    pub fn finish(mut self, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
        self.feed(buf);
        if !buf.is_empty() && self.state != State::Done {
            let rest = std::mem::take(buf);
            let rest = rest.strip_suffix(b"\r").unwrap_or(&rest).to_vec();
            self.piece(&rest, true);
        }
        self.found.then_some(self.field)
    }

    /// One line, or a piece of one (`ends` when it ends the line).
    fn piece(&mut self, bytes: &[u8], ends: bool) {
        match self.mid_line {
            Some(collect) => {
                if collect {
                    self.keep(bytes);
                }
            }
            None => {
                // Dot-stuffing: a line that starts with "." was sent as "..".
                let line = match bytes {
                    [b'.', b'.', ..] => &bytes[1..],
                    _ => bytes,
                };
                let collect = self.start(line, ends);
                if collect {
                    self.keep(line);
                }
                if !ends {
                    self.mid_line = Some(collect);
                }
            }
        }
        if ends {
            self.mid_line = None;
        }
    }

    /// A line starts: decides whether it belongs to the field.
    fn start(&mut self, line: &[u8], ends: bool) -> bool {
        if line.is_empty() && ends {
            // The blank line: the header is over.
            self.state = State::Done;
            return false;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match self.state {
            State::Collecting if continuation => {
                self.keep(b"\r\n");
                true
            }
            State::Collecting => {
                self.state = State::Done;
                false
            }
            State::Looking if !continuation && starts_with_ignore_case(line, &self.prefix) => {
                self.state = State::Collecting;
                self.found = true;
                true
            }
            _ => false,
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max.saturating_sub(self.field.len());
        self.field
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or(bytes));
    }
}

fn memchr_lf(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// EUIDL's value of a `From:` field: the text after `From:` and the blanks
/// that follow it, to the end of the field's first line (qpopper.md §3.4).
pub fn from_value(field: &[u8]) -> &[u8] {
    let first = field
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .map_or(field, |i| &field[..i]);
    let value = first.get(FROM.len()..).unwrap_or(b"");
    let blanks = value
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &value[blanks..]
}

/// The name EUIDL looks for.
pub const FROM: &[u8] = b"From:";

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(out: &[u8], prefix: &[u8], max: usize, step: usize) -> Option<Vec<u8>> {
        let mut s = HeaderScan::new(prefix, max);
        let mut buf = Vec::new();
        for piece in out.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            s.feed(&mut buf);
            if s.is_done() {
                break;
            }
        }
        s.finish(&mut buf)
    }

    const TOP: &[u8] = b"Date: x\r\nFROM:  Alice <a@x>\r\nSubject: one\r\n two\r\n\tthree\r\nX-UIDL: u\r\n\r\nFrom: body\r\n";

    #[test]
    fn first_match_with_its_continuation_lines() {
        for step in [1, 2, 3, 7, 4096] {
            assert_eq!(
                scan(TOP, b"from:", 100, step).as_deref(),
                Some(&b"FROM:  Alice <a@x>"[..])
            );
            assert_eq!(
                scan(TOP, b"subj", 100, step).as_deref(),
                Some(&b"Subject: one\r\n two\r\n\tthree"[..])
            );
            assert_eq!(
                scan(TOP, b"x-uidl", 100, step).as_deref(),
                Some(&b"X-UIDL: u"[..])
            );
        }
    }

    #[test]
    fn the_body_is_never_searched() {
        assert_eq!(scan(TOP, b"From: body", 100, 5), None);
        assert_eq!(scan(b"\r\nFrom: a\r\n", b"from", 100, 5), None);
        // A continuation line is not a line of its own.
        assert_eq!(scan(b"A: b\r\n From: x\r\n\r\n", b" from", 100, 3), None);
    }

    #[test]
    fn dot_stuffing_is_undone() {
        assert_eq!(
            scan(b"..Odd: 1\r\n\r\n", b".odd", 100, 2).as_deref(),
            Some(&b".Odd: 1"[..])
        );
    }

    #[test]
    fn bounded_however_long_the_header() {
        let mut top = b"Long: ".to_vec();
        top.extend(std::iter::repeat_n(b'a', 100_000));
        top.extend_from_slice(b"\r\nFrom: z\r\n\r\n");
        let mut s = HeaderScan::new(b"from", 50);
        let mut buf = Vec::new();
        let mut peak = 0;
        for piece in top.chunks(1000) {
            buf.extend_from_slice(piece);
            s.feed(&mut buf);
            peak = peak.max(buf.len());
        }
        assert!(peak <= PIECE + 1000, "{peak}");
        assert_eq!(s.finish(&mut buf).as_deref(), Some(&b"From: z"[..]));
        assert_eq!(
            scan(&top, b"long", 10, 333).as_deref(),
            Some(&b"Long: aaaa"[..])
        );
    }

    #[test]
    fn a_header_without_its_blank_line() {
        assert_eq!(
            scan(b"A: 1\r\nB: 2", b"b:", 100, 1).as_deref(),
            Some(&b"B: 2"[..])
        );
    }

    #[test]
    fn from_values() {
        assert_eq!(from_value(b"From: Alice <a@x>"), b"Alice <a@x>");
        assert_eq!(from_value(b"from:\t \tx y "), b"x y ");
        assert_eq!(from_value(b"From:"), b"");
        assert_eq!(from_value(b"From: a\r\n b"), b"a");
    }
}
