//! SASL (RFC 4422) for POP3's AUTH command (RFC 5034): the mechanisms'
//! names, the base64 of client responses, PLAIN (RFC 4616), LOGIN's
//! prompts, and the nonces and salts the challenge mechanisms need.
//!
//! Pure: the host supplies a 32-byte seed from the kernel once per
//! session ([`Nonces::new`]); everything random after that is derived
//! from it. The CRAM-MD5 and SCRAM-SHA-256 exchanges are in the `cram`
//! and `scram` modules.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::limits::MAX_SASL_RESPONSE;
use crate::secret::Secret;

/// A SASL mechanism popper offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 5802 / RFC 7677, without channel binding.
    ScramSha256,
    /// RFC 2195.
    CramMd5,
    /// RFC 4616.
    Plain,
    /// The de-facto LOGIN mechanism (draft-murchison-sasl-login).
    Login,
}

impl Mechanism {
    /// Every mechanism, in the order CAPA lists them (strongest first).
    pub const ALL: [Mechanism; 4] = [
        Mechanism::ScramSha256,
        Mechanism::CramMd5,
        Mechanism::Plain,
        Mechanism::Login,
    ];

    /// The registered name, as CAPA and `AUTH` alone list it.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// The mechanism `word` names, in any case (RFC 4422 §3.1 names are
    /// upper case; clients are not always careful).
    pub fn parse(word: &[u8]) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().as_bytes().eq_ignore_ascii_case(word))
    }

    /// True when the password crosses the wire as it is (PLAIN, LOGIN):
    /// these fall under the clear-text password policy, as USER/PASS do.
    pub fn is_clear_text(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }
}

/// Why a SASL exchange failed before any credential was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// The client sent `*` (RFC 5034 §4).
    Cancelled,
    /// The response line is not strict, padded, standard base64.
    BadBase64,
    /// The response line is longer than [`MAX_SASL_RESPONSE`].
    TooLong,
    /// The decoded message does not follow the mechanism's grammar.
    Malformed,
    /// An authorization identity other than the user: popper logs in only
    /// as the user who authenticated.
    Authzid,
    /// `AUTH` named a mechanism popper does not offer.
    UnknownMechanism,
}

impl std::fmt::Display for SaslError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SaslError::Cancelled => "Authentication cancelled",
            SaslError::BadBase64 => "Invalid base64 data",
            SaslError::TooLong => "SASL response too long",
            SaslError::Malformed => "Malformed SASL message",
            SaslError::Authzid => "Authorization identity differs from the user",
            SaslError::UnknownMechanism => "Unrecognized authentication mechanism",
        })
    }
}

impl std::error::Error for SaslError {}

/// Decodes one client response line (without its line end).
///
/// `*` is a cancel; an empty line or `=` alone (RFC 5034 §4: the empty
/// initial response) is the empty response; anything else must be strict
/// standard base64 (RFC 4648 §4, padding required, no whitespace, no
/// stray trailing bits) of at most [`MAX_SASL_RESPONSE`] bytes. The
/// decoded bytes may hold a password, so they are wiped when dropped.
pub fn decode(line: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
    if line.len() > MAX_SASL_RESPONSE {
        return Err(SaslError::TooLong);
    }
    if line == b"*" {
        return Err(SaslError::Cancelled);
    }
    // Reserve all the room up front so decoding never reallocates and
    // leaves an unwiped copy behind.
    let mut out = Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(line.len())));
    if line.is_empty() || line == b"=" {
        return Ok(out);
    }
    STANDARD
        .decode_vec(line, &mut out)
        .map_err(|_| SaslError::BadBase64)?;
    Ok(out)
}

/// Standard, padded base64 of `bytes`, for a `+ ` continuation line.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Splits a decoded PLAIN message (RFC 4616 §2:
/// `[authzid] NUL authcid NUL passwd`) into the user and the password.
///
/// An authzid is accepted only when empty or equal to the authcid; the
/// user and the password must be non-empty and the password hold no NUL.
pub fn plain(msg: &[u8]) -> Result<(Vec<u8>, Secret), SaslError> {
    let mut parts = msg.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if authcid.is_empty() || passwd.is_empty() || passwd.contains(&0) {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(SaslError::Authzid);
    }
    Ok((authcid.to_vec(), Secret::new(passwd.to_vec())))
}

