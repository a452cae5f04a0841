//! `popauth -import`: a qpopper 2.53 site's ndbm pop.auth becomes popper's
//! gdbm one in one step. The sources are written by the real libraries a
//! 2.53 was linked with: gdbm's ndbm compatibility layer, through
//! `dbm_open`/`dbm_store` from a small C program compiled here
//! (`tests/clients/ndbm_write.c`), and Berkeley DB's ndbm emulation,
//! through Debian's Python `dbm.ndbm` (which is libdb's). After the import
//! real APOP logins (raw, Python's poplib, mpop) use the imported secrets.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use md5::{Digest, Md5};

use popper_e2e::mail::{Message, mbox};
use popper_e2e::pop::Pop;
use popper_e2e::users::{TestUser, user};
use popper_e2e::wait::{LIMIT, OutputWithin, wait_output};

use crate::popauth::{Env, Ran, read_with_python};

/// Compiles the gdbm-ndbm writer into the sandbox; returns its path.
fn ndbm_writer(e: &Env) -> PathBuf {
    let src = popper_e2e::bins::root().join("tests/clients/ndbm_write.c");
    let bin = e.sb.dir.join("ndbm_write");
    popper_e2e::run(
        Command::new("gcc")
            .args(["-Wall", "-Werror", "-o"])
            .arg(&bin)
            .arg(&src)
            .args(["-lgdbm_compat", "-lgdbm"]),
    );
    bin
}

fn lines(records: &[(String, String)]) -> String {
    records.iter().map(|(n, s)| format!("{n}:{s}\n")).collect()
}

fn feed(cmd: &mut Command, input: String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).unwrap();
    });
    let out = wait_output(child, LIMIT);
    feeder.join().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `BASE.dir` + `BASE.pag` through libgdbm_compat's dbm_store.
fn write_gdbm_ndbm(e: &Env, base: &Path, records: &[(String, String)]) {
    let w = ndbm_writer(e);
    feed(Command::new(&w).arg(base), lines(records));
}

/// `BASE.db` through libdb's ndbm emulation (Python's dbm.ndbm), records
/// in qpopper's format.
fn write_bdb(base: &Path, records: &[(String, String)]) {
    let py = "import dbm.ndbm,sys\nassert dbm.ndbm.library=='Berkeley DB', dbm.ndbm.library\nd=dbm.ndbm.open(sys.argv[1],'c',0o600)\nfor l in sys.stdin.read().splitlines():\n    n,s=l.split(':',1)\n    d[n.encode()+b'\\0']=bytes(b^0xff for b in s.encode())+b'\\0'\nd.close()\n";
    feed(
        Command::new("/usr/bin/python3").args(["-c", py]).arg(base),
        lines(records),
    );
}

fn rec(n: &str, s: &str) -> (String, String) {
    (n.to_string(), s.to_string())
}

