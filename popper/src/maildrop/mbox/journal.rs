//! The update journal `SPOOL/.USER.pop.journal`: the new tail of the spool,
//! made durable before the spool itself is touched, so that an update cut
//! short at any instant can be finished at the next login (see the
//! protocol in `update.rs`).
//!
//! Layout: a 4096-byte header block, then the tail bytes. The header is
//! text (so an administrator can read it with `head`), NUL-padded, ending
//! in a checksum line; a header of zeros (written when the journal is
//! created) means "not committed". The header is written once, after the
//! tail is on disk: a journal with a valid header is complete.
//!
//! ```text
//! popper-journal 1
//! pid 4242
//! spool 2049:1234567
//! from 1048576
//! old-length 2097152
//! tail-length 1050000
//! sample 46726f6d20...
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

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::fs_error;
use crate::protocol::error::MaildropError;
use crate::sys;

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

    fn encode(&self) -> Vec<u8> {
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

/// An open journal file.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// The journal's path for a session lock path `SPOOL/.USER.pop`.
    pub fn path_for(session_lock: &Path) -> PathBuf {
        super::lock::with_suffix(session_lock, ".journal")
    }

    /// Creates a new journal (it must not exist), mode 0600, not following
    /// a symlink, with its header block allocated (so the commit write
    /// cannot fail for lack of space).
    pub fn create(path: &Path) -> io::Result<Journal> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)?;
        let j = Journal {
            file,
            path: path.to_path_buf(),
        };
        if let Err(e) = j.file.write_all_at(&[0; HEADER_LEN as usize], 0) {
            j.discard();
            return Err(e);
        }
        Ok(j)
    }

    /// Opens an existing journal, checked like the session lock file (a
    /// regular file owned by `uid`, private, one link). `Ok(None)` when
    /// there is none.
    pub fn open(path: &Path, uid: u32) -> Result<Option<Journal>, MaildropError> {
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(MaildropError::TempNotRegular {
                    path: path.display().to_string(),
                });
            }
            Err(e) => return Err(fs_error("open", path, &e)),
        };
        let md = file.metadata().map_err(|e| fs_error("stat", path, &e))?;
        let shown = path.display().to_string();
        if !md.file_type().is_file() {
            return Err(MaildropError::TempNotRegular { path: shown });
        }
        if md.uid() != uid || md.nlink() != 1 || md.mode() & 0o077 != 0 {
            return Err(MaildropError::UnsafeSpool {
                path: shown,
                why: "the update journal is not a private file of the user".into(),
            });
        }
        Ok(Some(Journal {
            file,
            path: path.to_path_buf(),
        }))
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header, if the journal is complete.
    pub fn header(&self) -> io::Result<Option<Header>> {
        let mut block = vec![0u8; HEADER_LEN as usize];
        let mut got = 0;
        while got < block.len() {
            match self.file.read_at(&mut block[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Header::decode(&block[..got]))
    }

    /// Bytes of tail stored (the file's size past the header).
    pub fn stored_tail(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len().saturating_sub(HEADER_LEN))
    }

    /// A writer for the tail, which copies from `src` (the spool).
    pub fn writer<'a>(&'a self, src: &'a File) -> TailWriter<'a> {
        TailWriter {
            dst: &self.file,
            src,
            off: HEADER_LEN,
            // Room for a full buffer plus the small copy that tips it over,
            // so the vector never doubles (peak RSS at QUIT, `make bench`).
            buf: Vec::with_capacity(BUF + SMALL_COPY as usize + 4096),
            pending: None,
        }
    }

    /// The commit point: makes the tail durable, then writes the header and
    /// makes it, and the journal's directory entry, durable.
    pub fn commit(&self, h: &Header) -> io::Result<()> {
        self.file.sync_all()?;
        self.file.write_all_at(&h.encode(), 0)?;
        self.file.sync_all()?;
        sync_parent(&self.path)
    }

    /// Copies the tail into `spool` at `h.from` and gives the spool its new
    /// size. Safe to repeat: it only ever writes the final bytes.
    pub fn apply(&self, spool: &File, h: &Header) -> Result<(), ApplyError> {
        let new_len = h.new_len();
        let cur = spool.metadata().map_err(ApplyError::Before)?.len();
        // Nothing of the tail is written yet if growing fails: put the size
        // back (durably) and report the spool unchanged.
        let undo = |e: io::Error| match spool.set_len(cur).and_then(|()| spool.sync_all()) {
            Ok(()) => ApplyError::Before(e),
            Err(_) => ApplyError::After(e),
        };
        let mut copy_from = 0;
        if new_len > cur {
            match sys::allocate(spool.as_fd(), cur, new_len - cur) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    // No way to reserve blocks (NFSv3, some FUSE): write the
                    // part of the tail past the old end first. It lands in
                    // new space only, so running out of space there still
                    // leaves every old byte as it was.
                    let past = cur.max(h.from) - h.from;
                    copy_bytes(
                        &self.file,
                        HEADER_LEN + past,
                        spool,
                        h.from + past,
                        h.tail_len - past,
                    )
                    .map_err(undo)?;
                    copy_from = past;
                }
                Err(e) => return Err(undo(e)),
            }
        }
        // The part up to the old end (all of it, unless written above).
        let head = if copy_from > 0 { copy_from } else { h.tail_len };
        copy_bytes(&self.file, HEADER_LEN, spool, h.from, head).map_err(ApplyError::After)?;
        if cur > new_len {
            // A writer that ignored our locks may have appended during the
            // copy: then leave the size alone and let recovery keep it.
            let now = spool.metadata().map_err(ApplyError::After)?.len();
            if now != cur {
                return Err(ApplyError::After(io::Error::other(
                    "the spool grew during the update",
                )));
            }
            spool.set_len(new_len).map_err(ApplyError::After)?;
        }
        spool.sync_all().map_err(ApplyError::After)
    }

    /// Ends a journal whose update is applied (or was never committed):
    /// empties it durably first, so a directory entry that survives a
    /// crash names an empty file, never a stale journal; then unlinks it.
    pub fn clear(self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        std::fs::remove_file(&self.path)
    }

    /// Removes a journal that was never committed (best effort: a leftover
    /// uncommitted journal is discarded by the next login anyway).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Moves a journal that cannot be applied out of the way, keeping its
    /// bytes for the administrator. Returns the new path.
    pub fn set_aside(self) -> io::Result<PathBuf> {
        let to = super::lock::with_suffix(&self.path, &format!(".{}", crate::clock::now()));
        std::fs::rename(&self.path, &to)?;
        sync_parent(&to)?;
        Ok(to)
    }

    /// The journal file (recovery reads the tail through it).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Why applying a journal failed.
