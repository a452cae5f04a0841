//! Update tests: sessions' marks applied to real spool files.
//!
//! Every test works on a spool in its own temporary directory. The marks
//! come from a real protocol [`Session`] (USER, PASS, the commands, QUIT),
//! and every result is compared byte for byte with an independent model of
//! qpopper's write-back (qpopper.md §9.6 step 5, §15.6).
//!
//! Tests named `bug_*` document real bugs in non-test code: they fail
//! until the code is fixed (see the comment on each).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::maildrop::CommitStats;
use crate::maildrop::error::MaildropError;
use crate::maildrop::mbox::journal::{HEADER_LEN, Header, Journal};
use crate::maildrop::mbox::lock::LockConfig;
use crate::maildrop::mbox::recover;
use crate::maildrop::mbox::scan::{self, Format, Scan};
use crate::privilege::Dropped;
use pop3_core::capa::Capabilities;
use pop3_core::greeting::Greeting;
use pop3_core::index::{Index, MsgIdx};
use pop3_core::marks::Marks;
use pop3_core::reply::Reply;
use pop3_core::sasl::Nonces;
use pop3_core::session::{Session, SessionConfig, Step};

// ---------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------

const ENV: &str = "From sender@example.com Wed Dec  2 05:53:22 1992\n";

/// The mailbox of qpopper.md §15.6 (147 bytes).
const SPEC: &[u8] = b"From alice@example.com Wed Dec  2 05:53:22 1992\nDate: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\n\nHello\n.dot line\n\n";

/// What §15.6 says the spool becomes after `RETR 1`, `QUIT` (199 bytes).
const SPEC_AFTER_RETR: &[u8] = b"From alice@example.com Wed Dec  2 05:53:22 1992\nX-UIDL: 77ffa6bafb637ac9774fa2615b3b449b\nDate: Wed, 2 Dec 1992 05:53:22 -0800\nFrom: Alice <alice@example.com>\nSubject: hi\nStatus: RO\n\nHello\n.dot line\n\n";

/// A plain message without `X-UIDL:` or `Status:`, ending in an empty line.
fn msg(i: usize) -> Vec<u8> {
    format!(
        "{ENV}Date: Wed, 2 Dec 1992 05:53:{:02} -0800\nFrom: Sender <sender@example.com>\nSubject: message {i}\n\nBody of message {i}\n.dot line\n\n",
        i % 60
    )
    .into_bytes()
}

/// A message whose `Status:` header says it was read (no `X-UIDL:`).
fn read_msg(i: usize) -> Vec<u8> {
    format!("{ENV}Subject: read message {i}\nStatus: RO\n\nBody {i}\n\n").into_bytes()
}

