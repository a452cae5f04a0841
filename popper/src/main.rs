//! `popper`: the POP3/APOP server, run per connection by inetd, tcpd,
//! xinetd, systemd or tcpserver with the client on stdin/stdout.
//!
//! This file only turns argv into a [`Config`] and hands over to
//! [`popper::serve::serve_stdio`]; a configuration it cannot use is
//! refused here, to the client, the log and a shell user alike.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use popper::config::{Config, ConfigError, USAGE};
use popper::log::Log;

/// The `-f` file is read as root; it is root's file, but is still bounded.
const MAX_CONFIG: u64 = 1 << 20;

fn read_config(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.take(MAX_CONFIG + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(format!("larger than {MAX_CONFIG} bytes"));
    }
    Ok(text)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cfg = match Config::from_args(&args, &read_config) {
        Ok(c) => c,
        Err(ConfigError::Help) => {
            println!("{USAGE}\n\n{}", popper::config::HELP);
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Usage(msg)) => {
            eprintln!("{msg}\n{USAGE}");
            return ExitCode::from(1);
        }
        Err(e @ ConfigError::File { .. }) => {
            refuse_config(&args, &e);
            return ExitCode::from(1);
        }
    };
    if cfg.print_version {
        print!("{}", cfg.describe());
        warn_settings(&cfg);
        return ExitCode::SUCCESS;
    }
    popper::serve::serve_stdio(&cfg)
}

/// The longest text after `-ERR ` on the wire: RFC 1939 §3 allows 512
/// octets in a reply line, CRLF included.
const MAX_REPLY_TEXT: usize = 500;

/// A `-f` file popper cannot use (issue 19). Under inetd stdout and stderr
/// are both the client's socket, so qpopper's stderr line reached the
/// client raw and no log at all. Now:
/// * the log gets it (the command line's `-t` file, else syslog at the
///   default facility: the file that failed may be what set them);
/// * the client (stdout when it is not a terminal: a socket or a pipe)
///   gets one `-ERR [SYS/PERM]` line with qpopper's words, then the
///   connection closes;
/// * a shell user gets qpopper's stderr line, unless stderr is that same
///   client connection.
fn refuse_config(args: &[String], e: &ConfigError) {
    // DEVIATION: qpopper 2.53 wrote only the stderr line (popper(8),
    // COMPATIBILITY).
    let what = format!("Unable to process config file {e}");
    startup_log(args).err(&what);
    let stdout = std::io::stdout();
    let to_client = !stdout.is_terminal();
    if to_client {
        // Printable ASCII only (a CR or LF from the file cannot end the
        // line early), and within a reply's length.
        let mut text = popper::log::printable(what.as_bytes());
        text.truncate(MAX_REPLY_TEXT - "[SYS/PERM] ".len());
        let mut out = stdout.lock();
        let _ = write!(out, "-ERR [SYS/PERM] {text}\r\n");
        let _ = out.flush();
    }
    if !to_client || !same_open_file(std::io::stdout().as_fd(), std::io::stderr().as_fd()) {
        eprintln!("popper: {what}");
    }
}

/// The log as the command line alone sets it (`-t`, `-d`; syslog at the
/// default facility otherwise), for what happens before a configuration
/// exists.
fn startup_log(args: &[String]) -> Log {
    let flags = Config::from_args(args, &|_| Ok(String::new())).unwrap_or_default();
    flags
        .trace_file
        .as_deref()
        .and_then(|t| Log::trace_file(t, flags.debug).ok())
        .unwrap_or_else(|| Log::syslog(flags.log_facility, flags.debug))
}

/// True when `a` and `b` are one open file (one socket inetd gave as
/// stdout and stderr), not merely two of the same kind.
fn same_open_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    let id = |fd: BorrowedFd<'_>| {
        let m = File::from(fd.try_clone_to_owned().ok()?).metadata().ok()?;
        Some((m.dev(), m.ino()))
    };
    matches!((id(a), id(b)), (Some(x), Some(y)) if x == y)
}

/// `-V`: warnings, on stderr, about settings that will not work as meant,
/// for the administrator checking them (every session logs them too).
fn warn_settings(cfg: &Config) {
    #[cfg(feature = "bulletins")]
    if let Some(dir) = &cfg.bulldir
        && let Some(why) = popper::bulletin::dir::unreadable(dir)
    {
        eprintln!("popper: warning: {why}; no bulletins will be delivered");
    }
    #[cfg(not(feature = "bulletins"))]
    let _ = cfg;
}
