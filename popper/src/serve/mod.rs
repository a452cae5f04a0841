//! The driver: the only code that does I/O for a session.
//!
//! It reads the client through [`conn::Conn`], frames lines with
//! [`LineBuf`], hands each to the [`Session`] and carries out the
//! [`Step`] it returns: replies are written, logins go to [`login`], RETR
//! and TOP stream through the maildrop, the update runs at QUIT. Every
//! session ends in exactly one [`SessionEnd`], which decides the exit
//! status.

pub mod conn;
pub mod login;

use std::os::fd::BorrowedFd;
use std::process::ExitCode;
use std::time::Duration;

use self::conn::{Conn, Input, READ_SIZE};
use self::login::LoggedIn;
use crate::config::{Config, VERSION};
use crate::log::{Log, printable};
use crate::maildrop::{Maildrop, SendError};
use crate::peer::Peer;
use crate::protocol::capa::capabilities;
use crate::protocol::command::Tokens;
use crate::protocol::error::{AuthError, MaildropError};
use crate::protocol::greeting::{Challenge, Greeting};
use crate::protocol::index::Index;
use crate::protocol::line::{Frame, LineBuf};
use crate::protocol::reply::{ErrReply, Reply};
use crate::protocol::session::{Abort, AuthFailure, Session, SessionConfig, SessionEnd, Step};

/// The exit status for each way a session ends (see popper(8)).
pub fn exit_status(end: SessionEnd) -> ExitCode {
    ExitCode::from(match end {
        SessionEnd::Quit => 0,
        SessionEnd::ServerFault => 2,
        SessionEnd::ClientGone
        | SessionEnd::TimedOut
        | SessionEnd::HungUp
        | SessionEnd::AuthLimit => 3,
    })
}

/// Whether this build refuses USER/PASS.
pub const APOP_ONLY: bool = cfg!(feature = "apop-only");

/// This host's name for the greeting and sign-off (`gethostname`).
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// What carrying out a step led to.
enum Next {
    /// Read the next command.
    Continue,
    /// The session ended: sign off.
    Close(SessionEnd),
    /// Tell the session whether USER may go on to PASS.
    UserChecked(Result<(), AuthError>),
    /// Tell the session how the login went.
    Auth(Result<Index, AuthFailure>),
    /// Tell the session how the update went.
    Committed(Result<(), MaildropError>),
    /// The client vanished while we wrote to it.
    Abort(Abort),
}

/// Everything a session's driver holds besides the core.
struct Driver<'a> {
    cfg: &'a Config,
    log: &'a Log,
    peer: &'a mut Peer,
    host: String,
    /// The APOP challenge sent in the greeting, if any.
    timestamp: Option<String>,
    conn: Conn<'a>,
    user: Option<LoggedIn>,
}

/// Serves one client on `input`/`output` until the session ends.
pub fn run(
    cfg: &Config,
    log: &Log,
    peer: &mut Peer,
    input: BorrowedFd<'_>,
    output: BorrowedFd<'_>,
) -> SessionEnd {
    let timeout = (cfg.timeout > 0).then(|| Duration::from_secs(cfg.timeout));
    if peer.is_socket {
        conn::set_no_delay(output);
        if let Some(t) = timeout {
            conn::set_write_timeout(output, t);
        }
    }
    let host = host_name();
    // DECISIONS.md: the APOP challenge only when APOP can work.
    // Without randomness from the kernel the challenge would be guessable:
    // then APOP is not offered at all.
    let apop = APOP_ONLY || std::fs::symlink_metadata(&cfg.apop_db).is_ok();
    let challenge = apop
        .then(crate::sys::try_random_u64)
        .flatten()
        .map(|nonce| Challenge {
            pid: std::process::id(),
            time: crate::clock::now(),
            nonce,
        });
    let greeting = Greeting::new(&host, VERSION, cfg.shy, challenge);
    let timestamp = greeting.timestamp().map(str::to_string);
    let mut session = Session::new(SessionConfig {
        greeting,
        apop_only: APOP_ONLY,
        update_on_abort: cfg.update_on_abort,
        capabilities: capabilities(APOP_ONLY, VERSION),
        max_auth_failures: cfg.max_auth_failures,
    });
    log.debug(&format!(
        "(v{VERSION}) Servicing request from \"{}\" at {}",
        peer.name(),
        peer.addr()
    ));
    let mut d = Driver {
        cfg,
        log,
        peer,
        host,
        timestamp,
        conn: Conn::new(input, output, timeout),
        user: None,
    };
    session.greeting().write_to(d.conn.buffer());
    let end = d.serve(&mut session);
    // The mailbox is closed (its session lock released) before the
    // sign-off, as qpopper removed its temporary drop first: a client that
    // has read the sign-off may log in again at once.
    let who = d.user.take().map(|u| u.user);
    session.sign_off().write_to(d.conn.buffer());
    let _ = d.conn.flush();
    let who = who.unwrap_or_else(|| "(none)".to_string());
    d.log.debug(&format!(
        "(v{VERSION}) Ending request from \"{who}\" at {}: {end:?}",
        d.peer.describe()
    ));
    end
}