/// A message received during the session (by a delivery agent).
fn new_mail(i: usize) -> Vec<u8> {
    format!(
        "From postmaster@example.org Thu Dec  3 07:00:00 1992\nSubject: new mail {i}\n\nArrived during the session {i}\n\n"
    )
    .into_bytes()
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// An independent model of qpopper 2.53's write-back of one kept message
/// (qpopper.md §9.6 step 5), for LF-only messages without continuation
/// lines: the envelope, `X-UIDL: uid`, the header without any `X-UIDL:`
/// line and with its first `Status:` line replaced by `Status: RO` when
/// `read`; `Status: RO`/`Status: U` inserted before the blank line when
/// there was none; then the rest verbatim.
fn model_wb(m: &[u8], uid: &[u8], read: bool) -> Vec<u8> {
    let mut lines = m.split_inclusive(|b| *b == b'\n');
    let env = lines.next().expect("an envelope");
    let mut out = env.to_vec();
    out.extend_from_slice(b"X-UIDL: ");
    out.extend_from_slice(uid);
    out.push(b'\n');
    let mut in_header = true;
    let mut status = false;
    for l in lines {
        if !in_header {
            out.extend_from_slice(l);
            continue;
        }
        let lower = l.to_ascii_lowercase();
        if l == b"\n" {
            if !status {
                out.extend_from_slice(if read {
                    b"Status: RO\n"
                } else {
                    b"Status: U\n"
                });
            }
            in_header = false;
            out.extend_from_slice(l);
            continue;
        }
        if lower.starts_with(b"x-uidl:") {
            continue;
        }
        if !status && lower.starts_with(b"status:") {
            status = true;
            if read {
                out.extend_from_slice(b"Status: RO\n");
                continue;
            }
        }
        out.extend_from_slice(l);
    }
    assert!(
        !in_header,
        "model_wb needs a header that ends in an empty line"
    );
    out
}

fn lock_config(timeout: Duration) -> LockConfig {
    LockConfig {
        stale_age: Duration::from_secs(300),
        timeout,
        host: "test".into(),
    }
}

/// A spool in a fresh temporary directory, open read+write like the one
/// `MboxDrop::open` holds. The directory is removed when it is dropped.
struct Fx {
    dir: PathBuf,
    spool: PathBuf,
    journal: PathBuf,
    file: File,
    locks: LockConfig,
}

impl Fx {
    fn new(content: &[u8]) -> Fx {
        let dir = std::env::temp_dir().join(format!(
            "popper-update-test-{}-{:016x}",
            std::process::id(),
            crate::sys::random_u64()
        ));
        std::fs::create_dir(&dir).unwrap();
        let spool = dir.join("u");
        std::fs::write(&spool, content).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&spool)
            .unwrap();
        Fx {
            journal: dir.join(".u.pop.journal"),
            dir,
            spool,
            file,
            locks: lock_config(Duration::from_secs(2)),
        }
    }

    fn scan(&self) -> Scan {
        let len = self.file.metadata().unwrap().len();
        scan::scan(&self.file, len).unwrap()
    }

    fn read(&self) -> Vec<u8> {
        std::fs::read(&self.spool).unwrap()
    }

    /// Appends bytes to the spool as a delivery agent would.
    fn deliver(&self, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(&self.spool).unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
    }

    fn target(&self, update_status: bool) -> Target<'_> {
        Target {
            spool_path: &self.spool,
            file: &self.file,
            journal_path: &self.journal,
            locks: &self.locks,
            update_status,
        }
    }

    fn update(
        &self,
        scan: &Scan,
        index: &Index,
        marks: &Marks,
        update_status: bool,
    ) -> (Result<CommitStats, MaildropError>, Vec<String>) {
        assert_same_index(scan, index);
        let mut notes = Vec::new();
        let r = update(&self.target(update_status), scan, marks, &mut notes);
        (r, notes)
    }

    /// A whole session: scan, the commands, QUIT, update.
    fn session(&self, cmds: &[&str], update_status: bool) -> (Scan, Index, CommitStats) {
        let scan = self.scan();
        let (index, marks) = session_marks(&scan, cmds);
        let (r, notes) = self.update(&scan, &index, &marks, update_status);
        let stats = r.unwrap_or_else(|e| panic!("update failed: {e:?} ({notes:?})"));
        assert!(notes.is_empty(), "unexpected notes: {notes:?}");
        (scan, index, stats)
    }

    /// No dotlock, no journal, no temporary lock file is left: only these
    /// names remain in the directory.
    fn assert_only(&self, names: &[&str]) {
        let mut got: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "files left in the spool directory");
    }

    fn assert_clean(&self) {
        self.assert_only(&["u"]);
    }

    /// An empty session lock file `.u.pop`, open read+write.
    fn session_file(&self) -> (PathBuf, File) {
        let p = self.dir.join(".u.pop");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&p)
            .unwrap();
        (p, f)
    }

    fn recover(
        &self,
        session_path: &Path,
        session_file: &File,
        spool: &mut Option<File>,
        // Whether the dead popper's dotlock was still there: recovery no
        // longer relies on it, but the cases still say which they model.
        _orphan_pid: Option<u32>,
    ) -> (Result<bool, MaildropError>, Vec<String>) {
        let ctx = recover::Ctx {
            spool_path: &self.spool,
            journal_path: &self.journal,
            session_file,
            session_path,
            owner: &Dropped::current_for_tests(),
            record: None,
        };
        let mut notes = Vec::new();
        let r = recover::recover(&ctx, spool, &mut notes);
        (r, notes)
    }

    /// Recovery must refuse (`RecoveryNeeded`): the spool left exactly as
    /// it is now and the journal exactly as it is, for the administrator.
    fn assert_left_for_the_administrator(&self, orphan_pid: Option<u32>, what: &str) {
        let spool_before = self.read();
        let journal_before = std::fs::read(&self.journal).unwrap();
        let (sp, sf) = self.session_file();
        let mut spool = Some(self.file.try_clone().unwrap());
        let (r, notes) = self.recover(&sp, &sf, &mut spool, orphan_pid);
        assert!(
            matches!(r, Err(MaildropError::RecoveryNeeded { .. })),
            "{what}: {r:?} {notes:?}"
        );
        assert_bytes(&self.read(), &spool_before);
        assert_eq!(
            std::fs::read(&self.journal).unwrap(),
            journal_before,
            "{what}: the journal is kept as it was"
        );
    }

    /// Steps 1–3 of the update protocol and no further: a committed
    /// journal for this session's change, as the update writes it, with
    /// the spool not yet touched (a popper killed right at the commit
    /// point). Returns the header.
    fn committed_journal(&self, scan: &Scan, index: &Index, marks: &Marks) -> Header {
        let (j, h) = self.journal_with_tail(scan, index, marks);
        j.commit(&h).unwrap();
        h
    }

    /// Steps 1–2: the journal holds the tail but no header (not committed).
    fn journal_with_tail(&self, scan: &Scan, index: &Index, marks: &Marks) -> (Journal, Header) {
        assert_same_index(scan, index);
        let t = self.target(true);
        let k = (0..index.len())
            .find(|&i| {
                marks.is_deleted(MsgIdx(i))
                    || (marks.is_retrieved(MsgIdx(i)) && !scan.msgs[i].meta.seen)
            })
            .expect("the session changed something");
        let md = self.file.metadata().unwrap();
        let j = Journal::create(&self.journal).unwrap();
        let h = write_tail(&t, scan, marks, k, &j, (md.dev(), md.ino()), md.len()).unwrap();
        (j, h)
    }

    /// The tail stored in the journal.
    fn journal_tail(&self, h: &Header) -> Vec<u8> {
        let all = std::fs::read(&self.journal).unwrap();
        let tail = all[HEADER_LEN as usize..].to_vec();
        assert_eq!(tail.len() as u64, h.tail_len);
        tail
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The index the session is given is the one the maildrop reports for
/// this scan (the UIDs the update writes back are the ones shown).
fn assert_same_index(scan: &Scan, index: &Index) {
    assert_eq!(index, &Index::new(super::super::entries(scan)));
}

/// A reply or a message sent; for a message, which and how (the loop
/// reports it sent to the session once its terminator is written).
fn expect_reply(step: Step<'_>, what: &str) -> Option<(MsgIdx, Option<u64>)> {
    match step {
        Step::Reply(Reply::Err(e)) => panic!("{what}: -ERR {e:?}"),
        Step::Reply(_) => None,
        Step::Send {
            msg, body_lines, ..
        } => Some((msg, body_lines)),
        other => panic!("{what}: unexpected step {other:?}"),
    }
}

/// Runs a real protocol session over the index built from `scan`:
/// USER, PASS, `cmds`, QUIT. Returns the index and marks of the commit.
fn session_marks(scan: &Scan, cmds: &[&str]) -> (Index, Marks) {
    let index = Index::new(super::super::entries(scan));
    let cfg = SessionConfig::new(
        Greeting::new("test.example", "0.0.0", false, None),
        Capabilities::new(false, "0.0.0"),
        Nonces::new([0; 32]),
    );
    let mut s = Session::new(cfg);
    expect_reply(s.on_line(b"USER u"), "USER");
    match s.on_line(b"PASS secret") {
        Step::Authenticate(_) => {}
        other => panic!("PASS: {other:?}"),
    }
    expect_reply(s.on_auth(Ok(index.clone().into())), "login");
    for c in cmds {
        if let Some((msg, body_lines)) = expect_reply(s.on_line(c.as_bytes()), c) {
            s.on_sent(msg, body_lines);
        }
    }
    match s.on_line(b"QUIT") {
        Step::Commit { before: None } => {}
        other => panic!("QUIT: {other:?}"),
    }
    let (i, marks) = s.commit_marks().expect("committing");
    assert_eq!(i, &index);
    (index.clone(), marks.clone())
}

fn uids(index: &Index) -> Vec<Vec<u8>> {
    index
        .entries()
        .iter()
        .map(|e| e.uid.as_bytes().to_vec())
        .collect()
}

fn rescan_index(fx: &Fx) -> Index {
    let s = fx.scan();
    Index::new(super::super::entries(&s))
}

fn uid(index: &Index, i: usize) -> Vec<u8> {
    index.entries()[i].uid.as_bytes().to_vec()
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Byte equality with a readable diff for small spools.
#[track_caller]
fn assert_bytes(got: &[u8], want: &[u8]) {
    if got != want {
        if got.len() < 20_000 && want.len() < 20_000 {
            assert_eq!(show(got), show(want));
        }
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "bytes differ: got {} bytes, want {} bytes, first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

// ---------------------------------------------------------------------
// 1–4: sessions that must write nothing
// ---------------------------------------------------------------------

#[test]
fn nothing_changed_writes_nothing_and_takes_no_lock() {
    let orig = cat(&[msg(1), msg(2), msg(3)]);
    let fx = Fx::new(&orig);
    // Back-date the spool so a write would visibly move its mtime.
    fx.file
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let before = fx.file.metadata().unwrap();
    // A foreign, fresh dotlock: an update that takes the spool locks would
    // wait for it and time out; one that writes nothing never looks.
    std::fs::write(fx.dir.join("u.lock"), b"4242\n").unwrap();
    let (_, _, stats) = fx.session(&["STAT", "LIST", "UIDL", "TOP 1 0", "TOP 2 5"], true);
    assert_eq!(stats.bytes_written, 0);
    assert_bytes(&fx.read(), &orig);
    let after = fx.file.metadata().unwrap();
    assert_eq!(
        (after.mtime(), after.mtime_nsec(), after.ino()),
        (before.mtime(), before.mtime_nsec(), before.ino())
    );
    assert_eq!(
        std::fs::read(fx.dir.join("u.lock")).unwrap(),
        b"4242\n",
        "foreign dotlock untouched"
    );
    fx.assert_only(&["u", "u.lock"]);
}

#[test]
fn retr_of_an_already_read_message_writes_nothing() {
    let orig = cat(&[read_msg(1), read_msg(2), msg(3)]);
    let fx = Fx::new(&orig);
    let before = fx.file.metadata().unwrap();
    let (scan, _, stats) = fx.session(&["RETR 1", "RETR 2"], true);
    assert!(scan.msgs[0].meta.seen && scan.msgs[1].meta.seen && !scan.msgs[2].meta.seen);
    assert_eq!(stats.bytes_written, 0);
    assert_bytes(&fx.read(), &orig);
    let after = fx.file.metadata().unwrap();
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec())
    );
    fx.assert_clean();
}

#[test]
fn rset_undoes_deletions_and_reads() {
    let orig = cat(&[msg(1), msg(2)]);
    let fx = Fx::new(&orig);
    let (_, _, stats) = fx.session(&["DELE 1", "RETR 2", "RSET"], true);
    assert_eq!(stats.bytes_written, 0);
    assert_bytes(&fx.read(), &orig);
    fx.assert_clean();
}

#[test]
fn without_update_status_a_retr_writes_nothing() {
    let orig = cat(&[msg(1), msg(2)]);
    let fx = Fx::new(&orig);
    let (_, _, stats) = fx.session(&["RETR 1", "RETR 2"], false);
    assert_eq!(stats.bytes_written, 0);
    assert_bytes(&fx.read(), &orig);
    fx.assert_clean();
}

#[test]
fn empty_spool_with_nothing_to_do() {
    let fx = Fx::new(b"");
    let (scan, index, stats) = fx.session(&["STAT"], true);
    assert!(scan.msgs.is_empty() && index.is_empty());
    assert_eq!(stats.bytes_written, 0);
    assert_eq!(fx.read(), b"");
    fx.assert_clean();
}

// ---------------------------------------------------------------------
// 3: qpopper.md §15.6
// ---------------------------------------------------------------------

#[test]
fn qpopper_round_trip_vector_retr() {
    let fx = Fx::new(SPEC);
    let (scan, index, stats) = fx.session(&["RETR 1"], true);
    assert_eq!(scan.len, 147);
    assert_eq!(uid(&index, 0), b"77ffa6bafb637ac9774fa2615b3b449b");
    assert_eq!(index.entries()[0].size, 148);
    assert_eq!(stats.bytes_written, 199);
    let got = fx.read();
    assert_eq!(got.len(), 199);
    assert_bytes(&got, SPEC_AFTER_RETR);
    fx.assert_clean();
    // Next session: same UID, size 160, read (LAST says 1).
    let next = rescan_index(&fx);
    assert_eq!(uids(&next), uids(&index));
    assert_eq!(next.entries()[0].size, 160);
    assert!(next.entries()[0].seen);
    // And a session that reads it again changes nothing.
    let (_, _, stats) = fx.session(&["RETR 1"], true);
    assert_eq!(stats.bytes_written, 0);
    assert_bytes(&fx.read(), SPEC_AFTER_RETR);
}

#[test]
fn qpopper_round_trip_vector_dele() {
    // §15.6: `DELE 1`, `QUIT`: the spool is left empty.
    let fx = Fx::new(SPEC);
    let (_, _, stats) = fx.session(&["DELE 1"], true);
    assert_eq!(stats.bytes_written, 0);
    assert_eq!(fx.read(), b"");
    fx.assert_clean();
}

#[test]
fn unread_message_after_a_deletion_gets_status_u_size_159() {
    // §15.6 "Same but QUIT without RETR: Status: U is inserted; next size 159",
    // exercised by deleting a message in front of it.
    let orig = cat(&[msg(1), SPEC.to_vec()]);
    let fx = Fx::new(&orig);
    let (_, index, stats) = fx.session(&["DELE 1"], true);
    let want = String::from_utf8(SPEC_AFTER_RETR.to_vec())
        .unwrap()
        .replace("Status: RO", "Status: U");
    assert_eq!(stats.bytes_written, want.len() as u64);
    assert_bytes(&fx.read(), want.as_bytes());
    let next = rescan_index(&fx);
    assert_eq!(uids(&next), vec![uid(&index, 1)]);
    assert_eq!(next.entries()[0].size, 159);
    assert!(!next.entries()[0].seen);
    fx.assert_clean();
}

// ---------------------------------------------------------------------
// 5–7: deletions
// ---------------------------------------------------------------------

#[test]
fn dele_everything_truncates_to_zero() {
    let orig = cat(&[msg(1), msg(2), msg(3)]);
    let fx = Fx::new(&orig);
    // The truncate path uses no journal: a file in the journal's place does
    // not stop it (the journal path would fail with EEXIST).
    std::fs::write(&fx.journal, b"blocker").unwrap();
    let (_, _, stats) = fx.session(&["DELE 1", "DELE 2", "RETR 3", "DELE 3"], true);
    assert_eq!(stats.bytes_written, 0);
    assert_eq!(fx.file.metadata().unwrap().len(), 0);
    assert_eq!(fx.read(), b"");
    fx.assert_only(&["u", ".u.pop.journal"]);
}

#[test]
fn dele_the_last_two_of_five_truncates() {
    let m: Vec<Vec<u8>> = (1..=5).map(msg).collect();
    let orig = cat(&m);
    let fx = Fx::new(&orig);
    std::fs::write(&fx.journal, b"blocker").unwrap();
    let (scan, _, stats) = fx.session(&["DELE 5", "DELE 4"], true);
    assert_eq!(stats.bytes_written, 0);
    // Cut at the start of message 4; messages 1–3 untouched (no X-UIDL added).
    assert_eq!(fx.file.metadata().unwrap().len(), scan.msgs[3].start);
    assert_bytes(&fx.read(), &cat(&m[..3]));
    fx.assert_only(&["u", ".u.pop.journal"]);
}

#[test]
fn dele_message_2_of_5_rewrites_from_there() {
    let m: Vec<Vec<u8>> = (1..=5).map(msg).collect();
    let fx = Fx::new(&cat(&m));
    let (_, index, stats) = fx.session(&["DELE 2"], true);
    let mut want = m[0].clone();
    for i in [2, 3, 4] {
        want.extend(model_wb(&m[i], &uid(&index, i), false));
    }
    assert_bytes(&fx.read(), &want);
    assert_eq!(stats.bytes_written, (want.len() - m[0].len()) as u64);
    fx.assert_clean();
    // The next login sees the same UIDs, and sizes grown by `Status: U` CRLF.
    let next = rescan_index(&fx);
    assert_eq!(next.len(), 4);
    let kept = [0, 2, 3, 4];
    assert_eq!(
        uids(&next),
        kept.iter().map(|&i| uid(&index, i)).collect::<Vec<_>>()
    );
    assert_eq!(next.entries()[0].size, index.entries()[0].size);
    for (n, &i) in kept.iter().enumerate().skip(1) {
        assert_eq!(
            next.entries()[n].size,
            index.entries()[i].size + 11,
            "message {}",
            i + 1
        );
    }
}

#[test]
fn retr_of_an_unread_message_rewrites_from_it_with_status_ro() {
    let m: Vec<Vec<u8>> = (1..=4).map(msg).collect();
    let fx = Fx::new(&cat(&m));
    let (_, index, _) = fx.session(&["RETR 3", "TOP 4 1"], true);
    let want = cat(&[
        m[0].clone(),
        m[1].clone(),
        model_wb(&m[2], &uid(&index, 2), true),
        model_wb(&m[3], &uid(&index, 3), false),
    ]);
    assert_bytes(&fx.read(), &want);
    let next = rescan_index(&fx);
    assert_eq!(uids(&next), uids(&index));
    assert_eq!(
        next.entries().iter().map(|e| e.seen).collect::<Vec<_>>(),
        [false, false, true, false]
    );
    fx.assert_clean();
}

#[test]
fn written_back_messages_are_moved_unchanged_next_time() {
    let m: Vec<Vec<u8>> = (1..=4).map(msg).collect();
    let fx = Fx::new(&cat(&m));
    let (_, index, _) = fx.session(&["DELE 1"], true);
    let once = fx.read();
    // Second session: delete the (written-back) first message; the others
    // are already in qpopper's form and must come out byte-identical.
    let (_, index2, _) = fx.session(&["DELE 1"], true);
    assert_eq!(uids(&index2), uids(&index)[1..].to_vec());
    let wb1 = model_wb(&m[1], &uid(&index, 1), false);
    assert_bytes(&fx.read(), &once[wb1.len()..]);
    // Third session: RETR of a `Status: U` message replaces that line.
    let (_, index3, _) = fx.session(&["RETR 2"], true);
    let want = cat(&[
        model_wb(&m[2], &uid(&index, 2), false),
        model_wb(&m[3], &uid(&index, 3), true),
    ]);
    assert_bytes(&fx.read(), &want);
    assert_eq!(uids(&rescan_index(&fx)), uids(&index3));
    fx.assert_clean();
}

#[test]
fn existing_status_and_uidl_headers_are_rewritten() {
    let m1 = msg(1);
    let m2 = format!("{ENV}X-Spam: no\nX-UIDL: old-uid-2\nSubject: two\nStatus: O\n\nbody\nX-UIDL: not a header\n\n").into_bytes();
    let m3 =
        format!("{ENV}Subject: three\nx-uidl: old-uid-3\nX-UIDL: second\nStatus: RO\n\nbody 3\n\n")
            .into_bytes();
    let fx = Fx::new(&cat(&[m1, m2.clone(), m3.clone()]));
    let (_, index, _) = fx.session(&["DELE 1", "RETR 2"], true);
    assert_eq!(uid(&index, 1), b"old-uid-2");
    assert_eq!(uid(&index, 2), b"old-uid-3");
    let want = cat(&[
        model_wb(&m2, b"old-uid-2", true),
        model_wb(&m3, b"old-uid-3", false),
    ]);
    assert_bytes(
        &want,
        format!("{ENV}X-UIDL: old-uid-2\nX-Spam: no\nSubject: two\nStatus: RO\n\nbody\nX-UIDL: not a header\n\n{ENV}X-UIDL: old-uid-3\nSubject: three\nStatus: RO\n\nbody 3\n\n").as_bytes(),
    );
    assert_bytes(&fx.read(), &want);
    assert_eq!(uids(&rescan_index(&fx)), uids(&index)[1..].to_vec());
    fx.assert_clean();
}

#[test]
fn without_update_status_deletions_move_messages_verbatim() {
    let m: Vec<Vec<u8>> = (1..=4).map(msg).collect();
    let fx = Fx::new(&cat(&m));
    let (_, index, stats) = fx.session(&["DELE 2", "RETR 3"], false);
    assert_bytes(
        &fx.read(),
        &cat(&[m[0].clone(), m[2].clone(), m[3].clone()]),
    );
    assert_eq!(stats.bytes_written, (m[2].len() + m[3].len()) as u64);
    let kept: Vec<Vec<u8>> = [0, 2, 3].iter().map(|&i| uid(&index, i)).collect();
    assert_eq!(uids(&rescan_index(&fx)), kept);
    fx.assert_clean();
}

// ---------------------------------------------------------------------
// 8: mail delivered during the session
// ---------------------------------------------------------------------

#[test]
fn mail_delivered_during_the_session_is_kept_after_the_rewrite() {
    let m: Vec<Vec<u8>> = (1..=3).map(msg).collect();
    let fx = Fx::new(&cat(&m));
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, &["DELE 1"]);
    let delivered = cat(&[new_mail(1), new_mail(2)]);
    fx.deliver(&delivered);
    let (r, notes) = fx.update(&scan, &index, &marks, true);
    let stats = r.unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let want = cat(&[
        model_wb(&m[1], &uid(&index, 1), false),
        model_wb(&m[2], &uid(&index, 2), false),
        delivered.clone(),
    ]);
    assert_bytes(&fx.read(), &want);
    assert_eq!(stats.bytes_written, want.len() as u64);
    // The new mail is there exactly once, as the last two messages.
    let next = rescan_index(&fx);
    assert_eq!(next.len(), 4);
    assert_eq!(uids(&next)[..2], uids(&index)[1..]);
    fx.assert_clean();
}

#[test]
fn mail_delivered_during_the_session_survives_deleting_everything() {
    let fx = Fx::new(&cat(&[msg(1), msg(2)]));
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, &["DELE 1", "DELE 2"]);
    fx.deliver(&new_mail(1));
    let (r, _) = fx.update(&scan, &index, &marks, true);
    assert_eq!(r.unwrap().bytes_written, new_mail(1).len() as u64);
    assert_bytes(&fx.read(), &new_mail(1));
    fx.assert_clean();
}

