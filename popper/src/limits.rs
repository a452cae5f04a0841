//! Every bound popper puts on what it holds or reads, with its value and
//! the reason for it (popa3d's `params.h` is the model). The protocol
//! core's own bounds — line length, tokens, echo, user name, UID, read and
//! write sizes, log notices — are defined in `pop3_core::limits` and
//! re-exported here, so this is the one list to read.

pub use pop3_core::limits::*;

/// Bytes read from the spool per `pread` while sending a message.
///
/// One RETR's output is written in [`FLUSH_AT`] pieces; reading as much at
/// a time keeps one read per write, and the buffer out of the session's
/// peak memory.
pub const SEND_CHUNK: usize = 64 << 10;

/// Bytes read per `pread` while scanning a spool at login.
///
/// 256 KiB preads copy from the page cache as fast as larger ones, and the
/// buffer stays out of the session's peak RSS.
pub const SCAN_CHUNK: usize = 256 << 10;

/// The update journal's write size.
///
/// Large enough that a rewrite is a few hundred writes a gigabyte (long
/// unchanged runs go through `copy_file_range` anyway), small enough not
/// to show in the session's peak RSS.
pub const COPY_CHUNK: usize = 256 << 10;

/// A spool line longer than this is seen by the scanner only by its first
/// bytes (the rest is streamed, never held).
///
/// Envelopes, `X-UIDL:` and `Status:` lines — all the scan looks at — are
/// far shorter; a 100 MB line costs no memory.
pub const LINE_PREFIX: usize = 4096;

/// Larger scan-index files are not read (about 1.5 million messages).
///
/// The index is the user's own file; a huge one must not make a login
/// allocate without bound.
pub const MAX_INDEX_FILE: u64 = 256 << 20;

/// The largest bulletin file delivered.
///
/// A bulletin is a notice, and the whole of it is held in memory while it
/// is rewritten.
pub const MAX_BULLETIN: u64 = 1 << 20;

/// The largest `-f` configuration file read.
///
/// It is root's file, read as root before anything else; a bound keeps a
/// mistake (a device, a log file named by accident) from stalling every
/// connection.
pub const MAX_CONFIG: u64 = 1 << 20;

/// Larger Maildir listing caches (`Maildir/.popper-sizes`) are not read
/// (about three million messages).
///
/// The cache is the user's own file; a huge one must not make a login
/// allocate without bound (it is then recomputed and rewritten).
pub const MAX_SIZE_CACHE: u64 = 256 << 20;

/// The least `proxy-timeout`: a trusted proxy's PROXY header is awaited at
/// least this long.
///
/// HAProxy writes the header with its connect, before any client byte; 3 s
/// leaves room for a loaded balancer and a lost first segment (the TCP
/// retransmission timeout starts at 1 s).
pub const PROXY_TIMEOUT_MIN: std::time::Duration = std::time::Duration::from_secs(3);

/// The most `proxy-timeout`: a trusted source that sends no header, or
/// stops in the middle of one, holds a root process at most this long.
pub const PROXY_TIMEOUT_MAX: std::time::Duration = std::time::Duration::from_secs(10);
