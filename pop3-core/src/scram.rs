//! SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, without channel
//! binding.
//!
//! ```text
//! C: n,,n=user,r=<cnonce>                      parse_client_first
//! S: r=<cnonce><snonce>,s=<salt>,i=<iter>      Exchange::new, server_first
//! C: c=biws,r=<cnonce><snonce>,p=<proof>       Exchange::take_client_final
//! S: v=<server signature>                      verify
//! ```
//!
//! The password is the user's pop.auth secret; the salt is fresh for
//! every exchange, so the server keeps no SCRAM verifier and computes
//! PBKDF2 once per attempt.
//!
//! DEVIATION RFC 5802 §2.2: the password is not SASLprep'ed (RFC 4013);
//! its bytes are used as they are. pop.auth secrets are ASCII in practice,
//! and for ASCII without control characters SASLprep changes nothing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, Zeroizing};

use crate::sasl::SaslError;

/// A parsed client-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The user (the `n=` saslname, `=2C` and `=3D` decoded).
    pub user: Vec<u8>,
    /// The client's nonce (`r=`).
    client_nonce: String,
    /// client-first-message-bare: the message without its gs2 header.
    bare: String,
    /// The gs2 header (`n,,`, `y,,` or with an `a=` equal to the user),
    /// which the client-final `c=` must repeat in base64.
    gs2_header: String,
}

impl ClientFirst {
    /// The client's nonce.
    pub fn client_nonce(&self) -> &str {
        &self.client_nonce
    }
}

/// Parses a decoded client-first-message (RFC 5802 §7).
///
/// The gs2 channel-binding flag must be `n` or `y` (popper offers no
/// -PLUS mechanism, so `y` is no downgrade); `p=` is refused. An authzid
/// (`a=`) is accepted only when it names the user itself ([`SaslError::Authzid`]
/// otherwise); a mandatory extension (`m=`) is refused; optional
/// extensions after the nonce are ignored.
pub fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, SaslError> {
    let msg = std::str::from_utf8(msg).map_err(|_| SaslError::Malformed)?;
    let (flag, rest) = msg.split_once(',').ok_or(SaslError::Malformed)?;
    let (authzid, bare) = rest.split_once(',').ok_or(SaslError::Malformed)?;
    if flag != "n" && flag != "y" {
        return Err(SaslError::Malformed);
    }
    let authzid = match authzid {
        "" => None,
        a => Some(saslname(a.strip_prefix("a=").ok_or(SaslError::Malformed)?)?),
    };
    let mut attrs = bare.split(',');
    let user = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or(SaslError::Malformed)?;
    let user = saslname(user)?;
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(SaslError::Malformed)?;
    if !is_nonce(client_nonce) {
        return Err(SaslError::Malformed);
    }
    extensions(attrs)?;
    if authzid.is_some_and(|a| a != user) {
        return Err(SaslError::Authzid);
    }
    let header_len = msg.len() - bare.len();
    Ok(ClientFirst {
        user,
        client_nonce: client_nonce.to_string(),
        bare: bare.to_string(),
        gs2_header: msg[..header_len].to_string(),
    })
}

/// One exchange after the client-first-message.
#[derive(Debug)]
pub struct Exchange {
    first: ClientFirst,
    /// The client's nonce followed by the server's.
    nonce: String,
    server_first: String,
    salt: [u8; 16],
    iterations: u32,
    /// The client-final-message was taken: a second one is refused.
    taken: bool,
}

