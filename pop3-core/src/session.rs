//! The POP3 state machine: command lines in, [`Step`]s out.
//!
//! Pure: it never touches a file, a socket, a uid or a clock. Everything the
//! session can answer from its [`Index`] it answers itself (a
//! [`Step::Reply`]); for anything else it returns a step that the dispatch
//! loop ([`crate::drive`]) carries out through its host and reports back:
//!
//! * [`Step::CheckUser`] → [`Session::on_user`];
//! * [`Step::Authenticate`] → the host checks the proof, drops privileges
//!   and opens the maildrop → [`Session::on_auth`];
//! * [`Step::Send`] → the maildrop streams the message; once its
//!   terminator is written, [`Session::on_sent`] (and [`Session::on_lost`]
//!   if it never reached the client);
//! * [`Step::Headers`] → the maildrop finds a header field of each
//!   message listed (EUIDL, `XTND XLST`); nothing to report back;
//! * [`Step::Commit`] → the maildrop applies [`Session::commit_marks`] →
//!   [`Session::on_committed`];
//! * [`Step::Close`] → the loop writes the reply and the sign-off and ends.
//!
//! Work the loop has been asked to do is a state of its own
//! (`CheckingUser`, `Authenticating`, `Committing`), so the session knows
//! which answer it waits for; an answer or a line out of turn ends the
//! session as a server fault rather than being ignored.
//!
//! States follow qpopper 2.53 (qpopper.md §3.3): AUTH1 (expecting USER or
//! APOP), AUTH2 (expecting PASS), TRANS, and the end. A command that its
//! state does not take is answered like an unknown command.

use crate::capa::{Capabilities, Now};
use crate::command::{Command, NumArg, ParseError, Tokens, Verb, Xtnd};
use crate::error::{AuthError, StorageError};
use crate::greeting::Greeting;
use crate::index::{EntryRef, Index, MsgIdx};
use crate::limits::MAX_USER;
use crate::line::Frame;
use crate::marks::Marks;
use crate::policy::{ClearText, Tls};
use crate::reply::{ErrReply, Listing, OkReply, Reply};
use crate::sasl::{self, Mechanism, Nonces, SaslError};
use crate::sasl_exchange::{Exchange, Gathered, Said};
use crate::scram;
use crate::secret::Secret;

/// Where a session begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// With the greeting, in AUTHORIZATION.
    Greeting,
    /// Already authenticated by the program that started popper (the last
    /// link of a qmail checkpassword chain): the maildrop of this user is
    /// opened at once and the first reply answers the PASS the first link
    /// read.
    Authenticated(Vec<u8>),
}

/// What a session is configured with (fixed for its lifetime).
#[derive(Debug)]
pub struct SessionConfig {
    /// Where the session begins.
    pub start: Start,
    /// The banner; its timestamp (if any) is the APOP challenge.
    pub greeting: Greeting,
    /// Built with the `apop-only` feature: USER is always refused.
    pub apop_only: bool,
    /// Run the update when the client vanishes or times out in TRANS
    /// (qpopper's update-on-abort; RFC 1939 says not to).
    pub update_on_abort: bool,
    /// What CAPA can offer (the session picks the lines of the moment).
    pub caps: Capabilities,
    /// Failed PASS/APOP attempts after which the connection is closed
    /// (`max-auth-failures`); 0: no limit.
    pub max_auth_failures: u32,
    /// TLS on this connection at the start.
    pub tls: Tls,
    /// When a password may be sent in clear (`-p`).
    pub clear_text: ClearText,
    /// The client is on this machine (a loopback address, or not a socket).
    pub local: bool,
    /// Randomness for SASL challenges and salts (seeded by the host).
    pub nonces: Nonces,
}

impl SessionConfig {
    /// A configuration with popper's defaults: starts with the greeting,
    /// no TLS, qpopper's clear-text policy, update-on-abort, no failure
    /// limit. Callers change the fields they need.
    pub fn new(greeting: Greeting, caps: Capabilities, nonces: Nonces) -> SessionConfig {
        SessionConfig {
            start: Start::Greeting,
            greeting,
            apop_only: false,
            update_on_abort: true,
            caps,
            max_auth_failures: 0,
            tls: Tls::Off,
            clear_text: ClearText::Default,
            local: true,
            nonces,
        }
    }
}

