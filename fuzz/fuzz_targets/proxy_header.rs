//! The PROXY protocol header parser (v1 and v2) on arbitrary bytes.
//!
//! The invariants are `popper::fuzzing::proxy_header`'s (one place, also replayed
//! over `fuzz/regressions/proxy_header/` by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| popper::fuzzing::proxy_header(data));
