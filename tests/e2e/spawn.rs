//! Every way popper is spawned, each from its ready file in `packaging/`
//! (changed only where a test must: the port, the listening address), with
//! the binaries installed as the files expect (`/usr/local/lib/popper`,
//! `popper.apop`, bound there in the test's namespace) and a full session
//! through Python's poplib. The client's address is checked in the log,
//! which goes to syslog as configured in those files (a private /dev/log).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use md5::{Digest, Md5};

use popper_e2e::bins::root;
use popper_e2e::mail::{Message, mbox};
use popper_e2e::pop::Pop;
use popper_e2e::sandbox::{Sandbox, free_port};
use popper_e2e::users::{TestUser, user};
use popper_e2e::wait::{LIMIT, OutputWithin, wait_for, wait_until};

use crate::popauth::write_with_python;

const SECRET: &str = "twist-Secret1";

pub(crate) fn packaging(name: &str) -> String {
    std::fs::read_to_string(root().join("packaging").join(name)).unwrap()
}

/// A sandbox whose namespace has popper and popper.apop in
/// /usr/local/lib, a private /etc with pop.auth (a secret for `apop`),
/// a captured syslog, and a message for `u`.
pub(crate) fn sandbox(name: &str, u: &TestUser, apop: &TestUser) -> Sandbox {
    let mut sb = Sandbox::new(name);
    let lib = sb.dir.join("usr-local-lib");
    std::fs::create_dir(&lib).unwrap();
    for (from, to) in [
        (popper_e2e::bins::popper(), "popper"),
        (popper_e2e::bins::popper_apop(), "popper.apop"),
    ] {
        popper_e2e::copy_executable(&from, &lib.join(to), 0o755);
    }
    sb.bind(&lib, Path::new("/usr/local/lib"));
    sb.overlay_etc();
    write_with_python(&sb.etc("pop.auth"), &[(&apop.name, SECRET)]);
    sb.capture_syslog();
    sb.write_spool(
        u,
        &mbox(&[Message::new("a@example.com", "spawned", "hello")]),
    );
    sb
}

/// Waits until `port` accepts connections on `addr` (for servers that say
/// nothing when ready), without sending anything.
fn wait_listening(addr: SocketAddr) {
    wait_until(
        &format!("a listener on {addr}"),
        Duration::from_secs(20),
        || {
            let out = popper_e2e::run(
                Command::new("ss").args(["-Hltn", &format!("sport = :{}", addr.port())]),
            );
            !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        },
    );
}

/// Starts a server in the sandbox that prints nothing when it is ready.
pub(crate) fn start(
    sb: &Sandbox,
    program: &Path,
    args: &[String],
    addr: SocketAddr,
) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let c = sb
        .command(program, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(sb.dir.join(format!("server-{}.log", addr.port()))).unwrap(),
        ))
        .process_group(0)
        .spawn()
        .unwrap();
    wait_listening(addr);
    c
}

pub(crate) fn stop(mut c: std::process::Child) {
    // SAFETY: kill has no memory-safety preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-(c.id() as i32), libc::SIGKILL);
    }
    let _ = c.wait();
}

/// A full USER/PASS session through poplib on `port`.
fn poplib_session(sb: &Sandbox, port: u16, u: &TestUser) {
    let files = crate::mailbox::poplib(sb, port, u, &[]);
    assert_eq!(
        String::from_utf8_lossy(&files["stat.txt"])
            .split(' ')
            .next(),
        Some("1")
    );
    assert!(String::from_utf8_lossy(&files["1.msg"]).contains("Subject: spawned\r\n"));
}

/// popper logged a session from `peer`: its start and its login line both
/// name the address (waiting for the datagrams to be written).
pub(crate) fn logged_from(sb: &Sandbox, peer: &str) {
    let start = format!("Servicing request from \"{peer}\" at {peer}");
    let login = format!(" at {peer} (");
    wait_for(
        &format!("a session from {peer} in the syslog"),
        Duration::from_secs(10),
        || {
            let log = sb.syslog();
            let logged_in = log
                .lines()
                .any(|l| l.contains("POP login by user") && l.contains(&login));
            if log.contains(&start) && logged_in {
                Ok(())
            } else {
                Err(log)
            }
        },
    );
}

