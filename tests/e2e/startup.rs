//! What popper says when it cannot start as configured: a `-f` file it
//! cannot use reaches the client as one `-ERR [SYS/PERM]` line, the log
//! (syslog, or the `-t` file), and a shell user's stderr; a bulletin
//! directory that is missing is said in words, and `-V` warns of it.

use std::time::Duration;

use popper_e2e::pop::Pop;
use popper_e2e::sandbox::Sandbox;
use popper_e2e::wait::{LIMIT, OutputWithin, wait_for};

use crate::popper_args;

/// A sandbox whose `popper.conf` has a bad second line; returns it with
/// the text popper must give after `-ERR [SYS/PERM] ` and in the log.
fn bad_conf(name: &str) -> (Sandbox, String) {
    let sb = Sandbox::new(name);
    sb.set("set nosuch = 1");
    let what = format!(
        "Unable to process config file {}:2: unknown setting \"nosuch\"",
        sb.conf().display()
    );
    (sb, what)
}

#[test]
fn a_bad_config_file_under_inetd_is_one_err_line_and_goes_to_syslog() {
    // Regression (issue 19): the client got qpopper's raw stderr line
    // ("popper: Unable to process config file …", stderr being the
    // socket under inetd) and syslog got nothing.
    let (mut sb, what) = bad_conf("badconf-syslog");
    sb.capture_syslog();
    let args = [
        "popper".to_string(),
        "-f".to_string(),
        sb.conf().display().to_string(),
    ];
    let port = sb.inetd(&popper_e2e::bins::popper(), &args);
    let mut p = Pop::connect(port);
    assert_eq!(p.greeting, format!("-ERR [SYS/PERM] {what}"));
    let rest = p.rest();
    assert!(
        rest.is_empty(),
        "nothing after the -ERR line: {:?}",
        String::from_utf8_lossy(&rest)
    );
    // <131> = facility local0 (16) * 8 + err (3); ident popper[PID].
    wait_for("the error in the syslog", Duration::from_secs(10), || {
        let log = sb.syslog();
        let found = log.lines().any(|l| {
            l.starts_with("<131>") && l.contains(" popper[") && l.ends_with(&format!("]: {what}"))
        });
        if found { Ok(()) } else { Err(log) }
    });
}

#[test]
fn a_bad_config_file_is_logged_to_the_trace_file_when_one_is_given() {
    let (mut sb, what) = bad_conf("badconf-trace");
    let args = popper_args(&sb, &[]);
    let port = sb.inetd(&popper_e2e::bins::popper(), &args);
    let mut p = Pop::connect(port);
    assert_eq!(p.greeting, format!("-ERR [SYS/PERM] {what}"));
    assert!(p.rest().is_empty());
    wait_for(
        "the error in the trace file",
        Duration::from_secs(10),
        || {
            let trace = sb.trace();
            if trace.lines().any(|l| l.ends_with(&format!("]: {what}"))) {
                Ok(())
            } else {
                Err(trace)
            }
        },
    );
}

#[test]
fn a_bad_config_file_on_a_pipe_tells_the_client_and_the_shell_user() {
    let (sb, what) = bad_conf("badconf-pipe");
    let out = sb.pipe(
        &popper_e2e::bins::popper(),
        &["-f".to_string(), sb.conf().display().to_string()],
        b"QUIT\r\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("-ERR [SYS/PERM] {what}\r\n")
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("popper: {what}\n")
    );
}

#[test]
fn dash_v_warns_of_a_missing_bulletin_directory() {
    let out = std::process::Command::new(popper_e2e::bins::popper())
        .args(["-V", "-b", "/nonexistent-bulls"])
        .output_within(LIMIT);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\nbulldir = /nonexistent-bulls\n"));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "popper: warning: Unable to open bulletin directory '/nonexistent-bulls'. (No such file or directory, errno 2); no bulletins will be delivered\n"
    );
}
