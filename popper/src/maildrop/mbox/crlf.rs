//! Counting the LFs that the wire form turns into CR LF.
//!
//! A stored line is sent as its content without one CR before the LF,
//! plus CR LF: so a stretch of whole lines costs its own length plus one
//! byte for each LF that does not follow a CR. [`bare_lfs`] counts those
//! in fixed-size blocks the compiler vectorises (no per-line work), which
//! is what lets the scan pass over message bodies at memory speed.

/// Bytes per block: small enough that a block's count fits in a `u8`.
const BLOCK: usize = 128;

/// LFs in `b` not preceded by a CR; `prev` is the byte before `b[0]`.
pub fn bare_lfs(prev: u8, b: &[u8]) -> u64 {
    let Some((&first, _)) = b.split_first() else {
        return 0;
    };
    let mut n = u64::from(first == b'\n' && prev != b'\r');
    // `cur[i]` is b[i + 1], `before[i]` the byte before it.
    let cur = &b[1..];
    let before = &b[..b.len() - 1];
    let mut cur_blocks = cur.chunks_exact(BLOCK);
    let mut before_blocks = before.chunks_exact(BLOCK);
    for (c, p) in (&mut cur_blocks).zip(&mut before_blocks) {
        let mut k = 0u8;
        for (c, p) in c.iter().zip(p) {
            k += u8::from(*c == b'\n') & u8::from(*p != b'\r');
        }
        n += u64::from(k);
    }
    let rest = cur_blocks.remainder().iter().zip(before_blocks.remainder());
    n + rest.filter(|(c, p)| **c == b'\n' && **p != b'\r').count() as u64
}

#[cfg(test)]
mod tests {
    use super::{BLOCK, bare_lfs};

    fn model(prev: u8, b: &[u8]) -> u64 {
        let mut p = prev;
        let mut n = 0;
        for &c in b {
            n += u64::from(c == b'\n' && p != b'\r');
            p = c;
        }
        n
    }

    #[test]
    fn agrees_with_a_byte_by_byte_count_at_every_length_and_split() {
        let mut x = 7u32;
        let mut data = Vec::new();
        for _ in 0..5 * BLOCK + 17 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            data.push(match (x >> 16) % 4 {
                0 => b'\n',
                1 => b'\r',
                _ => b'a',
            });
        }
        for len in 0..data.len() {
            for prev in [b'\r', b'\n', b'a'] {
                assert_eq!(bare_lfs(prev, &data[..len]), model(prev, &data[..len]));
            }
        }
        assert_eq!(bare_lfs(b'x', &[b'\n'; 3 * BLOCK]), 3 * BLOCK as u64);
        assert_eq!(bare_lfs(b'\r', b"\n"), 0);
        assert_eq!(bare_lfs(b'\n', b"\r\n\r\n\n"), 1);
    }
}
