//! The CAPA reply (RFC 2449 §5): what this popper can do now.
//!
//! CAPA lists only what would succeed on this connection at this moment
//! (Thunderbird retries for ever what CAPA promises): `STLS` while TLS can
//! still be started, `USER` and the clear-text SASL mechanisms only where
//! the clear-text policy lets a password through, the digest mechanisms
//! only where popper holds the secrets they need.

use crate::sasl::Mechanism;

/// What a build and configuration can offer; the session asks for the
/// lines of the moment with [`Capabilities::lines`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    version: String,
    apop_only: bool,
    digests: bool,
    login_delay: Option<u32>,
    expire: Option<Expire>,
}

/// How long messages stay on the server (RFC 2449 §6.7's `EXPIRE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expire {
    /// `EXPIRE NEVER`: the site does not delete mail.
    Never,
    /// `EXPIRE N`: mail may be deleted N days after it was retrieved
    /// (0: the client should delete what it retrieved).
    Days(u32),
}

/// The facts of the moment that decide the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// STLS would start TLS now.
    pub stls: bool,
    /// A password may be sent in clear now (USER, PLAIN, LOGIN).
    pub clear_text: bool,
}

impl Capabilities {
    /// A build's capabilities: `apop_only` drops USER and the clear-text
    /// mechanisms (such a build refuses them, so advertising them would
    /// mislead clients).
    pub fn new(apop_only: bool, version: &str) -> Capabilities {
        Capabilities {
            version: version.to_string(),
            apop_only,
            digests: false,
            login_delay: None,
            expire: None,
        }
    }

    /// Offers CRAM-MD5 and SCRAM-SHA-256: only when popper itself holds
    /// the users' secrets (the APOP database).
    pub fn with_digests(mut self, on: bool) -> Capabilities {
        self.digests = on;
        self
    }

    /// Announces the site's policies (qpopper 4's `-e login_delay=N,expire=N`):
    /// `LOGIN-DELAY N` (RFC 2449 §6.5, seconds between logins) and
    /// `EXPIRE` (§6.7). Only announced: like qpopper 4, popper enforces
    /// neither (the site does, if it wants to).
    pub fn with_policies(mut self, login_delay: Option<u32>, expire: Option<Expire>) -> Self {
        self.login_delay = login_delay;
        self.expire = expire;
        self
    }

    /// The SASL mechanisms usable now, strongest first.
    pub fn mechanisms(&self, clear_text: bool) -> Vec<Mechanism> {
        let mut m = Vec::with_capacity(4);
        if self.digests {
            m.extend([Mechanism::ScramSha256, Mechanism::CramMd5]);
        }
        if clear_text && !self.apop_only {
            m.extend([Mechanism::Plain, Mechanism::Login]);
        }
        m
    }

    /// The capability lines for the moment `now`.
    pub fn lines(&self, now: Now) -> Vec<String> {
        let mut caps = vec!["TOP".to_string()];
        if !self.apop_only && now.clear_text {
            caps.push("USER".to_string());
        }
        let mechs = self.mechanisms(now.clear_text);
        if !mechs.is_empty() {
            let names: Vec<&str> = mechs.iter().map(|m| m.name()).collect();
            caps.push(format!("SASL {}", names.join(" ")));
        }
        if now.stls {
            caps.push("STLS".to_string());
        }
        caps.extend(
            ["UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
                .iter()
                .map(|s| (*s).to_string()),
        );
        if let Some(n) = self.login_delay {
            caps.push(format!("LOGIN-DELAY {n}"));
        }
        match self.expire {
            Some(Expire::Never) => caps.push("EXPIRE NEVER".to_string()),
            Some(Expire::Days(n)) => caps.push(format!("EXPIRE {n}")),
            None => {}
        }
        caps.push(format!("IMPLEMENTATION popper-{}", self.version));
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAR: Now = Now {
        stls: false,
        clear_text: true,
    };

    #[test]
    fn user_only_when_usable() {
        let full = Capabilities::new(false, "1.0").lines(CLEAR);
        assert_eq!(
            full,
            [
                "TOP",
                "USER",
                "SASL PLAIN LOGIN",
                "UIDL",
                "RESP-CODES",
                "AUTH-RESP-CODE",
                "PIPELINING",
                "IMPLEMENTATION popper-1.0"
            ]
        );
        let apop_only = Capabilities::new(true, "1.0").lines(CLEAR);
        assert!(
            !apop_only
                .iter()
                .any(|c| c == "USER" || c.starts_with("SASL"))
        );
        let refused = Capabilities::new(false, "1.0").lines(Now {
            stls: true,
            clear_text: false,
        });
        assert!(!refused.iter().any(|c| c == "USER" || c.starts_with("SASL")));
        assert!(refused.iter().any(|c| c == "STLS"));
    }

    #[test]
    fn login_delay_and_expire_when_set() {
        let plain = Capabilities::new(false, "1.0").lines(CLEAR);
        assert!(
            !plain
                .iter()
                .any(|c| c.starts_with("LOGIN-DELAY") || c.starts_with("EXPIRE"))
        );
        let caps = Capabilities::new(false, "1.0").with_policies(Some(900), Some(Expire::Days(30)));
        let lines = caps.lines(CLEAR);
        let tail: Vec<&str> = lines
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            tail,
            ["LOGIN-DELAY 900", "EXPIRE 30", "IMPLEMENTATION popper-1.0"]
        );
        let caps = Capabilities::new(false, "1.0").with_policies(None, Some(Expire::Never));
        assert!(caps.lines(CLEAR).iter().any(|c| c == "EXPIRE NEVER"));
        let caps = Capabilities::new(false, "1.0").with_policies(Some(0), Some(Expire::Days(0)));
        let lines = caps.lines(CLEAR);
        assert!(lines.iter().any(|c| c == "LOGIN-DELAY 0"));
        assert!(lines.iter().any(|c| c == "EXPIRE 0"));
    }

    #[test]
    fn digests_when_the_secrets_are_here() {
        let caps = Capabilities::new(true, "1.0").with_digests(true);
        let lines = caps.lines(CLEAR);
        assert!(lines.iter().any(|c| c == "SASL SCRAM-SHA-256 CRAM-MD5"));
        let caps = Capabilities::new(false, "1.0").with_digests(true);
        assert!(
            caps.lines(CLEAR)
                .iter()
                .any(|c| c == "SASL SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN")
        );
    }
}
