//! The sans-IO POP3 core: bytes in → lines → commands → state machine →
//! steps and replies out.
//!
//! Nothing in this module touches a file descriptor, a file, a uid or a
//! clock; a unit test (`layering` below) enforces that by reading the
//! sources. That is what lets a whole session be unit-tested and fuzzed
//! over an in-memory maildrop.

pub mod capa;
pub mod command;
pub mod error;
pub mod greeting;
pub mod index;
pub mod line;
pub mod reply;
pub mod secret;
pub mod session;
pub mod wire;

#[cfg(test)]
mod layering {
    /// The core must stay pure: no I/O, processes, clocks or FFI.
    #[test]
    fn protocol_sources_do_no_io() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/protocol");
        let forbidden = [
            "std::fs",
            "std::net",
            "std::process",
            "SystemTime",
            "Instant",
            "nix::",
            "libc::",
            "unsafe ",
        ];
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Only the code, not its tests (which may time themselves,
                // and here name the words forbidden).
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                for word in forbidden {
                    assert!(!code.contains(word), "{} uses {word}", path.display());
                }
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} files checked");
    }
}
