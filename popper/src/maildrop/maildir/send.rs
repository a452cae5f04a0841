//! RETR and TOP from a Maildir: the message's file streamed through the
//! core's wire encoder, [`SEND_CHUNK`] bytes per `pread`, as it is (no
//! header is added or dropped: a Maildir message has no envelope and no
//! UID inside it).
//!
//! The file is found again by the name it has now (another reader may have
//! moved it to `cur/` or changed its flags: `list::locate`). One that is
//! gone, or that no longer has the size listed at login, is
//! [`SendError::Gone`]: the core answers `-ERR` for that message and the
//! session goes on, or, when part of the message is already out, ends the
//! connection. So the client never gets more or fewer bytes than were
//! announced without an error.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use pop3_core::maildrop::{Output, SendError};
use pop3_core::wire::Encoder;

use super::list::{Listed, locate};
use super::ops::Dirs;
use crate::limits::SEND_CHUNK;
use crate::maildrop::error::{MaildropError, fs_error};

/// Opens message `m` under the name it has now (updating `m`'s name), if
/// it is still the file listed. `Ok(None)`: it is gone.
pub fn open_message(dirs: &Dirs, m: &mut Listed) -> io::Result<Option<File>> {
    let same = |f: &File| {
        f.metadata()
            .is_ok_and(|md| md.file_type().is_file() && md.dev() == m.dev && md.ino() == m.ino)
    };
    if let Ok(f) = dirs.open_read(m.sub, m.name_bytes())
        && same(&f)
    {
        return Ok(Some(f));
    }
    let Some((sub, name)) = locate(dirs, m)? else {
        return Ok(None);
    };
    m.sub = sub;
    m.name = name;
    match dirs.open_read(m.sub, m.name_bytes()) {
        Ok(f) if same(&f) => Ok(Some(f)),
        // Moved again between the look and the open: gone for this send.
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sends message `m` (wire number `num`, announced as `size`): all of it
/// (`body_lines` `None`) or its header and that many body lines. Returns
/// the bytes sent without dot-stuffing.
pub fn send(
    dirs: &Dirs,
    root: &Path,
    m: &mut Listed,
    (num, size): (u32, u64),
    body_lines: Option<u64>,
    out: &mut dyn Output,
) -> Result<u64, SendError> {
    let changed = || SendError::Gone(MaildropError::MessageChanged { num }.into());
    let file = match open_message(dirs, m) {
        Ok(Some(f)) => f,
        Ok(None) => return Err(SendError::Gone(MaildropError::MessageGone { num }.into())),
        Err(e) => {
            let dir = root.join(m.sub.dir());
            return Err(SendError::Storage(fs_error("scan", &dir, &e).into()));
        }
    };
    let path = m.path(root);
    let len = file
        .metadata()
        .map_err(|e| SendError::Storage(fs_error("stat", &path, &e).into()))?
        .len();
    if len != m.len {
        return Err(changed());
    }
    let mut enc = Encoder::new(body_lines);
    let mut buf = vec![0u8; SEND_CHUNK];
    let mut at = 0;
    while at < len && !enc.is_done() {
        let want = (len - at).min(buf.len() as u64) as usize;
        let n = match file.read_at(&mut buf[..want], at) {
            // Cut under us.
            Ok(0) => return Err(changed()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SendError::Storage(fs_error("read", &path, &e).into())),
        };
        enc.feed(&buf[..n], out.buffer());
        out.drain().map_err(SendError::Client)?;
        at += n as u64;
    }
    enc.finish(out.buffer());
    // Rewritten in place with the same length: not what was announced.
    if body_lines.is_none() && enc.sent() != size {
        return Err(changed());
    }
    Ok(enc.sent())
}
