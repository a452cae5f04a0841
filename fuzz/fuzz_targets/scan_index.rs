//! The scan-index decoder on arbitrary entries and files.
//!
//! The invariants are `popper::fuzzing::scan_index`'s (one place, also replayed
//! over `fuzz/regressions/scan_index/` by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| popper::fuzzing::scan_index(data));