fn apop_digest(greeting: &str, secret: &str) -> String {
    let c = &greeting[greeting.find('<').unwrap()..];
    Md5::digest([c.as_bytes(), secret.as_bytes()].concat())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn inetd_with_the_packaged_line() {
    let bob = user("pt_bob");
    let mut sb = sandbox("spawn-inetd", &bob, &user("pt_alice"));
    let port = free_port();
    let line = packaging("inetd.conf")
        .lines()
        .find(|l| l.starts_with("pop3"))
        .unwrap()
        .replacen("pop3", &format!("127.0.0.1:{port}"), 1);
    sb.inetd_conf(&format!("{line}\n"), port);
    poplib_session(&sb, port, &bob);
    logged_from(&sb, "127.0.0.1");
    assert!(
        sb.syslog().contains(&format!("Stats: {} 0 0 1 ", bob.name)),
        "-s from the packaged line"
    );
}

#[test]
fn inetd_on_ipv6_loopback() {
    let bob = user("pt_bob");
    let mut sb = sandbox("spawn-inetd6", &bob, &user("pt_alice"));
    let port = free_port();
    let line = packaging("inetd.conf")
        .lines()
        .find(|l| l.starts_with("pop3"))
        .unwrap()
        .replacen("pop3", &format!("[::1]:{port}"), 1)
        .replacen("tcp", "tcp6", 1);
    sb.inetd_conf(&format!("{line}\n"), port);
    let mut p = Pop::connect_to(format!("[::1]:{port}").parse().unwrap());
    assert!(p.login(&bob).starts_with("+OK"));
    p.cmd("QUIT");
    logged_from(&sb, "::1");
}

#[test]
fn tcpd_twists_outside_clients_to_popper_apop() {
    let alice = user("pt_alice");
    let bob = user("pt_bob");
    let mut sb = sandbox("spawn-tcpd", &bob, &alice);
    // The seed's rules, for a LAN of just 127.0.0.1.
    let allow = packaging("hosts.allow").replace("192.168.1.0/255.255.255.0", "127.0.0.1");
    assert!(allow.contains("popper: ALL EXCEPT 127.0.0.1 : twist PATH=/usr/local/lib; exec popper.apop -s -d\npopper: 127.0.0.1\n"), "{allow}");
    std::fs::write(sb.etc("hosts.allow"), allow).unwrap();
    let port = free_port();
    let line = packaging("inetd.conf.tcpd")
        .lines()
        .find(|l| l.starts_with("pop3"))
        .unwrap()
        .replacen("pop3", &format!("127.0.0.1:{port}"), 1);
    sb.inetd_conf(&format!("{line}\n"), port);
    // From "outside" (127.0.0.2): the APOP-only popper.
    let mut p = Pop::connect_from(Ipv4Addr::new(127, 0, 0, 2), port);
    assert!(p.greeting.contains(" starting.  <"), "{}", p.greeting);
    assert_eq!(
        p.cmd(&format!("USER {}", bob.name)),
        "-ERR [AUTH] You must use APOP authentication to connect to this server"
    );
    let (_, caps) = p.multi("CAPA");
    assert!(
        !String::from_utf8(caps)
            .unwrap()
            .lines()
            .any(|l| l == "USER")
    );
    let d = apop_digest(&p.greeting, SECRET);
    assert!(
        p.cmd(&format!("APOP {} {d}", alice.name))
            .starts_with("+OK ")
    );
    p.cmd("QUIT");
    logged_from(&sb, "127.0.0.2");
    // A real client from outside: poplib with APOP gets the mail, with
    // USER/PASS it is refused.
    sb.write_spool(
        &alice,
        &mbox(&[Message::new("a@example.com", "outside", "hello")]),
    );
    let apop_user = TestUser {
        password: SECRET.to_string(),
        ..alice.clone()
    };
    let files = crate::mailbox::poplib(&sb, port, &apop_user, &["--apop", "--source", "127.0.0.2"]);
    assert!(String::from_utf8_lossy(&files["1.msg"]).contains("Subject: outside\r\n"));
    let script = popper_e2e::bins::root().join("tests/clients/poplib_fetch.py");
    let out = sb.dir.join("refused");
    std::fs::create_dir(&out).unwrap();
    let o = Command::new("/usr/bin/python3")
        .arg(script)
        .args([port.to_string(), bob.name.clone(), bob.password.clone()])
        .arg(&out)
        .args(["--source", "127.0.0.2"])
        .output_within(LIMIT);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("You must use APOP authentication"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // From the LAN (127.0.0.1): the full popper, USER/PASS and APOP.
    let mut p = Pop::connect_from(Ipv4Addr::LOCALHOST, port);
    assert!(
        p.login(&bob)
            .starts_with(&format!("+OK {} has 1 message", bob.name))
    );
    p.cmd("QUIT");
    let mut p = Pop::connect_from(Ipv4Addr::LOCALHOST, port);
    let d = apop_digest(&p.greeting, SECRET);
    assert!(
        p.cmd(&format!("APOP {} {d}", alice.name))
            .starts_with("+OK ")
    );
    p.cmd("QUIT");
    poplib_session(&sb, port, &bob);
    logged_from(&sb, "127.0.0.1");
}

/// The packaged xinetd service, moved to a test port: xinetd insists a
/// service listed in /etc/services use that port, so it becomes UNLISTED.
fn xinetd_conf(sb: &Sandbox, port: u16, bind: &str, extra: &str) -> std::path::PathBuf {
    xinetd_conf_of(sb, "xinetd.d/popper", port, bind, extra)
}

/// An xinetd configuration of the packaged service `file` on `bind:port`.
pub(crate) fn xinetd_conf_of(
    sb: &Sandbox,
    file: &str,
    port: u16,
    bind: &str,
    extra: &str,
) -> std::path::PathBuf {
    let service = packaging(file);
    let body = service
        .replace("service pop3s", "service popper-test")
        .replace("service pop3", "service popper-test")
        .replace(
            "{\n",
            &format!("{{\n\ttype\t\t= UNLISTED\n\tport\t\t= {port}\n\tbind\t\t= {bind}\n{extra}"),
        );
    let conf = format!(
        "defaults\n{{\n\tlog_type = FILE {}\n}}\n{body}",
        sb.dir.join("xinetd.log").display()
    );
    let path = sb.dir.join(format!("xinetd-{port}.conf"));
    std::fs::write(&path, conf).unwrap();
    path
}

#[test]
fn xinetd_with_the_packaged_service() {
    let bob = user("pt_bob");
    let sb = sandbox("spawn-xinetd", &bob, &user("pt_alice"));
    let port = free_port();
    let conf = xinetd_conf(&sb, port, "127.0.0.1", "");
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
    poplib_session(&sb, port, &bob);
    logged_from(&sb, "127.0.0.1");
    // IPv6 as well.
    let port6 = free_port();
    let conf6 = xinetd_conf(&sb, port6, "::1", "\tflags\t\t= IPv6\n");
    let x6 = start(
        &sb,
        &popper_e2e::bins::xinetd(),
        &[
            "-dontfork".into(),
            "-f".into(),
            conf6.display().to_string(),
            "-pidfile".into(),
            sb.dir.join("x6.pid").display().to_string(),
        ],
        format!("[::1]:{port6}").parse().unwrap(),
    );
    let mut p = Pop::connect_to(format!("[::1]:{port6}").parse().unwrap());
    assert!(p.login(&bob).starts_with("+OK"));
    p.cmd("QUIT");
    logged_from(&sb, "::1");
    stop(x);
    stop(x6);
}

/// `KEY=value` from a unit file.
pub(crate) fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {unit}"))
        .to_string()
}

#[test]
fn systemd_socket_activation_with_the_packaged_units() {
    let bob = user("pt_bob");
    let sb = sandbox("spawn-systemd", &bob, &user("pt_alice"));
    let socket = packaging("systemd/popper.socket");
    let service = packaging("systemd/popper@.service");
    assert_eq!(unit_value(&socket, "Accept"), "yes");
    assert_eq!(unit_value(&socket, "ListenStream"), "110");
    assert_eq!(unit_value(&service, "StandardInput"), "socket");
    // ExecStart=-/usr/local/lib/popper -s -d: "-" means ignore the exit status.
    let exec = unit_value(&service, "ExecStart");
    let mut argv: Vec<String> = exec
        .trim_start_matches('-')
        .split_whitespace()
        .map(String::from)
        .collect();
    let program = argv.remove(0);
    for (addr, peer) in [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1")] {
        let port = free_port();
        let mut args = vec![
            "--inetd".to_string(),
            "-a".into(),
            "-l".into(),
            format!("{addr}:{port}"),
            program.clone(),
        ];
        args.extend(argv.iter().cloned());
        let s = start(
            &sb,
            Path::new("/usr/bin/systemd-socket-activate"),
            &args,
            format!("{addr}:{port}").parse().unwrap(),
        );
        if peer == "127.0.0.1" {
            poplib_session(&sb, port, &bob);
        } else {
            let mut p = Pop::connect_to(format!("{addr}:{port}").parse().unwrap());
            assert!(p.login(&bob).starts_with("+OK"));
            p.cmd("QUIT");
        }
        logged_from(&sb, peer);
        stop(s);
    }
    // The unit files are valid for systemd itself.
    let dir = sb.dir.join("units");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("popper.socket"), &socket).unwrap();
    std::fs::write(dir.join("popper@.service"), &service).unwrap();
    let v = sb
        .command(
            Path::new("/usr/bin/systemd-analyze"),
            &[
                "verify",
                &dir.join("popper.socket").display().to_string(),
                &dir.join("popper@.service").display().to_string(),
            ],
        )
        .output_within(LIMIT);
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(!err.contains("popper"), "systemd-analyze verify: {err}");
}

