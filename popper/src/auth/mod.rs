//! Authentication: the order of checks, run by the driver while still root.
//!
//! PASS (qpopper 2.53 order, qpopper.md §4.1): unknown user → the vague
//! error after the failure delay; uid at or below BLOCK_UID → refused at
//! once (2.53 text); then the password (libxcrypt); then the account's
//! expiry. Every failure except BLOCK_UID waits `auth-fail-delay`.

pub mod passwd;

pub use passwd::Account;

use crate::protocol::error::AuthError;

/// The result of a login attempt and whether the failure delay applies.
#[derive(Debug)]
pub struct Outcome {
    /// The account to become, or why not.
    pub result: Result<Account, AuthError>,
    /// Sleep `auth-fail-delay` before answering.
    pub delay: bool,
}

impl Outcome {
    fn fail(e: AuthError) -> Outcome {
        Outcome {
            result: Err(e),
            delay: true,
        }
    }
}

/// USER/PASS: checks `password` for the user named `user`.
pub fn check_pass(user: &[u8], password: &[u8], block_uid: u32, today: i64) -> Outcome {
    let account = match passwd::lookup(user) {
        Ok(Some(a)) => a,
        Ok(None) => {
            passwd::burn(password);
            return Outcome::fail(AuthError::BadPassword);
        }
        Err(e) => return Outcome::fail(AuthError::System(format!("passwd lookup: {e}"))),
    };
    // COMPAT qpopper 2.53: BLOCK_UID is checked before the password and
    // answered at once; uids 0..=BLOCK_UID are blocked.
    if account.uid <= block_uid {
        return Outcome {
            result: Err(AuthError::UidBlocked(block_uid)),
            delay: false,
        };
    }
    match passwd::verify(&account, password, today) {
        Ok(passwd::Verdict::Good) => Outcome {
            result: Ok(account),
            delay: false,
        },
        Ok(passwd::Verdict::Bad) => Outcome::fail(AuthError::BadPassword),
        Ok(passwd::Verdict::AccountExpired) => Outcome::fail(AuthError::AccountExpired),
        Ok(passwd::Verdict::PasswordExpired) => Outcome::fail(AuthError::PasswordExpired),
        Err(e) => Outcome::fail(AuthError::System(format!("shadow lookup: {e}"))),
    }
}