#[test]
fn mail_delivered_during_the_session_after_a_truncatable_deletion() {
    // Deleting the last message would be a truncate, but mail arrived:
    // the new mail moves down to where the deleted message began.
    let m: Vec<Vec<u8>> = (1..=3).map(msg).collect();
    let fx = Fx::new(&cat(&m));
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, &["DELE 3"]);
    fx.deliver(&new_mail(7));
    let (r, _) = fx.update(&scan, &index, &marks, true);
    assert_eq!(r.unwrap().bytes_written, new_mail(7).len() as u64);
    assert_bytes(&fx.read(), &cat(&[m[0].clone(), m[1].clone(), new_mail(7)]));
    fx.assert_clean();
}

#[test]
fn mail_delivered_during_a_read_only_session_is_left_alone() {
    let orig = cat(&[msg(1), msg(2)]);
    let fx = Fx::new(&orig);
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, &["LIST"]);
    fx.deliver(&new_mail(1));
    let (r, _) = fx.update(&scan, &index, &marks, true);
    assert_eq!(r.unwrap().bytes_written, 0);
    assert_bytes(&fx.read(), &cat(&[orig, new_mail(1)]));
    fx.assert_clean();
}

// ---------------------------------------------------------------------
// 9: the spool changed under us
// ---------------------------------------------------------------------

