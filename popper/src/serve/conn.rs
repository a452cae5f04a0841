//! The client connection: reads with the idle timeout, buffered writes.
//!
//! inetd, tcpd, xinetd, systemd (`Accept=yes`) and tcpserver all hand
//! popper the connection as fds 0 and 1 (the same socket for the first
//! four, two pipe ends for a shell test). Reads wait in `poll` so the idle
//! timeout (`-T`) needs no signal; SIGHUP/SIGTERM interrupt the wait and
//! are seen through [`crate::sys::HANGUP`]. Replies collect in a buffer
//! that is written out when the client has nothing more queued (so a
//! pipelining client gets its replies in one write) or when it grows large.
//!
//! After STLS (or from the start on port 995) the same reads and writes go
//! through [`Tls`]; nothing above this module knows the difference.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

pub use pop3_core::drive::Input;

use super::tls::Tls;
use crate::limits::FLUSH_AT;
use crate::maildrop::Output;

/// The two ends of a client connection.
pub struct Conn<'a> {
    input: BorrowedFd<'a>,
    output: BorrowedFd<'a>,
    timeout: Option<Duration>,
    out: Vec<u8>,
    /// Set once a write failed: the client is gone, further output is dropped.
    broken: bool,
    /// Bytes written to the client.
    pub written: u64,
    /// The TLS layer, once started.
    tls: Option<Box<Tls>>,
}

impl<'a> Conn<'a> {
    /// A connection reading `input` and writing `output`; `timeout` of
    /// `None` waits forever.
    pub fn new(input: BorrowedFd<'a>, output: BorrowedFd<'a>, timeout: Option<Duration>) -> Self {
        Conn {
            input,
            output,
            timeout,
            out: Vec::with_capacity(FLUSH_AT + 4096),
            broken: false,
            written: 0,
            tls: None,
        }
    }

    /// Runs the TLS handshake (bounded; see [`Tls::handshake`]); from then
    /// on every read and write is encrypted. Returns the version and
    /// cipher suite, or why it failed.
    pub fn start_tls(
        &mut self,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> Result<String, String> {
        let tls = Tls::handshake(config, self.input, self.output, self.timeout)?;
        let what = tls.describe();
        self.tls = Some(Box::new(tls));
        Ok(what)
    }

    /// Ends a TLS session cleanly (close_notify); nothing for plain text.
    pub fn close(&mut self) {
        if let Some(t) = self.tls.as_mut()
            && !self.broken
        {
            t.close(self.output);
        }
    }

    /// True once writing to the client has failed.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Reads what the client sent, waiting at most the idle timeout.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Input> {
        if let Some(t) = self.tls.as_mut() {
            return t.read(self.input, self.output, buf, self.timeout);
        }
        let ms = match self.timeout {
            None => PollTimeout::NONE,
            Some(t) => PollTimeout::try_from(t.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX),
        };
        loop {
            if crate::sys::HANGUP.load(Ordering::SeqCst) {
                return Ok(Input::Hangup);
            }
            let mut fds = [PollFd::new(self.input, PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(0) => return Ok(Input::Timeout),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            match nix::unistd::read(self.input, buf) {
                Ok(0) => return Ok(Input::Eof),
                Ok(n) => return Ok(Input::Data(n)),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                // A reset connection is a client that went away.
                Err(nix::errno::Errno::ECONNRESET) => return Ok(Input::Eof),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The output buffer.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Writes out everything buffered. After a failure the client is
    /// treated as gone and later output is discarded.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.broken {
            self.out.clear();
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if let Some(t) = self.tls.as_mut() {
            let r = t.write_all(self.output, &self.out);
            if r.is_err() {
                // What reached the client is unknown: count none of it, so
                // no RETR it may not have received to its end is marked.
                self.broken = true;
            } else {
                self.written += self.out.len() as u64;
            }
            self.out.clear();
            return r;
        }
        let mut done = 0;
        while done < self.out.len() {
            match nix::unistd::write(self.output, &self.out[done..]) {
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    // What did go out counts: it decides which RETRs the
                    // client received to their end.
                    self.written += done as u64;
                    self.broken = true;
                    self.out.clear();
                    return Err(e.into());
                }
            }
        }
        self.written += done as u64;
        self.out.clear();
        Ok(())
    }
}

impl Output for Conn<'_> {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    fn drain(&mut self) -> io::Result<()> {
        if self.out.len() >= FLUSH_AT {
            self.flush()
        } else {
            Ok(())
        }
    }
}

/// Sends each reply as soon as it is written: popper already gathers a
/// reply (or 64 KiB of a message) into one write, and Nagle's algorithm
/// would hold its last part back until the client acknowledged the rest —
/// which a client waiting for the end of the reply delays (40 ms on Linux).
/// Not a socket (a pipe): nothing to do.
pub fn set_no_delay(fd: BorrowedFd<'_>) {
    let _ = nix::sys::socket::setsockopt(&fd.as_fd(), nix::sys::socket::sockopt::TcpNoDelay, &true);
}

/// Makes a blocked write to a socket give up after `timeout`, so a client
/// that stops reading cannot hold popper (and the user's mailbox lock)
/// forever. Not a socket (a pipe): nothing to do.
pub fn set_write_timeout(fd: BorrowedFd<'_>, timeout: Duration) {
    let tv = nix::sys::time::TimeVal::new(timeout.as_secs().min(i64::MAX as u64) as i64, 0);
    let _ = nix::sys::socket::setsockopt(&fd.as_fd(), nix::sys::socket::sockopt::SendTimeout, &tv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn reads_data_eof_and_times_out() {
        let (r, mut w) = std::io::pipe().unwrap();
        let (_r2, w2) = std::io::pipe().unwrap();
        let mut c = Conn::new(r.as_fd(), w2.as_fd(), Some(Duration::from_millis(50)));
        let mut buf = [0u8; 64];
        assert_eq!(c.read(&mut buf).unwrap(), Input::Timeout);
        w.write_all(b"NOOP\r\n").unwrap();
        assert_eq!(c.read(&mut buf).unwrap(), Input::Data(6));
        drop(w);
        assert_eq!(c.read(&mut buf).unwrap(), Input::Eof);
    }

    #[test]
    fn flush_writes_everything_and_a_dead_client_is_remembered() {
        let (r, w) = std::io::pipe().unwrap();
        let (mut out_r, out_w) = std::io::pipe().unwrap();
        let mut c = Conn::new(r.as_fd(), out_w.as_fd(), None);
        c.buffer().extend_from_slice(b"+OK hi\r\n");
        c.flush().unwrap();
        assert_eq!(c.written, 8);
        let mut got = [0u8; 8];
        std::io::Read::read_exact(&mut out_r, &mut got).unwrap();
        assert_eq!(&got, b"+OK hi\r\n");
        drop(out_r);
        // SIGPIPE would kill the test process: ignore it, as popper does.
        unsafe_free_ignore_sigpipe();
        c.buffer().extend_from_slice(b"+OK again\r\n");
        assert!(c.flush().is_err());
        assert!(c.is_broken());
        drop(w);
    }

    fn unsafe_free_ignore_sigpipe() {
        crate::sys::install_signal_handlers().unwrap();
    }
}
