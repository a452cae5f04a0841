//! CRAM-MD5 (RFC 2195), server side: the challenge, the client's
//! response, and the check against the user's shared secret (pop.auth's,
//! the one APOP uses).
//!
//! The server sends `+ base64(<pid.nonce@host>)`; the client answers
//! `base64(user SP hex(HMAC-MD5(secret, challenge)))`.

use hmac::{Hmac, KeyInit as _, Mac as _};
use md5::Md5;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::sasl::SaslError;

/// The challenge, `<pid.nonce@host>` (RFC 2195 §2's msg-id form, as
/// RFC 1939's APOP banner uses). `nonce` should come from
/// [`crate::sasl::Nonces::token`], which never holds `<`, `>` or `@`.
pub fn challenge(pid: u32, nonce: &str, host: &str) -> String {
    format!("<{pid}.{nonce}@{host}>")
}

/// Splits a decoded response into the user and the digest, the digest
/// lower-cased (either case is accepted).
///
/// The digest is the 32 hex digits after the last space; the user is
/// everything before it, non-empty and without control characters.
pub fn parse_response(decoded: &[u8]) -> Result<(Vec<u8>, [u8; 32]), SaslError> {
    let Some(sp) = decoded.iter().rposition(|&b| b == b' ') else {
        return Err(SaslError::Malformed);
    };
    let (user, hex) = (&decoded[..sp], &decoded[sp + 1..]);
    if user.is_empty() || user.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(SaslError::Malformed);
    }
    let mut digest = [0u8; 32];
    if hex.len() != digest.len() || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(SaslError::Malformed);
    }
    for (d, h) in digest.iter_mut().zip(hex) {
        *d = h.to_ascii_lowercase();
    }
    Ok((user.to_vec(), digest))
}

/// True when `given_hex` (32 hex digits, either case) is
/// HMAC-MD5(`secret`, `challenge`). Compared in constant time.
pub fn verify(secret: &[u8], challenge: &str, given_hex: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Md5>::new_from_slice(secret) else {
        return false;
    };
    mac.update(challenge.as_bytes());
    let tag = Zeroizing::new(<[u8; 16]>::from(mac.finalize().into_bytes()));
    let want = Zeroizing::new(hex(&tag));
    if given_hex.len() != want.len() {
        return false;
    }
    let mut given = Zeroizing::new([0u8; 32]);
    for (g, h) in given.iter_mut().zip(given_hex) {
        *g = h.to_ascii_lowercase();
    }
    bool::from(given.ct_eq(&*want))
}

/// Lower-case hex of a 16-byte digest.
fn hex(bytes: &[u8; 16]) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::{decode, encode};

    const CHALLENGE: &str = "<1896.697170952@postoffice.reston.mci.net>";

    #[test]
    fn rfc2195_example() {
        assert_eq!(
            challenge(1896, "697170952", "postoffice.reston.mci.net"),
            CHALLENGE
        );
        // The base64 of the challenge and the response, as RFC 2195 shows them.
        assert_eq!(
            encode(CHALLENGE.as_bytes()),
            "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
        );
        let decoded = decode(b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw").unwrap();
        let (user, digest) = parse_response(&decoded).unwrap();
        assert_eq!(user, b"tim");
        assert_eq!(&digest, b"b913a602c7eda7a495b4e6e7334d3890");
        assert!(verify(b"tanstaaftanstaaf", CHALLENGE, &digest));
        assert!(verify(
            b"tanstaaftanstaaf",
            CHALLENGE,
            b"B913A602C7EDA7A495B4E6E7334D3890"
        ));
    }

    #[test]
    fn wrong_secret_challenge_or_digest() {
        let good = b"b913a602c7eda7a495b4e6e7334d3890";
        assert!(!verify(b"tanstaaftanstaafX", CHALLENGE, good));
        assert!(!verify(b"", CHALLENGE, good));
        assert!(!verify(
            b"tanstaaftanstaaf",
            "<1897.697170952@postoffice.reston.mci.net>",
            good
        ));
        assert!(!verify(
            b"tanstaaftanstaaf",
            CHALLENGE,
            b"b913a602c7eda7a495b4e6e7334d3891"
        ));
        assert!(!verify(
            b"tanstaaftanstaaf",
            CHALLENGE,
            b"b913a602c7eda7a495b4e6e7334d389"
        ));
        assert!(!verify(b"tanstaaftanstaaf", CHALLENGE, b""));
        assert!(!verify(
            b"tanstaaftanstaaf",
            CHALLENGE,
            b"b913a602c7eda7a495b4e6e7334d38900"
        ));
        // Long secrets are hashed first, as HMAC says; still verifiable.
        let long = [b'k'; 200];
        let mut mac = Hmac::<Md5>::new_from_slice(&long).unwrap();
        mac.update(CHALLENGE.as_bytes());
        let digest = hex(&mac.finalize().into_bytes().into());
        assert!(verify(&long, CHALLENGE, &digest));
    }

    #[test]
    fn malformed_responses() {
        for bad in [
            &b""[..],
            b"tim",
            b"tim ",
            b" b913a602c7eda7a495b4e6e7334d3890",
            b"timb913a602c7eda7a495b4e6e7334d3890",
            b"tim b913a602c7eda7a495b4e6e7334d389",
            b"tim b913a602c7eda7a495b4e6e7334d38900",
            b"tim b913a602c7eda7a495b4e6e7334d389g",
            b"tim b913a602c7eda7a495b4e6e7334d3890 ",
            b"t\0m b913a602c7eda7a495b4e6e7334d3890",
            b"t\nm b913a602c7eda7a495b4e6e7334d3890",
        ] {
            assert_eq!(parse_response(bad), Err(SaslError::Malformed), "{bad:?}");
        }
        // The digest follows the last space.
        let (user, _) = parse_response(b"a b b913a602c7eda7a495b4e6e7334d3890").unwrap();
        assert_eq!(user, b"a b");
    }

    #[test]
    fn random_and_truncated_responses_never_panic() {
        let good = b"tim b913a602c7eda7a495b4e6e7334d3890";
        for n in 0..good.len() {
            assert!(parse_response(&good[..n]).is_err());
            assert!(!verify(
                b"tanstaaftanstaaf",
                CHALLENGE,
                &good[4..4 + n.min(31)]
            ));
        }
        let mut x = 0x2195u64;
        let alphabet = b"tim 0123456789abcdefABCDEFg\0\x7f";
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 48) as usize;
            let msg: Vec<u8> = (0..len)
                .map(|i| alphabet[((x >> (i % 56)) as usize + i) % alphabet.len()])
                .collect();
            if let Ok((user, digest)) = parse_response(&msg) {
                assert!(!user.is_empty());
                assert!(!verify(b"s", CHALLENGE, &digest) || digest.len() == 32);
            }
            let _ = verify(&msg, CHALLENGE, &msg);
        }
    }
}
