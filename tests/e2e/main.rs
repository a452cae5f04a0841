//! End-to-end tests: the real binaries, under a real inetd, with real
//! users, spools and clients (the harness is `tests/src`). One file per
//! area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apop;
mod bulletins;
mod clients;
mod concurrent;
mod crash;
mod cve;
mod deb;
mod demo;
mod docs;
mod hostile;
mod import;
mod index;
mod install;
mod locks;
mod mailbox;
mod policy;
mod popauth;
mod proxy;
mod qmail;
mod review;
mod session;
mod spawn;
mod spawn_tls;
mod startup;
mod tls;
mod xtnd;

use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::TestUser;

/// A sandbox serving popper (default build, usual arguments plus
/// `extra`) under inetd; returns it with its port.
pub fn served(name: &str, extra: &[&str]) -> (Sandbox, u16) {
    let mut sb = Sandbox::new(name);
    let args = popper_args(&sb, extra);
    let port = sb.inetd(&popper_e2e::bins::popper(), &args);
    (sb, port)
}

/// `popper` followed by the sandbox's usual arguments: the argv inetd
/// passes (argv[0] first).
pub fn popper_args(sb: &Sandbox, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["popper".to_string()];
    v.extend(sb.popper_args(extra));
    v
}

/// Runs a session on a pipe with the usual arguments plus `extra`;
/// returns the output as text and the exit code.
pub fn piped(sb: &Sandbox, extra: &[&str], input: &[u8]) -> (String, i32) {
    let out = sb.pipe(&popper_e2e::bins::popper(), &sb.popper_args(extra), input);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// `USER`/`PASS` lines for `u`.
pub fn login_lines(u: &TestUser) -> String {
    format!("USER {}\r\nPASS {}\r\n", u.name, u.password)
}
