//! A whole POP3 session in memory: client bytes in, server bytes out.
//!
//! This is the real core ([`LineBuf`] → [`Session`] → [`Step`]) driven over
//! a [`MemDrop`] with a scripted authenticator, and no clock, file or
//! socket. Session unit tests and the whole-session fuzz target use it; it
//! also checks, on every RETR, that the bytes sent equal the size announced.

use crate::maildrop::mem::MemDrop;
use crate::maildrop::{Maildrop, Output, SendError};
use crate::protocol::capa::capabilities;
use crate::protocol::error::{AuthError, MaildropError};
use crate::protocol::greeting::{Challenge, Greeting};
use crate::protocol::index::Index;
use crate::protocol::line::LineBuf;
use crate::protocol::session::{
    Abort, AuthFailure, AuthRequest, Session, SessionConfig, SessionEnd, Step,
};

/// The outcome of a simulated session.
#[derive(Debug)]
pub struct Transcript {
    /// Everything the server sent.
    pub output: Vec<u8>,
    /// How the session ended (`None` if input ran out while it was open and
    /// `eof_abort` was false).
    pub end: Option<SessionEnd>,
    /// The maildrop after the session (its `committed` shows the update).
    pub drop: MemDrop,
    /// Every RETR whose byte count differed from its announced size.
    pub size_mismatches: Vec<(u64, u64)>,
}

impl Transcript {
    /// The output as text (lossy), for assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

struct VecOut(Vec<u8>);

impl Output for VecOut {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
    fn drain(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Options of a simulated session.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// APOP challenge in the banner (makes APOP a known command).
    pub apop: bool,
    /// The apop-only build.
    pub apop_only: bool,
    /// qpopper's update-on-abort.
    pub update_on_abort: bool,
    /// Feed the input in pieces of this size.
    pub chunk: usize,
    /// At end of input, behave as on EOF (true) or stop (false).
    pub eof_abort: bool,
    /// Users with an APOP record (USER refuses them when APOP is on).
    pub apop_users: Vec<Vec<u8>>,
    /// `max-auth-failures`.
    pub max_auth_failures: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            apop: false,
            apop_only: false,
            update_on_abort: true,
            chunk: 4096,
            eof_abort: true,
            apop_users: Vec::new(),
            max_auth_failures: 0,
        }
    }
}

/// Runs a session: `auth` decides each login (Ok = accept).
pub fn run(
    input: &[u8],
    drop: MemDrop,
    cfg: &SimConfig,
    auth: &dyn Fn(&AuthRequest) -> Result<(), AuthError>,
) -> Transcript {
    let challenge = cfg.apop.then_some(Challenge {
        pid: 1,
        time: 2,
        nonce: 3,
    });
    let session_cfg = SessionConfig {
        greeting: Greeting::new("sim.example", "0.0.0", false, challenge),
        apop_only: cfg.apop_only,
        update_on_abort: cfg.update_on_abort,
        capabilities: capabilities(cfg.apop_only, "0.0.0"),
        max_auth_failures: cfg.max_auth_failures,
    };
    let mut session = Session::new(session_cfg);
    let mut sim = Sim {
        drop,
        out: VecOut(Vec::new()),
        cfg,
        auth,
        mismatches: Vec::new(),
    };
    session.greeting().write_to(&mut sim.out.0);
    let mut lines = LineBuf::new();
    let mut end = None;
    let mut chunks = input.chunks(cfg.chunk.max(1));
    'outer: loop {
        while let Some(frame) = lines.next_frame() {
            let next = sim.carry_out(session.on_frame(frame));
            if let Some(e) = sim.follow(next, &mut session) {
                end = Some(e);
                break 'outer;
            }
        }
        match chunks.next() {
            Some(c) => lines.push(c),
            None => {
                if cfg.eof_abort && !session.is_ended() {
                    let next = sim.carry_out(session.on_abort(Abort::Eof));
                    end = sim.follow(next, &mut session);
                }
                break;
            }
        }
    }
    Transcript {
        output: sim.out.0,
        end,
        drop: sim.drop,
        size_mismatches: sim.mismatches,
    }
}

/// What carrying out one step led to.
enum Next {
    /// Read the next command.
    Continue,
    /// The session ended: send the sign-off line.
    Close(SessionEnd),
    /// Report the USER check to the session.
    UserChecked(Result<(), AuthError>),
    /// Report this login outcome to the session.
    Auth(Result<Index, AuthFailure>),
    /// Report this update outcome to the session.
    Committed(Result<(), MaildropError>),
}

/// The simulated driver's state.
struct Sim<'a> {
    drop: MemDrop,
    out: VecOut,
    cfg: &'a SimConfig,
    auth: &'a dyn Fn(&AuthRequest) -> Result<(), AuthError>,
    mismatches: Vec<(u64, u64)>,
}

impl Sim<'_> {
    /// Carries out whatever follows from `next` until the session waits
    /// for input or ends.
    fn follow(&mut self, mut next: Next, session: &mut Session) -> Option<SessionEnd> {
        loop {
            next = match next {
                Next::Continue => return None,
                Next::Close(end) => {
                    session.sign_off().write_to(&mut self.out.0);
                    return Some(end);
                }
                Next::UserChecked(r) => self.carry_out(session.on_user(r)),
                Next::Auth(outcome) => self.carry_out(session.on_auth(outcome)),
                Next::Committed(result) => self.carry_out(session.on_committed(result)),
            };
        }
    }

    fn carry_out(&mut self, step: Step<'_>) -> Next {
        match step {
            Step::Nothing => Next::Continue,
            Step::Reply(r) => {
                r.write_to(&mut self.out.0);
                Next::Continue
            }
            Step::Send {
                head,
                msg,
                uid,
                body_lines,
                size,
            } => {
                head.write_to(&mut self.out.0);
                match self.drop.send(msg, uid, body_lines, &mut self.out) {
                    Ok(sent) if body_lines.is_none() && sent != size => {
                        self.mismatches.push((size, sent))
                    }
                    Ok(_) => {}
                    Err(SendError::Storage(_) | SendError::Client(_)) => {
                        return Next::Close(SessionEnd::ServerFault);
                    }
                }
                self.out.0.extend_from_slice(b".\r\n");
                Next::Continue
            }
            Step::CheckUser { user } => {
                Next::UserChecked(if self.cfg.apop_users.iter().any(|u| u == user) {
                    Err(AuthError::MustUseApop)
                } else {
                    Ok(())
                })
            }
            Step::Authenticate(req) => Next::Auth(match (self.auth)(&req) {
                Ok(()) => Ok(Index::new(self.drop.metas())),
                Err(e) => Err(AuthFailure::Denied(e)),
            }),
            Step::Commit { before, commit } => {
                if let Some(r) = before {
                    r.write_to(&mut self.out.0);
                }
                Next::Committed(self.drop.commit(commit.index, commit.marks).map(|_| ()))
            }
            Step::Close { reply, end } => {
                if let Some(r) = reply {
                    r.write_to(&mut self.out.0);
                }
                Next::Close(end)
            }
        }
    }
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
