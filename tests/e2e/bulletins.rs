//! Bulletins (qpopper.md §10 and the §15.9 vectors): `NUMBER.name` files
//! delivered once to each user as mail at the end of the spool, with
//! `~/.popbull` (in a private home bound over the real one) recording the
//! newest delivered; exact sizes and UIDs `<login time>.<nnn>` checked
//! against the independent wire oracle; the bulletin-free build.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use popper_e2e::mail::{Message, mbox, wire};
use popper_e2e::pop::{Pop, lf, unstuff};
use popper_e2e::sandbox::Sandbox;
use popper_e2e::users::{TestUser, user};
use popper_e2e::wait::{LIMIT, OutputWithin, wait_until};

use crate::mailbox::{listing, poplib};

const ENVELOPE: &str = "From root Mon Nov 30 10:00:00 2026";

/// A bulletin file as an administrator writes one.
fn bulletin(n: u32, subject: &str) -> String {
    format!(
        "{ENVELOPE}\nFrom: root (The POP administrator)\nTo: all-users\nX-UIDL: stale-{n}\nStatus: RO\nSubject: {subject}\n\nBulletin {n}: {subject}.\n.a dot line\n"
    )
}

/// What the spool holds for that bulletin once `to` has it with `uid`
/// (after its envelope): X-UIDL first, stale X-UIDL and Status gone, To
/// rewritten, and the empty line that ends an mbox message.
fn stored(n: u32, subject: &str, to: &str, uid: &str) -> Vec<u8> {
    format!(
        "X-UIDL: {uid}\nFrom: root (The POP administrator)\nTo: {to}\nSubject: {subject}\n\nBulletin {n}: {subject}.\n.a dot line\n\n"
    )
    .into_bytes()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// A sandbox with a private home for `u` and a bulletin directory named
/// in the configuration (plus `conf`), served under inetd.
struct Bulls {
    sb: Sandbox,
    port: u16,
    u: TestUser,
    home: PathBuf,
    dir: PathBuf,
}

impl Bulls {
    fn new(name: &str, conf: &[&str]) -> Bulls {
        let u = user("pt_bull");
        let mut sb = Sandbox::new(name);
        let home = sb.private_home(&u);
        let dir = sb.dir.join("bulls");
        std::fs::create_dir(&dir).unwrap();
        sb.set(&format!("set bulldir = {}", dir.display()));
        for l in conf {
            sb.set(l);
        }
        let port = sb.inetd(&popper_e2e::bins::popper(), &crate::popper_args(&sb, &[]));
        Bulls {
            sb,
            port,
            u,
            home,
            dir,
        }
    }

    fn add(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn popbull(&self) -> Option<String> {
        std::fs::read_to_string(self.home.join(".popbull")).ok()
    }

    fn set_popbull(&self, text: &str) {
        let p = self.home.join(".popbull");
        std::fs::write(&p, text).unwrap();
        std::os::unix::fs::chown(&p, Some(self.u.uid), Some(self.u.gid)).unwrap();
    }

    /// Logs in; returns the session and the message count.
    fn login(&self) -> (Pop, usize) {
        let mut p = Pop::connect(self.port);
        let r = p.login(&self.u);
        assert!(r.starts_with(&format!("+OK {} has ", self.u.name)), "{r}");
        let (_, uidl) = p.multi("UIDL");
        (p, listing(&lf(&uidl)).len())
    }

    fn to(&self) -> String {
        format!("{}@{}", self.u.name, hostname())
    }
}

/// UIDs and sizes of the session's messages.
fn uids_and_sizes(p: &mut Pop) -> (Vec<String>, Vec<u64>) {
    let (_, uidl) = p.multi("UIDL");
    let (_, list) = p.multi("LIST");
    (
        listing(&lf(&uidl)).into_iter().map(|(_, u)| u).collect(),
        listing(&lf(&list))
            .into_iter()
            .map(|(_, s)| s.parse().unwrap())
            .collect(),
    )
}

/// Checks message `n` (1-based) is bulletin `b` with a UID made at a login
/// between `t0` and `t1`, sequence `seq`; returns its UID.
fn check_bulletin(
    p: &mut Pop,
    t: &Bulls,
    n: usize,
    b: (u32, &str),
    (t0, t1): (u64, u64),
    seq: u32,
) -> String {
    let (uids, sizes) = uids_and_sizes(p);
    let uid = uids[n - 1].clone();
    let (secs, nnn) = uid.split_once('.').unwrap();
    let secs: u64 = secs.parse().unwrap();
    assert!((t0..=t1).contains(&secs), "UID {uid} not made at login");
    assert_eq!(nnn, format!("{seq:03}"), "UID {uid}");
    let want = wire(&stored(b.0, b.1, &t.to(), &uid), &uid);
    let (status, body) = p.multi(&format!("RETR {n}"));
    assert_eq!(status, format!("+OK {} octets", want.len()));
    assert_eq!(
        String::from_utf8_lossy(&unstuff(&body)),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(sizes[n - 1], want.len() as u64, "LIST size is exact");
    uid
}

#[test]
fn a_new_user_gets_the_newest_bulletin_then_only_new_ones() {
    // qpopper.md §15.9.
    let t = Bulls::new("bull-vector", &[]);
    let mail = vec![Message::new("a@example.com", "mail", "hello")];
    t.sb.write_spool(&t.u, &mbox(&mail));
    t.add("1.welcome", &bulletin(1, "welcome"));
    t.add("2.downtime", &bulletin(2, "downtime"));
    t.add("notes", "not a bulletin: no leading digit\n");

    let t0 = now();
    let (mut p, count) = t.login();
    let t1 = now();
    assert_eq!(count, 2, "the mail and the newest bulletin");
    let uid2 = check_bulletin(&mut p, &t, 2, (2, "downtime"), (t0, t1), 0);
    p.cmd("QUIT");
    assert_eq!(t.popbull().as_deref(), Some("2\n"));
    let md = std::fs::metadata(t.home.join(".popbull")).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (t.u.uid, 0o600));
    let spool = String::from_utf8(t.sb.read_spool(&t.u)).unwrap();
    assert_eq!(spool.matches("Bulletin 2: downtime").count(), 1);
    assert!(
        !spool.contains("welcome"),
        "a new user gets only the newest"
    );
    assert!(
        t.sb.trace().contains("added bulletins 2.downtime"),
        "{}",
        t.sb.trace()
    );

    // The next login, with 3.newsrv added: only bulletin 3. (In a later
    // second: two logins in one second would both number from .000, and
    // the index would tell the two UIDs apart with a suffix, as it does
    // for any duplicate.)
    t.add("3.newsrv", &bulletin(3, "newsrv"));
    wait_until("the next second", std::time::Duration::from_secs(3), || {
        now() > t1
    });
    let t0 = now();
    let (mut p, count) = t.login();
    let t1 = now();
    assert_eq!(count, 3);
    check_bulletin(&mut p, &t, 3, (3, "newsrv"), (t0, t1), 0);
    let (uids, _) = uids_and_sizes(&mut p);
    assert_eq!(uids[1], uid2, "bulletin 2 keeps its UID");
    p.cmd("QUIT");
    assert_eq!(t.popbull().as_deref(), Some("3\n"));

    // Nothing new: nothing added, nothing written.
    let before = t.sb.read_spool(&t.u);
    let (mut p, count) = t.login();
    assert_eq!(count, 3);
    p.cmd("QUIT");
    assert_eq!(t.sb.read_spool(&t.u), before);
    assert_eq!(t.popbull().as_deref(), Some("3\n"));
}

#[test]
fn several_bulletins_in_one_login_are_numbered_in_order() {
    let t = Bulls::new("bull-several", &[]);
    t.set_popbull("1\n");
    t.add("1.old", &bulletin(1, "old"));
    t.add("10.ten", &bulletin(10, "ten"));
    t.add("2.two", &bulletin(2, "two"));
    let t0 = now();
    let (mut p, count) = t.login();
    let t1 = now();
    assert_eq!(count, 2, "no spool before: bulletins 2 and 10 only");
    check_bulletin(&mut p, &t, 1, (2, "two"), (t0, t1), 0);
    check_bulletin(&mut p, &t, 2, (10, "ten"), (t0, t1), 1);
    p.cmd("QUIT");
    assert_eq!(t.popbull().as_deref(), Some("10\n"));
    // The spool popper made for them is the user's and private.
    let md = std::fs::metadata(t.sb.spool(&t.u)).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o077), (t.u.uid, 0));
}

