//! `make deb`: the package installs with `dpkg -i` on this machine with the
//! right owners and modes (popauth setuid pop through dpkg-statoverride),
//! enables no service, serves a session from its own binary, survives a
//! reinstall, and purges cleanly; its postinst makes the `pop` account on
//! a system without one (run in a private /etc).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use popper_e2e::bins::root;
use popper_e2e::mail::{Message, mbox};
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{pop, user};
use popper_e2e::wait::{LIMIT, OutputWithin};

const INSTALLED: &[&str] = &[
    "/usr/sbin/popper",
    "/usr/sbin/popper.apop",
    "/usr/bin/popauth",
    "/usr/share/man/man8/popper.8.gz",
    "/usr/share/man/man8/popauth.8.gz",
    "/usr/share/doc/popper/README.Debian",
    "/usr/share/doc/popper/examples/inetd.conf",
    "/usr/share/doc/popper/examples/hosts.allow",
    "/usr/share/doc/popper/examples/systemd/popper.socket",
];

/// `make deb`, once per test run; the package's path.
fn deb() -> String {
    static DEB: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DEB.get_or_init(|| {
        let out = popper_e2e::run_within(
            Command::new("make").args(["-s", "deb"]).current_dir(root()),
            popper_e2e::wait::BUILD,
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .find(|l| l.ends_with(".deb"))
            .expect("make deb prints the package's path")
            .to_string()
    })
    .clone()
}

fn dpkg(args: &[&str]) -> std::process::Output {
    Command::new("dpkg")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output_within(LIMIT)
}

fn statoverride() -> Option<String> {
    let out = Command::new("dpkg-statoverride")
        .args(["--list", "/usr/bin/popauth"])
        .output_within(LIMIT);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What may show that a service was enabled: inetd.conf's bytes and the
/// names under the service directories.
fn services() -> Vec<(PathBuf, Vec<u8>)> {
    let inetd = "/etc/inetd.conf";
    let mut v = vec![(
        PathBuf::from(inetd),
        std::fs::read(inetd).unwrap_or_default(),
    )];
    for d in ["/etc/systemd/system", "/etc/xinetd.d", "/etc/init.d"] {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        v.push((PathBuf::from(d), names.join("\n").into_bytes()));
    }
    v
}

fn mode_owner(p: &str) -> (u32, u32, u32) {
    let md = std::fs::metadata(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    (md.mode() & 0o7777, md.uid(), md.gid())
}

#[test]
fn the_deb_installs_serves_and_purges() {
    popper_e2e::require_root();
    let deb = deb();
    assert!(Path::new(&deb).exists(), "{deb}");
    // The archive holds no setuid file: the mode comes from the override.
    let listing = popper_e2e::run(Command::new("dpkg-deb").args(["-c", &deb]));
    let listing = String::from_utf8_lossy(&listing.stdout);
    let popauth = listing
        .lines()
        .find(|l| l.ends_with("./usr/bin/popauth"))
        .expect("popauth in the archive");
    assert!(popauth.starts_with("-rwxr-xr-x root/root"), "{popauth}");

    // A machine that had it from an earlier run starts clean.
    let _ = dpkg(&["--purge", "popper"]);
    let before = services();
    let out = dpkg(&["-i", &deb]);
    assert!(
        out.status.success(),
        "dpkg -i: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (pop_uid, pop_gid) = pop();
    assert_eq!(mode_owner("/usr/sbin/popper"), (0o755, 0, 0));
    assert_eq!(mode_owner("/usr/sbin/popper.apop"), (0o755, 0, 0));
    assert_eq!(mode_owner("/usr/bin/popauth"), (0o6755, pop_uid, pop_gid));
    assert_eq!(
        statoverride().as_deref(),
        Some("pop pop 6755 /usr/bin/popauth")
    );
    for f in INSTALLED {
        assert!(Path::new(f).exists(), "{f} not installed");
    }
    let example = std::fs::read_to_string("/usr/share/doc/popper/examples/inetd.conf").unwrap();
    assert!(
        example.contains("/usr/sbin/popper\tpopper -s -d"),
        "{example}"
    );
    let allow = std::fs::read_to_string("/usr/share/doc/popper/examples/hosts.allow").unwrap();
    assert!(
        allow.contains("twist PATH=/usr/sbin; exec popper.apop"),
        "{allow}"
    );
    assert_eq!(services(), before, "installing enabled a service");
    let v = popper_e2e::run(Command::new("/usr/sbin/popper.apop").arg("-V"));
    assert!(String::from_utf8_lossy(&v.stdout).contains("apop-only"));
    let man = popper_e2e::run(Command::new("man").args(["-w", "8", "popper"]));
    assert_eq!(
        String::from_utf8_lossy(&man.stdout).trim(),
        "/usr/share/man/man8/popper.8.gz"
    );

    // One session from the installed binary.
    let u = user("pt_deb");
    let sb = Sandbox::new("deb");
    let msgs = vec![Message::new("a@example.com", "from the package", "hello")];
    sb.write_spool(&u, &mbox(&msgs));
    let input = format!(
        "{}STAT\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n",
        crate::login_lines(&u)
    );
    let out = sb.pipe(
        Path::new("/usr/sbin/popper"),
        &sb.popper_args(&[]),
        input.as_bytes(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+OK 1 "), "{text}");
    assert!(text.contains("Subject: from the package"), "{text}");
    assert!(text.contains("signing off."), "{text}");
    assert_eq!(sb.read_spool(&u), b"", "the DELE was applied");

    // Installing again (an upgrade to the same version) keeps one override.
    let out = dpkg(&["-i", &deb]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode_owner("/usr/bin/popauth"), (0o6755, pop_uid, pop_gid));

    let out = dpkg(&["--purge", "popper"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in INSTALLED {
        assert!(!Path::new(f).exists(), "{f} left after purge");
    }
    assert_eq!(statoverride(), None, "the override is removed on purge");
    assert_eq!(pop(), (pop_uid, pop_gid), "the pop account is kept");
    assert_eq!(services(), before);
}

#[test]
fn the_postinst_makes_the_pop_account_where_there_is_none() {
    popper_e2e::require_root();
    // The maintainer script as the package carries it, run in a private
    // /etc from which the pop account has been removed.
    let deb = deb();
    let mut sb = Sandbox::new("deb-postinst");
    let control = sb.dir.join("control");
    popper_e2e::run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    sb.overlay_etc();
    // dpkg-statoverride is given a private database to write.
    let admin = sb.dir.join("dpkg-admin");
    std::fs::create_dir(&admin).unwrap();
    std::fs::write(admin.join("statoverride"), "").unwrap();
    let wrappers = sb.dir.join("bin");
    std::fs::create_dir(&wrappers).unwrap();
    let wrapper = wrappers.join("dpkg-statoverride");
    popper_e2e::write_executable(
        &wrapper,
        format!(
            "#!/bin/sh\nexec /usr/bin/dpkg-statoverride --admindir {} \"$@\"\n",
            admin.display()
        ),
        0o755,
    );
    let script = format!(
        "set -e\n\
         for f in passwd group shadow gshadow; do sed -i '/^pop:/d' /etc/$f; done\n\
         if getent passwd pop; then echo 'pop is still there'; exit 9; fi\n\
         export PATH={wrappers}:$PATH\n\
         sh {postinst} configure\n\
         getent passwd pop\n\
         dpkg-statoverride --list /usr/bin/popauth\n",
        wrappers = wrappers.display(),
        postinst = control.join("postinst").display(),
    );
    let text = sb.sh(&script);
    assert!(
        text.contains("pop:x:") && text.contains("/nonexistent"),
        "{text}"
    );
    assert!(text.contains("pop pop 6755 /usr/bin/popauth"), "{text}");
    // The machine's own account database was not touched.
    assert!(pop().0 > 0);
}
