//! The line reader and tokenizer on arbitrary client bytes.
//!
//! The invariants are `popper::fuzzing::line_tokenizer`'s (one place, also replayed
//! over `fuzz/regressions/line_tokenizer/` by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| popper::fuzzing::line_tokenizer(data));
