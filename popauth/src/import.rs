//! `popauth -import BASE`: reading a qpopper 2.53 pop.auth, which is an
//! ndbm database (qpopper.md §5.1), in either of the two forms a Debian-era
//! site has:
//!
//! * **gdbm's ndbm layer** (libgdbm_compat; a 2.53 built with
//!   `DBM_LIBS=-lgdbm_compat -lgdbm`): `BASE.pag` is a complete GDBM file,
//!   read here with gdbm itself, and `BASE.dir` is a stub. Observed with
//!   libgdbm_compat 1.23 (`dbm_open`/`dbm_store` from C): `.dir` is 16
//!   bytes, `"GDBM"` then the writing gdbm's version as three big-endian
//!   32-bit numbers (1, 23, 0). Older gdbm made `.dir` a hard link to `.pag`
//!   instead. Either is accepted; any other `.dir` (a classic ndbm
//!   bitmap, whose `.pag` is no GDBM file either) is refused by name.
//! * **Berkeley DB's ndbm emulation** (libdb's `dbm_open`, what Debian's
//!   Python `dbm.ndbm` is too): a single `BASE.db`, a DB_HASH database,
//!   read through libdb 5.3 ([`crate::sys::bdb_records`]).
//!
//! Which one is decided from the files alone: `BASE.db` → Berkeley DB,
//! `BASE.pag` → gdbm; both or neither is an error. Every source file is
//! opened without following a symlink and checked on that descriptor: a
//! regular file, not group- or world-writable (anyone who could write it
//! could have planted a secret), not empty; it is flock-shared while read
//! (qpopper locked `.dir` or `.db`, gdbm writers lock `.pag`). The records
//! are returned exactly as stored: qpopper's format is ours
//! ([`crate::record`]: name + NUL → secret XOR 0xFF + NUL).
//!
//! Only reading is here; `app.rs` writes the new gdbm file.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::db::{LOCK_WAIT, lock, strip_os};
use crate::sys::{Gdbm, Mode, Records, bdb_records};

/// More records than any pop.auth has; a source claiming more is refused
/// rather than read into memory without end.
pub const MAX_RECORDS: usize = 10_000_000;

/// The two ndbm implementations whose files can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `BASE.dir` + `BASE.pag`, written by libgdbm_compat.
    GdbmNdbm,
    /// `BASE.db`, written by libdb's ndbm emulation.
    BerkeleyDb,
}

impl Flavour {
    /// How the output names it.
    pub fn describe(self) -> &'static str {
        match self {
            Flavour::GdbmNdbm => "gdbm ndbm",
            Flavour::BerkeleyDb => "Berkeley DB ndbm",
        }
    }
}

/// What was read.
#[derive(Debug)]
pub struct Source {
    /// Which kind of files.
    pub flavour: Flavour,
    /// The file the records came from (`BASE.pag` or `BASE.db`).
    pub data: PathBuf,
    /// Every record, key and value bytes as stored.
    pub records: Records,
}

/// `BASE` + `.ext` (not `Path::with_extension`, which would turn
/// `/etc/pop.auth` into `/etc/pop.pag`).
pub fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = OsString::from(base.as_os_str());
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Decides the flavour from which files exist.
pub fn detect(base: &Path) -> Result<Flavour, String> {
    let (db, pag) = (with_ext(base, "db"), with_ext(base, "pag"));
    match (exists(&db), exists(&pag)) {
        (true, true) => Err(format!(
            "both {} (Berkeley DB) and {} (gdbm ndbm) exist: move the one qpopper does not use out of the way",
            db.display(),
            pag.display()
        )),
        (true, false) => Ok(Flavour::BerkeleyDb),
        (false, true) => Ok(Flavour::GdbmNdbm),
        (false, false) => {
            let dir = with_ext(base, "dir");
            let hint = if exists(&dir) {
                format!(" ({} alone is not a database)", dir.display())
            } else if exists(base) {
                format!(
                    " ({} itself is a qpopper 3/4 gdbm pop.auth, which popper reads as it is)",
                    base.display()
                )
            } else {
                String::new()
            };
            Err(format!(
                "neither {} nor {} exists: nothing to import{hint}",
                pag.display(),
                db.display()
            ))
        }
    }
}

/// Opens a source file as the module documentation says, locked shared.
fn open_source(p: &Path) -> Result<File, String> {
    let shown = p.display();
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.file_type().is_symlink() => {
            return Err(format!(
                "{shown} is a symbolic link: refused (name the file it points to)"
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(format!("{shown}: {}", strip_os(&e))),
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(p)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                format!("{shown} is a symbolic link: refused (name the file it points to)")
            }
            _ => format!("{shown}: {}", strip_os(&e)),
        })?;
    let md = file
        .metadata()
        .map_err(|e| format!("{shown}: {}", strip_os(&e)))?;
    if !md.file_type().is_file() {
        return Err(format!("{shown} is not a regular file: refused"));
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{shown} is group- or world-writable (mode 0{mode:o}): refused, since anyone could have changed it (check it, then chmod go-w)"
        ));
    }
    if md.len() == 0 {
        return Err(format!(
            "{shown} is empty (0 bytes): not a database; nothing written"
        ));
    }
    lock(&file, false, LOCK_WAIT)
        .map_err(|e| format!("{shown}: unable to lock it: {}", strip_os(&e)))?;
    Ok(file)
}

