//! Every byte popper sends that is not message content is made here.
//!
//! One function per reply shape, so the wire texts (qpopper 2.53's, with the
//! RFC 2449/3206 response codes 4.x added) can be read, reviewed and tested
//! in one place. Replies always have a space after `+OK`/`-ERR` (RFC 1957
//! notes clients that depend on it) and end in CRLF. Anything echoed from
//! the client or from mail is bounded and made printable first, so no reply
//! can be split into two lines or grow without bound.

use crate::command::{Sub, Verb};
use crate::error::{AuthError, StorageError, StorageKind};
use crate::greeting::Greeting;
use crate::header::{self, FROM};
use crate::index::{Entry, Index, MsgIdx, MsgNum};
use crate::limits::{MAX_ECHO, MAX_LINE, MAX_XLST};
use crate::maildrop::Output;
use crate::marks::Marks;
use crate::sasl::{Mechanism, SaslError};

/// A positive single-line reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OkReply<'a> {
    /// `USER` accepted.
    PasswordRequired(&'a [u8]),
    /// Logged in: user, message count, total octets, and whether by APOP
    /// (2.53 words the two differently).
    LoggedIn {
        /// The user name.
        user: &'a [u8],
        /// Messages in the maildrop.
        count: usize,
        /// Their total size.
        octets: u64,
        /// APOP login (2.53's literal `message(s)`).
        apop: bool,
    },
    /// `STAT`
    Stat {
        /// Messages not deleted.
        count: usize,
        /// Their size.
        octets: u64,
    },
    /// `LIST n`
    Scan(MsgNum, u64),
    /// `RETR`/`TOP` head line.
    Octets(u64),
    /// `DELE n`
    Deleted(MsgNum),
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset {
        /// All messages.
        count: usize,
        /// Their size.
        octets: u64,
    },
    /// `LAST`
    Last(u32),
    /// `UIDL n`
    Uid(MsgNum, &'a [u8]),
    /// `STLS` accepted (RFC 2595's example text).
    BeginTls,
}

/// A negative reply. Each variant is one exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrReply {
    /// Unknown word, or a word not allowed in this state.
    UnknownCommand(Vec<u8>),
    /// Too few arguments for a command.
    TooFew(Verb),
    /// Too many arguments for a command.
    TooMany(Verb),
    /// More than five tokens on the line.
    TooManyTokens,
    /// The line was longer than 1023 bytes.
    LineTooLong,
    /// A `USER`/`APOP` name no account can have.
    BadUserName,
    /// No message with that number (the raw token is echoed).
    NoSuchMessage(Vec<u8>),
    /// RETR/TOP/LIST of a deleted message.
    MessageDeleted(MsgNum),
    /// DELE of a deleted message.
    AlreadyDeleted(MsgNum),
    /// `TOP n x` with a line count that is not a number.
    BadLineCount(Vec<u8>),
    /// `UIDL x`: not a number in 1..=count.
    UidlNotNumber(usize),
    /// `UIDL n` with n > count.
    UidlOutOfRange(usize),
    /// `UIDL n` of a deleted message.
    UidlDeleted(MsgNum),
    /// Authentication failed.
    Auth(AuthError, Vec<u8>),
    /// The maildrop failed.
    Storage(StorageError),
    /// Idle too long.
    Timeout,
    /// The client closed its side.
    Eof,
    /// SIGHUP/SIGTERM or a broken pipe.
    Hangup,
    /// STLS where TLS was configured but cannot work (`[SYS/PERM]`).
    TlsUnavailable,
    /// STLS once TLS is active.
    TlsActive,
    /// STLS after USER (RFC 2595: only before the login starts).
    StlsAfterUser,
    /// A SASL exchange failed or was cancelled.
    Sasl(SaslError),
    /// `max-auth-failures` reached: the connection is closed.
    TooManyFailures,
    /// `XTND` with an unknown subcommand (lower-cased).
    UnknownSub(Vec<u8>),
    /// Too few arguments for an `XTND` subcommand.
    SubTooFew(Sub),
    /// Too many arguments for an `XTND` subcommand.
    SubTooMany(Sub),
    /// `XTND XMIT`: popper does not send mail.
    XmitRefused,
    /// The update run at the end of an aborted session failed; `hangup`
    /// when the abort was a hang-up (2.53 words that one differently).
    AbortUpdateFailed {
        /// The session was aborted by SIGHUP/SIGTERM or a broken pipe.
        hangup: bool,
    },
}