impl Exchange {
    /// Starts the exchange. `server_nonce` must be printable ASCII without
    /// `,` ([`crate::sasl::Nonces::token`] is), `salt` fresh
    /// ([`crate::sasl::Nonces::salt`]); RFC 7677 §4 asks for at least 4096
    /// iterations.
    pub fn new(first: ClientFirst, server_nonce: &str, salt: [u8; 16], iterations: u32) -> Self {
        let nonce = format!("{}{server_nonce}", first.client_nonce);
        let server_first = format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt));
        Exchange {
            first,
            nonce,
            server_first,
            salt,
            iterations,
            taken: false,
        }
    }

    /// The server-first-message, to send base64'd in a `+ ` line.
    pub fn server_first(&self) -> String {
        self.server_first.clone()
    }

    /// The user the client named.
    pub fn user(&self) -> &[u8] {
        &self.first.user
    }

    /// Checks a decoded client-final-message (RFC 5802 §7) against this
    /// exchange: `c=` must be the base64 of the gs2 header, `r=` the
    /// combined nonce, and `p=` (last) 32 bytes of base64. Gives what
    /// [`verify`] needs. Only one client-final is taken per exchange.
    pub fn take_client_final(&mut self, msg: &[u8]) -> Result<Proof, SaslError> {
        if std::mem::replace(&mut self.taken, true) {
            return Err(SaslError::Malformed);
        }
        let msg = std::str::from_utf8(msg).map_err(|_| SaslError::Malformed)?;
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(SaslError::Malformed)?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(SaslError::Malformed)?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(SaslError::Malformed)?;
        extensions(attrs)?;
        if cbind != STANDARD.encode(&self.first.gs2_header) || nonce != self.nonce {
            return Err(SaslError::Malformed);
        }
        let mut client_proof = [0u8; 32];
        match STANDARD.decode_slice(proof, &mut client_proof) {
            Ok(32) if proof.len() == 44 => {}
            _ => return Err(SaslError::Malformed),
        }
        Ok(Proof {
            auth_message: format!("{},{},{without_proof}", self.first.bare, self.server_first),
            salt: self.salt,
            iterations: self.iterations,
            client_proof,
        })
    }
}

/// What [`verify`] needs from an exchange. With the auth message, the
/// client proof would let an eavesdropper on the log test passwords
/// offline, so `Debug` leaves it out, and it is wiped when dropped.
pub struct Proof {
    /// client-first-message-bare "," server-first-message ","
    /// client-final-message-without-proof.
    auth_message: String,
    salt: [u8; 16],
    iterations: u32,
    client_proof: [u8; 32],
}

impl Drop for Proof {
    fn drop(&mut self) {
        self.client_proof.zeroize();
    }
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof")
            .field("iterations", &self.iterations)
            .field("client_proof", &"redacted")
            .finish_non_exhaustive()
    }
}

/// Checks the client's proof against `password` (RFC 5802 §3); on success
/// gives the server-final-message, `v=<base64 ServerSignature>`.
///
/// SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i);
/// ClientKey = HMAC(SaltedPassword, "Client Key"); StoredKey = H(ClientKey);
/// the proof XOR HMAC(StoredKey, AuthMessage) must hash to StoredKey
/// (compared in constant time). Every intermediate key is wiped.
pub fn verify(proof: &Proof, password: &[u8]) -> Option<String> {
    if proof.iterations == 0 {
        return None;
    }
    // Derived in place, so no unwiped copy of SaltedPassword is left.
    let mut salted = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &proof.salt, proof.iterations, &mut *salted);
    let client_key = hmac_sha256(&*salted, b"Client Key")?;
    let stored_key = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(client_key.as_slice())));
    let client_signature = hmac_sha256(&*stored_key, proof.auth_message.as_bytes())?;
    let mut recovered = Zeroizing::new([0u8; 32]);
    for ((r, p), s) in recovered
        .iter_mut()
        .zip(&proof.client_proof)
        .zip(&*client_signature)
    {
        *r = p ^ s;
    }
    let recovered_stored = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(recovered.as_slice())));
    if !bool::from(recovered_stored.ct_eq(&*stored_key)) {
        return None;
    }
    let server_key = hmac_sha256(&*salted, b"Server Key")?;
    let server_signature = hmac_sha256(&*server_key, proof.auth_message.as_bytes())?;
    Some(format!(
        "v={}",
        STANDARD.encode(server_signature.as_slice())
    ))
}