/// Checks that `BASE.dir` is gdbm's: its `"GDBM"` header or a hard link to
/// `pag`.
fn check_dir(dir: &Path, dir_file: &mut File, pag: &File) -> Result<(), String> {
    let (d, p) = match (dir_file.metadata(), pag.metadata()) {
        (Ok(d), Ok(p)) => (d, p),
        (Err(e), _) | (_, Err(e)) => return Err(format!("{}: {}", dir.display(), strip_os(&e))),
    };
    if (d.dev(), d.ino()) == (p.dev(), p.ino()) {
        return Ok(());
    }
    let mut head = [0u8; 4];
    let magic = dir_file.read_exact(&mut head).is_ok() && &head == b"GDBM";
    if magic {
        Ok(())
    } else {
        Err(format!(
            "{} is not gdbm's (no \"GDBM\" header, not a hard link to the .pag): a classic ndbm database, which popauth cannot read",
            dir.display()
        ))
    }
}

/// Reads every record of the database at `base`.
pub fn read(base: &Path) -> Result<Source, String> {
    let flavour = detect(base)?;
    match flavour {
        Flavour::GdbmNdbm => read_gdbm(base),
        Flavour::BerkeleyDb => read_bdb(base),
    }
}

fn damaged(p: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!(
        "{}: cannot read it as a {what} database ({e}): damaged? nothing written",
        p.display()
    )
}

fn read_gdbm(base: &Path) -> Result<Source, String> {
    let (dir, pag) = (with_ext(base, "dir"), with_ext(base, "pag"));
    if !exists(&dir) {
        return Err(format!(
            "{} exists but {} does not: not a database gdbm's ndbm layer wrote",
            pag.display(),
            dir.display()
        ));
    }
    let mut dir_file = open_source(&dir)?;
    let pag_file = open_source(&pag)?;
    check_dir(&dir, &mut dir_file, &pag_file)?;
    let fd: OwnedFd = pag_file
        .try_clone()
        .map_err(|e| format!("{}: {}", pag.display(), strip_os(&e)))?
        .into();
    let what = "gdbm";
    let db = Gdbm::open_fd(fd, &pag.display().to_string(), Mode::Reader)
        .map_err(|e| damaged(&pag, what, e))?;
    let keys = db.keys().map_err(|e| damaged(&pag, what, e))?;
    if keys.len() > MAX_RECORDS {
        return Err(damaged(
            &pag,
            what,
            format!("more than {MAX_RECORDS} records"),
        ));
    }
    let mut records = Vec::with_capacity(keys.len());
    for k in keys {
        match db.fetch(&k) {
            Ok(Some(v)) => records.push((k, v)),
            Ok(None) => return Err(damaged(&pag, what, "a key without its value")),
            Err(e) => return Err(damaged(&pag, what, e)),
        }
    }
    drop(db);
    drop((dir_file, pag_file));
    Ok(Source {
        flavour: Flavour::GdbmNdbm,
        data: pag,
        records,
    })
}

fn read_bdb(base: &Path) -> Result<Source, String> {
    let data = with_ext(base, "db");
    let file = open_source(&data)?;
    // libdb opens by name only: the descriptor checked above is named
    // through /proc, so it reads exactly that file, whatever happens to
    // the path meanwhile.
    let by_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
    if !Path::new(&by_fd).exists() {
        return Err(format!(
            "{}: /proc is not mounted, which reading a Berkeley DB needs",
            data.display()
        ));
    }
    let records =
        bdb_records(&by_fd, MAX_RECORDS).map_err(|e| damaged(&data, "Berkeley DB hash", e))?;
    drop(file);
    Ok(Source {
        flavour: Flavour::BerkeleyDb,
        data,
        records,
    })
}