#[test]
fn a_bad_bulletin_delivers_nothing_and_is_logged() {
    let t = Bulls::new("bull-bad", &[]);
    let mail = vec![Message::new("a@example.com", "mail", "hello")];
    t.sb.write_spool(&t.u, &mbox(&mail));
    t.set_popbull("2\n");
    t.add("3.newsrv", "Subject: no envelope line\n\nbody\n");
    t.add("4.good", &bulletin(4, "good"));
    let before = t.sb.read_spool(&t.u);
    let (mut p, count) = t.login();
    assert_eq!(count, 1, "nothing delivered that session");
    p.cmd("QUIT");
    assert_eq!(t.sb.read_spool(&t.u), before);
    assert_eq!(t.popbull().as_deref(), Some("2\n"), ".popbull unchanged");
    let log = t.sb.trace();
    assert!(
        log.contains(r#"Bulletin 3.newsrv does not start with a valid "From " separator"#),
        "{log}"
    );
    // Fixed by the administrator: both arrive at the next login.
    t.add("3.newsrv", &bulletin(3, "newsrv"));
    let (mut p, count) = t.login();
    assert_eq!(count, 3);
    p.cmd("QUIT");
    assert_eq!(t.popbull().as_deref(), Some("4\n"));
}

#[test]
fn max_bulletins_sets_what_a_new_user_gets() {
    let t = Bulls::new("bull-max2", &["set max-bulletins = 2"]);
    for (n, s) in [(1, "one"), (2, "two"), (3, "three")] {
        t.add(&format!("{n}.{s}"), &bulletin(n, s));
    }
    let (mut p, count) = t.login();
    assert_eq!(count, 2);
    p.cmd("QUIT");
    let spool = String::from_utf8(t.sb.read_spool(&t.u)).unwrap();
    assert!(spool.contains("Bulletin 2: two") && spool.contains("Bulletin 3: three"));
    assert!(!spool.contains("Bulletin 1"));
    assert_eq!(t.popbull().as_deref(), Some("3\n"));

    let t = Bulls::new("bull-max0", &["set max-bulletins = 0"]);
    t.add("5.five", &bulletin(5, "five"));
    let (mut p, count) = t.login();
    assert_eq!(count, 0);
    p.cmd("QUIT");
    assert_eq!(t.popbull().as_deref(), Some("5\n"), "recorded as seen");
    assert!(!t.sb.spool(&t.u).exists(), "no spool made for nothing");
}

#[test]
fn popbull_that_is_a_link_or_a_fifo_is_refused() {
    let t = Bulls::new("bull-link", &[]);
    t.add("1.one", &bulletin(1, "one"));
    let target = t.home.join("target");
    std::fs::write(&target, "0\n").unwrap();
    std::os::unix::fs::symlink(&target, t.home.join(".popbull")).unwrap();
    let (mut p, count) = t.login();
    assert_eq!(count, 0, "no bulletins through a symlinked .popbull");
    p.cmd("QUIT");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "0\n");
    assert!(
        t.sb.trace().contains("is a symbolic link"),
        "{}",
        t.sb.trace()
    );

    std::fs::remove_file(t.home.join(".popbull")).unwrap();
    popper_e2e::run(std::process::Command::new("mkfifo").arg(t.home.join(".popbull")));
    let (mut p, count) = t.login();
    assert_eq!(
        count, 0,
        "a FIFO neither hangs the login nor gets bulletins"
    );
    p.cmd("QUIT");
    assert!(
        t.sb.trace().contains("is not a regular file"),
        "{}",
        t.sb.trace()
    );
}

