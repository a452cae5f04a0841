//! The one crossing from root to the mail user.
//!
//! [`become_user`] sets the supplementary groups, then the gid, then the
//! uid (real, effective and saved), verifies each, and checks that root
//! cannot be regained. It returns a [`Dropped`] token; opening a maildrop
//! takes that token, so the type system enforces "privileges dropped before
//! any mailbox access".
//!
//! The spool directory's group is kept as a supplementary group where the
//! directory needs it: Debian's `/var/mail` is `root:mail 2775`, so lock
//! files (`USER.lock`, `.USER.pop`) can only be created with group `mail`,
//! as Debian's mail readers do.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{
    Gid, Uid, getgrouplist, getgroups, getresgid, getresuid, setgroups, setresgid, setresuid,
};

use crate::auth::Account;

/// Proof that the process now runs as the mail user.
#[derive(Debug)]
pub struct Dropped {
    uid: u32,
    gid: u32,
}

impl Dropped {
    /// The uid the process runs as.
    pub fn uid(&self) -> u32 {
        self.uid
    }
    /// The primary gid.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// A token for `uid`, for unit tests that call storage code directly
    /// (they run as whoever runs them; nothing is dropped).
    #[cfg(test)]
    pub fn for_tests(uid: u32) -> Dropped {
        Dropped { uid, gid: 0 }
    }

    /// A token for the user the tests run as.
    #[cfg(test)]
    pub fn current_for_tests() -> Dropped {
        Dropped::for_tests(nix::unistd::geteuid().as_raw())
    }
}

/// Why the privilege drop failed (the session must end).
#[derive(Debug)]
pub struct PrivError(pub String);

impl std::fmt::Display for PrivError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The supplementary group the spool directory needs, if any: its group
/// when it is group-writable and not world-writable.
pub fn spool_group(spool_dir: &Path) -> Option<u32> {
    let md = std::fs::metadata(spool_dir).ok()?;
    let mode = md.mode();
    (mode & 0o020 != 0 && mode & 0o002 == 0).then(|| md.gid())
}

/// Becomes `account` for good. When already running as that user (not
/// root), nothing changes.
pub fn become_user(account: &Account, extra_group: Option<u32>) -> Result<Dropped, PrivError> {
    let err = |what: &str, e: nix::Error| PrivError(format!("{what}: {e}"));
    if account.uid() == 0 {
        return Err(PrivError("refusing to serve mail as root".into()));
    }
    let uid = Uid::from_raw(account.uid());
    let gid = Gid::from_raw(account.gid());
    if !Uid::effective().is_root() {
        // Started as the user (a pipe from a shell): nothing to drop.
        let r = getresuid().map_err(|e| err("getresuid", e))?;
        if r.real == uid && r.effective == uid && r.saved == uid {
            return Ok(Dropped {
                uid: account.uid(),
                gid: account.gid(),
            });
        }
        return Err(PrivError(format!(
            "not root and not running as {}",
            account.name()
        )));
    }
    let name = std::ffi::CString::new(account.name().as_bytes())
        .map_err(|_| PrivError("bad user name".into()))?;
    let mut groups = getgrouplist(&name, gid).map_err(|e| err("getgrouplist", e))?;
    if let Some(g) = extra_group.map(Gid::from_raw)
        && !groups.contains(&g)
    {
        groups.push(g);
    }
    setgroups(&groups).map_err(|e| err("setgroups", e))?;
    setresgid(gid, gid, gid).map_err(|e| err("setresgid", e))?;
    setresuid(uid, uid, uid).map_err(|e| err("setresuid", e))?;
    // Verify, rather than trust, each step.
    let r = getresuid().map_err(|e| err("getresuid", e))?;
    let g = getresgid().map_err(|e| err("getresgid", e))?;
    if (r.real, r.effective, r.saved) != (uid, uid, uid)
        || (g.real, g.effective, g.saved) != (gid, gid, gid)
    {
        return Err(PrivError("uid/gid not as set".into()));
    }
    let mut now = getgroups().map_err(|e| err("getgroups", e))?;
    now.sort_by_key(|g| g.as_raw());
    now.dedup();
    groups.sort_by_key(|g| g.as_raw());
    groups.dedup();
    if now != groups {
        return Err(PrivError("supplementary groups not as set".into()));
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(PrivError("root could be regained".into()));
    }
    Ok(Dropped {
        uid: account.uid(),
        gid: account.gid(),
    })
}