/// How authentication was attempted.
#[derive(Debug)]
pub enum Proof {
    /// USER/PASS (or SASL PLAIN/LOGIN) with this password.
    Pass(Secret),
    /// APOP with this digest (as the client sent it).
    Apop(Vec<u8>),
    /// SASL CRAM-MD5: the client's hex digest of this challenge.
    Cram {
        /// The challenge the server sent.
        challenge: String,
        /// The hex digest as the client sent it.
        digest: Vec<u8>,
    },
    /// SASL SCRAM-SHA-256: the client's proof, to be verified with the
    /// user's secret (the host then returns the server's signature).
    Scram(Box<scram::Proof>),
    /// None here: the program that started popper authenticated the user
    /// ([`Start::Authenticated`]).
    Chain,
}

/// What the host must check before the session can continue.
#[derive(Debug)]
pub struct AuthRequest {
    /// The user name as the client gave it.
    pub user: Vec<u8>,
    /// The password or digest.
    pub proof: Proof,
}

/// How a session ended; each has its own log line and exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client sent QUIT.
    Quit,
    /// The client closed the connection without QUIT.
    ClientGone,
    /// No command within the timeout.
    TimedOut,
    /// SIGHUP/SIGTERM, or the connection broke while writing.
    HungUp,
    /// The maildrop could not be opened or updated (or the dispatch loop
    /// broke the step contract).
    ServerFault,
    /// Too many failed login attempts on this connection.
    AuthLimit,
    /// The login was handed to another program (the first link of a
    /// checkpassword chain), which served the rest of the connection.
    HandedOver,
    /// The TLS handshake failed: nothing more can be said in clear.
    TlsFailed,
}

/// Why the loop stops reading commands without a QUIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// End of input.
    Eof,
    /// The idle timer ran out.
    Timeout,
    /// A signal or a broken pipe.
    Hangup,
}

/// What the dispatch loop must do next.
#[derive(Debug)]
pub enum Step<'a> {
    /// Nothing: a blank line gets no reply (COMPAT qpopper 2.53).
    Nothing,
    /// Send this reply.
    Reply(Reply<'a>),
    /// Check whether this user may go on to PASS (a user with an APOP
    /// record must use APOP), then call [`Session::on_user`]. Only when
    /// APOP is possible on this connection.
    CheckUser {
        /// The name given to USER.
        user: &'a [u8],
    },
    /// Check credentials and open the maildrop, then call
    /// [`Session::on_auth`].
    Authenticate(AuthRequest),
    /// Send `reply` (STLS's `+OK`), discard whatever else the client has
    /// sent in clear, do the TLS handshake, then call [`Session::on_tls`].
    StartTls {
        /// `+OK Begin TLS negotiation now.`
        reply: Reply<'a>,
    },
    /// Send `head`, then message `msg` through the maildrop (TOP's
    /// `body_lines`), then the terminating `.` line; then call
    /// [`Session::on_sent`].
    Send {
        /// The `+OK n octets` line.
        head: Reply<'a>,
        /// Which message.
        msg: MsgIdx,
        /// TOP's body line count; `None` for RETR.
        body_lines: Option<u64>,
        /// The exact size announced (checked against what was sent).
        size: u64,
    },
    /// Send `listing`'s head line, then for each message of `msgs` that
    /// is not deleted its item, with the header field
    /// [`Listing::prefix`] names fetched from the maildrop, then the end
    /// line (EUIDL, `XTND XLST`).
    Headers {
        /// What is shown of each message.
        listing: Listing,
        /// The messages' entries (numbers, UIDs, sizes).
        index: &'a Index,
        /// Which are deleted (and so left out).
        marks: &'a Marks,
        /// The messages to list, by index.
        msgs: std::ops::Range<usize>,
    },
    /// Send `before` (if any), update the maildrop with
    /// [`Session::commit_marks`], then call [`Session::on_committed`].
    Commit {
        /// A reply to send before updating (the abort reason).
        before: Option<Reply<'a>>,
    },
    /// Send `reply` (if any) and the sign-off line, then end.
    Close {
        /// A last `-ERR` line before the sign-off, if any.
        reply: Option<Reply<'a>>,
        /// How the session ended.
        end: SessionEnd,
    },
}

/// Why [`Session::on_auth`] is told that login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Credentials or policy refused: back to AUTH1.
    Denied(AuthError),
    /// Credentials were good but the maildrop could not be opened: the
    /// session ends.
    Storage(StorageError),
    /// The credentials went to a program that took the connection over
    /// and served it to its end: the session ends without another word.
    HandedOver,
}

/// A good login: the index of the opened maildrop, and for SCRAM the
/// server's final message (its signature), which the client must see
/// before the `+OK`.
#[derive(Debug)]
pub struct Authed {
    /// The maildrop's messages.
    pub index: Index,
    /// SCRAM-SHA-256's server-final message (`v=...`), if any.
    pub server_final: Option<String>,
}

impl From<Index> for Authed {
    fn from(index: Index) -> Authed {
        Authed {
            index,
            server_final: None,
        }
    }
}