/// HMAC-SHA-256; `None` only if the key were refused, which HMAC never does.
fn hmac_sha256(key: &[u8], data: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(data);
    Some(Zeroizing::new(mac.finalize().into_bytes().into()))
}

/// Decodes a saslname (RFC 5802 §7): `=2C` is `,`, `=3D` is `=`, any other
/// `=` is malformed; it must be non-empty and hold no NUL.
fn saslname(s: &str) -> Result<Vec<u8>, SaslError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'=' => match (bytes.next(), bytes.next()) {
                (Some(b'2'), Some(b'C')) => out.push(b','),
                (Some(b'3'), Some(b'D')) => out.push(b'='),
                _ => return Err(SaslError::Malformed),
            },
            0 => return Err(SaslError::Malformed),
            b => out.push(b),
        }
    }
    if out.is_empty() {
        return Err(SaslError::Malformed);
    }
    Ok(out)
}

/// A c-nonce or nonce: one or more printable ASCII bytes but `,`.
fn is_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Optional extensions (`attr=value`, attr a letter): checked for form
/// and ignored; `m=` (a mandatory extension) is refused.
fn extensions<'a>(attrs: impl Iterator<Item = &'a str>) -> Result<(), SaslError> {
    for a in attrs {
        let mut b = a.bytes();
        match (b.next(), b.next()) {
            (Some(b'm'), _) => return Err(SaslError::Malformed),
            (Some(l), Some(b'=')) if l.is_ascii_alphabetic() => {}
            _ => return Err(SaslError::Malformed),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 §3.
    const CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SALT_B64: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn salt() -> [u8; 16] {
        STANDARD.decode(SALT_B64).unwrap().try_into().unwrap()
    }

    fn exchange(first: &[u8]) -> Exchange {
        Exchange::new(
            parse_client_first(first).unwrap(),
            SERVER_NONCE,
            salt(),
            4096,
        )
    }

    #[test]
    fn rfc7677_example() {
        let first = parse_client_first(CLIENT_FIRST).unwrap();
        assert_eq!(first.user, b"user");
        assert_eq!(first.client_nonce(), "rOprNGfwEbeRWgbNEkqO");
        let mut ex = Exchange::new(first, SERVER_NONCE, salt(), 4096);
        assert_eq!(ex.server_first(), SERVER_FIRST);
        assert_eq!(ex.user(), b"user");
        let proof = ex.take_client_final(CLIENT_FINAL).unwrap();
        assert_eq!(
            proof.auth_message,
            "n=user,r=rOprNGfwEbeRWgbNEkqO,\
r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        );
        assert_eq!(verify(&proof, b"pencil").as_deref(), Some(SERVER_FINAL));
        // One client-final per exchange.
        assert_eq!(
            ex.take_client_final(CLIENT_FINAL).err(),
            Some(SaslError::Malformed)
        );
    }

    #[test]
    fn wrong_password() {
        let proof = exchange(CLIENT_FIRST)
            .take_client_final(CLIENT_FINAL)
            .unwrap();
        assert_eq!(verify(&proof, b"pencil "), None);
        assert_eq!(verify(&proof, b"Pencil"), None);
        assert_eq!(verify(&proof, b""), None);
    }

    #[test]
    fn the_proof_binds_the_whole_exchange() {
        // Another salt, iteration count or server nonce: same client final
        // (with the nonce fixed up) no longer verifies.
        let mut other_salt = salt();
        other_salt[0] ^= 1;
        let mut ex = Exchange::new(
            parse_client_first(CLIENT_FIRST).unwrap(),
            SERVER_NONCE,
            other_salt,
            4096,
        );
        let proof = ex.take_client_final(CLIENT_FINAL).unwrap();
        assert_eq!(verify(&proof, b"pencil"), None);
        let mut ex = Exchange::new(
            parse_client_first(CLIENT_FIRST).unwrap(),
            SERVER_NONCE,
            salt(),
            4097,
        );
        let proof = ex.take_client_final(CLIENT_FINAL).unwrap();
        assert_eq!(verify(&proof, b"pencil"), None);
        // An extension in the client final is part of the auth message.
        let tampered = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,x=1,\
p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let proof = exchange(CLIENT_FIRST).take_client_final(tampered).unwrap();
        assert_eq!(verify(&proof, b"pencil"), None);
        // A flipped proof bit.
        let flipped = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=";
        let proof = exchange(CLIENT_FIRST).take_client_final(flipped).unwrap();
        assert_eq!(verify(&proof, b"pencil"), None);
        // Zero iterations is refused outright.
        let mut ex = Exchange::new(
            parse_client_first(CLIENT_FIRST).unwrap(),
            SERVER_NONCE,
            salt(),
            0,
        );
        let proof = ex.take_client_final(CLIENT_FINAL).unwrap();
        assert_eq!(verify(&proof, b"pencil"), None);
    }

    #[test]
    fn tampered_client_final() {
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let p = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        for bad in [
            // c= of another gs2 header ("y,,"), of "n,," with cbind data, empty.
            format!("c=eSws,r={nonce},{p}"),
            format!("c=biwsAAAA,r={nonce},{p}"),
            format!("c=,r={nonce},{p}"),
            // r= missing the server part, with more, or another.
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,{p}"),
            format!("c=biws,r={nonce}x,{p}"),
            format!("c=biws,r=x{nonce},{p}"),
            // Order, missing parts, proof not last or not 32 bytes.
            format!("r={nonce},c=biws,{p}"),
            format!("c=biws,{p}"),
            format!("c=biws,r={nonce}"),
            format!("c=biws,r={nonce},p="),
            format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ=="),
            format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=AAAA"),
            format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ"),
            format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN-Ute9ytag9zjfMHgsqmmiz7AndVQ="),
            format!("c=biws,r={nonce},{p},x=1"),
            format!("c=biws,r={nonce},m=1,{p}"),
            format!("c=biws,r={nonce},,{p}"),
            format!("c=biws,r={nonce},1=x,{p}"),
            format!("c=biws,r={nonce},{p}\0"),
        ] {
            let got = exchange(CLIENT_FIRST).take_client_final(bad.as_bytes());
            assert_eq!(got.err(), Some(SaslError::Malformed), "{bad}");
        }
        assert!(exchange(CLIENT_FIRST).take_client_final(b"\xff").is_err());
    }

    #[test]
    fn gs2_headers() {
        // "y,," (client could bind but thinks the server cannot): accepted,
        // and the client final must repeat it.
        let mut ex = exchange(b"y,,n=user,r=abc");
        assert_eq!(
            ex.server_first(),
            format!("r=abc{SERVER_NONCE},s={SALT_B64},i=4096")
        );
        let fin =
            format!("c=eSws,r=abc{SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert!(ex.take_client_final(fin.as_bytes()).is_ok());
        let fin =
            format!("c=biws,r=abc{SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert!(
            exchange(b"y,,n=user,r=abc")
                .take_client_final(fin.as_bytes())
                .is_err()
        );
        // An authzid equal to the user: allowed, and in the c= header.
        let mut ex = exchange(b"n,a=us=3Der,n=us=3Der,r=abc");
        assert_eq!(ex.user(), b"us=er");
        let fin = format!(
            "c={},r=abc{SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            STANDARD.encode("n,a=us=3Der,")
        );
        assert!(ex.take_client_final(fin.as_bytes()).is_ok());
    }

    #[test]
    fn client_first_refusals() {
        assert_eq!(
            parse_client_first(b"p=tls-unique,,n=user,r=abc"),
            Err(SaslError::Malformed)
        );
        assert_eq!(
            parse_client_first(b"n,a=admin,n=user,r=abc"),
            Err(SaslError::Authzid)
        );
        for bad in [
            &b""[..],
            b"n",
            b"n,",
            b"n,,",
            b"x,,n=user,r=abc",
            b"N,,n=user,r=abc",
            b",,n=user,r=abc",
            b"n,b=user,n=user,r=abc",
            b"n,a=,n=user,r=abc",
            b"n,,m=ext,n=user,r=abc",
            b"n,,n=user,r=abc,m=ext",
            b"n,,n=,r=abc",
            b"n,,n=user",
            b"n,,n=user,",
            b"n,,n=user,r=",
            b"n,,n=user,r=a b",
            b"n,,n=user,r=a\x7f",
            b"n,,r=abc,n=user",
            b"n,,user,r=abc",
            b"n,,n=user,r=abc,",
            b"n,,n=user,r=abc,=x",
            b"n,,n=user,r=abc,xy",
            b"n,,n=u\0ser,r=abc",
            b"n,,n=us=er,r=abc",
            b"n,,n=us=2c,r=abc",
            b"n,,n=us=2,r=abc",
            b"n,,n=us=,r=abc",
            b"n,,n=\xffuser,r=abc",
        ] {
            assert_eq!(
                parse_client_first(bad),
                Err(SaslError::Malformed),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Optional extensions are ignored.
        assert!(parse_client_first(b"n,,n=user,r=abc,x=1,y=").is_ok());
    }

    #[test]
    fn saslname_escapes() {
        let first = parse_client_first(b"n,,n=a=2Cb=3Dc=3D=2C,r=abc").unwrap();
        assert_eq!(first.user, b"a,b=c=,");
        let first = parse_client_first("n,,n=jörg,r=abc".as_bytes()).unwrap();
        assert_eq!(first.user, "jörg".as_bytes());
        assert_eq!(parse_client_first(b"n,,n==3D,r=abc").unwrap().user, b"=");
    }

    #[test]
    fn debug_hides_the_proof() {
        let proof = exchange(CLIENT_FIRST)
            .take_client_final(CLIENT_FINAL)
            .unwrap();
        let text = format!("{proof:?}");
        assert!(!text.contains("rOprNG"), "{text}");
        assert!(!text.contains("116"), "{text}"); // first proof byte, 0x74
        let text = format!("{:?}", exchange(CLIENT_FIRST));
        assert!(!text.contains("pencil"));
    }

    #[test]
    fn random_and_truncated_messages_never_panic() {
        for n in 0..CLIENT_FIRST.len() {
            let _ = parse_client_first(&CLIENT_FIRST[..n]);
        }
        for n in 0..CLIENT_FINAL.len() {
            assert!(
                exchange(CLIENT_FIRST)
                    .take_client_final(&CLIENT_FINAL[..n])
                    .is_err()
            );
        }
        let mut x = 0x5c7a_u64;
        let alphabet = b"nyrpcmaxsi=,2C3D\0\xc3\xff biwsAbc+/";
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..5_000 {
            let len = (next() % 40) as usize;
            let mut msg: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_client_first(&msg);
            // Mutate a valid message at one spot, too.
            let mut good = CLIENT_FINAL.to_vec();
            let at = (next() % good.len() as u64) as usize;
            good[at] = alphabet[(next() % alphabet.len() as u64) as usize];
            let mut ex = exchange(CLIENT_FIRST);
            if let Ok(proof) = ex.take_client_final(&good)
                && good != CLIENT_FINAL
            {
                // Only changes inside the proof survive parsing.
                assert!(
                    at >= CLIENT_FINAL.len() - 44,
                    "{}",
                    String::from_utf8_lossy(&good)
                );
                let _ = proof;
            }
            msg.truncate(len / 2);
            let _ = exchange(CLIENT_FIRST).take_client_final(&msg);
        }
    }
}
