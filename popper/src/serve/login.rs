//! Checking a login and opening the mailbox: the one place where popper
//! crosses from root to the mail user.
//!
//! Order: check the proof as root (shadow needs it), sleep the failure
//! delay on a failure the delay applies to, then `become_user` (verified),
//! and only then open the maildrop as the user.

use pop3_core::error::AuthError;
use pop3_core::session::{AuthFailure, AuthRequest, Proof};

use crate::auth;
use crate::config::Config;
use crate::log::Log;
use crate::maildrop::Maildrop;
use crate::maildrop::error::MaildropError;
use crate::maildrop::mbox::{MboxDrop, MboxOptions, lock::LockConfig};
use crate::peer::Peer;
use crate::privilege;

/// Who logged in, and their open mailbox.
pub struct LoggedIn {
    /// The canonical login name.
    pub user: String,
    /// The open mailbox.
    pub drop: Box<dyn Maildrop>,
}

/// Checks a login and, when it succeeds, becomes the user and opens the
/// mailbox.
pub fn login(
    cfg: &Config,
    log: &Log,
    peer: &Peer,
    host: &str,
    timestamp: &str,
    req: &AuthRequest,
) -> Result<LoggedIn, AuthFailure> {
    let shown = crate::log::printable(&req.user);
    let lists = auth::policy::Lists {
        allow: cfg.auth_file.as_deref(),
        deny: cfg.nonauth_file.as_deref(),
    };
    let outcome = match &req.proof {
        Proof::Pass(secret) => auth::check_pass(
            &req.user,
            secret.expose(),
            cfg.block_uid,
            crate::clock::today(),
            &lists,
        ),
        Proof::Apop(digest) => {
            // COMPAT qpopper 2.53: every APOP attempt is logged.
            log.info(&format!("apop \"{shown}\""));
            auth::check_apop(
                &req.user,
                digest,
                timestamp.as_bytes(),
                &cfg.apop_db,
                &lists,
            )
        }
        Proof::Chain => auth::check_chain(&req.user),
    };
    let account = match outcome.result {
        Ok(a) => a,
        Err(e) => {
            if let AuthError::System(why) = &e {
                log.err(&format!("checking the password of \"{shown}\": {why}"));
            }
            let why = outcome.why.unwrap_or_else(|| e.to_string());
            log.notice(&format!(
                "Failed attempted login to {shown} from host {} ({why})",
                peer.describe()
            ));
            if outcome.delay && !cfg.auth_fail_delay.is_zero() {
                std::thread::sleep(cfg.auth_fail_delay);
            }
            return Err(AuthFailure::Denied(e));
        }
    };
    let dropped = privilege::become_user(&account, privilege::spool_group(&cfg.spool_dir))
        .map_err(|e| {
            log.err(&format!("cannot become {}: {e}", account.name()));
            AuthFailure::Storage(
                MaildropError::Io {
                    op: "change to the user".into(),
                    path: account.name().to_string(),
                    errno: 0,
                }
                .into(),
            )
        })?;
    let opts = MboxOptions {
        spool_dir: cfg.spool_dir.clone(),
        locks: LockConfig {
            stale_age: std::time::Duration::from_secs(cfg.dotlock_stale_age),
            timeout: std::time::Duration::from_secs(cfg.lock_timeout),
            host: host.to_string(),
        },
        update_status: cfg.update_status,
        scan_index: cfg.scan_index,
    };
    #[cfg(feature = "bulletins")]
    let bulletins = cfg.bulldir.as_deref().map(|dir| {
        crate::bulletin::BulletinSource::new(
            &dropped,
            dir,
            cfg.max_bulletins,
            account.home(),
            format!("{}@{host}", account.name()),
            crate::clock::now(),
        )
    });
    #[cfg(feature = "bulletins")]
    let mail = bulletins
        .as_ref()
        .map(|b| b as &dyn crate::maildrop::login_mail::LoginMail);
    #[cfg(not(feature = "bulletins"))]
    let mail = None;
    match MboxDrop::open(&dropped, account.name(), opts, mail) {
        Ok(drop) => Ok(LoggedIn {
            user: account.name().to_string(),
            drop: Box::new(drop),
        }),
        Err(e) => {
            log.notice(&format!(
                "{}@{}: cannot open the mailbox: {e}",
                account.name(),
                peer.describe()
            ));
            Err(AuthFailure::Storage(e.into()))
        }
    }
}
