//! The port-995 packaging files (`inetd.conf.tls`, `xinetd.d/popper-pop3s`,
//! `systemd/popper-pop3s.*`) and the example `popper.conf`, as shipped:
//! each starts popper in the test's namespace, and Python's `ssl` module
//! verifies the certificate and logs in over TLS — at once on the pop3s
//! line, after STLS on the pop3 line, where `popper.conf`'s
//! `clear-text-password = tls` refuses USER before STLS.

use std::path::Path;
use std::process::Command;

use popper_e2e::sandbox::{Sandbox, free_port};
use popper_e2e::users::{TestUser, user};

use crate::spawn::{logged_from, packaging, sandbox, start, stop, unit_value, xinetd_conf_of};

/// The test certificate (localhost and 127.0.0.1, self-signed, popper's
/// own unit-test fixture) and its key, root's and 0600, and the packaged
/// `/etc/popper.conf` with the certificate lines filled in.
fn tls_sandbox(name: &str, u: &TestUser) -> Sandbox {
    let sb = sandbox(name, u, &user("pt_alice"));
    let fixtures = popper_e2e::bins::root().join("popper/src/tls/testdata");
    for f in ["cert.pem", "key.pem"] {
        let to = sb.dir.join(f);
        std::fs::copy(fixtures.join(f), &to).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let conf = packaging("popper.conf");
    assert!(
        conf.lines()
            .any(|l| l.trim() == "set clear-text-password = tls"),
        "the example configuration refuses passwords in clear:\n{conf}"
    );
    let conf = format!(
        "{conf}\nset tls-server-cert-file = {}\nset tls-private-key-file = {}\nset auth-fail-delay = 0\n",
        sb.dir.join("cert.pem").display(),
        sb.dir.join("key.pem").display()
    );
    std::fs::write(sb.etc("popper.conf"), conf).unwrap();
    sb
}

/// Logs in over TLS with certificate verification: `mode` is `tls` (TLS
/// from the first byte) or `stls` (plain, USER refused, then STLS).
fn tls_login(sb: &Sandbox, port: u16, u: &TestUser, mode: &str) {
    let script = r#"
import poplib, ssl, sys
port, user, password, mode, cafile = sys.argv[1:]
ctx = ssl.create_default_context(cafile=cafile)
if mode == "tls":
    p = poplib.POP3_SSL("localhost", int(port), context=ctx, timeout=20)
else:
    p = poplib.POP3("localhost", int(port), timeout=20)
    try:
        p.user(user)
        print("USER accepted in clear")
        sys.exit(1)
    except poplib.error_proto as e:
        print("clear:", e.args[0].decode())
    p.stls(context=ctx)
if mode == "tls":
    import base64
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    print("auth:", p._shortcmd("AUTH PLAIN " + token).decode())
else:
    p.user(user)
    p.pass_(password)
print("stat:", p.stat()[0])
print("cipher:", p.sock.cipher()[1])
p.quit()
"#;
    let out = popper_e2e::run(
        Command::new("/usr/bin/python3")
            .args(["-c", script, &port.to_string(), &u.name, &u.password, mode])
            .arg(sb.dir.join("cert.pem")),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{mode}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("stat: 1"), "{text}");
    assert!(text.contains("cipher: TLSv1.3"), "{text}");
    if mode == "tls" {
        assert!(text.contains("auth: +OK"), "AUTH PLAIN: {text}");
    }
    if mode == "stls" {
        assert!(
            text.contains("clear: -ERR [AUTH] You must use TLS/SSL or stronger authentication"),
            "{text}"
        );
    }
}

/// The packaged line for `service` from `inetd.conf.tls`, on `port`.
fn tls_line(service: &str, port: u16) -> String {
    packaging("inetd.conf.tls")
        .lines()
        .find(|l| l.split_whitespace().next() == Some(service))
        .unwrap_or_else(|| panic!("no {service} line in inetd.conf.tls"))
        .replacen(service, &format!("127.0.0.1:{port}"), 1)
}

#[test]
fn inetd_with_the_packaged_tls_lines() {
    let bob = user("pt_bob");
    let mut sb = tls_sandbox("spawn-tls-inetd", &bob);
    let (p995, p110) = (free_port(), free_port());
    let conf = format!("{}\n{}\n", tls_line("pop3s", p995), tls_line("pop3", p110));
    sb.inetd_conf(&conf, p995);
    tls_login(&sb, p995, &bob, "tls");
    tls_login(&sb, p110, &bob, "stls");
    logged_from(&sb, "127.0.0.1");
    let log = sb.syslog();
    assert!(
        log.contains("TLS handshake with 127.0.0.1: TLSv1_3"),
        "{log}"
    );
}

#[test]
fn xinetd_with_the_packaged_pop3s_service() {
    let bob = user("pt_bob");
    let sb = tls_sandbox("spawn-tls-xinetd", &bob);
    let port = free_port();
    let conf = xinetd_conf_of(&sb, "xinetd.d/popper-pop3s", port, "127.0.0.1", "");
    let x = start(
        &sb,
        &popper_e2e::bins::xinetd(),
        &[
            "-dontfork".into(),
            "-f".into(),
            conf.display().to_string(),
            "-pidfile".into(),
            sb.dir.join("x.pid").display().to_string(),
        ],
        format!("127.0.0.1:{port}").parse().unwrap(),
    );
    tls_login(&sb, port, &bob, "tls");
    logged_from(&sb, "127.0.0.1");
    stop(x);
}

#[test]
fn systemd_with_the_packaged_pop3s_units() {
    let bob = user("pt_bob");
    let sb = tls_sandbox("spawn-tls-systemd", &bob);
    let socket = packaging("systemd/popper-pop3s.socket");
    let service = packaging("systemd/popper-pop3s@.service");
    assert_eq!(unit_value(&socket, "ListenStream"), "995");
    assert_eq!(unit_value(&socket, "Accept"), "yes");
    let exec = unit_value(&service, "ExecStart");
    let mut argv: Vec<String> = exec
        .trim_start_matches('-')
        .split_whitespace()
        .map(String::from)
        .collect();
    let program = argv.remove(0);
    let port = free_port();
    let mut args = vec![
        "--inetd".to_string(),
        "-a".into(),
        "-l".into(),
        format!("127.0.0.1:{port}"),
        program,
    ];
    args.extend(argv);
    let s = start(
        &sb,
        Path::new("/usr/bin/systemd-socket-activate"),
        &args,
        format!("127.0.0.1:{port}").parse().unwrap(),
    );
    tls_login(&sb, port, &bob, "tls");
    logged_from(&sb, "127.0.0.1");
    stop(s);
}
