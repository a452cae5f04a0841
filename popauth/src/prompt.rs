//! Asking the user for secrets: without echo from the terminal, as
//! qpopper's `getpass` did, or one line at a time from standard input when
//! it is not a terminal (scripts and tests; rpassword has no such
//! fallback, crates.md §5).

use std::io::{self, BufRead, IsTerminal, Write};

use zeroize::Zeroizing;

/// The longest line read from standard input.
const MAX_LINE: usize = 1024;

/// The terminal's echo turned off (the newline still echoed) until
/// dropped, when the settings are put back as they were.
struct EchoOff<F: std::os::fd::AsFd> {
    fd: F,
    saved: Option<nix::sys::termios::Termios>,
}

impl<F: std::os::fd::AsFd> EchoOff<F> {
    fn new(fd: F) -> EchoOff<F> {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let saved = tcgetattr(&fd).ok();
        if let Some(t) = &saved {
            let mut quiet = t.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            quiet.local_flags.insert(LocalFlags::ECHONL);
            let _ = tcsetattr(&fd, SetArg::TCSANOW, &quiet);
        }
        EchoOff { fd, saved }
    }
}

impl<F: std::os::fd::AsFd> Drop for EchoOff<F> {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(&self.fd, nix::sys::termios::SetArg::TCSANOW, t);
        }
    }
}

/// Where answers come from.
pub struct Prompter {
    tty: bool,
    stdin: io::StdinLock<'static>,
}

impl Default for Prompter {
    fn default() -> Self {
        Self::new()
    }
}

impl Prompter {
    /// Reads from the terminal if standard input is one, else from
    /// standard input.
    pub fn new() -> Prompter {
        let stdin = io::stdin();
        Prompter {
            tty: stdin.is_terminal(),
            stdin: stdin.lock(),
        }
    }

    /// Asks for a secret (no echo on a terminal); `None` at end of input.
    pub fn secret(&mut self, prompt: &str) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
        if self.tty {
            // Echo goes off before the prompt is shown, as getpass(3) does:
            // rpassword turns it off only after printing the prompt, so an
            // answer typed (or pasted) right after the prompt appeared could
            // be echoed.
            let _quiet = EchoOff::new(io::stdin());
            eprint!("{prompt}");
            let _ = io::stderr().flush();
            let s = Zeroizing::new(rpassword::read_password()?);
            return Ok(Some(Zeroizing::new(s.as_bytes().to_vec())));
        }
        // COMPAT getpass: the prompt goes out even when reading a pipe.
        eprint!("{prompt}");
        let _ = io::stderr().flush();
        self.line_bytes()
    }

    /// Asks a question on standard output and reads the answer.
    pub fn ask(&mut self, question: &str) -> io::Result<Option<String>> {
        print!("{question}");
        io::stdout().flush()?;
        Ok(self
            .line_bytes()?
            .map(|l| String::from_utf8_lossy(&l).into_owned()))
    }

    fn line_bytes(&mut self) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
        let mut buf = Zeroizing::new(Vec::new());
        let n = io::Read::take(&mut self.stdin, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if !buf.ends_with(b"\n") && n > MAX_LINE {
            // Never split a long answer into two: skip to its end, refuse it.
            let mut rest = Zeroizing::new(Vec::new());
            while !rest.ends_with(b"\n") {
                rest.clear();
                let m = io::Read::take(&mut self.stdin, 4096).read_until(b'\n', &mut rest)?;
                if m == 0 {
                    break;
                }
            }
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "answer too long",
            ));
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        Ok(Some(buf))
    }
}
