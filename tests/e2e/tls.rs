//! TLS, SASL AUTH and the clear-text password policy (issue 15), end to
//! end: popper under a real inetd on a real TCP socket, real clients
//! (openssl s_client, curl, fetchmail, mpop, Python's poplib) verifying
//! popper's certificate against a CA the test made (`popper_e2e::pki`),
//! byte-exact downloads over TLS, the STLS injection, bad certificates and
//! keys, hostile handshakes, and the whole policy matrix with a client on
//! "another host" (a network namespace pair, `popper_e2e::netns`).
//!
//! The interface tested is `tls-interface.md`'s: `-l 0|1|2`, `-p 0..4`,
//! `tls-server-cert-file`, `tls-private-key-file`, `tls-version`,
//! `tls-cipher-list`, `tls-support`, `clear-text-password`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use popper_e2e::mail::{Message, mbox, tricky, wire};
use popper_e2e::netns::{NetPair, SERVER_ADDR};
use popper_e2e::pki::{Pki, pki};
use popper_e2e::pop::{Pop, lf};
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{TestUser, user};
use popper_e2e::wait::{LIMIT, OutputWithin, wait_for, wait_output};

use crate::clients::{client_mail, expected, uid_of};
use crate::mailbox::read_dir;
use crate::popauth::write_with_python;

/// pt_alice's pop.auth secret (APOP, CRAM-MD5, SCRAM-SHA-256).
const SECRET: &str = "tls-Secret-1";

const STLS_OK: &str = "+OK Begin TLS negotiation now.";
const NO_TLS: &str = "-ERR [SYS/PERM] TLS is not available on this server";
const NEVER: &str =
    "-ERR [AUTH] You must use stronger authentication such as APOP to connect to this server";
const TLS_ONLY: &str = "-ERR [AUTH] You must use TLS/SSL or stronger authentication such as APOP to connect to this server";
const MUST_APOP: &str = "-ERR [AUTH] You must use APOP to connect to this server";

fn alice() -> TestUser {
    user("pt_alice")
}

fn bob() -> TestUser {
    user("pt_bob")
}

/// pt_alice with her pop.auth secret as the password (APOP and the
/// challenge-response mechanisms).
fn alice_apop() -> TestUser {
    TestUser {
        password: SECRET.to_string(),
        ..alice()
    }
}

/// The configuration lines for a certificate and key.
fn tls_conf(cert: &Path, key: &Path) -> String {
    format!(
        "set tls-server-cert-file = {}\nset tls-private-key-file = {}\n",
        cert.display(),
        key.display()
    )
}

/// The good certificate and key.
fn good() -> String {
    let p = pki();
    tls_conf(&p.cert, &p.key)
}

/// A sandbox for a TLS test: no failure delay and no failure limit (the
/// tests that fail logins on purpose should not wait), `conf` added, and
/// with `apop`, a private /etc with a pop.auth holding pt_alice's secret.
fn sandbox(name: &str, conf: &str, apop: bool) -> Sandbox {
    let mut sb = Sandbox::new(name);
    sb.set("set auth-fail-delay = 0");
    sb.set("set max-auth-failures = 0");
    for l in conf.lines() {
        sb.set(l);
    }
    if apop {
        sb.overlay_etc();
        write_with_python(&sb.etc("pop.auth"), &[(&alice().name, SECRET)]);
    }
    sb
}

/// [`sandbox`] served under inetd on a loopback port with `flags`.
fn serve(name: &str, flags: &[&str], conf: &str, apop: bool) -> (Sandbox, u16) {
    let mut sb = sandbox(name, conf, apop);
    let port = sb.inetd(&popper_e2e::bins::popper(), &crate::popper_args(&sb, flags));
    (sb, port)
}

/// One popper on one accepted connection, as inetd would start it, so the
/// test sees how it exited.
struct OneShot {
    port: u16,
    rx: mpsc::Receiver<ExitStatus>,
}

impl OneShot {
    fn new(sb: &Sandbox, flags: &[&str]) -> OneShot {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut cmd = sb.command(&popper_e2e::bins::popper(), &sb.popper_args(flags));
        let stderr = sb.dir.join(format!("oneshot-{port}.stderr"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let (s, _) = listener.accept().unwrap();
            let out = s.try_clone().unwrap();
            let child = cmd
                .stdin(Stdio::from(std::os::fd::OwnedFd::from(s)))
                .stdout(Stdio::from(std::os::fd::OwnedFd::from(out)))
                .stderr(Stdio::from(std::fs::File::create(stderr).unwrap()))
                .process_group(0)
                .spawn()
                .unwrap();
            // The command (and its copies of the socket) are gone once
            // the child runs: only popper holds the connection.
            drop(cmd);
            let _ = tx.send(wait_output(child, Duration::from_secs(120)).status);
        });
        OneShot { port, rx }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s
    }

    fn status(&self) -> ExitStatus {
        self.rx
            .recv_timeout(Duration::from_secs(120))
            .expect("popper did not exit")
    }
}

/// Everything the server sends until it closes.
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return v,
            Ok(n) => v.extend_from_slice(&buf[..n]),
            // A reset after a TLS alert is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return v,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e} after {v:?}"),
        }
    }
}

/// Waits until the trace has a line containing every one of `parts`.
fn traced(sb: &Sandbox, parts: &[&str]) -> String {
    wait_for(
        &format!("a trace line with {parts:?}"),
        Duration::from_secs(10),
        || {
            let t = sb.trace();
            t.lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .map(str::to_string)
                .ok_or(t.clone())
        },
    )
}

// ---------------------------------------------------------------------
// The Python driver (tests/clients/pop_tls.py).

/// A JSON object of string, number and boolean values.
#[derive(Default, Clone)]
struct Json(Vec<(String, String)>);

fn jstr(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Json {
    fn s(mut self, k: &str, v: impl AsRef<str>) -> Json {
        self.0.push((k.to_string(), jstr(v.as_ref())));
        self
    }
    fn n(mut self, k: &str, v: u16) -> Json {
        self.0.push((k.to_string(), v.to_string()));
        self
    }
    fn t(mut self, k: &str) -> Json {
        self.0.push((k.to_string(), "true".into()));
        self
    }
    fn text(&self) -> String {
        let f: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}:{v}", jstr(k)))
            .collect();
        format!("{{{}}}", f.join(","))
    }
}

/// A session of `mode` ("plain", "stls", "ssl") to host:port, verifying
/// against the test CA, logging in with `method` as `u`.
fn py(host: &str, port: u16, mode: &str, method: &str, u: &TestUser) -> Json {
    Json::default()
        .s("host", host)
        .n("port", port)
        .s("mode", mode)
        .s("cafile", pki().ca.display().to_string())
        .s("method", method)
        .s("user", &u.name)
        .s("secret", &u.password)
}

/// What pop_tls.py said about one session.
#[derive(Debug)]
struct Answer(BTreeMap<String, String>);

impl Answer {
    fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }
    fn list(&self, k: &str) -> Vec<String> {
        (0..)
            .map_while(|i| self.0.get(&format!("{k}.{i}")).cloned())
            .collect()
    }
    fn ok(&self) -> bool {
        self.get("ok") == "true"
    }
    /// The last reply of the login.
    fn last(&self) -> String {
        self.list("login").last().cloned().unwrap_or_default()
    }
}

fn unescape(v: &str) -> String {
    let mut o = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            o.push(c);
            continue;
        }
        match it.next() {
            Some('r') => o.push('\r'),
            Some('n') => o.push('\n'),
            Some('t') => o.push('\t'),
            Some(c) => o.push(c),
            None => {}
        }
    }
    o
}

/// Runs pop_tls.py on `sessions` (in the network namespace `netns` when
/// given) and returns its answers.
fn pop_tls(sessions: &[Json], netns: Option<&Path>) -> Vec<Answer> {
    let script = popper_e2e::bins::root().join("tests/clients/pop_tls.py");
    let arg = format!(
        "[{}]",
        sessions
            .iter()
            .map(Json::text)
            .collect::<Vec<_>>()
            .join(",")
    );
    let python = Path::new("/usr/bin/python3");
    let mut cmd = match netns {
        Some(ns) => popper_e2e::netns::in_netns(ns, python),
        None => Command::new(python),
    };
    let out = popper_e2e::run(cmd.arg(script).arg(&arg));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut answers = Vec::new();
    let mut cur = BTreeMap::new();
    for l in text.lines() {
        if l == "--" {
            answers.push(Answer(std::mem::take(&mut cur)));
            continue;
        }
        let (k, v) = l.split_once('\t').unwrap_or((l, ""));
        cur.insert(k.to_string(), unescape(v));
    }
    assert_eq!(answers.len(), sessions.len(), "pop_tls.py: {text}");
    answers
}