fn digest(greeting: &str, secret: &str) -> String {
    let c = &greeting[greeting.find('<').unwrap()..];
    Md5::digest([c.as_bytes(), secret.as_bytes()].concat())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn apop_ok(port: u16, name: &str, secret: &str) {
    let mut p = Pop::connect(port);
    let d = digest(&p.greeting, secret);
    let r = p.cmd(&format!("APOP {name} {d}"));
    assert!(r.starts_with("+OK "), "APOP {name}: {r}");
    p.cmd("QUIT");
    let mut p = Pop::connect(port);
    let d = digest(&p.greeting, "not-the-secret");
    assert!(p.cmd(&format!("APOP {name} {d}")).starts_with("-ERR"));
}

/// The import's report line: `read N ... wrote N ...`.
fn imported(r: &Ran, n: usize, from: &str, flavour: &str) {
    assert_eq!((r.code, r.err.as_str()), (0, ""), "{r:?}");
    let n = if n == 1 {
        "1 record".to_string()
    } else {
        format!("{n} records")
    };
    let want =
        format!("popauth: read {n} from /etc/{from} ({flavour}); wrote {n} to /etc/pop.auth\n");
    assert_eq!(r.out, want, "{r:?}");
}

fn expected(records: &[(String, String)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<(Vec<u8>, Vec<u8>)> = records
        .iter()
        .map(|(n, s)| {
            let mut k = n.as_bytes().to_vec();
            k.push(0);
            let mut v: Vec<u8> = s.bytes().map(|b| b ^ 0xff).collect();
            v.push(0);
            (k, v)
        })
        .collect();
    v.sort();
    v
}

/// Nothing but the given names in the private /etc's upper layer (no
/// temporary file left behind).
fn upper_is(e: &Env, names: &[&str]) {
    let mut got: Vec<String> = std::fs::read_dir(e.sb.etc(""))
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
}

fn spool(e: &Env, u: &TestUser) {
    e.sb.write_spool(
        u,
        &mbox(&[Message::new("a@example.com", "imported", "hello")]),
    );
}

#[test]
fn a_gdbm_ndbm_database_is_imported_and_its_secrets_log_in() {
    let alice = user("pt_alice");
    let bob = user("pt_bob");
    let mut e = Env::new("import-gdbm");
    let records = vec![rec(&alice.name, "tanstaaf-9"), rec(&bob.name, "Bob's-2nd")];
    write_gdbm_ndbm(&e, &e.sb.etc("pop.auth"), &records);
    // What gdbm 1.23's ndbm layer writes: a 16-byte "GDBM" .dir stub and a
    // real GDBM file as .pag (the detection rule rests on this).
    let dir = std::fs::read(e.sb.etc("pop.auth.dir")).unwrap();
    assert!(dir.starts_with(b"GDBM") && dir.len() == 16, "{dir:?}");
    // # popauth -import /etc/pop.auth
    let r = e.root(&["-import", "/etc/pop.auth"], "");
    imported(&r, 2, "pop.auth.pag", "gdbm ndbm");
    e.assert_private();
    assert_eq!(e.records(), expected(&records));
    upper_is(&e, &["pop.auth", "pop.auth.dir", "pop.auth.pag"]);
    // Our popauth reads what it wrote.
    let r = e.root(&["-list"], "");
    assert_eq!(r.out, format!("{}\n{}\n", alice.name, bob.name), "{r:?}");
    // Older gdbm made .dir a hard link to .pag: read too (to another DEST).
    std::fs::remove_file(e.sb.etc("pop.auth.dir")).unwrap();
    std::fs::hard_link(e.sb.etc("pop.auth.pag"), e.sb.etc("pop.auth.dir")).unwrap();
    let r = e.root(&["-import", "/etc/pop.auth", "/etc/pop.auth.hl"], "");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        read_with_python(&e.sb.etc("pop.auth.hl")),
        expected(&records)
    );
    // Logins against the imported secrets: raw APOP and Python's poplib.
    spool(&e, &bob);
    let port =
        e.sb.inetd(&popper_e2e::bins::popper(), &crate::popper_args(&e.sb, &[]));
    apop_ok(port, &alice.name, "tanstaaf-9");
    let apop_bob = TestUser {
        password: "Bob's-2nd".into(),
        ..bob.clone()
    };
    let files = crate::mailbox::poplib(&e.sb, port, &apop_bob, &["--apop"]);
    assert_eq!(files.keys().filter(|k| k.ends_with(".msg")).count(), 1);
}

#[test]
fn a_berkeley_db_database_is_imported_and_mpop_logs_in() {
    let alice = user("pt_alice");
    let bob = user("pt_bob");
    let mut e = Env::new("import-bdb");
    let records = vec![rec(&alice.name, "Alice-BDB-1"), rec(&bob.name, "bob-bdb-2")];
    write_bdb(&e.sb.etc("pop.auth"), &records);
    assert!(e.sb.etc("pop.auth.db").exists());
    let r = e.root(&["-import", "/etc/pop.auth"], "");
    imported(&r, 2, "pop.auth.db", "Berkeley DB ndbm");
    e.assert_private();
    assert_eq!(e.records(), expected(&records));
    upper_is(&e, &["pop.auth", "pop.auth.db"]);
    spool(&e, &alice);
    let port =
        e.sb.inetd(&popper_e2e::bins::popper(), &crate::popper_args(&e.sb, &[]));
    apop_ok(port, &bob.name, "bob-bdb-2");
    let md = e.sb.dir.join("Maildir");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    let o = Command::new("mpop")
        .args([
            "--host=127.0.0.1",
            &format!("--port={port}"),
            &format!("--user={}", alice.name),
            "--passwordeval=echo Alice-BDB-1",
            "--auth=apop",
            "--tls=off",
            "--keep=on",
            "--only-new=off",
            "--received-header=off",
        ])
        .arg(format!("--delivery=maildir,{}", md.display()))
        .arg(format!("--uidls-file={}", e.sb.dir.join("uidls").display()))
        .env("HOME", &e.sb.dir)
        .output_within(LIMIT);
    let log = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "mpop: {log}");
    assert_eq!(
        std::fs::read_dir(md.join("new")).unwrap().count(),
        1,
        "{log}"
    );
}