#[test]
fn tcpserver_with_the_packaged_run_script() {
    let bob = user("pt_bob");
    let sb = sandbox("spawn-tcpserver", &bob, &user("pt_alice"));
    let port = free_port();
    let run = packaging("tcpserver/run").replace(" 0 110 ", &format!(" 127.0.0.1 {port} "));
    assert!(
        run.contains(&format!(
            "tcpserver -v -R -H -c 40 127.0.0.1 {port} /usr/local/lib/popper -s -d"
        )),
        "{run}"
    );
    let script = sb.dir.join("run");
    popper_e2e::write_executable(&script, run, 0o755);
    let s = start(
        &sb,
        &script,
        &[] as &[String],
        format!("127.0.0.1:{port}").parse().unwrap(),
    );
    poplib_session(&sb, port, &bob);
    logged_from(&sb, "127.0.0.1");
    stop(s);
}

#[test]
fn without_a_socket_the_peer_comes_from_tcpremoteip() {
    let bob = user("pt_bob");
    let sb = sandbox("spawn-tcpremoteip", &bob, &user("pt_alice"));
    let input = format!("USER {}\r\nPASS {}\r\nQUIT\r\n", bob.name, bob.password);
    let mut c = sb
        .command(Path::new("/usr/local/lib/popper"), &["-s", "-d"])
        .env("TCPREMOTEIP", "192.0.2.7")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = popper_e2e::wait::wait_output(c, Duration::from_secs(60));
    assert!(String::from_utf8_lossy(&out.stdout).contains("+OK pt_bob has 1 message"));
    logged_from(&sb, "192.0.2.7");
}

