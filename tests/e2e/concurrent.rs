//! Concurrent delivery: Debian's procmail (the real delivery agent, with
//! its own dotlock and fcntl locking) delivers numbered messages in bursts
//! while download-and-delete sessions (Python's poplib) run against the
//! same user. Every number must be retrieved exactly once: no mail lost,
//! none duplicated, and no lock or journal left behind.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{TestUser, user};
use popper_e2e::wait::{LIMIT, Lines, wait_until};

use crate::popper_args;

/// Messages delivered, numbered 1..=MESSAGES.
const MESSAGES: u32 = 2000;
/// Download-and-delete sessions that must complete while mail arrives.
const SESSIONS: usize = 200;
/// Clients running sessions at the same time (so some get `[IN-USE]`).
const WORKERS: usize = 2;

/// SplitMix64: a small deterministic generator, so a failing run can be
/// repeated exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Message `n`: an `X-Seq: n` header and a `seq n` body line, with some
/// filler (dot lines, a long line) so sizes and dot-stuffing vary.
fn message(n: u32, rng: &mut Rng) -> String {
    let mut body = format!("seq {n}\n");
    for i in 0..rng.range(0, 12) {
        match rng.range(0, 3) {
            0 => body.push_str(".\n"),
            1 => body.push_str(&format!("..dotted line {i}\n")),
            2 => body.push_str(&"x".repeat(rng.range(1, 300) as usize)),
            _ => body.push_str(&format!("filler line {i} of message {n}\n")),
        }
        if !body.ends_with('\n') {
            body.push('\n');
        }
    }
    format!(
        "From: <sender@example.com>\nTo: <pt_conc@example.com>\nSubject: concurrent {n}\nMessage-Id: <seq-{n}@example.com>\nX-Seq: {n}\n\n{body}"
    )
}

/// Writes the messages and a shell script that delivers them with
/// procmail in bursts of 1–50 with pauses of 0–80 ms between bursts. The
/// script prints each number once procmail delivered it, and `FAIL n
/// status` (and stops) if procmail fails. Returns the script's path.
fn delivery_script(sb: &Sandbox, u: &TestUser, rng: &mut Rng) -> std::path::PathBuf {
    let dir = sb.dir.join("msgs");
    std::fs::create_dir(&dir).unwrap();
    let mut script = format!(
        "#!/bin/sh\nd='{}'\ndeliver() {{\n  /usr/bin/procmail -d {} < \"$d/$1\" || {{ echo \"FAIL $1 $?\"; exit 1; }}\n  echo \"$1\"\n}}\n",
        dir.display(),
        u.name
    );
    let mut n = 1;
    while n <= MESSAGES {
        let burst = rng.range(1, 50) as u32;
        for _ in 0..burst.min(MESSAGES - n + 1) {
            std::fs::write(dir.join(n.to_string()), message(n, rng)).unwrap();
            script.push_str(&format!("deliver {n}\n"));
            n += 1;
        }
        script.push_str(&format!("sleep 0.{:03}\n", rng.range(0, 80)));
    }
    let path = sb.dir.join("deliver.sh");
    std::fs::write(&path, script).unwrap();
    path
}

