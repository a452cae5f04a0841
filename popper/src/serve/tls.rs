//! The TLS layer of a connection: rustls over the client's two file
//! descriptors, synchronous, one connection per process (inetd's model).
//!
//! Reads wait in `poll` with the idle timeout like plain reads; the
//! handshake has its own bound ([`HANDSHAKE_LIMIT`], or the idle timeout if
//! shorter), so a client that stalls in the middle of it cannot hold a
//! process. Nothing here parses what the client sends: rustls does.

use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustls::{ServerConfig, ServerConnection};

use pop3_core::drive::Input;

/// Longest a handshake may take: a client that has not finished it by then
/// is gone or hostile.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(60);

/// An encrypted connection.
pub struct Tls {
    conn: ServerConnection,
}

/// A file descriptor as `Read`/`Write` for rustls (no buffering, no
/// ownership: the descriptors are the process's 0 and 1).
struct Fd<'a>(BorrowedFd<'a>);

impl Read for Fd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::read(self.0, buf) {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                // A reset connection is a client that went away.
                Err(nix::errno::Errno::ECONNRESET) => return Ok(0),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Write for Fd<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::write(self.0, buf) {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// rustls hands over several records at once: one `writev` for all
    /// of them (the default would write only the first per call).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        loop {
            match nix::sys::uio::writev(self.0, bufs) {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Waits until `fd` is readable; false when `deadline` passed first (or a
/// signal asked popper to stop).
fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<bool> {
    loop {
        if crate::sys::HANGUP.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        let ms = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(crate::clock::monotonic());
                if left.is_zero() {
                    return Ok(false);
                }
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

impl Tls {
    /// Runs the handshake on `input`/`output`, bounded by
    /// [`HANDSHAKE_LIMIT`] and `timeout`. The error says why, for the log.
    pub fn handshake(
        config: Arc<ServerConfig>,
        input: BorrowedFd<'_>,
        output: BorrowedFd<'_>,
        timeout: Option<Duration>,
    ) -> Result<Tls, String> {
        let limit = timeout.map_or(HANDSHAKE_LIMIT, |t| t.min(HANDSHAKE_LIMIT));
        let deadline = crate::clock::monotonic() + limit;
        let mut conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            while conn.wants_write() {
                conn.write_tls(&mut Fd(output))
                    .map_err(|e| format!("writing: {e}"))?;
            }
            if !conn.is_handshaking() {
                break;
            }
            if !wait_readable(input, Some(deadline)).map_err(|e| e.to_string())? {
                return Err(format!("no handshake within {} s", limit.as_secs()));
            }
            match conn.read_tls(&mut Fd(input)) {
                Ok(0) => return Err("the client closed the connection".to_string()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
            if let Err(e) = conn.process_new_packets() {
                // Tell the client why (the alert rustls queued), then give up.
                let _ = conn.write_tls(&mut Fd(output));
                return Err(e.to_string());
            }
        }
        while conn.wants_write() {
            conn.write_tls(&mut Fd(output))
                .map_err(|e| format!("writing: {e}"))?;
        }
        Ok(Tls { conn })
    }

    /// The negotiated version and cipher suite, for the log.
    pub fn describe(&self) -> String {
        let version = self
            .conn
            .protocol_version()
            .map_or_else(|| "?".to_string(), |v| format!("{v:?}"));
        let suite = self
            .conn
            .negotiated_cipher_suite()
            .map_or_else(|| "?".to_string(), |s| format!("{:?}", s.suite()));
        format!("{version} {suite}")
    }

    /// Reads decrypted bytes, waiting at most `timeout` for the client.
    pub fn read(
        &mut self,
        input: BorrowedFd<'_>,
        output: BorrowedFd<'_>,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<Input> {
        let deadline = timeout.map(|t| crate::clock::monotonic() + t);
        loop {
            match self.conn.reader().read(buf) {
                Ok(0) => return Ok(Input::Eof),
                Ok(n) => return Ok(Input::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: as good as EOF here.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Input::Eof),
                Err(e) => return Err(e),
            }
            if crate::sys::HANGUP.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(Input::Hangup);
            }
            if !wait_readable(input, deadline)? {
                if crate::sys::HANGUP.load(std::sync::atomic::Ordering::SeqCst) {
                    return Ok(Input::Hangup);
                }
                return Ok(Input::Timeout);
            }
            match self.conn.read_tls(&mut Fd(input)) {
                Ok(0) => return Ok(Input::Eof),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.conn.write_tls(&mut Fd(output));
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // A key update or an alert may want an answer.
            while self.conn.wants_write() {
                self.conn.write_tls(&mut Fd(output))?;
            }
        }
    }

    /// Encrypts and writes all of `data`.
    pub fn write_all(&mut self, output: BorrowedFd<'_>, data: &[u8]) -> io::Result<()> {
        // In pieces, so the records rustls buffers stay bounded.
        for chunk in data.chunks(1 << 16) {
            self.conn.writer().write_all(chunk)?;
            while self.conn.wants_write() {
                self.conn.write_tls(&mut Fd(output))?;
            }
        }
        Ok(())
    }

    /// Sends close_notify (the orderly end of a TLS session).
    pub fn close(&mut self, output: BorrowedFd<'_>) {
        self.conn.send_close_notify();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut Fd(output)).is_err() {
                break;
            }
        }
    }
}
