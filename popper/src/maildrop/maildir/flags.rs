//! A Maildir file name's parts: the unique base name before the first `:`
//! and the info after it, whose `2,FLAGS` form carries the message flags
//! (cr.yp.to/proto/maildir.html: flags are single characters in ASCII
//! order; `S` is "seen").
//!
//! Pure byte functions: which name a message gets when it is read or moved
//! to `cur/` is decided here, and nowhere else.

/// The info prefix of the flags form.
const FLAGS_INFO: &[u8] = b"2,";

/// The seen flag.
pub const SEEN: u8 = b'S';

/// The base name (up to the first `:`) and the info after it, if any.
pub fn split(name: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b':', name) {
        Some(i) => (&name[..i], Some(&name[i + 1..])),
        None => (name, None),
    }
}

/// The flags of a name whose info is `2,FLAGS`; `None` for a name without
/// info or with info of another kind (`1,…` is experimental in the spec).
pub fn flags(name: &[u8]) -> Option<&[u8]> {
    split(name).1?.strip_prefix(FLAGS_INFO)
}

/// True when the name carries the seen flag.
pub fn is_seen(name: &[u8]) -> bool {
    flags(name).is_some_and(|f| f.contains(&SEEN))
}

/// The name with `flag` among its flags, the flags in ASCII order and
/// each once. A name without info gets `:2,FLAG`. `None` for a name
/// whose info is not the flags form: it cannot carry the flag, and is left
/// as it is.
pub fn with_flag(name: &[u8], flag: u8) -> Option<Vec<u8>> {
    let (base, info) = split(name);
    let mut set: Vec<u8> = match info {
        None => Vec::new(),
        Some(i) => i.strip_prefix(FLAGS_INFO)?.to_vec(),
    };
    set.push(flag);
    set.sort_unstable();
    set.dedup();
    let mut out = Vec::with_capacity(base.len() + 3 + set.len());
    out.extend_from_slice(base);
    out.push(b':');
    out.extend_from_slice(FLAGS_INFO);
    out.extend_from_slice(&set);
    Some(out)
}

/// The name a message in `new/` gets in `cur/` when no flag is added:
/// `X` → `X:2,` (COMPAT qmail-pop3d), a name that already has info keeps
/// it (qmail-pop3d would append a second `:2,`).
pub fn for_cur(name: &[u8]) -> Vec<u8> {
    let mut out = name.to_vec();
    if split(name).1.is_none() {
        out.push(b':');
        out.extend_from_slice(FLAGS_INFO);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_the_first_colon() {
        type Case<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);
        let cases: &[Case] = &[
            (b"1234.M1P2.host", b"1234.M1P2.host", None),
            (b"1234.M1P2.host:2,S", b"1234.M1P2.host", Some(b"2,S")),
            (b"a:2,:x", b"a", Some(b"2,:x")),
            (b":2,S", b"", Some(b"2,S")),
            (b"a:", b"a", Some(b"")),
        ];
        for (name, base, info) in cases {
            assert_eq!(split(name), (*base, *info), "{name:?}");
        }
    }

    #[test]
    fn seen_is_an_s_in_the_flags_form_only() {
        let cases: &[(&[u8], bool)] = &[
            (b"x", false),
            (b"x:2,", false),
            (b"x:2,S", true),
            (b"x:2,FRS", true),
            (b"x:2,RT", false),
            (b"x:1,S", false),
            (b"xS", false),
        ];
        for (name, seen) in cases {
            assert_eq!(is_seen(name), *seen, "{name:?}");
        }
    }

    #[test]
    fn adding_a_flag_keeps_ascii_order() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"x", Some(b"x:2,S")),
            (b"x:2,", Some(b"x:2,S")),
            (b"x:2,S", Some(b"x:2,S")),
            (b"x:2,FT", Some(b"x:2,FST")),
            (b"x:2,RT", Some(b"x:2,RST")),
            (b"x:2,ab", Some(b"x:2,Sab")),
            (b"x:2,TR", Some(b"x:2,RST")),
            (b"x:1,weird", None),
            (b"x:", None),
        ];
        for (name, want) in cases {
            assert_eq!(with_flag(name, SEEN).as_deref(), *want, "{name:?}");
        }
    }

    #[test]
    fn moving_to_cur_adds_empty_info_once() {
        let cases: &[(&[u8], &[u8])] =
            &[(b"x", b"x:2,"), (b"x:2,S", b"x:2,S"), (b"x:1,y", b"x:1,y")];
        for (name, want) in cases {
            assert_eq!(for_cur(name), *want, "{name:?}");
        }
    }
}
