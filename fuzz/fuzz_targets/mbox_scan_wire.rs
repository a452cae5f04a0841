//! The mbox scanner, qpopper's wire form and the scan index on arbitrary
//! spool bytes.
//!
//! The invariants are `popper::fuzzing::mbox_scan_wire`'s (one place, also replayed
//! over `fuzz/regressions/mbox_scan_wire/` by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| popper::fuzzing::mbox_scan_wire(data));
