//! POP-before-SMTP the way relay-ctrl does it: after a successful login,
//! a file named by the client's IP address in the relay-ctrl directory
//! (`RELAY_CTRL_DIR`, usually `/var/spool/relay-ctrl/allow`), modified
//! now. relay-ctrl-check, run before qmail-smtpd, lets an address relay
//! while its file is younger than `RELAY_CTRL_EXPIRY` (and exports what
//! the file holds into the environment); relay-ctrl-age removes old ones.
//!
//! COMPAT relay-ctrl-allow: the file holds `USER=name` and, when
//! `$DOMAIN` is set, `DOMAIN=value`, each ended by a NUL (the form
//! relay-ctrl-check reads back); an IPv4 address mapped into IPv6
//! (`::ffff:a.b.c.d`) is named as the IPv4 address. DEVIATION: an IPv6
//! client gets a file too, named as tcpserver writes `$TCPREMOTEIP`
//! (relay-ctrl-allow only knew dotted quads).
//!
//! The file is written by root, before the privilege drop, so it does not
//! matter whether the user can write the directory (sites make it 0777,
//! or keep it for a relay-ctrl user) — and carefully, because the
//! directory may be writable by anyone: the content goes to a new name
//! created with `O_EXCL | O_NOFOLLOW` relative to the directory opened
//! without following a link, and is renamed over the address's name, which
//! replaces whatever was there (even a planted symbolic link) without
//! following it. relay-ctrl-check runs as the SMTP user, so the file is
//! readable by all (mode 0644): it says only which user logged in from an
//! address, as relay-ctrl-allow's 0666 files did.
//!
//! Failing to record is logged and never fails or delays the login.

use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, fchmod};
use nix::unistd::{unlinkat, write};

/// The name relay-ctrl-check looks for: the address as `$TCPREMOTEIP`
/// spells it, an IPv4-mapped IPv6 address as plain IPv4.
pub fn file_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// What the file holds: `USER=user\0` and `DOMAIN=domain\0` if given.
pub fn content(user: &str, domain: Option<&str>) -> Vec<u8> {
    let mut v = format!("USER={user}\0").into_bytes();
    if let Some(d) = domain {
        v.extend_from_slice(format!("DOMAIN={d}\0").as_bytes());
    }
    v
}

/// Records a login of `user` from `ip` in `dir`. Errors are for the log.
pub fn record(dir: &Path, ip: IpAddr, user: &str, domain: Option<&str>) -> Result<(), String> {
    let shown = dir.display();
    let d: OwnedFd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {shown}: {e}"))?;
    let name = file_name(ip);
    let tmp = format!(".{name}.popper-{:x}", crate::sys::random_u64());
    let cname = CString::new(name.as_str()).map_err(|_| "bad name".to_string())?;
    let ctmp = CString::new(tmp.as_str()).map_err(|_| "bad name".to_string())?;
    let f: OwnedFd = openat(
        d.as_fd(),
        ctmp.as_c_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| format!("cannot create {shown}/{tmp}: {e}"))?;
    let bytes = content(user, domain);
    let written = fchmod(f.as_fd(), Mode::from_bits_truncate(0o644))
        .map_err(|e| e.to_string())
        .and_then(|()| match write(&f, &bytes) {
            Ok(n) if n == bytes.len() => Ok(()),
            Ok(_) => Err("short write".to_string()),
            Err(e) => Err(e.to_string()),
        })
        .and_then(|()| {
            renameat(d.as_fd(), ctmp.as_c_str(), d.as_fd(), cname.as_c_str())
                .map_err(|e| e.to_string())
        });
    drop(f);
    if let Err(e) = written {
        let _ = unlinkat(
            d.as_fd(),
            ctmp.as_c_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        return Err(format!("cannot write {shown}/{name}: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn names_as_tcpserver_spells_addresses() {
        assert_eq!(file_name("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(file_name("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(file_name("2001:db8::1".parse().unwrap()), "2001:db8::1");
        assert_eq!(content("alice", None), b"USER=alice\0");
        assert_eq!(
            content("alice", Some("example.org")),
            b"USER=alice\0DOMAIN=example.org\0"
        );
    }

    #[test]
    fn a_fresh_file_replaces_an_old_one_and_a_planted_link_is_not_followed() {
        let dir = std::env::temp_dir().join(format!(
            "popper-relay-{}-{:x}",
            std::process::id(),
            crate::sys::random_u64()
        ));
        std::fs::create_dir(&dir).unwrap();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let path = dir.join("192.0.2.9");
        std::fs::write(&path, b"old").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        record(&dir, ip, "alice", None).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"USER=alice\0");
        let md = std::fs::metadata(&path).unwrap();
        assert!(md.modified().unwrap() > old, "mtime now");
        assert_eq!(md.mode() & 0o777, 0o644);
        // A symbolic link planted under the address's name is replaced.
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        record(&dir, ip, "bob", Some("example.org")).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"USER=bob\0DOMAIN=example.org\0"
        );
        // Nothing else is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A missing directory is an error for the log, not a panic.
        assert!(
            record(&dir.join("missing"), ip, "a", None)
                .unwrap_err()
                .contains("cannot open")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