/// A reply that shows a header of each message listed: the driver fetches
/// each field from the maildrop ([`crate::maildrop::Maildrop::header`])
/// and writes it with [`Listing::write_item`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// `EUIDL n`: one `+OK` line.
    EuidlOne,
    /// `EUIDL`: the list.
    Euidl,
    /// `XTND XLST name [n]`: the header name the client gave.
    Xlst(Vec<u8>),
}

impl Listing {
    /// The start of the header line looked for.
    pub fn prefix(&self) -> &[u8] {
        match self {
            Listing::EuidlOne | Listing::Euidl => FROM,
            Listing::Xlst(name) => name,
        }
    }

    /// The most of a field fetched (what is shown is bounded again here).
    pub fn max(&self) -> usize {
        match self {
            // "From:", blanks, and the 128 bytes shown.
            Listing::EuidlOne | Listing::Euidl => FROM.len() + MAX_LINE + MAX_ECHO,
            Listing::Xlst(_) => MAX_XLST,
        }
    }

    /// A `.` line ends it.
    pub fn is_multiline(&self) -> bool {
        !matches!(self, Listing::EuidlOne)
    }

    /// The `+OK` line before the items of a list.
    pub fn write_head(&self, out: &mut Vec<u8>) {
        match self {
            Listing::EuidlOne => {}
            Listing::Euidl => out.extend_from_slice(b"+OK uidl command accepted.\r\n"),
            Listing::Xlst(_) => {
                out.extend_from_slice(b"+OK xlst command accepted; headers coming.\r\n")
            }
        }
    }

