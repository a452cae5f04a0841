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

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The version printed in the greeting and by `-V`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// BLOCK_UID as built: `POPPER_BLOCK_UID=1000 make` changes it (qpopper's
/// `popper.h` define); default 10 as in qpopper 2.53.
pub fn build_block_uid() -> u32 {
    option_env!("POPPER_BLOCK_UID")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// The one-line usage text (printed for a bad flag, with exit status 1).
pub const USAGE: &str = "Usage: popper [-d] [-s] [-R] [-V] [-b bulletin-dir] [-t trace-file] [-T timeout] [-f config-file]";

/// What `-b` and the bulletin settings say in a popper built without the
/// `bulletins` feature.
#[cfg(not(feature = "bulletins"))]
pub const NO_BULLETINS: &str =
    "this popper was built without bulletins (Cargo feature \"bulletins\")";

/// `--help`: what each flag does (the man page popper(8) has the rest).
pub const HELP: &str = "\
  -d            log every command (never a password) and more detail
  -s            log a statistics line for each session
  -R            do not look up the client's host name (the default)
  -V            print the version and the settings in effect, then exit
  -b DIR        deliver the bulletins in DIR (NUMBER.name files)
  -t FILE       write the log to FILE instead of syslog (turns on -d)
  -T SECONDS    idle timeout (default 120; 0 = none)
  -f FILE       read settings from FILE (`set NAME = VALUE` lines)

popper serves one POP3 session on stdin/stdout: run it from inetd, tcpd,
xinetd, systemd (Accept=yes) or tcpserver. See popper(8).";

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

/// The whole configuration of one popper process.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `-d` / `debug`: log every command (never a password) and more detail.
    pub debug: bool,
    /// `-s` / `statistics`: one `Stats:` line per session (qpopper §11).
    pub statistics: bool,
    /// `-t FILE` / `tracefile`: log to this file instead of syslog.
    pub trace_file: Option<PathBuf>,
    /// `-T N` / `timeout`: idle seconds before `-ERR POP timeout`; 0 = none.
    /// Default 120 (qpopper's POP_TIMEOUT; RFC 1939 asks for at least 600,
    /// but qpopper sites ran 120).
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
    /// `-V`: print the version and settings, then exit.
    pub print_version: bool,
    /// `-f FILE`: the configuration file read, if any.
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            debug: false,
            statistics: false,
            trace_file: None,
            timeout: 120,
            reverse_lookup: false,
            spool_dir: PathBuf::from("/var/mail"),
            apop_db: PathBuf::from("/etc/pop.auth"),
            block_uid: build_block_uid(),
            auth_file: option_env!("POPPER_AUTHFILE").map(PathBuf::from),
            nonauth_file: option_env!("POPPER_NONAUTHFILE").map(PathBuf::from),
            auth_fail_delay: Duration::from_secs(10),
            max_auth_failures: 3,
            update_on_abort: true,
            update_status: true,
            scan_index: true,
            log_facility: Facility::Local(0),
            shy: false,
            dotlock_stale_age: 300,
            lock_timeout: 20,
            #[cfg(feature = "bulletins")]
            bulldir: None,
            #[cfg(feature = "bulletins")]
            max_bulletins: 1,
            print_version: false,
            config_file: None,
        }
    }
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
        cfg.print_version = flags.version;
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
        match name {
            "debug" => self.debug = parse_bool(value)?,
            "statistics" => self.statistics = parse_bool(value)?,
            "tracefile" => self.trace_file = Some(parse_path(value)?),
            "timeout" => self.timeout = parse_num(value, 0, 86_400)?,
            "reverse-lookup" => self.reverse_lookup = parse_bool(value)?,
            "spool-dir" => self.spool_dir = parse_path(value)?,
            "apop-db" => self.apop_db = parse_path(value)?,
            "block-uid" => self.block_uid = parse_num(value, 0, u64::from(u32::MAX))? as u32,
            "auth-file" => self.auth_file = parse_list(value, "/etc/authfile")?,
            "nonauth-file" => self.nonauth_file = parse_list(value, "/etc/nonauthfile")?,
            "auth-fail-delay" => self.auth_fail_delay = parse_seconds(value)?,
            "max-auth-failures" => self.max_auth_failures = parse_num(value, 0, 1_000)? as u32,
            "update-on-abort" => self.update_on_abort = parse_bool(value)?,
            "update-status" | "update-status-headers" => self.update_status = parse_bool(value)?,
            "scan-index" => self.scan_index = parse_bool(value)?,
            "log-facility" => {
                self.log_facility = Facility::parse(value)
                    .ok_or_else(|| format!("unknown syslog facility \"{value}\""))?
            }
            "shy" => self.shy = parse_bool(value)?,
            "dotlock-stale-age" => self.dotlock_stale_age = parse_num(value, 1, 86_400)?,
            "lock-timeout" => self.lock_timeout = parse_num(value, 0, 3_600)?,
            #[cfg(feature = "bulletins")]
            "bulldir" => self.bulldir = parse_list(value, "/var/spool/bulls")?,
            #[cfg(feature = "bulletins")]
            "max-bulletins" => self.max_bulletins = parse_num(value, 0, 1_000)?,
            #[cfg(not(feature = "bulletins"))]
            "bulldir" | "max-bulletins" => return Err(NO_BULLETINS.to_string()),
            _ => return Err(format!("unknown setting \"{name}\"")),
        }
        Ok(())
    }

    /// The text `-V` prints: version, then every setting in effect.
    pub fn describe(&self) -> String {
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("(none)".to_string(), |p| p.display().to_string())
        };
        let features: Vec<&str> = [
            (cfg!(feature = "apop-only"), "apop-only"),
            (cfg!(feature = "bulletins"), "bulletins"),
        ]
        .iter()
        .filter_map(|(on, n)| on.then_some(*n))
        .collect();
        format!(
            "popper version {VERSION} (qpopper 2.53 compatible)\n\
             features: {}\n\
             block-uid = {}\n\
             auth-file = {}\n\
             nonauth-file = {}\n\
             spool-dir = {}\n\
             apop-db = {}\n\
             timeout = {}\n\
             auth-fail-delay = {}\n\
             max-auth-failures = {}\n\
             update-on-abort = {}\n\
             update-status = {}\n\
             scan-index = {}\n\
             statistics = {}\n\
             debug = {}\n\
             tracefile = {}\n\
             reverse-lookup = {}\n\
             log-facility = {}\n\
             shy = {}\n\
             dotlock-stale-age = {}\n\
             lock-timeout = {}\n\
             {}\
             config-file = {}\n",
            if features.is_empty() {
                "(none)".to_string()
            } else {
                features.join(" ")
            },
            self.block_uid,
            path(&self.auth_file),
            path(&self.nonauth_file),
            self.spool_dir.display(),
            self.apop_db.display(),
            self.timeout,
            self.auth_fail_delay.as_secs_f64(),
            self.max_auth_failures,
            self.update_on_abort,
            self.update_status,
            self.scan_index,
            self.statistics,
            self.debug,
            path(&self.trace_file),
            self.reverse_lookup,
            self.log_facility,
            self.shy,
            self.dotlock_stale_age,
            self.lock_timeout,
            self.describe_bulletins(),
            path(&self.config_file),
        )
    }
}

impl Config {
    #[cfg(feature = "bulletins")]
    fn describe_bulletins(&self) -> String {
        let dir = self
            .bulldir
            .as_ref()
            .map_or("(none)".to_string(), |p| p.display().to_string());
        format!("bulldir = {dir}\nmax-bulletins = {}\n", self.max_bulletins)
    }

    #[cfg(not(feature = "bulletins"))]
    fn describe_bulletins(&self) -> String {
        String::new()
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
                't' | 'T' | 'f' | 'b' => {
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
        assert_eq!(c.timeout, 120);
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
}
