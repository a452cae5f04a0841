//! Every call into C that needs `unsafe`, each with its `// SAFETY:`
//! argument. Nothing else in popper may use `unsafe` (the crate denies it).
//!
//! Kept small on purpose (sudo-rs's lesson): shadow lookup, libxcrypt,
//! the OS random source, fallocate, copy_file_range, reverse DNS, signal
//! handlers and returning free heap pages.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The fields of a shadow entry popper uses.
#[derive(Clone)]
pub struct ShadowEntry {
    /// The password hash (`$y$...`, `$6$...`, `!...`, `*`, or empty).
    pub hash: Vec<u8>,
    /// Day of the last password change (days since the epoch; 0 = must change; -1 = unset).
    pub last_change: i64,
    /// Maximum password age in days (-1 = none).
    pub max_age: i64,
    /// Day the account expires (-1 = never).
    pub expire: i64,
}

impl Drop for ShadowEntry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.hash);
    }
}

/// Looks `name` up in the shadow database (needs root or group shadow).
/// `Ok(None)` when there is no entry.
pub fn shadow_entry(name: &CStr) -> io::Result<Option<ShadowEntry>> {
    let mut buflen = 1024usize;
    loop {
        let mut buf = vec![0 as c_char; buflen];
        // SAFETY: an all-zero `spwd` is a valid value of this plain C struct
        // (null pointers and zero integers); getspnam_r fills it in.
        let mut sp: libc::spwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::spwd = std::ptr::null_mut();
        // SAFETY: `name` is a valid NUL-terminated string; `sp`, `buf` and
        // `result` are valid for writes, and `buflen` is `buf`'s length.
        let rc = unsafe {
            libc::getspnam_r(
                name.as_ptr(),
                &mut sp,
                buf.as_mut_ptr(),
                buflen,
                &mut result,
            )
        };
        if rc == libc::ERANGE && buflen < (1 << 20) {
            buflen *= 4;
            continue;
        }
        if result.is_null() {
            return match rc {
                0 | libc::ENOENT => Ok(None),
                e => Err(io::Error::from_raw_os_error(e)),
            };
        }
        let hash = if sp.sp_pwdp.is_null() {
            Vec::new()
        } else {
            // SAFETY: on success sp_pwdp points to a NUL-terminated string
            // inside `buf`, which is alive here.
            unsafe { CStr::from_ptr(sp.sp_pwdp) }.to_bytes().to_vec()
        };
        let entry = ShadowEntry {
            hash,
            last_change: sp.sp_lstchg,
            max_age: sp.sp_max,
            expire: sp.sp_expire,
        };
        zeroize::Zeroize::zeroize(&mut buf);
        return Ok(Some(entry));
    }
}

#[link(name = "crypt")]
unsafe extern "C" {
    /// libxcrypt: hashes `phrase` with the method and salt in `setting`
    /// into `data` (a `struct crypt_data` of `size` bytes); NULL on error.
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut c_void,
        size: c_int,
    ) -> *mut c_char;
}

/// `sizeof(struct crypt_data)` in libxcrypt 4.4 (32768); passed to
/// `crypt_rn` so a different size is refused, not overrun.
const CRYPT_DATA_SIZE: usize = 32768;

/// Hashes `password` with the method and salt of `hash` (libxcrypt, so
/// every method the system can write: yescrypt, sha512/256crypt, md5crypt,
/// bcrypt, DES). `None` when the hash is unusable (locked, empty, unknown
/// method) or the password contains NUL.
pub fn crypt(password: &[u8], hash: &[u8]) -> Option<Vec<u8>> {
    let phrase = CString::new(password).ok()?;
    let setting = CString::new(hash).ok()?;
    let mut data = vec![0u8; CRYPT_DATA_SIZE];
    // SAFETY: both strings are NUL-terminated; `data` is a writable buffer
    // of CRYPT_DATA_SIZE bytes, which is the size we pass.
    let out = unsafe {
        crypt_rn(
            phrase.as_ptr(),
            setting.as_ptr(),
            data.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as c_int,
        )
    };
    let result = if out.is_null() {
        None
    } else {
        // SAFETY: on success crypt_rn returns a NUL-terminated string inside `data`.
        let s = unsafe { CStr::from_ptr(out) }.to_bytes().to_vec();
        // libxcrypt's failure token starts with '*'.
        (!s.starts_with(b"*")).then_some(s)
    };
    zeroize::Zeroize::zeroize(&mut data);
    let mut phrase = phrase.into_bytes();
    zeroize::Zeroize::zeroize(&mut phrase);
    result
}