    /// Message `n`'s item, from its entry and the field found (if any).
    ///
    /// The field came from mail: it is shown, never interpreted
    /// (CVE-2000-0442 was 2.53 passing EUIDL's `From:` value to printf
    /// as the format), and bounded. EUIDL's value is made printable and
    /// cut at 128 bytes as 4.x did (2.53 also sent its LF); XLST's lines
    /// are message content, sent as TOP would send them but with any CR,
    /// LF or NUL shown as `?`, each line dot-stuffed.
    pub fn write_item(&self, out: &mut Vec<u8>, n: MsgNum, e: &Entry, field: Option<&[u8]>) {
        match self {
            Listing::EuidlOne | Listing::Euidl => {
                if *self == Listing::EuidlOne {
                    out.extend_from_slice(b"+OK ");
                }
                push_fmt(out, format_args!("{} ", n.0));
                out.extend_from_slice(e.uid.as_bytes());
                push_fmt(out, format_args!(" {} ", e.size));
                out.extend_from_slice(&echo(field.map_or(&b""[..], header::from_value)));
                out.extend_from_slice(b"\r\n");
            }
            Listing::Xlst(_) => {
                let Some(field) = field else { return };
                let mut first = true;
                for l in field.split(|&b| b == b'\n') {
                    let l = l.strip_suffix(b"\r").unwrap_or(l);
                    if first {
                        push_fmt(out, format_args!("{} ", n.0));
                        first = false;
                    } else if l.first() == Some(&b'.') {
                        out.push(b'.');
                    }
                    out.extend(l.iter().map(|&b| match b {
                        b'\r' | b'\n' | 0 => b'?',
                        b => b,
                    }));
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// The `.` line after a list.
    pub fn write_end(&self, out: &mut Vec<u8>) {
        if self.is_multiline() {
            out.extend_from_slice(b".\r\n");
        }
    }
}

/// Any reply, single- or multi-line.
#[derive(Debug, Clone)]
pub enum Reply<'a> {
    /// The greeting banner.
    Greeting(&'a Greeting),
    /// `+OK Pop server at HOST signing off.`
    SignOff(&'a str),
    /// `+OK ...`
    Ok(OkReply<'a>),
    /// `-ERR ...`
    Err(ErrReply),
    /// `LIST` without argument.
    List(&'a Index, &'a Marks),
    /// `UIDL` without argument.
    Uidl(&'a Index, &'a Marks),
    /// `CAPA`: its capability lines.
    Capa(Vec<String>),
    /// `AUTH` alone: the mechanisms usable now (RFC 1734's listing).
    Mechanisms(Vec<Mechanism>),
    /// A SASL challenge: `+ ` and base64 (never `+OK`, RFC 5034).
    Continue(String),
}

/// An [`Output`] that is just a buffer, for [`Reply::write_to`].
struct Whole<'a>(&'a mut Vec<u8>);

impl Output for Whole<'_> {
    fn buffer(&mut self) -> &mut Vec<u8> {
        self.0
    }
    fn drain(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Reply<'_> {
    /// Appends the reply to `out`'s buffer, handing what has accumulated
    /// to the client whenever the host's threshold is passed: a LIST or
    /// UIDL of 200 000 messages (several MB) is never held whole, so the
    /// session's memory stays that of its index. An error means the
    /// client is gone (the caller's next flush says so).
    pub fn write_out(&self, out: &mut dyn Output) -> std::io::Result<()> {
        match self {
            Reply::List(index, marks) => {
                let (count, octets) = marks.visible_totals(index);
                push_fmt(
                    out.buffer(),
                    format_args!("+OK {count} messages ({octets} octets)\r\n"),
                );
                for (i, e) in index.entries().iter().enumerate() {
                    if !marks.is_deleted(MsgIdx(i)) {
                        push_fmt(out.buffer(), format_args!("{} {}\r\n", i + 1, e.size));
                        out.drain()?;
                    }
                }
                out.buffer().extend_from_slice(b".\r\n");
            }
            Reply::Uidl(index, marks) => {
                out.buffer()
                    .extend_from_slice(b"+OK uidl command accepted.\r\n");
                for (i, e) in index.entries().iter().enumerate() {
                    if !marks.is_deleted(MsgIdx(i)) {
                        let buf = out.buffer();
                        push_fmt(buf, format_args!("{} ", i + 1));
                        buf.extend_from_slice(e.uid.as_bytes());
                        buf.extend_from_slice(b"\r\n");
                        out.drain()?;
                    }
                }
                out.buffer().extend_from_slice(b".\r\n");
            }
            _ => self.write_to(out.buffer()),
        }
        Ok(())
    }

    /// Appends the reply, with its CRLFs (and terminator for multi-line
    /// replies), to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Greeting(g) => g.write_to(out),
            Reply::SignOff(host) => line(
                out,
                "+OK ",
                &[b"Pop server at ", host.as_bytes(), b" signing off."],
            ),
            Reply::Ok(r) => write_ok(r, out),
            Reply::Err(e) => write_err(e, out),
            Reply::List(..) | Reply::Uidl(..) => {
                // A Vec never needs draining.
                let _ = self.write_out(&mut Whole(out));
            }
            Reply::Capa(lines) => {
                out.extend_from_slice(b"+OK Capability list follows\r\n");
                for l in lines.iter() {
                    out.extend_from_slice(l.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b".\r\n");
            }
            Reply::Mechanisms(mechs) => {
                out.extend_from_slice(b"+OK List of SASL mechanisms follows\r\n");
                for m in mechs {
                    out.extend_from_slice(m.name().as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b".\r\n");
            }
            // Base64 (or empty): nothing the client sent is echoed here.
            Reply::Continue(text) => line(out, "+ ", &[text.as_bytes()]),
        }
    }

    /// True for `-ERR` replies (the host logs those).
    pub fn is_err(&self) -> bool {
        matches!(self, Reply::Err(_))
    }

    /// True for the replies whose `+OK` line a body and a `.` line follow
    /// (a RETR or TOP head is sent as [`OkReply::Octets`] and is one too).
    pub fn is_multiline(&self) -> bool {
        matches!(
            self,
            Reply::List(..)
                | Reply::Uidl(..)
                | Reply::Capa(_)
                | Reply::Mechanisms(_)
                | Reply::Ok(OkReply::Octets(_))
        )
    }

    /// The reply as bytes (for tests and logs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v
    }
}

fn write_ok(r: &OkReply<'_>, out: &mut Vec<u8>) {
    match *r {
        OkReply::PasswordRequired(name) => {
            line(out, "+OK ", &[b"Password required for ", &echo(name), b"."])
        }
        OkReply::LoggedIn {
            user,
            count,
            octets,
            apop,
        } => {
            let plural = match (apop, count) {
                (true, _) => "(s)",
                (false, 1) => "",
                (false, _) => "s",
            };
            out.extend_from_slice(b"+OK ");
            out.extend_from_slice(&echo(user));
            push_fmt(
                out,
                format_args!(" has {count} message{plural} ({octets} octets).\r\n"),
            );
        }
        OkReply::Stat { count, octets } => push_fmt(out, format_args!("+OK {count} {octets}\r\n")),
        OkReply::Scan(n, size) => push_fmt(out, format_args!("+OK {} {size}\r\n", n.0)),
        OkReply::Octets(size) => push_fmt(out, format_args!("+OK {size} octets\r\n")),
        OkReply::Deleted(n) => push_fmt(
            out,
            format_args!("+OK Message {} has been deleted.\r\n", n.0),
        ),
        // COMPAT qpopper 2.53: NOOP has no text, but the space stays.
        OkReply::Noop => out.extend_from_slice(b"+OK \r\n"),
        OkReply::Rset { count, octets } => push_fmt(
            out,
            format_args!("+OK Maildrop has {count} messages ({octets} octets)\r\n"),
        ),
        OkReply::Last(n) => push_fmt(out, format_args!("+OK {n} is the last read message.\r\n")),
        OkReply::Uid(n, uid) => {
            // 2.53 passed this line through printf as a format (a UID with `%`
            // in it was interpreted); we print it literally.
            push_fmt(out, format_args!("+OK {} ", n.0));
            out.extend_from_slice(uid);
            out.extend_from_slice(b"\r\n");
        }
        OkReply::BeginTls => out.extend_from_slice(b"+OK Begin TLS negotiation now.\r\n"),
    }
}

/// A response code (RFC 2449 §8, RFC 3206): tells the client whether to
/// ask the user, wait, or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `[AUTH]`: the credentials or the user's rights.
    Auth,
    /// `[IN-USE]`: another session has the maildrop.
    InUse,
    /// `[SYS/TEMP]`: a passing server problem.
    SysTemp,
    /// `[SYS/PERM]`: a server problem that needs the administrator.
    SysPerm,
}

impl Code {
    /// The code as sent, with its brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Auth => "[AUTH]",
            Code::InUse => "[IN-USE]",
            Code::SysTemp => "[SYS/TEMP]",
            Code::SysPerm => "[SYS/PERM]",
        }
    }
}

/// Which response code a negative reply carries: decided here and nowhere
/// else (Dovecot's one mapping function is the model).
pub fn code(e: &ErrReply) -> Option<Code> {
    match e {
        ErrReply::BadUserName | ErrReply::TooManyFailures | ErrReply::Sasl(_) => Some(Code::Auth),
        ErrReply::TlsUnavailable => Some(Code::SysPerm),
        ErrReply::Auth(a, _) => Some(match a {
            AuthError::ApopDbMode(_) => Code::SysPerm,
            AuthError::ApopDbLock(_)
            | AuthError::ApopDbUnavailable(_)
            | AuthError::Unavailable(_) => Code::SysTemp,
            _ => Code::Auth,
        }),
        ErrReply::Storage(s) => Some(match s.kind {
            StorageKind::InUse => Code::InUse,
            StorageKind::Temp => Code::SysTemp,
            StorageKind::Perm => Code::SysPerm,
        }),
        _ => None,
    }
}

/// Longest storage text sent (a path in it comes from the configuration).
const MAX_STORAGE_TEXT: usize = 400;

fn write_err(e: &ErrReply, out: &mut Vec<u8>) {
    let mut t = Vec::with_capacity(80);
    match e {
        ErrReply::UnknownCommand(w) => {
            t.extend_from_slice(b"Unknown command: \"");
            t.extend_from_slice(&echo(w));
            t.extend_from_slice(b"\".");
        }
        ErrReply::TooFew(v) => push_fmt(
            &mut t,
            format_args!("Too few arguments for the {} command.", v.word()),
        ),
        ErrReply::TooMany(v) => push_fmt(
            &mut t,
            format_args!("Too many arguments for the {} command.", v.word()),
        ),
        ErrReply::TooManyTokens => t.extend_from_slice(b"Too many arguments supplied."),
        ErrReply::LineTooLong => push_fmt(
            &mut t,
            format_args!("Command line too long; at most {MAX_LINE} bytes are allowed."),
        ),
        ErrReply::BadUserName => t.extend_from_slice(b"Invalid user name."),
        ErrReply::NoSuchMessage(raw) => {
            t.extend_from_slice(b"Message ");
            t.extend_from_slice(&echo(raw));
            t.extend_from_slice(b" does not exist.");
        }
        ErrReply::MessageDeleted(n) => {
            push_fmt(&mut t, format_args!("Message {} has been deleted.", n.0))
        }
        ErrReply::AlreadyDeleted(n) => push_fmt(
            &mut t,
            format_args!("Message {} has already been deleted.", n.0),
        ),
        ErrReply::BadLineCount(raw) => {
            t.extend_from_slice(b"Number of lines must be a non-negative number, not \"");
            t.extend_from_slice(&echo(raw));
            t.extend_from_slice(b"\".");
        }
        ErrReply::UidlNotNumber(count) => push_fmt(
            &mut t,
            format_args!("Parameter must be a number (range 1 to {count})"),
        ),
        ErrReply::UidlOutOfRange(count) => push_fmt(
            &mut t,
            format_args!("Message out of range.  {count} messages in mail drop."),
        ),
        ErrReply::UidlDeleted(n) => push_fmt(
            &mut t,
            format_args!("Message {} has been marked for deletion.", n.0),
        ),
        ErrReply::Auth(a, user) => auth_text(a, user, &mut t),
        ErrReply::Storage(s) => {
            t.extend_from_slice(&echo_long(s.reply.as_bytes(), MAX_STORAGE_TEXT))
        }
        ErrReply::Timeout => t.extend_from_slice(b"POP timeout"),
        ErrReply::Eof => t.extend_from_slice(b"POP EOF received"),
        ErrReply::Hangup => t.extend_from_slice(b"POP hangup"),
        ErrReply::TlsUnavailable => t.extend_from_slice(b"TLS is not available on this server"),
        ErrReply::TlsActive => t.extend_from_slice(b"TLS is already active"),
        ErrReply::StlsAfterUser => t.extend_from_slice(b"STLS is only allowed before USER"),
        ErrReply::Sasl(e) => t.extend_from_slice(sasl_text(*e).as_bytes()),
        ErrReply::TooManyFailures => {
            t.extend_from_slice(b"Too many failed login attempts; closing the connection.")
        }
        // COMPAT qpopper 3.x (`pop_get_subcommand.c`): both words shown.
        ErrReply::UnknownSub(w) => {
            t.extend_from_slice(b"Unknown command: \"xtnd ");
            t.extend_from_slice(&echo(w));
            t.extend_from_slice(b"\".");
        }
        ErrReply::SubTooFew(sub) => push_fmt(
            &mut t,
            format_args!("Too few arguments for the xtnd {} command.", sub.word()),
        ),
        ErrReply::SubTooMany(sub) => push_fmt(
            &mut t,
            format_args!("Too many arguments for the xtnd {} command.", sub.word()),
        ),
        // DEVIATION: qpopper piped the client's message to sendmail; a POP
        // server that relays mail is not popper's job (man page,
        // COMPATIBILITY).
        ErrReply::XmitRefused => {
            t.extend_from_slice(b"XTND XMIT is not supported: this server does not send mail.")
        }
        // COMPAT qpopper 2.53 (§3.6): "failed." after a hang-up, "failed!" else.
        ErrReply::AbortUpdateFailed { hangup: true } => {
            t.extend_from_slice(b"POP mailbox update failed.")
        }
        ErrReply::AbortUpdateFailed { hangup: false } => {
            t.extend_from_slice(b"POP mailbox update failed!")
        }
    }
    match code(e) {
        Some(c) => line(out, "-ERR ", &[c.as_str().as_bytes(), b" ", &t]),
        None => line(out, "-ERR ", &[&t]),
    }
}

fn sasl_text(e: SaslError) -> &'static str {
    match e {
        SaslError::Cancelled => "Authentication cancelled",
        SaslError::BadBase64 => "Invalid base64 data",
        SaslError::TooLong => "Authentication response too long",
        SaslError::Malformed => "Malformed authentication response",
        SaslError::Authzid => "Authorization identity must be the user's own",
        SaslError::UnknownMechanism => "Unrecognized authentication mechanism",
    }
}

