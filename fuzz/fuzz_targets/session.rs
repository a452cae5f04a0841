//! A whole session through the shipping dispatch loop, over in-memory mbox
//! messages, from arbitrary client bytes.
//!
//! The invariants are `popper::fuzzing::session`'s (one place, also replayed
//! over `fuzz/regressions/session/` by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| popper::fuzzing::session(data));
