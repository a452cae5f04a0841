//! The layering, checked by reading the sources: no I/O from the
//! standard library, no module circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module's code without its tests: everything before its one
/// `#[cfg(test)]` line, which must open the file's last item.
fn modules() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "rs")
            || name == "purity"
            || name.ends_with("_tests")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let marks = text.matches("#[cfg(test)]").count();
        assert!(
            marks <= 1 || name == "lib",
            "{name}: more than one #[cfg(test)] item"
        );
        let code = match text.find("\n#[cfg(test)]\n") {
            Some(i) => {
                let rest = &text[i..];
                if name != "lib" {
                    let inline = rest.contains("\nmod tests {") && rest.trim_end().ends_with('}');
                    let file = rest.trim_end().ends_with("\nmod tests;");
                    assert!(
                        inline || file,
                        "{name}: #[cfg(test)] is not the tests module at the end"
                    );
                }
                text[..i].to_string()
            }
            None => text,
        };
        // Code only: comments may name what the code must not use.
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(name, code);
    }
    out
}

#[test]
fn no_io_clock_or_process() {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "std::thread",
        "std::env",
        "std::os",
        "SystemTime",
        "Instant",
        "nix::",
        "libc::",
        "unsafe ",
        "super::",
    ];
    let mods = modules();
    assert!(mods.len() >= 15, "only {} modules read", mods.len());
    for (name, code) in &mods {
        for word in forbidden {
            assert!(!code.contains(word), "{name}.rs uses {word}");
        }
    }
}

#[test]
fn no_module_circle() {
    let mods = modules();
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, code) in &mods {
        let deps = graph.entry(name.as_str()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + 7..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let dep = &rest[..end];
            if let Some((k, _)) = mods.get_key_value(dep)
                && k != name
                && name != "lib"
            {
                deps.insert(k.as_str());
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit<'a>(
        n: &'a str,
        g: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(n) {
            return;
        }
        assert!(!path.contains(&n), "module circle: {path:?} -> {n}");
        path.push(n);
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, path, done);
        }
        path.pop();
        done.insert(n);
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done);
    }
    // The seam stays storage-neutral: the core names no storage format.
    for (name, code) in &mods {
        for word in ["mbox", "Mbox", "X-UIDL", "x-uidl", "Maildir", "spool"] {
            assert!(!code.contains(word), "{name}.rs names {word}");
        }
    }
}

#[test]
fn only_pure_dependencies() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap();
    let deps = deps.split("\n[").next().unwrap();
    let names: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // Each is no_std-capable, pure Rust, and does no I/O.
    assert_eq!(
        names,
        [
            "base64",  // SASL responses are base64 (RFC 5034)
            "hmac",    // RustCrypto: CRAM-MD5's and SCRAM's HMAC
            "md-5",    // RustCrypto: CRAM-MD5 (popper's APOP uses it too)
            "memchr",  // line scanning
            "pbkdf2",  // RustCrypto: SCRAM's SaltedPassword
            "sha2",    // RustCrypto: SCRAM-SHA-256, the nonce stream
            "subtle",  // constant-time comparison of secrets and digests
            "zeroize", // wiping secrets when dropped
        ]
    );
}