/// Runs `cmds` on `orig`, lets `other` rewrite the spool after the login
/// scan, and checks that the update refuses with `Changed` and leaves what
/// the other program wrote.
fn assert_changed_under_us(orig: &[u8], cmds: &[&str], other: &dyn Fn(&Fx) -> Vec<u8>) {
    let fx = Fx::new(orig);
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, cmds);
    let theirs = other(&fx);
    let (r, _) = fx.update(&scan, &index, &marks, true);
    assert!(
        matches!(r, Err(MaildropError::Changed { .. })),
        "{cmds:?}: {r:?}"
    );
    assert_bytes(&fx.read(), &theirs);
    fx.assert_clean();
}

#[test]
fn envelope_moved_same_length_is_refused() {
    let m: Vec<Vec<u8>> = (1..=3).map(msg).collect();
    let orig = cat(&m);
    // Another program added a header to message 1 and cut the end: same
    // length, messages 2 and 3 moved by 12 bytes.
    let edit = |fx: &Fx| {
        let mut theirs = m[0].clone();
        theirs.splice(ENV.len()..ENV.len(), b"X-Spam: yes\n".iter().copied());
        theirs.extend(cat(&m[1..]));
        theirs.truncate(orig.len());
        std::fs::write(&fx.spool, &theirs).unwrap();
        theirs
    };
    for cmds in [
        &["DELE 1"][..],
        &["DELE 2"],
        &["RETR 3"],
        &["DELE 1", "DELE 2", "DELE 3"], // the truncate path
        &["DELE 2", "DELE 3"],           // the truncate path from message 2
    ] {
        assert_changed_under_us(&orig, cmds, &edit);
    }
}

#[test]
fn envelope_moved_longer_file_is_refused() {
    let m: Vec<Vec<u8>> = (1..=3).map(msg).collect();
    let orig = cat(&m);
    let edit = |fx: &Fx| {
        let mut theirs = m[0].clone();
        theirs.extend_from_slice(b"an extra body line\n");
        theirs.extend(cat(&m[1..]));
        theirs.extend(new_mail(1));
        std::fs::write(&fx.spool, &theirs).unwrap();
        theirs
    };
    for cmds in [
        &["DELE 1"][..],
        &["DELE 3"],
        &["RETR 2"],
        &["DELE 2", "DELE 3"],
    ] {
        assert_changed_under_us(&orig, cmds, &edit);
    }
}

#[test]
fn spool_shorter_than_at_login_is_refused() {
    let m: Vec<Vec<u8>> = (1..=3).map(msg).collect();
    let orig = cat(&m);
    let cut = |fx: &Fx| {
        let theirs = orig[..orig.len() - 1].to_vec();
        std::fs::write(&fx.spool, &theirs).unwrap();
        theirs
    };
    for cmds in [
        &["DELE 1"][..],
        &["DELE 3"],
        &["DELE 1", "DELE 2", "DELE 3"],
    ] {
        assert_changed_under_us(&orig, cmds, &cut);
    }
    // Emptied by another program (a mail reader that moved everything away).
    let empty = |fx: &Fx| {
        std::fs::write(&fx.spool, b"").unwrap();
        Vec::new()
    };
    assert_changed_under_us(&orig, &["DELE 2"], &empty);
}

#[test]
fn spool_replaced_by_another_file_is_refused() {
    let m: Vec<Vec<u8>> = (1..=3).map(msg).collect();
    let orig = cat(&m);
    // A mail reader wrote a new file and renamed it over the spool, with
    // the same bytes: it is still not the file we scanned.
    let replace = |fx: &Fx| {
        let tmp = fx.dir.join("u.tmp");
        std::fs::write(&tmp, &orig).unwrap();
        std::fs::rename(&tmp, &fx.spool).unwrap();
        orig.clone()
    };
    for cmds in [&["DELE 1"][..], &["DELE 3"], &["RETR 1"]] {
        assert_changed_under_us(&orig, cmds, &replace);
    }
}

// ---------------------------------------------------------------------
// 10: MMDF
// ---------------------------------------------------------------------

fn mmdf_msg(i: usize) -> Vec<u8> {
    format!("\x01\x01\x01\x01\nSubject: mmdf {i}\nDate: {i}\n\nbody {i}\n\x01\x01\x01\x01\n")
        .into_bytes()
}

#[test]
fn mmdf_dele_1_of_3_keeps_separators() {
    let m: Vec<Vec<u8>> = (1..=3).map(mmdf_msg).collect();
    let fx = Fx::new(&cat(&m));
    let scan = fx.scan();
    assert!(matches!(scan.format, Format::Mmdf(_)));
    let (_, index, _) = fx.session(&["DELE 1", "RETR 3"], true);
    let want = cat(&[
        model_wb(&m[1], &uid(&index, 1), false),
        model_wb(&m[2], &uid(&index, 2), true),
    ]);
    assert!(want.starts_with(b"\x01\x01\x01\x01\nX-UIDL: "));
    let got = fx.read();
    assert_bytes(&got, &want);
    assert_eq!(show(&got).matches("\x01\x01\x01\x01\n").count(), 4);
    let next = rescan_index(&fx);
    assert_eq!(uids(&next), uids(&index)[1..].to_vec());
    fx.assert_clean();
}

#[test]
fn mmdf_dele_last_truncates() {
    let m: Vec<Vec<u8>> = (1..=3).map(mmdf_msg).collect();
    let fx = Fx::new(&cat(&m));
    let (_, _, stats) = fx.session(&["DELE 3"], true);
    assert_eq!(stats.bytes_written, 0);
    assert_bytes(&fx.read(), &cat(&m[..2]));
    fx.assert_clean();
}

// ---------------------------------------------------------------------
// 11: duplicate UIDs
// ---------------------------------------------------------------------

