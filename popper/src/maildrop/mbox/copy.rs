//! Copying bytes between the spool and the journal: the tail writer
//! that builds a journal's tail from literal bytes and ranges of the
//! spool, and the helpers recovery and the update read the spool with.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use super::journal_header::{AT_LEN, BEFORE_LEN, SAMPLE_LEN, fnv};
use crate::sys;

use crate::limits::COPY_CHUNK as BUF;

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
    /// Where the tail begins in `dst` (its length is `off - base`).
    base: u64,
    buf: Vec<u8>,
    pending: Option<(u64, u64)>,
}

impl<'a> TailWriter<'a> {
    /// A writer of a tail that starts at `base` in `dst` and copies from
    /// `src`.
    pub fn new(dst: &'a File, src: &'a File, base: u64) -> TailWriter<'a> {
        TailWriter {
            dst,
            src,
            off: base,
            base,
            // Room for a full buffer plus the small copy that tips it over,
            // so the vector never doubles (peak RSS at QUIT, `make bench`).
            buf: Vec::with_capacity(BUF + SMALL_COPY as usize + 4096),
            pending: None,
        }
    }

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
        Ok(self.off - self.base)
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