fn auth_text(a: &AuthError, user: &[u8], t: &mut Vec<u8>) {
    let user = echo(user);
    match a {
        AuthError::BadPassword | AuthError::System(_) => {
            t.extend_from_slice(b"Password supplied for \"");
            t.extend_from_slice(&user);
            t.extend_from_slice(b"\" is incorrect.");
        }
        AuthError::AccountExpired | AuthError::PasswordExpired => {
            let what: &[u8] = if *a == AuthError::AccountExpired {
                b"account"
            } else {
                b"password"
            };
            t.extend_from_slice(b"\"");
            t.extend_from_slice(&user);
            t.extend_from_slice(b"\": ");
            t.extend_from_slice(what);
            t.extend_from_slice(b" expired.");
        }
        AuthError::UidBlocked(n) => {
            push_fmt(t, format_args!("Access is blocked for UIDs below {n}"))
        }
        AuthError::MustUseApop => {
            t.extend_from_slice(b"You must use APOP to connect to this server")
        }
        AuthError::ApopOnly => {
            t.extend_from_slice(b"You must use APOP authentication to connect to this server")
        }
        // COMPAT qpopper 4.1: its clear-text policy texts (qpopper.md §4).
        AuthError::ClearTextRefused => t.extend_from_slice(
            b"You must use stronger authentication such as APOP to connect to this server",
        ),
        AuthError::ClearTextNeedsTls => t.extend_from_slice(
            b"You must use TLS/SSL or stronger authentication such as APOP to connect to this server",
        ),
        AuthError::RootDenied => {
            t.extend_from_slice(b"User ");
            t.extend_from_slice(&user);
            t.extend_from_slice(b" login denied.");
        }
        AuthError::NotAuthorized => t.extend_from_slice(b"not authorized"),
        AuthError::Unavailable(_) => {
            t.extend_from_slice(b"Unable to check the password now; try again later.")
        }
        AuthError::PermissionDenied => t.extend_from_slice(b"Permission denied."),
        AuthError::DigestMismatch => t.extend_from_slice(b"authentication failure"),
        AuthError::ApopDbMode(m) => push_fmt(
            t,
            format_args!("POP authorization DB has wrong mode (0{m:o})"),
        ),
        AuthError::ApopDbLock(why) => {
            t.extend_from_slice(b"unable to lock POP authorization DB (");
            t.extend_from_slice(&echo(why.as_bytes()));
            t.push(b')');
        }
        // COMPAT qpopper 2.53: the parenthesis shows the user name (an
        // argument slip in 2.53 that scripts may match); the log has why.
        AuthError::ApopDbUnavailable(_) => {
            t.extend_from_slice(b"POP authorization DB not available (");
            t.extend_from_slice(&user);
            t.push(b')');
        }
    }
}

