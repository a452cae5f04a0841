//! `popper`: the POP3/APOP server, run per connection by inetd, tcpd,
//! xinetd, systemd or tcpserver with the client on stdin/stdout.
//!
//! This file only turns argv into a [`Config`] and hands over to
//! [`popper::serve::serve_stdio`].

use std::path::Path;
use std::process::ExitCode;

use popper::config::{Config, ConfigError, USAGE};

/// The `-f` file is read as root; it is root's file, but is still bounded.
const MAX_CONFIG: u64 = 1 << 20;

fn read_config(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.take(MAX_CONFIG + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(format!("larger than {MAX_CONFIG} bytes"));
    }
    Ok(text)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cfg = match Config::from_args(&args, &read_config) {
        Ok(c) => c,
        Err(ConfigError::Help) => {
            println!("{USAGE}\n\n{}", popper::config::HELP);
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Usage(msg)) => {
            eprintln!("{msg}\n{USAGE}");
            return ExitCode::from(1);
        }
        Err(e @ ConfigError::File { .. }) => {
            eprintln!("popper: Unable to process config file {e}");
            return ExitCode::from(1);
        }
    };
    if cfg.print_version {
        print!("{}", cfg.describe());
        return ExitCode::SUCCESS;
    }
    popper::serve::serve_stdio(&cfg)
}