/// How many records are not in qpopper's format (a key without its
/// trailing NUL: popper, which looks names up with one, never finds them).
pub fn foreign_records(records: &[(Vec<u8>, Vec<u8>)]) -> usize {
    records.iter().filter(|(k, _)| k.last() != Some(&0)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record;
    use std::os::unix::fs::PermissionsExt;

    fn tempdir(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let d = std::env::temp_dir().join(format!(
            "popauth-import-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&d).unwrap();
        d
    }

    /// A GDBM file at `p` with `records`, written by our own wrapper (the
    /// e2e tests write them with libgdbm_compat's dbm_store from C).
    fn gdbm_file(p: &Path, records: &[(&[u8], &[u8])]) {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(p)
            .unwrap();
        let mut db = Gdbm::open_fd(f.into(), "t", Mode::NewDb).unwrap();
        for (k, v) in records {
            db.store(k, v).unwrap();
        }
    }

    #[test]
    fn with_ext_appends() {
        assert_eq!(
            with_ext(Path::new("/etc/pop.auth"), "pag"),
            PathBuf::from("/etc/pop.auth.pag")
        );
    }

    #[test]
    fn detection_from_the_files() {
        let d = tempdir("detect");
        let base = d.join("pop.auth");
        let e = detect(&base).unwrap_err();
        assert!(e.contains("nothing to import"), "{e}");
        std::fs::write(&base, b"x").unwrap();
        assert!(detect(&base).unwrap_err().contains("qpopper 3/4 gdbm"));
        std::fs::write(with_ext(&base, "dir"), b"GDBM").unwrap();
        assert!(detect(&base).unwrap_err().contains("alone is not"));
        std::fs::write(with_ext(&base, "pag"), b"x").unwrap();
        assert_eq!(detect(&base), Ok(Flavour::GdbmNdbm));
        std::fs::write(with_ext(&base, "db"), b"x").unwrap();
        assert!(detect(&base).unwrap_err().contains("both"));
        std::fs::remove_file(with_ext(&base, "pag")).unwrap();
        assert_eq!(detect(&base), Ok(Flavour::BerkeleyDb));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn gdbm_ndbm_with_magic_dir_or_hard_link_reads_every_record() {
        let d = tempdir("gdbm");
        let base = d.join("pop.auth");
        let alice = (record::key(b"alice"), record::encode(b"tanstaaf").unwrap());
        gdbm_file(&with_ext(&base, "pag"), &[(&alice.0, &alice.1)]);
        let dir = with_ext(&base, "dir");
        std::fs::write(&dir, b"GDBM\0\0\0\x01\0\0\0\x17\0\0\0\0").unwrap();
        let s = read(&base).unwrap();
        assert_eq!(s.flavour, Flavour::GdbmNdbm);
        assert_eq!(s.records, vec![alice.clone()]);
        assert_eq!(foreign_records(&s.records), 0);
        std::fs::remove_file(&dir).unwrap();
        std::fs::hard_link(with_ext(&base, "pag"), &dir).unwrap();
        assert_eq!(read(&base).unwrap().records, vec![alice]);
        // A classic ndbm .dir (a bitmap) is refused by name.
        std::fs::remove_file(&dir).unwrap();
        std::fs::write(&dir, [0u8; 4096]).unwrap();
        let e = read(&base).unwrap_err();
        assert!(e.contains("classic ndbm"), "{e}");
        std::fs::remove_file(&dir).unwrap();
        let e = read(&base).unwrap_err();
        assert!(e.contains("does not"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refusals_symlink_writable_empty_damaged() {
        let d = tempdir("refuse");
        let base = d.join("pop.auth");
        let real = d.join("real.pag");
        gdbm_file(&real, &[(b"bob\0", b"x\0")]);
        std::fs::write(with_ext(&base, "dir"), b"GDBM\0\0\0\x01\0\0\0\x17\0\0\0\0").unwrap();
        std::os::unix::fs::symlink(&real, with_ext(&base, "pag")).unwrap();
        let e = read(&base).unwrap_err();
        assert!(e.contains("is a symbolic link: refused"), "{e}");
        std::fs::remove_file(with_ext(&base, "pag")).unwrap();
        std::fs::rename(&real, with_ext(&base, "pag")).unwrap();
        assert_eq!(read(&base).unwrap().records.len(), 1);
        let pag = with_ext(&base, "pag");
        std::fs::set_permissions(&pag, std::fs::Permissions::from_mode(0o620)).unwrap();
        let e = read(&base).unwrap_err();
        assert!(e.contains("group- or world-writable (mode 0620)"), "{e}");
        std::fs::set_permissions(&pag, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&pag, b"").unwrap();
        let e = read(&base).unwrap_err();
        assert!(e.contains("is empty"), "{e}");
        std::fs::write(&pag, vec![0x5au8; 8192]).unwrap();
        let e = read(&base).unwrap_err();
        assert!(e.contains("cannot read it as a gdbm database"), "{e}");
        // Berkeley DB: garbage is refused with libdb's reason.
        std::fs::remove_file(&pag).unwrap();
        std::fs::write(with_ext(&base, "db"), vec![0x5au8; 8192]).unwrap();
        std::fs::set_permissions(
            with_ext(&base, "db"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let e = read(&base).unwrap_err();
        assert!(
            e.contains("cannot read it as a Berkeley DB hash database"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn foreign_records_are_counted() {
        let r = vec![
            (b"alice\0".to_vec(), b"x\0".to_vec()),
            (b"bob".to_vec(), b"x".to_vec()),
        ];
        assert_eq!(foreign_records(&r), 1);
    }
}
