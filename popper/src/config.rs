//! Every path, limit and policy popper has, with its default and where the
//! default comes from; the command line (qpopper's flags) and the
//! configuration file (qpopper 4's `-f` syntax) that change them.
//!
//! Precedence, lowest first: build-time defaults (`POPPER_BLOCK_UID`, …),
//! the `-f` file, command-line flags.
//!
//! File syntax (qpopper 4): one setting per line — `set NAME = VALUE`,
//! `set NAME` (turn on), `reset NAME` (turn off); `#` starts a comment. An
//! unknown setting or a bad value is a start-up error naming the file and
//! line, never silently ignored.
//!
//! Every setting is one row of [`SETTINGS`]: its name, its default (in the
//! file's own syntax, so the default goes through the same parser as any
//! value), how to set it and how `-V` shows it. [`Config::default`], the
//! file parser and `popper -V` are all driven by that table, and a test
//! compares it with popper(8)'s list.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pop3_core::capa::Expire;
use pop3_core::policy::ClearText;

use crate::tls;

/// The version printed in the greeting and by `-V`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// BLOCK_UID as built: `POPPER_BLOCK_UID=1000 make` changes it (qpopper's
/// `popper.h` define); default 10 as in qpopper 2.53.
pub fn build_block_uid() -> u32 {
    BLOCK_UID_DEFAULT.parse().unwrap_or(10)
}

/// The one-line usage text (printed for a bad flag, with exit status 1).
pub const USAGE: &str = "Usage: popper [-d] [-s] [-R] [-V] [-b bulletin-dir] [-t trace-file] [-T timeout] [-l 0|1|2] [-p 0-4] [-e login_delay=N,expire=N] [-f config-file]
       popper [flags] --popup HOST PROGRAM [ARGS...]
       popper [flags] --pop3d MAILDIR";

/// What `-b` and the bulletin settings say in a popper built without the
/// `bulletins` feature.
#[cfg(not(feature = "bulletins"))]
pub const NO_BULLETINS: &str =
    "this popper was built without bulletins (Cargo feature \"bulletins\")";

/// `--help`: what each flag does (the man page popper(8) has the rest).
pub const HELP: &str = "  -d            log every command (never a password) and more detail
  -s            log a statistics line for each session
  -R            do not look up the client's host name (the default)
  -V            print the version and the settings in effect, then exit
  -b DIR        deliver the bulletins in DIR (NUMBER.name files)
  -t FILE       write the log to FILE instead of syslog (turns on -d)
  -T SECONDS    idle timeout (default 600; 0 = none)
  -l 0|1|2      TLS: 0 none, 1 offer STLS, 2 TLS at once (port 995)
  -p 0-4        passwords in clear: 0 default, 1 never, 2 always, 3 local, 4 tls
  -e login_delay=SECONDS,expire=DAYS|never
                announce these policies in CAPA (RFC 2449 LOGIN-DELAY,
                EXPIRE); popper does not enforce them
  -f FILE       read settings from FILE (`set NAME = VALUE` lines)
  --popup HOST PROGRAM [ARGS...]
                the first link of a qmail checkpassword chain (as qmail-popup):
                greet and read the login, then run PROGRAM with it on fd 3
  --pop3d MAILDIR
                the last link (as qmail-pop3d): run by a checkpassword
                program as the user, serve MAILDIR

popper serves one POP3 session on stdin/stdout: run it from inetd, tcpd,
xinetd, systemd (Accept=yes) or tcpserver. See popper(8).";

/// How the process serves its connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// The whole server: greeting, login, mailbox.
    #[default]
    Serve,
    /// `--popup HOST PROGRAM ARGS…`: the first link of a qmail chain, as
    /// qmail-popup (with checkpw's APOP patch) is: the greeting and the
    /// login, then PROGRAM with the credentials on fd 3 serves the rest.
    Popup {
        /// The name in the greeting and the APOP timestamp.
        host: String,
        /// The checkpassword program and the chain after it.
        program: Vec<String>,
    },
    /// `--pop3d MAILDIR`: the last link, as qmail-pop3d is: started by a
    /// checkpassword program as the user in their home directory, it
    /// answers the PASS the first link read and serves MAILDIR.
    Pop3d {
        /// The Maildir, relative to the working directory (the home).
        maildir: PathBuf,
    },
}

/// syslog facilities popper accepts by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    /// LOG_MAIL
    Mail,
    /// LOG_DAEMON
    Daemon,
    /// LOG_USER
    User,
    /// LOG_LOCAL0..7
    Local(u8),
}

impl Facility {
    fn parse(s: &str) -> Option<Facility> {
        Some(match s.to_ascii_lowercase().trim_start_matches("log_") {
            "mail" => Facility::Mail,
            "daemon" => Facility::Daemon,
            "user" => Facility::User,
            l if l.len() == 6 && l.starts_with("local") => {
                let d = l.as_bytes()[5].wrapping_sub(b'0');
                if d > 7 {
                    return None;
                }
                Facility::Local(d)
            }
            _ => return None,
        })
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Facility::Mail => f.write_str("mail"),
            Facility::Daemon => f.write_str("daemon"),
            Facility::User => f.write_str("user"),
            Facility::Local(n) => write!(f, "local{n}"),
        }
    }
}