#[test]
fn an_unreadable_bulletin_directory_is_logged_and_login_goes_on() {
    let t = Bulls::new("bull-nodir", &["set bulldir = /nonexistent-bulls"]);
    let mail = vec![Message::new("a@example.com", "mail", "hello")];
    t.sb.write_spool(&t.u, &mbox(&mail));
    let (mut p, count) = t.login();
    assert_eq!(count, 1);
    p.cmd("QUIT");
    assert!(
        t.sb.trace()
            .contains("Unable to open bulletin directory '/nonexistent-bulls'. (No such file or directory, errno 2)"),
        "{}",
        t.sb.trace()
    );
    assert_eq!(t.popbull(), None);
}

#[test]
fn a_bulletin_deleted_by_the_client_stays_deleted() {
    let t = Bulls::new("bull-dele", &[]);
    t.add("7.maintenance", &bulletin(7, "maintenance"));
    let files = poplib(&t.sb, t.port, &t.u, &["--dele"]);
    assert_eq!(
        String::from_utf8_lossy(&files["stat.txt"])
            .split(' ')
            .next(),
        Some("1")
    );
    let got = &files["1.msg"];
    assert!(String::from_utf8_lossy(got).contains("Bulletin 7: maintenance."));
    let (mut p, count) = t.login();
    assert_eq!(count, 0, "not delivered again");
    p.cmd("QUIT");
    assert_eq!(t.sb.read_spool(&t.u), b"");
}

#[test]
fn the_b_flag_names_the_directory_and_wins_over_the_file() {
    let u = user("pt_bull");
    let mut sb = Sandbox::new("bull-flag");
    let home = sb.private_home(&u);
    let dir = sb.dir.join("flag-bulls");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("1.flag"), bulletin(1, "flag")).unwrap();
    sb.set("set bulldir = /nonexistent-bulls");
    let dir_arg = dir.display().to_string();
    let input = format!("{}STAT\r\nQUIT\r\n", crate::login_lines(&u));
    let (out, code) = crate::piped(&sb, &["-b", &dir_arg], input.as_bytes());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("+OK {} has 1 message", u.name)),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(home.join(".popbull")).unwrap(),
        "1\n"
    );
    let out = std::process::Command::new(popper_e2e::bins::popper())
        .args(["-b", &dir_arg, "-V"])
        .output_within(LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("features: bulletins"), "{text}");
    assert!(
        text.contains(&format!("bulldir = {dir_arg}\nmax-bulletins = 1\n")),
        "{text}"
    );
}

