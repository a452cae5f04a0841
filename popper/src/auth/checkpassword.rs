//! The checkpassword interface (D. J. Bernstein's, which qmail-popup,
//! checkpw, checkapoppw and vchkpw share): the program reads
//! `user\0password\0timestamp\0` on descriptor 3, and on success runs the
//! program named by its arguments as the user; it exits 1 for a bad
//! password, 2 when misused, 111 for a temporary failure.
//!
//! popper uses it both ways. With the `checkpassword` setting it *calls*
//! one to decide a USER/PASS or APOP login, with `/bin/true` as the
//! program to run (for APOP the password field is the client's digest and
//! the timestamp field the greeting's challenge, as checkapoppw and
//! selectcheckpw expect); `--popup` hands the login to one that then
//! serves the session (`chain/popup.rs`). Either way `$AUTH` says `pop` or
//! `apop`, which checkpw's `selectcheckpw` switches on.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use zeroize::Zeroizing;

/// Bytes the interface allows before end of file on fd 3 (checkpw(8):
/// "at most 512 bytes of data").
pub const MAX_DATA: usize = 512;

/// What a checkpassword program said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0: the password is right (and the program it ran succeeded).
    Good,
    /// Exit 1: the password is wrong.
    Bad,
    /// Anything else — exit 2 (misuse) or 111 (temporary), a signal, a
    /// program that would not start, that hung and was killed: the login
    /// cannot be decided now (`[SYS/TEMP]`). Holds the reason for the log.
    Failed(String),
}

/// How a login was attempted, for `$AUTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// USER/PASS.
    Pop,
    /// APOP.
    Apop,
}

impl Kind {
    fn env(self) -> &'static str {
        match self {
            Kind::Pop => "pop",
            Kind::Apop => "apop",
        }
    }
}

/// The bytes on fd 3: `user\0secret\0timestamp\0`, or `None` if they do
/// not fit the interface (a NUL inside a field, more than [`MAX_DATA`]).
pub fn data(user: &[u8], secret: &[u8], timestamp: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if [user, secret, timestamp].iter().any(|f| f.contains(&0)) {
        return None;
    }
    let mut v = Zeroizing::new(Vec::with_capacity(
        user.len() + secret.len() + timestamp.len() + 3,
    ));
    for f in [user, secret, timestamp] {
        v.extend_from_slice(f);
        v.push(0);
    }
    (v.len() <= MAX_DATA).then_some(v)
}

/// Starts `argv` (the checkpassword program and what it is to run) with
/// the login on fd 3 and `$AUTH` set. `chain`: the other descriptors are
/// this process's (`--popup` leaves the connection on 0 and 1 for the rest
/// of the chain); else they are `/dev/null` and the program is the leader
/// of a process group of its own, so a hung one can be killed whole.
/// `client`: the client's address, for the chain's `$TCPREMOTEIP`
/// (relay-ctrl-allow reads it): set when popper knows it better than the
/// environment does — under inetd, which sets none, and behind a proxy
/// whose PROXY header named the client (tcpserver's would name the proxy).
pub fn start(
    argv: &[String],
    kind: Kind,
    data: &[u8],
    chain: bool,
    client: Option<std::net::IpAddr>,
) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("no program"))?;
    let (rd, wr) = std::io::pipe()?;
    let mut cmd = Command::new(program);
    cmd.args(args).env("AUTH", kind.env());
    if let Some(ip) = client {
        cmd.env("TCPREMOTEIP", crate::relay_ctrl::file_name(ip));
    }
    if !chain {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0);
    }
    let child = crate::sys::spawn_with_fd3(&mut cmd, rd.into())?;
    // The program reads fd 3 to its end before it decides; a program that
    // does not read at all gets EPIPE here, which changes nothing (its
    // exit status decides).
    let mut wr = wr;
    let _ = wr.write_all(data);
    drop(wr);
    Ok(child)
}

/// The verdict of an exit status.
pub fn verdict(status: ExitStatus) -> Verdict {
    match status.code() {
        Some(0) => Verdict::Good,
        Some(1) => Verdict::Bad,
        Some(2) => Verdict::Failed("the checkpassword program says it was misused (exit 2)".into()),
        Some(111) => {
            Verdict::Failed("the checkpassword program failed temporarily (exit 111)".into())
        }
        Some(n) => Verdict::Failed(format!("the checkpassword program exited {n}")),
        None => Verdict::Failed(format!("the checkpassword program died: {status}")),
    }
}

