//! Whole-maildrop tests: generated Maildirs opened, listed, sent from and
//! committed through [`MaildirDrop`], with the marks of real protocol
//! sessions, and other readers simulated between the steps.

use std::cell::Cell;
use std::io;

use pop3_core::maildrop::{Maildrop, Note, Open, Output, SendError};
use pop3_core::reply::{ErrReply, Reply};
use pop3_core::wire::{Encoder, measure};

use super::fixture::{Fx, at, session_marks};
use super::*;
use crate::maildrop::login_mail::{Arrivals, NewMessage};
use crate::maildrop::maildir::list::Listed;
use crate::maildrop::stamp::Stamp;

/// An output that keeps everything.
#[derive(Default)]
struct Buf(Vec<u8>);

impl Output for Buf {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
    fn drain(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the encoder sends for `content` (RETR: `None`, TOP n: `Some(n)`).
fn encoded(content: &[u8], top: Option<u64>) -> Vec<u8> {
    let mut e = Encoder::new(top);
    let mut out = Vec::new();
    e.feed(content, &mut out);
    e.finish(&mut out);
    out
}

fn retr(d: &mut MaildirDrop, i: usize, top: Option<u64>) -> Result<Vec<u8>, SendError> {
    let mut b = Buf::default();
    d.send(MsgIdx(i), top, &mut b)?;
    Ok(b.0)
}

/// The `-ERR` line an error becomes.
fn wire(e: StorageError) -> String {
    String::from_utf8(Reply::Err(ErrReply::Storage(e)).to_bytes()).unwrap()
}

fn uids(d: &MaildirDrop) -> Vec<String> {
    d.entries()
        .iter()
        .map(|e| String::from_utf8(e.uid.as_bytes().to_vec()).unwrap())
        .collect()
}

fn debug_notes(d: &mut MaildirDrop) -> Vec<String> {
    d.take_notes()
        .into_iter()
        .filter_map(|n| match n {
            Note::Debug(s) => Some(s),
            Note::Notice(_) => None,
        })
        .collect()
}

const LF: &[u8] = b"Subject: lf\n\nbody\n.dot\n";
const CRLF: &[u8] = b"Subject: crlf\r\n\r\nbody\r\n.dot\r\n";
const MIXED: &[u8] = b"Subject: mixed\r\n\nbody\r\nbare\rcr\nend\r";
const NO_LF: &[u8] = b"Subject: no lf\n\nlast line";

#[test]
fn listing_order_uids_flags_and_skips() {
    let fx = Fx::new("open");
    let long = format!("{}.host", "9".repeat(70));
    // Delivered in this order (mtime, then name).
    fx.put("cur", "1000.M1P1.host:2,S", LF, at(1, 0));
    fx.put("new", "1000.M2P1.host", CRLF, at(1, 0));
    fx.put("new", "0999.M9P9.host", MIXED, at(1, 7));
    fx.put("cur", &format!("{long}:2,RS"), NO_LF, at(2, 0));
    fx.put("cur", "dup.host:2,", b"", at(3, 0));
    fx.put("new", "dup.host", b"x\n", at(4, 0));
    // Not messages.
    fx.put("tmp", "0001.being.delivered", LF, at(0, 0));
    fx.put("new", ".dotfile", LF, at(0, 0));
    std::os::unix::fs::symlink("/etc/passwd", fx.root.join("cur/link:2,S")).unwrap();
    let mut d = fx.open().unwrap();
    let md5 = {
        use md5::{Digest, Md5};
        Md5::digest(long.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        uids(&d),
        [
            "1000.M1P1.host",
            "1000.M2P1.host",
            "0999.M9P9.host",
            &md5,
            "dup.host",
            "dup.host-2"
        ]
    );
    let e = d.entries();
    let seen: Vec<bool> = e.iter().map(|e| e.seen).collect();
    assert_eq!(seen, [true, false, false, true, false, false]);
    let sizes: Vec<u64> = e.iter().map(|e| e.size).collect();
    assert_eq!(
        sizes,
        [
            measure(LF),
            measure(CRLF),
            measure(MIXED),
            measure(NO_LF),
            0,
            3
        ]
    );
    let notes = d.take_notes();
    assert!(
        notes.contains(&Note::Debug(
            "6 messages, 0 sizes from the size cache, 6 counted".into()
        )),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| matches!(n, Note::Notice(s) if s.contains("\"link:2,S\""))),
        "{notes:?}"
    );
}

#[test]
fn send_is_the_encoder_over_the_file() {
    let fx = Fx::new("send");
    // Larger than one read, with a dot line across the boundary.
    let mut big = b"Subject: big\n\n".to_vec();
    while big.len() < 3 * SEND_CHUNK {
        big.extend_from_slice(b"a line of the body\n.a dotted line\r\n");
    }
    let msgs: [&[u8]; 6] = [LF, CRLF, MIXED, NO_LF, b"", &big];
    for (i, m) in msgs.iter().enumerate() {
        fx.put("new", &format!("{i}.x.host"), m, at(i as u64, 0));
    }
    let mut d = fx.open().unwrap();
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(retr(&mut d, i, None).unwrap(), encoded(m, None), "RETR {i}");
        for n in [0, 1, 2, 1000] {
            assert_eq!(
                retr(&mut d, i, Some(n)).unwrap(),
                encoded(m, Some(n)),
                "TOP {i} {n}"
            );
        }
        let mut b = Buf::default();
        assert_eq!(
            d.send(MsgIdx(i), None, &mut b).unwrap(),
            d.entries()[i].size
        );
    }
}

#[test]
fn another_readers_changes_between_listing_and_send() {
    let fx = Fx::new("send-race");
    for i in 0..5 {
        fx.put("new", &format!("{i}.x.host"), LF, at(i, 0));
    }
    let mut d = fx.open().unwrap();
    let new = |i: usize| fx.root.join(format!("new/{i}.x.host"));
    // 1: deleted.
    std::fs::remove_file(new(0)).unwrap();
    match retr(&mut d, 0, None) {
        Err(SendError::Gone(e)) => assert_eq!(
            wire(e),
            "-ERR [SYS/TEMP] Message 1 is no longer in the maildrop.\r\n"
        ),
        other => panic!("{other:?}"),
    }
    // 2: moved to cur/ and flagged; 3: then its flags changed again.
    std::fs::rename(new(1), fx.root.join("cur/1.x.host:2,S")).unwrap();
    assert_eq!(retr(&mut d, 1, None).unwrap(), encoded(LF, None));
    std::fs::rename(
        fx.root.join("cur/1.x.host:2,S"),
        fx.root.join("cur/1.x.host:2,RS"),
    )
    .unwrap();
    assert_eq!(retr(&mut d, 1, Some(0)).unwrap(), encoded(LF, Some(0)));
    // 3: cut short.
    std::fs::write(new(2), &LF[..5]).unwrap();
    match retr(&mut d, 2, None) {
        Err(SendError::Gone(e)) => assert_eq!(
            wire(e),
            "-ERR [SYS/TEMP] Message 3 was changed by another program during this session.\r\n"
        ),
        other => panic!("{other:?}"),
    }
    // 4: rewritten in place, same length, other wire size: an error, not
    // a wrong size sent silently.
    let same_len: Vec<u8> = LF
        .iter()
        .map(|&b| if b == b'\n' { b'x' } else { b })
        .collect();
    std::fs::write(new(3), &same_len).unwrap();
    assert!(matches!(retr(&mut d, 3, None), Err(SendError::Gone(_))));
    // 5: replaced by another file under its name: not that message.
    let other = fx.put("tmp", "4.x.host", LF, at(4, 0));
    std::fs::rename(other, new(4)).unwrap();
    assert!(matches!(retr(&mut d, 4, None), Err(SendError::Gone(_))));
    d.abandon();
}

#[test]
fn commit_deletes_and_marks_read() {
    let fx = Fx::new("commit");
    fx.put("new", "1.a.host", LF, at(1, 0));
    fx.put("new", "2.b.host", LF, at(2, 0));
    fx.put("new", "3.c.host", LF, at(3, 0));
    fx.put("cur", "4.d.host:2,FT", LF, at(4, 0));
    fx.put("cur", "5.e.host:2,", LF, at(5, 0));
    fx.put("cur", "6.f.host:2,S", LF, at(6, 0));
    fx.put("cur", "7.g.host:2,R", LF, at(7, 0));
    let mut d = fx.open().unwrap();
    // Delivered during the session: never touched.
    fx.put("new", "8.late.host", LF, at(8, 0));
    fx.put("cur", "9.late.host:2,", LF, at(9, 0));
    // Another reader moves 7 and deletes 5 meanwhile.
    std::fs::rename(
        fx.root.join("cur/7.g.host:2,R"),
        fx.root.join("cur/7.g.host:2,FR"),
    )
    .unwrap();
    std::fs::remove_file(fx.root.join("cur/5.e.host:2,")).unwrap();
    let marks = session_marks(
        d.entries(),
        &[
            "DELE 1", "RETR 2", "TOP 3 0", "RETR 4", "DELE 5", "RETR 6", "RETR 7",
        ],
    );
    assert_eq!(d.commit(&marks), Ok(CommitStats::default()));
    assert_eq!(fx.names("new"), ["3.c.host", "8.late.host"]);
    assert_eq!(
        fx.names("cur"),
        [
            "2.b.host:2,S",
            "4.d.host:2,FST",
            "6.f.host:2,S",
            "7.g.host:2,FRS",
            "9.late.host:2,"
        ]
    );
    assert!(!fx.root.join(lock::NAME).exists(), "the lock is released");
    fx.open().unwrap();
}

#[test]
fn update_status_off_is_qmail_pop3d() {
    let fx = Fx::new("commit-qmail");
    fx.put("new", "1.a.host", LF, at(1, 0));
    fx.put("new", "2.b.host", LF, at(2, 0));
    fx.put("new", "3.c.host", LF, at(3, 0));
    fx.put("cur", "4.d.host:2,", LF, at(4, 0));
    fx.put("cur", "5.e.host", LF, at(5, 0));
    let opts = MaildirOptions {
        update_status: false,
        ..fx.opts()
    };
    let mut d = fx.open_with(opts, None).unwrap();
    fx.put("new", "6.late.host", LF, at(6, 0));
    let marks = session_marks(d.entries(), &["RETR 1", "DELE 2", "RETR 4", "RETR 5"]);
    d.commit(&marks).unwrap();
    assert_eq!(fx.names("new"), ["6.late.host"]);
    assert_eq!(
        fx.names("cur"),
        ["1.a.host:2,", "3.c.host:2,", "4.d.host:2,", "5.e.host"]
    );
}

#[test]
fn a_pristine_session_changes_nothing() {
    let fx = Fx::new("commit-none");
    fx.put("new", "1.a.host", LF, at(1, 0));
    fx.put("cur", "2.b.host:2,", LF, at(2, 0));
    let mut d = fx.open().unwrap();
    let marks = session_marks(d.entries(), &["LIST", "UIDL", "TOP 1 1"]);
    d.commit(&marks).unwrap();
    assert_eq!(fx.names("new"), ["1.a.host"]);
    assert_eq!(fx.names("cur"), ["2.b.host:2,"]);
}

#[test]
fn a_failed_step_is_reported_and_the_rest_done() {
    let fx = Fx::new("commit-fail");
    // A name that cannot take `:2,S` (NAME_MAX is 255): its rename fails.
    let long = format!("1.{}", "a".repeat(252));
    fx.put("new", &long, LF, at(1, 0));
    fx.put("new", "2.b.host", LF, at(2, 0));
    fx.put("new", "3.c.host", LF, at(3, 0));
    let mut d = fx.open().unwrap();
    // Another file where message 3 would go: it stays as it is.
    std::fs::create_dir(fx.root.join("cur/3.c.host:2,S")).unwrap();
    let marks = session_marks(d.entries(), &["RETR 1", "DELE 2", "RETR 3"]);
    let e = d.commit(&marks).unwrap_err();
    assert_eq!(
        wire(e),
        format!(
            "-ERR [SYS/TEMP] 1 changes to {} could not be made ({}); the others were made.\r\n",
            fx.root.display(),
            libc::ENAMETOOLONG
        )
    );
    assert_eq!(fx.names("new"), [long, "3.c.host".to_string()]);
    let notes: Vec<String> = d
        .take_notes()
        .into_iter()
        .filter_map(|n| match n {
            Note::Notice(s) => Some(s),
            Note::Debug(_) => None,
        })
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("could not update"), "{notes:?}");
    assert!(notes[1].contains("is another file"), "{notes:?}");
    assert!(!fx.root.join(lock::NAME).exists(), "the lock is released");
}

