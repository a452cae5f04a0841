//! A whole POP3 session in memory: client bytes in, server bytes out,
//! through the same [`drive`] loop the real server uses.
//!
//! [`SimHost`] is a [`Host`] whose client is a byte string fed in chunks of
//! a chosen size, whose logins are decided by a function, and whose
//! maildrop is any [`Maildrop`] given to it — no clock, file or socket.
//! Session unit tests and the whole-session fuzz target use it. Besides
//! the bytes it records each reply's start and whether a body follows it,
//! so an oracle can check the framing without parsing reply texts.

use std::io;

use crate::capa::capabilities;
use crate::drive::{Event, Host, Input, drive};
use crate::error::AuthError;
use crate::greeting::{Challenge, Greeting};
use crate::maildrop::{Maildrop, Output};
use crate::session::{AuthFailure, AuthRequest, SessionConfig, SessionEnd, Start};

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
    /// At end of input, behave as on EOF (true) or stop as if the client
    /// hung up without a word being logged (false: no abort reply is
    /// written, so tests see only the replies to their commands).
    pub eof_abort: bool,
    /// Users with an APOP record (USER refuses them when APOP is on).
    pub apop_users: Vec<Vec<u8>>,
    /// `max-auth-failures`.
    pub max_auth_failures: u32,
    /// Fail every write after this many bytes (a client that hangs up).
    pub write_limit: Option<u64>,
    /// Where the session begins.
    pub start: Start,
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
            write_limit: None,
            start: Start::Greeting,
        }
    }
}

/// The outcome of a simulated session.
#[derive(Debug)]
pub struct Transcript<D> {
    /// Everything the server sent.
    pub output: Vec<u8>,
    /// How the session ended (`None` when input ran out with `eof_abort`
    /// false and the session still open).
    pub end: Option<SessionEnd>,
    /// The maildrop after the session (it records the update).
    pub drop: D,
    /// Every RETR whose byte count differed from its announced size.
    pub size_mismatches: Vec<(u64, u64)>,
    /// Where each reply (not the greeting or sign-off) starts in `output`,
    /// and whether a body and a `.` line follow its first line.
    pub replies: Vec<(usize, bool)>,
    /// The over-long lines reported, with their totals.
    pub discarded: Vec<u64>,
}

impl<D> Transcript<D> {
    /// The output as text (lossy), for assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

/// The in-memory host.
pub struct SimHost<'a, D> {
    cfg: &'a SimConfig,
    input: std::slice::Chunks<'a, u8>,
    auth: &'a dyn Fn(&AuthRequest) -> Result<(), AuthError>,
    /// What each login opens (a copy: the loop owns the opened one).
    drop: D,
    out: Vec<u8>,
    sent: Vec<u8>,
    mismatches: Vec<(u64, u64)>,
    discarded: Vec<u64>,
    replies: Vec<(usize, bool)>,
    /// Input ran out with `eof_abort` false.
    stopped: bool,
}

impl<D: Maildrop + Clone> Output for SimHost<'_, D> {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }
    fn drain(&mut self) -> io::Result<()> {
        if self.out.len() >= crate::limits::FLUSH_AT {
            self.flush()
        } else {
            Ok(())
        }
    }
}

impl<D: Maildrop + Clone> Host for SimHost<'_, D> {
    type Drop = D;

    fn read(&mut self, buf: &mut [u8]) -> Input {
        match self.input.next() {
            Some(c) => {
                let n = c.len().min(buf.len());
                buf[..n].copy_from_slice(&c[..n]);
                Input::Data(n)
            }
            None if self.cfg.eof_abort => Input::Eof,
            None => {
                self.stopped = true;
                Input::Hangup
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.stopped {
            self.out.clear();
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if let Some(limit) = self.cfg.write_limit {
            let room =
                usize::try_from(limit.saturating_sub(self.sent.len() as u64)).unwrap_or(usize::MAX);
            if self.out.len() > room {
                self.sent.extend_from_slice(&self.out[..room]);
                self.out.clear();
                self.stopped = true;
                return Err(io::ErrorKind::BrokenPipe.into());
            }
        }
        self.sent.append(&mut self.out);
        Ok(())
    }

    fn written(&self) -> u64 {
        self.sent.len() as u64
    }

    fn check_user(&mut self, user: &[u8]) -> Result<(), AuthError> {
        if self.cfg.apop_users.iter().any(|u| u == user) {
            Err(AuthError::MustUseApop)
        } else {
            Ok(())
        }
    }

    fn login(&mut self, req: &AuthRequest, _: Option<&str>) -> Result<D, AuthFailure> {
        (self.auth)(req).map_err(AuthFailure::Denied)?;
        Ok(self.drop.clone())
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::SizeMismatch {
                announced, sent, ..
            } => self.mismatches.push((announced, sent)),
            Event::Discarded(n) => self.discarded.push(n),
            Event::Reply { multiline } => {
                let at = self.sent.len() + self.out.len();
                // A reply taken back is replaced by another at its place.
                if self.replies.last().is_some_and(|(start, _)| *start == at) {
                    self.replies.pop();
                }
                self.replies.push((at, multiline));
            }
            _ => {}
        }
    }
}

/// Runs a session over `drop`: `auth` decides each login (Ok = accept).
pub fn run<D: Maildrop + Clone>(
    input: &[u8],
    drop: D,
    cfg: &SimConfig,
    auth: &dyn Fn(&AuthRequest) -> Result<(), AuthError>,
) -> Transcript<D> {
    let challenge = cfg.apop.then_some(Challenge {
        pid: 1,
        time: 2,
        nonce: 3,
    });
    let session_cfg = SessionConfig {
        start: cfg.start.clone(),
        greeting: Greeting::new("sim.example", "0.0.0", false, challenge),
        apop_only: cfg.apop_only,
        update_on_abort: cfg.update_on_abort,
        capabilities: capabilities(cfg.apop_only, "0.0.0"),
        max_auth_failures: cfg.max_auth_failures,
    };
    let mut host = SimHost {
        cfg,
        input: input.chunks(cfg.chunk.max(1)),
        auth,
        drop,
        out: Vec::new(),
        sent: Vec::new(),
        mismatches: Vec::new(),
        discarded: Vec::new(),
        replies: Vec::new(),
        stopped: false,
    };
    let outcome = drive(&mut host, session_cfg);
    Transcript {
        end: (!host.stopped).then_some(outcome.end),
        // Without a login the maildrop was never opened: as it was.
        drop: outcome.drop.unwrap_or(host.drop),
        output: host.sent,
        size_mismatches: host.mismatches,
        replies: host.replies,
        discarded: host.discarded,
    }
}
