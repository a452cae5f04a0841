//! USER/PASS against the passwd and shadow databases.
//!
//! The hash is checked by libxcrypt's `crypt_rn` (see `sys.rs`), so every
//! method the system can write works — yescrypt (`$y$`, Debian 12's
//! default), sha512crypt, sha256crypt, md5crypt, bcrypt, DES — exactly as
//! `login` and PAM judge it. The computed and stored hashes are compared in
//! constant time.

use std::ffi::CString;

use subtle::ConstantTimeEq;

use crate::sys;

/// A passwd entry, before anything is proven about whoever named it.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    /// The canonical login name from passwd.
    pub name: String,
    /// Numeric user id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory (for `~/.popbull`).
    pub home: std::path::PathBuf,
}

/// An authenticated user: the identity popper becomes. Only a successful
/// check in [`crate::auth`] makes one (its fields are private and it
/// cannot be cloned), so `privilege::become_user` can only be given an
/// account whose password or digest was proven.
#[derive(Debug, PartialEq, Eq)]
pub struct Account(Entry);

impl Account {
    /// The entry whose credentials were proven (auth only).
    pub(super) fn proven(entry: Entry) -> Account {
        Account(entry)
    }

    /// The canonical login name from passwd.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Numeric user id.
    pub fn uid(&self) -> u32 {
        self.0.uid
    }

    /// Primary group id.
    pub fn gid(&self) -> u32 {
        self.0.gid
    }

    /// Home directory.
    pub fn home(&self) -> &std::path::Path {
        &self.0.home
    }
}

