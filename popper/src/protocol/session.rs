//! The POP3 state machine: command lines in, [`Step`]s out.
//!
//! Pure: it never touches a file, a socket, a uid or a clock. Everything the
//! session can answer from its [`Index`] it answers itself (as a
//! [`Step::Reply`]); for anything else it returns a step that the driver
//! (`serve.rs`) carries out and reports back:
//!
//! * [`Step::Authenticate`] → the driver checks the proof, drops privileges,
//!   opens the maildrop and calls [`Session::on_auth`];
//! * [`Step::Send`] → the driver streams the message through
//!   [`super::wire::Encoder`];
//! * [`Step::Commit`] → the driver updates the maildrop and calls
//!   [`Session::on_committed`];
//! * [`Step::Close`] → the driver writes the reply and the sign-off line
//!   and ends the session with the given [`SessionEnd`].
//!
//! States follow qpopper 2.53 (qpopper.md §3.3): AUTH1 (expecting USER or
//! APOP), AUTH2 (expecting PASS), TRANS, and the end. A command that its
//! state does not take is answered like an unknown command.

use super::command::{Command, NumArg, ParseError, Tokens, Verb};
use super::error::{AuthError, MaildropError};
use super::greeting::Greeting;
use super::index::{Index, MsgIdx};
use super::line::Frame;
use super::reply::{ErrReply, OkReply, Reply};
use super::secret::Secret;

/// qpopper truncated user names to 64 bytes; no longer name can be a login.
pub const MAX_USER: usize = 64;

/// What a session is configured with (fixed for its lifetime).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The banner; its timestamp (if any) is the APOP challenge.
    pub greeting: Greeting,
    /// Built with the `apop-only` feature: USER is always refused.
    pub apop_only: bool,
    /// Run the update when the client vanishes or times out in TRANS
    /// (qpopper's update-on-abort; RFC 1939 says not to).
    pub update_on_abort: bool,
    /// Lines of the CAPA reply.
    pub capabilities: Vec<String>,
    /// Failed PASS/APOP attempts after which the connection is closed
    /// (`max-auth-failures`); 0: no limit.
    pub max_auth_failures: u32,
}

/// How authentication was attempted.
#[derive(Debug, PartialEq, Eq)]
pub enum Proof {
    /// USER/PASS with this password.
    Pass(Secret),
    /// APOP with this digest (as the client sent it).
    Apop(Vec<u8>),
}

/// What the driver must check before the session can continue.
#[derive(Debug, PartialEq, Eq)]
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
    /// The maildrop could not be opened or updated.
    ServerFault,
    /// Too many failed login attempts on this connection.
    AuthLimit,
}

/// Why the driver stops reading commands without a QUIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// End of input.
    Eof,
    /// The idle timer ran out.
    Timeout,
    /// A signal or a broken pipe.
    Hangup,
}

/// Per-session marks on the index: deletions and reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    deleted: Vec<bool>,
    retrieved: Vec<bool>,
    ndeleted: usize,
    deleted_octets: u64,
}

impl Marks {
    fn new(n: usize) -> Self {
        Marks {
            deleted: vec![false; n],
            retrieved: vec![false; n],
            ndeleted: 0,
            deleted_octets: 0,
        }
    }

    /// True when message `i` is marked deleted.
    pub fn is_deleted(&self, i: MsgIdx) -> bool {
        self.deleted.get(i.0).copied().unwrap_or(false)
    }

    /// True when message `i` was retrieved with RETR in this session.
    pub fn is_retrieved(&self, i: MsgIdx) -> bool {
        self.retrieved.get(i.0).copied().unwrap_or(false)
    }

    /// Count and size of the messages not marked deleted.
    pub fn visible_totals(&self, index: &Index) -> (usize, u64) {
        (
            index.len() - self.ndeleted,
            index.total_size() - self.deleted_octets,
        )
    }

    /// Count and size of the messages marked deleted.
    pub fn deleted_totals(&self) -> (usize, u64) {
        (self.ndeleted, self.deleted_octets)
    }

    /// True when nothing was deleted or retrieved.
    pub fn is_pristine(&self) -> bool {
        self.ndeleted == 0 && !self.retrieved.iter().any(|r| *r)
    }
}

