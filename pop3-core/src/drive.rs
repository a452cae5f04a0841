//! The one dispatch loop: client bytes → [`LineBuf`] → [`Session`] →
//! [`Step`]s carried out through a [`Host`].
//!
//! Every way popper runs a session goes through [`drive`]: the real server
//! (popper's `serve`, a host over the client's file descriptors) and the
//! in-memory simulator that session tests and the fuzz target use
//! ([`crate::sim`]). So the step contract is kept in one place — every
//! [`Step::Authenticate`], [`Step::Commit`] and [`Step::CheckUser`] is
//! answered, a `+OK` is taken back when a message cannot be read before
//! its first byte left, the maildrop is let go before the sign-off — and
//! what is tested and fuzzed is what ships.
//!
//! A host does the I/O and the decisions that need the system: reading
//! with a timeout, writing, checking a login and opening the maildrop.
//! It is told what happened through [`Event`]s, which it may log.

use std::io;

use crate::error::{AuthError, StorageError};
use crate::index::{Index, MsgIdx, MsgNum};
use crate::limits::{MAX_DISCARD_NOTICES, READ_SIZE};
use crate::line::{Frame, LineBuf};
use crate::maildrop::{CommitStats, Maildrop, Note, Output, SendError};
use crate::marks::Marks;
use crate::reply::{ErrReply, Listing, Reply};
use crate::session::{
    Abort, AuthFailure, AuthRequest, Authed, Session, SessionConfig, SessionEnd, Step,
};

/// What a read from the client produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// This many bytes.
    Data(usize),
    /// The client closed its side (or the connection was reset).
    Eof,
    /// Nothing arrived within the idle timeout.
    Timeout,
    /// A signal asked popper to stop, or reading failed.
    Hangup,
}

