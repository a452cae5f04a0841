//! `make demo` does what the README says: curl and fetchmail can read the
//! demo mailbox, SIGTERM cleans up (once, even when the signal comes more
//! than once), and a port already in use is said so instead of "ready".
//!
//! The demo is always started with SIGINT ignored, as every background job
//! of a script is: a test that stopped it with SIGINT hung `make test`
//! forever there (issue 19). Every read and wait here has a limit.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use popper_e2e::wait::{Lines, Next, kill_group, wait_for};

/// Demos run one at a time: they share the `popdemo` account, which the
/// script creates if it is missing.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long the demo may take to say it is ready, or to stop.
const READY: Duration = Duration::from_secs(60);
const STOP: Duration = Duration::from_secs(20);

/// A running `scripts/demo.sh`, in a process group of its own, and what
/// it printed so far (stdout and stderr, read by threads).
struct Demo {
    child: Child,
    port: u16,
    lines: Lines,
    text: String,
}

impl Demo {
    /// Starts the demo on `port`, through `wrapper` (such as `timeout`)
    /// when given, with SIGINT ignored.
    fn start(port: u16, wrapper: &[&str]) -> Demo {
        popper_e2e::require_root();
        let script = popper_e2e::bins::root().join("scripts/demo.sh");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&script);
                c
            }
            None => Command::new(&script),
        };
        cmd.env("DEMO_PORT", port.to_string())
            .env("POPPER", popper_e2e::bins::popper())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: signal(2) is async-signal-safe, as a pre_exec hook must be.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let lines = Lines::merged(
            "the demo",
            vec![
                Box::new(child.stdout.take().unwrap()),
                Box::new(child.stderr.take().unwrap()),
            ],
        );
        Demo {
            child,
            port,
            lines,
            text: String::new(),
        }
    }

    /// Reads what the demo prints until a line contains `want`; fails if it
    /// ends first or takes longer than `limit`.
    fn read_until(&mut self, want: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.text.lines().any(|l| l.contains(want)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.next_within(left) {
                Next::Line(l) => {
                    self.text.push_str(&l);
                    self.text.push('\n');
                }
                Next::Timeout => {
                    panic!("no {want:?} from the demo in {limit:?}:\n{}", self.text)
                }
                Next::End => panic!("the demo ended before {want:?}:\n{}", self.text),
            }
        }
    }

    /// Everything the demo printed, once it has ended and its output is
    /// closed (waited for up to [`STOP`]).
    fn rest(&mut self) -> String {
        let deadline = Instant::now() + STOP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.next_within(left) {
                Next::Line(l) => {
                    self.text.push_str(&l);
                    self.text.push('\n');
                }
                Next::End => return self.text.clone(),
                Next::Timeout => panic!(
                    "the demo's output still open {STOP:?} after it ended (its inetd alive?):\n{}",
                    self.text
                ),
            }
        }
    }

    /// Waits up to `limit` for the demo to exit; on timeout the test fails
    /// (and [`Drop`] kills what is left).
    fn wait(&mut self, limit: Duration, after: &str) -> ExitStatus {
        let (child, lines, text) = (&mut self.child, &self.lines, &mut self.text);
        wait_for(&format!("the demo to exit {after}"), limit, || {
            for l in lines.ready() {
                text.push_str(&l);
                text.push('\n');
            }
            child.try_wait().unwrap().ok_or_else(|| text.clone())
        })
    }

    /// Stops the demo as a service manager or `timeout` would: SIGTERM to
    /// its whole process group (which cannot have been ignored by
    /// accident), SIGKILL if it has not exited within [`STOP`].
    fn stop(&mut self) -> (ExitStatus, String) {
        // SAFETY: kill has no memory-safety preconditions.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGTERM);
        }
        let status = self.wait(STOP, "of SIGTERM");
        (status, self.rest())
    }
}

impl Drop for Demo {
    /// A test that failed halfway leaves no demo running: SIGKILL to its
    /// group, and to the inetd it started (in a session of its own).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_group(self.child.id() as i32);
            let _ = self.child.wait();
            kill_demo_inetd(self.port);
        }
    }
}

