//! Every call into libgdbm and libdb, each `unsafe` block with its
//! `// SAFETY:` argument; the rest of the crate is safe code over
//! [`Gdbm`] and [`bdb_records`].
//!
//! The `gdbm` crate is not used: it reads a stale `gdbm_errno`, recurses
//! forever in `Display` and cannot iterate keys (crates.md). This wrapper
//! over `gdbm-sys` is what popauth and popper need and no more.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};

use gdbm_sys::{
    GDBM_FILE, GDBM_ITEM_NOT_FOUND, GDBM_REPLACE, datum, gdbm_close, gdbm_delete,
    gdbm_errno_location, gdbm_fetch, gdbm_firstkey, gdbm_nextkey, gdbm_store, gdbm_strerror,
    gdbm_sync,
};

/// Flags of `gdbm_fd_open` not in gdbm-sys 0.3 (gdbm.h of libgdbm 1.23).
pub const GDBM_CLOEXEC: c_int = 0x100;
/// Close the descriptor if the open fails.
pub const GDBM_CLOERROR: c_int = 0x400;

unsafe extern "C" {
    /// libgdbm ≥ 1.11: opens a database on a descriptor the caller opened
    /// (so it can be opened without following symlinks and checked with
    /// fstat before gdbm reads a byte).
    fn gdbm_fd_open(
        fd: c_int,
        file_name: *const c_char,
        block_size: c_int,
        flags: c_int,
        fatal_func: Option<unsafe extern "C" fn(*const c_char)>,
    ) -> GDBM_FILE;
    /// libgdbm ≥ 1.13: whether the last error has an `errno` behind it.
    fn gdbm_check_syserr(err: c_int) -> c_int;
}

/// A gdbm error with its text (and the system error behind it, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdbmError {
    /// gdbm's error number.
    pub code: c_int,
    /// `gdbm_strerror`, plus `strerror` when gdbm says an errno caused it.
    pub text: String,
}

impl std::fmt::Display for GdbmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for GdbmError {}

fn last_error() -> GdbmError {
    // Read errno first: gdbm_strerror must not disturb it.
    let os = io::Error::last_os_error();
    // SAFETY: gdbm_errno_location returns a pointer to libgdbm's
    // thread-local error variable, valid for the life of the thread.
    let code = unsafe { *gdbm_errno_location() };
    // SAFETY: gdbm_strerror returns a pointer to a static string for any
    // error number.
    let text = unsafe { CStr::from_ptr(gdbm_strerror(code)) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: a pure function of its integer argument.
    let syserr = unsafe { gdbm_check_syserr(code) } != 0;
    let text = if syserr {
        format!("{text} ({os})")
    } else {
        text
    };
    GdbmError { code, text }
}

/// An open gdbm database. Not `Sync` (libgdbm handles are not); closed on
/// drop, which also closes its descriptor.
#[derive(Debug)]
pub struct Gdbm {
    h: GDBM_FILE,
}

// SAFETY: a gdbm handle has no thread affinity; it may be moved between
// threads as long as only one uses it at a time, which `&mut`/ownership
// guarantee (the type is not Sync).
unsafe impl Send for Gdbm {}

/// How to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read only.
    Reader,
    /// Read and write an existing database.
    Writer,
    /// Create a new, empty database (truncating the file).
    NewDb,
}

/// Turns a byte slice into a gdbm datum borrowing it. gdbm does not write
/// through the pointer of a key or value passed in.
fn datum_of(bytes: &[u8]) -> datum {
    datum {
        dptr: bytes.as_ptr() as *mut c_char,
        dsize: bytes.len() as c_int,
    }
}

/// Copies a datum gdbm returned (malloc'ed) into a Vec and frees it.
fn take(d: datum) -> Option<Vec<u8>> {
    if d.dptr.is_null() {
        return None;
    }
    let len = usize::try_from(d.dsize).unwrap_or(0);
    // SAFETY: gdbm returned a malloc'ed buffer of dsize bytes, which we own.
    let v = unsafe { std::slice::from_raw_parts(d.dptr as *const u8, len) }.to_vec();
    // SAFETY: the buffer came from malloc inside libgdbm and is freed once.
    unsafe { libc::free(d.dptr as *mut c_void) };
    Some(v)
}