#[test]
fn the_size_cache_is_used_and_checked() {
    let fx = Fx::new("cache");
    fx.put("new", "1.a.host", LF, at(1, 0));
    fx.put("cur", "2.b.host:2,S", CRLF, at(2, 0));
    fx.put("cur", "3.c.host:2,", MIXED, at(3, 0));
    let first = fx.open().unwrap();
    let sizes = first.entries();
    assert_eq!(first.sizes_cached(), 0);
    drop(first);
    let cache = fx.root.join(cache::NAME);
    let md = std::fs::symlink_metadata(&cache).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
        0o600
    );
    // Second login: every size from the cache.
    let mut d = fx.open().unwrap();
    assert_eq!(d.sizes_cached(), 3);
    assert_eq!(d.entries(), sizes);
    assert_eq!(
        debug_notes(&mut d),
        ["3 messages, 3 sizes from the size cache, 0 counted"]
    );
    // Moved (new → cur, flags) by a reader: still the same file.
    let marks = session_marks(d.entries(), &["RETR 1"]);
    d.commit(&marks).unwrap();
    let d = fx.open().unwrap();
    assert_eq!(d.sizes_cached(), 3);
    drop(d);
    // A file rewritten (new inode, other size) is counted again.
    std::fs::remove_file(fx.root.join("cur/3.c.host:2,")).unwrap();
    fx.put("cur", "3.c.host:2,", LF, at(3, 0));
    let d = fx.open().unwrap();
    assert_eq!(d.sizes_cached(), 2);
    assert_eq!(d.entries()[2].size, measure(LF));
    drop(d);
    // Damaged: ignored, every size counted, and rewritten.
    let mut bytes = std::fs::read(&cache).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    std::fs::write(&cache, &bytes).unwrap();
    let d = fx.open().unwrap();
    assert_eq!(d.sizes_cached(), 0);
    drop(d);
    assert_eq!(fx.open().unwrap().sizes_cached(), 3);
    // A forged cache saying other sizes for other inodes is not believed.
    let forged_file = Listed {
        sub: list::Sub::New,
        name: "1.a.host".into(),
        dev: 0,
        ino: 1,
        len: 1,
        mtime: (0, 0),
        wire: 99,
    };
    let forged = cache::to_bytes(&[Stamp::default(); 2], true, &listing(&[forged_file]));
    std::fs::write(&cache, &forged).unwrap();
    let d = fx.open().unwrap();
    assert_eq!(d.sizes_cached(), 0);
    assert_eq!(d.entries(), fx.measured_entries(&d));
    drop(d);
    // A symbolic link: not followed, replaced by a file of popper's own.
    let elsewhere = fx.root.join("../elsewhere");
    std::fs::write(&elsewhere, std::fs::read(&cache).unwrap()).unwrap();
    std::fs::remove_file(&cache).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &cache).unwrap();
    let before = std::fs::read(&elsewhere).unwrap();
    assert_eq!(fx.open().unwrap().sizes_cached(), 0);
    assert!(
        !std::fs::symlink_metadata(&cache)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&elsewhere).unwrap(), before);
    assert_eq!(fx.open().unwrap().sizes_cached(), 3);
    // Another user's (only root can make one): not believed, replaced.
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&cache, Some(12_345), None).unwrap();
        assert_eq!(fx.open().unwrap().sizes_cached(), 0);
        let md = std::fs::symlink_metadata(&cache).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&md), 0);
        assert_eq!(fx.open().unwrap().sizes_cached(), 3);
    }
    // size_index off: neither read nor written.
    std::fs::remove_file(&cache).unwrap();
    let opts = MaildirOptions {
        size_index: false,
        ..fx.opts()
    };
    assert_eq!(fx.open_with(opts, None).unwrap().sizes_cached(), 0);
    assert!(!cache.exists());
}

