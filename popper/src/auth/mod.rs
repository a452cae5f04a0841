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
pub mod checkpassword;
pub mod passwd;
pub mod password_file;
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
    /// SCRAM-SHA-256's server-final message, for a good SCRAM login.
    pub server_final: Option<String>,
}

impl Outcome {
    fn fail(e: AuthError) -> Outcome {
        Outcome {
            result: Err(e),
            delay: true,
            why: None,
            server_final: None,
        }
    }

    fn now(result: Result<Account, AuthError>) -> Outcome {
        Outcome {
            result,
            delay: false,
            why: None,
            server_final: None,
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
    let account = match gate(user, Offered::Pass(password), block_uid, lists) {
        Ok(e) => e,
        Err(o) => return o,
    };
    match passwd::verify(&account, password, today) {
        Ok(passwd::Verdict::Good) => Outcome::now(Ok(Account::proven(account))),
        Ok(passwd::Verdict::Bad) => Outcome::fail(AuthError::BadPassword),
        Ok(passwd::Verdict::AccountExpired) => Outcome::fail(AuthError::AccountExpired),
        Ok(passwd::Verdict::PasswordExpired) => Outcome::fail(AuthError::PasswordExpired),
        Err(e) => Outcome::fail(AuthError::System(format!("shadow lookup: {e}"))),
    }
}

/// What a login offers: a password (USER/PASS) or a digest of the
/// greeting's challenge (APOP).
#[derive(Debug, Clone, Copy)]
pub enum Offered<'a> {
    /// USER/PASS.
    Pass(&'a [u8]),
    /// APOP: the client's digest and the challenge it is of.
    Apop {
        /// The digest as the client sent it.
        digest: &'a [u8],
        /// The greeting's timestamp.
        timestamp: &'a [u8],
    },
}

/// The checks every way of proving a password shares, in qpopper's order:
/// the allow and deny lists before anything is looked up, then the
/// account, then BLOCK_UID for USER/PASS and uid 0 for APOP. Returns the
/// account entry to prove the secret for, or the outcome already decided.
fn gate(
    user: &[u8],
    offered: Offered<'_>,
    block_uid: u32,
    lists: &policy::Lists<'_>,
) -> Result<passwd::Entry, Outcome> {
    let apop = matches!(offered, Offered::Apop { .. });
    let listed = if apop {
        policy::check_apop_order(lists, user)
    } else {
        policy::check_pass_order(lists, user)
    };
    if let Err(r) = listed {
        // COMPAT qpopper 2.53: for PASS the same vague text as a wrong
        // password, after the same delay and the same work; for APOP
        // "Permission denied." at once.
        if let Offered::Pass(p) = offered {
            passwd::burn(p);
        }
        let e = if apop {
            AuthError::PermissionDenied
        } else {
            AuthError::BadPassword
        };
        return Err(Outcome {
            why: Some(r.to_string()),
            delay: !apop,
            ..Outcome::fail(e)
        });
    }
    let entry = match passwd::lookup(user) {
        Ok(Some(e)) => e,
        Ok(None) => {
            if let Offered::Pass(p) = offered {
                passwd::burn(p);
            }
            return Err(Outcome::fail(AuthError::BadPassword));
        }
        Err(e) => {
            return Err(Outcome::fail(AuthError::System(format!(
                "passwd lookup: {e}"
            ))));
        }
    };
    if apop && entry.uid == 0 {
        return Err(Outcome::now(Err(AuthError::RootDenied)));
    }
    // COMPAT qpopper 2.53: BLOCK_UID is checked before the password and
    // answered at once; uids 0..=BLOCK_UID are blocked (PASS only).
    if !apop && entry.uid <= block_uid {
        return Err(Outcome::now(Err(AuthError::UidBlocked(block_uid))));
    }
    Ok(entry)
}

/// A login decided by a checkpassword program (setting `checkpassword`):
/// the shared gate, then the program with `/bin/true` to run. Its `1` is
/// a wrong password (delayed, the usual text); anything else means the
/// password could not be checked now (`[SYS/TEMP]`).
pub fn check_program(
    program: &Path,
    user: &[u8],
    offered: Offered<'_>,
    timeout: std::time::Duration,
    block_uid: u32,
    lists: &policy::Lists<'_>,
) -> Outcome {
    let entry = match gate(user, offered, block_uid, lists) {
        Ok(e) => e,
        Err(o) => return o,
    };
    let (kind, secret, timestamp) = match offered {
        Offered::Pass(p) => (checkpassword::Kind::Pop, p, &b""[..]),
        Offered::Apop { digest, timestamp } => (checkpassword::Kind::Apop, digest, timestamp),
    };
    match checkpassword::check(program, kind, user, secret, timestamp, timeout) {
        checkpassword::Verdict::Good => Outcome::now(Ok(Account::proven(entry))),
        checkpassword::Verdict::Bad => Outcome {
            why: Some(format!("{} said no", program.display())),
            ..Outcome::fail(AuthError::BadPassword)
        },
        checkpassword::Verdict::Failed(why) => Outcome::now(Err(AuthError::Unavailable(why))),
    }
}

/// A login checked against checkpw's `.password` in the user's Maildir
/// (setting `password-file`): the shared gate, then the secret read as the
/// user — compared in constant time for USER/PASS, as the key of the
/// digest for APOP. A file popper will not use is logged and is a failed
/// login for the client (the same text and delay as a wrong password).
pub fn check_password_file(
    user: &[u8],
    offered: Offered<'_>,
    file: &dyn Fn(&passwd::Entry) -> std::path::PathBuf,
    block_uid: u32,
    lists: &policy::Lists<'_>,
) -> Outcome {
    use subtle::ConstantTimeEq;
    let entry = match gate(user, offered, block_uid, lists) {
        Ok(e) => e,
        Err(o) => return o,
    };
    let path = file(&entry);
    let secret = match password_file::read(&path, entry.uid, entry.gid) {
        Ok(s) => s,
        Err(password_file::Refused(why)) => {
            if let Offered::Pass(p) = offered {
                passwd::burn(p);
            }
            return Outcome {
                why: Some(why),
                ..Outcome::fail(AuthError::BadPassword)
            };
        }
    };
    let good = match offered {
        Offered::Pass(p) => p.len() == secret.len() && bool::from(p.ct_eq(&secret)),
        Offered::Apop { digest, timestamp } => {
            let expected = zeroize::Zeroizing::new(apop::digest_hex(timestamp, &secret));
            apop::digest_matches(&expected, digest)
        }
    };
    if good {
        Outcome::now(Ok(Account::proven(entry)))
    } else {
        Outcome::fail(if matches!(offered, Offered::Apop { .. }) {
            AuthError::DigestMismatch
        } else {
            AuthError::BadPassword
        })
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
    check_keyed(user, db, lists, |secret| {
        let expected = zeroize::Zeroizing::new(apop::digest_hex(timestamp, secret));
        apop::digest_matches(&expected, digest).then_some(None)
    })
}

/// A SASL proof computed from the user's secret in the APOP database.
#[derive(Debug, Clone, Copy)]
pub enum Digest<'a> {
    /// CRAM-MD5 (RFC 2195): HMAC-MD5 of the challenge, keyed by the secret.
    Cram {
        /// The challenge sent.
        challenge: &'a str,
        /// The client's hex digest.
        digest: &'a [u8],
    },
    /// SCRAM-SHA-256 (RFC 7677), with the secret as the password.
    Scram(&'a pop3_core::scram::Proof),
}

/// SASL CRAM-MD5 and SCRAM-SHA-256: the APOP database keeps each secret
/// as it was given (APOP needs it so), which is all either mechanism
/// needs — no new database format. The same checks as APOP, in the same
/// order, and a wrong proof is delayed like a wrong digest.
pub fn check_digest(
    user: &[u8],
    proof: Digest<'_>,
    db: &Path,
    lists: &policy::Lists<'_>,
) -> Outcome {
    check_keyed(user, db, lists, |secret| match proof {
        Digest::Cram { challenge, digest } => {
            pop3_core::cram::verify(secret, challenge, digest).then_some(None)
        }
        Digest::Scram(p) => pop3_core::scram::verify(p, secret).map(Some),
    })
}

/// The APOP database's checks (§4.2 order) around `verify`, which gets
/// the user's secret and answers `Some(server_final)` for a good proof.
fn check_keyed(
    user: &[u8],
    db: &Path,
    lists: &policy::Lists<'_>,
    verify: impl FnOnce(&[u8]) -> Option<Option<String>>,
) -> Outcome {
    let now = Outcome::now;
    let offered = Offered::Apop {
        digest: b"",
        timestamp: b"",
    };
    let account = match gate(user, offered, 0, lists) {
        Ok(e) => e,
        Err(o) => return o,
    };
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
    match verify(&secret) {
        Some(server_final) => Outcome {
            server_final,
            ..now(Ok(Account::proven(account)))
        },
        None => Outcome::fail(AuthError::DigestMismatch),
    }
}