/// A sandbox serving popper under inetd, as `served` does, with three
/// changes that only save time (none touches what is locked or how):
///
/// * inetd may start far more than its default of 256 servers a minute
///   (past which it stops the service for ten minutes): this test makes
///   several hundred connections;
/// * popper's view of `/var/mail` is mounted `noatime`. procmail, after
///   writing the first byte of a message, sleeps a second when the spool's
///   atime equals its mtime (its "NFS atime hack", so that biff sees new
///   mail): here every session reads the spool, and those seconds would
///   add up to minutes;
/// * the user's home is a sandbox directory whose `.procmailrc` sets
///   `LOCKSLEEP=1`: procmail keeps its own dotlock and fcntl locking, but
///   retries a dotlock it finds taken after one second instead of eight.
///
/// The spool exists from the start (empty), as `useradd` makes it on
/// Debian: with a `.procmailrc`, the delivery that has to create the spool
/// runs without the group mail and cannot make its dotlock.
fn serve(u: &TestUser) -> (Sandbox, u16) {
    let mut sb = Sandbox::new("concurrent");
    let home = sb.dir.join("home");
    std::fs::create_dir(&home).unwrap();
    let rc = home.join(".procmailrc");
    std::fs::write(&rc, "LOCKSLEEP=1\n").unwrap();
    for p in [&home, &rc] {
        std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).unwrap();
    }
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o644)).unwrap();
    sb.bind(&home, &u.home);
    sb.write_spool(u, b"");
    let wrapper = sb.dir.join("popper-noatime");
    popper_e2e::write_executable(
        &wrapper,
        format!(
            "#!/bin/sh\nmount -o remount,bind,noatime /var/mail || exit 1\nexec {} \"$@\"\n",
            popper_e2e::bins::popper().display()
        ),
        0o755,
    );
    let port = popper_e2e::sandbox::free_port();
    let line = format!(
        "127.0.0.1:{port} stream tcp nowait.100000 root {} {}\n",
        wrapper.display(),
        popper_args(&sb, &[]).join(" ")
    );
    sb.inetd_conf(&line, port);
    (sb, port)
}

/// What one download-and-delete session reported.
#[derive(Debug)]
enum Outcome {
    /// QUIT answered +OK: STAT's count and the numbers retrieved.
    Done(usize, Vec<String>),
    /// PASS answered -ERR [IN-USE].
    InUse,
    /// Anything else (the whole line).
    Failed(String),
}

/// A completed session: STAT's count and the numbers RETR returned.
type Session = (usize, Vec<String>);

/// A `tests/clients/poplib_sessions.py` process: one session per request.
struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines,
}