impl Gdbm {
    /// Opens the database on `fd` (opened and checked by the caller);
    /// `name` is only used in gdbm's messages. gdbm's own flock locking is
    /// off: callers take the lock themselves, waiting, where gdbm would
    /// fail at once.
    pub fn open_fd(fd: OwnedFd, name: &str, mode: Mode) -> Result<Gdbm, GdbmError> {
        let name = CString::new(name.replace('\0', "?")).unwrap_or_default();
        let flags = match mode {
            Mode::Reader => gdbm_sys::GDBM_READER,
            Mode::Writer => gdbm_sys::GDBM_WRITER | gdbm_sys::GDBM_SYNC,
            Mode::NewDb => gdbm_sys::GDBM_NEWDB | gdbm_sys::GDBM_SYNC,
        } as c_int
            | gdbm_sys::GDBM_NOLOCK as c_int
            | GDBM_CLOEXEC
            | GDBM_CLOERROR;
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` is an open descriptor whose ownership passes to
        // libgdbm (GDBM_CLOERROR: it is closed on failure too); `name` is a
        // valid C string for the call; block size 0 = gdbm's default; no
        // fatal callback (gdbm returns errors instead).
        let h = unsafe { gdbm_fd_open(raw, name.as_ptr(), 0, flags, None) };
        if h.is_null() {
            return Err(last_error());
        }
        Ok(Gdbm { h })
    }

    /// The value stored under `key`, if any.
    pub fn fetch(&self, key: &[u8]) -> Result<Option<Vec<u8>>, GdbmError> {
        // SAFETY: `self.h` is an open handle; the key datum points into
        // `key`, alive for the call.
        let d = unsafe { gdbm_fetch(self.h, datum_of(key)) };
        match take(d) {
            Some(v) => Ok(Some(v)),
            None => {
                let e = last_error();
                if e.code == GDBM_ITEM_NOT_FOUND as c_int {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Stores `value` under `key`, replacing any old value.
    pub fn store(&mut self, key: &[u8], value: &[u8]) -> Result<(), GdbmError> {
        // SAFETY: open handle; both datums point into live slices.
        let rc = unsafe {
            gdbm_store(
                self.h,
                datum_of(key),
                datum_of(value),
                GDBM_REPLACE as c_int,
            )
        };
        if rc == 0 { Ok(()) } else { Err(last_error()) }
    }

    /// Deletes `key`; `Ok(false)` when it was not there.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, GdbmError> {
        // SAFETY: open handle; the key datum points into `key`.
        let rc = unsafe { gdbm_delete(self.h, datum_of(key)) };
        if rc == 0 {
            return Ok(true);
        }
        let e = last_error();
        if e.code == GDBM_ITEM_NOT_FOUND as c_int {
            Ok(false)
        } else {
            Err(e)
        }
    }

    /// Every key (in gdbm's order). Collected before returning, since
    /// writing during a key walk is not safe in gdbm.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, GdbmError> {
        let mut out = Vec::new();
        // SAFETY: open handle.
        let mut k = unsafe { gdbm_firstkey(self.h) };
        while let Some(key) = take(k) {
            // SAFETY: open handle; the datum points into `key`, alive for
            // the call (gdbm copies what it needs).
            k = unsafe { gdbm_nextkey(self.h, datum_of(&key)) };
            out.push(key);
        }
        let e = last_error();
        if e.code == GDBM_ITEM_NOT_FOUND as c_int || e.code == 0 {
            Ok(out)
        } else {
            Err(e)
        }
    }

    /// Turns gdbm's fsync after every store on or off (`GDBM_SETSYNCMODE`):
    /// off while `-import` fills a new file that is synced once at the end.
    pub fn set_sync(&mut self, on: bool) -> Result<(), GdbmError> {
        let mut v: c_int = c_int::from(on);
        // SAFETY: open handle; GDBM_SETSYNCMODE reads one int from the
        // pointer, which points at `v` and gives its size.
        let rc = unsafe {
            gdbm_sys::gdbm_setopt(
                self.h,
                gdbm_sys::GDBM_SYNCMODE as c_int,
                &mut v,
                std::mem::size_of::<c_int>() as c_int,
            )
        };
        if rc == 0 { Ok(()) } else { Err(last_error()) }
    }

    /// Writes everything to disk.
    pub fn sync(&mut self) {
        // SAFETY: open handle.
        unsafe { gdbm_sync(self.h) }
    }
}

impl Drop for Gdbm {
    fn drop(&mut self) {
        // SAFETY: the handle is open and closed exactly once, here; this
        // also closes the descriptor passed to gdbm_fd_open.
        unsafe { gdbm_close(self.h) }
    }
}

/// Records as stored: (key, value) byte strings.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// What the Berkeley DB shim (`csrc/bdb.c`) calls back with for a record.
type BdbRecordFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
) -> c_int;

/// The shim's "the callback stopped the walk".
const BDB_STOPPED: c_int = -1;

unsafe extern "C" {
    /// `csrc/bdb.c`: opens `path` read-only as a DB_HASH database and
    /// calls `each` for every record.
    fn popauth_bdb_each(path: *const c_char, each: BdbRecordFn, ctx: *mut c_void) -> c_int;
    /// libdb: the text of a libdb or errno error number (a static string).
    fn db_strerror(error: c_int) -> *const c_char;
}

/// A Berkeley DB error: libdb's number and `db_strerror` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BdbError {
    /// libdb's (or errno's) number.
    pub code: c_int,
    /// Its text.
    pub text: String,
}

impl std::fmt::Display for BdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What [`collect_record`] fills: the records so far, and how many may be.
struct Collected {
    records: Records,
    limit: usize,
}

/// Copies one record into the `Collected` behind `ctx`.
unsafe extern "C" fn collect_record(
    ctx: *mut c_void,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
) -> c_int {
    // SAFETY: `ctx` is the `&mut Collected` that `bdb_records` passed to
    // the shim, which is alive and not otherwise used during the walk.
    let c = unsafe { &mut *(ctx as *mut Collected) };
    if c.records.len() >= c.limit {
        return 1;
    }
    let copy = |p: *const c_void, n: usize| -> Vec<u8> {
        if p.is_null() || n == 0 {
            Vec::new()
        } else {
            // SAFETY: libdb hands out a DBT whose data points at `n`
            // readable bytes until the next cursor call; copied now.
            unsafe { std::slice::from_raw_parts(p as *const u8, n) }.to_vec()
        }
    };
    c.records.push((copy(key, key_len), copy(value, value_len)));
    0
}

/// Every record of the Berkeley DB hash file at `path` (opened read only,
/// no environment), at most `limit` of them (more is an error: a pop.auth
/// is not that big, and memory is not unbounded).
pub fn bdb_records(path: &str, limit: usize) -> Result<Records, BdbError> {
    let c_path = CString::new(path).map_err(|_| BdbError {
        code: libc::EINVAL,
        text: "a NUL in the path".into(),
    })?;
    let mut c = Collected {
        records: Vec::new(),
        limit,
    };
    // SAFETY: `c_path` is a valid C string for the call; the callback
    // matches the shim's typedef and only touches `c` through `ctx`,
    // which outlives the call; the shim holds nothing after returning.
    let rc = unsafe {
        popauth_bdb_each(
            c_path.as_ptr(),
            collect_record,
            &mut c as *mut Collected as *mut c_void,
        )
    };
    match rc {
        0 => Ok(c.records),
        BDB_STOPPED => Err(BdbError {
            code: rc,
            text: format!("more than {limit} records"),
        }),
        _ => Err(BdbError {
            code: rc,
            // SAFETY: db_strerror returns a pointer to a static string
            // (or a thread-local buffer) for any number.
            text: unsafe { CStr::from_ptr(db_strerror(rc)) }
                .to_string_lossy()
                .into_owned(),
        }),
    }
}

/// Empties the environment. popauth runs setuid: nothing a caller puts
/// there (`IFS`, `PATH`, `LD_*`, `TMPDIR`, locale, `HOME`, or entries
/// that are not even `NAME=value`) may reach any code it runs.
pub fn clear_environment() {
    // SAFETY: called first thing in `main`, before any thread exists, so
    // nothing reads the environment concurrently; clearenv cannot fail on
    // glibc.
    unsafe { libc::clearenv() };
}

/// Makes sure descriptors 0, 1 and 2 are open (on /dev/null if the caller
/// closed them), so that a file popauth opens later can never be one of
/// them and receive what is written to standard output or error.
pub fn ensure_standard_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor table.
        let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
        if !open {
            // SAFETY: open(2) with a constant NUL-terminated path; the
            // lowest free descriptor is `fd`, which is what we want.
            let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if got != fd {
                // Something is badly wrong with the descriptor table.
                std::process::abort();
            }
        }
    }
}