#[derive(Debug)]
struct Trans {
    index: Index,
    marks: Marks,
}

/// What follows when the loop lets a user go on ([`Step::CheckUser`]).
#[derive(Debug)]
enum Then {
    /// USER: ask for the password.
    Pass,
    /// SASL PLAIN/LOGIN: the password is here; log in.
    Login(AuthRequest),
}

#[derive(Debug)]
enum State {
    /// AUTH1: USER, APOP, AUTH, STLS, QUIT, CAPA.
    Auth1,
    /// USER (or a SASL password) given; the loop checks whether the user
    /// may use a password (the APOP-record rule).
    CheckingUser(Then),
    /// AUTH2: PASS, QUIT, CAPA.
    Auth2,
    /// AUTH: a SASL exchange waits for the client's next line.
    Sasl(Box<Exchange>),
    /// STLS answered: the loop does the handshake.
    StartingTls,
    /// PASS, APOP or AUTH given; the loop authenticates and opens the
    /// maildrop.
    Authenticating {
        /// By APOP (2.53 words the login reply differently).
        apop: bool,
    },
    /// SCRAM's server-final sent; the client's empty line completes the
    /// login.
    Confirming(Box<Trans>),
    /// TRANSACTION.
    Trans(Box<Trans>),
    /// UPDATE: the loop applies the marks; the reason is kept for the end.
    Committing(Box<Trans>, SessionEnd),
    /// Signed off.
    Ended,
}

/// The state of one POP3 session.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    state: State,
    /// The user name of the login under way or done (USER's or APOP's).
    name: Vec<u8>,
    /// Failed PASS/APOP attempts so far.
    auth_failures: u32,
    /// TLS now (it becomes active after STLS).
    tls: Tls,
}

impl Session {
    /// A new session: in AUTHORIZATION, or waiting for the maildrop of a
    /// user authenticated before popper started.
    pub fn new(cfg: SessionConfig) -> Session {
        let (state, name) = match &cfg.start {
            Start::Greeting => (State::Auth1, Vec::new()),
            Start::Authenticated(user) => (State::Authenticating { apop: false }, user.clone()),
        };
        Session {
            tls: cfg.tls,
            cfg,
            state,
            name,
            auth_failures: 0,
        }
    }

    /// For a session that starts authenticated: the login to carry out
    /// before anything else (the host opens the maildrop).
    pub fn pending_login(&self) -> Option<AuthRequest> {
        match (&self.cfg.start, &self.state) {
            (Start::Authenticated(user), State::Authenticating { .. }) => Some(AuthRequest {
                user: user.clone(),
                proof: Proof::Chain,
            }),
            _ => None,
        }
    }

