//! pop3-core: popper's POP3 protocol, with no I/O in it.
//!
//! ```text
//! bytes ─▶ line ─▶ command ─▶ session ─▶ Step ─▶ drive ─▶ Host (I/O) / Maildrop (storage)
//!          (bounded) (pure)    (pure)             (the one loop)
//! ```
//!
//! * [`line`] frames client bytes into bounded lines; [`command`] tokenizes
//!   them as qpopper did; [`session`] is the state machine; [`reply`] makes
//!   every byte sent that is not message content; [`wire`] is the message
//!   encoding (CRLF, dot-stuffing, TOP).
//! * [`index`] is the session's fixed list of messages (UID rules);
//!   [`marks`] its deletions and reads.
//! * [`maildrop`] is the seam to storage: the [`maildrop::Maildrop`] trait.
//!   [`mem`] is an in-memory maildrop.
//! * [`drive`] is the one dispatch loop; a [`drive::Host`] does the I/O.
//!   [`sim`] is an in-memory host, for tests and fuzzing.
//! * [`sasl`] is AUTH's shared part (RFC 5034): mechanism names, the
//!   base64 of responses, PLAIN, LOGIN's prompts, nonces and salts from a
//!   seed the host supplies; [`cram`] is CRAM-MD5 (RFC 2195) and [`scram`]
//!   SCRAM-SHA-256 (RFC 5802, RFC 7677), the server side of each.
//! * [`policy`] decides what a connection allows (TLS, passwords in
//!   clear); [`capa`] lists it.
//! * [`sasl_exchange`] runs one `AUTH` exchange over them.
//! * [`limits`] lists every bound and why.
//!
//! The crate has no `nix`, `libc` or file-system dependency, so what it
//! promises — no file, socket, uid or clock is touched — is what Cargo lets
//! it link; the `purity` test below checks the standard library's I/O
//! modules are not used either, and that modules import each other without
//! a circle.
#![forbid(unsafe_code)]

pub mod capa;
pub mod command;
pub mod cram;
pub mod drive;
pub mod error;
pub mod greeting;
pub mod header;
pub mod index;
pub mod limits;
pub mod line;
pub mod maildrop;
pub mod marks;
pub mod mem;
pub mod policy;
pub mod reply;
pub mod sasl;
pub mod sasl_exchange;
pub mod scram;
pub mod secret;
pub mod session;
pub mod sim;
pub mod wire;

#[cfg(test)]
mod purity;
