//! Every bound the protocol core and its dispatch loop put on what a
//! client can make popper hold or do, with the reason for its value
//! (popa3d's `params.h` is the model). Bounds of the storage side (scan
//! buffers, the index file, the `-f` file) are in popper's `limits.rs`,
//! which lists these too.

/// Longest command line accepted, not counting its CRLF or LF.
///
/// RFC 2449 §4 allows 255 octets; qpopper read lines with
/// `fgets(buf, MAXLINELEN = 1024)`, so 1023 bytes worked with it and a
/// client that sends long APOP names or passwords must keep working.
pub const MAX_LINE: usize = 1023;

/// Tokens on a line: the command word and four arguments.
///
/// COMPAT qpopper 2.53: `MAXPARMCOUNT` is 5; `a b c d e f` is answered
/// "Too many arguments supplied.".
pub const MAX_TOKENS: usize = 5;

/// Bytes of a client's word echoed back in a reply.
///
/// qpopper 3.x printed these with `%.128s`; a bound keeps every reply one
/// short line whatever the client sent.
pub const MAX_ECHO: usize = 128;

/// Bytes of one header field `XTND XLST` shows (its line and its
/// continuation lines together).
///
/// qpopper sent each line as read (up to 1023 bytes a line, any number
/// of continuation lines); a long `Received:` or `References:` field fits
/// in 4 KiB, and a bound keeps one message's header from making one
/// reply line of any length.
pub const MAX_XLST: usize = 4096;

/// Longest user name looked up.
///
/// COMPAT qpopper 2.53: names were truncated to 64 bytes, so no longer
/// name can be a login; refusing it avoids a passwd lookup for junk.
pub const MAX_USER: usize = 64;

/// Longest unique-id.
///
/// RFC 1939 §7: "The unique-id of a message is an arbitrary server-determined
/// string, consisting of one to 70 characters in the range 0x21 to 0x7E".
pub const MAX_UID_LEN: usize = 70;

/// Bytes read from the client at a time.
///
/// A pipelining client sends at most a few hundred commands ahead
/// (RFC 2449 §6.6 lets the server bound this by its window); 16 KiB holds
/// more than a thousand `RETR n` lines and keeps the buffer out of the
/// session's peak memory.
pub const READ_SIZE: usize = 16 << 10;

/// Replies collect in a buffer written out when the client has nothing
/// more queued, or when it reaches this size.
///
/// 64 KiB gives one `write` per 64 KiB of a download (the kernel's socket
/// buffer is of that order) and bounds what a burst of pipelined LIST or
/// UIDL replies can pile up.
pub const FLUSH_AT: usize = 64 << 10;

/// Over-long lines logged with a notice of their own in one session.
///
/// Each over-long line gets one `-ERR` and one log line with its total;
/// past this many, one more line says the rest are not logged, so one
/// client cannot flood syslog at line rate.
pub const MAX_DISCARD_NOTICES: u32 = 10;

/// Longest SASL client response line (RFC 5034 `AUTH`), in base64 bytes,
/// not counting its CRLF.
///
/// The longest response a mechanism here needs is AUTH PLAIN's
/// `authzid NUL authcid NUL passwd`: two [`MAX_USER`] names and a password
/// as long as PASS could carry ([`MAX_LINE`]) come to 1,153 bytes,
/// 1,540 in base64; SCRAM's and CRAM-MD5's messages are a few hundred at
/// most. 2048 holds all of these with room to spare, keeps every decoded
/// response under 1.5 KiB, and refuses a client that streams an endless
/// line before anything is decoded. Only `sasl::decode` checks it: the
/// line framer reads lines of up to [`MAX_LINE`], so a longer AUTH
/// response is refused there first unless the framer is given this bound
/// for AUTH continuation lines.
pub const MAX_SASL_RESPONSE: usize = 2048;