#[test]
fn duplicate_messages_keep_their_session_uids() {
    let a = msg(10);
    let b = msg(20);
    // (spool, deleted message) — in each, the two copies of `a` hash alike.
    let cases: [(Vec<Vec<u8>>, &str); 3] = [
        (vec![b.clone(), a.clone(), a.clone()], "DELE 1"),
        (vec![a.clone(), b.clone(), a.clone()], "DELE 2"),
        (vec![a.clone(), a.clone(), b.clone()], "DELE 1"),
    ];
    for (parts, dele) in cases {
        let fx = Fx::new(&cat(&parts));
        let scan = fx.scan();
        let (index, _) = session_marks(&scan, &[]);
        let hashes: Vec<_> = scan.msgs.iter().map(|m| m.meta.uid.clone()).collect();
        let dups: Vec<usize> = (0..3).filter(|&i| parts[i] == a).collect();
        // The copies hash alike: the scan gives the second the first's
        // UID with `-2`, and the session shows that.
        assert_eq!(
            hashes[dups[1]].as_bytes(),
            [hashes[dups[0]].as_bytes(), b"-2"].concat(),
            "the copies hash alike"
        );
        assert_eq!(uid(&index, dups[1]), hashes[dups[1]].as_bytes());
        let (_, index, _) = fx.session(&[dele], true);
        let del: usize = dele[5..].parse::<usize>().unwrap() - 1;
        let kept: Vec<usize> = (0..3).filter(|&i| i != del).collect();
        // The written-back copy carries the de-duplicated UID.
        let text = show(&fx.read());
        assert!(
            text.contains(&format!("X-UIDL: {}\n", show(&uid(&index, dups[1])))),
            "{dele}: {text}"
        );
        let next = rescan_index(&fx);
        assert_eq!(
            uids(&next),
            kept.iter().map(|&i| uid(&index, i)).collect::<Vec<_>>(),
            "{dele}"
        );
        fx.assert_clean();
    }
}

// ---------------------------------------------------------------------
// 12: big messages
// ---------------------------------------------------------------------

fn big_body(bytes: usize, seed: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes + 100);
    let mut n = seed;
    while v.len() < bytes {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        v.extend_from_slice(
            format!("line {:08x} {}\n", n, "x".repeat((n % 70) as usize)).as_bytes(),
        );
    }
    v
}

#[test]
fn a_big_message_after_a_deleted_one_is_moved_exactly() {
    let m1 = msg(1);
    let big = cat(&[
        format!("{ENV}Subject: big\n\n").into_bytes(),
        big_body(3 << 20, 1),
        b"\n".to_vec(),
    ]);
    let m3 = msg(3);
    let fx = Fx::new(&cat(&[m1.clone(), big.clone(), m3.clone()]));
    let (_, index, stats) = fx.session(&["DELE 1"], true);
    let want = cat(&[
        model_wb(&big, &uid(&index, 1), false),
        model_wb(&m3, &uid(&index, 2), false),
    ]);
    assert_eq!(stats.bytes_written, want.len() as u64);
    assert_bytes(&fx.read(), &want);
    assert_eq!(uids(&rescan_index(&fx)), uids(&index)[1..].to_vec());
    // Again: now the big message is in its final form and copied as one range.
    let (_, _, _) = fx.session(&["DELE 2"], true);
    assert_bytes(&fx.read(), &model_wb(&big, &uid(&index, 1), false));
    fx.assert_clean();
}

#[test]
fn big_messages_and_big_new_mail_around_a_deletion() {
    let big1 = cat(&[
        format!("{ENV}Subject: big 1\n\n").into_bytes(),
        big_body(2 << 20, 2),
        b"\n".to_vec(),
    ]);
    let big2 = cat(&[
        format!("{ENV}Subject: big 2\n\n").into_bytes(),
        big_body(1 << 20, 3),
        b"\n".to_vec(),
    ]);
    let delivered = cat(&[
        b"From mailer@example.net Fri Dec  4 01:02:03 1992\nSubject: huge\n\n".to_vec(),
        big_body(3 << 20, 4),
        b"\n".to_vec(),
    ]);
    let fx = Fx::new(&cat(&[big1.clone(), msg(2), big2.clone()]));
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, &["DELE 2"]);
    fx.deliver(&delivered);
    let (r, _) = fx.update(&scan, &index, &marks, true);
    r.unwrap();
    let want = cat(&[big1, model_wb(&big2, &uid(&index, 2), false), delivered]);
    assert_bytes(&fx.read(), &want);
    fx.assert_clean();
}

// ---------------------------------------------------------------------
// Locks and failures
// ---------------------------------------------------------------------

#[test]
fn a_foreign_fresh_dotlock_makes_the_update_wait_and_give_up() {
    let orig = cat(&[msg(1), msg(2)]);
    let mut fx = Fx::new(&orig);
    fx.locks = lock_config(Duration::from_millis(300));
    std::fs::write(fx.dir.join("u.lock"), b"777\n").unwrap();
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, &["DELE 1"]);
    let (r, _) = fx.update(&scan, &index, &marks, true);
    assert!(matches!(r, Err(MaildropError::LockTimeout { .. })), "{r:?}");
    assert_bytes(&fx.read(), &orig);
    assert_eq!(std::fs::read(fx.dir.join("u.lock")).unwrap(), b"777\n");
    fx.assert_only(&["u", "u.lock"]);
}

#[test]
fn stale_and_orphaned_dotlocks_are_broken() {
    let m: Vec<Vec<u8>> = (1..=2).map(msg).collect();
    for (content, old) in [
        ("12345\n".to_string(), true),
        ("popper:test:999999\n".to_string(), false),
    ] {
        let fx = Fx::new(&cat(&m));
        let lock = fx.dir.join("u.lock");
        std::fs::write(&lock, &content).unwrap();
        if old {
            File::options()
                .write(true)
                .open(&lock)
                .unwrap()
                .set_modified(std::time::SystemTime::now() - Duration::from_secs(1000))
                .unwrap();
        }
        let scan = fx.scan();
        let (index, marks) = session_marks(&scan, &["DELE 1"]);
        let (r, notes) = fx.update(&scan, &index, &marks, true);
        r.unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("dotlock"), "{notes:?}");
        assert_bytes(&fx.read(), &model_wb(&m[1], &uid(&index, 1), false));
        fx.assert_clean();
    }
}

#[test]
fn a_journal_in_the_way_fails_cleanly() {
    let orig = cat(&[msg(1), msg(2)]);
    let fx = Fx::new(&orig);
    std::fs::write(&fx.journal, b"someone else's").unwrap();
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, &["DELE 1"]);
    let (r, _) = fx.update(&scan, &index, &marks, true);
    assert!(matches!(r, Err(MaildropError::Io { .. })), "{r:?}");
    assert_bytes(&fx.read(), &orig);
    assert_eq!(std::fs::read(&fx.journal).unwrap(), b"someone else's");
    fx.assert_only(&["u", ".u.pop.journal"]);
}

// ---------------------------------------------------------------------
// 13–14: recovery of an interrupted update
// ---------------------------------------------------------------------

/// A spool and a session whose update grows the spool (RETR 1: every
/// message gets its headers) or shrinks it (DELE of a long message 1).
fn recovery_case(grow: bool) -> (Fx, Scan, Index, Marks, Vec<u8>) {
    let m1 = if grow {
        msg(1)
    } else {
        cat(&[
            format!("{ENV}Subject: long\n\n").into_bytes(),
            big_body(2000, 9),
            b"\n".to_vec(),
        ])
    };
    let m: Vec<Vec<u8>> = vec![m1, msg(2), msg(3)];
    let fx = Fx::new(&cat(&m));
    let scan = fx.scan();
    let cmds: &[&str] = if grow { &["RETR 1"] } else { &["DELE 1"] };
    let (index, marks) = session_marks(&scan, cmds);
    let want = if grow {
        cat(&[
            model_wb(&m[0], &uid(&index, 0), true),
            model_wb(&m[1], &uid(&index, 1), false),
            model_wb(&m[2], &uid(&index, 2), false),
        ])
    } else {
        cat(&[
            model_wb(&m[1], &uid(&index, 1), false),
            model_wb(&m[2], &uid(&index, 2), false),
        ])
    };
    (fx, scan, index, marks, want)
}

#[test]
fn recovery_cases_grow_and_shrink() {
    // Sanity of the fixture: the update really grows / shrinks the spool.
    for grow in [true, false] {
        let (fx, scan, index, marks, want) = recovery_case(grow);
        assert_eq!((want.len() as u64) > scan.len, grow);
        let (r, _) = fx.update(&scan, &index, &marks, true);
        r.unwrap();
        assert_bytes(&fx.read(), &want);
        fx.assert_clean();
    }
}

#[test]
fn committed_journal_with_the_spool_untouched_is_rolled_forward() {
    for grow in [true, false] {
        for dotlock_left in [true, false] {
            let (fx, scan, index, marks, want) = recovery_case(grow);
            let h = fx.committed_journal(&scan, &index, &marks);
            assert_eq!(h.pid, std::process::id());
            assert_eq!(fx.journal_tail(&h), want);
            let (sp, sf) = fx.session_file();
            let mut spool = Some(fx.file.try_clone().unwrap());
            let orphan = dotlock_left.then_some(h.pid);
            let (r, notes) = fx.recover(&sp, &sf, &mut spool, orphan);
            assert!(r.unwrap(), "grow {grow} dotlock {dotlock_left}: {notes:?}");
            assert_bytes(&fx.read(), &want);
            assert!(!fx.journal.exists());
            // Recovering again finds nothing to do.
            let (r, _) = fx.recover(&sp, &sf, &mut spool, None);
            assert!(!r.unwrap());
            assert_bytes(&fx.read(), &want);
            drop(sf);
            fx.assert_only(&["u", ".u.pop"]);
        }
    }
}

