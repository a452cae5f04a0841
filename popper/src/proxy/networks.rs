//! `proxy-trusted-networks`: the addresses whose connections start with a
//! PROXY header — CIDR blocks, IPv4 and IPv6, as Dovecot's
//! `haproxy_trusted_networks` lists them.

use std::fmt;
use std::net::IpAddr;

/// One block: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    bits: u8,
}

impl Net {
    /// `ADDR/BITS` or a bare address (all its bits). An IPv4 address
    /// mapped into IPv6 (`::ffff:a.b.c.d/n`, n ≥ 96) is taken as IPv4, as
    /// popper sees such peers.
    pub fn parse(s: &str) -> Result<Net, String> {
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("\"{s}\" is not an IPv4 or IPv6 address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => match b.parse::<u8>() {
                Ok(n) if n <= max && b.bytes().all(|c| c.is_ascii_digit()) => n,
                _ => return Err(format!("\"{s}\": the prefix length must be 0 to {max}")),
            },
        };
        let (addr, bits) = match addr {
            IpAddr::V6(v6) if bits >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), bits - 96),
                None => (addr, bits),
            },
            _ => (addr, bits),
        };
        Ok(Net { addr, bits })
    }

    /// Whether `ip` is in the block (IPv4 blocks hold only IPv4
    /// addresses, IPv6 blocks only IPv6 ones).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

/// The whole list; empty means PROXY is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<Net>);

/// More blocks than any site lists; a bound on what `-f` can make popper
/// hold and search per connection.
pub const MAX_NETWORKS: usize = 256;

impl Networks {
    /// Blocks separated by spaces and/or commas; `false`, `none` or
    /// nothing for an empty list.
    pub fn parse(v: &str) -> Result<Networks, String> {
        let v = v.trim();
        if v.is_empty() || v == "false" || v == "none" {
            return Ok(Networks::default());
        }
        let nets = v
            .split([' ', ',', '\t'])
            .filter(|s| !s.is_empty())
            .map(Net::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if nets.len() > MAX_NETWORKS {
            return Err(format!("more than {MAX_NETWORKS} networks"));
        }
        Ok(Networks(nets))
    }

    /// True when the list is empty (PROXY off).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is in one of the blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

impl fmt::Display for Networks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_match_their_addresses_only() {
        let n = Networks::parse("10.0.0.0/8, 192.0.2.7 2001:db8::/32,fe80::1/128").unwrap();
        assert!(n.contains(ip("10.200.1.2")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("192.0.2.7")));
        assert!(!n.contains(ip("192.0.2.8")));
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(n.contains(ip("fe80::1")));
        assert!(!n.contains(ip("fe80::2")));
        // An IPv4 block never holds an IPv6 address and the other way round.
        assert!(!n.contains(ip("::ffff:10.0.0.1")));
        assert!(!Networks::parse("::/0").unwrap().contains(ip("10.0.0.1")));
        assert!(
            Networks::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("1.2.3.4"))
        );
        assert!(Networks::parse("::/0").unwrap().contains(ip("::1")));
        // A mapped block is an IPv4 one.
        let m = Networks::parse("::ffff:10.1.0.0/112").unwrap();
        assert!(m.contains(ip("10.1.2.3")));
        assert_eq!(m.to_string(), "10.1.0.0/16");
        assert_eq!(
            n.to_string(),
            "10.0.0.0/8 192.0.2.7/32 2001:db8::/32 fe80::1/128"
        );
    }

    #[test]
    fn empty_and_bad_lists() {
        for v in ["", "false", "none", "  "] {
            assert!(Networks::parse(v).unwrap().is_empty(), "{v:?}");
        }
        assert_eq!(Networks::default().to_string(), "(none)");
        for v in [
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "host.example",
            "10.0.0.0/8/8",
        ] {
            assert!(Networks::parse(v).is_err(), "{v:?}");
        }
        let many = vec!["10.0.0.1"; MAX_NETWORKS + 1].join(" ");
        assert!(Networks::parse(&many).is_err());
    }
}