#[test]
fn ten_thousand_records_of_either_kind() {
    let alice = user("pt_alice");
    let mut records: Vec<(String, String)> = (0..9_999)
        .map(|i| rec(&format!("user{i:05}"), &format!("secret-{i}")))
        .collect();
    records.push(rec(&alice.name, "the-10000th"));
    for (kind, from, flavour) in [
        ("gdbm", "pop.auth.pag", "gdbm ndbm"),
        ("bdb", "pop.auth.db", "Berkeley DB ndbm"),
    ] {
        let mut e = Env::new(&format!("import-10k-{kind}"));
        let t = Instant::now();
        if kind == "gdbm" {
            write_gdbm_ndbm(&e, &e.sb.etc("pop.auth"), &records);
        } else {
            write_bdb(&e.sb.etc("pop.auth"), &records);
        }
        let written = t.elapsed();
        let t = Instant::now();
        let r = e.root(&["-import", "/etc/pop.auth"], "");
        let took = t.elapsed();
        eprintln!(
            "import of 10 000 records ({flavour}): {} ms (writing the source: {} ms)",
            took.as_millis(),
            written.as_millis()
        );
        imported(&r, 10_000, from, flavour);
        e.assert_private();
        assert_eq!(e.records(), expected(&records));
        assert!(took.as_secs() < 10, "{took:?}");
        let port =
            e.sb.inetd(&popper_e2e::bins::popper(), &crate::popper_args(&e.sb, &[]));
        apop_ok(port, &alice.name, "the-10000th");
    }
}

