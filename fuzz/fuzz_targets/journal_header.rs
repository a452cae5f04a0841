//! The update journal's header codec on arbitrary text and blocks.
//!
//! The invariants are `popper::fuzzing::journal_header`'s (one place, also replayed
//! over `fuzz/regressions/journal_header/` by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| popper::fuzzing::journal_header(data));
