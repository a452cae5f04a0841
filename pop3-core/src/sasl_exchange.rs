//! One SASL exchange of `AUTH` (RFC 5034): the server's `+ ` challenges
//! and the client's base64 lines, until a login can be checked.
//!
//! Pure and step by step: [`Exchange::start`] for the `AUTH` line,
//! [`Exchange::on_line`] for each answer; each returns what to say and
//! whether the exchange goes on. The proofs are checked by the host (it
//! holds the secrets); this module only gathers them.

use crate::cram;
use crate::sasl::{self, LOGIN_PASS_PROMPT, LOGIN_USER_PROMPT, Mechanism, Nonces, SaslError};
use crate::scram;
use crate::secret::Secret;

/// SCRAM's iteration count (RFC 7677's minimum, what mpop and Dovecot use).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// An exchange waiting for the client's next line.
#[derive(Debug)]
pub enum Exchange {
    /// PLAIN without an initial response: waits for it.
    Plain,
    /// LOGIN: waits for the user name.
    LoginUser,
    /// LOGIN: waits for the password of this user.
    LoginPass(Vec<u8>),
    /// CRAM-MD5: waits for `user digest` of this challenge.
    Cram(String),
    /// SCRAM-SHA-256 without an initial response: waits for client-first.
    ScramFirst,
    /// SCRAM-SHA-256: waits for client-final.
    ScramFinal(Box<scram::Exchange>),
}

/// What a client gave, once an exchange has all it needs.
#[derive(Debug)]
pub enum Gathered {
    /// A user name and password (PLAIN, LOGIN): checked like PASS.
    Password(Vec<u8>, Secret),
    /// CRAM-MD5: the user, the challenge and the client's hex digest.
    Cram {
        /// The user name.
        user: Vec<u8>,
        /// The challenge sent.
        challenge: String,
        /// The hex digest as sent.
        digest: Vec<u8>,
    },
    /// SCRAM-SHA-256: the user and the proof to verify.
    Scram(Vec<u8>, Box<scram::Proof>),
}

/// What to do after a line.
#[derive(Debug)]
pub enum Said {
    /// Send `+ ` and this (base64) text; wait in this exchange.
    Continue(Exchange, String),
    /// The exchange is complete: check this login.
    Done(Gathered),
    /// The exchange failed or was cancelled (`*`).
    Failed(SaslError),
}

impl Exchange {
    /// `AUTH mechanism [initial]`: the first step. `host` names the server
    /// in CRAM-MD5's challenge.
    pub fn start(mech: Mechanism, initial: Option<&[u8]>, nonces: &mut Nonces, host: &str) -> Said {
        match (mech, initial) {
            (Mechanism::Plain, None) => Said::Continue(Exchange::Plain, String::new()),
            (Mechanism::Plain, Some(r)) => Exchange::Plain.on_line(r, nonces),
            (Mechanism::Login, None) => {
                Said::Continue(Exchange::LoginUser, LOGIN_USER_PROMPT.to_string())
            }
            (Mechanism::Login, Some(r)) => Exchange::LoginUser.on_line(r, nonces),
            // CRAM-MD5 starts with the server's challenge: an initial
            // response cannot be one (RFC 4422 §4).
            (Mechanism::CramMd5, Some(_)) => Said::Failed(SaslError::Malformed),
            (Mechanism::CramMd5, None) => {
                let challenge = cram::challenge(0, &nonces.token(), host);
                let text = sasl::encode(challenge.as_bytes());
                Said::Continue(Exchange::Cram(challenge), text)
            }
            (Mechanism::ScramSha256, None) => Said::Continue(Exchange::ScramFirst, String::new()),
            (Mechanism::ScramSha256, Some(r)) => Exchange::ScramFirst.on_line(r, nonces),
        }
    }

    /// The client's answer line (base64, `=` for empty, `*` to cancel).
    pub fn on_line(self, line: &[u8], nonces: &mut Nonces) -> Said {
        if line == b"*" {
            return Said::Failed(SaslError::Cancelled);
        }
        let data = match sasl::decode(line) {
            Ok(d) => d,
            Err(e) => return Said::Failed(e),
        };
        match self {
            Exchange::Plain => match sasl::plain(&data) {
                Ok((user, pass)) => Said::Done(Gathered::Password(user, pass)),
                Err(e) => Said::Failed(e),
            },
            Exchange::LoginUser if data.is_empty() => Said::Failed(SaslError::Malformed),
            Exchange::LoginUser => Said::Continue(
                Exchange::LoginPass(data.to_vec()),
                LOGIN_PASS_PROMPT.to_string(),
            ),
            Exchange::LoginPass(user) => {
                Said::Done(Gathered::Password(user, Secret::new(data.to_vec())))
            }
            Exchange::Cram(challenge) => match cram::parse_response(&data) {
                Ok((user, digest)) => Said::Done(Gathered::Cram {
                    user,
                    challenge,
                    digest: digest.to_vec(),
                }),
                Err(e) => Said::Failed(e),
            },
            Exchange::ScramFirst => match scram::parse_client_first(&data) {
                Ok(first) => {
                    let ex = scram::Exchange::new(
                        first,
                        &nonces.token(),
                        nonces.salt(),
                        SCRAM_ITERATIONS,
                    );
                    let text = sasl::encode(ex.server_first().as_bytes());
                    Said::Continue(Exchange::ScramFinal(Box::new(ex)), text)
                }
                Err(e) => Said::Failed(e),
            },
            Exchange::ScramFinal(mut ex) => match ex.take_client_final(&data) {
                Ok(proof) => Said::Done(Gathered::Scram(ex.user().to_vec(), Box::new(proof))),
                Err(e) => Said::Failed(e),
            },
        }
    }
}