/// The whole configuration of one popper process. The fields' defaults
/// are [`SETTINGS`]' (see [`Config::default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `-d` / `debug`: log every command (never a password) and more detail.
    pub debug: bool,
    /// `-s` / `statistics`: one `Stats:` line per session (qpopper §11).
    pub statistics: bool,
    /// `-t FILE` / `tracefile`: log to this file instead of syslog.
    pub trace_file: Option<PathBuf>,
    /// `-T N` / `timeout`: idle seconds before `-ERR POP timeout`; 0 = none.
    /// Default 600: RFC 1939 §3 says an autologout timer "MUST be of at
    /// least 10 minutes' duration" (DEVIATION: qpopper's POP_TIMEOUT was
    /// 120, which cut off clients such as neomutt mid-session).
    pub timeout: u64,
    /// `reverse-lookup`: log the client's host name (looked up after
    /// authentication, never as root). `-R` turns it off. Default off.
    pub reverse_lookup: bool,
    /// `spool-dir`: where `USER` spools live. Default `/var/mail` (Debian).
    pub spool_dir: PathBuf,
    /// `apop-db`: the APOP secrets database (qpopper's `APOP` define, and
    /// where popauth(8) writes). Default `/etc/pop.auth`.
    pub apop_db: PathBuf,
    /// `block-uid`: uids at or below this may not log in with PASS.
    pub block_uid: u32,
    /// `auth-file`: the allow list; only users listed there may log in
    /// (qpopper's AUTHFILE). Off unless set here or at build time
    /// (`POPPER_AUTHFILE`); `set auth-file` alone means `/etc/authfile`.
    pub auth_file: Option<PathBuf>,
    /// `nonauth-file`: the deny list (qpopper's NONAUTHFILE). Off unless
    /// set; `set nonauth-file` alone means `/etc/nonauthfile`.
    pub nonauth_file: Option<PathBuf>,
    /// `auth-fail-delay`: pause after a failed PASS or APOP guess
    /// (qpopper: 10 s, PASS only).
    pub auth_fail_delay: Duration,
    /// `max-auth-failures`: failed PASS/APOP attempts after which the
    /// connection is closed; 0 = no limit. Default 3.
    pub max_auth_failures: u32,
    /// `update-on-abort`: apply DELEs when the client vanishes or times out
    /// (qpopper's behaviour; RFC 1939 says not to). Default on.
    pub update_on_abort: bool,
    /// `update-status`: write `Status: RO` for messages read with RETR
    /// (qpopper's behaviour). Off: sessions without DELE never write.
    pub update_status: bool,
    /// `scan-index`: keep each login's scan in `SPOOL/.USER.pop.index` so
    /// the next login of an unchanged spool need not read it. Default on.
    pub scan_index: bool,
    /// `log-facility`: syslog facility. Default local0 (qpopper 2.53).
    pub log_facility: Facility,
    /// `shy`: greet without the version (`+OK ready`).
    pub shy: bool,
    /// `dotlock-stale-age`: seconds after which a `USER.lock` is broken.
    pub dotlock_stale_age: u64,
    /// `lock-timeout`: seconds to wait for the spool locks before
    /// `-ERR [IN-USE]`.
    pub lock_timeout: u64,
    /// `-b DIR` / `bulldir`: the bulletin directory; no bulletins if unset.
    #[cfg(feature = "bulletins")]
    pub bulldir: Option<PathBuf>,
    /// `max-bulletins`: how many of the newest bulletins a new user gets
    /// (qpopper's NEWBULLCNT). Default 1.
    #[cfg(feature = "bulletins")]
    pub max_bulletins: u64,
    /// `maildir`: serve this Maildir instead of the mbox spool: relative to
    /// the user's home (qmail-pop3d's argument, `Maildir`) or absolute
    /// with `%u` for the user name. Off: the spool.
    pub maildir: Option<PathBuf>,
    /// `password-file`: check USER/PASS and APOP against this file in the
    /// Maildir (checkpw's `.password`), read as the user. Off unless set.
    pub password_file: Option<PathBuf>,
    /// `checkpassword`: authenticate through this checkpassword program
    /// (fd 3 carries `user\0password\0timestamp\0`). Off unless set.
    pub checkpassword: Option<PathBuf>,
    /// `checkpassword-timeout`: seconds a checkpassword program may take
    /// before it is killed and the login answered `[SYS/TEMP]`.
    pub checkpassword_timeout: Duration,
    /// `relay-ctrl-dir`: record each login for POP-before-SMTP as
    /// relay-ctrl-allow does (a file named by the client's address).
    pub relay_ctrl_dir: Option<PathBuf>,
    /// `proxy-trusted-networks`: connections from these networks start
    /// with a PROXY protocol header (v1 or v2) naming the real client.
    /// Empty (the default): PROXY is off, no connection is read as one.
    pub proxy_trusted_networks: crate::proxy::networks::Networks,
    /// `proxy-timeout`: how long a trusted proxy's header is awaited.
    pub proxy_timeout: Duration,
    /// `-p N` / `clear-text-password`: when a password may be sent in
    /// clear. Default qpopper's `default`.
    pub clear_text: ClearText,
    /// `-l N` / `tls-support` and the `tls-*` settings.
    pub tls: tls::Settings,
    /// `-e login_delay=N` / `login-delay`: the seconds between logins CAPA
    /// announces (RFC 2449 `LOGIN-DELAY`); not enforced. Off: not announced.
    pub login_delay: Option<u32>,
    /// `-e expire=N` / `expire`: the days (or `never`) CAPA announces mail
    /// is kept after retrieval (RFC 2449 `EXPIRE`); not enforced. Off: not
    /// announced.
    pub expire: Option<Expire>,
    /// How this process runs: a whole POP3 server (the default), or one
    /// link of a qmail checkpassword chain (`--popup`, `--pop3d`).
    pub mode: Mode,
    /// `-V`: print the version and settings, then exit.
    pub print_version: bool,
    /// `-f FILE`: the configuration file read, if any.
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    /// Every setting at its default from [`SETTINGS`] (the build's, where
    /// it has one), parsed as a file's value would be.
    fn default() -> Self {
        let mut c = Config {
            debug: false,
            statistics: false,
            trace_file: None,
            timeout: 0,
            reverse_lookup: false,
            spool_dir: PathBuf::new(),
            apop_db: PathBuf::new(),
            block_uid: 0,
            auth_file: None,
            nonauth_file: None,
            auth_fail_delay: Duration::ZERO,
            max_auth_failures: 0,
            update_on_abort: false,
            update_status: false,
            scan_index: false,
            log_facility: Facility::Mail,
            shy: false,
            dotlock_stale_age: 0,
            lock_timeout: 0,
            #[cfg(feature = "bulletins")]
            bulldir: None,
            #[cfg(feature = "bulletins")]
            max_bulletins: 0,
            maildir: None,
            password_file: None,
            checkpassword: None,
            checkpassword_timeout: Duration::ZERO,
            relay_ctrl_dir: None,
            proxy_trusted_networks: Default::default(),
            proxy_timeout: Duration::ZERO,
            clear_text: ClearText::Default,
            tls: tls::Settings::default(),
            login_delay: None,
            expire: None,
            mode: Mode::Serve,
            print_version: false,
            config_file: None,
        };
        for s in settings() {
            // A default that does not parse is a bug that the tests of
            // this module catch; it leaves the placeholder above.
            let _ = (s.set)(&mut c, s.default);
        }
        c
    }
}

