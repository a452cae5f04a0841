//! A qpopper temporary maildrop folded back into the spool at login.
//!
//! qpopper 2.53 copied the spool into `SPOOL/.USER.pop` at login and
//! emptied the spool; a qpopper that died left the user's mail there
//! (qpopper.md §9.7). popper uses the same file as its session lock, so a
//! non-empty one is folded back into the front of the spool, as qpopper
//! would have, through the journal — the same crash-safe step as any
//! update (`recover.rs` rolls such a journal forward if popper dies).

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use super::copy::{marks_at, read_exact_at};
use super::journal::{Header, Journal};
use super::recover::Ctx;
use super::update::apply_committed;
use crate::maildrop::error::{MaildropError, fs_error};

/// Empties the session lock file once what it held is in the spool.
pub fn empty(ctx: &Ctx<'_>) -> Result<(), MaildropError> {
    let (f, path) = (ctx.session_file, ctx.session_path);
    f.set_len(0).map_err(|e| fs_error("ftruncate", path, &e))?;
    f.sync_all().map_err(|e| fs_error("fsync", path, &e))
}

/// Folds a qpopper temporary maildrop left in the session lock file back
/// into the front of the spool. Returns whether it changed the spool.
pub fn merge(
    ctx: &Ctx<'_>,
    spool: &mut Option<File>,
    notes: &mut Vec<String>,
) -> Result<bool, MaildropError> {
    let d = ctx.session_file;
    let dpath = ctx.session_path;
    let dlen = d.metadata().map_err(|e| fs_error("stat", dpath, &e))?.len();
    if dlen == 0 {
        return Ok(false);
    }
    let mut first = [0u8; 5];
    let n = FileExt::read_at(d, &mut first, 0).map_err(|e| fs_error("read", dpath, &e))?;
    if !(first[..n].starts_with(b"From ") || first.first() == Some(&0x01)) {
        return Err(MaildropError::BadTempDrop {
            path: dpath.display().to_string(),
        });
    }
    // MboxDrop::open made the spool (and locked it) if there was none.
    let Some(file) = spool.as_ref() else {
        return Err(MaildropError::BadTempDrop {
            path: dpath.display().to_string(),
        });
    };
    let md = file
        .metadata()
        .map_err(|e| fs_error("stat", ctx.spool_path, &e))?;
    let size = md.len();
    // qpopper died after copying the spool into its temporary maildrop but
    // before emptying the spool: the messages at the end of the one are
    // still at the start of the other. Fold back only what is not.
    let full = dlen;
    let dlen = unique_part(d, dlen, file, size).map_err(|e| fs_error("read", dpath, &e))?;
    if dlen == 0 {
        empty(ctx)?;
        notes.push(format!(
            "{} held only mail that is also in {}; emptied it",
            dpath.display(),
            ctx.spool_path.display()
        ));
        return Ok(true);
    }
    if dlen < full {
        notes.push(format!(
            "{} bytes of {} were also at the start of {}; folded back the other {dlen}",
            full - dlen,
            dpath.display(),
            ctx.spool_path.display()
        ));
    }
    let jerr = |e: io::Error| fs_error("write", ctx.journal_path, &e);
    let (before, at) = marks_at(file, 0).map_err(|e| fs_error("read", ctx.spool_path, &e))?;
    let j = Journal::create(ctx.journal_path).map_err(jerr)?;
    let mut w = j.writer(file);
    w.copy_other(d, 0, dlen).map_err(jerr)?;
    // The spool's first message must follow an empty line.
    let mut last2 = [0u8; 2];
    let tail_at = dlen.saturating_sub(2);
    let got = FileExt::read_at(d, &mut last2, tail_at).map_err(|e| fs_error("read", dpath, &e))?;
    let ends_blank = got == 2 && last2 == *b"\n\n";
    if size > 0 && !ends_blank {
        w.lit(if last2[got.saturating_sub(1)] == b'\n' {
            b"\n"
        } else {
            b"\n\n"
        })
        .map_err(jerr)?;
    }
    w.copy(0, size).map_err(jerr)?;
    let tail_len = match w.finish() {
        Ok(n) => n,
        Err(e) => {
            j.discard();
            return Err(jerr(e));
        }
    };
    let header = Header {
        pid: std::process::id(),
        spool: (md.dev(), md.ino()),
        from: 0,
        old_len: size,
        tail_len,
        sample: Vec::new(),
        before,
        at,
        merges_temp_drop: true,
        delivered_through: None,
    };
    if let Err(e) = j.commit(&header) {
        j.discard();
        return Err(jerr(e));
    }
    // The temporary maildrop is emptied before the journal is cleared: a
    // crash in between leaves a journal that says to empty it, never mail
    // in both places with nothing to say it was merged.
    apply_committed(file, ctx.spool_path, j, &header, &|| empty(ctx))?;
    notes.push(format!(
        "moved {dlen} bytes of mail left by qpopper in {} back into {}",
        dpath.display(),
        ctx.spool_path.display()
    ));
    Ok(true)
}

/// The length of the part of the temporary maildrop `d` that is not also
/// the start of the spool: the smallest message boundary `m` in `d` such
/// that `d[m..]` equals the first bytes of the spool, else all of `d`.
fn unique_part(d: &File, dlen: u64, spool: &File, size: u64) -> io::Result<u64> {
    let starts: Vec<u64> = match super::scan::scan(d, dlen) {
        Ok(sc) => sc.msgs.iter().map(|m| m.start).collect(),
        Err(_) => return Ok(dlen),
    };
    let mut a = vec![0u8; 64 << 10];
    let mut b = vec![0u8; 64 << 10];
    'next: for m in starts {
        let len = dlen - m;
        if len > size {
            continue;
        }
        let mut done = 0;
        while done < len {
            let n = ((len - done) as usize).min(a.len());
            read_exact_at(d, &mut a[..n], m + done)?;
            read_exact_at(spool, &mut b[..n], done)?;
            if a[..n] != b[..n] {
                continue 'next;
            }
            done += n as u64;
        }
        return Ok(m);
    }
    Ok(dlen)
}
