//! The pop.auth record codec on arbitrary bytes (what gdbm hands popper
//! from the database file).
//!
//! Invariants: no panic; decoding a value never yields its terminating NUL;
//! every secret `encode` accepts decodes back to itself, and a name
//! without NUL round-trips through its key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popauth::record;

fuzz_target!(|data: &[u8]| {
    let secret = record::decode(data);
    assert!(secret.len() <= data.len());
    let _ = record::name_of(data);
    if let Ok(v) = record::encode(data) {
        assert_eq!(record::decode(&v), data, "encode/decode round trip");
    }
    if !data.contains(&0) {
        let key = record::key(data);
        assert_eq!(record::name_of(&key), data, "key/name round trip");
    }
});