/// One setting: everything popper knows about it, in one place.
pub struct Setting {
    /// qpopper 4's name where it has one (`spool-dir`), else ours.
    pub name: &'static str,
    /// Other names accepted for it (qpopper 4's longer spellings).
    pub aliases: &'static [&'static str],
    /// Its default, written as in the file (`600`, `/var/mail`, `true`,
    /// `false` for an optional path that is off).
    pub default: &'static str,
    /// Parses a value into the configuration.
    pub set: fn(&mut Config, &str) -> Result<(), String>,
    /// The value in effect, as `popper -V` prints it.
    pub show: fn(&Config) -> String,
}

/// `POPPER_BLOCK_UID` as built, else qpopper 2.53's 10.
const BLOCK_UID_DEFAULT: &str = match option_env!("POPPER_BLOCK_UID") {
    Some(v) => v,
    None => "10",
};

/// `POPPER_AUTHFILE` as built, else off.
const AUTH_FILE_DEFAULT: &str = match option_env!("POPPER_AUTHFILE") {
    Some(v) => v,
    None => "false",
};

/// `POPPER_NONAUTHFILE` as built, else off.
const NONAUTH_FILE_DEFAULT: &str = match option_env!("POPPER_NONAUTHFILE") {
    Some(v) => v,
    None => "false",
};

fn show_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map_or("(none)".to_string(), |p| p.display().to_string())
}

