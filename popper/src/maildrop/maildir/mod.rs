//! The Maildir maildrop: `~/Maildir` (or any Maildir the caller names),
//! read and updated as qmail-pop3d and Dovecot do, with qmail-pop3d's
//! UIDs, so its users' clients download nothing twice after the switch.
//!
//! A session, as the mail user (the [`Dropped`] token proves it):
//! 1. checks the Maildir's directories (`list.rs`) and takes the session
//!    lock `Maildir/.popper.lock` (`lock.rs`: a second session gets
//!    `[IN-USE]`);
//! 2. delivers mail due at login (bulletins, `deliver.rs`), exactly once;
//! 3. lists `new/` and `cur/` in delivery order (`list.rs`): UID = the
//!    name up to its first `:` (COMPAT qmail-pop3d), seen = `S` among the
//!    `:2,` flags (`flags.rs`), exact wire sizes counted or taken from the
//!    size cache `Maildir/.popper-sizes` (`size.rs`);
//! 4. streams RETR/TOP from the files (`send.rs`), finding a file again if
//!    another reader moved it;
//! 5. at QUIT unlinks the deleted messages and renames the read ones
//!    (`update.rs`), then releases the lock; an abandoned session only
//!    releases it.
//!
//! Crash safety: popper never rewrites a message. Every change it makes is
//! one `rename` (within the Maildir, one file system) or one `unlink`, each
//! atomic, none depending on another: a crash at any point leaves every
//! message exactly once — at its old name or its new one, deleted or not.
//! A bulletin is written under `tmp/` and appears in `new/` by one rename,
//! so it is in the Maildir whole or not at all; its name says which
//! delivery it is, so a crash before the delivery is recorded cannot
//! deliver it twice (`deliver.rs`). The size cache and the lock file are
//! popper's own: losing either costs nothing but a recount.
//!
//! Messages delivered during the session are not in the listing and are
//! never touched. Memory is O(messages): one name, one inode and two sizes
//! each; a message's bytes are never held, only [`SEND_CHUNK`] of them at
//! a time.
//!
//! DEVIATIONs (each explained where it is made): exact CRLF sizes rather
//! than `st_size` (`size.rs`); a name that is not a valid unique-id gets
//! its MD5 as UID (`list.rs`); entries that are not regular files are
//! skipped (`list.rs`); a session lock (`lock.rs`); failed update steps do
//! not stop the others (`update.rs`); `tmp/` is not cleaned (qmail-pop3d
//! removes files older than 36 hours there: that is the delivery agent's
//! business, and popper does not delete mail it did not list).
//!
//! [`SEND_CHUNK`]: crate::limits::SEND_CHUNK

pub mod deliver;
pub mod flags;
pub mod list;
pub mod lock;
pub mod ops;
pub mod send;
pub mod size;
pub mod update;

#[cfg(test)]
mod fixture;
