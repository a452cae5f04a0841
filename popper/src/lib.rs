//! popper: a POP3/APOP server compatible with Qualcomm's qpopper.
//!
//! # The shape
//!
//! ```text
//! stdin ─▶ protocol::line ─▶ protocol::command ─▶ protocol::session ─▶ Step ─▶ serve
//!          (bounded)          (pure)               (pure)                     (all I/O)
//! ```
//!
//! * [`protocol`] is the sans-IO core: framing, tokenizing, the state
//!   machine, every reply text. It never touches a file, a uid or a clock.
//! * [`maildrop`] holds the messages: the mbox spool (and an in-memory
//!   maildrop for tests), behind the [`maildrop::Maildrop`] trait.
//! * [`auth`] decides logins; [`privilege`] crosses from root to the user.
//! * [`serve`] is the driver: it reads the client, feeds the core and
//!   carries out each step; `main.rs` only builds the configuration and
//!   calls it.
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
pub mod log;
pub mod maildrop;
pub mod peer;
pub mod privilege;
pub mod protocol;
pub mod serve;
pub mod sim;
pub mod sys;