fn pop_tls1(s: Json) -> Answer {
    pop_tls(&[s], None).pop().unwrap()
}

// ---------------------------------------------------------------------
// Other clients.

/// openssl s_client to 127.0.0.1:port (`-starttls pop3` when `stls`),
/// verifying against the test CA for `localhost`, sending `input` lines
/// (CRLF) and waiting for the server to close. Returns whether it
/// succeeded and its stdout and stderr together.
fn s_client(port: u16, stls: bool, extra: &[&str], input: &str) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .arg("-CAfile")
        .arg(&pki().ca)
        .args(["-verify_return_error", "-crlf", "-ign_eof"]);
    if stls {
        cmd.args(["-starttls", "pop3"]);
    }
    cmd.args(extra);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl must be installed: scripts/setup.sh test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    (out.status.success(), text(&out))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn curl(args: &[String]) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60", "--cacert"])
        .arg(&pki().ca)
        .args(args)
        .output_within(LIMIT)
}

/// curl's arguments to reach localhost:port at 127.0.0.1 only (never
/// ::1, where nothing listens).
fn resolve(port: u16) -> Vec<String> {
    vec!["--resolve".into(), format!("localhost:{port}:127.0.0.1")]
}

/// [`resolve`] and `rest`.
fn with_resolve(port: u16, rest: &[String]) -> Vec<String> {
    [resolve(port), rest.to_vec()].concat()
}

/// One mpop run (keeping the mail) into maildir `md`, or with `md` None
/// an authentication only run; `tls`: "on" (port 995 style) or "starttls"
/// or "off".
fn mpop(
    sb: &Sandbox,
    port: u16,
    u: &TestUser,
    auth: &str,
    tls: &str,
    trust: &Path,
    md: Option<&Path>,
) -> Output {
    let mut cmd = Command::new("mpop");
    cmd.args([
        "--host=localhost",
        &format!("--port={port}"),
        &format!("--user={}", u.name),
        &format!("--auth={auth}"),
        "--keep=on",
        "--received-header=off",
    ])
    .arg(format!("--passwordeval=echo {}", u.password))
    .arg(format!("--tls-trust-file={}", trust.display()))
    .arg(format!(
        "--uidls-file={}",
        sb.dir.join(format!("uidls-{auth}-{tls}")).display()
    ));
    match tls {
        "on" => cmd.args(["--tls=on", "--tls-starttls=off"]),
        "starttls" => cmd.args(["--tls=on", "--tls-starttls=on"]),
        _ => cmd.args(["--tls=off"]),
    };
    match md {
        Some(md) => cmd.arg(format!("--delivery=maildir,{}", md.display())),
        None => cmd.args(["--auth-only", "--delivery=mda,/bin/true"]),
    };
    cmd.env("HOME", &sb.dir).output_within(LIMIT)
}

/// A fetchmail run polling localhost (connecting to 127.0.0.1) with
/// `auth` (password, cram-md5; or apop) and the user options
/// `options` (ssl, sslproto, sslcertck ...), delivering into `out`.
fn fetchmail(
    sb: &Sandbox,
    port: u16,
    u: &TestUser,
    auth: &str,
    options: &str,
    out: &Path,
) -> Output {
    // APOP is a protocol to fetchmail, not an auth method.
    let (proto, auth) = match auth {
        "apop" => ("apop", "password"),
        a => ("pop3", a),
    };
    let rc = sb.dir.join(format!(
        "fetchmailrc-{}",
        out.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &rc,
        format!(
            "set no syslog\npoll localhost via 127.0.0.1 protocol {proto} port {port} auth {auth}\n  user \"{}\" password \"{}\" sslcommonname localhost {options} fetchall no rewrite\n  mda \"/bin/sh -c 'cat > {}/msg.$$'\"\n",
            u.name,
            u.password,
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    Command::new("fetchmail")
        .args(["--invisible", "--nodetach", "-f"])
        .arg(&rc)
        .arg("--pidfile")
        .arg(sb.dir.join(format!(
            "{}.pid",
            out.file_name().unwrap().to_string_lossy()
        )))
        .env("HOME", &sb.dir)
        .output_within(LIMIT)
}

/// Checks that the messages in `dir` (files as the client wrote them,
/// LF line ends) are exactly `msgs` on the wire, each once: a message is
/// the wire form of one of them with the UID its X-UIDL header says.
fn check_lf_download(dir: &Path, msgs: &[Message], log: &str) {
    let got = read_dir(dir);
    assert_eq!(got.len(), msgs.len(), "{log}");
    let mut seen = Vec::new();
    for (name, msg) in &got {
        let uid = uid_of(msg);
        let i = msgs
            .iter()
            .position(|m| lf(&wire(&m.content, &uid)) == *msg)
            .unwrap_or_else(|| {
                panic!(
                    "{name} (UID {uid}) is none of the messages on the wire: {:?}\n{log}",
                    String::from_utf8_lossy(msg)
                )
            });
        assert!(!seen.contains(&i), "message {i} twice: {log}");
        seen.push(i);
    }
}

/// The UIDL listing of `u`'s mailbox (one plain session on a server that
/// allows it), LF lines.
fn uidl_plain(port: u16, u: &TestUser) -> String {
    let mut p = Pop::connect(port);
    let r = p.login(u);
    assert!(r.starts_with("+OK"), "{r}");
    let (_, l) = p.multi("UIDL");
    p.cmd("QUIT");
    String::from_utf8(l).unwrap().replace("\r\n", "\n")
}

/// The lines of a CAPA reply (plain connection).
fn capa(p: &mut Pop) -> Vec<String> {
    let (s, body) = p.multi("CAPA");
    assert_eq!(s, "+OK Capability list follows");
    String::from_utf8(body)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A job for [`run_parallel`].
type Job<T> = Box<dyn FnOnce() -> T + Send>;

/// Runs every job in a thread of its own; their results in order (a
/// panic in one is the test's).
fn run_parallel<T: Send + 'static>(jobs: Vec<Job<T>>) -> Vec<T> {
    let handles: Vec<_> = jobs.into_iter().map(std::thread::spawn).collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        .collect()
}

// ---------------------------------------------------------------------
// The harness itself.

#[test]
fn the_test_pki_is_what_the_tests_need() {
    let p: &Pki = pki();
    let verify = |cert: &Path, extra: &[&str]| {
        let o = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&p.ca)
            .args(extra)
            .arg(cert)
            .output_within(LIMIT);
        (o.status.success(), text(&o))
    };
    for cert in [&p.cert, &p.ec_cert] {
        let (ok, out) = verify(cert, &["-verify_hostname", "localhost"]);
        assert!(ok, "{out}");
        let (ok, out) = verify(cert, &["-verify_ip", "127.0.0.1"]);
        assert!(ok, "{out}");
        let (ok, out) = verify(cert, &["-verify_ip", &SERVER_ADDR.to_string()]);
        assert!(ok, "{out}");
    }
    // The chain's leaf verifies only with its intermediate.
    let (ok, _) = verify(&p.chain, &[]);
    assert!(!ok, "the leaf alone does not verify");
    let (ok, out) = verify(&p.chain, &["-untrusted", &p.chain.display().to_string()]);
    assert!(ok, "{out}");
    let (ok, out) = verify(&p.expired, &[]);
    assert!(!ok && out.contains("certificate has expired"), "{out}");
    let (ok, out) = verify(&p.wrong_host, &["-verify_hostname", "localhost"]);
    assert!(!ok && out.contains("hostname mismatch"), "{out}");
    // Keys: root's, 0600, in the formats they are named for.
    let pubkey = |args: &[&str]| popper_e2e::run(Command::new("openssl").args(args)).stdout;
    let cert_key = pubkey(&[
        "x509",
        "-noout",
        "-pubkey",
        "-in",
        &p.cert.display().to_string(),
    ]);
    for k in [&p.key, &p.key_pkcs1] {
        assert_eq!(
            pubkey(&["pkey", "-pubout", "-in", &k.display().to_string()]),
            cert_key
        );
    }
    assert_ne!(
        pubkey(&["pkey", "-pubout", "-in", &p.other_key.display().to_string()]),
        cert_key
    );
    for (k, head) in [
        (&p.key, "-----BEGIN PRIVATE KEY-----"),
        (&p.key_pkcs1, "-----BEGIN RSA PRIVATE KEY-----"),
        (&p.ec_key_sec1, "-----BEGIN EC PRIVATE KEY-----"),
        (&p.ec_key_pkcs8, "-----BEGIN PRIVATE KEY-----"),
        (&p.other_key, "-----BEGIN PRIVATE KEY-----"),
    ] {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(k).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o600), "{}", k.display());
        assert!(
            std::fs::read_to_string(k).unwrap().starts_with(head),
            "{}",
            k.display()
        );
    }
}