/// The settings every build has, in the order `popper -V` lists them.
const COMMON: &[Setting] = &[
    Setting {
        name: "block-uid",
        aliases: &[],
        default: BLOCK_UID_DEFAULT,
        set: |c, v| {
            c.block_uid = parse_num(v, 0, u64::from(u32::MAX))? as u32;
            Ok(())
        },
        show: |c| c.block_uid.to_string(),
    },
    Setting {
        name: "auth-file",
        aliases: &[],
        default: AUTH_FILE_DEFAULT,
        set: |c, v| {
            c.auth_file = parse_list(v, "/etc/authfile")?;
            Ok(())
        },
        show: |c| show_path(&c.auth_file),
    },
    Setting {
        name: "nonauth-file",
        aliases: &[],
        default: NONAUTH_FILE_DEFAULT,
        set: |c, v| {
            c.nonauth_file = parse_list(v, "/etc/nonauthfile")?;
            Ok(())
        },
        show: |c| show_path(&c.nonauth_file),
    },
    Setting {
        name: "spool-dir",
        aliases: &[],
        default: "/var/mail",
        set: |c, v| {
            c.spool_dir = parse_path(v)?;
            Ok(())
        },
        show: |c| c.spool_dir.display().to_string(),
    },
    Setting {
        name: "apop-db",
        aliases: &[],
        default: "/etc/pop.auth",
        set: |c, v| {
            c.apop_db = parse_path(v)?;
            Ok(())
        },
        show: |c| c.apop_db.display().to_string(),
    },
    Setting {
        name: "timeout",
        aliases: &[],
        default: "600",
        set: |c, v| {
            c.timeout = parse_num(v, 0, 86_400)?;
            Ok(())
        },
        show: |c| c.timeout.to_string(),
    },
    Setting {
        name: "auth-fail-delay",
        aliases: &[],
        default: "10",
        set: |c, v| {
            c.auth_fail_delay = parse_seconds(v)?;
            Ok(())
        },
        show: |c| c.auth_fail_delay.as_secs_f64().to_string(),
    },
    Setting {
        name: "max-auth-failures",
        aliases: &[],
        default: "3",
        set: |c, v| {
            c.max_auth_failures = parse_num(v, 0, 1_000)? as u32;
            Ok(())
        },
        show: |c| c.max_auth_failures.to_string(),
    },
    Setting {
        name: "update-on-abort",
        aliases: &[],
        default: "true",
        set: |c, v| {
            c.update_on_abort = parse_bool(v)?;
            Ok(())
        },
        show: |c| c.update_on_abort.to_string(),
    },
    Setting {
        name: "update-status",
        aliases: &["update-status-headers"],
        default: "true",
        set: |c, v| {
            c.update_status = parse_bool(v)?;
            Ok(())
        },
        show: |c| c.update_status.to_string(),
    },
    Setting {
        name: "scan-index",
        aliases: &[],
        default: "true",
        set: |c, v| {
            c.scan_index = parse_bool(v)?;
            Ok(())
        },
        show: |c| c.scan_index.to_string(),
    },
    Setting {
        name: "statistics",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.statistics = parse_bool(v)?;
            Ok(())
        },
        show: |c| c.statistics.to_string(),
    },
    Setting {
        name: "debug",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.debug = parse_bool(v)?;
            Ok(())
        },
        show: |c| c.debug.to_string(),
    },
    Setting {
        name: "tracefile",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.trace_file = match v {
                "false" => None,
                p => Some(parse_path(p)?),
            };
            Ok(())
        },
        show: |c| show_path(&c.trace_file),
    },
    Setting {
        name: "reverse-lookup",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.reverse_lookup = parse_bool(v)?;
            Ok(())
        },
        show: |c| c.reverse_lookup.to_string(),
    },
    Setting {
        name: "log-facility",
        aliases: &[],
        default: "local0",
        set: |c, v| {
            c.log_facility =
                Facility::parse(v).ok_or_else(|| format!("unknown syslog facility \"{v}\""))?;
            Ok(())
        },
        show: |c| c.log_facility.to_string(),
    },
    Setting {
        name: "shy",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.shy = parse_bool(v)?;
            Ok(())
        },
        show: |c| c.shy.to_string(),
    },
    Setting {
        name: "dotlock-stale-age",
        aliases: &[],
        default: "300",
        set: |c, v| {
            c.dotlock_stale_age = parse_num(v, 1, 86_400)?;
            Ok(())
        },
        show: |c| c.dotlock_stale_age.to_string(),
    },
    Setting {
        name: "lock-timeout",
        aliases: &[],
        default: "20",
        set: |c, v| {
            c.lock_timeout = parse_num(v, 0, 3_600)?;
            Ok(())
        },
        show: |c| c.lock_timeout.to_string(),
    },
    Setting {
        name: "maildir",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.maildir = match v {
                "false" => None,
                p => Some(parse_maildir(p)?),
            };
            Ok(())
        },
        show: |c| show_path(&c.maildir),
    },
    Setting {
        name: "password-file",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.password_file = match v {
                "false" => None,
                "true" => Some(PathBuf::from(".password")),
                p => Some(parse_relative(p)?),
            };
            Ok(())
        },
        show: |c| show_path(&c.password_file),
    },
    Setting {
        name: "checkpassword",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.checkpassword = match v {
                "false" => None,
                p => Some(parse_path(p)?),
            };
            Ok(())
        },
        show: |c| show_path(&c.checkpassword),
    },
    Setting {
        name: "checkpassword-timeout",
        aliases: &[],
        default: "20",
        set: |c, v| {
            c.checkpassword_timeout = Duration::from_secs(parse_num(v, 1, 600)?);
            Ok(())
        },
        show: |c| c.checkpassword_timeout.as_secs().to_string(),
    },
    Setting {
        name: "relay-ctrl-dir",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.relay_ctrl_dir = match v {
                "false" => None,
                "true" => Some(PathBuf::from("/var/spool/relay-ctrl/allow")),
                p => Some(parse_path(p)?),
            };
            Ok(())
        },
        show: |c| show_path(&c.relay_ctrl_dir),
    },
    Setting {
        name: "proxy-trusted-networks",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.proxy_trusted_networks = crate::proxy::networks::Networks::parse(v)?;
            Ok(())
        },
        show: |c| c.proxy_trusted_networks.to_string(),
    },
    Setting {
        name: "proxy-timeout",
        aliases: &[],
        default: "5",
        set: |c, v| {
            let (min, max) = (
                crate::limits::PROXY_TIMEOUT_MIN,
                crate::limits::PROXY_TIMEOUT_MAX,
            );
            c.proxy_timeout = Duration::from_secs(parse_num(v, min.as_secs(), max.as_secs())?);
            Ok(())
        },
        show: |c| c.proxy_timeout.as_secs().to_string(),
    },
    Setting {
        name: "clear-text-password",
        aliases: &[],
        default: "default",
        set: |c, v| {
            c.clear_text = ClearText::from_name(v).ok_or_else(|| {
                format!("\"{v}\" is not one of default, never, always, local, tls")
            })?;
            Ok(())
        },
        show: |c| c.clear_text.name().to_string(),
    },
    Setting {
        name: "tls-support",
        aliases: &[],
        default: "none",
        set: |c, v| {
            c.tls.support = tls::Support::from_name(v)
                .ok_or_else(|| format!("\"{v}\" is not one of none, stls, alternate-port"))?;
            Ok(())
        },
        show: |c| c.tls.support.name().to_string(),
    },
    Setting {
        name: "tls-server-cert-file",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.tls.cert_file = parse_optional_path(v)?;
            Ok(())
        },
        show: |c| show_path(&c.tls.cert_file),
    },
    Setting {
        name: "tls-private-key-file",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.tls.key_file = parse_optional_path(v)?;
            Ok(())
        },
        show: |c| show_path(&c.tls.key_file),
    },
    Setting {
        name: "tls-version",
        aliases: &[],
        default: "default",
        set: |c, v| {
            c.tls.versions = tls::Versions::parse(v)?;
            Ok(())
        },
        show: |c| c.tls.versions.describe().to_string(),
    },
    Setting {
        name: "tls-cipher-list",
        aliases: &[],
        default: "false",
        set: |c, v| {
            // COMPAT qpopper 4.1: an OpenSSL cipher string. rustls has no
            // equivalent (it offers only its own AEAD suites); accepted so
            // the file still loads, and logged as not applicable.
            c.tls.cipher_list = (v != "false").then(|| v.to_string());
            Ok(())
        },
        show: |c| {
            c.tls
                .cipher_list
                .clone()
                .unwrap_or_else(|| "(none)".to_string())
        },
    },
    Setting {
        name: "login-delay",
        aliases: &["login_delay"],
        default: "false",
        set: |c, v| {
            c.login_delay = match v {
                "false" => None,
                n => Some(parse_num(n, 0, u64::from(u32::MAX))? as u32),
            };
            Ok(())
        },
        show: |c| {
            c.login_delay
                .map_or("(none)".to_string(), |n| n.to_string())
        },
    },
    Setting {
        name: "expire",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.expire = match v {
                "false" => None,
                n if n.eq_ignore_ascii_case("never") => Some(Expire::Never),
                n => Some(Expire::Days(
                    parse_num(n, 0, u64::from(u32::MAX))
                        .map_err(|e| format!("{e}, nor \"never\""))? as u32,
                )),
            };
            Ok(())
        },
        show: |c| match c.expire {
            None => "(none)".to_string(),
            Some(Expire::Never) => "never".to_string(),
            Some(Expire::Days(n)) => n.to_string(),
        },
    },
];