/// Kills the inetd a demo on `port` started, if one is still running, and
/// removes the demo's work directory: a demo killed before its cleanup
/// leaves both (its inetd has a session of its own, and need not be
/// listening, as when the port was taken). The inetd is found by its
/// command line (`inetd -d /tmp/popper-demo.*/inetd.conf`) and that file's
/// port. Never panics: it runs in [`Drop`], perhaps while a failed test
/// unwinds.
fn kill_demo_inetd(port: u16) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let serves = format!("127.0.0.1:{port} ");
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let conf = args.iter().find(|a| {
            a.starts_with("/tmp/popper-demo.")
                && std::fs::read_to_string(a).is_ok_and(|c| c.starts_with(&serves))
        });
        if let Some(conf) = conf.filter(|_| args[0] == "/usr/sbin/inetd") {
            kill_group(pid);
            // And the work directory the demo's cleanup did not remove.
            if let Some(work) = std::path::Path::new(conf).parent() {
                let _ = std::fs::remove_dir_all(work);
            }
        }
    }
}

/// The demo's work directory, from the log path it prints.
fn work_dir(text: &str) -> std::path::PathBuf {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("log:"))
        .map(|p| {
            std::path::PathBuf::from(p.trim())
                .parent()
                .unwrap()
                .to_path_buf()
        })
        .expect("the demo prints its log path")
}

/// The demo stopped, said so once, and left nothing: no work directory,
/// nothing listening on its port.
fn assert_cleaned_up(text: &str, status: ExitStatus, work: &std::path::Path, port: u16) {
    assert_eq!(
        text.matches("demo: stopped and cleaned up").count(),
        1,
        "said once ({status}):\n{text}"
    );
    assert!(!work.exists(), "{} left behind", work.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "inetd still listening"
    );
}

#[test]
fn demo_serves_curl_and_fetchmail_and_cleans_up() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = popper_e2e::sandbox::free_port();
    let mut demo = Demo::start(port, &[]);
    demo.read_until("demo: ready", READY);
    let work = work_dir(&demo.text);
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
    // SIGTERM (SIGINT is ignored here): the script stops inetd and removes
    // its files.
    let (status, text) = demo.stop();
    assert_cleaned_up(&text, status, &work, port);
}

#[test]
fn demo_under_timeout_cleans_up_once_when_signalled_more_than_once() {
    // Regression (issue 19): `timeout` relays its SIGTERM to the script and
    // to the script's process group, so the script got it two or three
    // times: the second killed it halfway through its cleanup (work
    // directory left behind) or ran the cleanup again (said twice).
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = popper_e2e::sandbox::free_port();
    let mut demo = Demo::start(port, &["timeout", "600"]);
    demo.read_until("demo: ready", READY);
    let work = work_dir(&demo.text);
    let (status, text) = demo.stop();
    assert_cleaned_up(&text, status, &work, port);
}

#[test]
fn demo_says_its_port_is_in_use_and_is_never_ready() {
    // Regression (issue 19): inetd logs "ADD:" even when it cannot bind,
    // and the demo said "demo: ready" for another program's port.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let before = demo_dirs();
    let mut demo = Demo::start(port, &[]);
    let status = demo.wait(READY, "with its port in use");
    let text = demo.rest();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "demo: port {port} (127.0.0.1:{port}) is in use by another program:"
        )),
        "{text}"
    );
    assert!(!text.contains("demo: ready"), "{text}");
    wait_for("the demo's work directory removed", STOP, || {
        let left: Vec<_> = demo_dirs().difference(&before).cloned().collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
    // The other program still has its port.
    taken.set_nonblocking(true).unwrap();
    let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_for("the connection on the taken port", STOP, || {
        taken.accept().map(|_| ()).map_err(|e| e.to_string())
    });
}

/// The demo work directories in /tmp now.
fn demo_dirs() -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("popper-demo."))
        })
        .collect()
}