#[test]
fn the_network_namespaces_carry_a_client_from_another_address() {
    // No TLS needed: a plain popper in the server namespace sees the
    // client namespace's address, and the machine cannot reach it.
    let bob = bob();
    let pair = NetPair::new();
    let mut sb = sandbox("tls-netns", "", false);
    sb.in_netns(&pair.server_path());
    let line = format!(
        "{SERVER_ADDR}:110 stream tcp nowait root {} {}\n",
        popper_e2e::bins::popper().display(),
        crate::popper_args(&sb, &[]).join(" ")
    );
    sb.inetd_conf(&line, 110);
    let a = pop_tls(
        &[py(&SERVER_ADDR.to_string(), 110, "plain", "user", &bob)],
        Some(&pair.client_path()),
    );
    assert!(a[0].ok(), "{a:?}");
    traced(
        &sb,
        &[
            "POP login by user \"pt_bob\"",
            &popper_e2e::netns::CLIENT_ADDR.to_string(),
        ],
    );
    // From the machine's own namespace there is no way there: whatever
    // its default route does with the address (a connect may even
    // succeed, to something else), no POP greeting comes back and popper
    // sees no session.
    let o = Command::new("/usr/bin/python3")
        .args([
            "-c",
            &format!(
                "import socket\ntry:\n    s = socket.create_connection(('{SERVER_ADDR}', 110), timeout=2)\n    print(repr(s.recv(100)))\nexcept OSError as e:\n    print('no:', e)\n"
            ),
        ])
        .output_within(LIMIT);
    let said = text(&o);
    assert!(
        !said.contains("+OK"),
        "reached popper from outside the pair: {said}"
    );
    assert_eq!(
        sb.trace().matches("Servicing request from").count(),
        1,
        "{}",
        sb.trace()
    );
}

// ---------------------------------------------------------------------
// STLS offered, refused, and the port-995 mode.

#[test]
fn stls_is_offered_only_with_tls_support_stls_and_a_loaded_key() {
    let bob = bob();
    let conf = good();
    let (_a, off) = serve("tls-capa-off", &[], &conf, false);
    let (_b, on) = serve("tls-capa-on", &["-l", "1"], &conf, false);
    let (_c, by_conf) = serve(
        "tls-capa-conf",
        &[],
        &format!("{conf}set tls-support = stls\n"),
        false,
    );
    // The flag wins over the setting.
    let (_d, flag_wins) = serve(
        "tls-capa-flag",
        &["-l", "1"],
        &format!("{conf}set tls-support = alternate-port\n"),
        false,
    );
    let (_e, flag_off) = serve(
        "tls-capa-flag-off",
        &["-l", "0"],
        &format!("{conf}set tls-support = stls\n"),
        false,
    );
    for port in [off, flag_off] {
        let mut p = Pop::connect(port);
        assert!(!capa(&mut p).contains(&"STLS".to_string()));
        assert_eq!(p.cmd("STLS"), "-ERR Unknown command: \"stls\".");
        assert!(p.login(&bob).starts_with("+OK"));
    }
    for port in [on, by_conf, flag_wins] {
        let mut p = Pop::connect(port);
        let c = capa(&mut p);
        assert!(c.contains(&"STLS".to_string()), "{c:?}");
        // STLS, then CAPA over TLS: no STLS any more; and a login.
        let a = pop_tls1(py("127.0.0.1", port, "stls", "user", &bob).t("capa"));
        assert_eq!(a.get("stls"), STLS_OK, "{a:?}");
        assert!(a.list("capa").contains(&"STLS".to_string()), "{a:?}");
        assert!(!a.list("capa_tls").iter().any(|c| c == "STLS"), "{a:?}");
        assert!(a.list("capa_tls").iter().any(|c| c == "USER"), "{a:?}");
        assert!(a.ok(), "{a:?}");
        assert!(a.get("tls.version").starts_with("TLSv1."), "{a:?}");
    }
}

