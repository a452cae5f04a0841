//! Checking a login and opening the mailbox: the one place where popper
//! crosses from root to the mail user.
//!
//! Order: check the proof as root (shadow, pop.auth, a checkpassword
//! program, or the user's `.password` read as the user), sleep the failure
//! delay on a failure the delay applies to, record the login for
//! POP-before-SMTP, then `become_user` (verified), and only then open the
//! maildrop — the mbox spool, or a Maildir — as the user.

use std::path::{Path, PathBuf};

use pop3_core::error::AuthError;
use pop3_core::session::{AuthFailure, AuthRequest, Proof};

use crate::auth::{self, Account, Offered};
use crate::config::{Config, Mode};
use crate::log::Log;
use crate::maildrop::Maildrop;
use crate::maildrop::error::MaildropError;
use crate::maildrop::login_mail::LoginMail;
use crate::maildrop::maildir::{MaildirDrop, MaildirOptions};
use crate::maildrop::mbox::{MboxDrop, MboxOptions, lock::LockConfig};
use crate::peer::Peer;
use crate::privilege::{self, Dropped};

/// Who logged in, and their open mailbox.
pub struct LoggedIn {
    /// The canonical login name.
    pub user: String,
    /// The open mailbox.
    pub drop: Box<dyn Maildrop>,
    /// SCRAM-SHA-256's server-final message, if that was the login.
    pub server_final: Option<String>,
}

/// The Maildir of a user: `setting` relative to their home, or absolute
/// with `%u` for their name (the `maildir` setting, `--pop3d`'s argument
/// relative to the working directory it was started in).
pub fn maildir_path(setting: &Path, home: &Path, user: &str) -> PathBuf {
    if setting.is_absolute() {
        PathBuf::from(setting.to_string_lossy().replace("%u", user))
    } else {
        home.join(setting)
    }
}

/// Checks the proof in `req` the way the configuration says.
fn check(cfg: &Config, log: &Log, timestamp: &str, req: &AuthRequest) -> auth::Outcome {
    let lists = auth::policy::Lists {
        allow: cfg.auth_file.as_deref(),
        deny: cfg.nonauth_file.as_deref(),
    };
    let offered = match &req.proof {
        Proof::Chain => return auth::check_chain(&req.user),
        // CAPA offers these only where popper reads the APOP database
        // itself (no checkpassword program, no password file).
        Proof::Cram { challenge, digest } => {
            let d = auth::Digest::Cram { challenge, digest };
            return auth::check_digest(&req.user, d, &cfg.apop_db, &lists);
        }
        Proof::Scram(p) => {
            return auth::check_digest(&req.user, auth::Digest::Scram(p), &cfg.apop_db, &lists);
        }
        Proof::Pass(secret) => Offered::Pass(secret.expose()),
        Proof::Apop(digest) => {
            // COMPAT qpopper 2.53: every APOP attempt is logged.
            log.info(&format!("apop \"{}\"", crate::log::printable(&req.user)));
            Offered::Apop {
                digest,
                timestamp: timestamp.as_bytes(),
            }
        }
    };
    if let Some(program) = &cfg.checkpassword {
        return auth::check_program(
            program,
            &req.user,
            offered,
            cfg.checkpassword_timeout,
            cfg.block_uid,
            &lists,
        );
    }
    if let Some(file) = &cfg.password_file {
        let maildir = cfg.maildir.as_deref().unwrap_or(Path::new("Maildir"));
        let file = |e: &auth::passwd::Entry| maildir_path(maildir, &e.home, &e.name).join(file);
        return auth::check_password_file(&req.user, offered, &file, cfg.block_uid, &lists);
    }
    match offered {
        Offered::Pass(p) => {
            auth::check_pass(&req.user, p, cfg.block_uid, crate::clock::today(), &lists)
        }
        Offered::Apop { digest, timestamp } => {
            auth::check_apop(&req.user, digest, timestamp, &cfg.apop_db, &lists)
        }
    }
}

