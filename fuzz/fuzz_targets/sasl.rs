//! The SASL decoders (base64, PLAIN, CRAM-MD5, SCRAM-SHA-256) on arbitrary
//! client bytes — what AUTH reads before anyone is authenticated, as root.
//!
//! The invariants are `popper::fuzzing::sasl`'s (one place, also replayed
//! over `fuzz/regressions/sasl/` by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| popper::fuzzing::sasl(data));
