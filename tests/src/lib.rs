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
//!   (an independent statement of the wire rules, not popper's code);
//! * [`pki`] is a test CA and server certificates (good and bad) for TLS;
//! * [`netns`] is a pair of network namespaces, a client "elsewhere";
//! * [`wait`] is every wait: on a condition or a process, with a limit.
//!
//! The harness needs root (namespaces, users, setuid). It never skips:
//! without root every test fails with a message saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bins;
pub mod mail;
pub mod net;
pub mod netns;
pub mod pki;
pub mod pop;
pub mod sandbox;
pub mod users;
pub mod wait;

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

/// Runs a command, panicking with its output if it fails or runs longer
/// than [`wait::LIMIT`].
pub fn run(cmd: &mut std::process::Command) -> std::process::Output {
    run_within(cmd, wait::LIMIT)
}

/// [`run`] with another limit ([`wait::BUILD`] for builds).
pub fn run_within(
    cmd: &mut std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    use wait::OutputWithin;
    let out = cmd.output_within(limit);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Copies an executable for a test to run. Through `cp` rather than
/// `std::fs::copy`: a file this multi-threaded process held open for
/// writing would be inherited by any child another test forks at that
/// moment, and executing the copy fails with ETXTBSY (bash: exit 126)
/// until that child has exec'd. `cp`'s descriptor lives only in `cp`.
pub fn copy_executable(from: &std::path::Path, to: &std::path::Path, mode: u32) {
    run(std::process::Command::new("/bin/cp")
        .arg("--")
        .arg(from)
        .arg(to));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes a script for a test to run, as [`copy_executable`] copies one:
/// the file that is executed is never open for writing in this process.
pub fn write_executable(to: &std::path::Path, contents: impl AsRef<[u8]>, mode: u32) {
    let mut draft = to.as_os_str().to_owned();
    draft.push(".draft");
    let draft = std::path::PathBuf::from(draft);
    std::fs::write(&draft, contents).unwrap();
    copy_executable(&draft, to, mode);
    std::fs::remove_file(&draft).unwrap();
}