    /// The banner to send first.
    pub fn greeting(&self) -> Reply<'_> {
        Reply::Greeting(&self.cfg.greeting)
    }

    /// The sign-off line, sent whenever the session ends.
    pub fn sign_off(&self) -> Reply<'_> {
        Reply::SignOff(self.cfg.greeting.host())
    }

    /// The APOP challenge of the greeting, if there is one.
    pub fn timestamp(&self) -> Option<&str> {
        self.cfg.greeting.timestamp()
    }

    /// The user name, once authenticated.
    pub fn user(&self) -> Option<&[u8]> {
        match self.state {
            State::Trans(_) | State::Committing(..) => Some(&self.name),
            _ => None,
        }
    }

    /// True once the session has ended.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// True when the next line is a SASL response: it may hold a
    /// password, so the host must not log it.
    pub fn is_secret(&self) -> bool {
        matches!(self.state, State::Sasl(_) | State::Confirming(_))
    }

    /// True once the connection is encrypted.
    pub fn tls_active(&self) -> bool {
        self.tls == Tls::Active
    }

    /// Whether a password may be sent in clear now, and if not, why.
    fn clear_text(&self) -> Result<(), AuthError> {
        self.cfg
            .clear_text
            .allows(self.tls_active(), self.cfg.local)
    }

    /// The CAPA lines of this moment.
    fn capabilities(&self) -> Vec<String> {
        let before_login = matches!(self.state, State::Auth1);
        self.cfg.caps.lines(Now {
            stls: before_login && self.tls == Tls::Offered,
            clear_text: self.clear_text().is_ok(),
        })
    }

    /// Handles one framed line of input.
    pub fn on_frame(&mut self, frame: Frame<'_>) -> Step<'_> {
        match frame {
            Frame::TooLong if self.is_secret() => self.sasl_failed(SaslError::TooLong),
            Frame::TooLong if self.reads_commands() => err(ErrReply::LineTooLong),
            Frame::TooLong => self.out_of_turn(),
            Frame::Line(l) => self.on_line(l),
        }
    }

    /// Handles one command line (without its line end).
    pub fn on_line(&mut self, line: &[u8]) -> Step<'_> {
        if self.is_secret() {
            return self.sasl_line(line);
        }
        if !self.reads_commands() {
            return self.out_of_turn();
        }
        let toks = match Tokens::split(line) {
            Ok(None) => return Step::Nothing,
            Ok(Some(t)) => t,
            Err(e) => return err(parse_error(e)),
        };
        let Some(verb) = toks.verb().filter(|v| self.allows(*v)) else {
            return err(ErrReply::UnknownCommand(toks.word().to_vec()));
        };
        match toks.command(verb) {
            Ok(cmd) => self.dispatch(cmd),
            Err(e) => err(parse_error(e)),
        }
    }

    /// True in the states that wait for a command line.
    fn reads_commands(&self) -> bool {
        matches!(self.state, State::Auth1 | State::Auth2 | State::Trans(_))
    }

    /// Which commands each state takes (qpopper.md §3.3).
    fn allows(&self, v: Verb) -> bool {
        match self.state {
            State::Auth1 => {
                matches!(v, Verb::User | Verb::Quit | Verb::Capa | Verb::Auth)
                    || (v == Verb::Apop && self.cfg.greeting.timestamp().is_some())
                    || (v == Verb::Stls && self.tls != Tls::Off)
            }
            State::Auth2 => {
                matches!(v, Verb::Pass | Verb::Quit | Verb::Capa)
                    || (v == Verb::Stls && self.tls != Tls::Off)
            }
            State::Trans(_) => !matches!(
                v,
                Verb::User | Verb::Pass | Verb::Apop | Verb::Stls | Verb::Auth
            ),
            _ => false,
        }
    }

    fn dispatch(&mut self, cmd: Command<'_>) -> Step<'_> {
        let auth1 = matches!(self.state, State::Auth1);
        match cmd {
            Command::Capa => return Step::Reply(Reply::Capa(self.capabilities())),
            Command::Stls => return self.stls(),
            Command::Auth { mechanism, initial } if auth1 => return self.auth(mechanism, initial),
            Command::Quit if matches!(self.state, State::Trans(_)) => {
                return self.commit(SessionEnd::Quit, None);
            }
            Command::Quit => return self.end(None, SessionEnd::Quit),
            Command::User(name) if auth1 => return self.user_cmd(name),
            Command::Apop { name, digest } if auth1 => {
                if !valid_user_name(name) {
                    return err(ErrReply::BadUserName);
                }
                self.name = name.to_vec();
                self.state = State::Authenticating { apop: true };
                return Step::Authenticate(AuthRequest {
                    user: name.to_vec(),
                    proof: Proof::Apop(digest.to_vec()),
                });
            }
            Command::Pass(secret) if matches!(self.state, State::Auth2) => {
                self.state = State::Authenticating { apop: false };
                return Step::Authenticate(AuthRequest {
                    user: self.name.clone(),
                    proof: Proof::Pass(secret),
                });
            }
            _ => {}
        }
        match &mut self.state {
            State::Trans(t) => t.command(cmd),
            // `allows` lets no other pair through; were one to come, this
            // is the answer qpopper gives a command out of its state.
            _ => err(ErrReply::UnknownCommand(
                cmd.verb().word().as_bytes().to_vec(),
            )),
        }
    }

    fn user_cmd(&mut self, name: &[u8]) -> Step<'_> {
        if self.cfg.apop_only {
            return err(ErrReply::Auth(AuthError::ApopOnly, name.to_vec()));
        }
        if !valid_user_name(name) {
            return err(ErrReply::BadUserName);
        }
        // qpopper 4.1's clear-text policy, decided from the connection
        // alone: every name gets the same answer.
        if let Err(e) = self.clear_text() {
            return err(ErrReply::Auth(e, name.to_vec()));
        }
        self.name = name.to_vec();
        if self.apop_record_rule() {
            self.state = State::CheckingUser(Then::Pass);
            return Step::CheckUser { user: &self.name };
        }
        self.password_required()
    }

    /// COMPAT qpopper 2.53: with APOP possible, a password in clear is
    /// refused for a user who has an APOP record (and a broken database
    /// is reported) — under qpopper's `default` policy, without TLS.
    fn apop_record_rule(&self) -> bool {
        self.cfg.greeting.timestamp().is_some()
            && self.cfg.clear_text.apop_record_rule(self.tls_active())
    }

    /// STLS (RFC 2595): only before USER, only once, only when it can work.
    fn stls(&mut self) -> Step<'_> {
        match (&self.state, self.tls) {
            (State::Auth2, _) => err(ErrReply::StlsAfterUser),
            (_, Tls::Active) => err(ErrReply::TlsActive),
            (_, Tls::Offered) => {
                self.state = State::StartingTls;
                Step::StartTls {
                    reply: Reply::Ok(OkReply::BeginTls),
                }
            }
            // Configured, but the certificate or key could not be used
            // (the log said why at start).
            _ => err(ErrReply::TlsUnavailable),
        }
    }

    /// The loop's answer to [`Step::StartTls`]: whether the handshake
    /// succeeded. After it the client starts again with a clean slate
    /// (RFC 2595 §4: nothing said in clear is kept).
    pub fn on_tls(&mut self, ok: bool) -> Step<'_> {
        if !matches!(self.state, State::StartingTls) {
            return self.out_of_turn();
        }
        if !ok {
            return self.end(None, SessionEnd::TlsFailed);
        }
        self.tls = Tls::Active;
        self.state = State::Auth1;
        self.name.clear();
        Step::Nothing
    }

    /// `AUTH [mechanism [initial]]` (RFC 5034).
    fn auth(&mut self, mechanism: Option<&[u8]>, initial: Option<&[u8]>) -> Step<'_> {
        let usable = self.cfg.caps.mechanisms(self.clear_text().is_ok());
        let Some(word) = mechanism else {
            return Step::Reply(Reply::Mechanisms(usable));
        };
        let Some(mech) = Mechanism::parse(word) else {
            return err(ErrReply::Sasl(SaslError::UnknownMechanism));
        };
        if !usable.contains(&mech) {
            // A clear-text mechanism the policy refuses gets the policy's
            // text; one this server cannot do is unknown.
            return match (mech.is_clear_text(), self.clear_text()) {
                (true, Err(e)) => err(ErrReply::Auth(e, Vec::new())),
                (true, Ok(())) if self.cfg.apop_only => {
                    err(ErrReply::Auth(AuthError::ApopOnly, Vec::new()))
                }
                _ => err(ErrReply::Sasl(SaslError::UnknownMechanism)),
            };
        }
        let host = self.cfg.greeting.host().to_string();
        let said = Exchange::start(mech, initial, &mut self.cfg.nonces, &host);
        self.sasl_said(said)
    }

    /// A line of a SASL exchange (or SCRAM's closing empty line).
    fn sasl_line(&mut self, line: &[u8]) -> Step<'_> {
        match std::mem::replace(&mut self.state, State::Auth1) {
            State::Sasl(ex) => {
                let said = ex.on_line(line, &mut self.cfg.nonces);
                self.sasl_said(said)
            }
            State::Confirming(t) => match sasl::decode(line) {
                Ok(d) if d.is_empty() => {
                    let (count, octets) = (t.index.len(), t.index.total_size());
                    self.state = State::Trans(t);
                    Step::Reply(Reply::Ok(OkReply::LoggedIn {
                        user: &self.name,
                        count,
                        octets,
                        apop: false,
                    }))
                }
                // The maildrop is open and privileges are dropped: a
                // client that will not complete the exchange is done.
                Ok(_) => self.end(
                    Some(ErrReply::Sasl(SaslError::Malformed)),
                    SessionEnd::ClientGone,
                ),
                Err(e) => self.end(Some(ErrReply::Sasl(e)), SessionEnd::ClientGone),
            },
            other => {
                self.state = other;
                self.out_of_turn()
            }
        }
    }

    /// An exchange abandoned (a line too long): back to AUTH1.
    fn sasl_failed(&mut self, e: SaslError) -> Step<'_> {
        if let State::Confirming(_) = self.state {
            return self.end(Some(ErrReply::Sasl(e)), SessionEnd::ClientGone);
        }
        self.state = State::Auth1;
        err(ErrReply::Sasl(e))
    }

    fn sasl_said(&mut self, said: Said) -> Step<'_> {
        match said {
            Said::Continue(ex, text) => {
                self.state = State::Sasl(Box::new(ex));
                Step::Reply(Reply::Continue(text))
            }
            Said::Failed(e) => {
                self.state = State::Auth1;
                err(ErrReply::Sasl(e))
            }
            Said::Done(g) => self.sasl_login(g),
        }
    }

    /// A complete SASL exchange becomes a login like PASS or APOP.
    fn sasl_login(&mut self, g: Gathered) -> Step<'_> {
        let (user, proof) = match g {
            Gathered::Password(user, secret) => (user, Proof::Pass(secret)),
            Gathered::Cram {
                user,
                challenge,
                digest,
            } => (user, Proof::Cram { challenge, digest }),
            Gathered::Scram(user, proof) => (user, Proof::Scram(proof)),
        };
        if !valid_user_name(&user) {
            self.state = State::Auth1;
            return err(ErrReply::BadUserName);
        }
        self.name = user.clone();
        let req = AuthRequest { user, proof };
        if matches!(req.proof, Proof::Pass(_)) && self.apop_record_rule() {
            self.state = State::CheckingUser(Then::Login(req));
            return Step::CheckUser { user: &self.name };
        }
        self.state = State::Authenticating { apop: false };
        Step::Authenticate(req)
    }

    fn password_required(&mut self) -> Step<'_> {
        self.state = State::Auth2;
        Step::Reply(Reply::Ok(OkReply::PasswordRequired(&self.name)))
    }

    /// The loop's answer to [`Step::CheckUser`]: `Ok` lets the user go on
    /// to PASS.
    pub fn on_user(&mut self, result: Result<(), AuthError>) -> Step<'_> {
        let State::CheckingUser(then) = std::mem::replace(&mut self.state, State::Auth1) else {
            return self.out_of_turn();
        };
        match (result, then) {
            (Ok(()), Then::Pass) => self.password_required(),
            (Ok(()), Then::Login(req)) => {
                self.state = State::Authenticating { apop: false };
                Step::Authenticate(req)
            }
            (Err(e), _) => err(ErrReply::Auth(e, self.name.clone())),
        }
    }

    /// The loop's answer to [`Step::Authenticate`]: the index of the
    /// opened maildrop, or why not.
    pub fn on_auth(&mut self, outcome: Result<Authed, AuthFailure>) -> Step<'_> {
        let State::Authenticating { apop } = self.state else {
            return self.out_of_turn();
        };
        match outcome {
            Ok(Authed {
                index,
                server_final: Some(v),
            }) => {
                // RFC 5034 §4: POP3 has no "additional data with success";
                // SCRAM's server signature goes as a last challenge.
                let marks = Marks::new(index.len());
                self.state = State::Confirming(Box::new(Trans { index, marks }));
                Step::Reply(Reply::Continue(sasl::encode(v.as_bytes())))
            }
            Ok(Authed { index, .. }) => {
                let (count, octets) = (index.len(), index.total_size());
                let marks = Marks::new(count);
                self.state = State::Trans(Box::new(Trans { index, marks }));
                Step::Reply(Reply::Ok(OkReply::LoggedIn {
                    user: &self.name,
                    count,
                    octets,
                    apop,
                }))
            }
            // Authenticated before popper started: there is no
            // AUTHORIZATION state to go back to (the first link of the
            // chain owns it), so a refused proof ends the session.
            Err(AuthFailure::Denied(e)) if matches!(self.cfg.start, Start::Authenticated(_)) => {
                let e = ErrReply::Auth(e, self.name.clone());
                self.end(Some(e), SessionEnd::ServerFault)
            }
            Err(AuthFailure::Denied(e)) => {
                self.auth_failures = self.auth_failures.saturating_add(1);
                let limit = self.cfg.max_auth_failures;
                if limit > 0 && self.auth_failures >= limit {
                    // DEVIATION: qpopper let one connection try for ever.
                    return self.end(Some(ErrReply::TooManyFailures), SessionEnd::AuthLimit);
                }
                self.state = State::Auth1;
                err(ErrReply::Auth(e, self.name.clone()))
            }
            // Privileges are already dropped: no other user can log in on
            // this connection, so it ends here (qpopper went back to AUTH1,
            // where every later login would have failed).
            Err(AuthFailure::Storage(e)) => {
                self.end(Some(ErrReply::Storage(e)), SessionEnd::ServerFault)
            }
            Err(AuthFailure::HandedOver) => self.end(None, SessionEnd::HandedOver),
        }
    }

    /// The loop has written message `msg`'s terminator (it was sent for
    /// RETR when `body_lines` is `None`). DEVIATION: qpopper marked a
    /// message read when RETR began, so a client that hung up in the
    /// middle found it marked read (LAST skipped it); here only a message
    /// sent to its end is. Returns true when that set a new mark, which
    /// [`on_lost`](Self::on_lost) takes back if the bytes never left.
    pub fn on_sent(&mut self, msg: MsgIdx, body_lines: Option<u64>) -> bool {
        match &mut self.state {
            State::Trans(t) if body_lines.is_none() => t.marks.retrieve(msg),
            _ => false,
        }
    }

    /// Writing to the client failed before message `msg`'s terminator
    /// left: it was not retrieved after all.
    pub fn on_lost(&mut self, msg: MsgIdx) {
        if let State::Trans(t) | State::Committing(t, _) | State::Confirming(t) = &mut self.state {
            t.marks.unretrieve(msg);
        }
    }

    /// The loop stops reading without QUIT (EOF, timeout, hang-up).
    pub fn on_abort(&mut self, why: Abort) -> Step<'_> {
        let (reply, end) = match why {
            Abort::Eof => (ErrReply::Eof, SessionEnd::ClientGone),
            Abort::Timeout => (ErrReply::Timeout, SessionEnd::TimedOut),
            Abort::Hangup => (ErrReply::Hangup, SessionEnd::HungUp),
        };
        match self.state {
            State::Trans(_) if self.cfg.update_on_abort => self.commit(end, Some(reply)),
            State::Auth1
            | State::Auth2
            | State::Trans(_)
            | State::Sasl(_)
            | State::StartingTls
            | State::Confirming(_) => self.end(Some(reply), end),
            _ => self.out_of_turn(),
        }
    }

    fn commit(&mut self, end: SessionEnd, before: Option<ErrReply>) -> Step<'_> {
        let State::Trans(t) = std::mem::replace(&mut self.state, State::Ended) else {
            return self.out_of_turn();
        };
        self.state = State::Committing(t, end);
        Step::Commit {
            before: before.map(Reply::Err),
        }
    }

    /// What [`Step::Commit`] applies: the index and this session's marks.
    pub fn commit_marks(&self) -> Option<(&Index, &Marks)> {
        match &self.state {
            State::Committing(t, _) => Some((&t.index, &t.marks)),
            _ => None,
        }
    }

    /// The loop's answer to [`Step::Commit`].
    pub fn on_committed(&mut self, result: Result<(), StorageError>) -> Step<'_> {
        let State::Committing(_, end) = self.state else {
            return self.out_of_turn();
        };
        match result {
            Ok(()) => self.end(None, end),
            Err(e) if end == SessionEnd::Quit => {
                self.end(Some(ErrReply::Storage(e)), SessionEnd::ServerFault)
            }
            Err(_) => self.end(
                Some(ErrReply::AbortUpdateFailed {
                    hangup: end == SessionEnd::HungUp,
                }),
                end,
            ),
        }
    }

    fn end(&mut self, reply: Option<ErrReply>, end: SessionEnd) -> Step<'static> {
        self.state = State::Ended;
        Step::Close {
            reply: reply.map(Reply::Err),
            end,
        }
    }

    /// A line, an answer or an abort the session is not waiting for: the
    /// loop broke the step contract. The session ends rather than wait for
    /// an answer that will not come (no mailbox is changed).
    fn out_of_turn(&mut self) -> Step<'static> {
        debug_assert!(false, "event out of turn in state {:?}", self.state);
        self.end(None, SessionEnd::ServerFault)
    }
}