/// Bounds and sanitizes bytes echoed from the client or from files: at most
/// [`MAX_ECHO`] bytes, anything but printable ASCII shown as `?`.
pub fn echo(raw: &[u8]) -> Vec<u8> {
    echo_long(raw, MAX_ECHO)
}

fn echo_long(raw: &[u8], max: usize) -> Vec<u8> {
    raw.iter()
        .take(max)
        .map(|&b| if (0x20..0x7f).contains(&b) { b } else { b'?' })
        .collect()
}

fn line(out: &mut Vec<u8>, status: &str, parts: &[&[u8]]) {
    out.extend_from_slice(status.as_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\r\n");
}

fn push_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = out.write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(r: OkReply<'_>) -> String {
        String::from_utf8(Reply::Ok(r).to_bytes()).unwrap()
    }
    fn err(e: ErrReply) -> String {
        String::from_utf8(Reply::Err(e).to_bytes()).unwrap()
    }

    #[test]
    fn positive_texts() {
        assert_eq!(
            ok(OkReply::PasswordRequired(b"alice")),
            "+OK Password required for alice.\r\n"
        );
        let li = |count, apop| OkReply::LoggedIn {
            user: b"alice",
            count,
            octets: 148,
            apop,
        };
        assert_eq!(
            ok(li(1, false)),
            "+OK alice has 1 message (148 octets).\r\n"
        );
        assert_eq!(
            ok(li(0, false)),
            "+OK alice has 0 messages (148 octets).\r\n"
        );
        assert_eq!(
            ok(li(2, false)),
            "+OK alice has 2 messages (148 octets).\r\n"
        );
        assert_eq!(
            ok(li(1, true)),
            "+OK alice has 1 message(s) (148 octets).\r\n"
        );
        assert_eq!(
            ok(OkReply::Stat {
                count: 1,
                octets: 148
            }),
            "+OK 1 148\r\n"
        );
        assert_eq!(ok(OkReply::Scan(MsgNum(1), 148)), "+OK 1 148\r\n");
        assert_eq!(ok(OkReply::Octets(148)), "+OK 148 octets\r\n");
        assert_eq!(
            ok(OkReply::Deleted(MsgNum(1))),
            "+OK Message 1 has been deleted.\r\n"
        );
        assert_eq!(ok(OkReply::Noop), "+OK \r\n");
        assert_eq!(
            ok(OkReply::Rset {
                count: 1,
                octets: 148
            }),
            "+OK Maildrop has 1 messages (148 octets)\r\n"
        );
        assert_eq!(ok(OkReply::Last(0)), "+OK 0 is the last read message.\r\n");
        assert_eq!(ok(OkReply::Uid(MsgNum(1), b"%s%n")), "+OK 1 %s%n\r\n");
        assert_eq!(
            String::from_utf8(Reply::SignOff("h.example").to_bytes()).unwrap(),
            "+OK Pop server at h.example signing off.\r\n"
        );
    }

    #[test]
    fn negative_texts() {
        assert_eq!(
            err(ErrReply::UnknownCommand(b"foo".to_vec())),
            "-ERR Unknown command: \"foo\".\r\n"
        );
        assert_eq!(
            err(ErrReply::TooFew(Verb::User)),
            "-ERR Too few arguments for the user command.\r\n"
        );
        assert_eq!(
            err(ErrReply::TooMany(Verb::Stat)),
            "-ERR Too many arguments for the stat command.\r\n"
        );
        assert_eq!(
            err(ErrReply::TooManyTokens),
            "-ERR Too many arguments supplied.\r\n"
        );
        assert_eq!(
            err(ErrReply::NoSuchMessage(b"2".to_vec())),
            "-ERR Message 2 does not exist.\r\n"
        );
        assert_eq!(
            err(ErrReply::MessageDeleted(MsgNum(1))),
            "-ERR Message 1 has been deleted.\r\n"
        );
        assert_eq!(
            err(ErrReply::AlreadyDeleted(MsgNum(1))),
            "-ERR Message 1 has already been deleted.\r\n"
        );
        assert_eq!(
            err(ErrReply::UidlNotNumber(1)),
            "-ERR Parameter must be a number (range 1 to 1)\r\n"
        );
        assert_eq!(
            err(ErrReply::UidlOutOfRange(1)),
            "-ERR Message out of range.  1 messages in mail drop.\r\n"
        );
        assert_eq!(
            err(ErrReply::UidlDeleted(MsgNum(3))),
            "-ERR Message 3 has been marked for deletion.\r\n"
        );
        assert_eq!(err(ErrReply::Timeout), "-ERR POP timeout\r\n");
        assert_eq!(err(ErrReply::Eof), "-ERR POP EOF received\r\n");
        assert_eq!(err(ErrReply::Hangup), "-ERR POP hangup\r\n");
        assert_eq!(
            err(ErrReply::AbortUpdateFailed { hangup: false }),
            "-ERR POP mailbox update failed!\r\n"
        );
        assert_eq!(
            err(ErrReply::AbortUpdateFailed { hangup: true }),
            "-ERR POP mailbox update failed.\r\n"
        );
    }

    #[test]
    fn auth_texts() {
        let a = |e: AuthError| err(ErrReply::Auth(e, b"nosuch".to_vec()));
        assert_eq!(
            a(AuthError::BadPassword),
            "-ERR [AUTH] Password supplied for \"nosuch\" is incorrect.\r\n"
        );
        assert_eq!(
            a(AuthError::System("x".into())),
            "-ERR [AUTH] Password supplied for \"nosuch\" is incorrect.\r\n"
        );
        assert_eq!(
            a(AuthError::AccountExpired),
            "-ERR [AUTH] \"nosuch\": account expired.\r\n"
        );
        assert_eq!(
            a(AuthError::PasswordExpired),
            "-ERR [AUTH] \"nosuch\": password expired.\r\n"
        );
        assert_eq!(
            a(AuthError::UidBlocked(10)),
            "-ERR [AUTH] Access is blocked for UIDs below 10\r\n"
        );
        assert_eq!(
            a(AuthError::MustUseApop),
            "-ERR [AUTH] You must use APOP to connect to this server\r\n"
        );
        assert_eq!(
            a(AuthError::ApopOnly),
            "-ERR [AUTH] You must use APOP authentication to connect to this server\r\n"
        );
        assert_eq!(
            a(AuthError::RootDenied),
            "-ERR [AUTH] User nosuch login denied.\r\n"
        );
        assert_eq!(
            a(AuthError::NotAuthorized),
            "-ERR [AUTH] not authorized\r\n"
        );
        assert_eq!(
            a(AuthError::DigestMismatch),
            "-ERR [AUTH] authentication failure\r\n"
        );
        assert_eq!(
            a(AuthError::Unavailable("exit 111".into())),
            "-ERR [SYS/TEMP] Unable to check the password now; try again later.\r\n"
        );
        assert_eq!(
            a(AuthError::ApopDbMode(0o644)),
            "-ERR [SYS/PERM] POP authorization DB has wrong mode (0644)\r\n"
        );
        assert_eq!(
            a(AuthError::ApopDbLock(
                "Resource temporarily unavailable".into()
            )),
            "-ERR [SYS/TEMP] unable to lock POP authorization DB (Resource temporarily unavailable)\r\n"
        );
        assert_eq!(
            a(AuthError::ApopDbUnavailable("x".into())),
            "-ERR [SYS/TEMP] POP authorization DB not available (nosuch)\r\n"
        );
    }

    #[test]
    fn storage_errors_carry_their_kinds_code() {
        let e = |kind, reply: &str| {
            err(ErrReply::Storage(StorageError {
                kind,
                reply: reply.into(),
                log: "not sent".into(),
            }))
        };
        assert_eq!(e(StorageKind::InUse, "busy"), "-ERR [IN-USE] busy\r\n");
        assert_eq!(e(StorageKind::Temp, "later"), "-ERR [SYS/TEMP] later\r\n");
        assert_eq!(e(StorageKind::Perm, "a\r\nb"), "-ERR [SYS/PERM] a??b\r\n");
        let long = e(StorageKind::Perm, &"p".repeat(1000));
        assert_eq!(long.len(), "-ERR [SYS/PERM] \r\n".len() + MAX_STORAGE_TEXT);
    }

    #[test]
    fn multiline_replies_are_known_without_parsing_them() {
        let ix = Index::default();
        let marks = Marks::default();
        let caps: Vec<String> = Vec::new();
        assert!(Reply::List(&ix, &marks).is_multiline());
        assert!(Reply::Uidl(&ix, &marks).is_multiline());
        assert!(Reply::Capa(caps).is_multiline());
        assert!(Reply::Ok(OkReply::Octets(3)).is_multiline());
        assert!(
            !Reply::Ok(OkReply::Rset {
                count: 1,
                octets: 2
            })
            .is_multiline()
        );
        assert!(!Reply::Err(ErrReply::Eof).is_multiline());
    }

    #[test]
    fn client_error_texts() {
        assert_eq!(
            err(ErrReply::LineTooLong),
            "-ERR Command line too long; at most 1023 bytes are allowed.\r\n"
        );
        assert_eq!(
            err(ErrReply::BadUserName),
            "-ERR [AUTH] Invalid user name.\r\n"
        );
        assert_eq!(
            err(ErrReply::BadLineCount(b"-1".to_vec())),
            "-ERR Number of lines must be a non-negative number, not \"-1\".\r\n"
        );
    }

    #[test]
    fn header_listings_are_bounded_and_never_interpreted() {
        let e = Entry {
            size: 148,
            uid: crate::index::Uid::new(b"%n%n").unwrap(),
            seen: false,
        };
        let item = |l: &Listing, field: &[u8]| {
            let mut out = Vec::new();
            l.write_item(&mut out, MsgNum(7), &e, Some(field));
            String::from_utf8(out).unwrap()
        };
        let mut long = b"From: ".to_vec();
        long.extend(std::iter::repeat_n(b'%', 1000));
        let one = item(&Listing::EuidlOne, &long);
        assert_eq!(one, format!("+OK 7 %n%n 148 {}\r\n", "%".repeat(MAX_ECHO)));
        assert_eq!(
            item(&Listing::Euidl, b"From: a\0b\x1b\xff%x\r\n c"),
            "7 %n%n 148 a?b??%x\r\n"
        );
        assert_eq!(
            item(&Listing::Xlst(b"s".to_vec()), b"S: a\0\r\n\tb\rc"),
            "7 S: a?\r\n\tb?c\r\n"
        );
        let mut out = Vec::new();
        Listing::Xlst(b"s".to_vec()).write_item(&mut out, MsgNum(1), &e, None);
        assert!(out.is_empty(), "no field, no line");
        for l in [Listing::Euidl, Listing::Xlst(b"a".to_vec())] {
            let mut out = Vec::new();
            l.write_head(&mut out);
            l.write_end(&mut out);
            assert!(out.ends_with(b"\r\n.\r\n") && l.is_multiline());
        }
        assert!(!Listing::EuidlOne.is_multiline());
    }

    #[test]
    fn xtnd_texts() {
        assert_eq!(
            err(ErrReply::UnknownSub(b"foo".to_vec())),
            "-ERR Unknown command: \"xtnd foo\".\r\n"
        );
        assert_eq!(
            err(ErrReply::SubTooFew(Sub::Xlst)),
            "-ERR Too few arguments for the xtnd xlst command.\r\n"
        );
        assert_eq!(
            err(ErrReply::SubTooMany(Sub::Xmit)),
            "-ERR Too many arguments for the xtnd xmit command.\r\n"
        );
        assert_eq!(
            err(ErrReply::XmitRefused),
            "-ERR XTND XMIT is not supported: this server does not send mail.\r\n"
        );
    }

    #[test]
    fn echoed_bytes_are_bounded_and_printable() {
        let long = vec![b'a'; 5000];
        let r = err(ErrReply::UnknownCommand(long.clone()));
        assert_eq!(r.len(), "-ERR Unknown command: \"\".\r\n".len() + MAX_ECHO);
        let r = err(ErrReply::UnknownCommand(b"a\0b\r\n\xffc%s".to_vec()));
        assert_eq!(r, "-ERR Unknown command: \"a?b???c%s\".\r\n");
        assert_eq!(r.matches("\r\n").count(), 1);
    }
}
