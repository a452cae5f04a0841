//! Line framing of client input: bytes in, complete command lines out.
//!
//! This is the first layer of the sans-IO core (see `lib.rs`). It owns a
//! fixed-capacity buffer, so a client can never make popper allocate more
//! than [`MAX_LINE`] bytes of command input, however it sends its bytes.
//!
//! RFC 1939 §3 / RFC 2449 §4: a command line is at most 255 octets, and
//! qpopper accepted up to 1023 bytes before the line end (`MAXLINELEN` − 1).
//! We accept qpopper's 1023 so that no client that worked with qpopper
//! breaks.
//!
//! An over-long line is reported **once**, as soon as it is detected, and the
//! rest of it is discarded up to its LF without ever being looked at as a
//! command (CVE-2002-0454 was a loop on such a line; qpopper 2.53 processed
//! the first 1023 bytes as a command, which could run a truncated PASS).
//! Discarding costs O(1) memory and O(n) time in the bytes received.

pub use crate::limits::MAX_LINE;

/// What the framer found in the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its LF and without one CR before the LF.
    Line(&'a [u8]),
    /// The current line went past [`MAX_LINE`]; what follows up to its LF
    /// is skipped. Reported once per over-long line.
    TooLong,
}

/// A bounded line assembler. Feed it bytes with [`LineBuf::push`] and take
/// frames out with [`LineBuf::next_frame`].
#[derive(Debug)]
pub struct LineBuf {
    /// Bytes received but not yet returned; at most `MAX_LINE + 2` bytes of
    /// an unfinished line plus whatever complete lines a pipelining client
    /// sent in the same read (bounded by the caller's read size).
    buf: Vec<u8>,
    /// Start of the unconsumed part of `buf`.
    start: usize,
    /// True while skipping the remainder of an over-long line.
    discarding: bool,
    /// Bytes skipped so far of the over-long line being skipped.
    discarded: u64,
    /// The whole length of an over-long line that has ended, until taken.
    ended: Option<u64>,
    /// Set after returning a line; the line's bytes are dropped at the next call.
    consumed_to: Option<usize>,
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuf {
    /// An empty framer.
    pub fn new() -> Self {
        LineBuf {
            buf: Vec::with_capacity(4096),
            start: 0,
            discarding: false,
            discarded: 0,
            ended: None,
            consumed_to: None,
        }
    }

    /// Appends bytes read from the client. The caller reads in bounded
    /// chunks; the framer keeps at most one unfinished line of them.
    pub fn push(&mut self, bytes: &[u8]) {
        self.release_consumed();
        if self.discarding {
            // Only the part after the LF matters; the rest is dropped at once.
            match memchr::memchr(b'\n', bytes) {
                None => {
                    self.discarded += bytes.len() as u64;
                }
                Some(i) => {
                    self.discarded += i as u64 + 1;
                    self.discarding = false;
                    self.end_discard();
                    self.buf.extend_from_slice(&bytes[i + 1..]);
                }
            }
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The length (with its LF) of the over-long line that ended in the
    /// last [`push`](Self::push) or [`next_frame`](Self::next_frame), once:
    /// one log line per over-long line, with its total, however many reads
    /// it took. Each call of either ends at most one such line, so taking
    /// after each call sees every one.
    pub fn take_discarded(&mut self) -> Option<u64> {
        self.ended.take()
    }

    /// The bytes skipped so far of an over-long line that has not ended
    /// (the client went away in the middle of it).
    pub fn discarding(&self) -> Option<u64> {
        self.discarding.then_some(self.discarded)
    }

    fn end_discard(&mut self) {
        debug_assert!(self.ended.is_none(), "an ended line was not taken");
        self.ended = Some(std::mem::take(&mut self.discarded));
    }

    /// True when no complete line is waiting: the driver flushes its output
    /// and blocks for more input only then, which is what makes pipelining
    /// both correct and cheap.
    pub fn is_drained(&self) -> bool {
        let start = self.consumed_to.unwrap_or(self.start);
        memchr::memchr(b'\n', &self.buf[start..]).is_none()
            && self.buf.len() - start <= MAX_LINE + 1
    }

    /// True when an unfinished line (bytes without their LF) is buffered.
    pub fn has_partial(&self) -> bool {
        let start = self.consumed_to.unwrap_or(self.start);
        self.buf.len() > start
    }

    /// Drops everything buffered (after STLS: what the client sent in
    /// clear behind it must never be run as a command, RFC 2595 §3 and
    /// CVE-2011-0411). Returns how many bytes were dropped.
    pub fn clear(&mut self) -> usize {
        let start = self.consumed_to.unwrap_or(self.start);
        let dropped = self.buf.len().saturating_sub(start);
        self.buf.clear();
        self.start = 0;
        self.consumed_to = None;
        self.discarding = false;
        self.discarded = 0;
        self.ended = None;
        dropped
    }

    /// The next frame, or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        self.release_consumed();
        let pending = &self.buf[self.start..];
        match memchr::memchr(b'\n', pending) {
            Some(i) if i <= MAX_LINE + 1 => {
                let mut line = &pending[..i];
                if let Some((b'\r', rest)) = line.split_last() {
                    line = rest;
                }
                if line.len() > MAX_LINE {
                    // 1024 bytes and no CR before the LF: one byte too many.
                    self.discarded += i as u64 + 1;
                    self.end_discard();
                    self.start += i + 1;
                    return Some(Frame::TooLong);
                }
                let (s, e) = (self.start, self.start + line.len());
                self.consumed_to = Some(self.start + i + 1);
                Some(Frame::Line(&self.buf[s..e]))
            }
            Some(i) => {
                // The LF is there but too far: the line is too long.
                self.discarded += i as u64 + 1;
                self.end_discard();
                self.start += i + 1;
                Some(Frame::TooLong)
            }
            None if pending.len() > MAX_LINE + 1 => {
                self.discarded += pending.len() as u64;
                self.buf.clear();
                self.start = 0;
                self.discarding = true;
                Some(Frame::TooLong)
            }
            None => None,
        }
    }

    fn release_consumed(&mut self) {
        if let Some(to) = self.consumed_to.take() {
            self.start = to;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 8192 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at `split` and collects every frame as owned data.
    fn frames(input: &[u8], split: usize) -> Vec<Result<Vec<u8>, ()>> {
        frames_and_totals(input, split).0
    }

    /// The frames, and the totals of the over-long lines as they end,
    /// taken the way the dispatch loop takes them.
    fn frames_and_totals(input: &[u8], split: usize) -> (Vec<Result<Vec<u8>, ()>>, Vec<u64>) {
        let mut lb = LineBuf::new();
        let mut out = Vec::new();
        let mut totals = Vec::new();
        for chunk in [&input[..split], &input[split..]] {
            lb.push(chunk);
            totals.extend(lb.take_discarded());
            loop {
                let f = match lb.next_frame() {
                    None => break,
                    Some(Frame::Line(l)) => Ok(l.to_vec()),
                    Some(Frame::TooLong) => Err(()),
                };
                out.push(f);
                totals.extend(lb.take_discarded());
            }
        }
        (out, totals)
    }

    #[test]
    fn each_over_long_line_is_counted_once_with_its_total() {
        // Regression: a 50 MiB line logged a notice per 16 KiB read.
        let mut input = vec![b'a'; 3000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        input.extend(vec![b'b'; 1025]);
        input.extend_from_slice(b"\n");
        input.extend(vec![b'c'; 1500]);
        for split in [
            0,
            1,
            1024,
            1025,
            1026,
            2999,
            3001,
            3002,
            3003,
            3008,
            4000,
            input.len(),
        ] {
            let (f, totals) = frames_and_totals(&input, split);
            assert_eq!(f, vec![Err(()), Ok(b"NOOP".to_vec()), Err(()), Err(())]);
            assert_eq!(totals, vec![3002, 1026], "split {split}");
        }
        let mut lb = LineBuf::new();
        lb.push(&vec![b'd'; 5000]);
        assert_eq!(lb.next_frame(), Some(Frame::TooLong));
        assert_eq!(lb.discarding(), Some(5000));
        assert_eq!(lb.take_discarded(), None);
    }

    fn at_every_split(input: &[u8], want: &[Result<&[u8], ()>]) {
        let want: Vec<Result<Vec<u8>, ()>> = want.iter().map(|r| r.map(|l| l.to_vec())).collect();
        for split in 0..=input.len() {
            assert_eq!(frames(input, split), want, "split at {split}");
        }
    }

    #[test]
    fn crlf_and_bare_lf_lines() {
        at_every_split(
            b"USER a\r\nPASS b\nSTAT\r\n",
            &[Ok(b"USER a"), Ok(b"PASS b"), Ok(b"STAT")],
        );
    }

    #[test]
    fn only_one_cr_is_removed() {
        at_every_split(b"a\r\r\n", &[Ok(b"a\r")]);
    }

    #[test]
    fn unfinished_line_waits() {
        let mut lb = LineBuf::new();
        lb.push(b"USER al");
        assert!(lb.next_frame().is_none());
        assert!(lb.has_partial());
        lb.push(b"ice\r\n");
        assert_eq!(lb.next_frame(), Some(Frame::Line(b"USER alice")));
        assert!(lb.next_frame().is_none());
        assert!(!lb.has_partial());
    }

    #[test]
    fn longest_line_is_accepted() {
        let mut input = vec![b'a'; MAX_LINE];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let long = vec![b'a'; MAX_LINE];
        at_every_split(&input, &[Ok(&long), Ok(b"NOOP")]);
        let mut input = vec![b'a'; MAX_LINE];
        input.extend_from_slice(b"\nNOOP\n");
        at_every_split(&input, &[Ok(&long), Ok(b"NOOP")]);
    }

    #[test]
    fn one_byte_too_long_is_one_error() {
        let mut input = vec![b'a'; MAX_LINE + 1];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        at_every_split(&input, &[Err(()), Ok(b"NOOP")]);
        let mut input = vec![b'a'; MAX_LINE + 1];
        input.extend_from_slice(b"\nNOOP\n");
        at_every_split(&input, &[Err(()), Ok(b"NOOP")]);
    }

    #[test]
    fn the_rest_of_a_long_line_is_never_a_command() {
        // 1500 bytes whose tail looks like a command.
        let mut input = vec![b'x'; 1490];
        input.extend_from_slice(b" QUIT\r\nSTAT\r\n");
        for split in [0, 1, 500, 1024, 1025, 1026, 1400, 1495, 1497, input.len()] {
            assert_eq!(
                frames(&input, split),
                vec![Err(()), Ok(b"STAT".to_vec())],
                "split {split}"
            );
        }
    }

    #[test]
    fn a_huge_line_uses_bounded_memory() {
        let mut lb = LineBuf::new();
        let chunk = vec![b'z'; 65536];
        let mut errors = 0;
        for _ in 0..1600 {
            // 100 MiB in all
            lb.push(&chunk);
            while let Some(f) = lb.next_frame() {
                assert_eq!(f, Frame::TooLong);
                errors += 1;
            }
            assert!(
                lb.buf.capacity() <= 2 * 65536 + 4096,
                "capacity {}",
                lb.buf.capacity()
            );
        }
        assert_eq!(lb.discarding(), Some(1600 * 65536));
        assert_eq!(lb.take_discarded(), None, "not ended yet");
        lb.push(b"tail\r\nNOOP\r\n");
        assert_eq!(lb.take_discarded(), Some(1600 * 65536 + 6));
        assert_eq!(lb.take_discarded(), None, "taken once");
        assert_eq!(lb.next_frame(), Some(Frame::Line(b"NOOP")));
        assert_eq!(errors, 1);
    }

    #[test]
    fn drained_means_no_complete_line() {
        let mut lb = LineBuf::new();
        lb.push(b"NOOP\r\nNO");
        assert!(!lb.is_drained());
        assert!(matches!(lb.next_frame(), Some(Frame::Line(_))));
        assert!(lb.is_drained());
        assert!(lb.next_frame().is_none());
    }
}