/// A Maildir of every kind of name and content, some in new/ and some in
/// cur/, two with the same base name, one with a duplicate UID's MD5
/// form, and ties in delivery time.
fn varied(fx: &Fx) {
    fx.put("new", "1.a.host", LF, at(1, 0));
    fx.put("cur", "2.b.host:2,S", CRLF, at(2, 0));
    fx.put("cur", "3.c.host:2,", MIXED, at(3, 0));
    fx.put("cur", "3.c.host:2,S", NO_LF, at(3, 0));
    fx.put("new", "with space", LF, at(3, 0));
    fx.put("new", "0.tie.host", b"", at(3, 0));
    fx.put("cur", "9.z.host:2,RS", LF, at(0, 5));
}

/// What clients see of a drop: every entry and the files behind them.
fn seen(d: &MaildirDrop) -> (Vec<Entry>, Vec<Listed>) {
    (d.entries(), d.files.to_vec())
}

/// A listing of these files.
fn listing(files: &[Listed]) -> Listing {
    let mut l = Listing::default();
    for f in files {
        l.push(f).unwrap();
    }
    l
}

#[test]
fn a_settled_unchanged_maildir_is_listed_from_the_cache_alike() {
    let fx = Fx::new("whole");
    varied(&fx);
    let full = fx.open_later().unwrap();
    assert!(!full.listed_from_cache());
    let want = seen(&full);
    assert_eq!(want.0, fx.measured_entries(&full));
    drop(full);
    let cache_file = fx.root.join(cache::NAME);
    let written = std::fs::read(&cache_file).unwrap();
    let mut d = fx.open_later().unwrap();
    assert!(d.listed_from_cache());
    assert_eq!(d.sizes_cached(), 7);
    assert_eq!(seen(&d), want, "the same UIDs, sizes, order and files");
    assert_eq!(
        debug_notes(&mut d),
        ["7 messages, listed from the listing cache (new/ and cur/ unchanged)"]
    );
    for i in 0..7 {
        let name = &d.files.get(i).unwrap();
        let content = std::fs::read(name.path(&fx.root)).unwrap();
        assert_eq!(retr(&mut d, i, None).unwrap(), encoded(&content, None));
    }
    drop(d);
    assert_eq!(
        std::fs::read(&cache_file).unwrap(),
        written,
        "not rewritten"
    );
    // Any change to new/ or cur/ (here: a delivery) means a full listing,
    // with the sizes still taken per file, and a new cache.
    fx.put("new", "5.new.host", CRLF, at(5, 0));
    let d = fx.open_later().unwrap();
    assert!(!d.listed_from_cache());
    assert_eq!(d.sizes_cached(), 7);
    assert_eq!(d.entries().len(), 8);
    let want = seen(&d);
    drop(d);
    let d = fx.open_later().unwrap();
    assert!(d.listed_from_cache());
    assert_eq!(seen(&d), want);
    drop(d);
    // A reader's rename in cur/ (flags) too.
    std::fs::rename(
        fx.root.join("cur/3.c.host:2,"),
        fx.root.join("cur/3.c.host:2,T"),
    )
    .unwrap();
    let d = fx.open_later().unwrap();
    assert!(!d.listed_from_cache());
    assert_eq!(d.files.get(5).unwrap().name, "3.c.host:2,T");
}

