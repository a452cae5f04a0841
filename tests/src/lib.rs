//! The end-to-end test harness: real popper binaries as real processes,
//! under a real inetd, with real users and real spools, each test in a
//! private mount namespace so nothing on the machine is touched.
//!
//! * [`bins`] builds and finds the binaries;
//! * [`users`] makes the test accounts (real passwd/shadow entries);
//! * [`sandbox`] gives a test its own `/var/mail` (and any other file bound
//!   over a system path), runs inetd or a piped popper inside it;
//! * [`pop`] is a small raw POP3 client for exact transcripts;
//! * [`mail`] makes test mailboxes and says what RETR must send for them
//!   (an independent statement of the wire rules, not popper's code).
//!
//! The harness needs root (namespaces, users, setuid). It never skips:
//! without root every test fails with a message saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bins;
pub mod mail;
pub mod net;
pub mod pop;
pub mod sandbox;
pub mod users;

/// Panics unless the tests run as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the end-to-end tests need root (mount namespaces, test users, setuid binaries): run `make test` as root"
    );
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