#[test]
fn refusals_leave_nothing_written() {
    let alice = user("pt_alice");
    let e = Env::new("import-refuse");
    let records = vec![rec(&alice.name, "tanstaaf-9")];
    write_gdbm_ndbm(&e, &e.sb.etc("pop.auth"), &records);
    let fails = |r: &Ran, text: &str| {
        assert_eq!((r.code, r.out.as_str()), (1, ""), "{r:?}");
        assert!(
            r.err.starts_with("popauth: ") && r.err.contains(text),
            "want {text:?}: {r:?}"
        );
        assert!(!e.db().exists(), "nothing written: {r:?}");
        upper_is(&e, &["pop.auth.dir", "pop.auth.pag"]);
    };
    // Root only, even for the user pop.
    let r = e.as_user(&alice, &["-import", "/etc/pop.auth"], "");
    fails(&r, "Only superuser can import a database");
    let (pu, pg) = popper_e2e::users::pop();
    let r = e.as_uid(pu, pg, &["-import", "/etc/pop.auth"], "");
    fails(&r, "Only superuser can import a database");
    // Nothing there.
    let r = e.root(&["-import", "/etc/nothing"], "");
    fails(&r, "neither /etc/nothing.pag nor /etc/nothing.db exists");
    // A symlinked .pag.
    let pag = e.sb.etc("pop.auth.pag");
    let real = e.sb.dir.join("real.pag");
    std::fs::rename(&pag, &real).unwrap();
    std::os::unix::fs::symlink(&real, &pag).unwrap();
    let r = e.root(&["-import", "/etc/pop.auth"], "");
    fails(&r, "/etc/pop.auth.pag is a symbolic link: refused");
    std::fs::remove_file(&pag).unwrap();
    std::fs::rename(&real, &pag).unwrap();
    // Group- or world-writable.
    std::fs::set_permissions(&pag, std::fs::Permissions::from_mode(0o666)).unwrap();
    let r = e.root(&["-import", "/etc/pop.auth"], "");
    fails(&r, "group- or world-writable (mode 0666): refused");
    std::fs::set_permissions(&pag, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Damaged: the .pag's header overwritten; then truncated to nothing.
    let good = std::fs::read(&pag).unwrap();
    let mut bad = good.clone();
    bad[..64].fill(0x5a);
    std::fs::write(&pag, &bad).unwrap();
    let r = e.root(&["-import", "/etc/pop.auth"], "");
    fails(&r, "/etc/pop.auth.pag: cannot read it as a gdbm database (");
    std::fs::write(&pag, b"").unwrap();
    let r = e.root(&["-import", "/etc/pop.auth"], "");
    fails(&r, "/etc/pop.auth.pag is empty (0 bytes)");
    std::fs::write(&pag, &good).unwrap();
    // A database with no records.
    std::fs::remove_file(&pag).unwrap();
    std::fs::remove_file(e.sb.etc("pop.auth.dir")).unwrap();
    write_gdbm_ndbm(&e, &e.sb.etc("pop.auth"), &[]);
    let r = e.root(&["-import", "/etc/pop.auth"], "");
    fails(&r, "/etc/pop.auth.pag holds no records: nothing to import");
    write_gdbm_ndbm(&e, &e.sb.etc("pop.auth"), &records);
    // A damaged Berkeley DB (and both kinds at once).
    let db = e.sb.etc("pop.auth.db");
    std::fs::write(&db, vec![0x5au8; 8192]).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = e.root(&["-import", "/etc/pop.auth"], "");
    assert!(r.err.contains("both /etc/pop.auth.db"), "{r:?}");
    std::fs::rename(&db, e.sb.etc("junk.db")).unwrap();
    let r = e.root(&["-import", "/etc/junk"], "");
    assert!(
        r.err
            .contains("/etc/junk.db: cannot read it as a Berkeley DB hash database ("),
        "{r:?}"
    );
    std::fs::remove_file(e.sb.etc("junk.db")).unwrap();
    // An existing database is kept without -f, replaced with it.
    assert_eq!(e.root(&["-init"], "").code, 0);
    assert_eq!(e.root(&["-user", &alice.name, "Other-Secret1"], "").code, 0);
    let before = std::fs::read(e.db()).unwrap();
    let ino = std::fs::metadata(e.db()).unwrap().ino();
    let r = e.root(&["-import", "/etc/pop.auth"], "");
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.err,
        "popauth: /etc/pop.auth exists: -import -f replaces it; nothing written\n"
    );
    assert_eq!(std::fs::read(e.db()).unwrap(), before);
    let r = e.root(&["-import", "/etc/pop.auth", "-f"], "");
    imported(&r, 1, "pop.auth.pag", "gdbm ndbm");
    assert_ne!(
        std::fs::metadata(e.db()).unwrap().ino(),
        ino,
        "renamed over"
    );
    assert_eq!(e.records(), expected(&records));
    e.assert_private();
    upper_is(&e, &["pop.auth", "pop.auth.dir", "pop.auth.pag"]);
    // A destination that is one of the source's files is refused, even
    // with -f: the source is left whole.
    let pag = std::fs::read(e.sb.etc("pop.auth.pag")).unwrap();
    let r = e.root(&["-import", "/etc/pop.auth", "/etc/pop.auth.pag", "-f"], "");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("is the database being imported"), "{r:?}");
    assert_eq!(std::fs::read(e.sb.etc("pop.auth.pag")).unwrap(), pag);
}