#[test]
fn a_racy_directory_is_not_taken_whole() {
    let fx = Fx::new("racy");
    varied(&fx);
    // Now: new/ and cur/ changed within the last two seconds, so a change
    // after the stamps were read could leave them equal.
    let first = fx.open().unwrap();
    let want = seen(&first);
    drop(first);
    for _ in 0..2 {
        let d = fx.open().unwrap();
        assert!(!d.listed_from_cache());
        assert_eq!(d.sizes_cached(), 7, "sizes still from the cache");
        assert_eq!(seen(&d), want);
    }
    let stored = cache::load(&fx.root.join(cache::NAME), &Dropped::current_for_tests()).unwrap();
    assert!(!stored.whole);
    // Once settled, a login makes it whole.
    assert!(!fx.open_later().unwrap().listed_from_cache());
    assert!(fx.open_later().unwrap().listed_from_cache());
}

#[test]
fn a_listing_with_skipped_entries_is_not_taken_whole() {
    let fx = Fx::new("skips");
    varied(&fx);
    std::os::unix::fs::symlink("/etc/passwd", fx.root.join("new/alink")).unwrap();
    for _ in 0..2 {
        let mut d = fx.open_later().unwrap();
        assert!(!d.listed_from_cache());
        let notes: Vec<Note> = d.take_notes();
        assert!(
            notes.iter().any(|n| format!("{n:?}").contains("alink")),
            "the notice at every login: {notes:?}"
        );
    }
}