/// Asks `program` whether `secret` is right for `user` (`/bin/true` is
/// what it runs on success), waiting at most `timeout`; a program still
/// running then is killed.
pub fn check(
    program: &Path,
    kind: Kind,
    user: &[u8],
    secret: &[u8],
    timestamp: &[u8],
    timeout: Duration,
) -> Verdict {
    let Some(data) = data(user, secret, timestamp) else {
        // No such login can be right: the interface cannot carry it.
        return Verdict::Bad;
    };
    let argv = [program.display().to_string(), "/bin/true".to_string()];
    let mut child = match start(&argv, kind, &data, false, None) {
        Ok(c) => c,
        Err(e) => return Verdict::Failed(format!("cannot run {}: {e}", program.display())),
    };
    let deadline = crate::clock::monotonic() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return verdict(status),
            Ok(None) if crate::clock::monotonic() >= deadline => {
                // The whole group: a shell script's children too.
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.kill();
                let _ = child.wait();
                return Verdict::Failed(format!(
                    "{} took more than {} s and was killed",
                    program.display(),
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Verdict::Failed(format!("waiting for {}: {e}", program.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script in a temporary directory.
    fn script(body: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "popper-ckpw-{}-{:x}",
            std::process::id(),
            crate::sys::random_u64()
        ));
        std::fs::create_dir(&dir).unwrap();
        let p = dir.join("ckpw");
        let tmp = dir.join("ckpw.tmp");
        std::fs::write(&tmp, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        // Renamed into place: no test thread's fork holds it open for
        // writing when it is run (ETXTBSY).
        std::fs::rename(&tmp, &p).unwrap();
        (dir, p)
    }

    #[test]
    fn the_interface_on_fd_3_and_the_exit_codes() {
        // The program sees exactly the three fields and $AUTH, and runs
        // its argument on success.
        let (dir, p) = script(
            "d=$(dirname \"$0\"); cat <&3 > \"$d/fd3\"; echo \"$AUTH\" > \"$d/auth\"; [ \"$(head -c 5 \"$d/fd3\")\" = alice ] && exec \"$@\"; exit 1",
        );
        let t = Duration::from_secs(10);
        assert_eq!(
            check(&p, Kind::Apop, b"alice", b"d1g", b"<1.2@h>", t),
            Verdict::Good
        );
        assert_eq!(
            std::fs::read(dir.join("fd3")).unwrap(),
            b"alice\0d1g\0<1.2@h>\0"
        );
        assert_eq!(std::fs::read_to_string(dir.join("auth")).unwrap(), "apop\n");
        assert_eq!(check(&p, Kind::Pop, b"bob", b"x", b"", t), Verdict::Bad);
        assert_eq!(std::fs::read_to_string(dir.join("auth")).unwrap(), "pop\n");
        std::fs::remove_dir_all(&dir).unwrap();
        for (code, temp) in [(2, true), (111, true), (7, true)] {
            let (dir, p) = script(&format!("cat <&3 >/dev/null; exit {code}"));
            let v = check(&p, Kind::Pop, b"u", b"p", b"", t);
            assert_eq!(matches!(v, Verdict::Failed(_)), temp, "{code}: {v:?}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_hung_crashed_or_missing_program_is_a_temporary_failure() {
        let (dir, p) = script("sleep 30");
        let started = std::time::Instant::now();
        let v = check(&p, Kind::Pop, b"u", b"p", b"", Duration::from_millis(300));
        assert!(
            matches!(&v, Verdict::Failed(why) if why.contains("killed")),
            "{v:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        std::fs::remove_dir_all(&dir).unwrap();
        let (dir, p) = script("kill -SEGV $$");
        let v = check(&p, Kind::Pop, b"u", b"p", b"", Duration::from_secs(10));
        assert!(
            matches!(&v, Verdict::Failed(why) if why.contains("died")),
            "{v:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let v = check(
            Path::new("/nonexistent/ckpw"),
            Kind::Pop,
            b"u",
            b"p",
            b"",
            Duration::from_secs(1),
        );
        assert!(
            matches!(&v, Verdict::Failed(why) if why.contains("cannot run")),
            "{v:?}"
        );
    }

    #[test]
    fn what_the_interface_cannot_carry_is_refused_before_any_program_runs() {
        assert!(data(b"a\0b", b"p", b"").is_none());
        assert!(data(b"a", &[b'p'; 600], b"").is_none());
        assert_eq!(data(b"a", b"p", b"t").unwrap().as_slice(), b"a\0p\0t\0");
        assert_eq!(
            check(
                Path::new("/nonexistent"),
                Kind::Pop,
                b"a\0b",
                b"p",
                b"",
                Duration::from_secs(1)
            ),
            Verdict::Bad
        );
    }
}
