//! Bounded waits. A test waits for a condition or for a process, never
//! for a fixed time standing in for one, and never without a limit: when
//! the limit passes the test fails saying what did not happen, instead of
//! hanging `make test` (issue 19: a demo that ignored SIGINT hung it
//! forever) or passing by luck on a fast machine.

use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The limit for one command a test runs (a client, a tool, a session):
/// far above what any takes on a loaded two-core machine, so reaching it
/// means a hang.
pub const LIMIT: Duration = Duration::from_secs(300);

/// The limit for a build (`cargo build`, `make install`, `make deb`: the
/// release builds with LTO), which can take many minutes on two cores
/// shared with another build.
pub const BUILD: Duration = Duration::from_secs(1800);

/// How often a condition is checked: often enough that a test does not
/// wait noticeably longer than the condition takes.
const POLL: Duration = Duration::from_millis(20);

/// Checks `check` until it returns `Ok`, and returns that value. After
/// `limit` the test fails naming `what` was waited for and the last `Err`
/// (what was seen instead: a log, a listing).
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let seen = match check() {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}{}{seen}",
            if seen.is_empty() { "" } else { "; seen:\n" }
        );
        std::thread::sleep(POLL);
    }
}

/// [`wait_for`] a condition that is simply true or false.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    wait_for(what, limit, || {
        if cond() { Ok(()) } else { Err(String::new()) }
    })
}

/// Waits for `child` to exit and returns its output (what its piped
/// stdout and stderr carried). After `limit` its process group and itself
/// are killed and the test fails.
pub fn wait_output(child: Child, limit: Duration) -> Output {
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for process {pid}: {e}")),
        Err(_) => {
            kill_group(pid);
            // Reaped if it can be; a descendant outside its group may
            // still hold its pipes, and must not hang the test either.
            let _ = rx.recv_timeout(Duration::from_secs(10));
            panic!("process {pid} ran longer than {limit:?} and was killed");
        }
    }
}

/// SIGKILL to the process group `pid` leads and to `pid` itself (which
/// may not lead one).
pub fn kill_group(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// `Command::output` with a limit.
pub trait OutputWithin {
    /// Runs the command in a process group of its own (so a kill reaches
    /// all it started) with stdin from /dev/null and stdout and stderr
    /// captured, as [`Command::output`] does; kills it and fails the test
    /// after `limit`.
    fn output_within(&mut self, limit: Duration) -> Output;
}

impl OutputWithin for Command {
    fn output_within(&mut self, limit: Duration) -> Output {
        use std::os::unix::process::CommandExt;
        let child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {self:?}: {e} (scripts/setup.sh test installs what the tests run)"
                )
            });
        wait_output(child, limit)
    }
}

/// What [`Lines::next_within`] got.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A line, without its line end.
    Line(String),
    /// Every stream ended.
    End,
    /// Nothing came within the limit.
    Timeout,
}

/// A process's output read line by line by threads of their own, so that
/// every read has a limit (a blocking `read_line` on a child that stopped
/// talking would hang the test).
pub struct Lines {
    rx: mpsc::Receiver<String>,
    what: String,
}

impl Lines {
    /// The lines of `r`; `what` names it in failures.
    pub fn new(what: &str, r: impl std::io::Read + Send + 'static) -> Lines {
        Lines::merged(what, vec![Box::new(r)])
    }

    /// The lines of several streams (stdout and stderr), in the order they
    /// arrive.
    pub fn merged(what: &str, streams: Vec<Box<dyn std::io::Read + Send>>) -> Lines {
        let (tx, rx) = mpsc::channel();
        for s in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for l in std::io::BufReader::new(s).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
            });
        }
        Lines {
            rx,
            what: what.to_string(),
        }
    }

    /// The next line, the end, or [`Next::Timeout`] after `limit`.
    pub fn next_within(&self, limit: Duration) -> Next {
        match self.rx.recv_timeout(limit) {
            Ok(l) => Next::Line(l),
            Err(mpsc::RecvTimeoutError::Disconnected) => Next::End,
            Err(mpsc::RecvTimeoutError::Timeout) => Next::Timeout,
        }
    }

    /// The next line (`None` at the end); the test fails after `limit`.
    pub fn line(&self, limit: Duration) -> Option<String> {
        match self.next_within(limit) {
            Next::Line(l) => Some(l),
            Next::End => None,
            Next::Timeout => panic!("no line from {} in {limit:?}", self.what),
        }
    }

    /// The lines that have already arrived.
    pub fn ready(&self) -> Vec<String> {
        self.rx.try_iter().collect()
    }
}

/// Kills a process group after a limit unless dropped first: a bound for
/// reads from a child that [`Lines`] cannot make (prompts end in no line
/// end). The killed child's output ends, so the blocked read returns.
pub struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

/// Starts a [`Watchdog`] on `pid`'s process group (and `pid`).
pub fn watchdog(pid: u32, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("process {pid} ran longer than {limit:?}: killed");
            kill_group(pid as i32);
        }
    });
    Watchdog { _disarm: tx }
}
