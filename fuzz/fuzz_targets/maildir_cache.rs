//! The Maildir listing cache's decoder on arbitrary files and bodies.
//!
//! The invariants are `popper::fuzzing::maildir_cache`'s (one place, also
//! replayed over `fuzz/regressions/maildir_cache/` by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| popper::fuzzing::maildir_cache(data));
