//! More than one server (issue 18): the PROXY protocol end to end, HAProxy
//! in front of two popper hosts sharing one spool, and perdition sending
//! each user to their own host.
//!
//! Everything runs in network namespaces the test makes
//! (`popper_e2e::netns`): HAProxy and both popper "hosts" (each its own
//! inetd on its own loopback address) in the server namespace, the
//! clients in the client namespace at [`CLIENT_ADDR`]. Headers the tests
//! craft by hand (IPv6 claims, every malformed case) come from a socket
//! made inside the server namespace ([`in_ns`]), from a trusted
//! (127.0.0.2) or an untrusted (10.199.0.1) address.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use popper_e2e::mail::{Message, mbox};
use popper_e2e::netns::{CLIENT_ADDR, NetPair, SERVER_ADDR};
use popper_e2e::pki::pki;
use popper_e2e::pop::Pop;
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{TestUser, user};
use popper_e2e::wait::{LIMIT, OutputWithin, wait_for};

/// Who may send a PROXY header in these tests: the server namespace's
/// loopback (where HAProxy connects from).
const TRUSTED: &str = "127.0.0.0/8, ::1";
/// The server namespace's and the client namespace's IPv6 addresses.
const SERVER6: &str = "fd00:199::1";
const CLIENT6: &str = "fd00:199::2";
/// The v2 signature.
const SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

fn bob() -> TestUser {
    user("pt_pxbob")
}

fn carol() -> TestUser {
    user("pt_pxcarol")
}

/// Runs `f` on a thread that has entered the network namespace `ns`
/// (`setns` changes only the calling thread's); sockets it makes stay in
/// that namespace wherever they are used afterwards.
#[allow(unsafe_code)]
fn in_ns<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(ns).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns with an open namespace file and CLONE_NEWNET
            // changes only this thread's network namespace; no memory is
            // involved.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    })
}

/// A connection to `to` from `from`, made in the namespace `ns`, with a
/// read timeout so a test cannot hang.
fn connect(ns: &Path, from: Ipv4Addr, to: SocketAddrV4) -> TcpStream {
    let s = in_ns(ns, || popper_e2e::net::connect_from(from, to));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// A PROXY v2 header for a TCP client.
fn v2(src: SocketAddr, dst: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let mut h = SIG.to_vec();
    let mut body = Vec::new();
    let fam = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
            0x11
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
            0x21
        }
        _ => panic!("mixed families"),
    };
    body.extend_from_slice(&src.port().to_be_bytes());
    body.extend_from_slice(&dst.port().to_be_bytes());
    body.extend_from_slice(tlvs);
    h.extend_from_slice(&[0x21, fam]);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(&body);
    h
}

/// A v2 LOCAL header (what HAProxy's health checks send).
fn v2_local() -> Vec<u8> {
    let mut h = SIG.to_vec();
    h.extend_from_slice(&[0x20, 0x00, 0, 0]);
    h
}

