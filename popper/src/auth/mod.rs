//! Authentication: the order of checks, run by the driver while still root.
//!
//! PASS (qpopper 2.53 order, qpopper.md §4.1): the deny list, then the
//! allow list (`policy.rs`), then an unknown user — each the vague error
//! after the failure delay; uid at or below BLOCK_UID → refused at once
//! (2.53 text); then the password (libxcrypt); then the account's expiry.
//! Every failure except BLOCK_UID waits `auth-fail-delay`.
//!
//! APOP (§4.2): the allow list, then the deny list (`Permission denied.`,
//! no delay), then the account, uid 0, the database, the digest.
//!
//! DEVIATION: a wrong APOP digest, and APOP for an unknown user, wait
//! `auth-fail-delay` like a wrong password (2.53 answered at once, so APOP
//! secrets could be guessed as fast as the network allowed).

pub mod apop;
pub mod passwd;
pub mod policy;

pub use passwd::Account;

use std::path::Path;

use popauth::db::{Access, AuthDb, DbError, LOCK_WAIT, strip_os};

use pop3_core::error::AuthError;

/// The result of a login attempt and whether the failure delay applies.
#[derive(Debug)]
pub struct Outcome {
    /// The account to become, or why not.
    pub result: Result<Account, AuthError>,
    /// Sleep `auth-fail-delay` before answering.
    pub delay: bool,
    /// For the log, when the reply's vague text hides the real reason.
    pub why: Option<String>,
}

impl Outcome {
    fn fail(e: AuthError) -> Outcome {
        Outcome {
            result: Err(e),
            delay: true,
            why: None,
        }
    }

    fn now(result: Result<Account, AuthError>) -> Outcome {
        Outcome {
            result,
            delay: false,
            why: None,
        }
    }
}

/// USER/PASS: checks `password` for the user named `user`.
pub fn check_pass(
    user: &[u8],
    password: &[u8],
    block_uid: u32,
    today: i64,
    lists: &policy::Lists<'_>,
) -> Outcome {
    if let Err(r) = policy::check_pass_order(lists, user) {
        // COMPAT qpopper 2.53: the same vague text as a wrong password,
        // after the same delay and the same work.
        passwd::burn(password);
        return Outcome {
            why: Some(r.to_string()),
            ..Outcome::fail(AuthError::BadPassword)
        };
    }
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
        return Outcome::now(Err(AuthError::UidBlocked(block_uid)));
    }
    match passwd::verify(&account, password, today) {
        Ok(passwd::Verdict::Good) => Outcome::now(Ok(Account::proven(account))),
        Ok(passwd::Verdict::Bad) => Outcome::fail(AuthError::BadPassword),
        Ok(passwd::Verdict::AccountExpired) => Outcome::fail(AuthError::AccountExpired),
        Ok(passwd::Verdict::PasswordExpired) => Outcome::fail(AuthError::PasswordExpired),
        Err(e) => Outcome::fail(AuthError::System(format!("shadow lookup: {e}"))),
    }
}

/// The last link of a checkpassword chain (`popper --pop3d`): the program
/// before popper checked the password and became the user, so the proof
/// is that popper runs as `user` — and not as root (qmail-pop3d refuses
/// uid 0 too: a chain that never changed user proves nothing).
pub fn check_chain(user: &[u8]) -> Outcome {
    let uid = nix::unistd::getuid();
    if uid.is_root() || nix::unistd::geteuid() != uid {
        return Outcome::now(Err(AuthError::RootDenied));
    }
    match passwd::lookup(user) {
        Ok(Some(e)) if e.uid == uid.as_raw() => Outcome::now(Ok(Account::proven(e))),
        Ok(_) => Outcome {
            why: Some(format!(
                "started as uid {uid}, which is not this user's (the checkpassword program did not become them)"
            )),
            ..Outcome::now(Err(AuthError::BadPassword))
        },
        Err(e) => Outcome::now(Err(AuthError::System(format!("passwd lookup: {e}")))),
    }
}