/// Looks a name up in passwd. `Ok(None)` when there is no such user.
pub fn lookup(name: &[u8]) -> std::io::Result<Option<Entry>> {
    let Ok(s) = std::str::from_utf8(name) else {
        return Ok(None);
    };
    if s.contains('\0') {
        return Ok(None);
    }
    match nix::unistd::User::from_name(s) {
        Ok(Some(u)) => Ok(Some(Entry {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(std::io::Error::from(e)),
    }
}

/// The verdict on a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right password, usable account.
    Good,
    /// Wrong password, no shadow entry, locked or empty hash.
    Bad,
    /// Right password, but the account's expiry date has passed.
    AccountExpired,
    /// Right password, but it is past its maximum age or must be changed.
    PasswordExpired,
}

/// Checks `password` for `account` against shadow; `today` in days since
/// the epoch. Expiry is only reported for the right password, so it reveals
/// nothing to someone guessing.
pub fn verify(account: &Entry, password: &[u8], today: i64) -> std::io::Result<Verdict> {
    let Ok(cname) = CString::new(account.name.as_bytes()) else {
        burn(password);
        return Ok(Verdict::Bad);
    };
    let Some(sp) = sys::shadow_entry(&cname)? else {
        burn(password);
        return Ok(Verdict::Bad);
    };
    Ok(judge(&sp, password, today))
}

/// A yescrypt setting at Debian 12's default cost (`j9T`).
const DUMMY_SETTING: &[u8] = b"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$";

/// Spends the time a real password check takes, for a user that does not
/// exist or cannot log in, so the answer's timing does not tell a guesser
/// which names are accounts (the failure delay alone does not hide it).
pub fn burn(password: &[u8]) {
    let _ = sys::crypt(password, DUMMY_SETTING);
}

fn judge(sp: &sys::ShadowEntry, password: &[u8], today: i64) -> Verdict {
    // An empty hash would accept any password with some crypt methods;
    // `!` and `*` mark locked accounts.
    if sp.hash.is_empty() || sp.hash.starts_with(b"!") || sp.hash.starts_with(b"*") {
        burn(password);
        return Verdict::Bad;
    }
    let Some(computed) = sys::crypt(password, &sp.hash) else {
        burn(password);
        return Verdict::Bad;
    };
    let equal = computed.len() == sp.hash.len() && bool::from(computed.ct_eq(&sp.hash));
    if !equal {
        return Verdict::Bad;
    }
    if sp.expire >= 0 && today >= sp.expire {
        return Verdict::AccountExpired;
    }
    if sp.last_change == 0
        || (sp.max_age >= 0 && sp.last_change > 0 && today >= sp.last_change + sp.max_age)
    {
        return Verdict::PasswordExpired;
    }
    Verdict::Good
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: &str, last_change: i64, max_age: i64, expire: i64) -> sys::ShadowEntry {
        sys::ShadowEntry {
            hash: hash.as_bytes().to_vec(),
            last_change,
            max_age,
            expire,
        }
    }

    /// Hashes made with libxcrypt itself, so the test needs no fixtures.
    fn hash(method: &str, pw: &str) -> String {
        let salt = match method {
            "yescrypt" => "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$",
            "sha512" => "$6$saltsalt$",
            "sha256" => "$5$saltsalt$",
            "md5" => "$1$saltsalt$",
            _ => unreachable!(),
        };
        String::from_utf8(sys::crypt(pw.as_bytes(), salt.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn every_debian_method() {
        for m in ["yescrypt", "sha512", "sha256", "md5"] {
            let h = hash(m, "tanstaaf");
            assert!(h.len() > 20, "{m}: {h}");
            assert_eq!(
                judge(&entry(&h, 19000, 99999, -1), b"tanstaaf", 20000),
                Verdict::Good,
                "{m}"
            );
            assert_eq!(
                judge(&entry(&h, 19000, 99999, -1), b"tanstaa", 20000),
                Verdict::Bad,
                "{m}"
            );
            assert_eq!(
                judge(&entry(&h, 19000, 99999, -1), b"tanstaaf ", 20000),
                Verdict::Bad,
                "{m}"
            );
        }
    }

    #[test]
    fn locked_and_empty_hashes_never_match() {
        let h = hash("sha512", "pw");
        for bad in [
            String::new(),
            format!("!{h}"),
            "*".to_string(),
            "!".to_string(),
            "x".to_string(),
        ] {
            assert_eq!(
                judge(&entry(&bad, 19000, -1, -1), b"pw", 20000),
                Verdict::Bad,
                "{bad}"
            );
            assert_eq!(
                judge(&entry(&bad, 19000, -1, -1), b"", 20000),
                Verdict::Bad,
                "{bad}"
            );
        }
        assert_eq!(
            judge(&entry(&h, 19000, -1, -1), b"p\0w", 20000),
            Verdict::Bad
        );
    }

    #[test]
    fn a_locked_account_costs_as_much_as_a_real_check() {
        // The fastest of interleaved rounds, which load cannot shrink: a
        // locked account that skipped the hash would cost ~0.
        let h = hash("yescrypt", "pw");
        // The thread's CPU time: a busy machine cannot inflate it.
        let time = |hash: &str| {
            let t = crate::clock::thread_cpu_time();
            judge(&entry(hash, 19000, -1, -1), b"guess", 20000);
            crate::clock::thread_cpu_time() - t
        };
        let (mut real, mut locked) = (std::time::Duration::MAX, std::time::Duration::MAX);
        // 15 rounds: on a loaded machine a few of each kind run unpreempted.
        for _ in 0..15 {
            real = real.min(time(&h));
            locked = locked.min(time("!"));
        }
        assert!(locked * 2 > real, "locked {locked:?} vs real {real:?}");
    }

    #[test]
    fn expiry_only_for_the_right_password() {
        let h = hash("sha512", "pw");
        assert_eq!(
            judge(&entry(&h, 19000, -1, 20000), b"pw", 20000),
            Verdict::AccountExpired
        );
        assert_eq!(
            judge(&entry(&h, 19000, -1, 20001), b"pw", 20000),
            Verdict::Good
        );
        assert_eq!(
            judge(&entry(&h, 19000, -1, 20000), b"wrong", 20000),
            Verdict::Bad
        );
        assert_eq!(
            judge(&entry(&h, 19000, 30, -1), b"pw", 20000),
            Verdict::PasswordExpired
        );
        assert_eq!(
            judge(&entry(&h, 0, -1, -1), b"pw", 20000),
            Verdict::PasswordExpired
        );
        assert_eq!(judge(&entry(&h, -1, -1, -1), b"pw", 20000), Verdict::Good);
    }
}
