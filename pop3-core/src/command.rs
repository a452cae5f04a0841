//! Tokenizing a command line and turning it into a [`Command`].
//!
//! COMPAT qpopper 2.53: tokens are separated by runs of C `isspace` bytes
//! (space, tab, CR, LF, VT, FF); at most five tokens (`MAXPARMCOUNT`); the
//! command word is matched case-insensitively; arguments keep their case;
//! `PASS` takes the raw rest of the line so passwords may contain spaces.
//!
//! DEVIATION: numbers are strict decimal (no sign, no trailing junk); a
//! non-number is not `atoi`'s silent 0 but is answered with the text the
//! command uses for a bad number. See DECISIONS.md "Parsing".

use crate::limits::MAX_TOKENS;
use crate::secret::Secret;

/// The command words popper knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `USER name`
    User,
    /// `PASS secret`
    Pass,
    /// `APOP name digest`
    Apop,
    /// `QUIT`
    Quit,
    /// `STAT`
    Stat,
    /// `LIST [msg]`
    List,
    /// `RETR msg`
    Retr,
    /// `DELE msg`
    Dele,
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset,
    /// `TOP msg n`
    Top,
    /// `LAST`
    Last,
    /// `UIDL [msg]`
    Uidl,
    /// `EUIDL [msg]` (qpopper's extension)
    Euidl,
    /// `XTND subcommand ...` (qpopper's extensions)
    Xtnd,
    /// `CAPA` (RFC 2449)
    Capa,
    /// `STLS` (RFC 2595)
    Stls,
    /// `AUTH [mechanism [initial-response]]` (RFC 5034)
    Auth,
}

impl Verb {
    fn from_word(word: &[u8]) -> Option<Verb> {
        Some(match word {
            b"user" => Verb::User,
            b"pass" => Verb::Pass,
            b"apop" => Verb::Apop,
            b"quit" => Verb::Quit,
            b"stat" => Verb::Stat,
            b"list" => Verb::List,
            b"retr" => Verb::Retr,
            b"dele" => Verb::Dele,
            b"noop" => Verb::Noop,
            b"rset" => Verb::Rset,
            b"top" => Verb::Top,
            b"last" => Verb::Last,
            b"uidl" => Verb::Uidl,
            b"euidl" => Verb::Euidl,
            b"xtnd" => Verb::Xtnd,
            b"capa" => Verb::Capa,
            b"stls" => Verb::Stls,
            b"auth" => Verb::Auth,
            _ => return None,
        })
    }

    /// The lower-case word, as 2.53 echoes it in argument-count errors.
    pub fn word(self) -> &'static str {
        match self {
            Verb::User => "user",
            Verb::Pass => "pass",
            Verb::Apop => "apop",
            Verb::Quit => "quit",
            Verb::Stat => "stat",
            Verb::List => "list",
            Verb::Retr => "retr",
            Verb::Dele => "dele",
            Verb::Noop => "noop",
            Verb::Rset => "rset",
            Verb::Top => "top",
            Verb::Last => "last",
            Verb::Uidl => "uidl",
            Verb::Euidl => "euidl",
            Verb::Xtnd => "xtnd",
            Verb::Capa => "capa",
            Verb::Stls => "stls",
            Verb::Auth => "auth",
        }
    }

    /// Allowed argument counts (qpopper.md §3.3), excluding the word itself.
    fn arity(self) -> (usize, usize) {
        match self {
            Verb::User => (1, 1),
            // COMPAT qpopper 2.53: the raw rest of the line is the password,
            // so `PASS` alone tries the empty password (and fails like any
            // wrong one).
            Verb::Pass => (0, usize::MAX),
            Verb::Apop => (2, 2),
            Verb::List | Verb::Uidl | Verb::Euidl => (0, 1),
            // COMPAT qpopper 2.53: 1..99; the subcommand checks the rest.
            Verb::Xtnd => (1, usize::MAX),
            Verb::Retr | Verb::Dele => (1, 1),
            Verb::Top => (2, 2),
            Verb::Auth => (0, 2),
            Verb::Quit
            | Verb::Stat
            | Verb::Noop
            | Verb::Rset
            | Verb::Last
            | Verb::Capa
            | Verb::Stls => (0, 0),
        }
    }
}

