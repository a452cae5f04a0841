//! Reading the certificate chain and the private key, as root, checked.
//!
//! The key decides who can impersonate the server, so it is held to the
//! rules sshd holds its host keys to: a regular file, opened without
//! following a symlink (one planted in a writable directory could point
//! anywhere), owned by root or by popper's effective user, readable by
//! nobody else. The chain is public: it may be a symlink (certbot's
//! `live/` directory is made of them). Both are bounded in size, and a
//! file that holds no PEM block of its kind is named in the error.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use super::Unusable;

/// Largest certificate or key file read (a chain of a few certificates
/// is a few KiB).
pub const MAX_PEM: u64 = 1 << 20;

/// The certificate chain in `path` (PEM, leaf first).
pub fn cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Unusable> {
    let file = std::fs::File::open(path).map_err(|e| cannot(path, &e))?;
    let bytes = read_bounded(file, path)?;
    let chain: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    match chain {
        Ok(c) if !c.is_empty() => Ok(c),
        Ok(_) => Err(Unusable(format!(
            "{}: no PEM certificate in it",
            path.display()
        ))),
        Err(e) => Err(Unusable(format!("{}: {e}", path.display()))),
    }
}

/// The private key in `path`, after the checks above.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Unusable> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Unusable(format!(
                "{} is a symbolic link: the private key must be a file of its own",
                path.display()
            )),
            _ => cannot(path, &e),
        })?;
    let meta = file.metadata().map_err(|e| cannot(path, &e))?;
    if !meta.is_file() {
        return Err(Unusable(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(Unusable(format!(
            "{} is owned by uid {}: the private key must belong to root",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Unusable(format!(
            "{} has mode 0{:o}: the private key must not be readable by group or others (chmod 600)",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    let bytes = Zeroizing::new(read_bounded(file, path)?);
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        Unusable(format!(
            "{}: no usable PEM private key in it ({e})",
            path.display()
        ))
    })
}

fn read_bounded(file: std::fs::File, path: &Path) -> Result<Vec<u8>, Unusable> {
    let mut bytes = Vec::new();
    file.take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(path, &e))?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(Unusable(format!(
            "{} is larger than {MAX_PEM} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

fn cannot(path: &Path, e: &std::io::Error) -> Unusable {
    Unusable(format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// The test certificate (localhost, 127.0.0.1), its key and another
    /// key, copied into a private directory with the modes popper wants
    /// (git keeps only the executable bit).
    pub(crate) fn fixtures() -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tls/testdata");
        let dir = std::env::temp_dir().join(format!(
            "popper-tls-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["cert.pem", "key.pem", "other-key.pem"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        dir
    }

    #[test]
    fn the_key_rules() {
        let dir = fixtures();
        assert!(private_key(&dir.join("key.pem")).is_ok());
        assert_eq!(cert_chain(&dir.join("cert.pem")).unwrap().len(), 1);

        let loose = dir.join("loose.pem");
        std::fs::copy(dir.join("key.pem"), &loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = private_key(&loose).unwrap_err();
        assert!(e.0.contains("mode 0640"), "{e}");

        let link = dir.join("link.pem");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(dir.join("key.pem"), &link).unwrap();
        let e = private_key(&link).unwrap_err();
        assert!(e.0.contains("symbolic link"), "{e}");
        // The chain may be a link.
        let cert_link = dir.join("cert-link.pem");
        let _ = std::fs::remove_file(&cert_link);
        std::os::unix::fs::symlink(dir.join("cert.pem"), &cert_link).unwrap();
        assert!(cert_chain(&cert_link).is_ok());

        let e = private_key(&dir).unwrap_err();
        assert!(e.0.contains("not a regular file"), "{e}");
        let e = private_key(&dir.join("missing.pem")).unwrap_err();
        assert!(e.0.contains("cannot read"), "{e}");
        // A certificate is not a key, and a key is not a certificate.
        let e = private_key(&dir.join("cert.pem")).unwrap_err();
        assert!(e.0.contains("no usable PEM private key"), "{e}");
        let e = cert_chain(&dir.join("key.pem")).unwrap_err();
        assert!(e.0.contains("no PEM certificate"), "{e}");

        let big = dir.join("big.pem");
        std::fs::write(&big, vec![b'A'; MAX_PEM as usize + 10]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = private_key(&big).unwrap_err();
        assert!(e.0.contains("larger than"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
