//! The pop.auth record codec on arbitrary bytes (what gdbm hands popper
//! from the database file).
//!
//! The invariants are `popper::fuzzing::popauth_record`'s (one place, also replayed
//! over `fuzz/regressions/popauth_record/` by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| popper::fuzzing::popauth_record(data));