/// LOGIN's first challenge: base64 of `Username:`.
pub const LOGIN_USER_PROMPT: &str = "VXNlcm5hbWU6";

/// LOGIN's second challenge: base64 of `Password:`.
pub const LOGIN_PASS_PROMPT: &str = "UGFzc3dvcmQ6";

/// The session's source of nonces and salts.
///
/// Output `n` is SHA-256(seed ‖ n as 8 big-endian bytes): with a secret,
/// uniformly random 256-bit seed, outputs are unpredictable and never
/// repeat within a session (every input is 40 bytes, so SHA-256's length
/// extension gives no other output). The host reads the seed from the
/// kernel (`getrandom`) once per session; the core never touches a clock
/// or a device. Not `Clone`, so no two exchanges can share a stream.
pub struct Nonces {
    seed: [u8; 32],
    counter: u64,
}

impl Nonces {
    /// A nonce source from 32 random bytes from the kernel.
    pub fn new(seed: [u8; 32]) -> Self {
        Nonces { seed, counter: 0 }
    }

    /// The next 32 bytes of the stream.
    #[allow(
        clippy::should_implement_trait,
        reason = "an endless stream: Iterator's Option would only add an unwrap"
    )]
    pub fn next(&mut self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_be_bytes());
        self.counter = self.counter.wrapping_add(1);
        h.finalize().into()
    }

    /// A printable nonce: 24 base64url characters (144 bits), so never a
    /// `,` (SCRAM's separator), `<`, `>` or `@` (CRAM-MD5's).
    pub fn token(&mut self) -> String {
        let mut bytes = self.next();
        let token = URL_SAFE_NO_PAD.encode(&bytes[..18]);
        bytes.zeroize();
        token
    }

    /// A fresh 16-byte salt, for SCRAM.
    pub fn salt(&mut self) -> [u8; 16] {
        let mut bytes = self.next();
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&bytes[..16]);
        bytes.zeroize();
        salt
    }
}

