//! Mail is never lost or duplicated, whenever popper dies: a session that
//! retrieves and deletes messages of a mailbox that receives new mail
//! (from procmail) mid-session is run under `strace`, which kills popper
//! with SIGKILL — or fails the call with ENOSPC — at the N-th call of each
//! system call that changes a file, for every N until the session runs
//! through untouched. After each one, a normal session logs in (which
//! recovers) and the spool is checked: every kept and every delivered
//! message exactly once and byte for byte, and the deleted ones either all
//! gone (the update committed) or all there (it did not); never a mix.
//!
//! Every faulted login also delivers a bulletin (appended to the spool and
//! recorded in `~/.popbull` in one journaled step): after recovery it is
//! there exactly once and recorded, whichever call the fault hit.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use popper_e2e::mail::{Message, mbox};
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{TestUser, user};
use popper_e2e::wait::{LIMIT, Lines, wait_output};

/// The system calls whose every invocation is a fault point.
const MUTATING: &[&str] = &[
    "write",
    "pwrite64",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fallocate",
    "copy_file_range",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "openat",
];

/// The calls that can fail because the disk is full.
const ALLOCATING: &[&str] = &[
    "write",
    "pwrite64",
    "fsync",
    "fdatasync",
    "fallocate",
    "copy_file_range",
    "link",
    "linkat",
    "openat",
];

fn numbered(n: u32) -> Message {
    let mut m = Message::new(
        "sender@example.com",
        &format!("test {n}"),
        &format!("test message {n}\n.dot line {n}"),
    );
    let at = m.content.windows(2).position(|w| w == b"\n\n").unwrap() + 1;
    let mut c = m.content[..at].to_vec();
    c.extend_from_slice(format!("X-Test-Id: {n}\n").as_bytes());
    c.extend_from_slice(&m.content[at..]);
    m.content = c;
    m
}

/// A delivered message (procmail adds the envelope).
fn delivered(n: u32) -> Vec<u8> {
    format!("From: <sender@example.com>\nSubject: test {n}\nX-Test-Id: {n}\n\ntest message {n}\n.dot line {n}\n").into_bytes()
}

/// How a faulted session went.
#[derive(Debug)]
struct Outcome {
    /// popper was killed (the injection happened).
    killed: bool,
    /// The fault was injected at all.
    injected: bool,
    /// QUIT was sent (popper was alive to read it).
    quit_sent: bool,
    transcript: String,
}

struct Crash {
    sb: Sandbox,
    u: TestUser,
    home: std::path::PathBuf,
    original: Vec<Message>,
}

/// The X-Test-Id of the bulletin every login is due.
const BULLETIN: u32 = 100;

impl Crash {
    fn new(name: &str) -> Crash {
        let u = user("pt_crash");
        let mut sb = Sandbox::new(name);
        // A fault that makes popper wait for a lock should not slow the
        // sweep down by the default 20 s each time.
        sb.set("set lock-timeout = 2");
        let home = sb.private_home(&u);
        let bulls = sb.dir.join("bulls");
        std::fs::create_dir(&bulls).unwrap();
        std::fs::write(
            bulls.join("1.notice"),
            format!("From root {}\nTo: everyone\nSubject: notice\nX-Test-Id: {BULLETIN}\n\nA bulletin.\n", popper_e2e::mail::DATE),
        )
        .unwrap();
        sb.set(&format!("set bulldir = {}", bulls.display()));
        Crash {
            sb,
            u,
            home,
            original: (1..=6).map(numbered).collect(),
        }
    }

    fn reset(&self) {
        for f in std::fs::read_dir(&self.sb.mail).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        self.sb.write_spool(&self.u, &mbox(&self.original));
        let _ = std::fs::remove_file(self.home.join(".popbull"));
    }