/// The bulletin settings (the default feature `bulletins`).
#[cfg(feature = "bulletins")]
const BULLETINS: &[Setting] = &[
    Setting {
        name: "bulldir",
        aliases: &[],
        default: "false",
        set: |c, v| {
            c.bulldir = parse_list(v, "/var/spool/bulls")?;
            Ok(())
        },
        show: |c| show_path(&c.bulldir),
    },
    Setting {
        name: "max-bulletins",
        aliases: &[],
        default: "1",
        set: |c, v| {
            c.max_bulletins = parse_num(v, 0, 1_000)?;
            Ok(())
        },
        show: |c| c.max_bulletins.to_string(),
    },
];

/// Without the feature, its settings are refused by name.
#[cfg(not(feature = "bulletins"))]
const BULLETINS: &[Setting] = &[];

/// The names refused in this build, and why.
#[cfg(not(feature = "bulletins"))]
const REFUSED: &[(&str, &str)] = &[("bulldir", NO_BULLETINS), ("max-bulletins", NO_BULLETINS)];
#[cfg(feature = "bulletins")]
const REFUSED: &[(&str, &str)] = &[];

/// Every setting of this build, in `popper -V`'s order.
pub fn settings() -> impl Iterator<Item = &'static Setting> {
    COMMON.iter().chain(BULLETINS.iter())
}

/// The setting called `name` (or one of its aliases).
pub fn setting(name: &str) -> Option<&'static Setting> {
    settings().find(|s| s.name == name || s.aliases.contains(&name))
}

/// A configuration problem: a bad flag, or a bad line in the `-f` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Command-line problem (the usage text follows it).
    Usage(String),
    /// `--help` was asked for.
    Help,
    /// Problem in the configuration file.
    File {
        /// The file.
        file: PathBuf,
        /// 1-based line number (0 when the file could not be read).
        line: usize,
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Usage(s) => write!(f, "{s}"),
            ConfigError::Help => f.write_str("help"),
            ConfigError::File {
                file,
                line: 0,
                what,
            } => write!(f, "{}: {what}", file.display()),
            ConfigError::File { file, line, what } => {
                write!(f, "{}:{line}: {what}", file.display())
            }
        }
    }
}

/// Flags given on the command line; they override the file.
#[derive(Debug, Default)]
struct Flags {
    debug: bool,
    stats: bool,
    trace: Option<PathBuf>,
    timeout: Option<u64>,
    no_reverse: bool,
    version: bool,
    file: Option<PathBuf>,
    #[cfg(feature = "bulletins")]
    bulldir: Option<PathBuf>,
    tls: Option<tls::Support>,
    clear_text: Option<ClearText>,
    /// `-e`'s `name=value` pairs, as settings.
    policies: Vec<(&'static str, String)>,
    mode: Mode,
}

impl Config {
    /// Builds the configuration from `argv` (without the program name),
    /// reading the `-f` file through `read_file`.
    pub fn from_args(
        args: &[String],
        read_file: &dyn Fn(&Path) -> Result<String, String>,
    ) -> Result<Config, ConfigError> {
        let flags = parse_flags(args)?;
        let mut cfg = Config::default();
        if let Some(path) = &flags.file {
            let text = read_file(path).map_err(|what| ConfigError::File {
                file: path.clone(),
                line: 0,
                what,
            })?;
            cfg.apply_file(path, &text)?;
            cfg.config_file = Some(path.clone());
        }
        cfg.debug |= flags.debug;
        cfg.statistics |= flags.stats;
        if let Some(t) = flags.trace {
            cfg.trace_file = Some(t);
            // COMPAT qpopper 2.53: -t also turns debugging on.
            cfg.debug = true;
        }
        if let Some(t) = flags.timeout {
            cfg.timeout = t;
        }
        if flags.no_reverse {
            cfg.reverse_lookup = false;
        }
        #[cfg(feature = "bulletins")]
        if let Some(d) = flags.bulldir {
            cfg.bulldir = Some(d);
        }
        if let Some(t) = flags.tls {
            cfg.tls.support = t;
        }
        if let Some(p) = flags.clear_text {
            cfg.clear_text = p;
        }
        for (name, v) in &flags.policies {
            cfg.set(name, v).map_err(ConfigError::Usage)?;
        }
        cfg.print_version = flags.version;
        cfg.mode = flags.mode;
        Ok(cfg)
    }

    /// Applies the lines of a configuration file.
    pub fn apply_file(&mut self, file: &Path, text: &str) -> Result<(), ConfigError> {
        for (n, raw) in text.lines().enumerate() {
            let err = |what: String| ConfigError::File {
                file: file.to_path_buf(),
                line: n + 1,
                what,
            };
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            let (verb, rest) = split_word(line);
            let (name, value) = match rest.split_once('=') {
                Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
                None => {
                    let (n, v) = split_word(rest);
                    (n, (!v.is_empty()).then(|| unquote(v.trim())))
                }
            };
            match verb {
                "set" => self.set(name, value.unwrap_or("true")).map_err(err)?,
                "reset" if value.is_none() => self.set(name, "false").map_err(err)?,
                "reset" => return Err(err(format!("\"reset {name}\" takes no value"))),
                _ => {
                    return Err(err(format!(
                        "expected \"set\" or \"reset\", found \"{verb}\""
                    )));
                }
            }
        }
        Ok(())
    }