/// The mailbox update the driver must carry out.
#[derive(Debug)]
pub struct Commit<'a> {
    /// The index the marks refer to.
    pub index: &'a Index,
    /// Deletions and reads of this session.
    pub marks: &'a Marks,
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Step<'a> {
    /// Nothing (a blank line gets no reply).
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
    /// Check credentials, then call [`Session::on_auth`].
    Authenticate(AuthRequest),
    /// Send `head`, then message `msg` through the wire encoder with `uid`
    /// (and TOP's `body_lines`), then the terminating `.` line.
    Send {
        /// The `+OK n octets` line.
        head: Reply<'a>,
        /// Which message.
        msg: MsgIdx,
        /// Its UID (for the inserted `X-UIDL:` line).
        uid: &'a [u8],
        /// TOP's body line count; `None` for RETR.
        body_lines: Option<u64>,
        /// The exact size announced (debug builds check it).
        size: u64,
    },
    /// Send `before` (if any), update the maildrop, then call
    /// [`Session::on_committed`].
    Commit {
        /// A reply to send before updating (the abort reason).
        before: Option<Reply<'a>>,
        /// What to update.
        commit: Commit<'a>,
    },
    /// Send `reply` (if any) and the sign-off line, then end.
    Close {
        /// A last `-ERR` line before the sign-off, if any.
        reply: Option<Reply<'a>>,
        /// How the session ended.
        end: SessionEnd,
    },
}

#[derive(Debug)]
struct Trans {
    user: Vec<u8>,
    index: Index,
    marks: Marks,
}

#[derive(Debug)]
enum State {
    Auth1,
    Auth2 { user: Vec<u8> },
    Trans(Box<Trans>),
    Ended,
}

/// The state of one POP3 session.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    state: State,
    /// The name (and whether by APOP) being checked by the driver.
    authenticating: Option<(Vec<u8>, bool)>,
    /// The USER name being checked by the driver.
    checking_user: Option<Vec<u8>>,
    /// Why the commit in progress was started.
    committing: Option<SessionEnd>,
    /// Failed PASS/APOP attempts so far.
    auth_failures: u32,
}

impl Session {
    /// A new session in the AUTHORIZATION state.
    pub fn new(cfg: SessionConfig) -> Session {
        Session {
            cfg,
            state: State::Auth1,
            authenticating: None,
            checking_user: None,
            committing: None,
            auth_failures: 0,
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

    /// The user name, once authenticated.
    pub fn user(&self) -> Option<&[u8]> {
        match &self.state {
            State::Trans(t) => Some(&t.user),
            _ => None,
        }
    }

    /// True once the session has ended.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// Handles one framed line of input.
    pub fn on_frame(&mut self, frame: Frame<'_>) -> Step<'_> {
        match frame {
            Frame::TooLong => err(ErrReply::LineTooLong),
            Frame::Line(l) => self.on_line(l),
        }
    }

    /// Handles one command line (without its line end).
    pub fn on_line(&mut self, line: &[u8]) -> Step<'_> {
        if self.is_ended()
            || self.authenticating.is_some()
            || self.checking_user.is_some()
            || self.committing.is_some()
        {
            return Step::Nothing;
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

    fn allows(&self, v: Verb) -> bool {
        match self.state {
            State::Auth1 => {
                matches!(v, Verb::User | Verb::Quit | Verb::Capa)
                    || (v == Verb::Apop && self.cfg.greeting.timestamp().is_some())
            }
            State::Auth2 { .. } => matches!(v, Verb::Pass | Verb::Quit | Verb::Capa),
            State::Trans(_) => !matches!(v, Verb::User | Verb::Pass | Verb::Apop),
            State::Ended => false,
        }
    }

    fn dispatch(&mut self, cmd: Command<'_>) -> Step<'_> {
        match cmd {
            Command::Capa => Step::Reply(Reply::Capa(&self.cfg.capabilities)),
            Command::Quit => self.quit(),
            Command::User(name) => self.user_cmd(name),
            Command::Pass(secret) => {
                let State::Auth2 { user } = std::mem::replace(&mut self.state, State::Auth1) else {
                    return Step::Nothing;
                };
                self.authenticating = Some((user.clone(), false));
                Step::Authenticate(AuthRequest {
                    user,
                    proof: Proof::Pass(secret),
                })
            }
            Command::Apop { name, digest } => {
                if !valid_user_name(name) {
                    return err(ErrReply::BadUserName);
                }
                self.authenticating = Some((name.to_vec(), true));
                Step::Authenticate(AuthRequest {
                    user: name.to_vec(),
                    proof: Proof::Apop(digest.to_vec()),
                })
            }
            other => match &mut self.state {
                State::Trans(t) => t.command(other),
                _ => Step::Nothing,
            },
        }
    }

    fn user_cmd(&mut self, name: &[u8]) -> Step<'_> {
        if self.cfg.apop_only {
            return err(ErrReply::Auth(AuthError::ApopOnly, name.to_vec()));
        }
        if !valid_user_name(name) {
            return err(ErrReply::BadUserName);
        }
        // COMPAT qpopper 2.53: with APOP possible, USER already refuses a
        // user who has an APOP record (and reports a broken database).
        if self.cfg.greeting.timestamp().is_some() {
            let user = self.checking_user.insert(name.to_vec());
            return Step::CheckUser { user };
        }
        self.password_required(name.to_vec())
    }

    fn password_required(&mut self, user: Vec<u8>) -> Step<'_> {
        self.state = State::Auth2 { user };
        match &self.state {
            State::Auth2 { user } => Step::Reply(Reply::Ok(OkReply::PasswordRequired(user))),
            _ => Step::Nothing,
        }
    }

    /// The driver's answer to [`Step::CheckUser`]: `Ok` lets the user go on
    /// to PASS.
    pub fn on_user(&mut self, result: Result<(), AuthError>) -> Step<'_> {
        let Some(user) = self.checking_user.take() else {
            return Step::Nothing;
        };
        match result {
            Ok(()) => self.password_required(user),
            Err(e) => err(ErrReply::Auth(e, user)),
        }
    }

    fn quit(&mut self) -> Step<'_> {
        if matches!(self.state, State::Trans(_)) {
            self.committing = Some(SessionEnd::Quit);
            return self.commit_step(None);
        }
        self.state = State::Ended;
        Step::Close {
            reply: None,
            end: SessionEnd::Quit,
        }
    }

    fn commit_step(&self, before: Option<ErrReply>) -> Step<'_> {
        match &self.state {
            State::Trans(t) => Step::Commit {
                before: before.map(Reply::Err),
                commit: Commit {
                    index: &t.index,
                    marks: &t.marks,
                },
            },
            _ => Step::Nothing,
        }
    }