/// `XTND`'s subcommands (qpopper.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// `XTND XLST header [msg]`
    Xlst,
    /// `XTND XMIT` (sends mail: refused here)
    Xmit,
}

impl Sub {
    fn from_word(word: &[u8]) -> Option<Sub> {
        match word {
            b"xlst" => Some(Sub::Xlst),
            b"xmit" => Some(Sub::Xmit),
            _ => None,
        }
    }

    /// The lower-case word, as qpopper echoes it in argument-count errors.
    pub fn word(self) -> &'static str {
        match self {
            Sub::Xlst => "xlst",
            Sub::Xmit => "xmit",
        }
    }

    /// Allowed argument counts after the subcommand word.
    fn arity(self) -> (usize, usize) {
        match self {
            Sub::Xlst => (1, 2),
            Sub::Xmit => (0, 0),
        }
    }
}

/// An `XTND` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xtnd<'a> {
    /// `XTND XLST header [msg]`: the header name (a prefix) as sent.
    Xlst {
        /// The header name the client gave.
        name: &'a [u8],
        /// One message, or all.
        msg: Option<NumArg<'a>>,
    },
    /// `XTND XMIT`
    Xmit,
}

/// A message-number argument: the raw token (for echoing in errors) and its
/// value when it is a strict decimal number that fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumArg<'a> {
    /// The token as the client sent it.
    pub raw: &'a [u8],
    /// `Some(n)` for a decimal number without sign that fits in a u64.
    pub value: Option<u64>,
}

impl<'a> NumArg<'a> {
    fn new(raw: &'a [u8]) -> Self {
        NumArg {
            raw,
            value: parse_decimal(raw),
        }
    }
}

