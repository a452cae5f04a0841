//! TLS with rustls: qpopper 4.1's settings, and the server configuration
//! built from them.
//!
//! The `ring` provider: it builds with a C compiler alone (no cmake, no
//! nasm, unlike aws-lc-rs), is smaller, and has everything a POP server
//! needs (ECDHE with X25519/P-256, AES-GCM and ChaCha20-Poly1305, RSA and
//! ECDSA certificates). TLS 1.2 is the minimum (RFC 8996, RFC 8997).
//!
//! The certificate and key are read as root before anything the client
//! sends is parsed ([`files`]); a problem is logged once at start and
//! turns STLS into `-ERR [SYS/PERM]` (or closes a port-995 connection) —
//! it never stops popper from serving the plain port it was asked to.

pub mod files;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::version::{TLS12, TLS13};

/// `-l 0|1|2` / `tls-support`: where TLS is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Support {
    /// No TLS (qpopper's default).
    #[default]
    None,
    /// The STLS command on the plain port (110).
    Stls,
    /// TLS from the first byte: the "alternate port" (995, RFC 8314).
    AlternatePort,
}

impl Support {
    /// `-l N`.
    pub fn from_number(n: &str) -> Option<Support> {
        Some(match n {
            "0" => Support::None,
            "1" => Support::Stls,
            "2" => Support::AlternatePort,
            _ => return None,
        })
    }

    /// `set tls-support = NAME` (qpopper 4.1's names, any case).
    pub fn from_name(s: &str) -> Option<Support> {
        Some(match s.to_ascii_lowercase().as_str() {
            "none" | "default" => Support::None,
            "stls" => Support::Stls,
            "alternate-port" => Support::AlternatePort,
            _ => return None,
        })
    }

    /// The setting's value as written.
    pub fn name(self) -> &'static str {
        match self {
            Support::None => "none",
            Support::Stls => "stls",
            Support::AlternatePort => "alternate-port",
        }
    }
}

/// `tls-version`: which protocol versions are negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versions {
    /// TLS 1.2 and 1.3.
    #[default]
    Modern,
    /// TLS 1.3 only.
    Tls13,
}

impl Versions {
    /// qpopper 4.1's values mapped onto what rustls has. Its `default`,
    /// `SSLv23` (OpenSSL's "any version") and `TLSv1` ("TLS, not SSL")
    /// become TLS 1.2 and 1.3: the nearest safe meaning of each. Versions
    /// older than 1.2 are refused (RFC 8996 deprecates them; rustls never
    /// had them).
    pub fn parse(v: &str) -> Result<Versions, String> {
        match v.to_ascii_lowercase().as_str() {
            "default" | "sslv23" | "tlsv1" | "tlsv1.2" | "tls1.2" => Ok(Versions::Modern),
            "tlsv1.3" | "tls1.3" => Ok(Versions::Tls13),
            "sslv2" | "sslv3" | "tlsv1.0" | "tlsv1.1" | "tls1.0" | "tls1.1" => Err(format!(
                "\"{v}\" is not supported: popper speaks only TLS 1.2 and 1.3 (older versions are broken, RFC 8996)"
            )),
            _ => Err(format!(
                "\"{v}\" is not a TLS version (default, SSLv23, TLSv1, TLSv1.2 or TLSv1.3)"
            )),
        }
    }

    /// The value as `popper -V` shows it.
    pub fn describe(self) -> &'static str {
        match self {
            Versions::Modern => "TLSv1.2 TLSv1.3",
            Versions::Tls13 => "TLSv1.3",
        }
    }
}

/// The TLS settings of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Where TLS is offered.
    pub support: Support,
    /// The certificate chain (PEM, leaf first).
    pub cert_file: Option<PathBuf>,
    /// The private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Protocol versions.
    pub versions: Versions,
    /// qpopper's OpenSSL cipher list: accepted, not applicable.
    pub cipher_list: Option<String>,
}

/// Why TLS cannot be offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable(pub String);

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads the certificate and key and builds the server configuration.
pub fn server_config(s: &Settings) -> Result<Arc<ServerConfig>, Unusable> {
    let (Some(cert), Some(key)) = (&s.cert_file, &s.key_file) else {
        return Err(Unusable(
            "tls-server-cert-file and tls-private-key-file must both be set".to_string(),
        ));
    };
    let chain = files::cert_chain(cert)?;
    let key_der = files::private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match s.versions {
        Versions::Modern => &[&TLS13, &TLS12],
        Versions::Tls13 => &[&TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| Unusable(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => Unusable(format!(
                "the private key {} does not belong to the certificate {}",
                key.display(),
                cert.display()
            )),
            e => Unusable(format!(
                "cannot use {} with {}: {e}",
                cert.display(),
                key.display()
            )),
        })?;
    // One connection per process: a session ticket or a resumption cache
    // would never be used again.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qpopper_values() {
        assert_eq!(Support::from_number("1"), Some(Support::Stls));
        assert_eq!(
            Support::from_name("Alternate-Port"),
            Some(Support::AlternatePort)
        );
        assert_eq!(Support::from_name("stls").map(Support::name), Some("stls"));
        assert_eq!(Support::from_number("3"), None);
        for v in ["default", "SSLv23", "TLSv1", "TLSv1.2"] {
            assert_eq!(Versions::parse(v), Ok(Versions::Modern), "{v}");
        }
        assert_eq!(Versions::parse("TLSv1.3"), Ok(Versions::Tls13));
        for v in ["SSLv2", "SSLv3", "TLSv1.1"] {
            let e = Versions::parse(v).unwrap_err();
            assert!(e.contains("only TLS 1.2 and 1.3"), "{e}");
        }
        assert!(Versions::parse("bogus").is_err());
    }

    #[test]
    fn a_good_pair_builds_and_a_wrong_key_is_named() {
        let dir = files::tests::fixtures();
        let s = Settings {
            support: Support::Stls,
            cert_file: Some(dir.join("cert.pem")),
            key_file: Some(dir.join("key.pem")),
            ..Settings::default()
        };
        assert!(server_config(&s).is_ok());
        let wrong = Settings {
            key_file: Some(dir.join("other-key.pem")),
            ..s.clone()
        };
        let e = server_config(&wrong).unwrap_err();
        assert!(e.0.contains("does not belong"), "{e}");
        let none = Settings {
            key_file: None,
            ..s
        };
        assert!(server_config(&none).is_err());
    }
}
