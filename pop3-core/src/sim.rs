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

use crate::capa::Capabilities;
use crate::drive::{Event, Host, Input, Opened, drive};
use crate::error::AuthError;
use crate::greeting::{Challenge, Greeting};
use crate::maildrop::{Maildrop, Output};
use crate::policy::{ClearText, Tls};
use crate::sasl::Nonces;
use crate::session::{AuthFailure, AuthRequest, Proof, SessionConfig, SessionEnd, Start};
use crate::{cram, scram};

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
    /// TLS at the start.
    pub tls: Tls,
    /// Whether a STLS handshake succeeds.
    pub handshake_ok: bool,
    /// The clear-text policy.
    pub clear_text: ClearText,
    /// The client is on this machine.
    pub local: bool,
    /// Users' secrets for CRAM-MD5 and SCRAM-SHA-256 (offered when any).
    pub secrets: Vec<(Vec<u8>, Vec<u8>)>,
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
            tls: Tls::Off,
            handshake_ok: true,
            clear_text: ClearText::Default,
            local: true,
            secrets: Vec::new(),
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
    /// Where in `output` TLS started (after STLS's `+OK`), if it did.
    pub tls_at: Option<usize>,
    /// Bytes dropped unread after STLS.
    pub dropped: Vec<usize>,
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
    tls_at: Option<usize>,
    dropped: Vec<usize>,
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

    fn login(&mut self, req: &AuthRequest, _: Option<&str>) -> Result<Opened<D>, AuthFailure> {
        let secret = self
            .cfg
            .secrets
            .iter()
            .find(|(u, _)| *u == req.user)
            .map(|(_, s)| s.as_slice());
        let server_final = match (&req.proof, secret) {
            (Proof::Cram { challenge, digest }, Some(s)) if cram::verify(s, challenge, digest) => {
                None
            }
            (Proof::Scram(p), Some(s)) => match scram::verify(p, s) {
                Some(v) => Some(v),
                None => return Err(AuthFailure::Denied(AuthError::DigestMismatch)),
            },
            (Proof::Cram { .. } | Proof::Scram(_), _) => {
                return Err(AuthFailure::Denied(AuthError::DigestMismatch));
            }
            _ => {
                (self.auth)(req).map_err(AuthFailure::Denied)?;
                None
            }
        };
        Ok(Opened {
            drop: self.drop.clone(),
            server_final,
        })
    }

    fn start_tls(&mut self) -> bool {
        self.tls_at = Some(self.sent.len());
        self.cfg.handshake_ok
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::SizeMismatch {
                announced, sent, ..
            } => self.mismatches.push((announced, sent)),
            Event::Discarded(n) => self.discarded.push(n),
            Event::InputDropped(n) => self.dropped.push(n),
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
    let caps = Capabilities::new(cfg.apop_only, "0.0.0").with_digests(!cfg.secrets.is_empty());
    let session_cfg = SessionConfig {
        start: cfg.start.clone(),
        apop_only: cfg.apop_only,
        update_on_abort: cfg.update_on_abort,
        max_auth_failures: cfg.max_auth_failures,
        tls: cfg.tls,
        clear_text: cfg.clear_text,
        local: cfg.local,
        ..SessionConfig::new(
            Greeting::new("sim.example", "0.0.0", false, challenge),
            caps,
            Nonces::new([7; 32]),
        )
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
        tls_at: None,
        dropped: Vec::new(),
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
        tls_at: host.tls_at,
        dropped: host.dropped,
    }
}
