//! popauth: qpopper's APOP secrets database `/etc/pop.auth` and the tool
//! that manages it.
//!
//! The library half is shared with popper, so the file format and the
//! locking live in one place:
//! * [`record`] — key = name + NUL, value = secret XOR 0xFF + NUL;
//! * [`db`] — the gdbm file: opened without following links, mode 0600
//!   checked, flock-locked, through a small safe wrapper over gdbm-sys
//!   ([`sys`], the only `unsafe` code).
//!
//! The tool half: [`cli`] (argv), [`app`] (each action, qpopper's texts),
//! [`strength`] (qpopper's rules for new secrets), [`prompt`] (no-echo
//! prompts, or lines from a pipe).
#![deny(unsafe_code)]

pub mod app;
pub mod cli;
pub mod db;
pub mod prompt;
pub mod record;
pub mod strength;
pub mod sys;
