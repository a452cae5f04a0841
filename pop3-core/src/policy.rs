//! What a connection allows: TLS, and passwords sent in clear.
//!
//! qpopper 4.1's `-l` / `tls-support` and `-p` / `clear-text-password`,
//! decided here from facts the host gives the session (is TLS set up, is
//! it active, is the client on this machine), so the session and its
//! tests need no socket.

use crate::error::AuthError;

/// TLS on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Not configured (`tls-support = none`): STLS is an unknown command.
    Off,
    /// STLS is offered: the certificate and key are loaded.
    Offered,
    /// STLS was configured but the certificate or key could not be used:
    /// STLS is refused with `[SYS/PERM]` and not listed in CAPA (a client
    /// such as Thunderbird retries for ever what CAPA promises).
    Broken,
    /// The connection is encrypted (after STLS, or from the start on the
    /// alternate port).
    Active,
}

/// `-p 0..4` / `clear-text-password`: when USER/PASS and the SASL
/// mechanisms that carry the password itself (PLAIN, LOGIN) may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClearText {
    /// qpopper's default: allowed, except that a user with an APOP record
    /// must use APOP (the 2.53 rule).
    #[default]
    Default,
    /// Never: APOP, CRAM-MD5 or SCRAM-SHA-256 only.
    Never,
    /// Always, even for users with an APOP record.
    Always,
    /// Only from this machine (a loopback address), or under TLS.
    Local,
    /// Only under TLS.
    Tls,
}

impl ClearText {
    /// `-p N` (qpopper 4.1's numbers).
    pub fn from_number(n: &str) -> Option<ClearText> {
        Some(match n {
            "0" => ClearText::Default,
            "1" => ClearText::Never,
            "2" => ClearText::Always,
            "3" => ClearText::Local,
            "4" => ClearText::Tls,
            _ => return None,
        })
    }

    /// `set clear-text-password = NAME` (case-insensitive, as qpopper 4.1).
    pub fn from_name(name: &str) -> Option<ClearText> {
        Some(match name.to_ascii_lowercase().as_str() {
            "default" => ClearText::Default,
            "never" => ClearText::Never,
            "always" => ClearText::Always,
            "local" => ClearText::Local,
            "tls" | "ssl" => ClearText::Tls,
            _ => return None,
        })
    }

    /// The setting's value as written.
    pub fn name(self) -> &'static str {
        match self {
            ClearText::Default => "default",
            ClearText::Never => "never",
            ClearText::Always => "always",
            ClearText::Local => "local",
            ClearText::Tls => "tls",
        }
    }

    /// Whether a password may be sent in clear on this connection, and if
    /// not, the refusal. Decided from the connection alone, so the answer
    /// is the same for every user name (it tells an attacker nothing about
    /// which accounts exist or have an APOP record).
    pub fn allows(self, tls_active: bool, local: bool) -> Result<(), AuthError> {
        match self {
            ClearText::Default | ClearText::Always => Ok(()),
            ClearText::Never => Err(AuthError::ClearTextRefused),
            ClearText::Local if local || tls_active => Ok(()),
            ClearText::Local => Err(AuthError::ClearTextRefused),
            ClearText::Tls if tls_active => Ok(()),
            ClearText::Tls => Err(AuthError::ClearTextNeedsTls),
        }
    }

    /// Whether a user with an APOP record is still held to APOP (the 2.53
    /// rule): only under `default` and only in clear. Under TLS, or where
    /// the administrator chose `always`/`local`, the password is not
    /// exposed by the rule's absence, and no per-user answer is given.
    pub fn apop_record_rule(self, tls_active: bool) -> bool {
        self == ClearText::Default && !tls_active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_agree() {
        for (n, name) in ["default", "never", "always", "local", "tls"]
            .iter()
            .enumerate()
        {
            let by_number = ClearText::from_number(&n.to_string()).unwrap();
            assert_eq!(ClearText::from_name(name), Some(by_number));
            assert_eq!(ClearText::from_name(&name.to_uppercase()), Some(by_number));
            assert_eq!(by_number.name(), *name);
        }
        assert_eq!(ClearText::from_number("5"), None);
        assert_eq!(ClearText::from_name("sometimes"), None);
    }

    #[test]
    fn the_matrix() {
        use ClearText::*;
        let refused = Err(AuthError::ClearTextRefused);
        let tls = Err(AuthError::ClearTextNeedsTls);
        // (policy, tls, local) → verdict
        let cases = [
            (Default, false, false, Ok(())),
            (Never, true, true, refused.clone()),
            (Always, false, false, Ok(())),
            (Local, false, true, Ok(())),
            (Local, true, false, Ok(())),
            (Local, false, false, refused),
            (Tls, true, false, Ok(())),
            (Tls, false, true, tls),
        ];
        for (p, t, l, want) in cases {
            assert_eq!(p.allows(t, l), want, "{p:?} tls={t} local={l}");
        }
        assert!(Default.apop_record_rule(false));
        assert!(!Default.apop_record_rule(true));
        assert!(!Always.apop_record_rule(false));
    }
}
