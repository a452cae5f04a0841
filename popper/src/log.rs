//! Where popper's log lines go: syslog (ident `popper`, LOG_PID), or the
//! `-t` trace file instead (qpopper's behaviour), or memory in tests.
//!
//! Messages are passed to syslog through a fixed `"%s"` format (no format
//! string from data can reach libc), and every byte that is not printable
//! ASCII is shown as `\xNN`, so a hostile user name cannot forge log lines.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::config::Facility;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `-d` detail: commands, replies.
    Debug,
    /// Routine events.
    Info,
    /// What admins grep for: logins, failures, `-ERR` replies, statistics.
    Notice,
    /// Something is wrong with the system.
    Warning,
    /// popper could not do its job.
    Err,
}

enum Sink {
    Syslog,
    File(RefCell<File>),
    Memory(RefCell<Vec<(Level, String)>>),
}

/// The process's logger.
pub struct Log {
    sink: Sink,
    debug: bool,
}

impl Log {
    /// Logs to syslog with ident `popper`, LOG_PID, the given facility.
    pub fn syslog(facility: Facility, debug: bool) -> Log {
        use nix::syslog::{Facility as F, LogFlags, openlog};
        let fac = match facility {
            Facility::Mail => F::LOG_MAIL,
            Facility::Daemon => F::LOG_DAEMON,
            Facility::User => F::LOG_USER,
            Facility::Local(0) => F::LOG_LOCAL0,
            Facility::Local(1) => F::LOG_LOCAL1,
            Facility::Local(2) => F::LOG_LOCAL2,
            Facility::Local(3) => F::LOG_LOCAL3,
            Facility::Local(4) => F::LOG_LOCAL4,
            Facility::Local(5) => F::LOG_LOCAL5,
            Facility::Local(6) => F::LOG_LOCAL6,
            Facility::Local(_) => F::LOG_LOCAL7,
        };
        // LOG_NDELAY: connect to /dev/log now, before privileges are dropped.
        let _ = openlog(
            Some(c"popper"),
            LogFlags::LOG_PID | LogFlags::LOG_NDELAY,
            fac,
        );
        Log {
            sink: Sink::Syslog,
            debug,
        }
    }

    /// Logs to `path` instead of syslog (`-t`). The file is opened for
    /// appending without following a symlink, and refused unless it is a
    /// regular file with one link, owned by the user popper runs as and not
    /// writable by others — so a link planted in a shared directory cannot
    /// make popper (root) write into another file.
    pub fn trace_file(path: &Path, debug: bool) -> io::Result<Log> {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)?;
        let md = f.metadata()?;
        let euid = nix::unistd::geteuid().as_raw();
        let bad = if !md.file_type().is_file() {
            Some("not a regular file")
        } else if md.nlink() != 1 {
            Some("has more than one link")
        } else if md.uid() != euid {
            Some("not owned by the user popper runs as")
        } else if md.mode() & 0o022 != 0 {
            Some("writable by group or others")
        } else {
            None
        };
        if let Some(why) = bad {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
        Ok(Log {
            sink: Sink::File(RefCell::new(f)),
            debug,
        })
    }

    /// Keeps log lines in memory (tests).
    pub fn memory(debug: bool) -> Log {
        Log {
            sink: Sink::Memory(RefCell::new(Vec::new())),
            debug,
        }
    }

    /// The lines kept by a memory logger.
    pub fn lines(&self) -> Vec<(Level, String)> {
        match &self.sink {
            Sink::Memory(v) => v.borrow().clone(),
            _ => Vec::new(),
        }
    }

    /// True when `-d` debug lines are written.
    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    /// Writes one line at `level` (debug lines only with `-d`).
    pub fn log(&self, level: Level, msg: &str) {
        if level == Level::Debug && !self.debug {
            return;
        }
        let msg = printable(msg.as_bytes());
        match &self.sink {
            Sink::Syslog => {
                use nix::syslog::{Severity, syslog};
                let sev = match level {
                    Level::Debug => Severity::LOG_DEBUG,
                    Level::Info => Severity::LOG_INFO,
                    Level::Notice => Severity::LOG_NOTICE,
                    Level::Warning => Severity::LOG_WARNING,
                    Level::Err => Severity::LOG_ERR,
                };
                // glibc drops the line when there is no syslog daemon.
                let _ = syslog(sev, msg.as_str());
            }
            Sink::File(f) => {
                let now = crate::clock::now_rfc3339();
                let line = format!("{now} popper[{}]: {msg}\n", std::process::id());
                // A full disk must not stop the session; the line is lost.
                let _ = f.borrow_mut().write_all(line.as_bytes());
            }
            Sink::Memory(v) => v.borrow_mut().push((level, msg)),
        }
    }

    /// [`Level::Debug`]
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg);
    }
    /// [`Level::Info`]
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg);
    }
    /// [`Level::Notice`]
    pub fn notice(&self, msg: &str) {
        self.log(Level::Notice, msg);
    }
    /// [`Level::Warning`]
    pub fn warning(&self, msg: &str) {
        self.log(Level::Warning, msg);
    }
    /// [`Level::Err`]
    pub fn err(&self, msg: &str) {
        self.log(Level::Err, msg);
    }
}

/// Printable ASCII kept; everything else (control bytes, 8-bit) as `\xNN`.
pub fn printable(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_bytes_cannot_forge_lines() {
        assert_eq!(
            printable(b"user\n2026 popper: fake %s%n\xff"),
            "user\\x0a2026 popper: fake %s%n\\xff"
        );
    }

    #[test]
    fn debug_lines_only_with_debug() {
        let l = Log::memory(false);
        l.debug("hidden");
        l.notice("shown");
        assert_eq!(l.lines(), vec![(Level::Notice, "shown".to_string())]);
        let l = Log::memory(true);
        l.debug("shown");
        assert_eq!(l.lines().len(), 1);
    }

    #[test]
    fn trace_file_refuses_symlinks_and_shared_files() {
        let dir = std::env::temp_dir().join(format!("popper-log-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(Log::trace_file(&link, true).is_err(), "symlink followed");
        let hard = dir.join("hard");
        std::fs::hard_link(&target, &hard).unwrap();
        assert!(Log::trace_file(&hard, true).is_err(), "hard link accepted");
        let ok = dir.join("trace");
        let l = Log::trace_file(&ok, true).unwrap();
        l.notice("hello");
        let text = std::fs::read_to_string(&ok).unwrap();
        assert!(
            text.ends_with(&format!("popper[{}]: hello\n", std::process::id())),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(
            Log::trace_file(&ok, true).is_err(),
            "world-writable accepted"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
