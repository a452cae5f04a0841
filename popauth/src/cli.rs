//! popauth's command line → what to do.
//!
//! COMPAT qpopper 2.53 (qpopper.md §6.1): each argument starting with `-`
//! is compared exactly (no abbreviations) with the option names; `-user`
//! and `-delete` need a following name that does not start with `-`; an
//! unknown switch is `-X unknown option`; any other argument is the usage
//! text. From 4.x (DECISIONS.md): `-init -safe`, `-user NAME SECRET` (for
//! scripts) and `-list NAME`. Ours: `-import BASE [DEST] [-f]`, the
//! one-step migration from a 2.53 ndbm pop.auth.

/// What popauth was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `-help` / `--help` / `-h`: print the usage and what each option does.
    Help,
    /// No option: the caller changes their own secret.
    ChangeOwn,
    /// `-init [-safe]`: create the database (root only).
    Init {
        /// `-safe`: leave an existing database alone.
        safe: bool,
    },
    /// `-user NAME [SECRET]`: set NAME's secret (root or pop).
    User {
        /// The user.
        name: String,
        /// Given on the command line (no prompts).
        secret: Option<String>,
    },
    /// `-delete NAME`: remove NAME's record (root or pop).
    Delete {
        /// The user.
        name: String,
    },
    /// `-import BASE [DEST] [-f]`: copy a qpopper 2.53 ndbm database
    /// (`BASE.dir`+`BASE.pag` or `BASE.db`) into a new gdbm pop.auth
    /// (root only).
    Import {
        /// The ndbm base name (without `.dir`/`.pag`/`.db`).
        base: String,
        /// Where to write; the built-in database when not given.
        dest: Option<String>,
        /// `-f`: replace an existing destination.
        force: bool,
    },
    /// `-list [NAME]`: every name, or whether NAME has a record.
    List {
        /// One user, if given.
        name: Option<String>,
    },
}

/// A command-line mistake; each is one of popauth's exact messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// `popauth: usage: ...`
    Usage,
    /// `popauth: -X unknown option`
    Unknown(String),
    /// `popauth: missing argument to -X`
    Missing(&'static str),
}

/// The usage line (2.53's, with what 4.x added).
pub const USAGE: &str = "usage: popauth [[-init [-safe]]|[-list [name]]|[-user name [secret]]|[-delete name]|[-import base [dest] [-f]]]";

/// `-help`: the usage line and a line per option (popauth(8) has more).
/// Each line is indented two spaces under the usage line; written with
/// `concat!` because a `\`-continued string drops the first line's indent.
pub const HELP: &str = concat!(
    "  (no option)          change your own APOP secret (asks the old one first)\n",
    "  -init [-safe]        create /etc/pop.auth (root only; -safe keeps an existing one)\n",
    "  -user NAME [SECRET]  set NAME's secret, asked twice unless given (root or pop)\n",
    "  -delete NAME         remove NAME's secret (root or pop)\n",
    "  -list [NAME]         list the users with a secret, or check one\n",
    "  -import BASE [DEST]  copy qpopper 2.53's ndbm BASE.pag or BASE.db into /etc/pop.auth\n",
    "                       or DEST (root only; -f replaces an existing one)",
);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage => f.write_str(USAGE),
            CliError::Unknown(o) => write!(f, "{o} unknown option"),
            CliError::Missing(o) => write!(f, "missing argument to -{o}"),
        }
    }
}