    /// Sets one named setting from its text value.
    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
            return Err(why.to_string());
        }
        match setting(name) {
            Some(s) => (s.set)(self, value),
            None => Err(format!("unknown setting \"{name}\"")),
        }
    }

    /// The text `-V` prints: version, then every setting in effect.
    pub fn describe(&self) -> String {
        let features: Vec<&str> = [
            (cfg!(feature = "apop-only"), "apop-only"),
            (cfg!(feature = "bulletins"), "bulletins"),
        ]
        .iter()
        .filter_map(|(on, n)| on.then_some(*n))
        .collect();
        let mut out = format!(
            "popper version {VERSION} (qpopper 2.53 compatible)\nfeatures: {}\n",
            if features.is_empty() {
                "(none)".to_string()
            } else {
                features.join(" ")
            }
        );
        for s in settings() {
            out.push_str(&format!("{} = {}\n", s.name, (s.show)(self)));
        }
        out.push_str(&format!("config-file = {}\n", show_path(&self.config_file)));
        out
    }
}

/// getopt-style parsing of `-d -s -R -V -t FILE -T N -f FILE` (flags may be
/// grouped, values attached or separate).
fn parse_flags(args: &[String]) -> Result<Flags, ConfigError> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--help" || a == "-h" {
            return Err(ConfigError::Help);
        }
        if a == "--" {
            break;
        }
        // The chain modes take the rest of the command line, as
        // qmail-popup and qmail-pop3d do.
        if a == "--popup" {
            let rest = &args[i..];
            let [host, program @ ..] = rest else {
                return Err(ConfigError::Usage(
                    "popper: --popup needs HOST PROGRAM [ARGS...]".into(),
                ));
            };
            if program.is_empty() || host.is_empty() {
                return Err(ConfigError::Usage(
                    "popper: --popup needs HOST PROGRAM [ARGS...]".into(),
                ));
            }
            f.mode = Mode::Popup {
                host: host.clone(),
                program: program.to_vec(),
            };
            return Ok(f);
        }
        if a == "--pop3d" {
            match &args[i..] {
                [dir] if !dir.is_empty() => {
                    f.mode = Mode::Pop3d {
                        maildir: PathBuf::from(dir),
                    };
                    return Ok(f);
                }
                _ => {
                    return Err(ConfigError::Usage(
                        "popper: --pop3d needs exactly one MAILDIR".into(),
                    ));
                }
            }
        }
        let Some(opts) = a.strip_prefix('-').filter(|o| !o.is_empty()) else {
            return Err(ConfigError::Usage(format!(
                "popper: unexpected argument \"{a}\""
            )));
        };
        let chars = opts.char_indices();
        for (pos, c) in chars {
            match c {
                'd' => f.debug = true,
                's' => f.stats = true,
                'R' => f.no_reverse = true,
                'V' => f.version = true,
                't' | 'T' | 'f' | 'b' | 'l' | 'p' | 'e' => {
                    let attached = &opts[pos + c.len_utf8()..];
                    let value = if !attached.is_empty() {
                        attached.to_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(ConfigError::Usage(format!(
                            "popper: option requires an argument -- '{c}'"
                        )));
                    };
                    match c {
                        't' => f.trace = Some(PathBuf::from(value)),
                        'f' => f.file = Some(PathBuf::from(value)),
                        #[cfg(feature = "bulletins")]
                        'b' => f.bulldir = Some(PathBuf::from(value)),
                        #[cfg(not(feature = "bulletins"))]
                        'b' => {
                            return Err(ConfigError::Usage(format!("popper: -b: {NO_BULLETINS}")));
                        }
                        'l' => {
                            f.tls = Some(tls::Support::from_number(&value).ok_or_else(|| {
                                ConfigError::Usage(format!(
                                    "popper: -l: \"{value}\" is not 0 (no TLS), 1 (STLS) or 2 (TLS at once)"
                                ))
                            })?)
                        }
                        'e' => parse_policies(&value, &mut f.policies)?,
                        'p' => {
                            f.clear_text = Some(ClearText::from_number(&value).ok_or_else(|| {
                                ConfigError::Usage(format!(
                                    "popper: -p: \"{value}\" is not 0 (default), 1 (never), 2 (always), 3 (local) or 4 (tls)"
                                ))
                            })?)
                        }
                        _ => {
                            f.timeout = Some(
                                parse_num(&value, 0, 86_400)
                                    .map_err(|e| ConfigError::Usage(format!("popper: -T: {e}")))?,
                            )
                        }
                    }
                    break;
                }
                other => {
                    return Err(ConfigError::Usage(format!(
                        "popper: invalid option -- '{other}'"
                    )));
                }
            }
        }
    }
    if i < args.len() {
        return Err(ConfigError::Usage(format!(
            "popper: unexpected argument \"{}\"",
            args[i]
        )));
    }
    Ok(f)
}

