//! The binaries under test, built once per test run with the cargo that
//! runs the tests, so `cargo test` never uses stale ones.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// A build of the workspace's binaries with popper's `features` (`None`:
/// the default features), in its own target directory so feature builds
/// do not replace each other.
fn build(features: Option<&str>, target: &str) -> PathBuf {
    let flags: Vec<&str> = features.map(|f| vec!["--features", f]).unwrap_or_default();
    build_env(&flags, target, &[])
}

/// [`build`] with cargo `flags` (features) and build-time settings in the
/// environment (`POPPER_BLOCK_UID=1000`, as an administrator would build).
fn build_env(flags: &[&str], target: &str, env: &[(&str, &str)]) -> PathBuf {
    let root = root();
    let target_dir = root.join("target").join(target);
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&root)
        .args([
            "build", "--quiet", "-p", "popper", "-p", "popauth", "--bins",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    cmd.args(flags);
    for (k, v) in env {
        cmd.env(k, v);
    }
    crate::run_within(&mut cmd, crate::wait::BUILD);
    target_dir.join("debug")
}

/// The default build (`popper`, `popauth`), in the workspace's own target
/// directory so it shares the test build's compiled dependencies.
pub fn default_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build(None, ""))
}

/// The popper binary of the default build.
pub fn popper() -> PathBuf {
    default_dir().join("popper")
}

/// The popauth binary.
pub fn popauth() -> PathBuf {
    default_dir().join("popauth")
}

/// popper built with the `apop-only` feature (installed as popper.apop).
pub fn popper_apop() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build(Some("apop-only"), "e2e-apop-only"))
        .join("popper")
}

/// popper built with `POPPER_BLOCK_UID=1000`.
pub fn popper_block_uid_1000() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_env(&[], "e2e-block-uid-1000", &[("POPPER_BLOCK_UID", "1000")]))
        .join("popper")
}

/// popper built with `--no-default-features`: no bulletin code at all.
pub fn popper_no_bulletins() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_env(&["--no-default-features"], "e2e-no-bulletins", &[]))
        .join("popper")
}

/// The unpacked xinetd (scripts/setup.sh: it cannot be installed beside
/// openbsd-inetd).
pub fn xinetd() -> PathBuf {
    let p = PathBuf::from("/var/cache/popper-test/xinetd/usr/sbin/xinetd");
    assert!(
        p.exists(),
        "{} is missing: scripts/setup.sh test unpacks it",
        p.display()
    );
    p
}
