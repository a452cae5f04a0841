//! Reading a PROXY header off the client socket: exactly its bytes, never
//! one more, within a deadline.
//!
//! Each round waits (poll) until the socket is readable, looks at what is
//! queued with `MSG_PEEK`, asks [`header::parse`] about everything so far,
//! and then consumes — with a plain `recv` of a counted length — either
//! the rest of the header (done) or all that was peeked (every byte of it
//! is still header). What follows the header stays queued in the kernel
//! for the POP3 session or the TLS handshake. A typical header costs one
//! poll, one peek and one recv.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};

use super::header::{self, Header, HeaderError, Parsed, V1_MAX, V2_MAX};

/// Why no header was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The bytes are not a PROXY header.
    Malformed(HeaderError),
    /// The proxy closed the connection after this many header bytes.
    Closed(usize),
    /// No whole header within the deadline; this many bytes had come.
    TimedOut(usize),
    /// SIGHUP/SIGTERM while waiting.
    Hangup,
    /// The socket failed.
    Io(Errno),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Malformed(e) => write!(f, "{e}"),
            ReadError::Closed(0) => f.write_str("closed without a PROXY header"),
            ReadError::Closed(n) => write!(f, "closed after {n} bytes of a PROXY header"),
            ReadError::TimedOut(0) => f.write_str("no PROXY header in time"),
            ReadError::TimedOut(n) => {
                write!(f, "the PROXY header stopped after {n} bytes")
            }
            ReadError::Hangup => f.write_str("popper was told to stop"),
            ReadError::Io(e) => write!(f, "reading the PROXY header: {e}"),
        }
    }
}

/// Reads one header from the socket `fd`, giving up after `limit`.
pub fn read_header(fd: BorrowedFd<'_>, limit: Duration) -> Result<Header, ReadError> {
    let deadline = crate::clock::monotonic() + limit;
    // What has been consumed (all of it header).
    let mut got: Vec<u8> = Vec::new();
    // Peeked bytes; `more` is how many the parser last said the header
    // still needs at least (exact for version 2).
    let mut peek: Vec<u8> = Vec::new();
    let mut more = 0;
    loop {
        wait(fd, deadline, got.len())?;
        let want = more.max(V1_MAX + 1).min(V2_MAX.saturating_sub(got.len()));
        if want == 0 {
            return Err(ReadError::Malformed(HeaderError::Signature));
        }
        if peek.len() < want {
            peek.resize(want, 0);
        }
        let n = match recv(fd.as_raw_fd(), &mut peek[..want], MsgFlags::MSG_PEEK) {
            Ok(0) => return Err(ReadError::Closed(got.len())),
            Ok(n) => n,
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(Errno::ECONNRESET) => return Err(ReadError::Closed(got.len())),
            Err(e) => return Err(ReadError::Io(e)),
        };
        let before = got.len();
        got.extend_from_slice(&peek[..n]);
        match header::parse(&got) {
            Err(e) => return Err(ReadError::Malformed(e)),
            Ok(Parsed::Header(h)) => {
                consume(fd, h.len - before)?;
                return Ok(h);
            }
            Ok(Parsed::NeedMore(k)) => {
                consume(fd, n)?;
                more = k;
            }
        }
    }
}

/// Waits until `fd` is readable or the deadline passes.
fn wait(fd: BorrowedFd<'_>, deadline: Instant, got: usize) -> Result<(), ReadError> {
    loop {
        if crate::sys::HANGUP.load(Ordering::SeqCst) {
            return Err(ReadError::Hangup);
        }
        let left = deadline.saturating_duration_since(crate::clock::monotonic());
        if left.is_zero() {
            return Err(ReadError::TimedOut(got));
        }
        // Rounded up, so a wait never ends just before the deadline.
        let ms = left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => {}
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// Takes exactly `n` bytes off the socket (bytes already peeked, so queued).
fn consume(fd: BorrowedFd<'_>, mut n: usize) -> Result<(), ReadError> {
    let mut sink = [0u8; 512];
    while n > 0 {
        let k = n.min(sink.len());
        match recv(fd.as_raw_fd(), &mut sink[..k], MsgFlags::empty()) {
            Ok(0) => return Err(ReadError::Closed(0)),
            Ok(r) => n -= r,
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn v1() -> &'static [u8] {
        b"PROXY TCP4 192.0.2.7 10.0.0.1 5000 110\r\n"
    }

    #[test]
    fn reads_exactly_the_header_and_leaves_what_follows() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let mut sent = v1().to_vec();
        sent.extend_from_slice(b"USER alice\r\n");
        a.write_all(&sent).unwrap();
        let h = read_header(b.as_fd(), Duration::from_secs(5)).unwrap();
        assert_eq!(h.len, v1().len());
        drop(a);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"USER alice\r\n");
    }

    #[test]
    fn a_header_in_pieces_is_put_together() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let mut h2 = header::V2_SIGNATURE.to_vec();
        h2.extend_from_slice(&[0x21, 0x11, 0x01, 0x0c]);
        h2.extend_from_slice(&[10, 0, 0, 9, 10, 0, 0, 1, 0, 9, 0, 110]);
        h2.extend(std::iter::repeat_n(0u8, 256));
        h2.extend_from_slice(b"\x16\x03\x01");
        let pieces = h2.clone();
        let writer = std::thread::spawn(move || {
            for chunk in pieces.chunks(7) {
                a.write_all(chunk).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            a
        });
        let h = read_header(b.as_fd(), Duration::from_secs(5)).unwrap();
        assert_eq!(h.len, 16 + 12 + 256);
        drop(writer.join().unwrap());
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"\x16\x03\x01");
    }

    #[test]
    fn truncated_slow_and_bad_headers_fail() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&v1()[..20]).unwrap();
        drop(a);
        assert_eq!(
            read_header(b.as_fd(), Duration::from_secs(5)),
            Err(ReadError::Closed(20))
        );
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&v1()[..20]).unwrap();
        let t = Instant::now();
        assert_eq!(
            read_header(b.as_fd(), Duration::from_millis(200)),
            Err(ReadError::TimedOut(20))
        );
        assert!(t.elapsed() >= Duration::from_millis(200));
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"USER alice\r\n").unwrap();
        assert_eq!(
            read_header(b.as_fd(), Duration::from_secs(5)),
            Err(ReadError::Malformed(HeaderError::Signature))
        );
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        assert_eq!(
            read_header(b.as_fd(), Duration::from_secs(5)),
            Err(ReadError::Closed(0))
        );
        assert_eq!(
            ReadError::Closed(0).to_string(),
            "closed without a PROXY header"
        );
    }
}