#[test]
fn a_forged_whole_cache_is_taken_only_for_its_own_stamps() {
    let fx = Fx::new("forged");
    varied(&fx);
    let want = seen(&fx.open_later().unwrap());
    // Another listing under other stamps: not taken whole, and its size
    // for another inode not believed per file.
    let liar = Listed {
        wire: 12_345,
        ino: want.1[0].ino + 1,
        ..want.1[0].clone()
    };
    let bytes = cache::to_bytes(&[Stamp::default(); 2], true, &listing(&[liar]));
    std::fs::write(fx.root.join(cache::NAME), bytes).unwrap();
    let d = fx.open_later().unwrap();
    assert!(!d.listed_from_cache());
    assert_eq!(seen(&d), want);
}

#[test]
fn quit_after_a_settled_listing_unlinks_by_name_and_still_finds_moved_ones() {
    let fx = Fx::new("dele-all");
    varied(&fx);
    drop(fx.open_later().unwrap());
    let mut d = fx.open_later().unwrap();
    assert!(d.listed_from_cache());
    let n = d.entries().len();
    let cmds: Vec<String> = (1..=n).map(|i| format!("DELE {i}")).collect();
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let marks = session_marks(d.entries(), &cmds);
    assert_eq!(d.commit(&marks), Ok(CommitStats::default()));
    assert!(fx.names("new").is_empty() && fx.names("cur").is_empty());
    // Another reader moves one during the session: cur/ changed, so its
    // messages are found first; one delivered meanwhile stays.
    varied(&fx);
    drop(fx.open_later().unwrap());
    let mut d = fx.open_later().unwrap();
    assert!(d.listed_from_cache());
    std::fs::rename(
        fx.root.join("cur/2.b.host:2,S"),
        fx.root.join("cur/2.b.host:2,ST"),
    )
    .unwrap();
    std::fs::rename(
        fx.root.join("new/1.a.host"),
        fx.root.join("cur/1.a.host:2,"),
    )
    .unwrap();
    fx.put("new", "8.late.host", LF, at(8, 0));
    let marks = session_marks(d.entries(), &cmds);
    assert_eq!(d.commit(&marks), Ok(CommitStats::default()));
    assert_eq!(fx.names("new"), ["8.late.host"]);
    assert!(fx.names("cur").is_empty());
}

