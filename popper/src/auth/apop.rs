//! APOP (RFC 1939 §7): the digest is MD5(timestamp ‖ secret), where the
//! timestamp is the greeting's `<...>` challenge byte for byte, written as
//! 32 lower-case hex digits.
//!
//! DEVIATION (DECISIONS.md): the client's digest is accepted in either hex
//! case (qpopper 2.53's `strcmp` refused upper case; clients differ, and
//! it weakens nothing). The comparison takes the same time whatever the
//! digests, so a client cannot learn a prefix from the reply's timing.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// The expected digest in lower-case hex.
pub fn digest_hex(timestamp: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut h = Md5::new();
    h.update(timestamp);
    h.update(secret);
    let d = h.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, b) in d.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    out
}

/// True when the client's `given` digest equals `expected`, in either hex
/// case; constant time in the digests' contents.
pub fn digest_matches(expected: &[u8; 32], given: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    let mut lower = [0u8; 32];
    for (l, g) in lower.iter_mut().zip(given) {
        *l = g.to_ascii_lowercase();
    }
    bool::from(lower.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_1939_vector() {
        let d = digest_hex(b"<1896.697170952@dbc.mtview.ca.us>", b"tanstaaf");
        assert_eq!(&d, b"c4c9334bac560ecc979e58001b3e22fb");
        // qpopper.md §15.1, derived.
        let d = digest_hex(b"<4752.923273295@kiku.fuis.fukui-u.ac.jp>", b"tanstaaf");
        assert_eq!(&d, b"c85aa30edb25983ae26d39fdccb36882");
    }

    #[test]
    fn either_case_and_exact_length() {
        let d = digest_hex(b"<1896.697170952@dbc.mtview.ca.us>", b"tanstaaf");
        assert!(digest_matches(&d, b"c4c9334bac560ecc979e58001b3e22fb"));
        assert!(digest_matches(&d, b"C4C9334BAC560ECC979E58001B3E22FB"));
        assert!(!digest_matches(&d, b"c4c9334bac560ecc979e58001b3e22fa"));
        assert!(!digest_matches(&d, b"c4c9334bac560ecc979e58001b3e22f"));
        assert!(!digest_matches(&d, b"c4c9334bac560ecc979e58001b3e22fbb"));
        assert!(!digest_matches(&d, b""));
    }

    #[test]
    fn comparison_time_does_not_depend_on_the_matching_prefix() {
        // The comparison is subtle's ct_eq over all 32 bytes. A digest wrong
        // in its first byte and one wrong in its last must cost the same:
        // the fastest of many interleaved rounds is compared, which machine
        // load cannot make differ (an early-exit compare would differ by a
        // whole loop of 31 bytes every round).
        let d = digest_hex(b"<1.2@h>", b"s");
        let mut first = d;
        first[0] ^= 1;
        let mut last = d;
        last[31] ^= 1;
        assert!(!digest_matches(&d, &first) && !digest_matches(&d, &last));
        // The thread's CPU time, which a busy machine (CI's two cores
        // shared with the other tests) does not inflate by preempting it.
        let time = |g: &[u8; 32]| {
            let t = crate::clock::thread_cpu_time();
            for _ in 0..2_000 {
                std::hint::black_box(digest_matches(
                    std::hint::black_box(&d),
                    std::hint::black_box(g),
                ));
            }
            (crate::clock::thread_cpu_time() - t).as_nanos()
        };
        let (mut a, mut b) = (u128::MAX, u128::MAX);
        // Alternating which goes first, so neither gains from the order
        // (a warmed cache, a frequency step).
        for round in 0..100 {
            if round % 2 == 0 {
                a = a.min(time(&first));
                b = b.min(time(&last));
            } else {
                b = b.min(time(&last));
                a = a.min(time(&first));
            }
        }
        let ratio = a.max(b) as f64 / a.min(b) as f64;
        assert!(ratio < 1.3, "first-byte {a} ns vs last-byte {b} ns");
    }
}