impl Client {
    fn new(port: u16, u: &TestUser) -> Client {
        let script = popper_e2e::bins::root().join("tests/clients/poplib_sessions.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&u.name)
            .arg(&u.password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = Lines::new("poplib_sessions.py", child.stdout.take().unwrap());
        Client {
            child,
            stdin,
            stdout,
        }
    }

    fn session(&mut self) -> Outcome {
        let asked = writeln!(self.stdin, "go").and_then(|()| self.stdin.flush());
        let line = match asked.map(|()| self.stdout.line(LIMIT)) {
            Ok(Some(l)) => l,
            _ => {
                return Outcome::Failed(format!("the client exited: {:?}", self.child.try_wait()));
            }
        };
        let line = line.trim_end();
        let mut words = line.split(' ');
        match words.next() {
            Some("OK") => {
                let count = words.next().unwrap().parse().unwrap();
                Outcome::Done(count, words.map(str::to_string).collect())
            }
            Some("IN-USE") => Outcome::InUse,
            _ => Outcome::Failed(line.to_string()),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The numbers of the `X-Seq:` headers in a spool, in order.
fn spool_seqs(spool: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(spool)
        .lines()
        .filter_map(|l| l.strip_prefix("X-Seq: "))
        .map(|n| n.parse().unwrap())
        .collect()
}

/// Everything the sessions retrieved: number -> the sessions (by order of
/// completion) that retrieved it.
#[derive(Default)]
struct Tally {
    seen: BTreeMap<u32, Vec<usize>>,
    bad: Vec<String>,
    sessions: usize,
}

impl Tally {
    fn add(&mut self, nums: &[String]) {
        let s = self.sessions;
        self.sessions += 1;
        for n in nums {
            match n.parse::<u32>() {
                Ok(n) => self.seen.entry(n).or_default().push(s),
                Err(_) => self.bad.push(format!("session {s}: {n}")),
            }
        }
    }
}

#[test]
fn procmail_delivering_while_sessions_download_and_delete_loses_and_duplicates_nothing() {
    let start = Instant::now();
    let u = user("pt_conc");
    let (sb, port) = serve(&u);
    let mut rng = Rng(0x5eed_c0c0_2000_0200);
    let script = delivery_script(&sb, &u, &mut rng);

    // Delivery: one namespace, one shell, procmail once per message.
    let delivered = Arc::new(AtomicU32::new(0));
    let delivery_done = Arc::new(AtomicBool::new(false));
    let mut child = sb
        .command(Path::new("/bin/sh"), &[&script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("procmail must be installed");
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let delivery = {
        let delivered = delivered.clone();
        let done = delivery_done.clone();
        std::thread::spawn(move || {
            let mut fails = Vec::new();
            let mut order_ok = true;
            let mut last = Instant::now();
            let mut slowest = Duration::ZERO;
            let mut slow = 0usize;
            for line in BufReader::new(child.stdout.take().unwrap())
                .lines()
                .map_while(Result::ok)
            {
                match line.parse::<u32>() {
                    Ok(n) => {
                        order_ok &= n == delivered.load(Ordering::SeqCst) + 1;
                        delivered.store(n, Ordering::SeqCst);
                        let took = last.elapsed();
                        slowest = slowest.max(took);
                        if took >= Duration::from_millis(900) {
                            slow += 1;
                        }
                        last = Instant::now();
                    }
                    Err(_) => fails.push(line),
                }
            }
            let status = child.wait().unwrap();
            done.store(true, Ordering::SeqCst);
            (status, fails, order_ok, Instant::now(), slowest, slow)
        })
    };

    // Sessions: WORKERS clients take session slots in turn. Slot i waits
    // until 10·i messages are delivered (or delivery is over), so the
    // sessions are spread over the whole delivery; a session refused with
    // [IN-USE] is retried and does not count.
    let claimed = Arc::new(AtomicUsize::new(0));
    let results: Arc<Mutex<Vec<Session>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let in_use = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (claimed, results, failures, in_use) = (
                claimed.clone(),
                results.clone(),
                failures.clone(),
                in_use.clone(),
            );
            let (delivered, delivery_done) = (delivered.clone(), delivery_done.clone());
            let mut client = Client::new(port, &u);
            std::thread::spawn(move || {
                loop {
                    let slot = claimed.fetch_add(1, Ordering::SeqCst);
                    if slot >= SESSIONS {
                        return;
                    }
                    let want = slot as u32 * (MESSAGES / SESSIONS as u32);
                    wait_until(
                        &format!("{want} messages delivered (or the delivery over)"),
                        Duration::from_secs(600),
                        || {
                            delivered.load(Ordering::SeqCst) >= want
                                || delivery_done.load(Ordering::SeqCst)
                        },
                    );
                    let refused_since = Instant::now();
                    loop {
                        match client.session() {
                            Outcome::Done(count, nums) => {
                                results.lock().unwrap().push((count, nums));
                                break;
                            }
                            Outcome::InUse => {
                                in_use.fetch_add(1, Ordering::SeqCst);
                                assert!(
                                    refused_since.elapsed() < Duration::from_secs(120),
                                    "session slot {slot}: [IN-USE] for two minutes"
                                );
                                // A client's pause before it tries again,
                                // not a wait for something this thread can
                                // see: the session holding the lock is the
                                // other worker's.
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            Outcome::Failed(line) => {
                                let mut f = failures.lock().unwrap();
                                f.push(line);
                                if f.len() >= 10 {
                                    return;
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let sessions_end = Instant::now();
    let (status, fails, order_ok, delivery_end, slowest, slow) = delivery.join().unwrap();
    let procmail_stderr = stderr_reader.join().unwrap();
    let failures = failures.lock().unwrap().clone();
    let results = std::mem::take(&mut *results.lock().unwrap());

    let mut tally = Tally::default();
    for (_, nums) in &results {
        tally.add(nums);
    }
    let during = tally.sessions;
    let with_mail = results.iter().filter(|(c, _)| *c > 0).count();
    let most = results.iter().map(|(c, _)| *c).max().unwrap_or(0);

    // Before the drain the spool holds exactly what no session retrieved:
    // the tail delivered after the last session's login, in order.
    let before_drain = spool_seqs(&sb.read_spool(&u));
    let tail_ok = before_drain.iter().all(|n| !tally.seen.contains_key(n))
        && before_drain
            .iter()
            .copied()
            .eq((MESSAGES + 1 - before_drain.len() as u32)..=MESSAGES);

    // Drain: sessions until one finds the mailbox empty.
    let mut drain = Client::new(port, &u);
    let mut drain_failures = Vec::new();
    let mut drained = 0;
    for _ in 0..20 {
        match drain.session() {
            Outcome::Done(0, _) => break,
            Outcome::Done(_, nums) => {
                tally.add(&nums);
                drained += 1;
            }
            Outcome::InUse => drain_failures.push("IN-USE with no other session".to_string()),
            Outcome::Failed(line) => drain_failures.push(line),
        }
    }
    drop(drain);

    let elapsed = start.elapsed();
    let missing: Vec<u32> = (1..=MESSAGES)
        .filter(|n| !tally.seen.contains_key(n))
        .collect();
    let duplicated: Vec<(u32, Vec<usize>)> = tally
        .seen
        .iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(n, s)| (*n, s.clone()))
        .collect();
    let strays: Vec<u32> = tally
        .seen
        .keys()
        .copied()
        .filter(|n| !(1..=MESSAGES).contains(n))
        .collect();
    let mut left: Vec<String> = std::fs::read_dir(&sb.mail)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| *n != u.name)
        .collect();
    left.sort();
    let spool_after = sb.read_spool(&u);
    eprintln!(
        "concurrent: {MESSAGES} messages delivered in {:.1} s ({} procmail runs waited 0.9 s or more, the longest {:.2} s); {during} sessions ({with_mail} with mail, at most {most} messages) done in {:.1} s, {} refused with [IN-USE] and retried; {} messages left for the drain ({drained} sessions); {:.1} s in all",
        (delivery_end - start).as_secs_f64(),
        slow,
        slowest.as_secs_f64(),
        (sessions_end - start).as_secs_f64(),
        in_use.load(Ordering::SeqCst),
        before_drain.len(),
        elapsed.as_secs_f64(),
    );

    assert!(
        status.success() && fails.is_empty(),
        "procmail failed ({status}): {fails:?}\n{procmail_stderr}"
    );
    assert!(
        procmail_stderr.trim().is_empty(),
        "procmail complained: {procmail_stderr}"
    );
    assert!(order_ok, "deliveries reported out of order");
    assert_eq!(
        delivered.load(Ordering::SeqCst),
        MESSAGES,
        "every message delivered"
    );
    assert!(
        failures.is_empty() && drain_failures.is_empty(),
        "sessions failed (other than [IN-USE]):\n{}\n{}\nlost: {missing:?}\nretrieved more than once: {duplicated:?}\ntrace: {}",
        failures.join("\n"),
        drain_failures.join("\n"),
        sb.trace_path().display()
    );
    assert_eq!(during, SESSIONS, "every session slot completed");
    assert!(tally.bad.is_empty(), "messages garbled: {:?}", tally.bad);
    assert!(
        missing.is_empty() && duplicated.is_empty() && strays.is_empty(),
        "lost: {missing:?}\nretrieved more than once (number, sessions): {duplicated:?}\nnot sent: {strays:?}\ntrace: {}",
        sb.trace_path().display()
    );
    // Each session saw a run of consecutive numbers, in delivery order.
    for (i, (count, nums)) in results.iter().enumerate() {
        assert_eq!(*count, nums.len(), "session {i}: STAT and RETRs");
        let n: Vec<u32> = nums.iter().map(|n| n.parse().unwrap()).collect();
        assert!(
            n.windows(2).all(|w| w[1] == w[0] + 1),
            "session {i} saw mail out of order: {n:?}"
        );
    }
    assert!(
        tail_ok,
        "before the drain the spool held more than the tail no session had seen: {before_drain:?}"
    );
    assert!(
        spool_after.is_empty(),
        "spool not empty after the drain: {}",
        String::from_utf8_lossy(&spool_after)
    );
    assert!(
        left.is_empty(),
        "files left in the mail directory: {left:?}"
    );
}