#[derive(Debug)]
pub enum ApplyError {
    /// Before any byte of the spool changed (it is as it was).
    Before(io::Error),
    /// After the spool began to change (the journal must be kept).
    After(io::Error),
}

/// fsync of the directory holding `path`, so a created, renamed or removed
/// name is durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// The journal's write size: large enough that a rewrite is a few hundred
/// writes a gigabyte (long unchanged runs go through `copy_file_range`
/// anyway), small enough not to show in the session's peak RSS.
const BUF: usize = 256 << 10;

/// Below this, a copied range goes through the buffer instead of its own
/// `copy_file_range`.
const SMALL_COPY: u64 = 64 << 10;

/// Writes the tail into the journal: literal bytes, and ranges of the
/// spool, which are merged when adjacent and copied in the kernel when
/// large, so a long run of unchanged messages costs one system call.
pub struct TailWriter<'a> {
    dst: &'a File,
    src: &'a File,
    off: u64,
    buf: Vec<u8>,
    pending: Option<(u64, u64)>,
}

impl TailWriter<'_> {
    /// Appends literal bytes.
    pub fn lit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.flush_pending()?;
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= BUF {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Appends `len` bytes of the spool from offset `from`.
    pub fn copy(&mut self, from: u64, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        if let Some((f, l)) = &mut self.pending
            && *f + *l == from
        {
            *l += len;
            return Ok(());
        }
        self.flush_pending()?;
        self.pending = Some((from, len));
        Ok(())
    }

    /// Appends `len` bytes of another file `other` from offset `from`
    /// (recovery: the tail of an older journal).
    pub fn copy_other(&mut self, other: &File, from: u64, len: u64) -> io::Result<()> {
        self.flush_pending()?;
        self.flush_buf()?;
        copy_bytes(other, from, self.dst, self.off, len)?;
        self.off += len;
        Ok(())
    }

    /// Writes everything out; returns the tail's length.
    pub fn finish(mut self) -> io::Result<u64> {
        self.flush_pending()?;
        self.flush_buf()?;
        Ok(self.off - HEADER_LEN)
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        let Some((from, len)) = self.pending.take() else {
            return Ok(());
        };
        if len < SMALL_COPY {
            let start = self.buf.len();
            self.buf.resize(start + len as usize, 0);
            read_exact_at(self.src, &mut self.buf[start..], from)?;
            if self.buf.len() >= BUF {
                self.flush_buf()?;
            }
            return Ok(());
        }
        self.flush_buf()?;
        copy_bytes(self.src, from, self.dst, self.off, len)?;
        self.off += len;
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.dst.write_all_at(&self.buf, self.off)?;
            self.off += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

/// The old bytes at the new end, when an update shrinks the spool from
/// `cur_len` to `new_len` (empty otherwise): recovery compares them to tell
/// whether the truncation happened.
pub fn sample_at(file: &File, new_len: u64, cur_len: u64) -> io::Result<Vec<u8>> {
    let mut sample = Vec::new();
    if new_len < cur_len {
        sample.resize((cur_len - new_len).min(SAMPLE_LEN as u64) as usize, 0);
        read_exact_at(file, &mut sample, new_len)?;
    }
    Ok(sample)
}

/// The `before` and `at` marks of `file` around `from` (see [`Header`]).
pub fn marks_at(file: &File, from: u64) -> io::Result<(u64, Vec<u8>)> {
    let start = from.saturating_sub(BEFORE_LEN);
    let mut before = vec![0u8; (from - start) as usize];
    read_exact_at(file, &mut before, start)?;
    let len = file.metadata()?.len();
    let mut at = vec![0u8; (len.saturating_sub(from)).min(AT_LEN as u64) as usize];
    read_exact_at(file, &mut at, from)?;
    Ok((fnv(&before), at))
}

/// `pread` until `buf` is full; a short file is an error (the spool
/// changed under us).
pub fn read_exact_at(src: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    src.read_exact_at(buf, offset)
}

/// Copies `len` bytes between files at the given offsets: in the kernel
/// with `copy_file_range` where it works, else through a buffer. Reaching
/// the end of `src` early is an error.
pub fn copy_bytes(
    src: &File,
    mut from: u64,
    dst: &File,
    mut to: u64,
    mut len: u64,
) -> io::Result<()> {
    let mut in_kernel = true;
    let mut buf = Vec::new();
    while len > 0 {
        let want = len.min(1 << 30) as usize;
        if in_kernel {
            match sys::copy_file_range(src.as_fd(), from, dst.as_fd(), to, want) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    from += n as u64;
                    to += n as u64;
                    len -= n as u64;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Unsupported => in_kernel = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let n = want.min(BUF);
        buf.resize(n, 0);
        src.read_exact_at(&mut buf, from)?;
        dst.write_all_at(&buf, to)?;
        from += n as u64;
        to += n as u64;
        len -= n as u64;
    }
    Ok(())
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

    #[test]
    fn journal_write_commit_apply_clear() {
        let dir = tempdir();
        let spool_path = dir.join("spool");
        std::fs::write(&spool_path, b"0123456789OLDTAIL-OLDTAIL").unwrap();
        let spool = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&spool_path)
            .unwrap();
        let jpath = dir.join(".u.pop.journal");
        let j = Journal::create(&jpath).unwrap();
        assert!(Journal::create(&jpath).is_err(), "must not reuse a journal");
        let mut w = j.writer(&spool);
        w.lit(b"NEW").unwrap();
        w.copy(0, 4).unwrap();
        w.copy(4, 2).unwrap();
        w.lit(b"!").unwrap();
        let tail_len = w.finish().unwrap();
        assert_eq!(tail_len, 10);
        assert_eq!(j.header().unwrap(), None, "not committed yet");
        let h = Header {
            pid: 1,
            spool: (0, 0),
            from: 10,
            old_len: 25,
            tail_len,
            sample: Vec::new(),
            before: 0,
            at: Vec::new(),
            merges_temp_drop: false,
            delivered_through: None,
        };
        j.commit(&h).unwrap();
        let j = Journal::open(&jpath, nix::unistd::geteuid().as_raw())
            .unwrap()
            .unwrap();
        assert_eq!(j.header().unwrap(), Some(h.clone()));
        j.apply(&spool, &h).unwrap();
        // Applying again changes nothing.
        j.apply(&spool, &h).unwrap();
        assert_eq!(std::fs::read(&spool_path).unwrap(), b"0123456789NEW012345!");
        j.clear().unwrap();
        assert!(!jpath.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn apply_grows_the_spool() {
        let dir = tempdir();
        let spool_path = dir.join("spool");
        std::fs::write(&spool_path, b"abc").unwrap();
        let spool = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&spool_path)
            .unwrap();
        let j = Journal::create(&dir.join("j")).unwrap();
        let big = vec![b'x'; 200_000];
        let mut w = j.writer(&spool);
        w.lit(&big).unwrap();
        w.copy(0, 3).unwrap();
        let tail_len = w.finish().unwrap();
        let h = Header {
            pid: 1,
            spool: (0, 0),
            from: 1,
            old_len: 3,
            tail_len,
            sample: Vec::new(),
            before: 0,
            at: Vec::new(),
            merges_temp_drop: false,
            delivered_through: None,
        };
        j.commit(&h).unwrap();
        j.apply(&spool, &h).unwrap();
        let got = std::fs::read(&spool_path).unwrap();
        assert_eq!(got.len(), 1 + 200_003);
        assert_eq!(&got[..1], b"a");
        assert!(got.ends_with(b"xabc"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn large_copies_are_merged_and_exact() {
        let dir = tempdir();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.join("src"), &data).unwrap();
        let src = File::open(dir.join("src")).unwrap();
        let j = Journal::create(&dir.join("j")).unwrap();
        let mut w = j.writer(&src);
        w.copy(0, 1_000_000).unwrap();
        w.copy(1_000_000, 1_000_000).unwrap();
        w.lit(b"|").unwrap();
        w.copy(2_500_000, 10).unwrap();
        w.copy(2_900_000, 100_000).unwrap();
        assert_eq!(w.finish().unwrap(), 2_000_000 + 1 + 10 + 100_000);
        let got = std::fs::read(dir.join("j")).unwrap();
        let tail = &got[HEADER_LEN as usize..];
        let mut want = data[..2_000_000].to_vec();
        want.push(b'|');
        want.extend_from_slice(&data[2_500_000..2_500_010]);
        want.extend_from_slice(&data[2_900_000..]);
        assert!(tail == want.as_slice());
        let mut w = j.writer(&src);
        w.copy(2_999_990, 100).unwrap();
        assert!(
            w.finish().is_err(),
            "reading past the end of the spool is an error"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "popper-journal-test-{}-{:x}",
            std::process::id(),
            sys::random_u64()
        ));
        std::fs::create_dir(&d).unwrap();
        d
    }
}
