//! `popauth`: manage the APOP secrets in `/etc/pop.auth` (see popauth(8)).
//! Installed setuid `pop`; see `app.rs` for what makes that safe.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything else: standard descriptors that are really open,
    // nothing from the caller's environment, private files, no core dump
    // that could hold a secret.
    popauth::sys::ensure_standard_fds();
    popauth::sys::clear_environment();
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    ExitCode::from(popauth::app::run(&args))
}