/// What happened in the session, for the host's log.
#[derive(Debug)]
pub enum Event<'a> {
    /// A line was read (before it is handled).
    Command {
        /// The line.
        frame: &'a Frame<'a>,
        /// It is a SASL response, which may hold a password: not to be
        /// logged.
        secret: bool,
    },
    /// After STLS: this many bytes the client had sent in clear behind
    /// it were dropped unread.
    InputDropped(usize),
    /// A reply starts here in the output (for RETR and TOP: the `+OK`
    /// line); `multiline` when a body and a `.` line follow it.
    Reply {
        /// A body follows.
        multiline: bool,
    },
    /// This `-ERR` line (with its CRLF) was sent.
    ErrSent(&'a [u8]),
    /// An over-long line of this many bytes (with its LF, or as far as it
    /// went) was discarded.
    Discarded(u64),
    /// [`MAX_DISCARD_NOTICES`] over-long lines were reported: the rest of
    /// this session's are not.
    DiscardsSuppressed,
    /// A line from the maildrop.
    Note(&'a Note),
    /// The login succeeded and the maildrop holds this much.
    LoggedIn {
        /// Messages.
        count: usize,
        /// Their total size.
        octets: u64,
    },
    /// Message `msg` could not be read; the session ends.
    SendFailed {
        /// Which message.
        msg: MsgNum,
        /// Why.
        error: &'a StorageError,
    },
    /// A RETR sent another number of bytes than it announced (a bug the
    /// tests and the fuzzer look for).
    SizeMismatch {
        /// Which message.
        msg: MsgNum,
        /// The size announced.
        announced: u64,
        /// The bytes sent, without dot-stuffing.
        sent: u64,
    },
    /// The update is about to run (the statistics line's figures).
    Updating {
        /// Messages and octets deleted.
        deleted: (usize, u64),
        /// Messages and octets left.
        left: (usize, u64),
    },
    /// The update ran.
    Updated(&'a Result<CommitStats, StorageError>),
    /// The session is closing this way.
    Closing(SessionEnd),
}

/// What [`drive`] needs from the world around a session.
pub trait Host: Output {
    /// The maildrop a login opens.
    type Drop: Maildrop;

    /// Waits for client bytes (at most the idle timeout).
    fn read(&mut self, buf: &mut [u8]) -> Input;

    /// Writes out everything buffered. After a failure the client is gone
    /// and later output is dropped.
    fn flush(&mut self) -> io::Result<()>;

    /// Bytes written to the client so far.
    fn written(&self) -> u64;

    /// USER, when APOP is possible: `Ok` lets the user go on to PASS.
    fn check_user(&mut self, user: &[u8]) -> Result<(), AuthError>;

    /// Checks a login against `timestamp` (the greeting's APOP
    /// challenge) and, when it is good, opens the user's maildrop.
    fn login(
        &mut self,
        req: &AuthRequest,
        timestamp: Option<&str>,
    ) -> Result<Opened<Self::Drop>, AuthFailure>;

    /// STLS: the `+OK` is written; does the TLS handshake, after which
    /// reads and writes are encrypted. False when it failed (the host
    /// logs why; the connection can say nothing more).
    fn start_tls(&mut self) -> bool;

    /// Something happened (for the log); nothing by default.
    fn event(&mut self, _event: Event<'_>) {}
}

/// A login's opened maildrop, and for SCRAM the server's final message.
#[derive(Debug)]
pub struct Opened<D> {
    /// The user's maildrop.
    pub drop: D,
    /// SCRAM-SHA-256's server-final message, sent before the `+OK`.
    pub server_final: Option<String>,
}

impl<D> From<D> for Opened<D> {
    fn from(drop: D) -> Opened<D> {
        Opened {
            drop,
            server_final: None,
        }
    }
}

/// How a session went.
#[derive(Debug)]
pub struct Outcome<D> {
    /// How it ended.
    pub end: SessionEnd,
    /// The maildrop, committed or abandoned (already let go), if there
    /// was a login.
    pub drop: Option<D>,
}

/// Serves one whole session over `host`: greeting, commands, the update,
/// the sign-off.
pub fn drive<H: Host>(host: &mut H, cfg: SessionConfig) -> Outcome<H::Drop> {
    let mut session = Session::new(cfg);
    let timestamp = session.timestamp().map(str::to_string);
    let login = session.pending_login();
    let mut d = Loop {
        host,
        timestamp,
        drop: None,
        finished: false,
        pending: Vec::new(),
        notices: 0,
        drop_input: false,
    };
    let end = match login {
        // The last link of a chain: no greeting, the maildrop at once.
        Some(req) => d
            .follow(&mut session, Next::Login(req))
            .unwrap_or_else(|| d.run(&mut session)),
        None => {
            session.greeting().write_to(d.host.buffer());
            d.run(&mut session)
        }
    };
    // The maildrop is let go (its session lock released) before the
    // sign-off, as qpopper removed its temporary drop first: a client that
    // has read the sign-off may log in again at once.
    if let Some(m) = d.drop.as_mut()
        && !d.finished
    {
        m.abandon();
        d.finished = true;
        d.notes();
    }
    // A session handed to another program ended there, and after a failed
    // handshake nothing can be said: not a byte more.
    if !matches!(end, SessionEnd::HandedOver | SessionEnd::TlsFailed) {
        session.sign_off().write_to(d.host.buffer());
        let _ = d.host.flush();
    }
    Outcome { end, drop: d.drop }
}

/// What carrying out a step led to.
enum Next {
    /// Read the next command.
    Continue,
    /// The session ended: sign off.
    Close(SessionEnd),
    /// Ask the host whether this USER may go on to PASS.
    CheckUser(Vec<u8>),
    /// Log in and open the maildrop.
    Login(AuthRequest),
    /// The message's terminator is written.
    Sent(MsgIdx, Option<u64>),
    /// Apply the session's marks.
    Commit,
    /// STLS's `+OK` is buffered: do the handshake.
    StartTls,
    /// The client vanished while we wrote to it.
    Abort(Abort),
}

struct Loop<'h, H: Host> {
    host: &'h mut H,
    timestamp: Option<String>,
    drop: Option<H::Drop>,
    /// The maildrop was committed or abandoned.
    finished: bool,
    /// RETRs whose terminator is buffered but not yet written, with the
    /// output offset at which it ends: marked read, and taken back if a
    /// write fails first.
    pending: Vec<(MsgIdx, u64)>,
    /// Over-long lines reported so far.
    notices: u32,
    /// STLS was answered: what is buffered of the client's input is
    /// dropped before another line is looked at.
    drop_input: bool,
}

impl<H: Host> Loop<'_, H> {
    fn run(&mut self, session: &mut Session) -> SessionEnd {
        let mut lines = LineBuf::new();
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            while let Some(frame) = lines.next_frame() {
                self.host.event(Event::Command {
                    frame: &frame,
                    secret: session.is_secret(),
                });
                let next = self.carry_out(session.on_frame(frame));
                self.discarded(lines.take_discarded());
                if let Some(end) = self.follow(session, next) {
                    return end;
                }
                if std::mem::take(&mut self.drop_input) {
                    let n = lines.clear();
                    if n > 0 {
                        self.host.event(Event::InputDropped(n));
                    }
                }
            }
            let why = if !self.flush(session) {
                Abort::Hangup
            } else {
                match self.host.read(&mut buf) {
                    Input::Data(n) => {
                        lines.push(&buf[..n.min(buf.len())]);
                        self.discarded(lines.take_discarded());
                        continue;
                    }
                    Input::Eof => Abort::Eof,
                    Input::Timeout => Abort::Timeout,
                    Input::Hangup => Abort::Hangup,
                }
            };
            self.discarded(lines.discarding());
            let next = self.carry_out(session.on_abort(why));
            return self.follow(session, next).unwrap_or(SessionEnd::ClientGone);
        }
    }

    /// Reports an over-long line, up to [`MAX_DISCARD_NOTICES`] a session.
    fn discarded(&mut self, total: Option<u64>) {
        let Some(n) = total else { return };
        self.notices = self.notices.saturating_add(1);
        match self.notices.cmp(&MAX_DISCARD_NOTICES) {
            std::cmp::Ordering::Greater => {}
            std::cmp::Ordering::Equal => {
                self.host.event(Event::Discarded(n));
                self.host.event(Event::DiscardsSuppressed);
            }
            std::cmp::Ordering::Less => self.host.event(Event::Discarded(n)),
        }
    }

    /// Feeds the results of steps back into the session until it waits for
    /// input (`None`) or ends.
    fn follow(&mut self, session: &mut Session, mut next: Next) -> Option<SessionEnd> {
        loop {
            next = match next {
                Next::Continue => return None,
                Next::Close(end) => return Some(end),
                Next::CheckUser(user) => {
                    let r = self.host.check_user(&user);
                    self.carry_out(session.on_user(r))
                }
                Next::Login(req) => {
                    // The client sees its earlier replies before a failure
                    // delay; a client gone here is noticed at the next write.
                    self.flush(session);
                    let outcome = self.login(&req);
                    self.carry_out(session.on_auth(outcome))
                }
                Next::Sent(msg, body_lines) => {
                    if session.on_sent(msg, body_lines) {
                        let end = self.host.written() + self.host.buffer().len() as u64;
                        self.pending.push((msg, end));
                    }
                    Next::Continue
                }
                Next::Commit => {
                    self.flush(session);
                    let result = self.commit(session);
                    self.carry_out(session.on_committed(result))
                }
                Next::StartTls => {
                    if !self.flush(session) {
                        Next::Abort(Abort::Hangup)
                    } else {
                        // Set before the handshake: whatever the client
                        // sent in clear behind STLS is never a command.
                        self.drop_input = true;
                        let ok = self.host.start_tls();
                        self.carry_out(session.on_tls(ok))
                    }
                }
                Next::Abort(why) => {
                    self.lose(session);
                    self.carry_out(session.on_abort(why))
                }
            };
        }
    }

    fn carry_out(&mut self, step: Step<'_>) -> Next {
        match step {
            Step::Nothing => Next::Continue,
            Step::Reply(r) => {
                self.write(&r);
                // Written out as it grows: a pipelined burst of LIST or
                // UIDL must not pile up in memory until the burst is done.
                match self.host.drain() {
                    Ok(()) => Next::Continue,
                    Err(_) => Next::Abort(Abort::Hangup),
                }
            }
            Step::Send {
                head,
                msg,
                body_lines,
                size,
            } => self.send(&head, msg, body_lines, size),
            Step::Headers {
                listing,
                index,
                marks,
                msgs,
            } => self.headers(&listing, index, marks, msgs),
            Step::CheckUser { user } => Next::CheckUser(user.to_vec()),
            Step::Authenticate(req) => Next::Login(req),
            Step::StartTls { reply } => {
                self.write(&reply);
                Next::StartTls
            }
            Step::Commit { before } => {
                if let Some(r) = before {
                    self.write(&r);
                }
                Next::Commit
            }
            Step::Close { reply, end } => {
                self.host.event(Event::Closing(end));
                if let Some(r) = reply {
                    self.write(&r);
                }
                Next::Close(end)
            }
        }
    }

    /// Appends a reply to the output; every `-ERR` is reported.
    fn write(&mut self, r: &Reply<'_>) {
        self.host.event(Event::Reply {
            multiline: r.is_multiline(),
        });
        let at = self.host.buffer().len();
        if r.is_multiline() {
            // Long listings go out as they are made; a failure shows at
            // the next flush.
            let _ = r.write_out(&mut *self.host);
        } else {
            r.write_to(self.host.buffer());
        }
        if r.is_err() {
            let line = self.host.buffer()[at..].to_vec();
            self.host.event(Event::ErrSent(&line));
        }
    }

    fn send(&mut self, head: &Reply<'_>, msg: MsgIdx, body_lines: Option<u64>, size: u64) -> Next {
        let Some(drop) = self.drop.as_mut() else {
            return Next::Close(SessionEnd::ServerFault);
        };
        let mark = self.host.buffer().len();
        let flushed = self.host.written();
        self.host.event(Event::Reply { multiline: true });
        head.write_to(self.host.buffer());
        match drop.send(msg, body_lines, &mut *self.host) {
            Ok(sent) => {
                if body_lines.is_none() && sent != size {
                    self.host.event(Event::SizeMismatch {
                        msg: msg.num(),
                        announced: size,
                        sent,
                    });
                }
                self.host.buffer().extend_from_slice(b".\r\n");
                Next::Sent(msg, body_lines)
            }
            Err(SendError::Client(_)) => Next::Abort(Abort::Hangup),
            Err(SendError::Storage(e) | SendError::Gone(e)) if !self.untouched(mark, flushed) => {
                // Part of the message is out: the reply cannot be ended
                // honestly, so the connection is.
                self.host.event(Event::SendFailed {
                    msg: msg.num(),
                    error: &e,
                });
                Next::Close(SessionEnd::ServerFault)
            }
            Err(SendError::Gone(e)) => {
                // Nothing of it left: take the +OK line back, say so, and
                // go on with the rest of the mailbox.
                self.host.buffer().truncate(mark);
                self.write(&Reply::Err(ErrReply::Storage(e)));
                Next::Continue
            }
            Err(SendError::Storage(e)) => {
                self.host.event(Event::SendFailed {
                    msg: msg.num(),
                    error: &e,
                });
                // Nothing of this reply has reached the client (the
                // maildrop changed before the first byte): take the +OK
                // line back and say what is wrong instead.
                self.host.buffer().truncate(mark);
                self.host.event(Event::Reply { multiline: false });
                Reply::Err(ErrReply::Storage(e)).write_to(self.host.buffer());
                Next::Close(SessionEnd::ServerFault)
            }
        }
    }

    /// EUIDL and `XTND XLST`: each listed message's header field from the
    /// maildrop, written as it comes (a long list is drained like LIST's).
    fn headers(
        &mut self,
        listing: &Listing,
        index: &Index,
        marks: &Marks,
        msgs: std::ops::Range<usize>,
    ) -> Next {
        let Some(drop) = self.drop.as_mut() else {
            return Next::Close(SessionEnd::ServerFault);
        };
        let mark = self.host.buffer().len();
        let flushed = self.host.written();
        self.host.event(Event::Reply {
            multiline: listing.is_multiline(),
        });
        listing.write_head(self.host.buffer());
        for i in msgs.map(MsgIdx) {
            let Some(e) = index.get(i).filter(|_| !marks.is_deleted(i)) else {
                continue;
            };
            let field = match drop.header(i, listing.prefix(), listing.max()) {
                Ok(f) => f,
                Err(error)
                    if self.host.written() == flushed && self.host.buffer().len() >= mark =>
                {
                    // Nothing of the reply has left: it becomes an -ERR
                    // and the session goes on (nothing in it changed).
                    self.host.buffer().truncate(mark);
                    self.write(&Reply::Err(ErrReply::Storage(error)));
                    return Next::Continue;
                }
                Err(error) => {
                    // Part of the list is out: it cannot be ended honestly.
                    self.host.event(Event::SendFailed {
                        msg: i.num(),
                        error: &error,
                    });
                    return Next::Close(SessionEnd::ServerFault);
                }
            };
            listing.write_item(self.host.buffer(), i.num(), e, field.as_deref());
            if self.host.drain().is_err() {
                return Next::Abort(Abort::Hangup);
            }
        }
        listing.write_end(self.host.buffer());
        Next::Continue
    }

    /// True when nothing of the reply begun at buffer offset `mark` (with
    /// `flushed` bytes written then) has left.
    fn untouched(&mut self, mark: usize, flushed: u64) -> bool {
        self.host.written() == flushed && self.host.buffer().len() >= mark
    }

    fn login(&mut self, req: &AuthRequest) -> Result<Authed, AuthFailure> {
        let Opened {
            mut drop,
            server_final,
        } = self.host.login(req, self.timestamp.as_deref())?;
        for n in drop.take_notes() {
            self.host.event(Event::Note(&n));
        }
        let index = Index::new(drop.entries());
        self.drop = Some(drop);
        self.host.event(Event::LoggedIn {
            count: index.len(),
            octets: index.total_size(),
        });
        Ok(Authed {
            index,
            server_final,
        })
    }

    fn commit(&mut self, session: &Session) -> Result<(), StorageError> {
        let (Some(drop), Some((index, marks))) = (self.drop.as_mut(), session.commit_marks())
        else {
            return Ok(());
        };
        self.host.event(Event::Updating {
            deleted: marks.deleted_totals(),
            left: marks.visible_totals(index),
        });
        let result = drop.commit(marks);
        self.finished = true;
        self.notes();
        self.host.event(Event::Updated(&result));
        result.map(|_| ())
    }

    /// The maildrop's notes to the host.
    fn notes(&mut self) {
        if let Some(drop) = self.drop.as_mut() {
            for n in drop.take_notes() {
                self.host.event(Event::Note(&n));
            }
        }
    }

    /// Writes out the buffer; returns false when the client is gone. What
    /// was written confirms the RETRs it ended; a failure takes back the
    /// marks of those it did not reach.
    fn flush(&mut self, session: &mut Session) -> bool {
        let ok = self.host.flush().is_ok();
        if ok {
            let written = self.host.written();
            self.pending.retain(|&(_, end)| end > written);
        } else {
            self.lose(session);
        }
        ok
    }

    /// The client is gone: RETRs whose end it did not get are not read.
    fn lose(&mut self, session: &mut Session) {
        let written = self.host.written();
        for (msg, end) in self.pending.drain(..) {
            if end > written {
                session.on_lost(msg);
            }
        }
    }
}

#[cfg(test)]
#[path = "drive_tests.rs"]
mod tests;