/// Parses argv (without the program name).
pub fn parse(args: &[String]) -> Result<Action, CliError> {
    let mut init = false;
    let mut safe = false;
    let mut list: Option<Option<String>> = None;
    let mut user: Option<(String, Option<String>)> = None;
    let mut delete: Option<String> = None;
    let mut import: Option<(String, Option<String>)> = None;
    let mut force = false;
    let mut i = 0;
    let value = |i: usize| args.get(i).filter(|a| !a.starts_with('-')).cloned();
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        match a {
            // `-h` too: what anyone tries first (not in qpopper 2.53).
            "-help" | "--help" | "-h" if args.len() == 1 => return Ok(Action::Help),
            "-init" => init = true,
            "-safe" => safe = true,
            "-list" => {
                let name = value(i);
                if name.is_some() {
                    i += 1;
                }
                list = Some(name);
            }
            "-user" => {
                let name = value(i).ok_or(CliError::Missing("user"))?;
                i += 1;
                let secret = value(i);
                if secret.is_some() {
                    i += 1;
                }
                user = Some((name, secret));
            }
            "-delete" => {
                delete = Some(value(i).ok_or(CliError::Missing("delete"))?);
                i += 1;
            }
            "-import" => {
                let base = value(i).ok_or(CliError::Missing("import"))?;
                i += 1;
                let dest = value(i);
                if dest.is_some() {
                    i += 1;
                }
                import = Some((base, dest));
            }
            "-f" => force = true,
            o if o.starts_with('-') => return Err(CliError::Unknown(o.to_string())),
            _ => return Err(CliError::Usage),
        }
    }
    if (safe && !init) || (force && import.is_none()) {
        return Err(CliError::Usage);
    }
    if let Some((base, dest)) = import {
        return if init || list.is_some() || user.is_some() || delete.is_some() {
            Err(CliError::Usage)
        } else {
            Ok(Action::Import { base, dest, force })
        };
    }
    Ok(match (init, list, user, delete) {
        (true, None, None, None) => Action::Init { safe },
        (false, None, None, None) => Action::ChangeOwn,
        (false, Some(name), None, None) => Action::List { name },
        // COMPAT qpopper 2.53: `-list -user NAME` checks one name.
        (false, Some(None), Some((name, None)), None) => Action::List { name: Some(name) },
        (false, None, Some((name, secret)), None) => Action::User { name, secret },
        (false, None, None, Some(name)) => Action::Delete { name },
        _ => return Err(CliError::Usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Action, CliError> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        parse(&v)
    }

    #[test]
    fn actions() {
        assert_eq!(p(""), Ok(Action::ChangeOwn));
        assert_eq!(p("-init"), Ok(Action::Init { safe: false }));
        assert_eq!(p("-init -safe"), Ok(Action::Init { safe: true }));
        assert_eq!(p("-list"), Ok(Action::List { name: None }));
        assert_eq!(
            p("-list bob"),
            Ok(Action::List {
                name: Some("bob".into())
            })
        );
        assert_eq!(
            p("-list -user bob"),
            Ok(Action::List {
                name: Some("bob".into())
            })
        );
        assert_eq!(
            p("-user bob"),
            Ok(Action::User {
                name: "bob".into(),
                secret: None
            })
        );
        assert_eq!(
            p("-user bob s3cret!"),
            Ok(Action::User {
                name: "bob".into(),
                secret: Some("s3cret!".into())
            })
        );
        assert_eq!(p("-delete bob"), Ok(Action::Delete { name: "bob".into() }));
        assert_eq!(
            p("-import /etc/pop.auth"),
            Ok(Action::Import {
                base: "/etc/pop.auth".into(),
                dest: None,
                force: false
            })
        );
        assert_eq!(
            p("-f -import /old/pop.auth /etc/pop.auth"),
            Ok(Action::Import {
                base: "/old/pop.auth".into(),
                dest: Some("/etc/pop.auth".into()),
                force: true
            })
        );
        assert_eq!(
            p("-import /old/pop.auth -f"),
            Ok(Action::Import {
                base: "/old/pop.auth".into(),
                dest: None,
                force: true
            })
        );
        assert_eq!(p("-help"), Ok(Action::Help));
        assert_eq!(p("--help"), Ok(Action::Help));
        assert_eq!(p("-h"), Ok(Action::Help));
        assert_eq!(p("-h -list"), Err(CliError::Unknown("-h".into())));
    }

    #[test]
    fn every_help_line_is_indented() {
        // Regression (issue 19): the first line was not.
        for l in HELP.lines() {
            assert!(
                l.starts_with("  -") || l.starts_with("  (") || l.starts_with("          "),
                "{l:?}"
            );
        }
        assert_eq!(HELP.lines().count(), 7);
    }

    #[test]
    fn qpopper_errors() {
        // qpopper.md §15.10
        assert_eq!(p("-delete"), Err(CliError::Missing("delete")));
        assert_eq!(p("-user"), Err(CliError::Missing("user")));
        assert_eq!(p("-user -list"), Err(CliError::Missing("user")));
        assert_eq!(p("-frob"), Err(CliError::Unknown("-frob".into())));
        assert_eq!(
            p("-trace /etc/shadow"),
            Err(CliError::Unknown("-trace".into()))
        );
        assert_eq!(
            p("-lis"),
            Err(CliError::Unknown("-lis".into())),
            "no abbreviations"
        );
        assert_eq!(p("bob"), Err(CliError::Usage));
        assert_eq!(p("-safe"), Err(CliError::Usage));
        assert_eq!(p("-import"), Err(CliError::Missing("import")));
        assert_eq!(p("-import -f"), Err(CliError::Missing("import")));
        assert_eq!(p("-f"), Err(CliError::Usage));
        assert_eq!(p("-list -f"), Err(CliError::Usage));
        assert_eq!(p("-import a -list"), Err(CliError::Usage));
        assert_eq!(p("-init -import a"), Err(CliError::Usage));
        assert_eq!(p("-import a b c"), Err(CliError::Usage));
        assert_eq!(p("-init -list"), Err(CliError::Usage));
        assert_eq!(p("-delete bob -user bob"), Err(CliError::Usage));
        assert_eq!(
            CliError::Missing("delete").to_string(),
            "missing argument to -delete"
        );
        assert_eq!(
            CliError::Unknown("-frob".into()).to_string(),
            "-frob unknown option"
        );
    }
}
