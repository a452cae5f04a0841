//! The documentation is part of the product: the man pages render without
//! warnings and name every flag and setting the binary accepts.

use std::process::Command;

use popper_e2e::bins::root;
use popper_e2e::wait::{LIMIT, OutputWithin};

fn man_pages() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "8" || e == "5"))
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

#[test]
fn man_pages_render_without_warnings() {
    for page in man_pages() {
        let g = Command::new("groff")
            .args(["-ww", "-z", "-man"])
            .arg(&page)
            .output_within(LIMIT);
        assert!(
            g.status.success() && g.stderr.is_empty(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&g.stderr)
        );
        let m = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .output_within(LIMIT);
        assert!(m.status.success(), "{}", page.display());
        assert!(
            m.stderr.is_empty(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&m.stderr)
        );
    }
}

#[test]
fn the_man_page_names_every_flag_and_setting() {
    let page = std::fs::read_to_string(root().join("man/popper.8")).unwrap();
    let v = Command::new(popper_e2e::bins::popper())
        .arg("-V")
        .output_within(LIMIT);
    let settings: Vec<String> = String::from_utf8(v.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.to_string()))
        .filter(|k| k != "features" && k != "config-file")
        .collect();
    assert!(settings.len() >= 10, "{settings:?}");
    for s in settings {
        let roff = s.replace('-', "\\-");
        let bold = page.lines().any(|l| {
            (l.starts_with(".B ") || l.starts_with(".BR "))
                && l.split([' ', '"']).any(|w| w == roff)
        });
        assert!(bold, "popper(8) does not document setting {s}");
    }
    for flag in ["-d", "-s", "-R", "-V", "-b", "-t", "-T", "-f"] {
        let roff = flag.replace('-', "\\-");
        assert!(
            page.contains(&format!(".B {roff}")) || page.contains(&format!(".BI {roff} ")),
            "popper(8) does not document {flag}"
        );
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("make demo") && readme.contains("make test"));
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        ci.contains("make test"),
        "CI runs the README's test command"
    );
}

#[test]
fn the_readme_lists_every_setting() {
    // Regression (issue 19): max-auth-failures and scan-index were missing.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let v = Command::new(popper_e2e::bins::popper())
        .arg("-V")
        .output_within(LIMIT);
    let text = String::from_utf8(v.stdout).unwrap();
    let missing: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .filter(|k| *k != "config-file" && !readme.contains(&format!("`{k}`")))
        .collect();
    assert!(missing.is_empty(), "README.md does not list {missing:?}");
}

#[test]
fn the_readme_says_the_tests_keep_pt_accounts() {
    // Regression (issue 19): the tests leave accounts behind
    // (tests/src/users.rs makes only pt_* ones); the README must say so
    // and how to remove them.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains("accounts named `pt_*`")
            && readme.contains("grep '^pt_' | xargs -rn1 userdel -r"),
        "README.md does not tell about the pt_* test accounts"
    );
}

#[test]
fn make_echoes_no_comment() {
    // Regression (issue 19): a comment inside a recipe is passed to the
    // shell, so make printed it with the commands.
    let out = popper_e2e::run(
        Command::new("make")
            .args([
                "-n", "build", "install", "deb", "demo", "lint", "unit", "e2e",
            ])
            .current_dir(root()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let comments: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect();
    assert!(comments.is_empty(), "make echoes {comments:?}");
}