/// Strict decimal: one or more ASCII digits and nothing else; `None` when
/// empty, signed, junk-suffixed or too large for u64.
pub fn parse_decimal(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in raw {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// A command with its arguments, borrowed from the input line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `USER name`
    User(&'a [u8]),
    /// `PASS secret`; the secret is the raw rest of the line.
    Pass(Secret),
    /// `APOP name digest`
    Apop {
        /// The user name.
        name: &'a [u8],
        /// The client's hex digest, as sent.
        digest: &'a [u8],
    },
    /// `QUIT`
    Quit,
    /// `STAT`
    Stat,
    /// `LIST [msg]`
    List(Option<NumArg<'a>>),
    /// `RETR msg`
    Retr(NumArg<'a>),
    /// `DELE msg`
    Dele(NumArg<'a>),
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset,
    /// `TOP msg lines`
    Top(NumArg<'a>, NumArg<'a>),
    /// `LAST`
    Last,
    /// `UIDL [msg]`
    Uidl(Option<NumArg<'a>>),
    /// `EUIDL [msg]`
    Euidl(Option<NumArg<'a>>),
    /// `XTND ...`
    Xtnd(Xtnd<'a>),
    /// `CAPA`
    Capa,
    /// `STLS`
    Stls,
    /// `AUTH`: the mechanism's name and the initial response, each if given.
    Auth {
        /// The mechanism's name as sent.
        mechanism: Option<&'a [u8]>,
        /// The initial response (base64, or `=` for an empty one).
        initial: Option<&'a [u8]>,
    },
}

impl Command<'_> {
    /// The command's verb.
    pub fn verb(&self) -> Verb {
        match self {
            Command::User(_) => Verb::User,
            Command::Pass(_) => Verb::Pass,
            Command::Apop { .. } => Verb::Apop,
            Command::Quit => Verb::Quit,
            Command::Stat => Verb::Stat,
            Command::List(_) => Verb::List,
            Command::Retr(_) => Verb::Retr,
            Command::Dele(_) => Verb::Dele,
            Command::Noop => Verb::Noop,
            Command::Rset => Verb::Rset,
            Command::Top(..) => Verb::Top,
            Command::Last => Verb::Last,
            Command::Uidl(_) => Verb::Uidl,
            Command::Euidl(_) => Verb::Euidl,
            Command::Xtnd(_) => Verb::Xtnd,
            Command::Capa => Verb::Capa,
            Command::Stls => Verb::Stls,
            Command::Auth { .. } => Verb::Auth,
        }
    }
}

/// Why a line is not a command. Each maps to one `-ERR` text in `reply.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// More than [`MAX_TOKENS`] tokens.
    TooManyTokens,
    /// Unknown word, or a known one in a state that does not take it.
    /// Holds the lower-cased word.
    Unknown(Vec<u8>),
    /// Fewer arguments than the command takes.
    TooFew(Verb),
    /// More arguments than the command takes.
    TooMany(Verb),
    /// `XTND` with a subcommand popper does not know (lower-cased).
    UnknownSub(Vec<u8>),
    /// Fewer arguments than the `XTND` subcommand takes.
    SubTooFew(Sub),
    /// More arguments than the `XTND` subcommand takes.
    SubTooMany(Sub),
}

/// A tokenized line: the lower-cased command word and its arguments.
#[derive(Debug)]
pub struct Tokens<'a> {
    word: Vec<u8>,
    args: [&'a [u8]; MAX_TOKENS - 1],
    nargs: usize,
    /// For PASS: everything after the single byte that ended the word.
    rest: &'a [u8],
}

impl<'a> Tokens<'a> {
    /// Splits a line (without its line end). `Ok(None)` for a blank line,
    /// which gets no reply at all (COMPAT qpopper 2.53).
    pub fn split(line: &'a [u8]) -> Result<Option<Tokens<'a>>, ParseError> {
        let mut toks = line.split(|b| is_c_space(*b)).filter(|t| !t.is_empty());
        let Some(first) = toks.next() else {
            return Ok(None);
        };
        let word = first.to_ascii_lowercase();
        let mut args: [&'a [u8]; MAX_TOKENS - 1] = [b""; MAX_TOKENS - 1];
        let mut nargs = 0;
        for t in toks {
            if nargs == MAX_TOKENS - 1 {
                // DEVIATION: 2.53 refused a password with five or more spaces
                // ("Too many arguments supplied."); PASS uses the raw rest of
                // the line anyway, so its token count does not matter.
                if word == b"pass" {
                    break;
                }
                return Err(ParseError::TooManyTokens);
            }
            args[nargs] = t;
            nargs += 1;
        }
        // The word starts at the first non-space byte; `rest` begins one byte
        // after its end (the single delimiter), like qpopper's PASS special case.
        let word_start = line.iter().position(|b| !is_c_space(*b)).unwrap_or(0);
        let word_end = word_start + first.len();
        let rest = line.get(word_end + 1..).unwrap_or(b"");
        let rest = trim_end_crlf(rest);
        Ok(Some(Tokens {
            word,
            args,
            nargs,
            rest,
        }))
    }

    /// The lower-cased command word.
    pub fn word(&self) -> &[u8] {
        &self.word
    }

    /// The verb, if the word is one popper knows.
    pub fn verb(&self) -> Option<Verb> {
        Verb::from_word(&self.word)
    }

    /// Builds the command for `verb` (which the caller has checked is allowed
    /// in the current state), checking its argument count.
    pub fn command(&self, verb: Verb) -> Result<Command<'a>, ParseError> {
        let (min, max) = verb.arity();
        if self.nargs < min {
            return Err(ParseError::TooFew(verb));
        }
        if self.nargs > max {
            return Err(ParseError::TooMany(verb));
        }
        let a = &self.args;
        let opt = |n: usize| {
            if n == 1 {
                Some(NumArg::new(a[0]))
            } else {
                None
            }
        };
        Ok(match verb {
            Verb::User => Command::User(a[0]),
            Verb::Pass => Command::Pass(Secret::new(self.rest.to_vec())),
            Verb::Apop => Command::Apop {
                name: a[0],
                digest: a[1],
            },
            Verb::Quit => Command::Quit,
            Verb::Stat => Command::Stat,
            Verb::List => Command::List(opt(self.nargs)),
            Verb::Retr => Command::Retr(NumArg::new(a[0])),
            Verb::Dele => Command::Dele(NumArg::new(a[0])),
            Verb::Noop => Command::Noop,
            Verb::Rset => Command::Rset,
            Verb::Top => Command::Top(NumArg::new(a[0]), NumArg::new(a[1])),
            Verb::Last => Command::Last,
            Verb::Uidl => Command::Uidl(opt(self.nargs)),
            Verb::Euidl => Command::Euidl(opt(self.nargs)),
            Verb::Xtnd => Command::Xtnd(self.xtnd()?),
            Verb::Capa => Command::Capa,
            Verb::Stls => Command::Stls,
            Verb::Auth => Command::Auth {
                mechanism: (self.nargs >= 1).then_some(a[0]),
                initial: (self.nargs >= 2).then_some(a[1]),
            },
        })
    }
}

impl<'a> Tokens<'a> {
    /// `XTND`'s subcommand (matched case-insensitively) and its arguments.
    fn xtnd(&self) -> Result<Xtnd<'a>, ParseError> {
        let word = self.args[0].to_ascii_lowercase();
        let Some(sub) = Sub::from_word(&word) else {
            return Err(ParseError::UnknownSub(word));
        };
        let n = self.nargs - 1;
        let (min, max) = sub.arity();
        if n < min {
            return Err(ParseError::SubTooFew(sub));
        }
        if n > max {
            return Err(ParseError::SubTooMany(sub));
        }
        let a = &self.args;
        Ok(match sub {
            Sub::Xlst => Xtnd::Xlst {
                name: a[1],
                msg: (n == 2).then(|| NumArg::new(a[2])),
            },
            Sub::Xmit => Xtnd::Xmit,
        })
    }
}

/// C `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim_end_crlf(mut s: &[u8]) -> &[u8] {
    while let Some((&last, rest)) = s.split_last() {
        if last == b'\r' || last == b'\n' {
            s = rest;
        } else {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(line: &[u8]) -> Tokens<'_> {
        Tokens::split(line).unwrap().unwrap()
    }

    #[test]
    fn blank_lines_have_no_tokens() {
        for l in [&b""[..], b" ", b"\t \r", b"\x0b\x0c"] {
            assert!(Tokens::split(l).unwrap().is_none());
        }
    }

    #[test]
    fn word_is_lower_cased_and_args_keep_case() {
        let t = toks(b"uSeR Alice");
        assert_eq!(t.word(), b"user");
        assert_eq!(t.command(Verb::User).unwrap(), Command::User(b"Alice"));
    }

    #[test]
    fn at_most_five_tokens() {
        assert!(Tokens::split(b"a b c d e").unwrap().is_some());
        assert_eq!(
            Tokens::split(b"a b c d e f").unwrap_err(),
            ParseError::TooManyTokens
        );
    }

    #[test]
    fn arity() {
        assert_eq!(
            toks(b"USER").command(Verb::User).unwrap_err(),
            ParseError::TooFew(Verb::User)
        );
        assert_eq!(
            toks(b"USER a b").command(Verb::User).unwrap_err(),
            ParseError::TooMany(Verb::User)
        );
        assert_eq!(
            toks(b"STAT 1").command(Verb::Stat).unwrap_err(),
            ParseError::TooMany(Verb::Stat)
        );
        assert_eq!(
            toks(b"TOP 1").command(Verb::Top).unwrap_err(),
            ParseError::TooFew(Verb::Top)
        );
        assert!(toks(b"LIST").command(Verb::List).is_ok());
        assert!(toks(b"LIST 1").command(Verb::List).is_ok());
        assert_eq!(
            toks(b"LIST 1 2").command(Verb::List).unwrap_err(),
            ParseError::TooMany(Verb::List)
        );
    }

    #[test]
    fn pass_keeps_the_raw_rest() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"PASS  my pass ", b" my pass "),
            (b"PASS secret", b"secret"),
            (b"pass a b c d e f g", b"a b c d e f g"),
            (b"PASS x\r", b"x"),
            (b"  PASS\tsp ace", b"sp ace"),
        ];
        for (line, want) in cases {
            match toks(line).command(Verb::Pass).unwrap() {
                Command::Pass(s) => assert_eq!(s.expose(), *want),
                c => panic!("{c:?}"),
            }
        }
        match toks(b"PASS").command(Verb::Pass).unwrap() {
            Command::Pass(s) => assert_eq!(s.expose(), b""),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_decimal(b"1"), Some(1));
        assert_eq!(parse_decimal(b"007"), Some(7));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1x",
            b"abc",
            b"99999999999999999999",
            b"1.0",
            b"\xff",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn auth_takes_a_mechanism_and_an_initial_response() {
        assert_eq!(
            toks(b"AUTH").command(Verb::Auth).unwrap(),
            Command::Auth {
                mechanism: None,
                initial: None
            }
        );
        assert_eq!(
            toks(b"auth PLAIN AGFsaWNlAHB3")
                .command(Verb::Auth)
                .unwrap(),
            Command::Auth {
                mechanism: Some(b"PLAIN"),
                initial: Some(b"AGFsaWNlAHB3")
            }
        );
        assert_eq!(
            toks(b"AUTH a b c").command(Verb::Auth).unwrap_err(),
            ParseError::TooMany(Verb::Auth)
        );
        assert_eq!(
            toks(b"STLS x").command(Verb::Stls).unwrap_err(),
            ParseError::TooMany(Verb::Stls)
        );
    }

    #[test]
    fn euidl_and_xtnd() {
        assert_eq!(
            toks(b"EUIDL").command(Verb::Euidl).unwrap(),
            Command::Euidl(None)
        );
        assert_eq!(
            toks(b"euidl 1 2").command(Verb::Euidl).unwrap_err(),
            ParseError::TooMany(Verb::Euidl)
        );
        assert_eq!(
            toks(b"XTND").command(Verb::Xtnd).unwrap_err(),
            ParseError::TooFew(Verb::Xtnd)
        );
        assert_eq!(
            toks(b"xtnd XLST Message-Id").command(Verb::Xtnd).unwrap(),
            Command::Xtnd(Xtnd::Xlst {
                name: b"Message-Id",
                msg: None
            })
        );
        assert_eq!(
            toks(b"XTND xlst From 2").command(Verb::Xtnd).unwrap(),
            Command::Xtnd(Xtnd::Xlst {
                name: b"From",
                msg: Some(NumArg::new(b"2"))
            })
        );
        assert_eq!(
            toks(b"XTND XLST").command(Verb::Xtnd).unwrap_err(),
            ParseError::SubTooFew(Sub::Xlst)
        );
        assert_eq!(
            toks(b"XTND XLST a 1 2").command(Verb::Xtnd).unwrap_err(),
            ParseError::SubTooMany(Sub::Xlst)
        );
        assert_eq!(
            toks(b"XTND XMIT").command(Verb::Xtnd).unwrap(),
            Command::Xtnd(Xtnd::Xmit)
        );
        assert_eq!(
            toks(b"XTND XMIT x").command(Verb::Xtnd).unwrap_err(),
            ParseError::SubTooMany(Sub::Xmit)
        );
        assert_eq!(
            toks(b"XTND Foo").command(Verb::Xtnd).unwrap_err(),
            ParseError::UnknownSub(b"foo".to_vec())
        );
    }

    #[test]
    fn nul_and_eight_bit_bytes_are_ordinary() {
        let t = toks(b"USER a\0\xffb");
        assert_eq!(t.command(Verb::User).unwrap(), Command::User(b"a\0\xffb"));
        assert_eq!(toks(b"\xffWORD").word(), b"\xffword");
    }
}