#[test]
fn the_bulletin_free_build_refuses_b_and_the_settings_clearly() {
    let popper = popper_e2e::bins::popper_no_bulletins();
    let out = std::process::Command::new(&popper)
        .args(["-s", "-b", "/var/spool/bulls"])
        .output_within(LIMIT);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "popper: -b: this popper was built without bulletins (Cargo feature \"bulletins\")\nUsage: popper"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let conf = std::env::temp_dir().join(format!("popper-nobull-{}.conf", std::process::id()));
    std::fs::write(&conf, "set timeout = 60\nset bulldir = /var/spool/bulls\n").unwrap();
    let out = std::process::Command::new(&popper)
        .arg("-f")
        .arg(&conf)
        .output_within(LIMIT);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2: this popper was built without bulletins",
            conf.display()
        )),
        "{err}"
    );
    std::fs::remove_file(&conf).unwrap();
    let out = std::process::Command::new(&popper)
        .arg("-V")
        .output_within(LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("features: (none)\n"), "{text}");
    assert!(!text.contains("bulldir"), "{text}");
    // No bulletin code at all: not even its log texts are in the binary.
    let bytes = std::fs::read(&popper).unwrap();
    for needle in [&b"does not start with a valid"[..], b".popbull"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} found in the bulletin-free build",
            String::from_utf8_lossy(needle)
        );
    }
    // And it serves mail as usual.
    let u = user("pt_bull");
    let sb = Sandbox::new("bull-free");
    sb.write_spool(&u, &mbox(&[Message::new("a@example.com", "m", "x")]));
    let input = format!("{}STAT\r\nQUIT\r\n", crate::login_lines(&u));
    let out = sb.pipe(&popper, &sb.popper_args(&[]), input.as_bytes());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+OK 1 "), "{text}");
}

/// The bulletin example of the README, as an administrator would paste
/// it: the text between `<<'END'` and `END` of the here-document written
/// into `/var/spool/bulls/` (the README has other here-documents).
fn readme_bulletin() -> (String, String) {
    let readme = std::fs::read_to_string(popper_e2e::bins::root().join("README.md")).unwrap();
    let at = readme
        .match_indices("<<'END'\n")
        .map(|(i, _)| i)
        .find(|&i| {
            readme[..i]
                .rsplit('\n')
                .next()
                .is_some_and(|l| l.contains("/var/spool/bulls/"))
        })
        .expect("the README's bulletin example");
    let (head, rest) = (&readme[..at], &readme[at + "<<'END'\n".len()..]);
    let name = head
        .rsplit("/var/spool/bulls/")
        .next()
        .unwrap()
        .trim()
        .to_string();
    let text = rest.split_once("\nEND\n").unwrap().0.to_string() + "\n";
    (name, text)
}

#[test]
fn the_readme_bulletin_arrives_as_the_readme_says() {
    // Regression (issue 19): the README said To: is rewritten, and its
    // example had no To: line (none is added).
    let t = Bulls::new("bull-readme", &["set max-bulletins = 2"]);
    let (name, text) = readme_bulletin();
    assert!(
        text.contains("\nTo: "),
        "the example has a To: line:\n{text}"
    );
    t.add(&name, &text);
    let number: u32 = name.split('.').next().unwrap().parse().unwrap();
    t.add(
        &format!("{}.no_to", number + 1),
        &format!("{ENVELOPE}\nFrom: root\nSubject: no To\n\nNo To: line.\n"),
    );
    let (mut p, count) = t.login();
    assert_eq!(count, 2);
    let (_, readme) = p.multi("RETR 1");
    let readme = String::from_utf8(lf(&unstuff(&readme))).unwrap();
    assert!(
        readme.contains(&format!("\nTo: {}\n", t.to())) && !readme.contains("To: all users"),
        "{readme}"
    );
    assert!(
        readme.contains("Subject: POP server down on Sunday"),
        "{readme}"
    );
    let (_, no_to) = p.multi("RETR 2");
    let no_to = String::from_utf8(lf(&unstuff(&no_to))).unwrap();
    assert!(
        no_to.contains("Subject: no To") && !no_to.lines().any(|l| l.starts_with("To:")),
        "{no_to}"
    );
    p.cmd("QUIT");
}
