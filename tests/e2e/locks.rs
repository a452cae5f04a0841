//! Locking as delivery agents and attackers see it: the session lock file
//! `.USER.pop` is refused when it is a symlink, a hard link, someone
//! else's, or readable by others (qpopper's texts); the spool locks wait
//! for a holder and give up with `[IN-USE]`; stale and dead dotlocks are
//! broken.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use popper_e2e::mail::{Message, mbox};
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{TestUser, user};
use popper_e2e::wait::{Lines, wait_until};

use crate::{login_lines, piped};

fn setup(name: &str) -> (Sandbox, TestUser, Vec<u8>) {
    let alice = user("pt_alice");
    let sb = Sandbox::new(name);
    let spool = mbox(&[
        Message::new("a@example.com", "one", "1"),
        Message::new("b@example.com", "two", "2"),
    ]);
    sb.write_spool(&alice, &spool);
    (sb, alice, spool)
}

fn session(sb: &Sandbox, u: &TestUser) -> String {
    piped(
        sb,
        &[],
        format!("{}STAT\r\nDELE 1\r\nQUIT\r\n", login_lines(u)).as_bytes(),
    )
    .0
}

#[test]
fn a_symlinked_session_lock_is_refused_and_its_target_untouched() {
    let (sb, alice, spool) = setup("lock-symlink");
    let target = sb.dir.join("victim");
    std::fs::write(&target, b"precious").unwrap();
    std::os::unix::fs::symlink(&target, sb.mail.join(".pt_alice.pop")).unwrap();
    let out = session(&sb, &alice);
    assert!(
        out.contains("-ERR [SYS/PERM] Your temporary drop file /var/mail/.pt_alice.pop is not type 'regular file'\r\n"),
        "{out}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert_eq!(sb.read_spool(&alice), spool);
}

#[test]
fn a_hard_linked_session_lock_is_refused() {
    let (sb, alice, spool) = setup("lock-hardlink");
    let other = sb.mail.join("other");
    std::fs::write(&other, b"").unwrap();
    std::os::unix::fs::chown(&other, Some(alice.uid), None).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::hard_link(&other, sb.mail.join(".pt_alice.pop")).unwrap();
    let out = session(&sb, &alice);
    assert!(
        out.contains("-ERR [SYS/PERM] Your temporary file appears to have more than one link.\r\n"),
        "{out}"
    );
    assert_eq!(sb.read_spool(&alice), spool);
}

#[test]
fn a_session_lock_owned_by_someone_else_is_refused() {
    let (sb, alice, spool) = setup("lock-owner");
    let lock = sb.mail.join(".pt_alice.pop");
    std::fs::write(&lock, b"").unwrap();
    // COMPAT qpopper 2.53: one the user cannot open, and one the user can.
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = session(&sb, &alice);
    assert!(
        out.contains("-ERR [SYS/TEMP] System error, can't open temporary file, do you own it?\r\n"),
        "{out}"
    );
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = session(&sb, &alice);
    assert!(
        out.contains("-ERR [SYS/PERM] Temporary drop file not owned by pt_alice.\r\n"),
        "{out}"
    );
    assert_eq!(sb.read_spool(&alice), spool);
    assert_eq!(std::fs::metadata(&lock).unwrap().len(), 0);
}

#[test]
fn a_session_lock_others_can_read_is_refused() {
    let (sb, alice, spool) = setup("lock-mode");
    let lock = sb.mail.join(".pt_alice.pop");
    std::fs::write(&lock, b"").unwrap();
    std::os::unix::fs::chown(&lock, Some(alice.uid), None).unwrap();
    for mode in [0o640, 0o604, 0o660] {
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = session(&sb, &alice);
        assert!(
            out.contains("-ERR [SYS/PERM] Your temporary file /var/mail/.pt_alice.pop is accessable by others.  This must be fixed\r\n"),
            "{mode:o}: {out}"
        );
    }
    assert_eq!(sb.read_spool(&alice), spool);
}

#[test]
fn a_symlinked_spool_is_refused() {
    let alice = user("pt_alice");
    let sb = Sandbox::new("spool-symlink");
    std::os::unix::fs::symlink("/etc/passwd", sb.spool(&alice)).unwrap();
    let out = session(&sb, &alice);
    assert!(
        out.contains(
            "-ERR [SYS/PERM] Mail spool /var/mail/pt_alice refused: it is a symbolic link.\r\n"
        ),
        "{out}"
    );
}

#[test]
fn stale_and_dead_dotlocks_are_broken() {
    let (sb, alice, _) = setup("dotlock-stale");
    let lock = sb.mail.join("pt_alice.lock");
    for (content, age) in [
        ("12345\n", 3600),
        (&*format!("popper:{}:999999\n", host()), 0),
    ] {
        std::fs::write(&lock, content).unwrap();
        let t = std::time::SystemTime::now() - Duration::from_secs(age);
        std::fs::File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(t)
            .unwrap();
        let out = session(&sb, &alice);
        assert!(
            out.contains("+OK Message 1 has been deleted."),
            "{content}: {out}"
        );
        assert!(!out.contains("-ERR"), "{content}: {out}");
        assert!(!lock.exists());
    }
    let log = sb.trace();
    assert!(
        log.contains("removed dotlock /var/mail/pt_alice.lock as stale (36"),
        "{log}"
    );
    assert!(
        log.contains(
            "removed dotlock /var/mail/pt_alice.lock left by popper process 999999, which died"
        ),
        "{log}"
    );
}

fn host() -> String {
    popper_e2e::run(&mut Command::new("hostname"))
        .stdout
        .iter()
        .map(|b| *b as char)
        .collect::<String>()
        .trim()
        .to_string()
}

#[test]
fn a_held_dotlock_makes_popper_wait_then_give_up() {
    let (sb, alice, spool) = setup("dotlock-held");
    sb.set("set lock-timeout = 1");
    let lock = sb.mail.join("pt_alice.lock");
    std::fs::write(&lock, "4242\n").unwrap();
    let t = Instant::now();
    let out = session(&sb, &alice);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert!(out.contains("-ERR [IN-USE] Timed out waiting for the mail spool lock (dotlock); try again later.\r\n"), "{out}");
    assert!(lock.exists(), "someone else's fresh dotlock is left alone");
    assert_eq!(sb.read_spool(&alice), spool);
    // Released while popper waits: it goes on. popper is waiting once its
    // own dotlock candidate (`.pt_alice.lock.RANDOM`, lock.rs) is there.
    sb.set("set lock-timeout = 10");
    let remover = {
        let (lock, mail) = (lock.clone(), sb.mail.clone());
        std::thread::spawn(move || {
            wait_until(
                "popper to wait for the held dotlock",
                Duration::from_secs(10),
                || {
                    std::fs::read_dir(&mail).unwrap().any(|e| {
                        e.unwrap()
                            .file_name()
                            .to_string_lossy()
                            .starts_with(".pt_alice.lock.")
                    })
                },
            );
            std::fs::remove_file(lock).unwrap();
        })
    };
    let out = session(&sb, &alice);
    remover.join().unwrap();
    assert!(out.contains("+OK Message 1 has been deleted."), "{out}");
    assert!(!out.contains("-ERR"), "{out}");
}

/// Holds a lock of the given kind on the spool (inside the namespace)
/// until the returned child is killed.
fn hold(sb: &Sandbox, kind: &str) -> std::process::Child {
    let py = match kind {
        "fcntl" => {
            "import fcntl,sys,time\nf=open('/var/mail/pt_alice','r+')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(60)\n"
        }
        _ => {
            "import fcntl,sys,time\nf=open('/var/mail/pt_alice','r+')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(60)\n"
        }
    };
    let mut c = sb
        .command(std::path::Path::new("/usr/bin/python3"), &["-c", py])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Lines::new("the lock holder", c.stdout.take().unwrap());
    assert_eq!(out.line(Duration::from_secs(30)).as_deref(), Some("held"));
    c
}

#[test]
fn fcntl_and_flock_holders_are_waited_for() {
    for (kind, what) in [
        ("fcntl", "mail spool lock (fcntl)"),
        ("flock", "mail spool lock (flock)"),
    ] {
        let (sb, alice, spool) = setup(&format!("held-{kind}"));
        sb.set("set lock-timeout = 1");
        let mut holder = hold(&sb, kind);
        let out = session(&sb, &alice);
        assert!(
            out.contains(&format!(
                "-ERR [IN-USE] Timed out waiting for the {what}; try again later.\r\n"
            )),
            "{kind}: {out}"
        );
        holder.kill().unwrap();
        holder.wait().unwrap();
        assert_eq!(sb.read_spool(&alice), spool);
        assert!(
            !sb.mail.join("pt_alice.lock").exists(),
            "{kind}: our dotlock was removed after giving up"
        );
        let out = session(&sb, &alice);
        assert!(
            out.contains("+OK Message 1 has been deleted."),
            "{kind}: {out}"
        );
    }
}

#[test]
fn sessions_racing_for_the_lock_get_in_use_never_a_permanent_error() {
    // Regression (concurrent-delivery test): a session that opened
    // .USER.pop just as the previous session unlinked it saw a link count
    // of 0 and answered -ERR [SYS/PERM] "more than one link".
    let alice = user("pt_alice");
    let mut sb = Sandbox::new("lock-race");
    let port = popper_e2e::sandbox::free_port();
    // nowait.N: inetd's default limit (256 a minute) would stop the service.
    let args = crate::popper_args(&sb, &[]).join(" ");
    sb.inetd_conf(
        &format!(
            "127.0.0.1:{port} stream tcp nowait.100000 root {} {args}\n",
            popper_e2e::bins::popper().display()
        ),
        port,
    );
    let script = popper_e2e::bins::root().join("tests/clients/poplib_sessions.py");
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = Command::new("/usr/bin/python3")
                .arg(&script)
                .args([port.to_string(), alice.name.clone(), alice.password.clone()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all("go\n".repeat(200).as_bytes())
                .unwrap();
            c
        })
        .collect();
    let mut ok = 0;
    let mut in_use = 0;
    for w in workers {
        let out = popper_e2e::wait::wait_output(w, Duration::from_secs(120));
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            match l.split(' ').next() {
                Some("OK") => ok += 1,
                Some("IN-USE") => in_use += 1,
                _ => panic!("a session failed: {l}"),
            }
        }
    }
    assert_eq!(ok + in_use, 800);
    assert!(ok > 0, "{ok} sessions got through, {in_use} were in use");
}