/// A raw client: what it is told to send, lines as they come.
struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Raw {
    fn new(s: TcpStream) -> Raw {
        Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn send(&mut self, b: &[u8]) {
        self.w.write_all(b).unwrap();
    }

    /// One line without CRLF ("" at EOF).
    fn line(&mut self) -> String {
        let mut v = Vec::new();
        self.r.read_until(b'\n', &mut v).unwrap();
        String::from_utf8_lossy(&v).trim_end().to_string()
    }

    fn cmd(&mut self, c: &str) -> String {
        self.send(format!("{c}\r\n").as_bytes());
        self.line()
    }

    /// Everything until the server closes.
    fn rest(&mut self) -> String {
        let mut v = Vec::new();
        let _ = self.r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }
}

// ---------------------------------------------------------------------
// One popper behind the PROXY protocol, headers crafted by the test.

/// A popper host in its own namespace pair, PROXY trusted from
/// 127.0.0.0/8, clear-text passwords only for local clients, relay
/// control on; served at 127.0.0.1:110.
struct Host {
    pair: NetPair,
    sb: Sandbox,
    relay: PathBuf,
}

const PORT: u16 = 110;

impl Host {
    fn new(name: &str) -> Host {
        Host::with_args(name, &[])
    }

    /// As [`Host::new`], popper given `extra` arguments after the usual
    /// ones (`--popup HOST PROGRAM` must come last).
    fn with_args(name: &str, extra: &[&str]) -> Host {
        let pair = NetPair::new();
        let mut sb = Sandbox::new(name);
        let relay = sb.dir.join("relay");
        std::fs::create_dir(&relay).unwrap();
        sb.set(&format!("set proxy-trusted-networks = {TRUSTED}"));
        sb.set("set proxy-timeout = 3");
        sb.set("set clear-text-password = local");
        sb.set(&format!("set relay-ctrl-dir = {}", relay.display()));
        sb.set("set auth-fail-delay = 0");
        sb.in_netns(&pair.server_path());
        let line = format!(
            "127.0.0.1:{PORT} stream tcp nowait root {} {}\n",
            popper_e2e::bins::popper().display(),
            crate::popper_args(&sb, &[])
                .into_iter()
                .chain(extra.iter().map(|a| a.to_string()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        sb.inetd_conf(&line, PORT);
        Host { pair, sb, relay }
    }

    fn to() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT)
    }

    /// A connection from the trusted 127.0.0.2.
    fn trusted(&self) -> Raw {
        Raw::new(connect(
            &self.pair.server_path(),
            Ipv4Addr::new(127, 0, 0, 2),
            Host::to(),
        ))
    }

    /// A connection from the untrusted 10.199.0.1 (the namespace's own
    /// veth address).
    fn untrusted(&self) -> Raw {
        Raw::new(connect(&self.pair.server_path(), SERVER_ADDR, Host::to()))
    }

    fn relay_users(&self, name: &str) -> Option<String> {
        std::fs::read(self.relay.join(name))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Waits until the trace holds `what`; returns it.
    fn trace_has(&self, what: &str) -> String {
        wait_for(what, Duration::from_secs(20), || {
            let t = self.sb.trace();
            if t.contains(what) { Ok(t) } else { Err(t) }
        })
    }
}

/// Logs in with USER/PASS after `header`, the header and both commands in
/// one write; returns the greeting and the two replies.
fn login_after(c: &mut Raw, header: &[u8], u: &TestUser) -> (String, String, String) {
    let mut b = header.to_vec();
    b.extend_from_slice(format!("USER {}\r\nPASS {}\r\n", u.name, u.password).as_bytes());
    c.send(&b);
    (c.line(), c.line(), c.line())
}

#[test]
fn the_header_s_address_decides_the_clear_text_policy_relay_control_and_the_log() {
    let bob = bob();
    let h = Host::new("proxy-policy");
    h.sb.write_spool(&bob, &mbox(&[Message::new("a@b", "one", "x\n")]));
    let dst: SocketAddr = "10.0.0.1:110".parse().unwrap();

    // A v2 header claiming 127.0.0.1: a local client, so USER/PASS is
    // allowed; relay control records 127.0.0.1. TLVs are skipped, and the
    // pipelined USER/PASS in the same write as the header are answered.
    let mut c = h.trusted();
    let tlvs = [0x01, 0, 4, b'p', b'o', b'p', b'3', 0x04, 0, 2, 0, 0];
    let (greet, user_r, pass_r) = login_after(
        &mut c,
        &v2("127.0.0.1:40000".parse().unwrap(), dst, &tlvs),
        &bob,
    );
    assert!(greet.starts_with("+OK"), "{greet}");
    assert!(user_r.starts_with("+OK"), "{user_r}");
    assert!(pass_r.starts_with("+OK"), "{pass_r}");
    assert!(c.cmd("QUIT").starts_with("+OK"));
    assert_eq!(
        h.relay_users("127.0.0.1").as_deref(),
        Some("USER=pt_pxbob\0")
    );
    h.trace_has("POP login by user \"pt_pxbob\" at 127.0.0.1");

    // The same from a remote address: the policy refuses the password.
    let mut c = h.trusted();
    let (greet, user_r, pass_r) = login_after(
        &mut c,
        &v2("192.0.2.7:40001".parse().unwrap(), dst, &[]),
        &bob,
    );
    assert!(greet.starts_with("+OK"), "{greet}");
    let refused = format!("{user_r} / {pass_r}");
    assert!(refused.contains("-ERR [AUTH]"), "{refused}");
    c.cmd("QUIT");
    assert!(h.relay_users("192.0.2.7").is_none());
    h.trace_has("@192.0.2.7: -ERR [AUTH]");

    // IPv6 claims: ::1 is local (v2 INET6), 2001:db8::7 is not (v1 TCP6).
    let mut c = h.trusted();
    let (_, _, pass_r) = login_after(
        &mut c,
        &v2(
            "[::1]:40002".parse().unwrap(),
            "[::1]:110".parse().unwrap(),
            &[],
        ),
        &bob,
    );
    assert!(pass_r.starts_with("+OK"), "{pass_r}");
    c.cmd("QUIT");
    assert_eq!(h.relay_users("::1").as_deref(), Some("USER=pt_pxbob\0"));
    h.trace_has("POP login by user \"pt_pxbob\" at ::1 ");
    let mut c = h.trusted();
    let (_, user_r, pass_r) = login_after(
        &mut c,
        b"PROXY TCP6 2001:db8::7 2001:db8::1 40003 110\r\n",
        &bob,
    );
    assert!(
        format!("{user_r}{pass_r}").contains("-ERR [AUTH]"),
        "{user_r} {pass_r}"
    );
    c.cmd("QUIT");
    assert!(h.relay_users("2001:db8::7").is_none());
    h.trace_has("@2001:db8::7: -ERR [AUTH]");

    // v1 TCP4 claiming 127.0.0.1, and a v2 LOCAL / v1 UNKNOWN header: the
    // connection's own address (127.0.0.2, local) counts.
    for header in [
        &b"PROXY TCP4 127.0.0.1 10.0.0.1 40004 110\r\n"[..],
        &v2_local(),
        b"PROXY UNKNOWN\r\n",
    ] {
        let mut c = h.trusted();
        let (_, _, pass_r) = login_after(&mut c, header, &bob);
        assert!(pass_r.starts_with("+OK"), "{header:?}: {pass_r}");
        assert!(c.cmd("QUIT").starts_with("+OK"));
    }
    assert_eq!(
        h.relay_users("127.0.0.2").as_deref(),
        Some("USER=pt_pxbob\0")
    );
    let t = h.trace_has("PROXY v1 from 127.0.0.2: LOCAL/UNKNOWN");
    assert!(t.contains("PROXY v2 from 127.0.0.2: LOCAL/UNKNOWN"), "{t}");
    assert!(
        t.contains("PROXY v1 from 127.0.0.2: client 127.0.0.1:40004"),
        "{t}"
    );
    // The -s statistics line names the header's client too.
    assert!(t.contains("Stats: pt_pxbob 0 0 1 "), "{t}");
}

/// The first link of a qmail chain behind a proxy: the checkpassword
/// program (and relay-ctrl-allow after it) finds the client the PROXY
/// header named in `$TCPREMOTEIP`, not the proxy.
#[test]
fn a_popup_chain_gets_the_header_s_client_as_tcpremoteip() {
    let dir = std::env::temp_dir().join(format!("popper-proxy-chain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let seen = dir.join("seen");
    let program = dir.join("checkpassword");
    popper_e2e::write_executable(
        &program,
        format!(
            "#!/bin/sh\ncat <&3 >/dev/null\nprintf '%s' \"${{TCPREMOTEIP-unset}}\" > {}\nexit 0\n",
            seen.display()
        ),
        0o755,
    );
    let prog = program.to_str().unwrap().to_string();
    let h = Host::with_args("proxy-popup", &["--popup", "chain.example", &prog]);
    let bob = bob();
    let mut c = h.trusted();
    let (greet, user_r, _) =
        login_after(&mut c, b"PROXY TCP4 127.0.0.9 10.0.0.1 40010 110\r\n", &bob);
    assert!(greet.starts_with("+OK"), "{greet}");
    assert!(user_r.starts_with("+OK"), "{user_r}");
    wait_for("the chain to run", Duration::from_secs(20), || {
        std::fs::read_to_string(&seen).map_err(|e| e.to_string())
    });
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "127.0.0.9");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_trusted_source_without_a_good_header_is_closed_and_logged() {
    let h = Host::new("proxy-bad");
    let dst: SocketAddr = "10.0.0.1:110".parse().unwrap();
    let good = v2("192.0.2.7:1".parse().unwrap(), dst, &[]);
    let mut bad_version = good.clone();
    bad_version[12] = 0x11;
    let mut short_length = good.clone();
    short_length[15] = 11;
    short_length.truncate(27);
    let long_v1 = format!("PROXY UNKNOWN {}\r\n", "x".repeat(100));
    // Each: what is sent (then the write side is shut), the log's reason.
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        (
            "garbage",
            b"USER pt_pxbob\r\n".to_vec(),
            false,
            "not a PROXY protocol header",
        ),
        (
            "truncated v2",
            good[..20].to_vec(),
            true,
            "closed after 20 bytes of a PROXY header",
        ),
        (
            "truncated v1",
            b"PROXY TCP4 192.0.2.7 10.".to_vec(),
            true,
            "closed after 24 bytes",
        ),
        (
            "bad version",
            bad_version,
            false,
            "PROXY protocol version 1;",
        ),
        (
            "short v2 length",
            short_length,
            false,
            "a PROXY v2 length of 11 bytes, less than its addresses' 12",
        ),
        (
            "long v1",
            long_v1.into_bytes(),
            false,
            "a PROXY v1 line longer than 107 bytes",
        ),
        (
            "bad v1 port",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 01 110\r\nQUIT\r\n".to_vec(),
            false,
            "a bad port in a PROXY v1 line",
        ),
        ("nothing", Vec::new(), true, "closed without a PROXY header"),
    ];
    for (what, bytes, shut, why) in &cases {
        let mut c = h.trusted();
        c.send(bytes);
        if *shut {
            c.w.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let got = c.rest();
        assert_eq!(got, "", "{what}: a greeting or reply");
        h.trace_has(&format!(
            "PROXY header from trusted 127.0.0.2 refused: {why}"
        ));
    }
    // Slow: half a header, or none at all, and the connection kept open:
    // closed after proxy-timeout (3 s), not before. Both at once.
    let start = Instant::now();
    let slow: Vec<_> = [good[..10].to_vec(), Vec::new()]
        .into_iter()
        .map(|b| {
            let mut c = h.trusted();
            c.send(&b);
            std::thread::spawn(move || (c.rest(), Instant::now()))
        })
        .collect();
    for t in slow {
        let (got, at) = t.join().unwrap();
        assert_eq!(got, "");
        let took = at - start;
        assert!(
            took >= Duration::from_millis(2900) && took < Duration::from_secs(9),
            "closed after {took:?}"
        );
    }
    h.trace_has("refused: the PROXY header stopped after 10 bytes; connection closed");
    h.trace_has("refused: no PROXY header in time; connection closed");
    assert!(
        !h.sb.trace().contains("Servicing request"),
        "{}",
        h.sb.trace()
    );
}

#[test]
fn an_untrusted_source_s_header_is_pop3_input() {
    let bob = bob();
    let h = Host::new("proxy-untrusted");
    h.sb.write_spool(&bob, &mbox(&[Message::new("a@b", "one", "x\n")]));
    // v1: an unknown command; the session goes on, the client is the
    // socket's (10.199.0.1, not local: the policy refuses PASS).
    let mut c = h.untrusted();
    assert!(c.line().starts_with("+OK"));
    let r = c.cmd("PROXY TCP4 127.0.0.1 10.0.0.1 1 110");
    assert!(r.starts_with("-ERR"), "{r}");
    let r = c.cmd(&format!("USER {}", bob.name));
    assert!(r.starts_with("-ERR [AUTH]"), "{r}");
    assert!(c.cmd("QUIT").starts_with("+OK"));
    h.trace_has("@10.199.0.1: -ERR [AUTH]");
    assert!(h.relay_users("127.0.0.1").is_none());
    // v2: its signature's QUIT line ends the session.
    let mut c = h.untrusted();
    assert!(c.line().starts_with("+OK"));
    c.send(&v2(
        "127.0.0.1:1".parse().unwrap(),
        "10.0.0.1:110".parse().unwrap(),
        &[],
    ));
    let rest = c.rest();
    assert!(rest.contains("+OK"), "{rest}");
    assert!(
        rest.lines().last().unwrap_or("").starts_with("+OK"),
        "{rest}"
    );
    let t = h.sb.trace();
    assert!(!t.contains("PROXY header from trusted"), "{t}");
    assert!(!t.contains("PROXY v"), "{t}");
}

// ---------------------------------------------------------------------
// HAProxy in front of two popper hosts sharing one spool.

/// Two popper hosts (127.0.0.1 and 127.0.0.2 in the server namespace,
/// each its own inetd for 1110 and, with -l 2, 1995) sharing host A's
/// spool directory, syslog captured per host; HAProxy in front with
/// packaging/haproxy.cfg's configuration (plus a send-proxy (v1) copy on
/// port 111).
struct Balanced {
    pair: NetPair,
    hosts: [Sandbox; 2],
    haproxy: Child,
    stats: PathBuf,
}

impl Drop for Balanced {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions; the group is
        // the HAProxy this test started.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-(self.haproxy.id() as i32), libc::SIGKILL);
        }
        let _ = self.haproxy.wait();
    }
}

/// packaging/haproxy.cfg made to run here: the backends' addresses and
/// ports, quicker checks, no syslog, a stats socket, and a send-proxy (v1)
/// copy of the plain backend on port 111.
fn haproxy_conf(stats: &Path) -> String {
    let root = popper_e2e::bins::root();
    let shipped = std::fs::read_to_string(root.join("packaging/haproxy.cfg")).unwrap();
    let mut conf = shipped
        .replace("    log /dev/log local0\n", "")
        .replace(
            "    maxconn 4096\n",
            &format!(
                "    maxconn 4096\n    stats socket {} mode 600 level admin\n",
                stats.display()
            ),
        )
        .replace("192.0.2.11:110", "127.0.0.1:1110")
        .replace("192.0.2.12:110", "127.0.0.2:1110")
        .replace("192.0.2.11:995", "127.0.0.1:1995")
        .replace("192.0.2.12:995", "127.0.0.2:1995")
        .replace(" port 110 ", " port 1110 ")
        .replace("inter 5s", "inter 300ms");
    for want in [
        "127.0.0.1:1110",
        "127.0.0.2:1995",
        "port 1110",
        "inter 300ms",
        "stats socket",
    ] {
        assert!(
            conf.contains(want),
            "packaging/haproxy.cfg changed: no {want}"
        );
    }
    let start = conf.find("\nbackend popper_pop3\n").unwrap() + 1;
    let end = conf.find("\nbackend popper_pop3s\n").unwrap() + 1;
    let v1 = conf[start..end]
        .replace("backend popper_pop3\n", "backend popper_pop3_v1\n")
        .replace("send-proxy-v2 ", "send-proxy ");
    conf.push_str(&format!(
        "\nfrontend pop3_v1\n    bind :111\n    default_backend popper_pop3_v1\n\n{v1}"
    ));
    conf
}

impl Balanced {
    fn new(name: &str) -> Balanced {
        let pair = NetPair::new();
        for (ns, dev, addr) in [
            (&pair.server, "veth-srv", SERVER6),
            (&pair.client, "veth-cli", CLIENT6),
        ] {
            popper_e2e::run(Command::new("ip").args([
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/64"),
                "dev",
                dev,
                "nodad",
            ]));
        }
        let p = pki();
        let mut hosts = [
            Sandbox::new(&format!("{name}-a")),
            Sandbox::new(&format!("{name}-b")),
        ];
        let shared = hosts[0].mail.clone();
        for (i, sb) in hosts.iter_mut().enumerate() {
            sb.set(&format!("set proxy-trusted-networks = {TRUSTED}"));
            sb.set(&format!("set tls-server-cert-file = {}", p.cert.display()));
            sb.set(&format!("set tls-private-key-file = {}", p.key.display()));
            sb.in_netns(&pair.server_path());
            sb.capture_syslog();
            if i == 1 {
                sb.bind(&shared, Path::new("/var/mail"));
            }
            let addr = format!("127.0.0.{}", i + 1);
            let popper = popper_e2e::bins::popper();
            for (port, tls) in [(1110, ""), (1995, " -l 2")] {
                let line = format!(
                    "{addr}:{port} stream tcp nowait root {} popper -d -s{tls} -f {}\n",
                    popper.display(),
                    sb.conf().display()
                );
                sb.inetd_conf(&line, port);
            }
        }
        let dir = hosts[0].dir.clone();
        let stats = dir.join("haproxy.sock");
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_conf(&stats)).unwrap();
        let haproxy =
            popper_e2e::netns::in_netns(&pair.server_path(), Path::new("/usr/sbin/haproxy"))
                .args(["-db", "-f"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(dir.join("haproxy.log")).unwrap(),
                ))
                .process_group(0)
                .spawn()
                .expect("haproxy must be installed: scripts/setup.sh test");
        let mut b = Balanced {
            pair,
            hosts,
            haproxy,
            stats,
        };
        // Every server's POP3 health check (connect with a PROXY LOCAL
        // header, +OK, QUIT, +OK) has passed.
        wait_for(
            "HAProxy's health checks to pass",
            Duration::from_secs(30),
            || {
                if let Ok(Some(st)) = b.haproxy.try_wait() {
                    let log = std::fs::read_to_string(b.hosts[0].dir.join("haproxy.log"));
                    panic!("haproxy exited ({st}): {}", log.unwrap_or_default());
                }
                let stat = b.show_stat();
                let ok = stat
                    .iter()
                    .filter(|r| r.get("svname").is_some_and(|s| s.starts_with("pop")))
                    .filter(|r| r.get("check_status").map(String::as_str) == Some("L7OK"))
                    .count();
                if ok == 6 {
                    Ok(())
                } else {
                    Err(format!("{stat:?}"))
                }
            },
        );
        b
    }

    /// HAProxy's `show stat`, one map per row.
    fn show_stat(&self) -> Vec<std::collections::HashMap<String, String>> {
        let Ok(mut s) = UnixStream::connect(&self.stats) else {
            return Vec::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"show stat\n").unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let mut lines = text.lines();
        let Some(head) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
            return Vec::new();
        };
        let names: Vec<&str> = head.split(',').collect();
        lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                names
                    .iter()
                    .zip(l.split(','))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }

    /// A POP session from the client namespace to `addr` (through HAProxy).
    fn pop(&self, addr: &str) -> Pop {
        let a: SocketAddr = addr.parse().unwrap();
        in_ns(&self.pair.client_path(), || Pop::connect_to(a))
    }

    /// Waits until the hosts' syslogs together show `n` logins of `who`
    /// and returns both.
    fn logins(&self, who: &str, n: usize) -> [String; 2] {
        let want = format!("POP login by user \"{who}\"");
        wait_for(
            &format!("{n} logins of {who}"),
            Duration::from_secs(20),
            || {
                let logs = [self.hosts[0].syslog(), self.hosts[1].syslog()];
                let seen: usize = logs.iter().map(|l| l.matches(&want).count()).sum();
                if seen >= n {
                    Ok(logs)
                } else {
                    Err(logs.join("\n----\n"))
                }
            },
        )
    }
}

#[test]
fn haproxy_spreads_sessions_over_two_hosts_and_popper_logs_the_real_client() {
    let bob = bob();
    let site = Balanced::new("proxy-haproxy");
    let msgs: Vec<Message> = (0..4)
        .map(|i| Message::new("a@b", &format!("m{i}"), "body\n"))
        .collect();
    site.hosts[0].write_spool(&bob, &mbox(&msgs));
    // Four sessions, each deleting one message of the shared spool: the
    // second sees what the first left, whichever host serves it. IPv4 and
    // IPv6 through the v2 frontend, then the v1 (send-proxy) one.
    let front = [
        format!("{SERVER_ADDR}:110"),
        format!("{SERVER_ADDR}:110"),
        format!("[{SERVER6}]:110"),
        format!("{SERVER_ADDR}:111"),
    ];
    for (i, addr) in front.iter().enumerate() {
        let mut p = site.pop(addr);
        assert!(p.greeting.starts_with("+OK"), "{}", p.greeting);
        assert!(p.login(&bob).starts_with("+OK"));
        let stat = p.cmd("STAT");
        assert!(
            stat.starts_with(&format!("+OK {} ", 4 - i)),
            "{addr}: {stat}"
        );
        assert!(p.cmd("DELE 1").starts_with("+OK"));
        assert!(p.cmd("QUIT").starts_with("+OK"));
        site.logins(&bob.name, i + 1);
    }
    let logs = site.logins(&bob.name, 4);
    let all = logs.join("\n");
    let login_at = |log: &str, addr: &str| {
        log.lines().any(|l| {
            l.contains("POP login by user \"pt_pxbob\"") && l.contains(&format!(" at {addr} "))
        })
    };
    // Both hosts served the client, which each saw as itself, never as
    // the balancer; the statistics lines name it too.
    for (i, log) in logs.iter().enumerate() {
        assert!(login_at(log, &CLIENT_ADDR.to_string()), "host {i}:\n{log}");
    }
    assert!(login_at(&all, CLIENT6), "{all}");
    assert!(
        !all.lines()
            .any(|l| l.contains("POP login") && l.contains(" at 127.0.0.")),
        "{all}"
    );
    assert!(all.contains("Stats: pt_pxbob 1 "), "{all}");
    assert!(
        all.contains(&format!(" {CLIENT_ADDR} {CLIENT_ADDR}")),
        "{all}"
    );
    // Which header each came in: v2 from the 110 frontend, v1 from 111;
    // the health checks' are v2 LOCAL.
    assert!(
        all.contains(&format!("PROXY v2 from 127.0.0.1: client {CLIENT_ADDR}:")),
        "{all}"
    );
    assert!(
        all.contains(&format!("PROXY v2 from 127.0.0.1: client [{CLIENT6}]:")),
        "{all}"
    );
    assert!(
        all.contains(&format!(": client {CLIENT_ADDR}:")) && all.contains("PROXY v1 from 127.0.0."),
        "{all}"
    );
    assert!(all.contains("LOCAL/UNKNOWN"), "{all}");
    assert!(!all.contains("refused"), "{all}");
    // Four sessions, four deletions, one spool: nothing is left.
    let left = String::from_utf8_lossy(&site.hosts[0].read_spool(&bob)).into_owned();
    assert_eq!(left.matches("Subject: m").count(), 0, "{left}");
}

#[test]
fn pop3s_through_haproxy_reads_the_header_before_the_tls_handshake() {
    let carol = carol();
    let site = Balanced::new("proxy-haproxy-tls");
    site.hosts[0].write_spool(&carol, &mbox(&[Message::new("a@b", "one", "x\n")]));
    let script = format!(
        r#"
import socket, ssl
ctx = ssl.create_default_context(cafile={ca:?})
for i in range(2):
    s = socket.create_connection(({host:?}, 995), timeout=30)
    t = ctx.wrap_socket(s, server_hostname={host:?})
    f = t.makefile("rb")
    out = [f.readline()]
    t.sendall(b"USER {user}\r\nPASS {pw}\r\nSTAT\r\nQUIT\r\n")
    out += [f.readline() for _ in range(4)]
    print(t.version(), b"|".join(x.strip() for x in out).decode())
"#,
        ca = pki().ca.display().to_string(),
        host = SERVER_ADDR.to_string(),
        user = carol.name,
        pw = carol.password,
    );
    let out = popper_e2e::netns::in_netns(&site.pair.client_path(), Path::new("/usr/bin/python3"))
        .args(["-c", &script])
        .output_within(LIMIT);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    for l in text.lines() {
        assert!(l.starts_with("TLSv1.3 +OK"), "{l}");
        assert!(l.contains("|+OK 1 "), "{l}");
    }
    let logs = site.logins(&carol.name, 2);
    for (i, log) in logs.iter().enumerate() {
        assert!(
            log.lines()
                .any(|l| l.contains("TLS handshake with") && l.contains(&CLIENT_ADDR.to_string())),
            "host {i}:\n{log}"
        );
        assert!(
            log.contains(&format!(
                "POP login by user \"pt_pxcarol\" at {CLIENT_ADDR} "
            )),
            "host {i}:\n{log}"
        );
    }
}

// ---------------------------------------------------------------------
// perdition: each user to their own host.

#[test]
fn perdition_sends_each_user_to_their_host_with_a_popmap() {
    let (bob, carol) = (bob(), carol());
    let pair = NetPair::new();
    let mut hosts = [
        Sandbox::new("proxy-perdition-a"),
        Sandbox::new("proxy-perdition-b"),
    ];
    for (i, sb) in hosts.iter_mut().enumerate() {
        sb.in_netns(&pair.server_path());
        let line = format!(
            "127.0.0.{}:1110 stream tcp nowait root {} {}\n",
            i + 1,
            popper_e2e::bins::popper().display(),
            crate::popper_args(sb, &[]).join(" ")
        );
        sb.inetd_conf(&line, 1110);
    }
    // Each user's mail is on their own host only.
    hosts[0].write_spool(&bob, &mbox(&[Message::new("a@b", "for bob", "x\n")]));
    hosts[1].write_spool(
        &carol,
        &mbox(&[
            Message::new("a@b", "c1", "x\n"),
            Message::new("a@b", "c2", "y\n"),
        ]),
    );
    // The shipped popmap's form, with this test's hosts.
    let root = popper_e2e::bins::root();
    let shipped = std::fs::read_to_string(root.join("packaging/perdition.popmap")).unwrap();
    assert!(shipped.contains("alice:192.0.2.11:110"), "{shipped}");
    let map: String = format!(
        "{}:127.0.0.1:1110\n{}:127.0.0.2:1110\n",
        bob.name, carol.name
    );
    let mut front = Sandbox::new("proxy-perdition");
    front.in_netns(&pair.server_path());
    front.capture_syslog();
    let db = front.dir.join("popmap.gdbm.db");
    let mut mk = Command::new("/usr/bin/makegdbm")
        .arg(&db)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    mk.stdin.take().unwrap().write_all(map.as_bytes()).unwrap();
    assert!(mk.wait().unwrap().success());
    std::fs::set_permissions(
        &front.dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let line = format!(
        "{SERVER_ADDR}:110 stream tcp nowait root /usr/sbin/perdition.pop3 perdition.pop3 -i -n -M /usr/lib/x86_64-linux-gnu/libperditiondb_gdbm.so.0 -m {} --ssl_mode none\n",
        db.display()
    );
    front.inetd_conf(&line, 110);
    for (u, subjects, host) in [(&bob, 1, 0), (&carol, 2, 1)] {
        let mut p = in_ns(&pair.client_path(), || {
            Pop::connect_to(SocketAddr::new(SERVER_ADDR.into(), 110))
        });
        assert!(p.greeting.starts_with("+OK"), "{}", p.greeting);
        let r = p.login(u);
        assert!(r.starts_with("+OK"), "{}: {r}\n{}", u.name, front.syslog());
        let stat = p.cmd("STAT");
        assert!(
            stat.starts_with(&format!("+OK {subjects} ")),
            "{}: {stat}",
            u.name
        );
        assert!(p.cmd("QUIT").starts_with("+OK"));
        hosts[host].session_pid(&u.name);
        assert!(
            !hosts[1 - host]
                .trace()
                .contains(&format!("user \"{}\"", u.name))
        );
    }
    // APOP cannot pass through: perdition's greeting has no challenge of
    // the host's (it answers APOP itself, with an error).
    let mut p = in_ns(&pair.client_path(), || {
        Pop::connect_to(SocketAddr::new(SERVER_ADDR.into(), 110))
    });
    assert!(!p.greeting.contains('<'), "{}", p.greeting);
    let r = p.cmd(&format!(
        "APOP {} 0123456789abcdef0123456789abcdef",
        bob.name
    ));
    assert!(r.starts_with("-ERR"), "{r}");
}