/// USER, when APOP is possible: a user who has an APOP record must use
/// APOP. COMPAT qpopper 2.53: checked only for a user passwd knows, and
/// clear-text login is allowed when there is no database at all.
/// DEVIATION: a database that exists but cannot be read, or is corrupt,
/// refuses USER (`[SYS/TEMP]`) instead of silently allowing clear-text
/// login for users who must use APOP.
pub fn may_use_pass(user: &[u8], db: &Path) -> Result<(), AuthError> {
    let Ok(Some(account)) = passwd::lookup(user) else {
        return Ok(());
    };
    let Some(d) = open_db(db)? else {
        return Ok(());
    };
    // A record without a secret (qpopper 4 writes one for SCRAM-only
    // users) gives no APOP login, so it does not force APOP either:
    // refusing USER too would leave the user no way in.
    match d.secret(account.name.as_bytes()) {
        Ok(Some(s)) if !s.is_empty() => Err(AuthError::MustUseApop),
        Ok(_) => Ok(()),
        Err(e) => Err(AuthError::ApopDbUnavailable(e.to_string())),
    }
}

/// What the log says of an APOP login when there is no database.
const MISSING: &str = "No such file or directory";

/// Opens the APOP database for reading as popper does: mode 0600 and an
/// owner of root or `pop` checked on the open descriptor before gdbm reads
/// a byte (popper is root here; gdbm must not parse a file anyone else
/// could have written). `Ok(None)`: there is no database.
fn open_db(db: &Path) -> Result<Option<AuthDb>, AuthError> {
    let mut owners = vec![0];
    if let Ok(Some(pop)) = nix::unistd::User::from_name(popauth::app::POP_USER) {
        owners.push(pop.uid.as_raw());
    }
    match AuthDb::open_owned(db, Access::Read, LOCK_WAIT, &owners) {
        Ok(d) => Ok(Some(d)),
        Err(DbError::Missing) => Ok(None),
        Err(DbError::WrongMode(m)) => Err(AuthError::ApopDbMode(m)),
        Err(DbError::Lock(e)) => Err(AuthError::ApopDbLock(strip_os(&e))),
        Err(e) => Err(AuthError::ApopDbUnavailable(e.to_string())),
    }
}

/// APOP: checks `digest` for `user` against the challenge `timestamp`
/// (qpopper.md §4.2 order). COMPAT qpopper 2.53: BLOCK_UID does not apply
/// and only uid 0 is refused. Guesses (an unknown user, a wrong digest)
/// are delayed; refusals by policy are not.
pub fn check_apop(
    user: &[u8],
    digest: &[u8],
    timestamp: &[u8],
    db: &Path,
    lists: &policy::Lists<'_>,
) -> Outcome {
    let now = Outcome::now;
    if let Err(r) = policy::check_apop_order(lists, user) {
        return Outcome {
            why: Some(r.to_string()),
            ..now(Err(AuthError::PermissionDenied))
        };
    }
    let account = match passwd::lookup(user) {
        Ok(Some(a)) => a,
        Ok(None) => return Outcome::fail(AuthError::BadPassword),
        Err(e) => return now(Err(AuthError::System(format!("passwd lookup: {e}")))),
    };
    if account.uid == 0 {
        return now(Err(AuthError::RootDenied));
    }
    let d = match open_db(db) {
        Ok(Some(d)) => d,
        Ok(None) => return now(Err(AuthError::ApopDbUnavailable(MISSING.into()))),
        Err(e) => return now(Err(e)),
    };
    let secret = match d.secret(account.name.as_bytes()) {
        // An empty secret (a record with no APOP part, as qpopper 4 writes
        // for SCRAM-only users) would make the digest MD5(challenge) alone:
        // anyone could log in. It is no secret at all.
        Ok(Some(s)) if !s.is_empty() => zeroize::Zeroizing::new(s),
        Ok(_) => return now(Err(AuthError::NotAuthorized)),
        Err(e) => return now(Err(AuthError::ApopDbUnavailable(e.to_string()))),
    };
    drop(d);
    let expected = zeroize::Zeroizing::new(apop::digest_hex(timestamp, &secret));
    if apop::digest_matches(&expected, digest) {
        now(Ok(Account::proven(account)))
    } else {
        Outcome::fail(AuthError::DigestMismatch)
    }
}
