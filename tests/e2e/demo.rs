//! `make demo` does what the README says: curl and fetchmail can read the
//! demo mailbox, and Ctrl-C cleans up.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_serves_curl_and_fetchmail_and_cleans_up() {
    popper_e2e::require_root();
    let port = popper_e2e::sandbox::free_port();
    let script = popper_e2e::bins::root().join("scripts/demo.sh");
    let mut child = Command::new(&script)
        .env("DEMO_PORT", port.to_string())
        .env("POPPER", popper_e2e::bins::popper())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !text.contains("demo: ready") {
        let mut l = String::new();
        assert!(
            out.read_line(&mut l).unwrap() > 0,
            "demo ended early: {text}"
        );
        text.push_str(&l);
        assert!(Instant::now() < deadline, "{text}");
    }
    let work = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("log:"))
        .map(|p| {
            std::path::PathBuf::from(p.trim())
                .parent()
                .unwrap()
                .to_path_buf()
        })
        .expect("the demo prints its log path");
    // The curl line the demo prints.
    let list = popper_e2e::run(
        Command::new("curl").args(["-s", &format!("pop3://popdemo:popdemo@127.0.0.1:{port}/")]),
    );
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 3);
    let one = popper_e2e::run(
        Command::new("curl").args(["-s", &format!("pop3://popdemo:popdemo@127.0.0.1:{port}/1")]),
    );
    let one = String::from_utf8_lossy(&one.stdout).into_owned();
    assert!(
        one.contains("Subject: demo message 1\r\n")
            && one.contains("\r\n.A line that starts with a dot.\r\n"),
        "{one}"
    );
    // fetchmail, keeping the mail (its password from a run control file
    // rather than the prompt).
    let dir = std::env::temp_dir().join(format!("demo-fetchmail-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let rc = dir.join("rc");
    std::fs::write(
        &rc,
        format!("poll 127.0.0.1 protocol pop3 port {port} user popdemo password popdemo keep fetchall\n  mda \"/bin/sh -c 'cat > {}/m.$$'\"\n", dir.display()),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    popper_e2e::run(
        Command::new("fetchmail")
            .args(["--nodetach", "--nosyslog", "--sslproto", "", "-f"])
            .arg(&rc)
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .env("HOME", &dir),
    );
    let fetched = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("m.")
        })
        .count();
    assert_eq!(fetched, 3);
    std::fs::remove_dir_all(&dir).unwrap();
    // Ctrl-C: the script stops inetd and removes its files.
    // SAFETY: kill has no memory-safety preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGINT);
    }
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(
        rest.contains("demo: stopped and cleaned up"),
        "{rest} ({status})"
    );
    assert!(!work.exists(), "{} left behind", work.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "inetd still listening"
    );
}
