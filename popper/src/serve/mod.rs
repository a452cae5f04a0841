//! The real host of a session: the client on two file descriptors, logins
//! against the system, the mailbox on disk, syslog.
//!
//! The session itself runs in the protocol core's one dispatch loop
//! ([`pop3_core::drive::drive`]); [`ServeHost`] is what it runs on: reads
//! through [`conn::Conn`] with the idle timeout, logins through [`login`],
//! and every [`Event`] logged in qpopper's words. Every session ends in
//! exactly one [`SessionEnd`], which decides the exit status.

pub mod conn;
pub mod login;
pub mod popup;
pub mod tls;

use std::io;
use std::os::fd::BorrowedFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pop3_core::capa::Capabilities;
use pop3_core::command::{Command, Tokens, Verb};
use pop3_core::drive::{Event, Host, Input, Opened, drive};
use pop3_core::error::AuthError;
use pop3_core::greeting::{Challenge, Greeting};
use pop3_core::line::Frame;
use pop3_core::policy::Tls;
use pop3_core::sasl::Nonces;
use pop3_core::session::{AuthFailure, AuthRequest, SessionConfig, SessionEnd, Start};

use self::conn::Conn;
use crate::config::{Config, Mode, VERSION};
use crate::log::{Log, printable};
use crate::maildrop::{Maildrop, Note, Output};
use crate::peer::Peer;

