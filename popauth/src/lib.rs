//! popauth: qpopper's APOP secrets database `/etc/pop.auth` and the tool
//! that manages it.
//!
//! The library half is shared with popper, so the file format and the
//! locking live in one place:
//! * [`record`] — key = name + NUL, value = secret XOR 0xFF + NUL;
//! * [`import`] — reading a qpopper 2.53 ndbm pop.auth (gdbm's ndbm
//!   layer or Berkeley DB) for `popauth -import`;
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
pub mod import;
pub mod prompt;
pub mod record;
pub mod strength;
pub mod sys;