#[test]
fn committed_journal_with_the_spool_half_written_is_rolled_forward() {
    for grow in [true, false] {
        for dotlock_left in [true, false] {
            let (fx, scan, index, marks, want) = recovery_case(grow);
            let h = fx.committed_journal(&scan, &index, &marks);
            let tail = fx.journal_tail(&h);
            // Step 4 (grow: the spool is extended, zeros) and half of step 5.
            if h.new_len() > h.old_len {
                fx.file.set_len(h.new_len()).unwrap();
            }
            fx.file
                .write_all_at(&tail[..tail.len() / 2], h.from)
                .unwrap();
            let (sp, sf) = fx.session_file();
            let mut spool = Some(fx.file.try_clone().unwrap());
            let (r, notes) = fx.recover(&sp, &sf, &mut spool, dotlock_left.then_some(h.pid));
            assert!(r.unwrap(), "grow {grow} dotlock {dotlock_left}: {notes:?}");
            assert_bytes(&fx.read(), &want);
            assert!(!fx.journal.exists());
            drop(sf);
            fx.assert_only(&["u", ".u.pop"]);
        }
    }
}

#[test]
fn committed_journal_fully_applied_but_not_cleared() {
    for grow in [true, false] {
        let (fx, scan, index, marks, want) = recovery_case(grow);
        let h = fx.committed_journal(&scan, &index, &marks);
        let j = Journal::open(&fx.journal, &Dropped::current_for_tests())
            .unwrap()
            .unwrap();
        j.apply(&fx.file, &h).unwrap();
        drop(j);
        assert_bytes(&fx.read(), &want);
        let (sp, sf) = fx.session_file();
        let mut spool = Some(fx.file.try_clone().unwrap());
        let (r, _) = fx.recover(&sp, &sf, &mut spool, Some(h.pid));
        assert!(r.unwrap());
        assert_bytes(&fx.read(), &want);
        assert!(!fx.journal.exists());
    }
}

#[test]
fn uncommitted_journal_is_removed_and_the_spool_untouched() {
    let (fx, scan, index, marks, _) = recovery_case(false);
    let orig = fx.read();
    let (j, h) = fx.journal_with_tail(&scan, &index, &marks);
    drop(j);
    assert!(h.tail_len > 0);
    assert_eq!(
        std::fs::metadata(&fx.journal).unwrap().len(),
        HEADER_LEN + h.tail_len
    );
    let (sp, sf) = fx.session_file();
    let mut spool = Some(fx.file.try_clone().unwrap());
    let (r, notes) = fx.recover(&sp, &sf, &mut spool, Some(std::process::id()));
    assert!(!r.unwrap());
    assert!(
        notes
            .iter()
            .any(|n| n.contains("never reached its commit point")),
        "{notes:?}"
    );
    assert_bytes(&fx.read(), &orig);
    assert!(!fx.journal.exists());
    drop(sf);
    fx.assert_only(&["u", ".u.pop"]);
}

#[test]
fn leftover_replacement_journal_is_discarded() {
    let (fx, scan, index, marks, want) = recovery_case(true);
    let h = fx.committed_journal(&scan, &index, &marks);
    // A `.new` journal being written by a recovery that died: the journal
    // it was to replace is whole and wins.
    let newer = fx.dir.join(".u.pop.journal.new");
    let j = Journal::create(&newer).unwrap();
    j.file().write_all_at(b"garbage tail", HEADER_LEN).unwrap();
    drop(j);
    let (sp, sf) = fx.session_file();
    let mut spool = Some(fx.file.try_clone().unwrap());
    let (r, _) = fx.recover(&sp, &sf, &mut spool, Some(h.pid));
    assert!(r.unwrap());
    assert_bytes(&fx.read(), &want);
    drop(sf);
    fx.assert_only(&["u", ".u.pop"]);
}

#[test]
fn committed_journal_with_an_impossible_spool_is_left_for_the_administrator() {
    // The spool is shorter than any size the update could leave: someone
    // else cut it, and rolling forward could lose what they kept.
    let (fx, scan, index, marks, _) = recovery_case(true);
    let h = fx.committed_journal(&scan, &index, &marks);
    fx.file.set_len(h.old_len.min(h.new_len()) - 1).unwrap();
    fx.assert_left_for_the_administrator(Some(h.pid), "spool cut short");
}

#[test]
fn committed_journal_for_another_spool_is_set_aside() {
    let (fx, scan, index, marks, _) = recovery_case(true);
    let h = fx.committed_journal(&scan, &index, &marks);
    let tail = fx.journal_tail(&h);
    // The spool was replaced (another inode) since the journal was written.
    let orig = fx.read();
    let tmp = fx.dir.join("u.tmp");
    std::fs::write(&tmp, &orig).unwrap();
    std::fs::rename(&tmp, &fx.spool).unwrap();
    let replaced = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fx.spool)
        .unwrap();
    let (sp, sf) = fx.session_file();
    let mut spool = Some(replaced);
    let (r, notes) = fx.recover(&sp, &sf, &mut spool, Some(h.pid));
    assert!(!r.unwrap(), "{notes:?}");
    assert_bytes(&fx.read(), &orig);
    assert!(!fx.journal.exists());
    let aside: Vec<PathBuf> = std::fs::read_dir(&fx.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".u.pop.journal.")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept = std::fs::read(&aside[0]).unwrap();
    assert_eq!(
        &kept[HEADER_LEN as usize..],
        tail.as_slice(),
        "the mail is kept for the administrator"
    );
}

/// How far the dead popper got before a delivery agent broke its dotlock
/// as stale and appended mail.
#[derive(Debug, Clone, Copy)]
enum Crash {
    /// Right after the commit point: spool untouched.
    AtCommit,
    /// Grown (if growing) and half the tail copied.
    HalfCopied,
    /// Whole tail copied, not yet truncated (if shrinking).
    Copied,
    /// Steps 4–6 done, journal not cleared.
    Applied,
}

#[test]
fn recovery_keeps_mail_appended_after_a_crash_exactly_once() {
    for grow in [true, false] {
        for crash in [
            Crash::AtCommit,
            Crash::HalfCopied,
            Crash::Copied,
            Crash::Applied,
        ] {
            let what = format!("grow {grow}, {crash:?}");
            let (fx, scan, index, marks, want) = recovery_case(grow);
            let h = fx.committed_journal(&scan, &index, &marks);
            let tail = fx.journal_tail(&h);
            match crash {
                Crash::AtCommit => {}
                Crash::HalfCopied | Crash::Copied => {
                    if h.new_len() > h.old_len {
                        fx.file.set_len(h.new_len()).unwrap();
                    }
                    let n = if matches!(crash, Crash::HalfCopied) {
                        tail.len() / 2
                    } else {
                        tail.len()
                    };
                    fx.file.write_all_at(&tail[..n], h.from).unwrap();
                }
                Crash::Applied => {
                    let j = Journal::open(&fx.journal, &Dropped::current_for_tests())
                        .unwrap()
                        .unwrap();
                    j.apply(&fx.file, &h).unwrap();
                }
            }
            let delivered = new_mail(5);
            fx.deliver(&delivered);
            let (sp, sf) = fx.session_file();
            let mut spool = Some(fx.file.try_clone().unwrap());
            let (r, notes) = fx.recover(&sp, &sf, &mut spool, None);
            assert!(r.unwrap(), "{what}: {notes:?}");
            assert!(
                notes.iter().any(|n| n.contains("delivered")),
                "{what}: {notes:?}"
            );
            assert_bytes(&fx.read(), &cat(&[want.clone(), delivered.clone()]));
            assert!(!fx.journal.exists(), "{what}");
            drop(sf);
            fx.assert_only(&["u", ".u.pop"]);
            // The result is a clean mailbox: the kept messages and the new one.
            let next = rescan_index(&fx);
            assert_eq!(next.len(), if grow { 4 } else { 3 }, "{what}");
        }
    }
}