/// The account a login proves, or the failure as the session reports it
/// (logged, and delayed where the delay applies).
pub fn authenticate(
    cfg: &Config,
    log: &Log,
    peer: &Peer,
    timestamp: &str,
    req: &AuthRequest,
) -> Result<(Account, Option<String>), AuthFailure> {
    let outcome = check(cfg, log, timestamp, req);
    match outcome.result {
        Ok(a) => Ok((a, outcome.server_final)),
        Err(e) => {
            let shown = crate::log::printable(&req.user);
            match &e {
                AuthError::System(why) => {
                    log.err(&format!("checking the password of \"{shown}\": {why}"))
                }
                AuthError::Unavailable(why) => {
                    log.err(&format!("checking the password of \"{shown}\": {why}"))
                }
                _ => {}
            }
            let why = outcome.why.unwrap_or_else(|| e.to_string());
            log.notice(&format!(
                "Failed attempted login to {shown} from host {} ({why})",
                peer.describe()
            ));
            if outcome.delay && !cfg.auth_fail_delay.is_zero() {
                std::thread::sleep(cfg.auth_fail_delay);
            }
            Err(AuthFailure::Denied(e))
        }
    }
}

/// Checks a login and, when it succeeds, records it for POP-before-SMTP,
/// becomes the user and opens the mailbox.
pub fn login(
    cfg: &Config,
    log: &Log,
    peer: &Peer,
    host: &str,
    timestamp: &str,
    req: &AuthRequest,
) -> Result<LoggedIn, AuthFailure> {
    let (account, server_final) = authenticate(cfg, log, peer, timestamp, req)?;
    if let (Some(dir), Some(ip)) = (&cfg.relay_ctrl_dir, peer.ip) {
        let domain = std::env::var("DOMAIN").ok();
        if let Err(e) = crate::relay_ctrl::record(dir, ip, account.name(), domain.as_deref()) {
            log.notice(&format!(
                "{}: not recorded for POP-before-SMTP: {e}",
                account.name()
            ));
        }
    }
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
    let mail = bulletins.as_ref().map(|b| b as &dyn LoginMail);
    #[cfg(not(feature = "bulletins"))]
    let mail = None;
    match open(cfg, &account, &dropped, host, mail) {
        Ok(drop) => Ok(LoggedIn {
            user: account.name().to_string(),
            drop,
            server_final,
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

/// Opens the user's mailbox: the Maildir `--pop3d` names or the `maildir`
/// setting gives, else the mbox spool.
fn open(
    cfg: &Config,
    account: &Account,
    owner: &Dropped,
    host: &str,
    mail: Option<&dyn LoginMail>,
) -> Result<Box<dyn Maildrop>, MaildropError> {
    let maildir = match &cfg.mode {
        // qmail-pop3d's argument is relative to the directory the
        // checkpassword program left it in: the home.
        Mode::Pop3d { maildir } => Some(
            std::env::current_dir()
                .map(|d| d.join(maildir))
                .unwrap_or_else(|_| maildir.clone()),
        ),
        _ => cfg
            .maildir
            .as_deref()
            .map(|m| maildir_path(m, account.home(), account.name())),
    };
    if let Some(path) = maildir {
        let opts = MaildirOptions {
            path,
            update_status: cfg.update_status,
            size_index: cfg.scan_index,
        };
        return Ok(Box::new(MaildirDrop::open(owner, opts, mail)?));
    }
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
    Ok(Box::new(MboxDrop::open(owner, account.name(), opts, mail)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_paths_as_qmail_pop3d_and_the_setting_give_them() {
        let home = Path::new("/home/alice");
        assert_eq!(
            maildir_path(Path::new("Maildir"), home, "alice"),
            Path::new("/home/alice/Maildir")
        );
        assert_eq!(
            maildir_path(Path::new("/var/maildirs/%u/"), home, "alice"),
            Path::new("/var/maildirs/alice/")
        );
        assert_eq!(
            maildir_path(Path::new("mail/box"), home, "alice"),
            Path::new("/home/alice/mail/box")
        );
    }
}
