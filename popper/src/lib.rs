//! popper: a POP3/APOP server compatible with Qualcomm's qpopper.
//!
//! # The shape
//!
//! ```text
//! stdin ─▶ pop3_core::drive (line ─▶ command ─▶ session ─▶ Step) ─▶ serve::ServeHost
//!          (the one dispatch loop, pure)                            (all I/O)
//! ```
//!
//! * The sans-IO core is its own crate, [`pop3_core`]: framing,
//!   tokenizing, the state machine, every reply text, the [`Maildrop`]
//!   trait and the one dispatch loop. It has no `nix`, `libc` or file
//!   system to reach for.
//! * [`maildrop`] holds the messages: the mbox spool, behind the core's
//!   trait; its errors become the core's storage errors at the seam.
//! * [`auth`] decides logins; [`privilege`] crosses from root to the user.
//! * [`serve`] is the host the loop runs on: it reads and writes the
//!   client, checks logins, opens the mailbox and logs what the loop
//!   reports; `main.rs` only builds the configuration and calls it.
//! * [`limits`] lists every bound and why; [`config`] every setting.
//!
//! [`Maildrop`]: pop3_core::maildrop::Maildrop
//!
//! # Privilege map
//!
//! popper starts as root (inetd runs it so) and stays root only for:
//!
//! | module | as root |
//! |---|---|
//! | [`config`] | parse argv and the `-f` file (written by root) |
//! | [`log`] | open syslog / the `-t` trace file |
//! | [`peer`] | `getpeername(0)` |
//! | [`auth`] | passwd/shadow lookup and the password hash |
//! | [`privilege`] | `become_user`: groups, gid, uid — verified |
//!
//! Everything in [`maildrop`] runs as the mail user: opening a mailbox takes
//! the [`privilege::Dropped`] token that only `become_user` returns. Reverse
//! DNS (`reverse-lookup`) also runs only after the drop. Every `unsafe`
//! call is in [`sys`].
#![deny(unsafe_code)]

pub mod auth;
#[cfg(feature = "bulletins")]
pub mod bulletin;
pub mod clock;
pub mod config;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod limits;
pub mod log;
pub mod maildrop;
pub mod peer;
pub mod privilege;
pub mod serve;
pub mod sys;