#[test]
fn recovery_after_a_crash_without_new_mail_and_a_broken_dotlock() {
    for grow in [true, false] {
        for crash in [
            Crash::AtCommit,
            Crash::HalfCopied,
            Crash::Copied,
            Crash::Applied,
        ] {
            let what = format!("grow {grow}, {crash:?}");
            let (fx, scan, index, marks, want) = recovery_case(grow);
            let h = fx.committed_journal(&scan, &index, &marks);
            let tail = fx.journal_tail(&h);
            match crash {
                Crash::AtCommit => {}
                Crash::HalfCopied | Crash::Copied => {
                    if h.new_len() > h.old_len {
                        fx.file.set_len(h.new_len()).unwrap();
                    }
                    let n = if matches!(crash, Crash::HalfCopied) {
                        tail.len() / 2
                    } else {
                        tail.len()
                    };
                    fx.file.write_all_at(&tail[..n], h.from).unwrap();
                }
                Crash::Applied => {
                    let j = Journal::open(&fx.journal, &Dropped::current_for_tests())
                        .unwrap()
                        .unwrap();
                    j.apply(&fx.file, &h).unwrap();
                }
            }
            let (sp, sf) = fx.session_file();
            let mut spool = Some(fx.file.try_clone().unwrap());
            let (r, notes) = fx.recover(&sp, &sf, &mut spool, None);
            assert!(r.unwrap(), "{what}: {notes:?}");
            assert_bytes(&fx.read(), &want);
            assert!(!fx.journal.exists(), "{what}");
        }
    }
}

// ---------------------------------------------------------------------
// 15: a qpopper temporary maildrop
// ---------------------------------------------------------------------

fn fill_temp_drop(f: &File, bytes: &[u8]) {
    f.set_len(0).unwrap();
    f.write_all_at(bytes, 0).unwrap();
}

#[test]
fn qpopper_temp_drop_is_folded_in_front_of_the_spool() {
    let spool_mail = cat(&[msg(1), msg(2)]);
    let dropped = cat(&[read_msg(7), msg(8)]);
    // (what qpopper left, separator recover must add)
    let cases: [(Vec<u8>, &[u8]); 3] = [
        (dropped.clone(), b""),                           // ends in an empty line
        (dropped[..dropped.len() - 1].to_vec(), b"\n"),   // ends in LF only
        (dropped[..dropped.len() - 2].to_vec(), b"\n\n"), // no final LF
    ];
    for (left, sep) in cases {
        let fx = Fx::new(&spool_mail);
        let (sp, sf) = fx.session_file();
        fill_temp_drop(&sf, &left);
        let mut spool = Some(fx.file.try_clone().unwrap());
        let (r, notes) = fx.recover(&sp, &sf, &mut spool, None);
        assert!(r.unwrap(), "{notes:?}");
        let want = cat(&[left.clone(), sep.to_vec(), spool_mail.clone()]);
        assert_bytes(&fx.read(), &want);
        assert_eq!(sf.metadata().unwrap().len(), 0, "the temp drop is emptied");
        assert!(!fx.journal.exists());
        // The folded-in messages come first, then the spool's.
        let next = fx.scan();
        assert_eq!(next.msgs.len(), 4);
        drop(sf);
        fx.assert_only(&["u", ".u.pop"]);
    }
}

#[test]
fn qpopper_temp_drop_into_an_empty_or_missing_spool() {
    let dropped = cat(&[msg(7), msg(8)]);
    // Empty spool.
    let fx = Fx::new(b"");
    let (sp, sf) = fx.session_file();
    fill_temp_drop(&sf, &dropped);
    let mut spool = Some(fx.file.try_clone().unwrap());
    let (r, _) = fx.recover(&sp, &sf, &mut spool, None);
    assert!(r.unwrap());
    assert_bytes(&fx.read(), &dropped);
    assert_eq!(sf.metadata().unwrap().len(), 0);
    // No spool at all: MboxDrop::open creates it (before locking it).
    let fx = Fx::new(b"");
    std::fs::remove_file(&fx.spool).unwrap();
    let (sp, sf) = fx.session_file();
    fill_temp_drop(&sf, &dropped);
    let owner = Dropped::current_for_tests();
    let mut spool = Some(crate::maildrop::mbox::lock::create_spool(&fx.spool, &owner).unwrap());
    let (r, _) = fx.recover(&sp, &sf, &mut spool, None);
    assert!(r.unwrap());
    assert!(spool.is_some());
    assert_bytes(&fx.read(), &dropped);
    assert_eq!(sf.metadata().unwrap().len(), 0);
    assert_eq!(
        fx.spool.metadata().unwrap().mode() & 0o077,
        0,
        "a created spool is private"
    );
    drop(sf);
    fx.assert_only(&["u", ".u.pop"]);
}

#[test]
fn a_session_file_that_is_not_a_mailbox_is_refused() {
    let orig = cat(&[msg(1)]);
    let fx = Fx::new(&orig);
    let (sp, sf) = fx.session_file();
    fill_temp_drop(&sf, b"not a mailbox\n");
    let mut spool = Some(fx.file.try_clone().unwrap());
    let (r, _) = fx.recover(&sp, &sf, &mut spool, None);
    assert!(matches!(r, Err(MaildropError::BadTempDrop { .. })), "{r:?}");
    assert_bytes(&fx.read(), &orig);
    assert_eq!(std::fs::read(&sp).unwrap(), b"not a mailbox\n");
    assert!(!fx.journal.exists());
}

/// BUG (recover.rs, `merge_temp_drop`): the merge journal is cleared by
/// `apply_committed` (which calls `Journal::clear`) *before*
/// `empty_temp_drop` empties `.USER.pop`. If popper stops between the
/// two (kill -9, power loss, or — as simulated here — the `ftruncate` of
/// the temp drop failing), the spool already holds the temp drop's mail,
/// the temp drop still holds it too, and no journal records that the
/// merge happened: the next login merges it again and every message in
/// it is DUPLICATED. Fix: empty (and fsync) the temp drop after
/// `Journal::apply` and before `Journal::clear`, so that a crash leaves a
/// committed `merges-temp-drop 1` journal that recovery re-applies
/// idempotently and then empties the temp drop.
///
/// The failure of `empty_temp_drop` is injected by handing recovery a
/// read-only descriptor of the session file (ftruncate → EINVAL).
#[test]
fn regression_temp_drop_merged_twice_if_emptying_it_fails() {
    let spool_mail = cat(&[msg(1)]);
    let dropped = cat(&[msg(7)]);
    let fx = Fx::new(&spool_mail);
    let (sp, sf) = fx.session_file();
    fill_temp_drop(&sf, &dropped);
    let ro = File::open(&sp).unwrap();
    let mut spool = Some(fx.file.try_clone().unwrap());
    let (r, _) = fx.recover(&sp, &ro, &mut spool, None);
    assert!(r.is_err(), "emptying the temp drop failed: login fails");
    // The next login, with a working session file.
    let (r, _) = fx.recover(&sp, &sf, &mut spool, None);
    r.unwrap();
    let want = cat(&[dropped.clone(), spool_mail.clone()]);
    let got = fx.read();
    assert!(
        got == want,
        "BUG: the temp drop's mail is duplicated: {} copies of it in the spool:\n{}",
        show(&got).matches("Subject: message 7").count(),
        show(&got)
    );
}

/// BUG (recover.rs, `finish_journal`): same ordering as above on the
/// roll-forward path: a committed journal with `merges-temp-drop 1` is
/// applied and cleared by `apply_committed`, and only then is the temp
/// drop emptied. A stop in between leaves the merged mail in the spool
/// *and* in the temp drop with no journal: the next login merges again.
#[test]
fn regression_merge_journal_rolled_forward_then_temp_drop_merged_again() {
    let spool_mail = cat(&[msg(1)]);
    let dropped = cat(&[msg(7)]);
    let fx = Fx::new(&spool_mail);
    let (sp, sf) = fx.session_file();
    fill_temp_drop(&sf, &dropped);
    // A committed merge journal as `merge_temp_drop` writes it (the popper
    // died at its commit point).
    let md = fx.file.metadata().unwrap();
    let j = Journal::create(&fx.journal).unwrap();
    let mut w = j.writer(&fx.file);
    w.copy_other(&sf, 0, dropped.len() as u64).unwrap();
    w.copy(0, spool_mail.len() as u64).unwrap();
    let tail_len = w.finish().unwrap();
    let h = Header {
        pid: 999_999,
        spool: (md.dev(), md.ino()),
        from: 0,
        old_len: spool_mail.len() as u64,
        tail_len,
        sample: Vec::new(),
        before: crate::maildrop::mbox::copy::marks_at(&fx.file, 0)
            .unwrap()
            .0,
        at: crate::maildrop::mbox::copy::marks_at(&fx.file, 0)
            .unwrap()
            .1,
        merges_temp_drop: true,
        delivered_through: None,
    };
    j.commit(&h).unwrap();
    drop(j);
    let ro = File::open(&sp).unwrap();
    let mut spool = Some(fx.file.try_clone().unwrap());
    let (r, _) = fx.recover(&sp, &ro, &mut spool, Some(999_999));
    assert!(r.is_err(), "emptying the temp drop failed: login fails");
    let (r, _) = fx.recover(&sp, &sf, &mut spool, None);
    r.unwrap();
    let want = cat(&[dropped.clone(), spool_mail.clone()]);
    let got = fx.read();
    assert!(
        got == want,
        "BUG: the temp drop's mail is duplicated: {} copies of it in the spool:\n{}",
        show(&got).matches("Subject: message 7").count(),
        show(&got)
    );
}

