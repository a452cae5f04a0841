//! popper: a POP3/APOP server compatible with Qualcomm's qpopper.
//!
//! # The shape
//!
//! ```text
//! stdin ─▶ pop3_core::drive (line ─▶ command ─▶ session ─▶ Step) ─▶ serve::ServeHost
//!          (the one dispatch loop, pure)                            (all I/O)
//! ```
//!
//! * The sans-IO core is its own crate, [`pop3_core`]: framing,
//!   tokenizing, the state machine, every reply text, the [`Maildrop`]
//!   trait and the one dispatch loop. It has no `nix`, `libc` or file
//!   system to reach for.
//! * [`maildrop`] holds the messages: the mbox spool, behind the core's
//!   trait; its errors become the core's storage errors at the seam.
//! * [`auth`] decides logins; [`privilege`] crosses from root to the user.
//! * [`serve`] is the host the loop runs on: it reads and writes the
//!   client, checks logins, opens the mailbox and logs what the loop
//!   reports; `main.rs` only builds the configuration and calls it.
//! * [`limits`] lists every bound and why; [`config`] every setting.
//!
//! [`Maildrop`]: pop3_core::maildrop::Maildrop
//!
//! # Privilege map
//!
//! popper starts as root (inetd runs it so) and stays root only for:
//!
//! | module | as root |
//! |---|---|
//! | [`config`] | parse argv and the `-f` file (written by root) |
//! | [`log`] | open syslog / the `-t` trace file |
//! | [`peer`] | `getpeername(0)` |
//! | [`proxy`] | a trusted balancer's PROXY header (bounded, pure parser) |
//! | [`auth`] | passwd/shadow lookup and the password hash |
//! | [`privilege`] | `become_user`: groups, gid, uid — verified |
//!
//! Everything in [`maildrop`] runs as the mail user: opening a mailbox takes
//! the [`privilege::Dropped`] token that only `become_user` returns. Reverse
//! DNS (`reverse-lookup`) also runs only after the drop. Every `unsafe`
//! call is in [`sys`].
#![deny(unsafe_code)]

pub mod auth;
#[cfg(feature = "bulletins")]
pub mod bulletin;
pub mod clock;
pub mod config;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod limits;
pub mod log;
pub mod maildrop;
pub mod peer;
pub mod privilege;
pub mod proxy;
pub mod relay_ctrl;
pub mod serve;
pub mod sys;
pub mod tls;

#[cfg(test)]
mod cited {
    //! The repository stands alone: what the sources cite as
    //! `qpopper.md §N` and `DECISIONS.md` is in `docs/`.

    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(name.as_str(), "target" | ".git" | "corpus" | "artifacts") {
                    sources(&p, out);
                }
            } else if [".rs", ".md", ".py", ".sh", ".8", ".5"]
                .iter()
                .any(|x| name.ends_with(x))
            {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap_or_default(),
                ));
            }
        }
    }

    #[test]
    fn every_cited_section_is_in_docs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let spec = std::fs::read_to_string(root.join("docs/qpopper.md")).unwrap();
        assert!(root.join("docs/DECISIONS.md").is_file());
        let headings: Vec<&str> = spec.lines().filter(|l| l.starts_with('#')).collect();
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut cited = 0;
        for (path, text) in &files {
            for (i, _) in text.match_indices("qpopper.md §") {
                let num: String = text[i + "qpopper.md §".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let num = num.trim_end_matches('.');
                if num.is_empty() {
                    continue;
                }
                let found = headings.iter().any(|h| {
                    h.trim_start_matches('#')
                        .trim_start()
                        .starts_with(&format!("{num}."))
                        || h.trim_start_matches('#')
                            .trim_start()
                            .starts_with(&format!("{num} "))
                });
                assert!(
                    found,
                    "{path} cites qpopper.md §{num}, which docs/qpopper.md lacks"
                );
                cited += 1;
            }
            let outside = ["..", "/shared/"].concat();
            assert!(
                !text.contains(&outside),
                "{path} points outside the repository"
            );
        }
        assert!(cited > 20, "only {cited} citations found");
    }
}