impl Fx {
    /// The entries a drop's sizes must equal: each file measured whole.
    fn measured_entries(&self, d: &MaildirDrop) -> Vec<Entry> {
        d.entries()
            .into_iter()
            .zip(d.files.to_vec())
            .map(|(mut e, f)| {
                e.size = measure(&std::fs::read(f.path(&self.root)).unwrap());
                e
            })
            .collect()
    }
}

#[test]
fn a_second_session_is_in_use_until_the_first_ends() {
    let fx = Fx::new("in-use");
    fx.put("new", "1.a.host", LF, at(1, 0));
    let mut first = fx.open().unwrap();
    let e = fx.open().unwrap_err();
    assert_eq!(
        wire(e.into()),
        format!(
            "-ERR [IN-USE] {}/.popper.lock lock busy!  Is another session active? ({})\r\n",
            fx.root.display(),
            libc::EWOULDBLOCK
        )
    );
    first.abandon();
    assert_eq!(fx.names("new"), ["1.a.host"], "abandon changes nothing");
    let mut again = fx.open().unwrap();
    again.abandon();
}

#[test]
fn open_errors_name_the_maildir() {
    let fx = Fx::new("open-errors");
    let missing = MaildirOptions {
        path: fx.root.join("none"),
        ..fx.opts()
    };
    let e = fx.open_with(missing, None).unwrap_err();
    assert_eq!(
        wire(e.into()),
        format!(
            "-ERR [SYS/PERM] this user has no {}/none\r\n",
            fx.root.display()
        )
    );
    std::fs::remove_dir(fx.root.join("new")).unwrap();
    let e = fx.open().unwrap_err();
    assert_eq!(
        wire(e.into()),
        format!(
            "-ERR [SYS/PERM] unable to scan {}: it has no new/ directory\r\n",
            fx.root.display()
        )
    );
    assert!(!fx.root.join(lock::NAME).exists(), "no lock taken");
    std::fs::create_dir(fx.root.join("new")).unwrap();
    let args = MaildirArgs {
        owner: &Dropped::current_for_tests(),
        opts: fx.opts(),
        mail: None,
    };
    let mut d = <MaildirDrop as Open>::open(args).unwrap();
    assert!(d.entries().is_empty());
    d.abandon();
}

/// A bulletin source for whole logins: one bulletin, recorded in a cell,
/// the record made to fail on demand.
struct Bulletins {
    recorded: Cell<u64>,
    fail: Cell<bool>,
}

