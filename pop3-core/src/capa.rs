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
        }
    }

    /// Offers CRAM-MD5 and SCRAM-SHA-256: only when popper itself holds
    /// the users' secrets (the APOP database).
    pub fn with_digests(mut self, on: bool) -> Capabilities {
        self.digests = on;
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
