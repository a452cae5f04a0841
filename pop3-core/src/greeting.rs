//! The greeting banner and the APOP timestamp in it.
//!
//! Pure: the driver supplies the pid, the time and a random nonce, so the
//! exact bytes can be tested. DECISIONS.md "Wire protocol": the banner keeps
//! qpopper's shape (`QPOP` token, two spaces before the timestamp); the
//! timestamp is sent only when APOP can work, and carries a nonce so it is
//! unique per connection even where pids repeat (containers).

/// What goes into the APOP challenge besides the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// Process id.
    pub pid: u32,
    /// Seconds since the epoch.
    pub time: i64,
    /// At least 32 random bits from the OS.
    pub nonce: u64,
}

/// The banner of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    host: String,
    version: String,
    shy: bool,
    timestamp: Option<String>,
}

impl Greeting {
    /// A banner for `host`; `challenge` is `Some` only when APOP can work.
    pub fn new(host: &str, version: &str, shy: bool, challenge: Option<Challenge>) -> Greeting {
        let host: String = host.chars().filter(|c| c.is_ascii_graphic()).collect();
        let host = if host.is_empty() {
            "localhost".to_string()
        } else {
            host
        };
        // Hex nonce: never `=`, which mpop refuses in a timestamp.
        let timestamp = challenge.map(|c| format!("<{}.{}.{:x}@{}>", c.pid, c.time, c.nonce, host));
        Greeting {
            host,
            version: version.to_string(),
            shy,
            timestamp,
        }
    }

    /// The APOP challenge (the timestamp with its angle brackets), if any.
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }

    /// The host name used in the banner and the sign-off line.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Appends the banner line with its CRLF.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let head = if self.shy {
            "+OK ready".to_string()
        } else {
            format!(
                "+OK QPOP (version {}) at {} starting.",
                self.version, self.host
            )
        };
        out.extend_from_slice(head.as_bytes());
        if let Some(ts) = &self.timestamp {
            out.extend_from_slice(b"  ");
            out.extend_from_slice(ts.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(g: &Greeting) -> String {
        let mut v = Vec::new();
        g.write_to(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn with_apop() {
        let g = Greeting::new(
            "pop.example.com",
            "1.2.3",
            false,
            Some(Challenge {
                pid: 1896,
                time: 697170952,
                nonce: 0xdeadbeef,
            }),
        );
        assert_eq!(
            text(&g),
            "+OK QPOP (version 1.2.3) at pop.example.com starting.  <1896.697170952.deadbeef@pop.example.com>\r\n"
        );
        assert_eq!(
            g.timestamp(),
            Some("<1896.697170952.deadbeef@pop.example.com>")
        );
    }

    #[test]
    fn without_apop_ends_at_starting() {
        let g = Greeting::new("h", "1.2.3", false, None);
        assert_eq!(text(&g), "+OK QPOP (version 1.2.3) at h starting.\r\n");
        assert_eq!(g.timestamp(), None);
    }

    #[test]
    fn shy() {
        let c = Challenge {
            pid: 7,
            time: 8,
            nonce: 9,
        };
        assert_eq!(
            text(&Greeting::new("h", "1", true, Some(c))),
            "+OK ready  <7.8.9@h>\r\n"
        );
        assert_eq!(text(&Greeting::new("h", "1", true, None)), "+OK ready\r\n");
    }

    #[test]
    fn host_cannot_break_the_line() {
        let g = Greeting::new("a b\r\nc", "1", false, None);
        assert_eq!(g.host(), "abc");
    }
}