impl LoginMail for Bulletins {
    fn arrivals(&self, _notes: &mut Vec<String>) -> Option<Arrivals> {
        (self.recorded.get() < 23).then(|| Arrivals {
            msgs: vec![NewMessage {
                envelope: b"From root Mon Nov 30 10:00:00 2026".to_vec(),
                content: b"X-UIDL: 1.000\nSubject: down on Sunday\n\nbody\n".to_vec(),
            }],
            through: 23,
            what: "bulletins 23.down".into(),
        })
    }

    fn record(&self, through: u64) -> Result<(), MaildropError> {
        if self.fail.get() {
            return Err(MaildropError::Unlocking);
        }
        self.recorded.set(through);
        Ok(())
    }
}

#[test]
fn bulletins_are_delivered_exactly_once() {
    let fx = Fx::new("bulletins");
    fx.put("cur", "1.a.host:2,S", LF, at(1, 0));
    let b = Bulletins {
        recorded: Cell::new(0),
        fail: Cell::new(true),
    };
    // A login that dies before the record (here: the record fails).
    let e = fx.open_with(fx.opts(), Some(&b)).unwrap_err();
    assert!(matches!(e, MaildropError::Interrupted { .. }), "{e:?}");
    assert!(!fx.root.join(lock::NAME).exists(), "the lock is released");
    assert_eq!(fx.names("new").len(), 1);
    // The next login delivers nothing again, records, and shows it.
    b.fail.set(false);
    let mut d = fx.open_with(fx.opts(), Some(&b)).unwrap();
    assert_eq!(b.recorded.get(), 23);
    assert_eq!(d.entries().len(), 2);
    let bull = fx.names("new").remove(0);
    assert!(bull.contains(".popper-bulletin-23-0."), "{bull}");
    assert_eq!(uids(&d)[1], bull);
    assert_eq!(
        retr(&mut d, 1, None).unwrap(),
        encoded(b"X-UIDL: 1.000\nSubject: down on Sunday\n\nbody\n", None)
    );
    d.abandon();
    drop(d);
    let d = fx.open_with(fx.opts(), Some(&b)).unwrap();
    assert_eq!(d.entries().len(), 2);
}

#[test]
fn header_fields_are_found_in_what_top_sends() {
    let fx = Fx::new("header");
    // A header longer than one read before the field, and a body that
    // has what looks like the field.
    let mut long = b"Received: ".to_vec();
    while long.len() < 2 * SEND_CHUNK {
        long.extend_from_slice(b"x");
    }
    long.extend_from_slice(b"\nFrom: late <l@x>\nSubject: s\n\nFrom: body\n");
    let msgs: [&[u8]; 5] = [
        b"X-UIDL: %s%n%x\r\nFrom: %s%n%x <evil@x>\r\nSubject: a\r\n  b\r\n\r\nFrom: body\r\n",
        b"Subject: no from\n\nFrom: body only\n",
        &long,
        b"from:\tlf <lf@x>\nSubject: no body",
        b"",
    ];
    for (i, m) in msgs.iter().enumerate() {
        fx.put("new", &format!("{i}.x.host"), m, at(i as u64, 0));
    }
    let mut d = fx.open().unwrap();
    let h = |d: &mut MaildirDrop, i: usize, name: &[u8], max: usize| {
        d.header(MsgIdx(i), name, max)
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    };
    assert_eq!(
        h(&mut d, 0, b"from:", 200).as_deref(),
        Some("From: %s%n%x <evil@x>")
    );
    assert_eq!(
        h(&mut d, 0, b"SUBJECT", 200).as_deref(),
        Some("Subject: a\r\n  b")
    );
    assert_eq!(
        h(&mut d, 0, b"x-uidl", 200).as_deref(),
        Some("X-UIDL: %s%n%x")
    );
    assert_eq!(h(&mut d, 1, b"from:", 200), None);
    assert_eq!(
        h(&mut d, 2, b"from:", 200).as_deref(),
        Some("From: late <l@x>")
    );
    assert_eq!(
        h(&mut d, 2, b"received", 12).as_deref(),
        Some("Received: xx")
    );
    assert_eq!(
        h(&mut d, 3, b"From:", 200).as_deref(),
        Some("from:\tlf <lf@x>")
    );
    assert_eq!(h(&mut d, 4, b"from:", 200), None);
    // A message another reader took is an error, not an empty field.
    std::fs::remove_file(fx.root.join("new/0.x.host")).unwrap();
    assert!(d.header(MsgIdx(0), b"from:", 200).is_err());
}