/// 64 random bits from the OS (getrandom(2)), or `None` when the kernel
/// has none to give: then nothing that needs unpredictability (the APOP
/// challenge) may be offered.
pub fn try_random_u64() -> Option<u64> {
    try_random_bytes::<8>().map(u64::from_ne_bytes)
}

/// `N` random bytes from the OS (getrandom(2)), or `None` when the kernel
/// has none to give.
pub fn try_random_bytes<const N: usize>() -> Option<[u8; N]> {
    let mut v = [0u8; N];
    let mut got = 0;
    while got < v.len() {
        // SAFETY: the pointer and length describe the unfilled rest of `v`.
        let n = unsafe { libc::getrandom(v[got..].as_mut_ptr().cast(), v.len() - got, 0) };
        if n > 0 {
            got += n as usize;
        } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
    Some(v)
}

/// Random bits for unique names (temporary files): the OS's, else the
/// time and the pid, which are unique enough for a name.
pub fn random_u64() -> u64 {
    try_random_u64().unwrap_or_else(|| {
        let t = crate::clock::since_epoch().as_nanos();
        (t as u64) ^ (u64::from(std::process::id()) << 32)
    })
}

/// Allocates disk blocks for `[offset, offset+len)` of `fd`, extending the
/// file if that range reaches past its end, so that writes there cannot
/// fail for lack of space. Filesystems without fallocate report
/// `Unsupported`; the caller then extends the file with `set_len`.
pub fn allocate(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let (Ok(off), Ok(l)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    };
    // SAFETY: a plain syscall on a descriptor the caller keeps open, with
    // integer arguments only.
    let rc = unsafe { libc::fallocate(fd.as_raw_fd(), 0, off, l) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {
            Err(io::Error::new(io::ErrorKind::Unsupported, e))
        }
        _ => Err(e),
    }
}

/// One `copy_file_range(2)`: copies up to `len` bytes from `src` at
/// `src_off` to `dst` at `dst_off` inside the kernel. Returns the bytes
/// copied (0 at the end of `src`). Callers fall back to read/write when
/// this reports `Unsupported` (old kernels, some filesystems).
pub fn copy_file_range(
    src: BorrowedFd<'_>,
    src_off: u64,
    dst: BorrowedFd<'_>,
    dst_off: u64,
    len: usize,
) -> io::Result<usize> {
    let (Ok(mut so), Ok(mut d)) = (
        libc::loff_t::try_from(src_off),
        libc::loff_t::try_from(dst_off),
    ) else {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    };
    // SAFETY: both descriptors are open for the duration of the call; the
    // offset pointers point at live local variables the kernel updates.
    let n =
        unsafe { libc::copy_file_range(src.as_raw_fd(), &mut so, dst.as_raw_fd(), &mut d, len, 0) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => {
            Err(io::Error::new(io::ErrorKind::Unsupported, e))
        }
        _ => Err(e),
    }
}

/// The host name registered for `ip` (getnameinfo with NI_NAMEREQD), if any.
pub fn reverse_name(ip: IpAddr) -> Option<String> {
    let sa = std::net::SocketAddr::new(ip, 0);
    let storage = nix::sys::socket::SockaddrStorage::from(sa);
    let mut host = [0 as c_char; 1025];
    use nix::sys::socket::SockaddrLike;
    // SAFETY: `storage` is a valid socket address of `storage.len()` bytes;
    // `host` is a writable buffer of the length passed; the service buffer
    // is null with length 0, which getnameinfo allows.
    let rc = unsafe {
        libc::getnameinfo(
            storage.as_ptr(),
            storage.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Set by SIGHUP and SIGTERM; read between commands.
pub static HANGUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hangup(_sig: c_int) {
    HANGUP.store(true, Ordering::SeqCst);
}

/// Returns the heap's free pages to the kernel (glibc's `malloc_trim`):
/// memory freed in the middle of the heap otherwise stays resident.
pub fn trim_heap() {
    // SAFETY: malloc_trim takes no pointers; it walks glibc's own heap
    // under glibc's lock and releases only pages of free chunks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// SIGHUP and SIGTERM set [`HANGUP`]; SIGPIPE and SIGXFSZ are ignored, so
/// a vanished client shows up as EPIPE and a file-size limit as EFBIG
/// (an error answered with `-ERR`, not a killed process). SA_RESTART:
/// file system calls resume after the handler; `poll` (where the session
/// waits for a command) returns EINTR whatever the flag, which is how a
/// hang-up is noticed.
pub fn install_signal_handlers() -> io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let hup = SigAction::new(
        SigHandler::Handler(on_hangup),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    for (sig, act) in [
        (Signal::SIGHUP, &hup),
        (Signal::SIGTERM, &hup),
        (Signal::SIGPIPE, &ign),
        (Signal::SIGXFSZ, &ign),
    ] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; SIG_IGN has no handler code at all.
        unsafe { sigaction(sig, act) }.map_err(io::Error::from)?;
    }
    Ok(())
}

/// Starts `cmd` with `fd3` as its descriptor 3 — the checkpassword
/// interface, in which the program reads the login from fd 3 — and with
/// SIGPIPE and SIGXFSZ back at their defaults (popper ignores them; an
/// ignored signal would stay ignored across `exec`).
pub fn spawn_with_fd3(
    cmd: &mut std::process::Command,
    fd3: std::os::fd::OwnedFd,
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let raw = fd3.as_raw_fd();
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: it calls dup2, fcntl and
    // signal, all async-signal-safe, allocates nothing and takes no lock.
    // `raw` stays open in the parent until `spawn` returns (fd3 is dropped
    // after it), so the child inherits it.
    unsafe {
        cmd.pre_exec(move || {
            if raw == 3 {
                // Already in place: only the close-on-exec flag must go.
                if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(raw, 3) == -1 {
                return Err(io::Error::last_os_error());
            }
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(fd3);
    child
}

/// Sets the calling thread's effective uid (`setresuid(-1, uid, -1)` as a
/// raw system call). glibc's `seteuid` changes every thread of the
/// process; popper serves with one thread, where the two are the same, but
/// its unit tests run many, and a short switch to a user's ids (reading a
/// password file as the user) must not change their neighbours' ids.
pub fn thread_seteuid(uid: u32) -> io::Result<()> {
    let keep = libc::uid_t::MAX; // -1: leave the real and saved uids alone
    // SAFETY: setresuid takes three integers and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_setresuid, keep, uid, keep) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the calling thread's effective gid; see [`thread_seteuid`].
pub fn thread_setegid(gid: u32) -> io::Result<()> {
    let keep = libc::gid_t::MAX;
    // SAFETY: setresgid takes three integers and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_setresgid, keep, gid, keep) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's effective uid (`geteuid` of the thread, which
/// [`thread_seteuid`] may have made differ from other threads').
pub fn thread_geteuid() -> u32 {
    let (mut r, mut e, mut s): (libc::uid_t, libc::uid_t, libc::uid_t) = (0, 0, 0);
    // SAFETY: getresuid writes three uid_t through valid pointers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getresuid,
            &mut r as *mut libc::uid_t,
            &mut e as *mut libc::uid_t,
            &mut s as *mut libc::uid_t,
        )
    };
    if rc == -1 { u32::MAX } else { e }
}
