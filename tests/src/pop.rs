//! A raw POP3 client for exact transcripts: it sends what it is told and
//! returns the server's bytes as they came.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::users::TestUser;

/// One connection.
pub struct Pop {
    r: BufReader<TcpStream>,
    w: TcpStream,
    /// The greeting line (without CRLF).
    pub greeting: String,
}

impl Pop {
    /// Connects to 127.0.0.1:`port` and reads the greeting.
    pub fn connect(port: u16) -> Pop {
        Pop::on(TcpStream::connect(("127.0.0.1", port)).unwrap())
    }

    /// Connects from the local address `from` (a loopback address such as
    /// 127.0.0.2, to look like another host) to 127.0.0.1:`port`.
    pub fn connect_from(from: std::net::Ipv4Addr, port: u16) -> Pop {
        let s = crate::net::connect_from(
            from,
            std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port),
        );
        Pop::on(s)
    }

    /// Connects to `addr` (IPv4 or IPv6).
    pub fn connect_to(addr: std::net::SocketAddr) -> Pop {
        Pop::on(TcpStream::connect(addr).unwrap())
    }

    fn on(s: TcpStream) -> Pop {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut p = Pop {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            greeting: String::new(),
        };
        p.greeting = p.line();
        p
    }

    /// Reads one line; returns it without its CRLF. Panics at EOF or on a
    /// line not ending in CRLF.
    pub fn line(&mut self) -> String {
        let raw = self.raw_line();
        assert!(
            raw.ends_with(b"\r\n"),
            "line without CRLF: {:?}",
            String::from_utf8_lossy(&raw)
        );
        String::from_utf8_lossy(&raw[..raw.len() - 2]).into_owned()
    }

    /// Reads one line with its line end.
    pub fn raw_line(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        let n = self.r.read_until(b'\n', &mut v).unwrap();
        assert!(n > 0, "connection closed");
        v
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    /// Sends `cmd` CRLF and returns the one-line reply.
    pub fn cmd(&mut self, cmd: &str) -> String {
        self.send_raw(format!("{cmd}\r\n").as_bytes());
        self.line()
    }

    /// Sends `cmd` and returns the status line and, for `+OK`, the body as
    /// sent (dot-stuffed, CRLF), without the terminating `.` line.
    pub fn multi(&mut self, cmd: &str) -> (String, Vec<u8>) {
        let status = self.cmd(cmd);
        if !status.starts_with("+OK") {
            return (status, Vec::new());
        }
        let mut body = Vec::new();
        loop {
            let l = self.raw_line();
            if l == b".\r\n" {
                return (status, body);
            }
            body.extend_from_slice(&l);
        }
    }

    /// Reads a multi-line reply without keeping its body (the status line
    /// and the body's length).
    pub fn multi_quiet(&mut self) -> (String, usize) {
        let status = self.line();
        let mut n = 0;
        if status.starts_with("+OK") {
            loop {
                let l = self.raw_line();
                if l == b".\r\n" {
                    break;
                }
                n += l.len();
            }
        }
        (status, n)
    }

    /// USER + PASS; returns the reply to PASS.
    pub fn login(&mut self, u: &TestUser) -> String {
        let r = self.cmd(&format!("USER {}", u.name));
        assert!(r.starts_with("+OK"), "USER: {r}");
        self.cmd(&format!("PASS {}", u.password))
    }

    /// A second handle for writing (to send from another thread).
    pub fn writer(&self) -> TcpStream {
        self.w.try_clone().unwrap()
    }

    /// Everything until the server closes.
    pub fn rest(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        let _ = self.r.read_to_end(&mut v);
        v
    }
}

/// Undoes dot-stuffing of a multi-line body.
pub fn unstuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

/// A reply body with CRLF line ends turned back into LF (for comparing
/// listings and texts; lossy outside UTF-8).
pub fn lf(crlf: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(crlf)
        .replace("\r\n", "\n")
        .into_bytes()
}