#[test]
fn openssl_s_client_starttls_pop3() {
    let bob = bob();
    let (sb, port) = serve("tls-s-client-stls", &["-l", "1"], &good(), false);
    sb.write_spool(
        &bob,
        &mbox(&[Message::new("a@example.com", "over tls", "hello")]),
    );
    let (ok, out) = s_client(
        port,
        true,
        &[],
        &format!("USER {}\nPASS {}\nSTAT\nQUIT\n", bob.name, bob.password),
    );
    assert!(ok, "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("+OK pt_bob has 1 message"), "{out}");
    assert!(out.contains("signing off"), "{out}");
    // The handshake is logged, with version and suite.
    let l = traced(&sb, &["TLS handshake with 127.0.0.1: TLSv1_3 TLS13_"]);
    assert!(!l.contains("failed"), "{l}");
}

#[test]
fn openssl_s_client_on_the_tls_port() {
    let bob = bob();
    let (sb, port) = serve("tls-s-client-995", &["-l", "2"], &good(), true);
    let (ok, out) = s_client(
        port,
        false,
        &[],
        &format!("CAPA\nUSER {}\nPASS {}\nQUIT\n", bob.name, bob.password),
    );
    assert!(ok, "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    // The greeting comes over TLS, after the handshake; CAPA has no STLS.
    assert!(
        out.contains("+OK ") && out.contains(" starting.  <"),
        "{out}"
    );
    assert!(out.contains("+OK Capability list follows"), "{out}");
    assert!(!out.lines().any(|l| l.trim_end() == "STLS"), "{out}");
    assert!(out.contains("+OK pt_bob has 0 message"), "{out}");
    traced(&sb, &["TLS handshake with 127.0.0.1: TLSv1_3"]);
    // A plain client on the TLS port gets no greeting.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"QUIT\r\n").unwrap();
    let got = read_all(&mut s);
    assert!(
        !got.starts_with(b"+OK") && !got.starts_with(b"-ERR"),
        "{got:?}"
    );
}

#[test]
fn a_chain_file_sends_the_intermediate_and_key_formats_load() {
    let p = pki();
    let sb = Sandbox::new("tls-formats-links");
    // The certificate file may be a symlink (certbot's live/ layout).
    let link = sb.dir.join("fullchain.pem");
    std::os::unix::fs::symlink(&p.chain, &link).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("chain via a symlink", tls_conf(&link, &p.chain_key)),
        ("RSA PKCS#1", tls_conf(&p.cert, &p.key_pkcs1)),
        ("EC SEC1", tls_conf(&p.ec_cert, &p.ec_key_sec1)),
        ("EC PKCS#8", tls_conf(&p.ec_cert, &p.ec_key_pkcs8)),
    ];
    let jobs: Vec<Job<()>> = cases
        .into_iter()
        .map(|(what, conf)| {
            Box::new(move || {
                let (_sb, port) = serve("tls-formats", &["-l", "2"], &conf, false);
                let (ok, out) = s_client(port, false, &[], "QUIT\n");
                assert!(ok, "{what}: {out}");
                assert!(out.contains("Verify return code: 0 (ok)"), "{what}: {out}");
                assert!(out.contains("signing off"), "{what}: {out}");
            }) as Job<()>
        })
        .collect();
    run_parallel(jobs);
    drop(sb);
}

// ---------------------------------------------------------------------
// Real clients: logins and byte-exact downloads over TLS.

#[test]
fn curl_pop3s_retrieves_the_tricky_set_byte_exact() {
    let bob = bob();
    let (sb, port) = serve("tls-curl-995", &["-l", "2"], &good(), false);
    let msgs = tricky();
    sb.write_spool(&bob, &mbox(&msgs));
    let base = format!("pop3s://{}:{}@localhost:{port}/", bob.name, bob.password);
    // UIDL over TLS too (curl's custom request).
    let o = curl(&with_resolve(
        port,
        &[base.clone(), "-X".into(), "UIDL".into()],
    ));
    assert!(o.status.success(), "{}", text(&o));
    let uidl = String::from_utf8(o.stdout).unwrap().replace("\r\n", "\n");
    let want = expected(&msgs, &uidl);
    let mut args = resolve(port);
    for n in 1..=msgs.len() {
        args.push(format!("{base}{n}"));
        args.push("-o".into());
        args.push(sb.dir.join(format!("curl-{n}")).display().to_string());
    }
    let o = curl(&args);
    assert!(o.status.success(), "{}", text(&o));
    for n in 1..=msgs.len() {
        let got = std::fs::read(sb.dir.join(format!("curl-{n}"))).unwrap();
        let uid = uid_of(&got);
        assert_eq!(got, want[&uid], "message {n}");
    }
    // By IP address (the certificate's IP SAN) as well.
    let o = curl(&[format!(
        "pop3s://{}:{}@127.0.0.1:{port}/",
        bob.name, bob.password
    )]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        msgs.len()
    );
}

#[test]
fn curl_ssl_reqd_uses_stls_and_retrieves_byte_exact() {
    let bob = bob();
    let (sb, port) = serve("tls-curl-stls", &["-l", "1"], &good(), false);
    let msgs = tricky();
    sb.write_spool(&bob, &mbox(&msgs));
    let want = expected(&msgs, &uidl_plain(port, &bob));
    let base = format!("pop3://{}:{}@localhost:{port}/", bob.name, bob.password);
    let mut args = with_resolve(port, &["--ssl-reqd".into()]);
    for n in 1..=msgs.len() {
        args.push(format!("{base}{n}"));
        args.push("-o".into());
        args.push(sb.dir.join(format!("curl-{n}")).display().to_string());
    }
    let o = curl(&args);
    assert!(o.status.success(), "{}", text(&o));
    for n in 1..=msgs.len() {
        let got = std::fs::read(sb.dir.join(format!("curl-{n}"))).unwrap();
        assert_eq!(got, want[&uid_of(&got)], "message {n}");
    }
    assert!(
        sb.trace().contains("TLS handshake with 127.0.0.1: "),
        "{}",
        sb.trace()
    );
    // Without STLS on offer, --ssl-reqd fails (curl: 64, "Requested SSL
    // level failed") rather than sending the password in clear.
    let (_sb2, plain) = serve("tls-curl-nostls", &[], &good(), false);
    let o = curl(&with_resolve(
        plain,
        &[
            "--ssl-reqd".into(),
            format!("pop3://{}:{}@localhost:{plain}/", bob.name, bob.password),
        ],
    ));
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
}

#[test]
fn curl_logs_in_with_each_mechanism_over_tls() {
    let alice = alice();
    let apop = alice_apop();
    let (sb, port) = serve("tls-curl-auth", &["-l", "2"], &good(), true);
    sb.write_spool(
        &alice,
        &mbox(&[Message::new("a@example.com", "m", "hello")]),
    );
    for (opt, u) in [
        ("AUTH=PLAIN", &alice),
        ("AUTH=LOGIN", &alice),
        ("AUTH=CRAM-MD5", &apop),
        ("AUTH=+APOP", &apop),
    ] {
        let o = curl(&with_resolve(
            port,
            &[
                "--login-options".into(),
                opt.into(),
                format!("pop3s://{}:{}@localhost:{port}/", u.name, u.password),
            ],
        ));
        assert!(o.status.success(), "{opt}: {}", text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).lines().count(),
            1,
            "{opt}"
        );
    }
    assert_eq!(
        sb.trace().matches("POP login by user \"pt_alice\"").count(),
        4,
        "{}",
        sb.trace()
    );
}

#[test]
fn fetchmail_over_tls_downloads_byte_exact() {
    let bob = bob();
    let apop = alice_apop();
    let (sb, port) = serve("tls-fetchmail-995", &["-l", "2"], &good(), true);
    let (sb1, port1) = serve("tls-fetchmail-stls", &["-l", "1"], &good(), true);
    let msgs = client_mail();
    let ca = pki().ca.display().to_string();
    // --ssl on the TLS port, USER/PASS; STLS with --sslproto (required),
    // USER/PASS, APOP and CRAM-MD5.
    let runs: Vec<(&Sandbox, u16, &TestUser, &str, String, &str)> = vec![
        (
            &sb,
            port,
            &bob,
            "password",
            format!("ssl sslcertck sslcertfile {ca}"),
            "995-pass",
        ),
        (
            &sb1,
            port1,
            &bob,
            "password",
            format!("sslproto tls1.2+ sslcertck sslcertfile {ca}"),
            "stls-pass",
        ),
        (
            &sb1,
            port1,
            &apop,
            "apop",
            format!("sslproto tls1.2+ sslcertck sslcertfile {ca}"),
            "stls-apop",
        ),
        (
            &sb,
            port,
            &apop,
            "cram-md5",
            format!("ssl sslcertck sslcertfile {ca}"),
            "995-cram",
        ),
    ];
    for (sb, port, u, auth, opts, what) in runs {
        sb.write_spool(u, &mbox(&msgs));
        let out = sb.dir.join(format!("fetched-{what}"));
        std::fs::create_dir(&out).unwrap();
        let o = fetchmail(sb, port, u, auth, &opts, &out);
        let log = text(&o);
        assert!(o.status.success(), "fetchmail {what}: {log}");
        check_lf_download(&out, &msgs, &log);
        assert_eq!(sb.read_spool(u), b"", "{what}: fetched and deleted");
    }
    assert!(sb1.trace().contains("TLS handshake with 127.0.0.1: "));
}

#[test]
fn mpop_over_tls_downloads_byte_exact_and_logs_in_with_each_mechanism() {
    let bob = bob();
    let alice = alice();
    let apop = alice_apop();
    let (sb, port) = serve("tls-mpop-995", &["-l", "2"], &good(), true);
    let (sb1, port1) = serve("tls-mpop-stls", &["-l", "1"], &good(), true);
    let msgs = client_mail();
    let ca = pki().ca.clone();
    for (sb, port, tls) in [(&sb, port, "on"), (&sb1, port1, "starttls")] {
        sb.write_spool(&bob, &mbox(&msgs));
        let md = sb.dir.join(format!("Maildir-{tls}"));
        for d in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(md.join(d)).unwrap();
        }
        let o = mpop(sb, port, &bob, "user", tls, &ca, Some(&md));
        let log = text(&o);
        assert!(o.status.success(), "mpop tls={tls}: {log}");
        check_lf_download(&md.join("new"), &msgs, &log);
        // Every mechanism mpop has, authentication only.
        for (auth, u) in [
            ("plain", &alice),
            ("login", &alice),
            ("cram-md5", &apop),
            ("scram-sha-256", &apop),
            ("apop", &apop),
        ] {
            let o = mpop(sb, port, u, auth, tls, &ca, None);
            assert!(
                o.status.success(),
                "mpop --auth={auth} tls={tls}: {}",
                text(&o)
            );
        }
    }
}