impl Drop for Nonces {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("seed", &"redacted")
            .field("counter", &self.counter)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::parse(m.name().as_bytes()), Some(m));
            assert_eq!(
                Mechanism::parse(m.name().to_ascii_lowercase().as_bytes()),
                Some(m)
            );
        }
        assert_eq!(
            Mechanism::parse(b"Scram-Sha-256"),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(Mechanism::parse(b"cram-md5"), Some(Mechanism::CramMd5));
        assert_eq!(Mechanism::parse(b"SCRAM-SHA-256-PLUS"), None);
        assert_eq!(Mechanism::parse(b"SCRAM-SHA-1"), None);
        assert_eq!(Mechanism::parse(b""), None);
        assert_eq!(Mechanism::parse(b"PLAIN "), None);
        assert!(Mechanism::Plain.is_clear_text());
        assert!(Mechanism::Login.is_clear_text());
        assert!(!Mechanism::CramMd5.is_clear_text());
        assert!(!Mechanism::ScramSha256.is_clear_text());
        let names: Vec<_> = Mechanism::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.join(" "), "SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN");
    }

    #[test]
    fn decode_rules() {
        assert_eq!(decode(b"").unwrap().as_slice(), b"");
        assert_eq!(decode(b"=").unwrap().as_slice(), b"");
        assert_eq!(decode(b"*"), Err(SaslError::Cancelled));
        assert_eq!(decode(b"dGlt").unwrap().as_slice(), b"tim");
        assert_eq!(decode(b"dGk=").unwrap().as_slice(), b"ti");
        assert_eq!(decode(b"dA==").unwrap().as_slice(), b"t");
        // Padding required, no whitespace, no URL alphabet, no junk bits.
        for bad in [
            &b"dGk"[..],
            b"dA",
            b"dA=",
            b"dGlt ",
            b" dGlt",
            b"dG lt",
            b"dGlt\r",
            b"dG\tlt",
            b"dGk=dGk=",
            b"dB==",
            b"-_-_",
            b"==",
            b"a",
            b"**",
        ] {
            assert_eq!(decode(bad), Err(SaslError::BadBase64), "{bad:?}");
        }
    }

    #[test]
    fn decode_bound() {
        let ok = "A".repeat(MAX_SASL_RESPONSE);
        assert_eq!(
            decode(ok.as_bytes()).unwrap().len(),
            MAX_SASL_RESPONSE / 4 * 3
        );
        let long = "A".repeat(MAX_SASL_RESPONSE + 4);
        assert_eq!(decode(long.as_bytes()), Err(SaslError::TooLong));
        let long = "*".repeat(MAX_SASL_RESPONSE + 1);
        assert_eq!(decode(long.as_bytes()), Err(SaslError::TooLong));
    }

    #[test]
    fn encode_round_trips() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"Username:"), LOGIN_USER_PROMPT);
        assert_eq!(encode(b"Password:"), LOGIN_PASS_PROMPT);
        let mut rng = Rng(7);
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            assert_eq!(decode(encode(&bytes).as_bytes()).unwrap().as_slice(), bytes);
        }
    }

    #[test]
    fn plain_rfc4616() {
        // RFC 4616 §4's examples.
        let (user, pass) = plain(b"\0tim\0tanstaaftanstaaf").unwrap();
        assert_eq!(user, b"tim");
        assert_eq!(pass.expose(), b"tanstaaftanstaaf");
        assert_eq!(plain(b"Ursel\0Kurt\0xipj3plmq"), Err(SaslError::Authzid));
        let (user, pass) = plain(b"tim\0tim\0x y").unwrap();
        assert_eq!((user.as_slice(), pass.expose()), (&b"tim"[..], &b"x y"[..]));
        for bad in [
            &b""[..],
            b"\0",
            b"\0\0",
            b"\0tim",
            b"\0tim\0",
            b"\0\0pw",
            b"tim\0\0pw",
            b"\0tim\0pw\0",
            b"\0tim\0p\0w",
        ] {
            assert_eq!(plain(bad), Err(SaslError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn nonces_are_deterministic_and_distinct() {
        let mut a = Nonces::new([1; 32]);
        let mut b = Nonces::new([1; 32]);
        let mut c = Nonces::new([2; 32]);
        let first = a.next();
        assert_eq!(first, b.next());
        assert_ne!(first, c.next());
        assert_ne!(first, a.next());
        // Output 0 is SHA-256(seed || 0u64).
        let mut h = Sha256::new();
        h.update([1u8; 32]);
        h.update([0u8; 8]);
        assert_eq!(first, <[u8; 32]>::from(h.finalize()));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let t = a.token();
            assert_eq!(t.len(), 24);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert!(seen.insert(t));
        }
        assert_ne!(a.salt(), a.salt());
    }

    #[test]
    fn nonces_debug_hides_the_seed() {
        let n = Nonces::new([0xab; 32]);
        let text = format!("{n:?}");
        assert!(!text.contains("171"), "{text}");
        assert!(text.contains("redacted"));
    }

    #[test]
    fn random_lines_never_panic() {
        let mut rng = Rng(0x5eed);
        let alphabet = b"ABCabc019+/=*- \0\r\n,";
        for _ in 0..20_000 {
            let len = (rng.byte() as usize) % 40;
            let line: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.byte() as usize % alphabet.len()])
                .collect();
            if let Ok(bytes) = decode(&line) {
                let _ = plain(&bytes);
                // Strict decoding accepts only the canonical encoding.
                if !bytes.is_empty() {
                    assert_eq!(encode(&bytes).as_bytes(), line.as_slice());
                }
            }
            let _ = plain(&line);
            let _ = Mechanism::parse(&line);
        }
    }

    /// xorshift64: a tiny deterministic generator for property loops.
    struct Rng(u64);

    impl Rng {
        fn byte(&mut self) -> u8 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 24) as u8
        }
    }
}
