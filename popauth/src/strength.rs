//! qpopper 2.53's rules for a new APOP secret (qpopper.md §6.1 step 4).
//!
//! Each character adds its class to a set: lower case 2, upper case 4,
//! digit 1, anything else 8. A secret is strong enough when the set has
//! three or more classes' worth (≥ 7) and it has at least 4 characters, or
//! one letter class and at least 6, or two classes below 7 and at least 5.
//! COMPAT qpopper 2.53: the first weak secret is refused with a hint, a
//! second one is taken anyway.

/// What to say about a weak secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weak {
    /// Digits only.
    OnlyDigits,
    /// Too short for its mix of characters.
    TooShort,
}

impl Weak {
    /// popauth's hint (printed on standard output).
    pub fn hint(self) -> &'static str {
        match self {
            Weak::OnlyDigits => "Please use at least one non-numeric character.",
            Weak::TooShort => "Please use a longer password.",
        }
    }
}

/// `Ok` when `secret` passes, else why not.
pub fn check(secret: &[u8]) -> Result<(), Weak> {
    let flags = secret.iter().fold(0u8, |f, &c| {
        f | if c.is_ascii_lowercase() {
            2
        } else if c.is_ascii_uppercase() {
            4
        } else if c.is_ascii_digit() {
            1
        } else {
            8
        }
    });
    let n = secret.len();
    let ok = (flags >= 7 && n >= 4)
        || (matches!(flags, 2 | 4) && n >= 6)
        || (matches!(flags, 3 | 5 | 6) && n >= 5);
    match (ok, flags) {
        (true, _) => Ok(()),
        (false, 1) => Err(Weak::OnlyDigits),
        (false, _) => Err(Weak::TooShort),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qpopper_table() {
        // qpopper.md §15.10
        for good in ["abcdef", "abc12", "aB1!", "!!!!"] {
            assert_eq!(check(good.as_bytes()), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("abc", Weak::TooShort),
            ("ABCDE", Weak::TooShort),
            ("1234567", Weak::OnlyDigits),
            ("a1!", Weak::TooShort),
            ("Abcd", Weak::TooShort),
        ] {
            assert_eq!(check(bad.as_bytes()), Err(why), "{bad}");
        }
    }
}