#[test]
fn poplib_pop3_ssl_and_stls_with_each_mechanism_and_byte_exact_retr() {
    let bob = bob();
    let alice = alice();
    let apop = alice_apop();
    let (sb, port) = serve("tls-poplib-995", &["-l", "2"], &good(), true);
    let (sb1, port1) = serve("tls-poplib-stls", &["-l", "1"], &good(), true);
    // Every message, NUL bytes too: poplib gets them all.
    let msgs = tricky();
    for (sb, port, mode) in [(&sb, port, "ssl"), (&sb1, port1, "stls")] {
        sb.write_spool(&bob, &mbox(&msgs));
        let dir = sb.dir.join(format!("poplib-{mode}"));
        std::fs::create_dir(&dir).unwrap();
        let mut sessions =
            vec![py("localhost", port, mode, "user", &bob).s("retr", dir.display().to_string())];
        for (method, u) in [
            ("user", &alice),
            ("apop", &apop),
            ("plain", &alice),
            ("login", &alice),
            ("cram-md5", &apop),
            ("scram-sha-256", &apop),
        ] {
            sessions.push(py("localhost", port, mode, method, u));
        }
        let answers = pop_tls(&sessions, None);
        for (s, a) in sessions.iter().zip(&answers) {
            assert!(a.ok(), "{mode} {}: {a:?}", s.text());
            assert!(a.get("tls.version").starts_with("TLSv1."), "{a:?}");
            assert!(a.get("quit").contains("signing off"), "{a:?}");
        }
        // SCRAM: the server's signature was checked by the driver, sent
        // as a continuation, then +OK to the empty line.
        let scram = answers[6].list("login");
        assert_eq!(scram.len(), 3, "{scram:?}");
        assert!(scram[1].starts_with("+ "), "{scram:?}");
        let uidl = std::fs::read_to_string(dir.join("uidl.txt")).unwrap();
        let uids: Vec<String> = uidl
            .lines()
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect();
        assert_eq!(uids.len(), msgs.len());
        for (i, (m, uid)) in msgs.iter().zip(&uids).enumerate() {
            let got = std::fs::read(dir.join(format!("{}.msg", i + 1))).unwrap();
            assert_eq!(got, wire(&m.content, uid), "{mode}: message {}", i + 1);
        }
        let log = sb.trace();
        assert_eq!(log.matches("POP login by user").count(), 7, "{log}");
    }
}

// ---------------------------------------------------------------------
// The STLS injection, STLS misuse.

#[test]
fn bytes_after_stls_in_the_same_write_are_never_answered() {
    let (sb, port) = serve("tls-inject", &["-l", "1"], &good(), false);
    let a = pop_tls1(
        Json::default()
            .s("script", "inject")
            .s("host", "127.0.0.1")
            .n("port", port)
            .s("servername", "localhost")
            .s("cafile", pki().ca.display().to_string()),
    );
    assert_eq!(a.get("error"), "", "{a:?}");
    assert_eq!(a.get("stls"), format!("{STLS_OK}\r\n"), "{a:?}");
    // Nothing in clear after +OK: the USER was not answered before the
    // handshake ...
    assert_eq!(a.get("pending_before_handshake"), "", "{a:?}");
    // ... every byte after it is a TLS record ...
    assert_eq!(a.get("raw_records_ok"), "true", "{a:?}");
    assert_eq!(
        a.get("raw_first_byte"),
        "22",
        "a handshake record first: {a:?}"
    );
    // ... and over TLS the first reply is CAPA's, the one after it QUIT's.
    let after = a.list("after");
    assert_eq!(
        after.first().map(String::as_str),
        Some("+OK Capability list follows\r\n"),
        "{a:?}"
    );
    assert!(
        !after
            .iter()
            .any(|l| l.contains("Password required") || l.contains("pt_injected")),
        "{after:?}"
    );
    assert!(after.contains(&".\r\n".to_string()), "{after:?}");
    let quit = after
        .iter()
        .skip_while(|l| *l != ".\r\n")
        .nth(1)
        .cloned()
        .unwrap_or_default();
    assert!(
        quit.starts_with("+OK ") && quit.contains("signing off"),
        "{after:?}"
    );
    assert_eq!(
        after.iter().skip_while(|l| *l != ".\r\n").count(),
        2,
        "nothing else: {after:?}"
    );
    assert!(!sb.trace().contains("pt_injected"), "{}", sb.trace());
}

#[test]
fn stls_twice_and_stls_after_user() {
    let bob = bob();
    let (_sb, port) = serve("tls-stls-misuse", &["-l", "1"], &good(), false);
    let a = pop_tls1(py("localhost", port, "stls", "user", &bob).s("script", "stls-twice"));
    assert_eq!(a.get("stls"), STLS_OK, "{a:?}");
    assert_eq!(a.get("stls2"), "-ERR TLS is already active", "{a:?}");
    assert!(a.ok(), "the session goes on over TLS: {a:?}");
    // After USER: refused, and the USER stays pending.
    let mut p = Pop::connect(port);
    assert!(p.cmd(&format!("USER {}", bob.name)).starts_with("+OK"));
    assert_eq!(p.cmd("STLS"), "-ERR STLS is only allowed before USER");
    assert!(
        p.cmd(&format!("PASS {}", bob.password))
            .starts_with("+OK pt_bob has ")
    );
    // In TRANSACTION state STLS is no command at all.
    assert!(p.cmd("STLS").starts_with("-ERR"));
    p.cmd("QUIT");
}

// ---------------------------------------------------------------------
// Certificates the clients must refuse.