/// qpopper 4's `-e login_delay=N,expire=N`: each pair is the setting of
/// that name (`login_delay` is `login-delay`), checked now.
fn parse_policies(value: &str, out: &mut Vec<(&'static str, String)>) -> Result<(), ConfigError> {
    let usage = |what: String| ConfigError::Usage(format!("popper: -e: {what}"));
    for pair in value.split(',').filter(|p| !p.is_empty()) {
        let Some((name, v)) = pair.split_once('=') else {
            return Err(usage(format!("\"{pair}\" is not NAME=VALUE")));
        };
        let s = match name.trim() {
            "login_delay" | "login-delay" => setting("login-delay"),
            "expire" => setting("expire"),
            _ => None,
        }
        .ok_or_else(|| usage(format!("\"{name}\" is not login_delay or expire")))?;
        let v = v.trim();
        (s.set)(&mut Config::default(), v).map_err(|e| usage(format!("{name}: {e}")))?;
        out.push((s.name, v.to_string()));
    }
    Ok(())
}

fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("\"{v}\" is not true or false")),
    }
}

fn parse_num(v: &str, min: u64, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("\"{v}\" is not a whole number from {min} to {max}")),
    }
}

fn parse_seconds(v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(s) if (0.0..=3600.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("\"{v}\" is not a number of seconds from 0 to 3600")),
    }
}

/// A list setting: `set NAME` (the default path), `set NAME = PATH`, or
/// `reset NAME` (off).
fn parse_list(v: &str, default: &str) -> Result<Option<PathBuf>, String> {
    match v {
        "true" => Ok(Some(PathBuf::from(default))),
        "false" => Ok(None),
        p => parse_path(p).map(Some),
    }
}

/// A path inside another (the Maildir's `.password`): relative, without
/// `..` or NUL.
fn parse_relative(v: &str) -> Result<PathBuf, String> {
    let p = Path::new(v);
    let ok = !v.is_empty()
        && !v.contains('\0')
        && p.is_relative()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(format!("\"{v}\" is not a relative path without \"..\""))
    }
}

/// `maildir`: relative to the home, or absolute (where `%u` is the user).
fn parse_maildir(v: &str) -> Result<PathBuf, String> {
    if v.starts_with('/') {
        parse_path(v)
    } else {
        parse_relative(v)
    }
}

fn parse_optional_path(v: &str) -> Result<Option<PathBuf>, String> {
    match v {
        "false" => Ok(None),
        p => parse_path(p).map(Some),
    }
}

