//! The CAPA reply (RFC 2449 §5): what this popper can do.

/// The capability lines for a build: `apop_only` drops USER (the command is
/// refused in such a build, so advertising it would mislead clients).
pub fn capabilities(apop_only: bool, version: &str) -> Vec<String> {
    let mut caps = vec!["TOP".to_string()];
    if !apop_only {
        caps.push("USER".to_string());
    }
    caps.extend(
        ["UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
            .iter()
            .map(|s| (*s).to_string()),
    );
    caps.push(format!("IMPLEMENTATION popper-{version}"));
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_only_when_usable() {
        let full = capabilities(false, "1.0");
        assert_eq!(
            full,
            [
                "TOP",
                "USER",
                "UIDL",
                "RESP-CODES",
                "AUTH-RESP-CODE",
                "PIPELINING",
                "IMPLEMENTATION popper-1.0"
            ]
        );
        assert!(!capabilities(true, "1.0").iter().any(|c| c == "USER"));
    }
}