/// Every client against a server presenting `cert` (with the good key):
/// each must fail, saying `why` where it says anything checkable.
fn every_client_refuses(name: &str, cert: &Path, why: &[&str]) {
    let bob = bob();
    let p = pki();
    let (sb, port) = serve(name, &["-l", "2"], &tls_conf(cert, &p.key), false);
    let (sb1, port1) = serve(name, &["-l", "1"], &tls_conf(cert, &p.key), false);
    let mut failures = Vec::new();
    for (port, stls) in [(port, false), (port1, true)] {
        let (ok, out) = s_client(port, stls, &[], "QUIT\n");
        if ok || !why.iter().any(|w| out.contains(w)) || out.contains("signing off") {
            failures.push(format!("s_client stls={stls}: {out}"));
        }
        let a = pop_tls1(py(
            "localhost",
            port,
            if stls { "stls" } else { "ssl" },
            "user",
            &bob,
        ));
        if a.get("error_type") != "SSLCertVerificationError"
            || !why.iter().any(|w| a.get("error").contains(w))
        {
            failures.push(format!("poplib stls={stls}: {a:?}"));
        }
        let url = format!(
            "pop3{}://{}:{}@localhost:{port}/",
            if stls { "" } else { "s" },
            bob.name,
            bob.password
        );
        let mut args = with_resolve(port, &[url]);
        if stls {
            args.push("--ssl-reqd".into());
        }
        let o = curl(&args);
        // curl: 60, "SSL peer certificate or SSH remote key was not OK".
        if o.status.code() != Some(60) {
            failures.push(format!("curl stls={stls}: {:?} {}", o.status, text(&o)));
        }
        let s = if stls { &sb1 } else { &sb };
        let o = mpop(
            s,
            port,
            &bob,
            "user",
            if stls { "starttls" } else { "on" },
            &p.ca,
            None,
        );
        if o.status.success() {
            failures.push(format!("mpop stls={stls}: {}", text(&o)));
        }
        let out = s.dir.join(format!("fetchmail-{stls}"));
        std::fs::create_dir(&out).unwrap();
        let opts = format!(
            "{} sslcertck sslcertfile {}",
            if stls { "sslproto tls1.2+" } else { "ssl" },
            p.ca.display()
        );
        s.write_spool(&bob, &mbox(&[Message::new("a@example.com", "m", "x")]));
        let o = fetchmail(s, port, &bob, "password", &opts, &out);
        if o.status.success() || !read_dir(&out).is_empty() {
            failures.push(format!("fetchmail stls={stls}: {}", text(&o)));
        }
        // Nobody logged in.
        if s.trace().contains("POP login by user") {
            failures.push(format!("a login with stls={stls}: {}", s.trace()));
        }
    }
    // popper logged the failed handshakes (the clients sent alerts).
    traced(&sb, &["TLS handshake with 127.0.0.1 failed"]);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn clients_refuse_an_expired_certificate() {
    every_client_refuses(
        "tls-expired",
        &pki().expired,
        &["certificate has expired", "expired"],
    );
}

#[test]
fn clients_refuse_a_certificate_for_another_host() {
    every_client_refuses(
        "tls-wrong-host",
        &pki().wrong_host,
        &[
            "hostname mismatch",
            "Hostname mismatch",
            "doesn't match",
            "not match",
        ],
    );
}

// ---------------------------------------------------------------------
// Key and certificate problems on popper's side.

/// The bad configurations: what, the configuration, the file the log
/// must name.
fn bad_keys(sb: &Sandbox) -> Vec<(String, String, Vec<PathBuf>)> {
    let p = pki();
    let d = &sb.dir;
    let copy = |name: &str, mode: u32| {
        let k = d.join(name);
        std::fs::copy(&p.key, &k).unwrap();
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(mode)).unwrap();
        k
    };
    let loose = copy("loose.key", 0o644);
    let group = copy("group.key", 0o640);
    let bobs = copy("bobs.key", 0o600);
    let b = bob();
    std::os::unix::fs::chown(&bobs, Some(b.uid), Some(b.gid)).unwrap();
    let link = d.join("link.key");
    std::os::unix::fs::symlink(&p.key, &link).unwrap();
    let garbage = d.join("garbage.key");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    let huge = d.join("huge.key");
    let mut text = std::fs::read_to_string(&p.key).unwrap();
    text.push_str(&"# padding\n".repeat(120_000));
    std::fs::write(&huge, text).unwrap();
    std::fs::set_permissions(&huge, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir_key = d.join("a-directory.key");
    std::fs::create_dir(&dir_key).unwrap();
    let no_key = d.join("missing.key");
    let no_cert = d.join("missing.pem");
    let garbage_cert = d.join("garbage.pem");
    std::fs::write(&garbage_cert, "not a certificate\n").unwrap();
    let c = |cert: &Path, key: &Path| tls_conf(cert, key);
    vec![
        (
            "missing key".into(),
            c(&p.cert, &no_key),
            vec![no_key.clone()],
        ),
        (
            "missing certificate".into(),
            c(&no_cert, &p.key),
            vec![no_cert.clone()],
        ),
        (
            "key mode 0644".into(),
            c(&p.cert, &loose),
            vec![loose.clone()],
        ),
        (
            "key mode 0640".into(),
            c(&p.cert, &group),
            vec![group.clone()],
        ),
        (
            "key owned by pt_bob".into(),
            c(&p.cert, &bobs),
            vec![bobs.clone()],
        ),
        (
            "key is a symlink".into(),
            c(&p.cert, &link),
            vec![link.clone()],
        ),
        (
            "key is a directory".into(),
            c(&p.cert, &dir_key),
            vec![dir_key.clone()],
        ),
        (
            "key is not a key".into(),
            c(&p.cert, &garbage),
            vec![garbage.clone()],
        ),
        (
            "key over 1 MiB".into(),
            c(&p.cert, &huge),
            vec![huge.clone()],
        ),
        (
            "certificate is not PEM".into(),
            c(&garbage_cert, &p.key),
            vec![garbage_cert.clone()],
        ),
        (
            "key of another certificate".into(),
            c(&p.cert, &p.other_key),
            vec![p.other_key.clone(), p.cert.clone()],
        ),
        (
            "no key configured".into(),
            format!("set tls-server-cert-file = {}\n", p.cert.display()),
            vec![],
        ),
    ]
}

#[test]
fn key_problems_with_stls_refuse_stls_log_why_and_leave_plain_logins() {
    let bob = bob();
    let files = Sandbox::new("tls-badkeys");
    let jobs: Vec<Job<Option<String>>> = bad_keys(&files)
        .into_iter()
        .map(|(what, conf, named)| {
            let bob = bob.clone();
            Box::new(move || {
                let (sb, port) = serve("tls-badkey-stls", &["-l", "1"], &conf, false);
                let mut p = Pop::connect(port);
                let c = capa(&mut p);
                let stls = p.cmd("STLS");
                let login = p.login(&bob);
                p.cmd("QUIT");
                let mut bad = Vec::new();
                if c.contains(&"STLS".to_string()) {
                    bad.push(format!("CAPA offers STLS: {c:?}"));
                }
                if stls != NO_TLS {
                    bad.push(format!("STLS: {stls}"));
                }
                if !login.starts_with("+OK") {
                    bad.push(format!("login: {login}"));
                }
                let log = sb.trace();
                let why = log.lines().any(|l| {
                    l.to_lowercase().contains("tls")
                        && (named.is_empty()
                            || named.iter().any(|n| l.contains(&n.display().to_string())))
                });
                if !why {
                    bad.push(format!("no log line saying why (naming {named:?}): {log}"));
                }
                (!bad.is_empty()).then(|| format!("{what}: {}", bad.join("; ")))
            }) as Job<Option<String>>
        })
        .collect();
    let bad: Vec<String> = run_parallel(jobs).into_iter().flatten().collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn key_problems_on_the_tls_port_close_the_connection_with_status_2() {
    let files = Sandbox::new("tls-badkeys-995");
    let jobs: Vec<Job<Option<String>>> = bad_keys(&files)
        .into_iter()
        .map(|(what, conf, named)| {
            Box::new(move || {
                let sb = sandbox("tls-badkey-995", &conf, false);
                let one = OneShot::new(&sb, &["-l", "2"]);
                let mut s = one.connect();
                let got = read_all(&mut s);
                let status = one.status();
                let mut bad = Vec::new();
                if !got.is_empty() {
                    bad.push(format!("sent {:?}", String::from_utf8_lossy(&got)));
                }
                if status.code() != Some(2) {
                    bad.push(format!("exit {status}"));
                }
                let log = sb.trace();
                let why = log.lines().any(|l| {
                    l.to_lowercase().contains("tls")
                        && (named.is_empty()
                            || named.iter().any(|n| l.contains(&n.display().to_string())))
                });
                if !why {
                    bad.push(format!("no log line saying why: {log}"));
                }
                (!bad.is_empty()).then(|| format!("{what}: {}", bad.join("; ")))
            }) as Job<Option<String>>
        })
        .collect();
    let bad: Vec<String> = run_parallel(jobs).into_iter().flatten().collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

// ---------------------------------------------------------------------
// Hostile handshakes.

/// A TLS record header announcing a 512-byte handshake message, and a
/// few bytes of it: a ClientHello that never finishes.
const PARTIAL_HELLO: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";

#[test]
fn garbage_instead_of_a_client_hello_closes_with_status_3() {
    let sb = sandbox("tls-garbage", &good(), false);
    let mut failures = Vec::new();
    // Port 995 style: plain POP3 where the ClientHello should be.
    let one = OneShot::new(&sb, &["-l", "2"]);
    let mut s = one.connect();
    s.write_all(b"USER pt_bob\r\nPASS x\r\nQUIT\r\n").unwrap();
    let got = read_all(&mut s);
    // Nothing, or a TLS alert record: never POP text.
    if !(got.is_empty() || got[0] == 0x15) {
        failures.push(format!("-l 2 sent {:?}", String::from_utf8_lossy(&got)));
    }
    if one.status().code() != Some(3) {
        failures.push("-l 2: exit status not 3".to_string());
    }
    // STLS, then garbage.
    let one = OneShot::new(&sb, &["-l", "1"]);
    let mut s = one.connect();
    let mut greeting = [0u8; 1];
    let mut line = Vec::new();
    while !line.ends_with(b"\n") {
        s.read_exact(&mut greeting).unwrap();
        line.push(greeting[0]);
    }
    s.write_all(b"STLS\r\n").unwrap();
    let mut ok = Vec::new();
    while !ok.ends_with(b"\n") {
        s.read_exact(&mut greeting).unwrap();
        ok.push(greeting[0]);
    }
    if ok != format!("{STLS_OK}\r\n").as_bytes() {
        failures.push(format!("STLS: {:?}", String::from_utf8_lossy(&ok)));
    }
    s.write_all(&[0xff; 600]).unwrap();
    let got = read_all(&mut s);
    if !(got.is_empty() || got[0] == 0x15) {
        failures.push(format!("-l 1 sent {:?}", String::from_utf8_lossy(&got)));
    }
    let st = one.status();
    if st.code() != Some(3) {
        failures.push(format!("-l 1: exit {st}"));
    }
    let log = sb.trace();
    if log.matches("TLS handshake with 127.0.0.1 failed").count() != 2 {
        failures.push(format!("two failed handshakes logged: {log}"));
    }
    if log.contains("signing off") {
        failures.push(format!("no sign-off after a failed handshake: {log}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_stalled_handshake_ends_at_the_idle_timeout() {
    // -T 5: the handshake's bound is the idle timeout when it is shorter
    // than 60 s.
    let jobs: Vec<Job<(Duration, Vec<u8>, String)>> =
        [("-l", "2", false), ("-l", "2", true), ("-l", "1", true)]
            .into_iter()
            .map(|(f, v, partial)| {
                Box::new(move || {
                    let (sb, port) = serve("tls-stall", &[f, v, "-T", "5"], &good(), false);
                    if v == "1" {
                        let mut p = Pop::connect(port);
                        assert_eq!(p.cmd("STLS"), STLS_OK);
                        p.send_raw(PARTIAL_HELLO);
                        let t = Instant::now();
                        let rest = p.rest();
                        return (t.elapsed(), rest, sb.trace());
                    }
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let t = Instant::now();
                    if partial {
                        s.write_all(PARTIAL_HELLO).unwrap();
                    }
                    let got = read_all(&mut s);
                    (t.elapsed(), got, sb.trace())
                }) as Job<(Duration, Vec<u8>, String)>
            })
            .collect();
    for (i, (d, got, log)) in run_parallel(jobs).into_iter().enumerate() {
        assert!(
            d >= Duration::from_secs(3) && d < Duration::from_secs(20),
            "case {i}: closed after {d:?}"
        );
        assert!(
            got.is_empty() || got[0] == 0x15,
            "case {i}: no POP text: {:?}",
            String::from_utf8_lossy(&got)
        );
        assert!(
            log.contains("TLS handshake with 127.0.0.1 failed"),
            "case {i}: {log}"
        );
    }
}

// ---------------------------------------------------------------------
// SASL AUTH on the wire.

fn b64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                o.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

fn unb64(s: &str) -> Vec<u8> {
    const T: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut o = Vec::new();
    for c in s.trim_end_matches('=').chars() {
        bits = bits << 6 | T.find(c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            o.push((bits >> n) as u8);
        }
    }
    o
}

fn hmac_md5(key: &[u8], msg: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Md5::digest([ipad.as_slice(), msg].concat());
    Md5::digest([opad.as_slice(), inner.as_slice()].concat())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn sasl_auth_on_the_wire_and_its_errors() {
    let alice = alice();
    let bob = bob();
    let (sb, port) = serve("tls-sasl", &[], "", true);
    let mut p = Pop::connect(port);
    let c = capa(&mut p);
    assert!(
        c.contains(&"SASL SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN".to_string()),
        "{c:?}"
    );
    // AUTH alone lists the mechanisms.
    let (s, body) = p.multi("AUTH");
    assert!(s.starts_with("+OK"), "{s}");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "SCRAM-SHA-256\r\nCRAM-MD5\r\nPLAIN\r\nLOGIN\r\n"
    );
    assert_eq!(
        p.cmd("AUTH KERBEROS_V9"),
        "-ERR [AUTH] Unrecognized authentication mechanism"
    );
    // Bad base64: as an initial response and as a continuation.
    assert_eq!(
        p.cmd("AUTH PLAIN !!!notbase64"),
        "-ERR [AUTH] Invalid base64 data"
    );
    assert_eq!(p.cmd("AUTH LOGIN"), "+ VXNlcm5hbWU6");
    assert_eq!(p.cmd("%%%"), "-ERR [AUTH] Invalid base64 data");
    // `*` cancels, at every step of every mechanism.
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"] {
        let r = p.cmd(&format!("AUTH {mech}"));
        assert!(r.starts_with("+ "), "{mech}: {r}");
        assert_eq!(p.cmd("*"), "-ERR [AUTH] Authentication cancelled", "{mech}");
    }
    assert_eq!(p.cmd("AUTH LOGIN"), "+ VXNlcm5hbWU6");
    assert_eq!(p.cmd(&b64(bob.name.as_bytes())), "+ UGFzc3dvcmQ6");
    assert_eq!(p.cmd("*"), "-ERR [AUTH] Authentication cancelled");
    // An oversized response: the too-long-line error, the exchange
    // abandoned, the next line a command again.
    assert_eq!(p.cmd("AUTH PLAIN"), "+ ");
    let r = p.cmd(&"QUFB".repeat(25_000));
    assert!(r.starts_with("-ERR"), "{r}");
    assert!(r.contains("too long"), "{r}");
    assert_eq!(capa(&mut p).len(), c.len(), "CAPA answered as a command");
    // `=` is an empty response: a failure, not a crash.
    assert_eq!(p.cmd("AUTH PLAIN"), "+ ");
    assert!(p.cmd("=").starts_with("-ERR [AUTH]"));
    // Wrong password, wrong digest: -ERR [AUTH].
    let wrong = b64(format!("\0{}\0wrong", bob.name).as_bytes());
    assert!(
        p.cmd(&format!("AUTH PLAIN {wrong}"))
            .starts_with("-ERR [AUTH]")
    );
    let chal = p.cmd("AUTH CRAM-MD5");
    let challenge = unb64(chal.strip_prefix("+ ").unwrap());
    let text = String::from_utf8(challenge.clone()).unwrap();
    assert!(
        text.starts_with('<') && text.ends_with('>') && text.contains('@'),
        "{text}"
    );
    let bad = b64(format!("{} {}", alice.name, hmac_md5(b"not it", &challenge)).as_bytes());
    assert!(p.cmd(&bad).starts_with("-ERR [AUTH]"));
    // A good CRAM-MD5 (digest made here, independently of the drivers).
    let chal = p.cmd("AUTH CRAM-MD5");
    let challenge = unb64(chal.strip_prefix("+ ").unwrap());
    let good =
        b64(format!("{} {}", alice.name, hmac_md5(SECRET.as_bytes(), &challenge)).as_bytes());
    let r = p.cmd(&good);
    assert!(r.starts_with("+OK pt_alice has "), "{r}");
    p.cmd("QUIT");
    // AUTH PLAIN with an initial response, and one with the
    // continuation: the same +OK as PASS.
    let mut p = Pop::connect(port);
    let r = p.cmd(&format!(
        "AUTH PLAIN {}",
        b64(format!("\0{}\0{}", bob.name, bob.password).as_bytes())
    ));
    assert!(r.starts_with("+OK pt_bob has 0 message"), "{r}");
    p.cmd("QUIT");
    let mut p = Pop::connect(port);
    assert_eq!(p.cmd("AUTH PLAIN"), "+ ");
    let r = p.cmd(&b64(format!("\0{}\0{}", bob.name, bob.password).as_bytes()));
    assert!(r.starts_with("+OK pt_bob has 0 message"), "{r}");
    p.cmd("QUIT");
    assert_eq!(
        sb.trace().matches("POP login by user").count(),
        3,
        "{}",
        sb.trace()
    );
}

// ---------------------------------------------------------------------
// TLS versions and cipher list.

#[test]
fn tls_versions_and_the_cipher_list() {
    // Versions before 1.2: a configuration error.
    for v in ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"] {
        let sb = sandbox(
            "tls-version-bad",
            &format!("{}set tls-version = {v}\n", good()),
            false,
        );
        let out = sb.pipe(
            &popper_e2e::bins::popper(),
            &sb.popper_args(&["-l", "1"]),
            b"QUIT\r\n",
        );
        let all = format!("{}{}", text(&out), sb.trace());
        assert_eq!(out.status.code(), Some(1), "{v}: {all}");
        assert!(
            all.contains("tls-version") && all.contains("1.2") && all.contains("1.3"),
            "{v}: {all}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).starts_with("+OK"),
            "{v}: {all}"
        );
    }
    let serve_v = |v: &str| {
        serve(
            "tls-version",
            &["-l", "2"],
            &format!(
                "{}set tls-version = {v}\nset tls-cipher-list = HIGH:!aNULL\n",
                good()
            ),
            false,
        )
    };
    let (sb13, p13) = serve_v("TLSv1.3");
    let (ok, out) = s_client(p13, false, &["-tls1_2"], "QUIT\n");
    assert!(!ok && !out.contains("signing off"), "TLSv1.3 only: {out}");
    let (ok, out) = s_client(p13, false, &["-tls1_3"], "QUIT\n");
    assert!(ok && out.contains("signing off"), "{out}");
    for v in ["TLSv1.2", "default", "SSLv23", "TLSv1"] {
        let (sb, port) = serve_v(v);
        let (ok, out) = s_client(port, false, &["-tls1_2"], "QUIT\n");
        assert!(
            ok && out.contains("Protocol  : TLSv1.2") && out.contains("signing off"),
            "{v}: {out}"
        );
        let (ok, out) = s_client(port, false, &[], "QUIT\n");
        assert!(ok && out.contains("TLSv1.3"), "{v}: {out}");
        traced(&sb, &["TLS handshake with 127.0.0.1: TLSv1_2 TLS_ECDHE_"]);
    }
    traced(
        &sb13,
        &["tls-cipher-list is not applicable: rustls chooses its own cipher suites"],
    );
}

// ---------------------------------------------------------------------
// The clear-text policy matrix.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Peer {
    Loopback,
    Elsewhere,
}

/// Whether clear-text passwords may be used on a connection (before any
/// per-user rule), and the refusal text if not.
fn clear_text(policy: u8, tls: bool, from: Peer) -> Result<(), &'static str> {
    match policy {
        0 | 2 => Ok(()),
        1 => Err(NEVER),
        3 if tls || from == Peer::Loopback => Ok(()),
        3 => Err(NEVER),
        4 if tls => Ok(()),
        4 => Err(TLS_ONLY),
        _ => unreachable!(),
    }
}

#[test]
fn the_clear_text_policy_matrix() {
    let bob = bob();
    let alice = alice();
    let apop = alice_apop();
    let pair = NetPair::new();
    let mut servers = Vec::new();
    for policy in 0..=4u8 {
        let mut sb = sandbox(&format!("tls-policy-{policy}"), &good(), true);
        sb.in_netns(&pair.server_path());
        let port = 1100 + u16::from(policy);
        let args = crate::popper_args(&sb, &["-l", "1", "-p", &policy.to_string()]).join(" ");
        let popper = popper_e2e::bins::popper();
        let conf = format!(
            "127.0.0.1:{port} stream tcp nowait root {} {args}\n{SERVER_ADDR}:{port} stream tcp nowait root {} {args}\n",
            popper.display(),
            popper.display()
        );
        sb.inetd_conf(&conf, port);
        servers.push(sb);
    }
    // The methods: USER/PASS, AUTH PLAIN and AUTH LOGIN by a user
    // without an APOP record, APOP by one with a record, USER/PASS and AUTH PLAIN by her.
    let methods: [(&str, &str, &TestUser); 6] = [
        ("USER/PASS", "user", &bob),
        ("AUTH PLAIN", "plain", &bob),
        ("AUTH LOGIN", "login", &bob),
        ("APOP", "apop", &apop),
        ("USER/PASS (APOP user)", "user", &alice),
        ("AUTH PLAIN (APOP user)", "plain", &alice),
    ];
    let mut jobs: Vec<Job<Vec<String>>> = Vec::new();
    for policy in 0..=4u8 {
        // One user may have one session at a time: a policy's two
        // places run one after the other, the policies in parallel.
        let mut inner: Vec<Job<Vec<String>>> = Vec::new();
        for from in [Peer::Loopback, Peer::Elsewhere] {
            let port = 1100 + u16::from(policy);
            let (host, ns) = match from {
                Peer::Loopback => ("127.0.0.1".to_string(), pair.server_path()),
                Peer::Elsewhere => (SERVER_ADDR.to_string(), pair.client_path()),
            };
            let mut sessions = Vec::new();
            let mut cases = Vec::new();
            for tls in [false, true] {
                for (what, method, u) in &methods {
                    sessions.push(
                        py(&host, port, if tls { "stls" } else { "plain" }, method, u).t("capa"),
                    );
                    cases.push((tls, *what, *method));
                }
            }
            inner.push(Box::new(move || {
                let answers = pop_tls(&sessions, Some(&ns));
                let mut bad = Vec::new();
                for ((tls, what, method), a) in cases.iter().zip(&answers) {
                    let cell = format!(
                        "-p {policy} {} {from:?} {what}",
                        if *tls { "TLS" } else { "plain" }
                    );
                    let allowed = clear_text(policy, *tls, from);
                    let apop_user = what.contains("APOP user");
                    let want: Result<(), &str> = if *method == "apop" {
                        Ok(())
                    } else if allowed.is_err() {
                        allowed
                    } else if apop_user && policy == 0 && !tls {
                        Err(MUST_APOP)
                    } else {
                        Ok(())
                    };
                    match want {
                        Ok(()) if !a.ok() => bad.push(format!("{cell}: refused: {a:?}")),
                        // AUTH PLAIN's per-user refusal: any -ERR [AUTH].
                        Err(MUST_APOP)
                            if *method == "plain" && !a.last().starts_with("-ERR [AUTH]") =>
                        {
                            bad.push(format!("{cell}: want -ERR [AUTH]: {a:?}"))
                        }
                        Err(MUST_APOP) if *method == "plain" => {}
                        Err(text) if a.last() != text => {
                            bad.push(format!("{cell}: want {text:?}: {a:?}"))
                        }
                        _ => {}
                    }
                    if *tls && a.get("stls") != STLS_OK {
                        bad.push(format!("{cell}: STLS: {a:?}"));
                    }
                    // CAPA: USER and the clear-text SASL mechanisms only
                    // when they can work now.
                    let caps = a.list(if *tls { "capa_tls" } else { "capa" });
                    let user = caps.iter().any(|c| c == "USER");
                    let sasl = caps
                        .iter()
                        .find(|c| c.starts_with("SASL"))
                        .cloned()
                        .unwrap_or_default();
                    let want_sasl = if allowed.is_ok() {
                        "SASL SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN"
                    } else {
                        "SASL SCRAM-SHA-256 CRAM-MD5"
                    };
                    if user != allowed.is_ok() || sasl != want_sasl {
                        bad.push(format!("{cell}: CAPA {caps:?}"));
                    }
                }
                bad
            }));
        }
        jobs.push(Box::new(move || {
            inner.into_iter().flat_map(|j| j()).collect()
        }));
    }
    let bad: Vec<String> = run_parallel(jobs).into_iter().flatten().collect();
    // Every session came from where the cell says.
    for (policy, sb) in servers.iter().enumerate() {
        let log = sb.trace();
        for addr in ["127.0.0.1", &popper_e2e::netns::CLIENT_ADDR.to_string()] {
            assert!(
                log.contains(addr),
                "-p {policy}: no session from {addr}: {log}"
            );
        }
    }
    assert!(
        bad.is_empty(),
        "{} cells wrong:\n{}",
        bad.len(),
        bad.join("\n")
    );
    drop(servers);
    drop(pair);
}

#[test]
fn a_connection_level_refusal_is_the_same_for_every_name() {
    // never and tls refuse at USER before looking the name up: a user
    // with an APOP record, one without, root and nobody all get the
    // same answer; AUTH PLAIN and LOGIN are refused alike, and CAPA
    // offers neither USER nor them.
    for (policy, want) in [("1", NEVER), ("4", TLS_ONLY)] {
        let (_sb, port) = serve(
            "tls-policy-names",
            &["-l", "1", "-p", policy],
            &good(),
            true,
        );
        let mut p = Pop::connect(port);
        for name in ["pt_alice", "pt_bob", "root", "pt_nosuch_user_x"] {
            assert_eq!(p.cmd(&format!("USER {name}")), want, "-p {policy} {name}");
        }
        let r = p.cmd(&format!("AUTH PLAIN {}", b64(b"\0pt_bob\0whatever")));
        assert_eq!(r, want, "-p {policy} AUTH PLAIN");
        let r = p.cmd("AUTH LOGIN");
        assert_eq!(r, want, "-p {policy} AUTH LOGIN");
        let c = capa(&mut p);
        assert!(!c.contains(&"USER".to_string()), "{c:?}");
        assert!(
            c.contains(&"SASL SCRAM-SHA-256 CRAM-MD5".to_string()),
            "{c:?}"
        );
        let (s, body) = p.multi("AUTH");
        assert!(s.starts_with("+OK"), "{s}");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "SCRAM-SHA-256\r\nCRAM-MD5\r\n"
        );
        p.cmd("QUIT");
    }
}