fn parse_path(v: &str) -> Result<PathBuf, String> {
    if v.starts_with('/') && !v.contains('\0') {
        Ok(PathBuf::from(v))
    } else {
        Err(format!("\"{v}\" is not an absolute path"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn no_file(_: &Path) -> Result<String, String> {
        Err("no such file".into())
    }

    #[test]
    fn defaults() {
        let c = Config::from_args(&[], &no_file).unwrap();
        assert_eq!(c.timeout, 600, "RFC 1939's ten minutes");
        assert_eq!(c.spool_dir, PathBuf::from("/var/mail"));
        assert_eq!(c.auth_fail_delay, Duration::from_secs(10));
        assert!(c.update_on_abort && c.update_status && !c.debug && !c.statistics);
        assert_eq!(c.log_facility, Facility::Local(0));
    }

    #[test]
    fn qpopper_flags() {
        let c = Config::from_args(&args("-s -d -T 30 -R"), &no_file).unwrap();
        assert!(c.statistics && c.debug && !c.reverse_lookup);
        assert_eq!(c.timeout, 30);
        let c = Config::from_args(&args("-dsT5 -t/tmp/trace"), &no_file).unwrap();
        assert_eq!(c.timeout, 5);
        assert_eq!(c.trace_file, Some(PathBuf::from("/tmp/trace")));
        let c = Config::from_args(&args("-t /tmp/t"), &no_file).unwrap();
        assert!(c.debug, "-t turns debugging on");
        assert!(
            Config::from_args(&args("-V"), &no_file)
                .unwrap()
                .print_version
        );
    }

    #[test]
    fn qpopper4s_e_flag_and_its_settings() {
        let c = Config::from_args(&args("-e login_delay=900,expire=30"), &no_file).unwrap();
        assert_eq!(
            (c.login_delay, c.expire),
            (Some(900), Some(Expire::Days(30)))
        );
        let c = Config::from_args(&args("-eexpire=NEVER"), &no_file).unwrap();
        assert_eq!((c.login_delay, c.expire), (None, Some(Expire::Never)));
        let d = Config::default();
        assert_eq!((d.login_delay, d.expire), (None, None));
        let text = "set login-delay = 60\nset expire = never\n";
        let read = |_: &Path| Ok(text.to_string());
        let c = Config::from_args(&args("-f /p.conf -e expire=0"), &read).unwrap();
        assert_eq!(c.login_delay, Some(60));
        assert_eq!(c.expire, Some(Expire::Days(0)), "the flag wins");
        assert!(c.describe().contains("login-delay = 60\nexpire = 0\n"));
        for bad in [
            "-e",
            "-e login_delay",
            "-e login_delay=x",
            "-e expire=-1",
            "-e expire=soon",
            "-e delay=5",
        ] {
            assert!(
                matches!(
                    Config::from_args(&args(bad), &no_file),
                    Err(ConfigError::Usage(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in ["-x", "-T", "-T abc", "-T -1", "extra", "-s extra", "-b"] {
            assert!(
                matches!(
                    Config::from_args(&args(bad), &no_file),
                    Err(ConfigError::Usage(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            Config::from_args(&args("--help"), &no_file),
            Err(ConfigError::Help)
        );
    }

    #[test]
    fn file_settings_and_flag_precedence() {
        let text = "# popper.conf\nset timeout = 60\nset statistics\nreset update-on-abort\nset spool-dir = \"/var/spool/mail\"  # comment\n\nset auth-fail-delay = 0.25\nset log-facility = mail\nset block-uid = 1000\n";
        let read = |_: &Path| Ok(text.to_string());
        let c = Config::from_args(&args("-f /etc/popper.conf -T 7"), &read).unwrap();
        assert_eq!(c.timeout, 7, "the flag wins");
        assert!(c.statistics && !c.update_on_abort);
        assert_eq!(c.spool_dir, PathBuf::from("/var/spool/mail"));
        assert_eq!(c.auth_fail_delay, Duration::from_millis(250));
        assert_eq!(c.log_facility, Facility::Mail);
        assert_eq!(c.block_uid, 1000);
        assert_eq!(c.config_file, Some(PathBuf::from("/etc/popper.conf")));
    }

    #[test]
    fn file_errors_name_the_line() {
        for (text, line) in [
            ("set nosuch = 1\n", 1),
            ("\nset timeout = x\n", 2),
            ("set spool-dir = relative\n", 1),
            ("frob timeout\n", 1),
            ("set debug = maybe\n", 1),
            ("reset debug = 1\n", 1),
            ("set log-facility = local9\n", 1),
        ] {
            let mut c = Config::default();
            match c.apply_file(Path::new("/etc/p.conf"), text) {
                Err(ConfigError::File { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let e = Config::from_args(&args("-f /nonexistent"), &no_file).unwrap_err();
        assert_eq!(e.to_string(), "/nonexistent: no such file");
    }

    #[test]
    fn list_settings() {
        let mut c = Config::default();
        c.apply_file(
            Path::new("/f"),
            "set auth-file\nset nonauth-file = /etc/pop.deny\n",
        )
        .unwrap();
        assert_eq!(c.auth_file, Some(PathBuf::from("/etc/authfile")));
        assert_eq!(c.nonauth_file, Some(PathBuf::from("/etc/pop.deny")));
        c.apply_file(Path::new("/f"), "reset auth-file\n").unwrap();
        assert_eq!(c.auth_file, None);
        assert!(
            c.apply_file(Path::new("/f"), "set auth-file = relative\n")
                .is_err()
        );
    }

    #[cfg(feature = "bulletins")]
    #[test]
    fn bulletin_settings() {
        let c = Config::from_args(&args("-b /var/spool/bulls -s"), &no_file).unwrap();
        assert_eq!(c.bulldir, Some(PathBuf::from("/var/spool/bulls")));
        assert_eq!(c.max_bulletins, 1);
        let read = |_: &Path| Ok("set bulldir = /srv/b\nset max-bulletins = 3\n".to_string());
        let c = Config::from_args(&args("-f /p.conf"), &read).unwrap();
        assert_eq!(c.bulldir, Some(PathBuf::from("/srv/b")));
        assert_eq!(c.max_bulletins, 3);
        let c = Config::from_args(&args("-f /p.conf -b/other"), &read).unwrap();
        assert_eq!(c.bulldir, Some(PathBuf::from("/other")), "the flag wins");
        assert!(
            c.describe()
                .contains("bulldir = /other\nmax-bulletins = 3\n")
        );
        let mut c = Config::default();
        assert!(
            c.apply_file(Path::new("/f"), "set max-bulletins = x\n")
                .is_err()
        );
        assert!(
            c.apply_file(Path::new("/f"), "set bulldir = relative\n")
                .is_err()
        );
    }

    #[cfg(not(feature = "bulletins"))]
    #[test]
    fn without_bulletins_b_and_its_settings_are_refused() {
        let e = Config::from_args(&args("-s -b /var/spool/bulls"), &no_file).unwrap_err();
        assert_eq!(e, ConfigError::Usage(format!("popper: -b: {NO_BULLETINS}")));
        for text in ["set bulldir = /srv/b\n", "set max-bulletins = 2\n"] {
            let e = Config::default()
                .apply_file(Path::new("/f"), text)
                .unwrap_err();
            assert!(e.to_string().contains("built without bulletins"), "{e}");
        }
        assert!(!Config::default().describe().contains("bulldir"));
    }

    #[test]
    fn describe_lists_block_uid() {
        assert!(
            Config::default()
                .describe()
                .contains(&format!("block-uid = {}\n", build_block_uid()))
        );
    }

    #[test]
    fn every_default_parses_and_every_name_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in settings() {
            let mut c = Config::default();
            assert_eq!((s.set)(&mut c, s.default), Ok(()), "{}", s.name);
            for n in std::iter::once(s.name).chain(s.aliases.iter().copied()) {
                assert!(seen.insert(n), "{n} twice");
            }
        }
        // -V lists exactly the table, in its order.
        let v = Config::default().describe();
        let names: Vec<&str> = v
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
            .filter(|k| *k != "config-file")
            .collect();
        let table: Vec<&str> = settings().map(|s| s.name).collect();
        assert_eq!(names, table);
    }

    /// popper(8)'s SETTINGS list: every setting of the table, with the
    /// table's default (`on`/`off`/`none` for true/false).
    #[test]
    fn the_man_page_lists_every_setting_with_its_default() {
        let page = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/popper.8"),
        )
        .unwrap();
        for s in settings() {
            let roff = s.name.replace('-', "\\-");
            let line = page
                .lines()
                .find(|l| {
                    l.starts_with(".BR ")
                        && l.contains("(default")
                        && l.split([' ', '"']).any(|w| w == roff)
                })
                .unwrap_or_else(|| panic!("popper(8) has no entry for {}", s.name));
            let after = line.split("(default ").nth(1).unwrap();
            let shown: String = after
                .split([')', ';', ','])
                .next()
                .unwrap()
                .replace(['"', ' '], "")
                .replace("\\-", "-");
            let want: &[&str] = match s.default {
                "true" => &["on"],
                "false" => &["off", "none"],
                d => &[d],
            };
            let built = s.name == "block-uid" && line.contains("as built");
            assert!(
                want.contains(&shown.as_str()) || (built && shown == "10"),
                "{}: popper(8) says {shown:?}, the table {:?}",
                s.name,
                s.default
            );
        }
    }
}