    fn popper(&self, strace: Option<(&str, &str)>) -> Child {
        let popper = popper_e2e::bins::popper();
        let conf = self.sb.conf().display().to_string();
        let mut cmd = match strace {
            None => self.sb.command(&popper, &["-f", &conf]),
            Some((syscall, action)) => {
                let log = self.sb.dir.join("strace.log").display().to_string();
                let trace_set = MUTATING.join(",");
                self.sb.command(
                    Path::new("/usr/bin/strace"),
                    &[
                        "-f",
                        "-qq",
                        "-o",
                        &log,
                        "-e",
                        &format!("trace={trace_set}"),
                        &format!("--inject={syscall}:{action}"),
                        "--",
                        &popper.display().to_string(),
                        "-f",
                        &conf,
                    ],
                )
            }
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The session under test: RETR 2 and 3, DELE 1 and 4, two messages
    /// delivered by procmail, QUIT.
    fn faulted(&self, strace: Option<(&str, &str)>) -> Outcome {
        let mut child = self.popper(strace);
        let mut stdin = child.stdin.take().unwrap();
        let out = Lines::new("popper", child.stdout.take().unwrap());
        let mut transcript = String::new();
        let wait_for = |want: &str, transcript: &mut String| -> bool {
            while let Some(l) = out.line(LIMIT) {
                transcript.push_str(&l);
                transcript.push('\n');
                if l.contains(want) {
                    return true;
                }
            }
            false
        };
        let mut alive = write(
            &mut stdin,
            &format!("USER {}\r\nPASS {}\r\n", self.u.name, self.u.password),
        ) && wait_for(&format!("+OK {} has ", self.u.name), &mut transcript);
        alive = alive
            && write(&mut stdin, "RETR 2\r\nRETR 3\r\nDELE 1\r\nDELE 4\r\n")
            && wait_for("Message 4 has been deleted.", &mut transcript);
        let finished = if !alive {
            // popper died (or stopped talking): let it end, then break a
            // dotlock it may have left, which procmail would otherwise wait
            // on until it is stale (1024 s), as procmail eventually would.
            drop(stdin);
            let out = wait_output(child, Duration::from_secs(60));
            self.break_dead_dotlock();
            for n in [7, 8] {
                self.sb.deliver(&self.u, &delivered(n));
            }
            out
        } else {
            for n in [7, 8] {
                self.sb.deliver(&self.u, &delivered(n));
            }
            if write(&mut stdin, "QUIT\r\n") {
                wait_for("signing off.", &mut transcript);
            }
            drop(stdin);
            wait_output(child, Duration::from_secs(60))
        };
        let quit_sent = alive;
        transcript.push_str(&String::from_utf8_lossy(&finished.stdout));
        let log = std::fs::read_to_string(self.sb.dir.join("strace.log")).unwrap_or_default();
        Outcome {
            killed: log.contains("+++ killed by SIGKILL +++"),
            injected: log.contains("(INJECTED)") || log.contains("+++ killed by SIGKILL +++"),
            quit_sent,
            transcript,
        }
    }

    /// Removes a dotlock left by a popper that is no longer running.
    fn break_dead_dotlock(&self) {
        let lock = self.sb.mail.join(format!("{}.lock", self.u.name));
        let Ok(text) = std::fs::read_to_string(&lock) else {
            return;
        };
        let Some(pid) = text
            .trim_end()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            return;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        #[allow(unsafe_code)]
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if text.starts_with("popper:") && !alive {
            std::fs::remove_file(&lock).unwrap();
        }
    }

    /// A normal session after the fault: it recovers and must log in.
    fn recover(&self) -> String {
        let mut child = self.popper(None);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                format!(
                    "USER {}\r\nPASS {}\r\nSTAT\r\nQUIT\r\n",
                    self.u.name, self.u.password
                )
                .as_bytes(),
            )
            .unwrap();
        let out = wait_output(child, Duration::from_secs(60));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The messages in the spool by X-Test-Id, each with its header
    /// lines minus those popper writes (X-UIDL, Status) and its body.
    fn messages(&self) -> BTreeMap<u32, Vec<(String, Vec<u8>)>> {
        let spool = self.sb.read_spool(&self.u);
        let mut found: BTreeMap<u32, Vec<(String, Vec<u8>)>> = BTreeMap::new();
        let text = String::from_utf8_lossy(&spool).into_owned();
        let mut starts: Vec<usize> = Vec::new();
        if text.starts_with("From ") {
            starts.push(0);
        }
        starts.extend(text.match_indices("\n\nFrom ").map(|(i, _)| i + 2));
        starts.push(text.len());
        for w in starts.windows(2) {
            let m = &text[w[0]..w[1]];
            let (envelope, content) = m.split_once('\n').unwrap_or((m, ""));
            let id: u32 = content
                .lines()
                .find_map(|l| l.strip_prefix("X-Test-Id: "))
                .unwrap_or_else(|| panic!("message without X-Test-Id in\n{text}"))
                .parse()
                .unwrap();
            let kept: Vec<&str> = content
                .split_inclusive('\n')
                .scan(true, |in_head, l| {
                    let skip = *in_head && (l.starts_with("X-UIDL: ") || l.starts_with("Status: "));
                    if l == "\n" {
                        *in_head = false;
                    }
                    Some((l, skip))
                })
                .filter(|(_, skip)| !skip)
                .map(|(l, _)| l)
                .collect();
            found
                .entry(id)
                .or_default()
                .push((envelope.to_string(), kept.concat().into_bytes()));
        }
        found
    }

    /// The invariant, after a recovering session.
    fn check(&self, what: &str, o: &Outcome, also_delivered: &[u32]) {
        let login = self.recover();
        assert!(
            login.contains(&format!("+OK {} has ", self.u.name)),
            "{what}: the next login failed:\n{login}\nfaulted session:\n{}",
            o.transcript
        );
        let found = self.messages();
        let context = || {
            format!(
                "{what}: spool now\n{}\nfaulted session:\n{}",
                String::from_utf8_lossy(&self.sb.read_spool(&self.u)),
                o.transcript
            )
        };
        for (id, copies) in &found {
            assert_eq!(
                copies.len(),
                1,
                "message {id} is there {} times; {}",
                copies.len(),
                context()
            );
        }
        for m in &self.original {
            let id: u32 = String::from_utf8_lossy(&m.content)
                .lines()
                .find_map(|l| l.strip_prefix("X-Test-Id: "))
                .unwrap()
                .parse()
                .unwrap();
            if let Some(copies) = found.get(&id) {
                assert_eq!(
                    copies[0].1,
                    m.content,
                    "message {id} changed; {}",
                    context()
                );
            }
        }
        for id in [2, 3, 5, 6, 7, 8, BULLETIN].iter().chain(also_delivered) {
            assert!(
                found.contains_key(id),
                "message {id} was lost; {}",
                context()
            );
        }
        let deleted: Vec<bool> = [1, 4].iter().map(|id| found.contains_key(id)).collect();
        assert!(
            deleted[0] == deleted[1],
            "half of the deletions applied; {}",
            context()
        );
        // A reply that says the mailbox was left unchanged must be true.
        if o.transcript.contains("mailbox left unchanged") {
            assert!(
                deleted[0],
                "told 'left unchanged' but the deletions were applied; {}",
                context()
            );
        }
        assert_eq!(
            std::fs::read_to_string(self.home.join(".popbull"))
                .ok()
                .as_deref(),
            Some("1\n"),
            "{what}: the bulletin is not recorded as delivered; {}",
            context()
        );
        for leftover in [
            format!(".{}.pop.journal", self.u.name),
            format!("{}.lock", self.u.name),
        ] {
            assert!(
                !self.sb.mail.join(&leftover).exists(),
                "{what}: {leftover} left after recovery; {}",
                context()
            );
        }
        // And the mailbox is usable: a third session sees the same.
        let again = self.recover();
        assert!(
            again.contains(&format!("+OK {} has {} message", self.u.name, found.len())),
            "{what}: {again}"
        );
    }

    /// The number of the first `openat` that touches the spool directory
    /// (a traced run without faults): the ones before it load libraries
    /// and read passwd, where a fault changes no mail.
    fn first_mail_open(&self) -> usize {
        self.reset();
        self.faulted(Some(("fdatasync", "error=EIO:when=65535")));
        let log = std::fs::read_to_string(self.sb.dir.join("strace.log")).unwrap();
        let opens: Vec<&str> = log.lines().filter(|l| l.contains(" openat(")).collect();
        let first = opens
            .iter()
            .position(|l| l.contains("/var/mail"))
            .expect("popper opens the spool directory");
        first + 1
    }

    /// Runs the session with `action` injected at every invocation of
    /// every mutating system call; returns how many fault points there were.
    fn every_fault_point(&self, action: &str, deliver_after_crash: bool) -> usize {
        self.every_fault_point_from(action, deliver_after_crash, "")
    }

    /// [`Crash::every_fault_point`]; `persist` = "+" keeps failing every
    /// call from the N-th on (a disk that stays full).
    fn every_fault_point_from(
        &self,
        action: &str,
        deliver_after_crash: bool,
        persist: &str,
    ) -> usize {
        let first_open = self.first_mail_open();
        let mut points = 0;
        // A disk that stays full fails the calls that need space; unlink,
        // rename and ftruncate never need any (a dotlock that cannot be
        // removed at all is a broken file system, not a full one).
        let calls: &[&str] = if persist.is_empty() {
            MUTATING
        } else {
            ALLOCATING
        };
        for syscall in calls {
            let start = if *syscall == "openat" { first_open } else { 1 };
            for n in start.. {
                self.reset();
                let what = format!("{action} at {syscall} #{n}");
                if std::env::var_os("CRASH_VERBOSE").is_some() {
                    eprintln!("{what}");
                }
                let o = self.faulted(Some((syscall, &format!("{action}:when={n}{persist}"))));
                if !o.injected {
                    break;
                }
                points += 1;
                let mut extra = Vec::new();
                if deliver_after_crash && o.killed && o.quit_sent {
                    // A delivery agent that judged the dead popper's
                    // dotlock stale appends before the user logs in again.
                    self.break_dead_dotlock();
                    self.sb.deliver(&self.u, &delivered(9));
                    extra.push(9);
                }
                self.check(&what, &o, &extra);
                assert!(n < 400, "{syscall}: no end to the fault points");
            }
        }
        points
    }
}

fn write(w: &mut impl Write, s: &str) -> bool {
    w.write_all(s.as_bytes()).is_ok() && w.flush().is_ok()
}

#[test]
fn the_faulted_session_itself_works_and_commits() {
    let c = Crash::new("crash-baseline");
    c.reset();
    let o = c.faulted(None);
    assert!(o.transcript.contains("signing off."), "{}", o.transcript);
    c.check("no fault", &o, &[]);
    let found = c.messages();
    assert!(
        !found.contains_key(&1) && !found.contains_key(&4),
        "the deletions were applied"
    );
}

#[test]
fn sigkill_at_every_mutating_system_call_loses_and_duplicates_nothing() {
    let c = Crash::new("crash-kill");
    let points = c.every_fault_point("signal=SIGKILL", false);
    assert!(points > 20, "only {points} fault points");
    eprintln!("SIGKILL: {points} fault points, all recovered");
}

#[test]
fn sigkill_during_the_update_then_a_delivery_before_recovery() {
    let c = Crash::new("crash-kill-deliver");
    let points = c.every_fault_point("signal=SIGKILL", true);
    assert!(points > 20, "only {points} fault points");
}

#[test]
fn enospc_at_every_mutating_system_call_loses_and_duplicates_nothing() {
    let c = Crash::new("crash-enospc");
    let points = c.every_fault_point("error=ENOSPC", false);
    assert!(points > 20, "only {points} fault points");
    eprintln!("ENOSPC: {points} fault points, all safe");
}

#[test]
fn a_disk_that_stays_full_from_any_call_on_loses_and_duplicates_nothing() {
    let c = Crash::new("crash-enospc-persistent");
    let points = c.every_fault_point_from("error=ENOSPC", false, "+");
    assert!(points > 20, "only {points} fault points");
}
