//! `make install` puts both popper builds and popauth where the qpopper
//! guides did, with the right owners and modes, and `make uninstall`
//! removes them.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use popper_e2e::bins::root;
use popper_e2e::users::pop;
use popper_e2e::wait::BUILD;

#[test]
fn make_install_and_uninstall_into_a_prefix() {
    popper_e2e::require_root();
    let prefix = std::env::temp_dir().join(format!("popper-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    let make = |target: &str| {
        popper_e2e::run_within(
            Command::new("make")
                .arg("-s")
                .arg(target)
                .arg(format!("PREFIX={}", prefix.display()))
                .current_dir(root()),
            BUILD,
        )
    };
    make("install");
    let (pop_uid, pop_gid) = pop();
    let check = |rel: &str, mode: u32, uid: u32, gid: u32| {
        let md = std::fs::metadata(prefix.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(
            md.mode() & 0o7777,
            mode,
            "{rel} mode {:o}",
            md.mode() & 0o7777
        );
        assert_eq!((md.uid(), md.gid()), (uid, gid), "{rel} owner");
    };
    check("lib/popper", 0o755, 0, 0);
    check("lib/popper.apop", 0o755, 0, 0);
    check("bin/popauth", 0o6755, pop_uid, pop_gid);
    check("share/man/man8/popper.8", 0o644, 0, 0);
    check("share/man/man8/popauth.8", 0o644, 0, 0);
    let features = |bin: &str| {
        let out = popper_e2e::run(Command::new(prefix.join(bin)).arg("-V"));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("features:"))
            .unwrap()
            .to_string()
    };
    assert!(!features("lib/popper").contains("apop-only"));
    assert!(features("lib/popper.apop").contains("apop-only"));
    // The README's pipe example, with this prefix for /usr/local.
    // Regression (issue 19): it ran `popper`, which make install does not
    // put on PATH.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let example = readme
        .lines()
        .find(|l| l.starts_with("printf ") && l.ends_with("| /usr/local/lib/popper"))
        .expect("the README's pipe example runs /usr/local/lib/popper");
    let example = example.replace("/usr/local/", &format!("{}/", prefix.display()));
    let out = popper_e2e::run(Command::new("/bin/sh").args(["-c", &example]));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 5
            && lines[0].starts_with("+OK ")
            && lines[2].starts_with("-ERR [AUTH] Password supplied for \"you\"")
            && lines[4].contains("signing off"),
        "{text}"
    );
    // Installing again works (and leaves no temporary file).
    make("install");
    assert!(!prefix.join("bin/.popauth.new").exists());
    make("uninstall");
    for rel in [
        "lib/popper",
        "lib/popper.apop",
        "bin/popauth",
        "share/man/man8/popper.8",
        "share/man/man8/popauth.8",
    ] {
        assert!(!prefix.join(rel).exists(), "{rel} left after uninstall");
    }
    std::fs::remove_dir_all(&prefix).unwrap();
}

#[test]
fn make_install_creates_the_pop_account_where_there_is_none() {
    popper_e2e::require_root();
    // Built by the test above or here; install.sh only copies.
    popper_e2e::run_within(
        Command::new("make")
            .args(["-s", "build"])
            .current_dir(root()),
        BUILD,
    );
    let mut sb = popper_e2e::sandbox::Sandbox::new("install-pop");
    sb.overlay_etc();
    let prefix = sb.dir.join("prefix");
    let script = format!(
        "set -e\n\
         for f in passwd group shadow gshadow; do sed -i '/^pop:/d' /etc/$f; done\n\
         if getent passwd pop; then echo 'pop is still there'; exit 9; fi\n\
         PREFIX={prefix} {install} install\n\
         getent passwd pop\n\
         stat -c '%a %U:%G' {prefix}/bin/popauth\n",
        prefix = prefix.display(),
        install = root().join("scripts/install.sh").display(),
    );
    let text = sb.sh(&script);
    assert!(text.contains("pop:x:"), "{text}");
    assert!(text.contains("6755 pop:pop"), "{text}");
    assert!(pop().0 > 0, "the machine's own pop account is untouched");
}
