//! The update journal's header block: what the journal says about the
//! update (`journal.rs` has the file around it). Pure: text in a
//! 4096-byte block, ending in a checksum line, so a torn or foreign block
//! is never taken for a committed update; fuzzed (`fuzz/`).
//!
//! ```text
//! popper-journal 1
//! pid 4242
//! spool 2049:1234567
//! from 1048576
//! old-length 2097152
//! tail-length 1050000
//! sample 46726f6d20...
//! before 8c3b1f0e6a7d2c55
//! at 46726f6d20...
//! merges-temp-drop 0
//! delivered-through 23
//! check 8c3b1f0e6a7d2c55
//! ```
//!
//! `from` is the offset where the tail goes; `old-length` the spool's size
//! when the update began; `sample` up to 256 bytes of the old spool at the
//! new end (only when the spool shrinks), which tells recovery whether the
//! final truncation happened; `merges-temp-drop` says the session lock file
//! held a qpopper temporary maildrop that this update folds in; `before`
//! (a hash of the bytes before `from`) and `at` (the old bytes at `from`)
//! let recovery check that the spool is still the one it was made for;
//! `delivered-through` (present only when messages were added at login, see
//! `append.rs`) is the number to record as delivered once the tail is in
//! place — written with the tail, so the record and the mail cannot part.

/// Bytes before the tail.
pub const HEADER_LEN: u64 = 4096;

/// Old bytes kept in `sample`.
pub const SAMPLE_LEN: usize = 256;

/// Bytes before `from` hashed into `before`.
pub const BEFORE_LEN: u64 = 256;

/// Old bytes at `from` kept in `at`.
pub const AT_LEN: usize = 64;

const MAGIC: &str = "popper-journal 1";

/// What the journal says about the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The popper process that wrote it.
    pub pid: u32,
    /// Device and inode of the spool it belongs to.
    pub spool: (u64, u64),
    /// Offset in the spool where the tail goes.
    pub from: u64,
    /// The spool's size when the update began.
    pub old_len: u64,
    /// Bytes of tail after the header.
    pub tail_len: u64,
    /// Old spool bytes at the new end (when the spool shrinks).
    pub sample: Vec<u8>,
    /// FNV-1a of the (up to) 256 spool bytes before `from`, which the update
    /// never writes: recovery refuses to roll forward over a spool another
    /// program rewrote after the crash.
    pub before: u64,
    /// The (up to) 64 old spool bytes at `from`: there, recovery expects
    /// these or the tail's first bytes, nothing else.
    pub at: Vec<u8>,
    /// The session lock file held a qpopper temporary maildrop, merged by
    /// this update: empty that file once the spool is written.
    pub merges_temp_drop: bool,
    /// Messages were added at login (bulletins): once the spool is final,
    /// record this number as delivered (`append.rs`).
    pub delivered_through: Option<u64>,
}

impl Header {
    /// The spool's size once the update is applied.
    pub fn new_len(&self) -> u64 {
        self.from.saturating_add(self.tail_len)
    }

    /// The header block: its text, NUL-padded to [`HEADER_LEN`].
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!(
            "{MAGIC}\npid {}\nspool {}:{}\nfrom {}\nold-length {}\ntail-length {}\nsample {}\nbefore {:016x}\nat {}\nmerges-temp-drop {}\n",
            self.pid,
            self.spool.0,
            self.spool.1,
            self.from,
            self.old_len,
            self.tail_len,
            hex(&self.sample),
            self.before,
            hex(&self.at),
            u8::from(self.merges_temp_drop),
        );
        if let Some(n) = self.delivered_through {
            text.push_str(&format!("delivered-through {n}\n"));
        }
        let check = fnv(text.as_bytes());
        text.push_str(&format!("check {check:016x}\n"));
        let mut block = text.into_bytes();
        block.resize(HEADER_LEN as usize, 0);
        block
    }

    /// Parses a header block; `None` for anything but a complete, intact
    /// header (zeros, a torn write, another file's bytes).
    pub fn decode(block: &[u8]) -> Option<Header> {
        let end = memchr::memchr(0, block).unwrap_or(block.len());
        let text = std::str::from_utf8(&block[..end]).ok()?;
        let body_end = text.rfind("check ")?;
        let (body, check) = text.split_at(body_end);
        let check = check.strip_prefix("check ")?.strip_suffix('\n')?;
        if u64::from_str_radix(check, 16).ok()? != fnv(body.as_bytes()) {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut field = |name: &str| -> Option<String> {
            let l = lines.next()?;
            Some(l.strip_prefix(name)?.strip_prefix(' ')?.to_string())
        };
        let pid = field("pid")?.parse().ok()?;
        let spool = field("spool")?;
        let (dev, ino) = spool.split_once(':')?;
        let spool = (dev.parse().ok()?, ino.parse().ok()?);
        let from = field("from")?.parse().ok()?;
        let old_len = field("old-length")?.parse().ok()?;
        let tail_len: u64 = field("tail-length")?.parse().ok()?;
        let sample = unhex(&field("sample")?)?;
        let before = u64::from_str_radix(&field("before")?, 16).ok()?;
        let at = unhex(&field("at")?)?;
        let merges_temp_drop = match field("merges-temp-drop")?.as_str() {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let delivered_through = match lines.next() {
            None => None,
            Some(l) => Some(l.strip_prefix("delivered-through ")?.parse().ok()?),
        };
        if lines.next().is_some() {
            return None;
        }
        let h = Header {
            pid,
            spool,
            from,
            old_len,
            tail_len,
            sample,
            before,
            at,
            merges_temp_drop,
            delivered_through,
        };
        (h.from.checked_add(h.tail_len).is_some()
            && h.sample.len() <= SAMPLE_LEN
            && h.at.len() <= AT_LEN)
            .then_some(h)
    }
}

/// FNV-1a, 64 bits: enough to tell a torn or foreign header from ours.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            pid: 4242,
            spool: (2049, 1234567),
            from: 100,
            old_len: 500,
            tail_len: 300,
            sample: b"From x\n".to_vec(),
            before: 0x1234,
            at: b"From y".to_vec(),
            merges_temp_drop: true,
            delivered_through: Some(23),
        }
    }

    #[test]
    fn header_round_trip() {
        let h = header();
        let block = h.encode();
        assert_eq!(block.len(), HEADER_LEN as usize);
        assert_eq!(Header::decode(&block), Some(h.clone()));
        assert_eq!(h.new_len(), 400);
        let text = String::from_utf8_lossy(&block[..200]).into_owned();
        assert!(text.starts_with("popper-journal 1\npid 4242\nspool 2049:1234567\nfrom 100\n"));
    }

    #[test]
    fn damaged_headers_are_not_committed() {
        assert_eq!(Header::decode(&[0; 4096]), None);
        assert_eq!(Header::decode(b""), None);
        let block = header().encode();
        // Any single changed byte in the text is caught.
        let text_len = memchr::memchr(0, &block).unwrap();
        for i in 0..text_len {
            let mut b = block.clone();
            b[i] ^= 0x01;
            assert_eq!(Header::decode(&b), None, "byte {i}");
        }
        // A torn write: only the first part of the block reached the disk.
        for cut in [1, 10, 50, text_len - 1] {
            let mut b = vec![0u8; 4096];
            b[..cut].copy_from_slice(&block[..cut]);
            assert_eq!(Header::decode(&b), None, "cut {cut}");
        }
        assert_eq!(Header::decode(&vec![0xff; 4096]), None);
    }
}
