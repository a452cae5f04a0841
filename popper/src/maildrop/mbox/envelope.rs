//! Is this line an mbox message separator (a `From ` envelope)?
//!
//! COMPAT qpopper 2.53 (qpopper.md §9.2, the c-client "VALID" test): a line
//! separates messages only if it starts with `From ` and *ends in a date*,
//! judged by the positions of spaces and colons in its tail, so that
//! `From here on, ...` in a body is never a separator. The caller checks the
//! other half of the rule (first line of the file, or after an empty line).
//!
//! DEVIATION: one CR before the LF is ignored (DECISIONS.md: spools written
//! by CRLF tools), where qpopper's copy of the test refused such a line.

/// True when `line` (without its LF) is a valid envelope line.
pub fn is_envelope(line: &[u8]) -> bool {
    if !line.starts_with(b"From ") {
        return false;
    }
    let mut line = line.strip_suffix(b"\r").unwrap_or(line);
    // "... remote from HOST" (UUCP) is not part of the date.
    if line.len() >= 41
        && let Some(sp) = line.iter().rposition(|b| *b == b' ')
        && line[..sp].ends_with(b" remote from")
    {
        line = &line[..sp - b" remote from".len()];
    }
    let n = line.len() as isize;
    if n < 27 {
        return false;
    }
    // Byte at `i` counted from the end (at(-1) is the last byte); 0 outside.
    let at = |i: isize| -> u8 {
        let p = n + i;
        if p >= 0 && p < n { line[p as usize] } else { 0 }
    };
    let sign = |b: u8| b == b'+' || b == b'-';
    // `t`: offset (from the end) of the space right after the time of day.
    let t = if at(-5) == b' ' {
        if at(-8) == b':' {
            -5 //                              hh:mm yyyy
        } else if at(-9) == b' ' {
            -9 //                              hh:mm ZZZ yyyy
        } else if at(-11) == b' ' && sign(at(-10)) {
            -11 //                             hh:mm +hhmm yyyy
        } else {
            return false;
        }
    } else if at(-4) == b' ' && at(-9) == b' ' {
        -9 //                                  hh:mm yyyy ZZZ
    } else if at(-6) == b' ' && at(-11) == b' ' && sign(at(-5)) {
        -11 //                                 hh:mm yyyy +hhmm
    } else {
        return false;
    };
    if at(t - 3) != b':' {
        return false;
    }
    // Space before the time: hh:mm:ss is 8 bytes, hh:mm is 5.
    let s = if at(t - 6) == b':' { t - 9 } else { t - 6 };
    // " Www Mmm dd hh:mm": spaces before the time, the day, the month and
    // the weekday.
    [s, s - 3, s - 7, s - 11].iter().all(|&i| at(i) == b' ')
}

#[cfg(test)]
mod tests {
    use super::is_envelope;

    #[test]
    fn qpopper_recognition_table() {
        // qpopper.md §15.8
        let yes = [
            "From user Wed Dec  2 05:53 1992",
            "From user Wed Dec  2 05:53:22 1992",
            "From user Wed Dec  2 05:53 PST 1992",
            "From user Wed Dec  2 05:53:22 -0700 1992",
            "From user Wed Dec  2 05:53:22 1992 PST",
            "From user Wed Dec  2 05:53:22 1992 -0700",
            "From user Wed Dec  2 05:53:22 1992 remote from bar",
            "From alice@example.com Wed Dec  2 05:53:22 1992",
            "From MAILER-DAEMON Fri Nov 27 07:05:46 2026",
            "From x Wed Dec 12 05:53 1992",
        ];
        for l in yes {
            assert!(is_envelope(l.as_bytes()), "{l}");
        }
        let no = [
            "From here to eternity",
            "From: alice@example.com Wed Dec  2 05:53:22 1992",
            ">From user Wed Dec  2 05:53 1992",
            "from user Wed Dec  2 05:53 1992",
            "From user Wed Dec  2 05.53 1992",
            "From user Wed Dec 2 05:53 1992 ",
            "From ",
            "From                          ",
            "From user Wed Dec  2 05:53 1992 and then some words",
        ];
        for l in no {
            assert!(!is_envelope(l.as_bytes()), "{l}");
        }
    }

    #[test]
    fn crlf_envelope_is_accepted() {
        // DEVIATION (DECISIONS.md): CRLF spools.
        assert!(is_envelope(b"From user Wed Dec  2 05:53 1992\r"));
    }

    #[test]
    fn short_and_odd_lines_are_never_envelopes_and_never_panic() {
        // Every length around the offsets the date rule looks back by,
        // filled with bytes that are not a date: never an envelope.
        for n in 0..64 {
            for fill in [b' ', b':', b'+', b'x', b'1'] {
                let mut l = b"From ".to_vec();
                l.extend(std::iter::repeat_n(fill, n));
                assert!(!is_envelope(&l), "{:?}", String::from_utf8_lossy(&l));
            }
        }
        // Cut short anywhere, a real envelope stops being one before its
        // year and time are complete, and never panics.
        let full = b"From user Wed Dec  2 05:53:22 1992";
        for cut in 0..full.len() - 4 {
            assert!(!is_envelope(&full[..cut]), "cut at {cut}");
        }
        assert!(is_envelope(full));
    }
}