impl Driver<'_> {
    fn serve(&mut self, session: &mut Session) -> SessionEnd {
        let mut lines = LineBuf::new();
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            while let Some(frame) = lines.next_frame() {
                self.log_command(&frame);
                let next = self.carry_out(session.on_frame(frame));
                if let Some(end) = self.follow(session, next) {
                    return end;
                }
            }
            let discarded = lines.take_discarded();
            if discarded > 0 {
                self.log.notice(&format!(
                    "Excessive input from {}; discarded {discarded} bytes",
                    self.peer.describe()
                ));
            }
            let why = if self.conn.flush().is_err() {
                Abort::Hangup
            } else {
                match self.conn.read(&mut buf) {
                    Ok(Input::Data(n)) => {
                        lines.push(&buf[..n]);
                        continue;
                    }
                    Ok(Input::Eof) | Err(_) => Abort::Eof,
                    Ok(Input::Timeout) => Abort::Timeout,
                    Ok(Input::Hangup) => Abort::Hangup,
                }
            };
            let next = self.carry_out(session.on_abort(why));
            return self.follow(session, next).unwrap_or(SessionEnd::ClientGone);
        }
    }

    /// Feeds the results of steps back into the session until it waits for
    /// input (`None`) or ends.
    fn follow(&mut self, session: &mut Session, mut next: Next) -> Option<SessionEnd> {
        loop {
            next = match next {
                Next::Continue => return None,
                Next::Close(end) => return Some(end),
                Next::UserChecked(r) => self.carry_out(session.on_user(r)),
                Next::Auth(outcome) => self.carry_out(session.on_auth(outcome)),
                Next::Committed(result) => self.carry_out(session.on_committed(result)),
                Next::Abort(why) => self.carry_out(session.on_abort(why)),
            };
        }
    }

    fn carry_out(&mut self, step: Step<'_>) -> Next {
        match step {
            Step::Nothing => Next::Continue,
            Step::Reply(r) => {
                if r.is_err() {
                    self.log_err(&r.to_bytes());
                }
                r.write_to(self.conn.buffer());
                // Written out as it grows: a pipelined burst of LIST or
                // UIDL must not pile up in memory until the burst is done.
                match crate::maildrop::Output::drain(&mut self.conn) {
                    Ok(()) => Next::Continue,
                    Err(_) => Next::Abort(Abort::Hangup),
                }
            }
            Step::Send {
                head,
                msg,
                uid,
                body_lines,
                size,
            } => {
                let Some(u) = self.user.as_mut() else {
                    return Next::Close(SessionEnd::ServerFault);
                };
                let mark = self.conn.buffer().len();
                let flushed = self.conn.written;
                head.write_to(self.conn.buffer());
                match u.drop.send(msg, uid, body_lines, &mut self.conn) {
                    Ok(sent) => {
                        debug_assert!(
                            body_lines.is_some() || sent == size,
                            "sent {sent} != announced {size}"
                        );
                        self.conn.buffer().extend_from_slice(b".\r\n");
                        Next::Continue
                    }
                    Err(SendError::Client(_)) => Next::Abort(Abort::Hangup),
                    Err(SendError::Storage(e)) => {
                        self.log
                            .err(&format!("{}: reading message {}: {e}", u.user, msg.0 + 1));
                        if self.conn.written == flushed && self.conn.buffer().len() >= mark {
                            // Nothing of this reply has reached the client
                            // (the spool changed before the first byte, as
                            // the envelope check finds): take the +OK line
                            // back and say what is wrong instead.
                            self.conn.buffer().truncate(mark);
                            Reply::Err(ErrReply::Maildrop(e)).write_to(self.conn.buffer());
                        }
                        Next::Close(SessionEnd::ServerFault)
                    }
                }
            }
            Step::CheckUser { user } => {
                Next::UserChecked(crate::auth::may_use_pass(user, &self.cfg.apop_db))
            }
            Step::Authenticate(req) => {
                let _ = self.conn.flush();
                let ts = self.timestamp.as_deref().unwrap_or("");
                let result = login::login(self.cfg, self.log, self.peer, &self.host, ts, &req);
                Next::Auth(result.map(|mut u| {
                    if self.cfg.reverse_lookup {
                        self.peer.resolve();
                    }
                    for n in u.drop.take_notes() {
                        self.log.notice(&format!("{}: {n}", u.user));
                    }
                    let index = Index::new(u.drop.metas());
                    // The login's garbage (passwd/shadow reading, the
                    // scan, UID de-duplication, the metadata copied into
                    // the index) goes back to the kernel rather than
                    // staying in the session's RSS (make bench, row e).
                    crate::sys::trim_heap();
                    self.log.notice(&format!(
                        "POP login by user \"{}\" at {} ({} messages, {} octets)",
                        u.user,
                        self.peer.describe(),
                        index.len(),
                        index.total_size()
                    ));
                    self.user = Some(u);
                    index
                }))
            }
            Step::Commit { before, commit } => {
                if let Some(r) = before {
                    self.log_err(&r.to_bytes());
                    r.write_to(self.conn.buffer());
                }
                let _ = self.conn.flush();
                let Some(u) = self.user.as_mut() else {
                    return Next::Committed(Ok(()));
                };
                if self.cfg.statistics {
                    let (dn, db) = commit.marks.deleted_totals();
                    let (ln, lb) = commit.marks.visible_totals(commit.index);
                    self.log.notice(&format!(
                        "Stats: {} {dn} {db} {ln} {lb} {} {}",
                        u.user,
                        self.peer.name(),
                        self.peer.addr()
                    ));
                }
                let result = u.drop.commit(commit.index, commit.marks);
                for n in u.drop.take_notes() {
                    self.log.notice(&format!("{}: {n}", u.user));
                }
                match &result {
                    Ok(s) => self.log.debug(&format!(
                        "{}: update wrote {} bytes",
                        u.user, s.bytes_written
                    )),
                    Err(e) => self.log.err(&format!("{}: update failed: {e}", u.user)),
                }
                Next::Committed(result.map(|_| ()))
            }
            Step::Close { reply, end } => {
                if end == SessionEnd::AuthLimit {
                    self.log.notice(&format!(
                        "Too many failed login attempts from host {}; connection closed",
                        self.peer.describe()
                    ));
                }
                if let Some(r) = reply {
                    self.log_err(&r.to_bytes());
                    r.write_to(self.conn.buffer());
                }
                Next::Close(end)
            }
        }
    }

    /// `-d`: every command, with the password masked.
    fn log_command(&self, frame: &Frame<'_>) {
        if !self.log.debug_enabled() {
            return;
        }
        match frame {
            Frame::TooLong => self.log.debug("Received: (an over-long line)"),
            Frame::Line(l) => {
                // The same tokenizer as the session's, so that whatever it
                // takes for PASS (after a tab, a VT, leading blanks) is masked.
                let is_pass = matches!(Tokens::split(l), Ok(Some(t)) if t.word() == b"pass");
                if is_pass {
                    self.log.debug("Received: \"PASS xxxxxxxx\"");
                } else {
                    self.log.debug(&format!("Received: \"{}\"", printable(l)));
                }
            }
        }
    }

    /// Every `-ERR` is logged, as qpopper did: `user@client: -ERR text`.
    fn log_err(&self, reply: &[u8]) {
        let who = self.user.as_ref().map_or("(none)", |u| u.user.as_str());
        let text = reply.strip_suffix(b"\r\n").unwrap_or(reply);
        self.log.notice(&format!(
            "{who}@{}: {}",
            self.peer.describe(),
            printable(text)
        ));
    }
}

/// The whole process as inetd runs it: process set-up, the log, the peer,
/// then one session on fds 0 and 1.
pub fn serve_stdio(cfg: &Config) -> ExitCode {
    // Files popper creates are private; core dumps could hold passwords.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    if let Err(e) = crate::sys::install_signal_handlers() {
        eprintln!("popper: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    let log = match &cfg.trace_file {
        Some(path) => match Log::trace_file(path, cfg.debug) {
            Ok(l) => l,
            Err(e) => {
                // COMPAT qpopper 2.53: the trace file must open, or popper exits 1.
                let l = Log::syslog(cfg.log_facility, cfg.debug);
                l.err(&format!(
                    "Unable to open trace file \"{}\": {e}",
                    path.display()
                ));
                eprintln!(
                    "popper: Unable to open trace file \"{}\": {e}",
                    path.display()
                );
                return ExitCode::from(1);
            }
        },
        None => Log::syslog(cfg.log_facility, cfg.debug),
    };
    let mut peer = Peer::of_stdin();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    use std::os::fd::AsFd;
    let end = run(cfg, &log, &mut peer, stdin.as_fd(), stdout.as_fd());
    exit_status(end)
}
