//! A test's private world: its own `/var/mail` (and whatever else it binds
//! over system paths) in a private mount namespace made with `unshare -m`,
//! and the real servers (inetd) and popper processes running inside it.
//!
//! The sandbox directory is visible from outside too, so a test writes
//! spools before a session and reads them after, while popper inside sees
//! them at `/var/mail/USER`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::users::{TestUser, mail_gid};
use crate::wait::{LIMIT, OutputWithin, wait_for, wait_output};

/// A private set of files bound over system paths, and the processes
/// using them.
pub struct Sandbox {
    /// The sandbox directory (outside view).
    pub dir: PathBuf,
    /// The spool directory, bound over `/var/mail`.
    pub mail: PathBuf,
    binds: Vec<(PathBuf, PathBuf)>,
    etc_overlay: bool,
    syslog: bool,
    netns: Option<PathBuf>,
    servers: Vec<Child>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Binds /dev/log, says so, and appends every datagram to a file; when
/// the program it was started for has ended (its parent changed), it reads
/// what is still queued and exits.
const SYSLOG_RECEIVER: &str = "import os,socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind('/dev/log')\nf=open(sys.argv[1],'ab',0)\nopen(sys.argv[2],'w').close()\nparent=os.getppid()\ns.settimeout(0.1)\nwhile True:\n    try:\n        f.write(s.recv(65536).rstrip(b'\\n')+b'\\n')\n    except socket.timeout:\n        if os.getppid()!=parent:\n            s.setblocking(False)\n            try:\n                while True:\n                    f.write(s.recv(65536).rstrip(b'\\n')+b'\\n')\n            except BlockingIOError:\n                break\n";

impl Sandbox {
    /// A new sandbox named after the test. Its `popper.conf` sets a short
    /// failure delay (0.1 s) so failed logins do not slow the tests.
    pub fn new(name: &str) -> Sandbox {
        crate::require_root();
        let dir = Path::new("/tmp/popper-e2e").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mail = dir.join("mail");
        std::fs::create_dir(&mail).unwrap();
        // Debian's /var/mail: root:mail 2775.
        std::os::unix::fs::chown(&mail, Some(0), Some(mail_gid())).unwrap();
        std::fs::set_permissions(&mail, std::fs::Permissions::from_mode(0o2775)).unwrap();
        std::fs::write(dir.join("popper.conf"), "set auth-fail-delay = 0.1\n").unwrap();
        Sandbox {
            dir,
            mail,
            binds: Vec::new(),
            etc_overlay: false,
            syslog: false,
            netns: None,
            servers: Vec::new(),
        }
    }

    /// The configuration file every session is given with `-f`.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("popper.conf")
    }

