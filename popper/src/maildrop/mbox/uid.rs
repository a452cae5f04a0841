//! Message UIDs in an mbox: an existing `X-UIDL:` header, or qpopper 2.53's
//! MD5.
//!
//! COMPAT qpopper 2.53 (qpopper.md §9.5): a site migrating from qpopper must
//! see the same UIDs, or every client downloads every message again. So:
//! * an `X-UIDL:` header's value wins (the first such header), as qpopper
//!   wrote one into every message it kept;
//! * otherwise the UID is the lower-case hex MD5 of the envelope line and of
//!   the header lines starting `Received:`, `Date:`, `Message-Id:` or
//!   `Subject:` (each with its line end), in file order — hashed as qpopper's
//!   `fgets` + `strlen` saw them: at most the first 1023 bytes of a line, and
//!   only up to a NUL byte.
//!
//! DEVIATION: an `X-UIDL:` value that is not a valid RFC 1939 unique-id
//! (1–70 printable characters, no spaces) is ignored and the MD5 used
//! instead; 2.53 would send it as it was.

use md5::{Digest, Md5};

use crate::maildrop::mbox::render::starts_with_ci;
use pop3_core::index::Uid;

/// qpopper read lines with `fgets(buf, 1024)`: 1023 bytes at most.
const FGETS_MAX: usize = 1023;

/// Accumulates the 2.53 MD5 of one message.
#[derive(Clone)]
pub struct UidHasher(Md5);

impl Default for UidHasher {
    fn default() -> Self {
        UidHasher(Md5::new())
    }
}

impl UidHasher {
    /// Hashes the envelope (or MMDF separator) line: its content (without
    /// LF) and whether an LF ended it.
    pub fn envelope(&mut self, content: &[u8], lf: bool) {
        self.add(content, lf);
    }

    /// Hashes a header line (content without LF) if its name is one 2.53
    /// hashes.
    pub fn header(&mut self, content: &[u8], lf: bool) {
        const NAMES: [&[u8]; 4] = [b"received:", b"date:", b"message-id:", b"subject:"];
        if NAMES.iter().any(|n| starts_with_ci(content, n)) {
            self.add(content, lf);
        }
    }

    /// What `fgets(buf, 1024)` + `strlen` gave qpopper: at most 1023 bytes
    /// including the LF, cut at a NUL.
    fn add(&mut self, content: &[u8], lf: bool) {
        let part = &content[..content.len().min(FGETS_MAX)];
        if let Some(nul) = memchr::memchr(0, part) {
            self.0.update(&part[..nul]);
            return;
        }
        self.0.update(part);
        if lf && content.len() < FGETS_MAX {
            self.0.update(b"\n");
        }
    }

    /// The UID: 32 lower-case hex digits.
    pub fn finish(self) -> Uid {
        Uid::from_digest(&self.0.finalize())
    }
}

/// The UID in an `X-UIDL:` header line (content without line end), if the
/// line is one and its value is a valid UID.
pub fn x_uidl_value(line: &[u8]) -> Option<Uid> {
    if !starts_with_ci(line, b"x-uidl:") {
        return None;
    }
    let v = &line[7..];
    let start = v.iter().position(|b| *b != b' ' && *b != b'\t')?;
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t' | b'\r'))? + 1;
    Uid::new(&v[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes lines given with their LFs, as they are in the file.
    fn uid_of(envelope: &[u8], headers: &[&[u8]]) -> String {
        let split = |l: &[u8]| match l.strip_suffix(b"\n") {
            Some(c) => (c.to_vec(), true),
            None => (l.to_vec(), false),
        };
        let mut h = UidHasher::default();
        let (c, lf) = split(envelope);
        h.envelope(&c, lf);
        for l in headers {
            let (c, lf) = split(l);
            h.header(&c, lf);
        }
        String::from_utf8(h.finish().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn qpopper_vector() {
        // qpopper.md §15.6: the From: header is not hashed.
        let uid = uid_of(
            b"From alice@example.com Wed Dec  2 05:53:22 1992\n",
            &[
                b"Date: Wed, 2 Dec 1992 05:53:22 -0800\n",
                b"From: Alice <alice@example.com>\n",
                b"Subject: hi\n",
            ],
        );
        assert_eq!(uid, "77ffa6bafb637ac9774fa2615b3b449b");
    }

    #[test]
    fn only_named_headers_count_case_insensitively() {
        let env: &[u8] = b"From a Wed Dec  2 05:53 1992\n";
        let base = uid_of(env, &[b"Subject: x\n"]);
        assert_ne!(
            base,
            uid_of(env, &[b"SUBJECT: x\n"]),
            "the bytes differ, so the hash does"
        );
        assert_eq!(
            base,
            uid_of(
                env,
                &[b"Subject: x\n", b"X-Mailer: y\n", b" continuation\n"]
            )
        );
        assert_ne!(
            base,
            uid_of(env, &[b"Subject: x\n", b"Message-ID: <1@x>\n"])
        );
        assert_ne!(base, uid_of(env, &[b"Subject: x\n", b"Received: by x\n"]));
    }

    #[test]
    fn long_lines_and_nuls_are_hashed_as_fgets_saw_them() {
        let env: &[u8] = b"From a Wed Dec  2 05:53 1992\n";
        let mut long = b"Subject: ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 2000));
        long.push(b'\n');
        let mut cut = long[..1023].to_vec();
        assert_eq!(uid_of(env, &[&long]), uid_of(env, &[&cut]));
        cut.push(b'y');
        assert_eq!(uid_of(env, &[&long]), uid_of(env, &[&cut]));
        assert_eq!(
            uid_of(env, &[b"Subject: a\0b\n"]),
            uid_of(env, &[b"Subject: a"])
        );
    }

    #[test]
    fn x_uidl_values() {
        assert_eq!(x_uidl_value(b"X-UIDL: abc").unwrap().as_bytes(), b"abc");
        assert_eq!(
            x_uidl_value(b"x-uidl:\t abc \r").unwrap().as_bytes(),
            b"abc"
        );
        assert_eq!(
            x_uidl_value(b"X-UIDL: %s%n%x").unwrap().as_bytes(),
            b"%s%n%x"
        );
        assert!(x_uidl_value(b"X-UIDL:").is_none());
        assert!(x_uidl_value(b"X-UIDL:   ").is_none());
        assert!(x_uidl_value(b"X-UIDL: two words").is_none());
        assert!(x_uidl_value(&[b"X-UIDL: ".as_slice(), &[b'a'; 71]].concat()).is_none());
        assert!(x_uidl_value(b"X-UIDLX: abc").is_none());
        assert!(x_uidl_value(b"Subject: abc").is_none());
    }
}
