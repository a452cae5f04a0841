//! A test PKI made with the `openssl` command line, once per test run: a
//! CA, an intermediate CA, and server certificates good and bad, so the
//! TLS tests' clients verify popper's certificate as they would a real
//! one (against a CA they were told to trust), and reject what they must.
//!
//! Every private key is root's, mode 0600 (what popper demands of
//! `tls-private-key-file`); the directory is 0700.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The files of the test PKI.
#[derive(Debug)]
pub struct Pki {
    /// The directory holding them.
    pub dir: PathBuf,
    /// The root CA certificate the clients trust.
    pub ca: PathBuf,
    /// The server certificate (RSA, signed by the root): `localhost`,
    /// 127.0.0.1, ::1 and [`crate::netns::SERVER_ADDR`].
    pub cert: PathBuf,
    /// Its key (PKCS#8, as `openssl req` writes it).
    pub key: PathBuf,
    /// The same key as PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub key_pkcs1: PathBuf,
    /// A chain file: a leaf signed by the intermediate CA, then the
    /// intermediate (the clients only trust the root).
    pub chain: PathBuf,
    /// The key of the chain's leaf.
    pub chain_key: PathBuf,
    /// An EC (P-256) leaf signed by the root, same names.
    pub ec_cert: PathBuf,
    /// Its key as SEC1 (`BEGIN EC PRIVATE KEY`).
    pub ec_key_sec1: PathBuf,
    /// Its key as PKCS#8.
    pub ec_key_pkcs8: PathBuf,
    /// A leaf for the same names and with [`Pki::key`], valid only in
    /// January 2020.
    pub expired: PathBuf,
    /// A leaf with [`Pki::key`] for `wrong.example` only.
    pub wrong_host: PathBuf,
    /// An RSA key that is not [`Pki::cert`]'s.
    pub other_key: PathBuf,
}

/// The names every good leaf is for.
pub fn san() -> String {
    format!(
        "DNS:localhost,IP:127.0.0.1,IP:::1,IP:{}",
        crate::netns::SERVER_ADDR
    )
}

fn openssl(dir: &Path, args: &[&str]) {
    crate::run(Command::new("openssl").current_dir(dir).args(args));
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A CSR (and its new key `KEY.key`) for `cn`; `kind` is `rsa:2048` or `ec`.
fn csr(dir: &Path, name: &str, cn: &str, ec: bool) {
    let mut args = vec!["req", "-new", "-nodes", "-subj"];
    let subj = format!("/CN={cn}");
    args.push(&subj);
    let key = format!("{name}.key");
    let out = format!("{name}.csr");
    if ec {
        args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    } else {
        args.extend(["-newkey", "rsa:2048"]);
    }
    args.extend(["-keyout", &key, "-out", &out]);
    openssl(dir, &args);
}

/// Signs `name.csr` with CA `ca` (`ca.pem`/`ca.key` names) with the
/// extensions of section `ext` of `ca.cnf`, valid from `start` to `end`
/// (openssl ca's `YYYYMMDDHHMMSSZ`), into `out`.
fn sign(dir: &Path, name: &str, ca: &str, ext: &str, dates: (&str, &str), out: &str) {
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-cert",
            &format!("{ca}.pem"),
            "-keyfile",
            &format!("{ca}.key"),
            "-in",
            &format!("{name}.csr"),
            "-out",
            out,
            "-extensions",
            ext,
            "-startdate",
            dates.0,
            "-enddate",
            dates.1,
        ],
    );
}

fn ymd(t: std::time::SystemTime) -> String {
    // openssl ca wants UTC YYYYMMDDHHMMSSZ; days since the epoch are enough.
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = secs.div_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}{m:02}{d:02}000000Z")
}

fn make(dir: &Path) -> Pki {
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86400);
    let valid = (ymd(now - day * 2), ymd(now + day * 30));
    let valid = (valid.0.as_str(), valid.1.as_str());
    let san = san();
    write(
        dir,
        "ca.cnf",
        &format!(
            "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = none\nunique_subject = no\n[any]\ncommonName = supplied\n\
             [ca_ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\
             [leaf]\nsubjectAltName = {san}\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\
             [wrong]\nsubjectAltName = DNS:wrong.example\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\n"
        ),
    );
    write(dir, "index.txt", "");
    write(dir, "serial", "1000\n");
    // The root: self-signed.
    csr(dir, "ca", "popper test root CA", true);
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-selfsign",
            "-config",
            "ca.cnf",
            "-keyfile",
            "ca.key",
            "-in",
            "ca.csr",
            "-out",
            "ca.pem",
            "-extensions",
            "ca_ext",
            "-startdate",
            valid.0,
            "-enddate",
            valid.1,
        ],
    );
    csr(dir, "inter", "popper test intermediate CA", true);
    sign(dir, "inter", "ca", "ca_ext", valid, "inter.pem");
    csr(dir, "leaf", "localhost", false);
    sign(dir, "leaf", "ca", "leaf", valid, "leaf.pem");
    sign(
        dir,
        "leaf",
        "ca",
        "leaf",
        ("20200101000000Z", "20200201000000Z"),
        "expired.pem",
    );
    // The wrong host: a new CSR for the same key.
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=wrong.example",
            "-out",
            "wrong.csr",
        ],
    );
    sign(dir, "wrong", "ca", "wrong", valid, "wrong-host.pem");
    csr(dir, "chainleaf", "localhost", false);
    sign(dir, "chainleaf", "inter", "leaf", valid, "chainleaf.pem");
    let chain = [
        std::fs::read_to_string(dir.join("chainleaf.pem")).unwrap(),
        std::fs::read_to_string(dir.join("inter.pem")).unwrap(),
    ]
    .concat();
    write(dir, "chain.pem", &chain);
    csr(dir, "ec", "localhost", true);
    sign(dir, "ec", "ca", "leaf", valid, "ec.pem");
    openssl(dir, &["ec", "-in", "ec.key", "-out", "ec-sec1.key"]);
    openssl(
        dir,
        &[
            "rsa",
            "-in",
            "leaf.key",
            "-traditional",
            "-out",
            "leaf-pkcs1.key",
        ],
    );
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "other.key",
        ],
    );
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "key") {
            std::os::unix::fs::chown(&p, Some(0), Some(0)).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let p = |n: &str| dir.join(n);
    Pki {
        dir: dir.to_path_buf(),
        ca: p("ca.pem"),
        cert: p("leaf.pem"),
        key: p("leaf.key"),
        key_pkcs1: p("leaf-pkcs1.key"),
        chain: p("chain.pem"),
        chain_key: p("chainleaf.key"),
        ec_cert: p("ec.pem"),
        ec_key_sec1: p("ec-sec1.key"),
        ec_key_pkcs8: p("ec.key"),
        expired: p("expired.pem"),
        wrong_host: p("wrong-host.pem"),
        other_key: p("other.key"),
    }
}

/// The test PKI, made on first use (in `/tmp/popper-e2e/pki-PID`; those
/// of test runs that have ended are removed).
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        crate::require_root();
        let base = Path::new("/tmp/popper-e2e");
        std::fs::create_dir_all(base).unwrap();
        for e in std::fs::read_dir(base).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("pki-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = base.join(format!("pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        make(&dir)
    })
}