#[test]
fn a_socket_peer_wins_over_tcpremoteip() {
    // The environment cannot disguise a client that has a real address.
    let bob = user("pt_bob");
    let mut sb = sandbox("spawn-tcpremoteip-socket", &bob, &user("pt_alice"));
    let port = free_port();
    let line = format!(
        "127.0.0.1:{port} stream tcp nowait root /usr/bin/env env TCPREMOTEIP=192.0.2.99 /usr/local/lib/popper -s -d\n"
    );
    sb.inetd_conf(&line, port);
    poplib_session(&sb, port, &bob);
    logged_from(&sb, "127.0.0.1");
    assert!(!sb.syslog().contains("192.0.2.99"));
}

/// Waits until the syslog has `n` login lines.
fn logins(sb: &Sandbox, n: usize) {
    wait_for(
        &format!("{n} login lines in the syslog"),
        Duration::from_secs(10),
        || {
            let log = sb.syslog();
            if log.matches("POP login by user").count() >= n {
                Ok(())
            } else {
                Err(log)
            }
        },
    );
}

#[test]
fn reverse_lookup_when_asked_and_never_with_dash_r() {
    let bob = user("pt_bob");
    let mut sb = sandbox("spawn-reverse", &bob, &user("pt_alice"));
    std::fs::write(sb.etc("popper.conf"), "set reverse-lookup\n").unwrap();
    let port = free_port();
    sb.inetd_conf(&format!("127.0.0.1:{port} stream tcp nowait root /usr/local/lib/popper popper -s -f /etc/popper.conf\n"), port);
    let port_r = free_port();
    sb.inetd_conf(&format!("127.0.0.1:{port_r} stream tcp nowait root /usr/local/lib/popper popper -s -R -f /etc/popper.conf\n"), port_r);
    let mut p = Pop::connect(port);
    p.login(&bob);
    p.cmd("QUIT");
    logins(&sb, 1);
    assert!(
        sb.syslog()
            .contains("POP login by user \"pt_bob\" at localhost (127.0.0.1)"),
        "{}",
        sb.syslog()
    );
    let mut p = Pop::connect(port_r);
    p.login(&bob);
    p.cmd("QUIT");
    logins(&sb, 2);
    let second = sb
        .syslog()
        .lines()
        .filter(|l| l.contains("POP login by user"))
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        second.contains(" at 127.0.0.1 ("),
        "-R: no lookup: {second}"
    );
}