    /// Adds a line to `popper.conf`.
    pub fn set(&self, line: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.conf())
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }

    /// The trace file every session given [`Sandbox::popper_args`] logs to.
    pub fn trace_path(&self) -> PathBuf {
        self.dir.join("trace.log")
    }

    /// What popper logged so far.
    pub fn trace(&self) -> String {
        std::fs::read_to_string(self.trace_path()).unwrap_or_default()
    }

    /// The pid of the popper that logged `user` in (from the trace file).
    pub fn session_pid(&self, user: &str) -> i32 {
        let want = format!("POP login by user \"{user}\"");
        wait_for(
            &format!("the login of {user} in the trace"),
            Duration::from_secs(10),
            || {
                let trace = self.trace();
                let line = trace
                    .lines()
                    .rev()
                    .find(|l| l.contains(&want))
                    .ok_or(trace.clone())?;
                let pid = line
                    .split("popper[")
                    .nth(1)
                    .and_then(|r| r.split(']').next());
                pid.and_then(|p| p.parse().ok()).ok_or(trace)
            },
        )
    }

    /// Gives the namespace a private `/etc`: an overlay whose lower layer
    /// is the machine's `/etc` and whose upper layer is this sandbox's, so
    /// what runs inside reads the real passwd and shadow but creates and
    /// changes files (`/etc/pop.auth`) only here. For commands started
    /// after this call; [`Sandbox::etc`] is the outside view of a file.
    pub fn overlay_etc(&mut self) {
        for d in ["etc-upper", "etc-work"] {
            std::fs::create_dir_all(self.dir.join(d)).unwrap();
        }
        self.etc_overlay = true;
    }

    /// A file of the private `/etc` as seen from outside (present once
    /// something inside made it, or a test put it there).
    pub fn etc(&self, name: &str) -> PathBuf {
        self.dir.join("etc-upper").join(name)
    }

    /// Gives the namespace a private `/dev` (a tmpfs with null, zero,
    /// random, urandom and tty) whose `/dev/log` is a datagram socket read
    /// by a small receiver: glibc's real syslog(3) path, captured in
    /// [`Sandbox::syslog`], without touching the machine's `/dev`.
    pub fn capture_syslog(&mut self) {
        self.syslog = true;
    }

    /// Every syslog datagram received so far, one per line.
    pub fn syslog(&self) -> String {
        std::fs::read_to_string(self.dir.join("syslog.txt")).unwrap_or_default()
    }

    /// Runs what starts after this call in the network namespace `ns` (a
    /// file such as `/run/netns/NAME`, see [`crate::netns`]) as well.
    pub fn in_netns(&mut self, ns: &Path) {
        self.netns = Some(ns.to_path_buf());
    }

    /// Binds `src` over `dst` inside the namespace (for servers started
    /// after this call).
    pub fn bind(&mut self, src: &Path, dst: &Path) {
        self.binds.push((src.to_path_buf(), dst.to_path_buf()));
    }

    /// A home directory for `user` in the sandbox, owned by the user and
    /// bound over the real one (for servers started after this call), so
    /// files popper keeps there (`~/.popbull`) are the test's own.
    pub fn private_home(&mut self, user: &TestUser) -> PathBuf {
        let home = self.dir.join(format!("home-{}", user.name));
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(user.uid), Some(user.gid)).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        self.bind(&home, &user.home.clone());
        home
    }

    /// popper's usual arguments here: `-s -d -f CONF -t TRACE` plus `extra`.
    pub fn popper_args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend([
            "-s".into(),
            "-d".into(),
            "-f".into(),
            self.conf().display().to_string(),
            "-t".into(),
            self.trace_path().display().to_string(),
        ]);
        v
    }

    /// A command that runs `program args` inside the namespace.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, program: &Path, args: &[S]) -> Command {
        let mut script = String::from(
            "set -e\nmount --bind \"$SB_MAIL\" /var/mail\nmount -t tmpfs tmpfs /run\n",
        );
        if self.etc_overlay {
            script.push_str(
                "mount -t overlay overlay -o \"lowerdir=/etc,upperdir=$SB_DIR/etc-upper,workdir=$SB_DIR/etc-work\" /etc\n",
            );
        }
        for (i, _) in self.binds.iter().enumerate() {
            script.push_str(&format!("mount --bind \"$SB_SRC{i}\" \"$SB_DST{i}\"\n"));
        }
        if self.syslog {
            script.push_str(concat!(
                "d=$(mktemp -d)\nmount -t tmpfs tmpfs \"$d\"\n",
                "for n in null zero urandom random tty; do touch \"$d/$n\"; mount --bind /dev/$n \"$d/$n\"; done\n",
                "mount --rbind \"$d\" /dev\n",
                "/usr/bin/python3 -c \"$SB_RECEIVER\" \"$SB_DIR/syslog.txt\" \"$SB_DIR/syslog.ready.$$\" </dev/null >/dev/null 2>&1 &\n",
                "i=0; while [ ! -e \"$SB_DIR/syslog.ready.$$\" ]; do\n",
                "  i=$((i + 1)); [ $i -le 500 ] || { echo 'the syslog receiver did not start in 10 s' >&2; exit 1; }; sleep 0.02\n",
                "done\n",
            ));
        }
        script.push_str("exec \"$@\"\n");
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display()))
                    .arg("--")
                    .arg("unshare");
                c
            }
            None => Command::new("unshare"),
        };
        cmd.args([
            "-m",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(program)
        .args(args)
        .env("SB_MAIL", &self.mail)
        .env("SB_DIR", &self.dir)
        .env("SB_RECEIVER", SYSLOG_RECEIVER);
        for (i, (src, dst)) in self.binds.iter().enumerate() {
            cmd.env(format!("SB_SRC{i}"), src)
                .env(format!("SB_DST{i}"), dst);
        }
        cmd
    }

    /// Runs popper on a pipe (stdin = `input`) inside the namespace and
    /// returns what it wrote and how it exited. Killed after 60 s.
    pub fn pipe(&self, popper: &Path, args: &[String], input: &[u8]) -> Output {
        let mut child = self
            .command(popper, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = wait_output(child, Duration::from_secs(60));
        let _ = feeder.join();
        out
    }

    /// Runs a shell script inside the namespace; panics with its output if
    /// it fails, else returns its stdout and stderr together.
    pub fn sh(&self, script: &str) -> String {
        let out = self
            .command(Path::new("/bin/sh"), &["-c", script])
            .output_within(LIMIT);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    }

    /// Starts a real inetd (openbsd-inetd, in the foreground) in the
    /// namespace, serving `server argv` on a free loopback port, and waits
    /// until it listens. Returns the port.
    pub fn inetd(&mut self, server: &Path, argv: &[String]) -> u16 {
        let port = free_port();
        let line = format!(
            "127.0.0.1:{port} stream tcp nowait root {} {}\n",
            server.display(),
            argv.join(" ")
        );
        self.inetd_conf(&line, port);
        port
    }

    /// Starts inetd with the given `inetd.conf` text, which must serve
    /// `port` (the one waited for).
    pub fn inetd_conf(&mut self, conf: &str, port: u16) {
        let path = self.dir.join(format!("inetd-{port}.conf"));
        std::fs::write(&path, conf).unwrap();
        let mut child = self
            .command(Path::new("/usr/sbin/inetd"), &[Path::new("-d"), &path])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("inetd (openbsd-inetd) must be installed: scripts/setup.sh test");
        let seen = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let log = seen.clone();
        let dir = self.dir.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::create(dir.join(format!("inetd-{port}.log"))).ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = f.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
            }
        });
        let want = format!(":{port} ");
        wait_for(
            &format!("inetd to serve port {port}"),
            Duration::from_secs(20),
            || {
                let seen = seen.lock().unwrap().clone();
                if seen
                    .lines()
                    .any(|l| l.starts_with("ADD") && l.contains(&want))
                {
                    return Ok(());
                }
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("inetd exited ({status}): {seen}");
                }
                Err(seen)
            },
        );
        self.servers.push(child);
    }

    /// `/var/mail/USER` as seen from outside.
    pub fn spool(&self, user: &TestUser) -> PathBuf {
        self.mail.join(&user.name)
    }

    /// Writes `user`'s spool (owned by the user, group mail, 0660, as
    /// Debian's delivery agents leave it).
    pub fn write_spool(&self, user: &TestUser, bytes: &[u8]) {
        let p = self.spool(user);
        std::fs::write(&p, bytes).unwrap();
        std::os::unix::fs::chown(&p, Some(user.uid), Some(mail_gid())).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o660)).unwrap();
    }

    /// `user`'s spool now (empty when it does not exist).
    pub fn read_spool(&self, user: &TestUser) -> Vec<u8> {
        std::fs::read(self.spool(user)).unwrap_or_default()
    }

    /// Delivers `message` to `user` with Debian's procmail, the real
    /// delivery agent (its own dotlock and fcntl locking), inside the
    /// namespace so it writes this sandbox's spool.
    pub fn deliver(&self, user: &TestUser, message: &[u8]) {
        let mut child = self
            .command(Path::new("/usr/bin/procmail"), &["-d", &user.name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("procmail must be installed");
        child.stdin.take().unwrap().write_all(message).unwrap();
        let out = wait_output(child, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "procmail: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for c in &mut self.servers {
            // SAFETY: kill has no memory-safety preconditions.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("sandbox kept for inspection: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Resets a process's peak resident size (`/proc/PID/clear_refs` = 5), so
/// [`peak_rss_kb`] measures from now on.
pub fn reset_peak_rss(pid: i32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// A process's peak resident size in KiB (`VmHWM`).
pub fn peak_rss_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