    /// The driver's answer to [`Step::Authenticate`].
    pub fn on_auth(&mut self, outcome: Result<Index, AuthFailure>) -> Step<'_> {
        let Some((user, apop)) = self.authenticating.take() else {
            return Step::Nothing;
        };
        match outcome {
            Ok(index) => {
                let marks = Marks::new(index.len());
                self.state = State::Trans(Box::new(Trans { user, index, marks }));
                match &self.state {
                    State::Trans(t) => Step::Reply(Reply::Ok(OkReply::LoggedIn {
                        user: &t.user,
                        count: t.index.len(),
                        octets: t.index.total_size(),
                        apop,
                    })),
                    _ => Step::Nothing,
                }
            }
            Err(AuthFailure::Denied(e)) => {
                self.auth_failures = self.auth_failures.saturating_add(1);
                let limit = self.cfg.max_auth_failures;
                if limit > 0 && self.auth_failures >= limit {
                    // DEVIATION: qpopper let one connection try for ever.
                    self.state = State::Ended;
                    return Step::Close {
                        reply: Some(Reply::Err(ErrReply::TooManyFailures)),
                        end: SessionEnd::AuthLimit,
                    };
                }
                self.state = State::Auth1;
                err(ErrReply::Auth(e, user))
            }
            Err(AuthFailure::Maildrop(e)) => {
                // Privileges are already dropped: no other user can log in on
                // this connection, so it ends here (qpopper went back to AUTH1,
                // where every later login would have failed).
                self.state = State::Ended;
                Step::Close {
                    reply: Some(Reply::Err(ErrReply::Maildrop(e))),
                    end: SessionEnd::ServerFault,
                }
            }
        }
    }

    /// The driver stops reading without QUIT (EOF, timeout, hang-up).
    pub fn on_abort(&mut self, why: Abort) -> Step<'_> {
        let (reply, end) = match why {
            Abort::Eof => (ErrReply::Eof, SessionEnd::ClientGone),
            Abort::Timeout => (ErrReply::Timeout, SessionEnd::TimedOut),
            Abort::Hangup => (ErrReply::Hangup, SessionEnd::HungUp),
        };
        self.authenticating = None;
        self.checking_user = None;
        if self.cfg.update_on_abort
            && matches!(self.state, State::Trans(_))
            && self.committing.is_none()
        {
            self.committing = Some(end);
            return self.commit_step(Some(reply));
        }
        self.state = State::Ended;
        Step::Close {
            reply: Some(Reply::Err(reply)),
            end,
        }
    }

    /// The driver's answer to [`Step::Commit`].
    pub fn on_committed(&mut self, result: Result<(), MaildropError>) -> Step<'_> {
        let end = self.committing.take().unwrap_or(SessionEnd::Quit);
        self.state = State::Ended;
        match result {
            Ok(()) => Step::Close { reply: None, end },
            Err(e) if end == SessionEnd::Quit => Step::Close {
                reply: Some(Reply::Err(ErrReply::Maildrop(e))),
                end: SessionEnd::ServerFault,
            },
            Err(_) => Step::Close {
                reply: Some(Reply::Err(ErrReply::AbortUpdateFailed {
                    hangup: end == SessionEnd::HungUp,
                })),
                end,
            },
        }
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
                Ok(i) => Step::Reply(Reply::Ok(OkReply::Scan(i.num(), self.size(i)))),
                Err(e) => err(e),
            },
            Command::Uidl(Some(arg)) => self.uidl_one(arg),
            Command::Retr(arg) => match self.live(arg) {
                Ok(i) => {
                    self.marks.retrieved[i.0] = true;
                    self.send(i, None)
                }
                Err(e) => err(e),
            },
            Command::Top(arg, lines) => match (self.live(arg), lines.value) {
                (Err(e), _) => err(e),
                (Ok(_), None) => err(ErrReply::BadLineCount(lines.raw.to_vec())),
                (Ok(i), Some(n)) => self.send(i, Some(n)),
            },
            Command::Dele(arg) => match self.live(arg) {
                Ok(i) => {
                    self.marks.deleted[i.0] = true;
                    self.marks.ndeleted += 1;
                    self.marks.deleted_octets += self.size(i);
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
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop { .. }
            | Command::Quit
            | Command::Capa => Step::Nothing,
        }
    }

    /// Resolves a message argument to a message that exists and is not deleted.
    fn live(&self, arg: NumArg<'_>) -> Result<MsgIdx, ErrReply> {
        let i = arg
            .value
            .and_then(|n| self.index.lookup(n))
            .ok_or_else(|| ErrReply::NoSuchMessage(arg.raw.to_vec()))?;
        if self.marks.is_deleted(i) {
            Err(ErrReply::MessageDeleted(i.num()))
        } else {
            Ok(i)
        }
    }

    fn uidl_one(&self, arg: NumArg<'_>) -> Step<'_> {
        let count = self.index.len();
        let i = match arg.value {
            None | Some(0) => return err(ErrReply::UidlNotNumber(count)),
            Some(n) => match self.index.lookup(n) {
                None => return err(ErrReply::UidlOutOfRange(count)),
                Some(i) => i,
            },
        };
        if self.marks.is_deleted(i) {
            return err(ErrReply::UidlDeleted(i.num()));
        }
        match self.index.get(i) {
            Some(e) => Step::Reply(Reply::Ok(OkReply::Uid(i.num(), e.uid.as_bytes()))),
            None => Step::Nothing,
        }
    }

    fn size(&self, i: MsgIdx) -> u64 {
        self.index.get(i).map_or(0, |e| e.size)
    }

    fn send(&self, i: MsgIdx, body_lines: Option<u64>) -> Step<'_> {
        match self.index.get(i) {
            Some(e) => Step::Send {
                head: Reply::Ok(OkReply::Octets(e.size)),
                msg: i,
                uid: e.uid.as_bytes(),
                body_lines,
                size: e.size,
            },
            None => Step::Nothing,
        }
    }
}

/// Why [`Session::on_auth`] is told that login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Credentials or policy refused: back to AUTH1.
    Denied(AuthError),
    /// Credentials were good but the maildrop could not be opened: the
    /// session ends.
    Maildrop(MaildropError),
}

fn parse_error(e: ParseError) -> ErrReply {
    match e {
        ParseError::TooManyTokens => ErrReply::TooManyTokens,
        ParseError::TooFew(v) => ErrReply::TooFew(v),
        ParseError::TooMany(v) => ErrReply::TooMany(v),
        ParseError::Unknown(w) => ErrReply::UnknownCommand(w),
    }
}

/// A name that some account could have: 1–64 bytes of printable ASCII
/// without `/`. Anything else is refused at USER/APOP without looking it up.
pub fn valid_user_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USER
        && name.iter().all(|b| (0x21..0x7f).contains(b) && *b != b'/')
}
