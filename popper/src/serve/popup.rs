//! `popper --popup HOST PROGRAM ARGS…`: the first link of a qmail POP
//! chain, as qmail-popup with checkpw's APOP patch is.
//!
//! popper greets (always with an APOP challenge), reads USER/PASS or APOP
//! as in any session, and hands the login to PROGRAM — a checkpassword
//! program such as checkpw, checkapoppw or selectcheckpw — with the
//! connection on descriptors 0 and 1 and `user\0password\0timestamp\0` on
//! descriptor 3 (for APOP the password field is the client's digest), and
//! `$AUTH` set to `pop` or `apop` for selectcheckpw. PROGRAM runs what
//! follows it (`relay-ctrl-allow qmail-pop3d Maildir`, or
//! `popper --pop3d Maildir`) as the user, which serves the rest of the
//! connection; popper waits for it.
//!
//! COMPAT qmail-popup: exit 0 means the chain served the session, and
//! popper ends without writing another byte; any other exit is a failed
//! login answered in the AUTHORIZATION state. DEVIATION: exit 1 gets
//! popper's usual failed-login text and delay, and anything else
//! `[SYS/TEMP]` (qmail-popup answered both `-ERR authorization failed`);
//! the greeting is qpopper's, and its challenge keeps popper's random
//! nonce (qmail-popup: `<pid.time@host>`).

use pop3_core::error::AuthError;
use pop3_core::session::{AuthFailure, AuthRequest, Proof};

use crate::auth::checkpassword::{self, Kind, Verdict};
use crate::config::Config;
use crate::log::Log;
use crate::peer::Peer;

/// Hands the login in `req` to `program`; waits for the chain to end.
/// Never "succeeds" for the loop: either the chain took the connection
/// over ([`AuthFailure::HandedOver`]) or the login failed.
pub fn hand_over(
    cfg: &Config,
    log: &Log,
    peer: &Peer,
    program: &[String],
    timestamp: &str,
    req: &AuthRequest,
) -> AuthFailure {
    let shown = crate::log::printable(&req.user);
    let name = program
        .first()
        .map_or("the checkpassword program", String::as_str);
    let (kind, secret): (Kind, &[u8]) = match &req.proof {
        Proof::Pass(s) => (Kind::Pop, s.expose()),
        Proof::Apop(d) => (Kind::Apop, d),
        // Not offered as the first link (the chain's interface carries a
        // password or an APOP digest only).
        Proof::Chain | Proof::Cram { .. } | Proof::Scram(_) => {
            return AuthFailure::Denied(AuthError::BadPassword);
        }
    };
    let fail = |e: AuthError, why: String, delay: bool| {
        log.notice(&format!(
            "Failed attempted login to {shown} from host {} ({why})",
            peer.describe()
        ));
        if delay && !cfg.auth_fail_delay.is_zero() {
            std::thread::sleep(cfg.auth_fail_delay);
        }
        AuthFailure::Denied(e)
    };
    let Some(data) = checkpassword::data(&req.user, secret, timestamp.as_bytes()) else {
        return fail(
            AuthError::BadPassword,
            "not a login the interface can carry".into(),
            true,
        );
    };
    let started = checkpassword::start(program, kind, &data, true, peer.ip);
    drop(data);
    let status = started.and_then(|mut child| child.wait());
    match status.map(checkpassword::verdict) {
        Ok(Verdict::Good) => {
            log.debug(&format!("{shown}: the chain served the session"));
            AuthFailure::HandedOver
        }
        Ok(Verdict::Bad) => fail(AuthError::BadPassword, format!("{name} said no"), true),
        Ok(Verdict::Failed(why)) => {
            log.err(&format!("checking the password of \"{shown}\": {why}"));
            fail(AuthError::Unavailable(why.clone()), why, false)
        }
        Err(e) => {
            let why = format!("cannot run {name}: {e}");
            log.err(&why);
            fail(AuthError::Unavailable(why.clone()), why, false)
        }
    }
}