fn err(e: ErrReply) -> Step<'static> {
    Step::Reply(Reply::Err(e))
}

impl Trans {
    fn command(&mut self, cmd: Command<'_>) -> Step<'_> {
        match cmd {
            Command::Stat => {
                let (count, octets) = self.marks.visible_totals(&self.index);
                Step::Reply(Reply::Ok(OkReply::Stat { count, octets }))
            }
            Command::Noop => Step::Reply(Reply::Ok(OkReply::Noop)),
            Command::List(None) => Step::Reply(Reply::List(&self.index, &self.marks)),
            Command::Uidl(None) => Step::Reply(Reply::Uidl(&self.index, &self.marks)),
            Command::List(Some(arg)) => match self.live(arg) {
                Ok((i, e)) => Step::Reply(Reply::Ok(OkReply::Scan(i.num(), e.size))),
                Err(e) => err(e),
            },
            Command::Uidl(Some(arg)) => match self.uid_arg(arg) {
                Ok((i, e)) => Step::Reply(Reply::Ok(OkReply::Uid(i.num(), e.uid.as_bytes()))),
                Err(e) => err(e),
            },
            Command::Euidl(None) => self.headers(Listing::Euidl, 0..self.index.len()),
            // COMPAT qpopper 2.53: EUIDL n has UIDL n's errors.
            Command::Euidl(Some(arg)) => match self.uid_arg(arg) {
                Ok((i, _)) => self.headers(Listing::EuidlOne, i.0..i.0 + 1),
                Err(e) => err(e),
            },
            Command::Xtnd(Xtnd::Xlst { name, msg: None }) => {
                self.headers(Listing::Xlst(name.to_vec()), 0..self.index.len())
            }
            // COMPAT qpopper 2.53 (`xtnd_xlst.c`): a deleted message is
            // left out of the list, not refused.
            Command::Xtnd(Xtnd::Xlst {
                name,
                msg: Some(arg),
            }) => match arg.value.and_then(|n| self.index.find(n)) {
                Some((i, _)) => self.headers(Listing::Xlst(name.to_vec()), i.0..i.0 + 1),
                None => err(ErrReply::NoSuchMessage(arg.raw.to_vec())),
            },
            Command::Xtnd(Xtnd::Xmit) => err(ErrReply::XmitRefused),
            Command::Retr(arg) => match self.live(arg) {
                Ok((i, e)) => send(i, e, None),
                Err(e) => err(e),
            },
            Command::Top(arg, lines) => match (self.live(arg), lines.value) {
                (Err(e), _) => err(e),
                (Ok(_), None) => err(ErrReply::BadLineCount(lines.raw.to_vec())),
                (Ok((i, e)), Some(n)) => send(i, e, Some(n)),
            },
            Command::Dele(arg) => match self.live(arg) {
                Ok((i, e)) => {
                    let size = e.size;
                    self.marks.delete(i, size);
                    Step::Reply(Reply::Ok(OkReply::Deleted(i.num())))
                }
                Err(ErrReply::MessageDeleted(n)) => err(ErrReply::AlreadyDeleted(n)),
                Err(e) => err(e),
            },
            Command::Rset => {
                // Deletions are undone, and read marks go back to what they
                // were at login, so LAST answers as it did then.
                self.marks = Marks::new(self.index.len());
                Step::Reply(Reply::Ok(OkReply::Rset {
                    count: self.index.len(),
                    octets: self.index.total_size(),
                }))
            }
            Command::Last => {
                let last = (0..self.index.len())
                    .rev()
                    .map(MsgIdx)
                    .find(|&i| {
                        !self.marks.is_deleted(i)
                            && (self.marks.is_retrieved(i)
                                || self.index.get(i).is_some_and(|e| e.seen))
                    })
                    .map_or(0, |i| i.num().0);
                Step::Reply(Reply::Ok(OkReply::Last(last)))
            }
            // The session handles these before the transaction sees a
            // command; were one to come, it is not a transaction command.
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop { .. }
            | Command::Quit
            | Command::Capa
            | Command::Stls
            | Command::Auth { .. } => err(ErrReply::UnknownCommand(
                cmd.verb().word().as_bytes().to_vec(),
            )),
        }
    }

    /// Resolves a message argument to a message that exists and is not deleted.
    fn live(&self, arg: NumArg<'_>) -> Result<(MsgIdx, EntryRef<'_>), ErrReply> {
        let (i, e) = arg
            .value
            .and_then(|n| self.index.find(n))
            .ok_or_else(|| ErrReply::NoSuchMessage(arg.raw.to_vec()))?;
        if self.marks.is_deleted(i) {
            Err(ErrReply::MessageDeleted(i.num()))
        } else {
            Ok((i, e))
        }
    }

    /// Resolves `UIDL n`'s (and `EUIDL n`'s) argument, with their texts.
    fn uid_arg(&self, arg: NumArg<'_>) -> Result<(MsgIdx, EntryRef<'_>), ErrReply> {
        let count = self.index.len();
        let (i, e) = match arg.value {
            None | Some(0) => return Err(ErrReply::UidlNotNumber(count)),
            Some(n) => self.index.find(n).ok_or(ErrReply::UidlOutOfRange(count))?,
        };
        if self.marks.is_deleted(i) {
            return Err(ErrReply::UidlDeleted(i.num()));
        }
        Ok((i, e))
    }

    fn headers(&self, listing: Listing, msgs: std::ops::Range<usize>) -> Step<'_> {
        Step::Headers {
            listing,
            index: &self.index,
            marks: &self.marks,
            msgs,
        }
    }
}

fn send(msg: MsgIdx, e: EntryRef<'_>, body_lines: Option<u64>) -> Step<'static> {
    Step::Send {
        head: Reply::Ok(OkReply::Octets(e.size)),
        msg,
        body_lines,
        size: e.size,
    }
}

fn parse_error(e: ParseError) -> ErrReply {
    match e {
        ParseError::TooManyTokens => ErrReply::TooManyTokens,
        ParseError::TooFew(v) => ErrReply::TooFew(v),
        ParseError::TooMany(v) => ErrReply::TooMany(v),
        ParseError::Unknown(w) => ErrReply::UnknownCommand(w),
        ParseError::UnknownSub(w) => ErrReply::UnknownSub(w),
        ParseError::SubTooFew(s) => ErrReply::SubTooFew(s),
        ParseError::SubTooMany(s) => ErrReply::SubTooMany(s),
    }
}

/// A name that some account could have: 1–64 bytes of printable ASCII
/// without `/`. Anything else is refused at USER/APOP without looking it up.
pub fn valid_user_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USER
        && name.iter().all(|b| (0x21..0x7f).contains(b) && *b != b'/')
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