/// The exit status for each way a session ends (see popper(8)).
///
/// COMPAT qmail-pop3d: as the last link of a chain (`--pop3d`) every
/// session exits 0, as qmail-pop3d's did — even one whose mailbox could not
/// be opened (it has told the client so): the first link reads any other
/// status as a failed login and answers the client again. Only a chain
/// that did not make popper the user (`denied`) exits 1.
pub fn chain_exit_status(denied: bool) -> ExitCode {
    if denied {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The exit status for each way a session ends (see popper(8)).
pub fn exit_status(end: SessionEnd) -> ExitCode {
    ExitCode::from(match end {
        SessionEnd::Quit | SessionEnd::HandedOver => 0,
        SessionEnd::ServerFault => 2,
        SessionEnd::ClientGone
        | SessionEnd::TimedOut
        | SessionEnd::HungUp
        | SessionEnd::AuthLimit
        | SessionEnd::TlsFailed => 3,
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

/// Everything a session's host holds.
struct ServeHost<'a> {
    cfg: &'a Config,
    log: &'a Log,
    peer: &'a mut Peer,
    host: String,
    conn: Conn<'a>,
    /// Who logged in, once someone has.
    user: Option<String>,
    /// The last login was refused (not: its mailbox failed).
    denied: bool,
    /// The TLS configuration STLS starts with, when it is offered.
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// What TLS this connection has to offer: the state the session starts in
/// and the configuration STLS (or port 995's handshake) uses. Cert and key
/// are read here, as root, before a byte from the client is looked at.
fn tls_setup(cfg: &Config, log: &Log) -> (Tls, Option<Arc<rustls::ServerConfig>>) {
    use crate::tls::Support;
    if cfg.tls.support == Support::None {
        return (Tls::Off, None);
    }
    if !matches!(cfg.mode, Mode::Serve) {
        // A chain link: qmail-popup and qmail-pop3d have no TLS; a TLS
        // tunnel in front of the chain is the way there.
        log.notice("tls-support is ignored as a link of a checkpassword chain");
        return (Tls::Off, None);
    }
    if cfg.tls.cipher_list.is_some() {
        log.notice(
            "tls-cipher-list is not applicable: rustls chooses its own cipher suites (TLS 1.3 AES-GCM and ChaCha20-Poly1305; TLS 1.2 ECDHE with AEAD only)",
        );
    }
    match crate::tls::server_config(&cfg.tls) {
        Ok(c) => (Tls::Offered, Some(c)),
        Err(e) => {
            log.err(&format!("TLS is not available: {e}"));
            (Tls::Broken, None)
        }
    }
}

/// Serves one client on `input`/`output` until the session ends; returns
/// how, and whether a login was refused last.
pub fn run(
    cfg: &Config,
    log: &Log,
    peer: &mut Peer,
    input: BorrowedFd<'_>,
    output: BorrowedFd<'_>,
) -> (SessionEnd, bool) {
    let timeout = (cfg.timeout > 0).then(|| Duration::from_secs(cfg.timeout));
    if peer.is_socket {
        conn::set_no_delay(output);
        if let Some(t) = timeout {
            conn::set_write_timeout(output, t);
        }
    }
    let host = match &cfg.mode {
        Mode::Popup { host, .. } => host.clone(),
        _ => host_name(),
    };
    // DECISIONS.md: the APOP challenge only when APOP can work — with the
    // APOP database, a checkpassword program or checkpw's password files,
    // and always as the first link of a chain (qmail-popup's greeting).
    // Without randomness from the kernel the challenge would be guessable:
    // then APOP is not offered at all.
    let apop = APOP_ONLY
        || std::fs::symlink_metadata(&cfg.apop_db).is_ok()
        || cfg.checkpassword.is_some()
        || cfg.password_file.is_some()
        || matches!(cfg.mode, Mode::Popup { .. });
    let challenge = apop
        .then(crate::sys::try_random_u64)
        .flatten()
        .map(|nonce| Challenge {
            pid: std::process::id(),
            time: crate::clock::now(),
            nonce,
        });
    let start = match &cfg.mode {
        Mode::Pop3d { .. } => Start::Authenticated(chain_user().into_bytes()),
        _ => Start::Greeting,
    };
    let (mut tls, tls_config) = tls_setup(cfg, log);
    // CRAM-MD5 and SCRAM-SHA-256 need the users' secrets, which only the
    // APOP database holds, and unpredictable challenges.
    let seed = crate::sys::try_random_bytes::<32>();
    let digests = matches!(cfg.mode, Mode::Serve)
        && cfg.checkpassword.is_none()
        && cfg.password_file.is_none()
        && std::fs::symlink_metadata(&cfg.apop_db).is_ok()
        && seed.is_some();
    let caps = Capabilities::new(APOP_ONLY, VERSION)
        .with_digests(digests)
        .with_policies(cfg.login_delay, cfg.expire);
    let local = match peer.ip {
        Some(ip) => ip.is_loopback(),
        None => !peer.is_socket,
    };
    let session = SessionConfig {
        start,
        apop_only: APOP_ONLY,
        update_on_abort: cfg.update_on_abort,
        max_auth_failures: cfg.max_auth_failures,
        clear_text: cfg.clear_text,
        local,
        ..SessionConfig::new(
            Greeting::new(&host, VERSION, cfg.shy, challenge),
            caps,
            Nonces::new(seed.unwrap_or([0; 32])),
        )
    };
    log.debug(&format!(
        "(v{VERSION}) Servicing request from \"{}\" at {}",
        peer.name(),
        peer.addr()
    ));
    let mut h = ServeHost {
        cfg,
        log,
        peer,
        host,
        conn: Conn::new(input, output, timeout),
        user: None,
        denied: false,
        tls: None,
    };
    // Port 995: TLS from the first byte, before the greeting.
    if cfg.tls.support == crate::tls::Support::AlternatePort && tls != Tls::Off {
        let Some(config) = tls_config else {
            // The reason is logged; a client expecting TLS cannot be told.
            return (SessionEnd::ServerFault, false);
        };
        if !h.handshake(config) {
            return (SessionEnd::TlsFailed, false);
        }
        tls = Tls::Active;
    } else if tls == Tls::Offered {
        h.tls = tls_config;
    }
    let session = SessionConfig { tls, ..session };
    let end = drive(&mut h, session).end;
    h.conn.close();
    let who = h.user.as_deref().unwrap_or("(none)");
    log.debug(&format!(
        "(v{VERSION}) Ending request from \"{who}\" at {}: {end:?}",
        h.peer.describe()
    ));
    (end, h.denied)
}

impl Output for ServeHost<'_> {
    fn buffer(&mut self) -> &mut Vec<u8> {
        self.conn.buffer()
    }

    fn drain(&mut self) -> io::Result<()> {
        Output::drain(&mut self.conn)
    }
}

impl Host for ServeHost<'_> {
    type Drop = Box<dyn Maildrop>;

    fn read(&mut self, buf: &mut [u8]) -> Input {
        // A read error is a client that went away.
        self.conn.read(buf).unwrap_or(Input::Eof)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }

    fn written(&self) -> u64 {
        self.conn.written
    }

    fn check_user(&mut self, user: &[u8]) -> Result<(), AuthError> {
        // Only pop.auth ties a user to APOP: checkpw's `.password` and
        // checkpassword programs take USER/PASS and APOP alike.
        let pop_auth = self.cfg.checkpassword.is_none()
            && self.cfg.password_file.is_none()
            && matches!(self.cfg.mode, Mode::Serve);
        if !pop_auth {
            return Ok(());
        }
        crate::auth::may_use_pass(user, &self.cfg.apop_db)
    }

    fn start_tls(&mut self) -> bool {
        match self.tls.take() {
            Some(config) => self.handshake(config),
            None => false,
        }
    }

    fn login(
        &mut self,
        req: &AuthRequest,
        timestamp: Option<&str>,
    ) -> Result<Opened<Box<dyn Maildrop>>, AuthFailure> {
        let ts = timestamp.unwrap_or("");
        if let Mode::Popup { program, .. } = &self.cfg.mode {
            return Err(popup::hand_over(
                self.cfg, self.log, self.peer, program, ts, req,
            ));
        }
        let u = login::login(self.cfg, self.log, self.peer, &self.host, ts, req);
        self.denied = matches!(u, Err(AuthFailure::Denied(_)));
        let u = u?;
        if self.cfg.reverse_lookup {
            self.peer.resolve();
        }
        self.user = Some(u.user);
        Ok(Opened {
            drop: u.drop,
            server_final: u.server_final,
        })
    }

    fn event(&mut self, event: Event<'_>) {
        let log = self.log;
        let who = self.user.as_deref().unwrap_or("(none)");
        match event {
            Event::Command { frame, secret } => self.log_command(frame, secret),
            Event::InputDropped(n) => log.notice(&format!(
                "{}: dropped {n} bytes sent in clear after STLS (a plaintext injection attempt, or a broken client)",
                self.peer.describe()
            )),
            Event::Reply { .. } => {}
            // Every -ERR is logged, as qpopper did: `user@client: -ERR text`.
            Event::ErrSent(line) => {
                let text = line.strip_suffix(b"\r\n").unwrap_or(line);
                log.notice(&format!(
                    "{who}@{}: {}",
                    self.peer.describe(),
                    printable(text)
                ));
            }
            Event::Discarded(n) => log.notice(&format!(
                "Excessive input from {}; discarded {n} bytes",
                self.peer.describe()
            )),
            Event::DiscardsSuppressed => log.notice(&format!(
                "Excessive input from {}: further over-long lines in this session are not logged",
                self.peer.describe()
            )),
            Event::Note(Note::Notice(t)) => log.notice(&format!("{who}: {t}")),
            Event::Note(Note::Debug(t)) => log.debug(&format!("{who}: {t}")),
            Event::LoggedIn { count, octets } => {
                // The login's garbage (passwd/shadow reading, the scan,
                // UID de-duplication, the entries copied into the index)
                // goes back to the kernel rather than staying in the
                // session's RSS (make bench, row e).
                crate::sys::trim_heap();
                log.notice(&format!(
                    "POP login by user \"{who}\" at {} ({}, {octets} octets)",
                    self.peer.describe(),
                    crate::maildrop::messages(count)
                ));
            }
            Event::SendFailed { msg, error } => {
                log.err(&format!("{who}: reading message {}: {error}", msg.0))
            }
            Event::SizeMismatch {
                msg,
                announced,
                sent,
            } => {
                log.err(&format!(
                    "{who}: message {} sent {sent} octets but announced {announced}",
                    msg.0
                ));
                debug_assert_eq!(sent, announced, "message {}", msg.0);
            }
            Event::Updating { deleted, left } => {
                if self.cfg.statistics {
                    log.notice(&format!(
                        "Stats: {who} {} {} {} {} {} {}",
                        deleted.0,
                        deleted.1,
                        left.0,
                        left.1,
                        self.peer.name(),
                        self.peer.addr()
                    ));
                }
            }
            Event::Updated(Ok(s)) => {
                log.debug(&format!("{who}: update wrote {} bytes", s.bytes_written))
            }
            Event::Updated(Err(e)) => log.err(&format!("{who}: update failed: {e}")),
            Event::Closing(SessionEnd::AuthLimit) => log.notice(&format!(
                "Too many failed login attempts from host {}; connection closed",
                self.peer.describe()
            )),
            Event::Closing(_) => {}
        }
    }
}

impl ServeHost<'_> {
    /// The TLS handshake on the client connection, logged either way.
    fn handshake(&mut self, config: Arc<rustls::ServerConfig>) -> bool {
        match self.conn.start_tls(config) {
            Ok(what) => {
                self.log.notice(&format!(
                    "TLS handshake with {}: {what}",
                    self.peer.describe()
                ));
                true
            }
            Err(why) => {
                self.log.notice(&format!(
                    "TLS handshake with {} failed: {why}",
                    self.peer.describe()
                ));
                false
            }
        }
    }

    /// `-d`: every command, with the password masked.
    fn log_command(&self, frame: &Frame<'_>, secret: bool) {
        if !self.log.debug_enabled() {
            return;
        }
        if secret {
            self.log.debug("Received: (an authentication response)");
            return;
        }
        match frame {
            Frame::TooLong => self.log.debug("Received: (an over-long line)"),
            Frame::Line(l) => {
                // The same tokenizer as the session's, so that whatever it
                // takes for PASS (after a tab, a VT, leading blanks) is masked.
                let toks = Tokens::split(l);
                match &toks {
                    Ok(Some(t)) if t.word() == b"pass" => {
                        self.log.debug("Received: \"PASS xxxxxxxx\"")
                    }
                    // AUTH's initial response may be a password (PLAIN).
                    Ok(Some(t)) if t.word() == b"auth" => {
                        let shown = match t.command(Verb::Auth) {
                            Ok(Command::Auth {
                                mechanism: Some(m),
                                initial,
                            }) => format!(
                                "AUTH {}{}",
                                printable(m),
                                if initial.is_some() { " xxxxxxxx" } else { "" }
                            ),
                            Ok(_) => "AUTH".to_string(),
                            Err(_) => "AUTH (too many arguments)".to_string(),
                        };
                        self.log.debug(&format!("Received: \"{shown}\""));
                    }
                    _ => self.log.debug(&format!("Received: \"{}\"", printable(l))),
                }
            }
        }
    }
}

/// The user a checkpassword program started `--pop3d` as: `$USER`, as
/// checkpw and qmail's checkpassword set it, else the name of the real
/// uid (the chain's proof is checked at login: popper must run as them).
fn chain_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map_or_else(|| nix::unistd::getuid().to_string(), |u| u.name)
        })
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
    // Behind a balancer: the client's address from its PROXY header, read
    // before a byte is written (or TLS begins). The last link of a chain
    // has none to read: its first link did.
    if !matches!(cfg.mode, Mode::Pop3d { .. })
        && crate::proxy::accept(
            &cfg.proxy_trusted_networks,
            cfg.proxy_timeout,
            &log,
            &mut peer,
            stdin.as_fd(),
        )
        .is_err()
    {
        return ExitCode::from(3);
    }
    let (end, denied) = run(cfg, &log, &mut peer, stdin.as_fd(), stdout.as_fd());
    match cfg.mode {
        Mode::Pop3d { .. } => chain_exit_status(denied),
        _ => exit_status(end),
    }
}