#[test]
fn merge_journal_rolled_forward_empties_the_temp_drop() {
    // The same committed merge journal, recovered normally.
    let spool_mail = cat(&[msg(1)]);
    let dropped = cat(&[msg(7)]);
    let fx = Fx::new(&spool_mail);
    let (sp, sf) = fx.session_file();
    fill_temp_drop(&sf, &dropped);
    let md = fx.file.metadata().unwrap();
    let j = Journal::create(&fx.journal).unwrap();
    let mut w = j.writer(&fx.file);
    w.copy_other(&sf, 0, dropped.len() as u64).unwrap();
    w.copy(0, spool_mail.len() as u64).unwrap();
    let tail_len = w.finish().unwrap();
    let h = Header {
        pid: 999_999,
        spool: (md.dev(), md.ino()),
        from: 0,
        old_len: spool_mail.len() as u64,
        tail_len,
        sample: Vec::new(),
        before: crate::maildrop::mbox::copy::marks_at(&fx.file, 0)
            .unwrap()
            .0,
        at: crate::maildrop::mbox::copy::marks_at(&fx.file, 0)
            .unwrap()
            .1,
        merges_temp_drop: true,
        delivered_through: None,
    };
    j.commit(&h).unwrap();
    drop(j);
    let mut spool = Some(fx.file.try_clone().unwrap());
    let (r, _) = fx.recover(&sp, &sf, &mut spool, Some(999_999));
    assert!(r.unwrap());
    assert_bytes(&fx.read(), &cat(&[dropped, spool_mail]));
    assert_eq!(sf.metadata().unwrap().len(), 0);
    drop(sf);
    fx.assert_only(&["u", ".u.pop"]);
}

// ---------------------------------------------------------------------
// More: CRLF spools, other lock holders, a vanished spool
// ---------------------------------------------------------------------

fn crlf_msg(i: usize) -> Vec<u8> {
    format!("From c@example.com Wed Dec  2 05:53:22 1992\r\nSubject: crlf {i}\r\nStatus: O\r\n\r\nbody {i}\r\n\r\n")
        .into_bytes()
}

#[test]
fn crlf_spool_gets_crlf_header_lines() {
    let m: Vec<Vec<u8>> = (1..=3).map(crlf_msg).collect();
    let fx = Fx::new(&cat(&m));
    let (scan, index, _) = fx.session(&["DELE 1", "RETR 3"], true);
    assert_eq!(scan.msgs.len(), 3);
    let want = format!(
        "From c@example.com Wed Dec  2 05:53:22 1992\r\nX-UIDL: {}\r\nSubject: crlf 2\r\nStatus: O\r\n\r\nbody 2\r\n\r\n\
         From c@example.com Wed Dec  2 05:53:22 1992\r\nX-UIDL: {}\r\nSubject: crlf 3\r\nStatus: RO\r\n\r\nbody 3\r\n\r\n",
        show(&uid(&index, 1)),
        show(&uid(&index, 2))
    );
    assert_bytes(&fx.read(), want.as_bytes());
    let next = rescan_index(&fx);
    assert_eq!(uids(&next), uids(&index)[1..].to_vec());
    assert_eq!(
        next.entries().iter().map(|e| e.seen).collect::<Vec<_>>(),
        [false, true]
    );
    fx.assert_clean();
}

#[test]
fn a_mail_reader_holding_flock_makes_the_update_give_up() {
    let orig = cat(&[msg(1), msg(2)]);
    let mut fx = Fx::new(&orig);
    fx.locks = lock_config(Duration::from_millis(300));
    let reader = File::open(&fx.spool).unwrap();
    reader.lock().unwrap();
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, &["DELE 1"]);
    let (r, _) = fx.update(&scan, &index, &marks, true);
    assert!(matches!(r, Err(MaildropError::LockTimeout { .. })), "{r:?}");
    assert_bytes(&fx.read(), &orig);
    // Our dotlock is gone again; nothing else is left.
    fx.assert_clean();
    reader.unlock().unwrap();
    let (r, _) = fx.update(&scan, &index, &marks, true);
    r.unwrap();
    assert_bytes(&fx.read(), &model_wb(&msg(2), &uid(&index, 1), false));
    fx.assert_clean();
}

#[test]
fn a_spool_removed_during_the_session_is_not_recreated() {
    let fx = Fx::new(&cat(&[msg(1), msg(2)]));
    let scan = fx.scan();
    let (index, marks) = session_marks(&scan, &["DELE 1"]);
    std::fs::remove_file(&fx.spool).unwrap();
    let (r, _) = fx.update(&scan, &index, &marks, true);
    assert!(matches!(r, Err(MaildropError::Changed { .. })), "{r:?}");
    assert!(!fx.spool.exists());
    fx.assert_only(&[]);
}

#[test]
fn recovery_refuses_a_spool_another_program_rewrote_after_the_crash() {
    // Review: rolling forward over a mailbox mutt rewrote after the crash
    // would put the old tail over whatever mutt moved there.
    for what in ["before", "at"] {
        let orig = cat(&[msg(1), msg(2), msg(3)]);
        let fx = Fx::new(&orig);
        let scan = fx.scan();
        let (index, marks) = session_marks(&scan, &["DELE 2"]);
        let h = fx.committed_journal(&scan, &index, &marks);
        assert!(h.from > 0);
        let jbytes = std::fs::read(&fx.journal).unwrap();
        let mut other = orig.clone();
        let pos = if what == "before" {
            h.from as usize - 10
        } else {
            h.from as usize + 2
        };
        other[pos] ^= 0x20;
        std::fs::write(&fx.spool, &other).unwrap();
        assert_bytes(&fx.read(), &other);
        fx.assert_left_for_the_administrator(None, what);
        assert_eq!(std::fs::read(&fx.journal).unwrap(), jbytes, "{what}");
    }
}

#[test]
fn recovery_rolls_forward_a_copy_cut_short_at_any_byte() {
    // The bytes at `from` may be old, new or a mix: all are popper's.
    let orig = cat(&[msg(1), msg(2), msg(3)]);
    let fx0 = Fx::new(&orig);
    let scan = fx0.scan();
    let (index, marks) = session_marks(&scan, &["DELE 2"]);
    drop(fx0);
    for cut in [0usize, 1, 7, 63, 64, 200] {
        let fx = Fx::new(&orig);
        let h = fx.committed_journal(&scan, &index, &marks);
        let tail = fx.journal_tail(&h);
        let cut = cut.min(tail.len());
        fx.file.write_all_at(&tail[..cut], h.from).unwrap();
        let (sp, sf) = fx.session_file();
        let mut spool = Some(fx.file.try_clone().unwrap());
        let (r, notes) = fx.recover(&sp, &sf, &mut spool, None);
        assert!(r.unwrap(), "cut {cut}: {notes:?}");
        let mut want = orig[..h.from as usize].to_vec();
        want.extend_from_slice(&tail);
        assert_bytes(&fx.read(), &want);
    }
}

#[test]
fn a_temp_drop_that_repeats_the_start_of_the_spool_is_folded_back_once() {
    // Review: qpopper died after copying the spool into .USER.pop but
    // before emptying the spool; the same messages are in both.
    let spool_mail = cat(&[msg(1), msg(2)]);
    let fx = Fx::new(&spool_mail);
    let (sp, sf) = fx.session_file();
    fill_temp_drop(&sf, &cat(&[msg(7), msg(1), msg(2)]));
    let mut spool = Some(fx.file.try_clone().unwrap());
    let (r, notes) = fx.recover(&sp, &sf, &mut spool, None);
    assert!(r.unwrap());
    assert_bytes(&fx.read(), &cat(&[msg(7), msg(1), msg(2)]));
    assert!(
        notes.iter().any(|n| n.contains("were also at the start")),
        "{notes:?}"
    );
    assert_eq!(sf.metadata().unwrap().len(), 0);
    // All of it already in the spool: just emptied.
    let fx = Fx::new(&spool_mail);
    let (sp, sf) = fx.session_file();
    fill_temp_drop(&sf, &spool_mail);
    let mut spool = Some(fx.file.try_clone().unwrap());
    let (r, _) = fx.recover(&sp, &sf, &mut spool, None);
    assert!(r.unwrap());
    assert_bytes(&fx.read(), &spool_mail);
    assert_eq!(sf.metadata().unwrap().len(), 0);
}
