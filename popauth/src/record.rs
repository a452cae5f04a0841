//! The pop.auth record format (qpopper.md §5.2–5.3), shared by popauth and
//! popper so the two can never disagree:
//!
//! * key: the user name's bytes plus one NUL;
//! * value: the secret with every byte XOR 0xFF (qpopper's "obscure"), plus
//!   one NUL.
//!
//! The transform is its own inverse. It hides secrets from a casual look,
//! nothing more; the file's 0600 mode is the protection. A secret cannot
//! contain NUL or 0xFF (0xFF would encode to NUL and cut the value short).

/// Why a secret cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadSecret {
    /// It is empty.
    Empty,
    /// It contains a NUL or 0xFF byte, which the format cannot hold.
    Unstorable,
}

/// The key for `name`.
pub fn key(name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.extend_from_slice(name);
    k.push(0);
    k
}

/// The stored value for `secret`.
pub fn encode(secret: &[u8]) -> Result<Vec<u8>, BadSecret> {
    if secret.is_empty() {
        return Err(BadSecret::Empty);
    }
    if secret.iter().any(|b| *b == 0 || *b == 0xff) {
        return Err(BadSecret::Unstorable);
    }
    let mut v: Vec<u8> = secret.iter().map(|b| b ^ 0xff).collect();
    v.push(0);
    Ok(v)
}

/// The secret in a stored value: the bytes before the first NUL (all of
/// them if there is none), each XOR 0xFF.
pub fn decode(value: &[u8]) -> Vec<u8> {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    value[..end].iter().map(|b| b ^ 0xff).collect()
}

/// A key back to the name it was made from (the bytes before the NUL).
pub fn name_of(key: &[u8]) -> &[u8] {
    let end = key.iter().position(|b| *b == 0).unwrap_or(key.len());
    &key[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qpopper_record_vectors() {
        // qpopper.md §15.2
        assert_eq!(key(b"alice"), [0x61, 0x6c, 0x69, 0x63, 0x65, 0x00]);
        assert_eq!(
            encode(b"tanstaaf").unwrap(),
            [0x8b, 0x9e, 0x91, 0x8c, 0x8b, 0x9e, 0x9e, 0x99, 0x00]
        );
        assert_eq!(
            encode(b"secret").unwrap(),
            [0x8c, 0x9a, 0x9c, 0x8d, 0x9a, 0x8b, 0x00]
        );
        assert_eq!(
            encode(b"Pa55word!").unwrap(),
            [0xaf, 0x9e, 0xca, 0xca, 0x88, 0x90, 0x8d, 0x9b, 0xde, 0x00]
        );
        for s in [&b"tanstaaf"[..], b"secret", b"Pa55word!"] {
            assert_eq!(decode(&encode(s).unwrap()), s);
        }
    }

    #[test]
    fn unstorable_and_odd_values() {
        assert_eq!(encode(b""), Err(BadSecret::Empty));
        assert_eq!(encode(b"a\0b"), Err(BadSecret::Unstorable));
        assert_eq!(encode(b"a\xffb"), Err(BadSecret::Unstorable));
        // A value without its NUL (written by another tool) still decodes.
        assert_eq!(decode(&[0x8c, 0x9a]), b"se");
        // Anything after the first NUL (4.x SCRAM data) is ignored.
        assert_eq!(decode(&[0x8c, 0x9a, 0x00, 0x41, 0x42]), b"se");
        assert_eq!(decode(b""), b"");
        assert_eq!(name_of(b"alice\0"), b"alice");
        assert_eq!(name_of(b"alice"), b"alice");
    }
}
