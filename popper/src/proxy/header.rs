//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 1
//! and 2), parsed without I/O: bytes in, and out either how many more
//! bytes the header needs at least, or the header and its exact length, or
//! why it is not one.
//!
//! It runs as root on bytes from the network before anything else, so it
//! holds nothing (it borrows the caller's bytes), allocates nothing, never
//! indexes past what it has checked, and its one bound is the protocol's
//! own: a version 1 line of at most [`V1_MAX`] bytes, a version 2 header
//! of at most 16 + 65535 bytes ([`V2_MAX`]).
//!
//! Whatever follows the header in `input` is not looked at: it belongs to
//! POP3, or to the TLS handshake on port 995. The caller consumes exactly
//! [`Header::len`] bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 2's 12-byte signature.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's start.
pub const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest version 1 line, CRLF included (the protocol's bound:
/// `PROXY UNKNOWN ` and two full-length IPv6 addresses and ports).
pub const V1_MAX: usize = 107;
/// Version 2's fixed part: signature, version and command, family and
/// transport, length.
pub const V2_FIXED: usize = 16;
/// The longest version 2 header: the fixed part and a 16-bit length.
pub const V2_MAX: usize = V2_FIXED + u16::MAX as usize;
/// The shortest header of either version (`PROXY UNKNOWN\r\n`): this
/// many bytes can be read before the version is known without reading
/// past any valid header.
pub const MIN_HEADER: usize = 15;

/// The client the header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A TCP connection: the client's address and the address it
    /// connected to (at the proxy).
    Tcp {
        /// The client.
        source: SocketAddr,
        /// Where the client connected.
        destination: SocketAddr,
    },
    /// The proxy's own connection (v2 `LOCAL`, a health check), v1
    /// `UNKNOWN`, or v2 `PROXY` with `AF_UNSPEC`: the protocol says to use
    /// the socket's own addresses.
    Local,
    /// v2 `PROXY` over `AF_UNIX`: a client of a local socket at the
    /// proxy, which has no IP address.
    Unix,
}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// 1 or 2.
    pub version: u8,
    /// Whom it names.
    pub client: Client,
    /// Its length in bytes: exactly this much of the input is the header.
    pub len: usize,
}

/// What the bytes so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// All of the input may be the start of a header, which needs at
    /// least this many more bytes (exact for version 2 once its length is
    /// known; a lower bound otherwise). Never 0.
    NeedMore(usize),
    /// A whole header, at the start of the input.
    Header(Header),
}

/// Why the bytes are not a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Neither version's signature.
    Signature,
    /// A version 1 line longer than [`V1_MAX`] bytes.
    V1TooLong,
    /// A version 1 line with a byte that has no place in it.
    V1Byte(u8),
    /// A version 1 protocol other than `TCP4`, `TCP6`, `UNKNOWN`.
    V1Protocol,
    /// A version 1 line whose fields are not `SRC DST SPORT DPORT`.
    V1Fields,
    /// A version 1 address that is not one of its protocol's.
    V1Address,
    /// A version 1 port that is not 0–65535 written without leading zeros.
    V1Port,
    /// A version 2 version nibble other than 2.
    V2Version(u8),
    /// A version 2 command other than `LOCAL` (0) and `PROXY` (1).
    V2Command(u8),
    /// A version 2 family/transport byte the protocol does not define.
    V2Family(u8),
    /// A version 2 `PROXY` for a datagram transport: POP3 is a stream.
    V2Datagram,
    /// A version 2 length too short for the family's addresses.
    V2Length {
        /// The header's length field.
        length: u16,
        /// What the family's addresses need.
        need: u16,
    },
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Signature => f.write_str("not a PROXY protocol header"),
            HeaderError::V1TooLong => write!(f, "a PROXY v1 line longer than {V1_MAX} bytes"),
            HeaderError::V1Byte(b) => write!(f, "byte 0x{b:02x} in a PROXY v1 line"),
            HeaderError::V1Protocol => {
                f.write_str("a PROXY v1 protocol other than TCP4, TCP6, UNKNOWN")
            }
            HeaderError::V1Fields => f.write_str("a PROXY v1 line without its four fields"),
            HeaderError::V1Address => f.write_str("a bad address in a PROXY v1 line"),
            HeaderError::V1Port => f.write_str("a bad port in a PROXY v1 line"),
            HeaderError::V2Version(v) => write!(f, "PROXY protocol version {v}"),
            HeaderError::V2Command(c) => write!(f, "PROXY v2 command {c}"),
            HeaderError::V2Family(b) => write!(f, "PROXY v2 family/transport 0x{b:02x}"),
            HeaderError::V2Datagram => f.write_str("a PROXY v2 header for a datagram transport"),
            HeaderError::V2Length { length, need } => write!(
                f,
                "a PROXY v2 length of {length} bytes, less than its addresses' {need}"
            ),
        }
    }
}

/// Parses the start of `input` as a PROXY header (either version).
pub fn parse(input: &[u8]) -> Result<Parsed, HeaderError> {
    let v1 = prefix_of(input, V1_PREFIX);
    let v2 = prefix_of(input, V2_SIGNATURE);
    match (v1, v2) {
        (false, false) => Err(HeaderError::Signature),
        (true, _) if input.len() >= V1_PREFIX.len() => parse_v1(input),
        (_, true) if input.len() >= V2_SIGNATURE.len() => parse_v2(input),
        // Too short to tell; both shapes are at least MIN_HEADER long.
        _ => Ok(Parsed::NeedMore(
            MIN_HEADER.saturating_sub(input.len()).max(1),
        )),
    }
}

/// True when `input` and `sig` agree on their common length.
fn prefix_of(input: &[u8], sig: &[u8]) -> bool {
    let n = input.len().min(sig.len());
    input[..n] == sig[..n]
}

/// Version 1: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or
/// `PROXY UNKNOWN …\r\n`, at most [`V1_MAX`] bytes.
fn parse_v1(input: &[u8]) -> Result<Parsed, HeaderError> {
    let window = &input[..input.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        // No line end yet: what there is must still be able to become one.
        for (i, &b) in window.iter().enumerate() {
            let last = i + 1 == window.len();
            if !(b == b' ' || b.is_ascii_graphic() || (b == b'\r' && last)) {
                return Err(HeaderError::V1Byte(b));
            }
        }
        protocol_possible(&window[V1_PREFIX.len()..])?;
        if window.len() >= V1_MAX {
            return Err(HeaderError::V1TooLong);
        }
        let need = if window.last() == Some(&b'\r') { 1 } else { 2 };
        return Ok(Parsed::NeedMore(need));
    };
    let len = lf + 1;
    let Some(line) = window[..lf].strip_suffix(b"\r") else {
        return Err(HeaderError::V1Byte(b'\n'));
    };
    if let Some(&b) = line.iter().find(|&&b| !(b == b' ' || b.is_ascii_graphic())) {
        return Err(HeaderError::V1Byte(b));
    }
    let rest = &line[V1_PREFIX.len()..];
    // COMPAT proxy-protocol.txt: after UNKNOWN anything up to the CRLF is
    // ignored (and the socket's own addresses used).
    if rest == b"UNKNOWN" || rest.starts_with(b"UNKNOWN ") {
        return Ok(Parsed::Header(Header {
            version: 1,
            client: Client::Local,
            len,
        }));
    }
    let (v6, fields) = if let Some(f) = rest.strip_prefix(b"TCP4 ") {
        (false, f)
    } else if let Some(f) = rest.strip_prefix(b"TCP6 ") {
        (true, f)
    } else {
        return Err(HeaderError::V1Protocol);
    };
    let mut parts = fields.split(|&b| b == b' ');
    let mut next = || parts.next().ok_or(HeaderError::V1Fields);
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if parts.next().is_some() {
        return Err(HeaderError::V1Fields);
    }
    let (src, dst) = (v1_addr(src, v6)?, v1_addr(dst, v6)?);
    let (sport, dport) = (v1_port(sport)?, v1_port(dport)?);
    Ok(Parsed::Header(Header {
        version: 1,
        client: Client::Tcp {
            source: SocketAddr::new(src, sport),
            destination: SocketAddr::new(dst, dport),
        },
        len,
    }))
}

/// Whether the bytes after `PROXY ` can still become a known protocol.
fn protocol_possible(rest: &[u8]) -> Result<(), HeaderError> {
    let ok = [&b"TCP4 "[..], b"TCP6 ", b"UNKNOWN"]
        .iter()
        .any(|p| rest.starts_with(p) || p.starts_with(rest));
    if ok {
        Ok(())
    } else {
        Err(HeaderError::V1Protocol)
    }
}

fn v1_addr(field: &[u8], v6: bool) -> Result<IpAddr, HeaderError> {
    let text = std::str::from_utf8(field).map_err(|_| HeaderError::V1Address)?;
    if v6 {
        text.parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| HeaderError::V1Address)
    } else {
        text.parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| HeaderError::V1Address)
    }
}

fn v1_port(field: &[u8]) -> Result<u16, HeaderError> {
    let digits = !field.is_empty() && field.len() <= 5 && field.iter().all(u8::is_ascii_digit);
    if !digits || (field.len() > 1 && field[0] == b'0') {
        return Err(HeaderError::V1Port);
    }
    let n = field
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).map_err(|_| HeaderError::V1Port)
}

/// Version 2: the signature, `0x2C` (version 2, command C), `0xFT`
/// (family F, transport T), a big-endian length, then that many bytes:
/// the addresses and TLVs (which are skipped).
fn parse_v2(input: &[u8]) -> Result<Parsed, HeaderError> {
    let Some(fixed) = input.get(..V2_FIXED) else {
        return Ok(Parsed::NeedMore(V2_FIXED - input.len()));
    };
    let (ver_cmd, fam) = (fixed[12], fixed[13]);
    if ver_cmd >> 4 != 2 {
        return Err(HeaderError::V2Version(ver_cmd >> 4));
    }
    let proxy = match ver_cmd & 0x0f {
        0 => false,
        1 => true,
        c => return Err(HeaderError::V2Command(c)),
    };
    // The only family/transport bytes the protocol defines.
    let need: u16 = match fam {
        0x00 => 0,
        0x11 | 0x12 => 12,
        0x21 | 0x22 => 36,
        0x31 | 0x32 => 216,
        b => return Err(HeaderError::V2Family(b)),
    };
    let length = u16::from_be_bytes([fixed[14], fixed[15]]);
    let len = V2_FIXED + usize::from(length);
    if input.len() < len {
        return Ok(Parsed::NeedMore(len - input.len()));
    }
    let body = &input[V2_FIXED..len];
    // COMPAT proxy-protocol.txt: with LOCAL the family and addresses are
    // ignored (the proxy's own connection: a health check).
    if !proxy {
        return Ok(Parsed::Header(Header {
            version: 2,
            client: Client::Local,
            len,
        }));
    }
    if fam & 0x0f == 2 {
        return Err(HeaderError::V2Datagram);
    }
    if length < need {
        return Err(HeaderError::V2Length { length, need });
    }
    let client = match fam {
        // AF_UNSPEC: the socket's own addresses.
        0x00 => Client::Local,
        0x11 => {
            let ip = |o: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[o],
                    body[o + 1],
                    body[o + 2],
                    body[o + 3],
                ))
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Client::Tcp {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            }
        }
        0x21 => {
            let ip = |o: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&body[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Client::Tcp {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }
        _ => Client::Unix,
    };
    Ok(Parsed::Header(Header {
        version: 2,
        client,
        len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(0x20 | cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn header(input: &[u8]) -> Header {
        match parse(input) {
            Ok(Parsed::Header(h)) => h,
            other => panic!("{other:?} for {input:?}"),
        }
    }

    fn tcp(src: &str, dst: &str) -> Client {
        Client::Tcp {
            source: src.parse().unwrap(),
            destination: dst.parse().unwrap(),
        }
    }

    /// Every strict prefix of a valid header asks for more (and never for
    /// more than the header still lacks); the whole header is found with
    /// its exact length whatever follows it.
    fn check_prefixes(h: &[u8]) {
        for n in 0..h.len() {
            match parse(&h[..n]) {
                Ok(Parsed::NeedMore(k)) => {
                    assert!(k >= 1 && k <= h.len() - n, "{k} more after {n} of {h:?}")
                }
                other => panic!("{other:?} after {n} bytes of {h:?}"),
            }
        }
        let mut with_more = h.to_vec();
        with_more.extend_from_slice(b"USER alice\r\n\x16\x03\x01");
        assert_eq!(header(&with_more).len, h.len());
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let h = b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 110\r\n";
        assert_eq!(
            header(h),
            Header {
                version: 1,
                client: tcp("192.0.2.7:56324", "10.0.0.1:110"),
                len: h.len()
            }
        );
        check_prefixes(h);
        let h = b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
        assert_eq!(
            header(h).client,
            tcp("[2001:db8::7]:65535", "[2001:db8::1]:0")
        );
        check_prefixes(h);
        for h in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
        ] {
            assert_eq!(header(h).client, Client::Local);
            check_prefixes(h);
        }
    }

    #[test]
    fn v1_the_longest_line_fits_and_one_more_byte_does_not() {
        let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let h = format!("PROXY TCP6 {a} {a} 65535 65535\r\n");
        assert_eq!(header(h.as_bytes()).len, 104);
        check_prefixes(h.as_bytes());
        let h = format!("PROXY UNKNOWN {a} {a} 65535 65535\r\n");
        assert_eq!(h.len(), V1_MAX);
        assert_eq!(header(h.as_bytes()).len, V1_MAX);
        check_prefixes(h.as_bytes());
        let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX - 15));
        assert_eq!(long.len(), V1_MAX + 1);
        assert_eq!(parse(long.as_bytes()), Err(HeaderError::V1TooLong));
        // Without a line end, 107 bytes are already too many.
        let open = format!("PROXY UNKNOWN {}", "x".repeat(200));
        assert_eq!(parse(open.as_bytes()), Err(HeaderError::V1TooLong));
        assert_eq!(
            parse(&open.as_bytes()[..V1_MAX - 1]),
            Ok(Parsed::NeedMore(2))
        );
    }

    #[test]
    fn v1_malformed_lines() {
        let bad: &[(&[u8], HeaderError)] = &[
            (
                b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
                HeaderError::V1Protocol,
            ),
            (
                b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
                HeaderError::V1Protocol,
            ),
            (b"PROXY X", HeaderError::V1Protocol),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", HeaderError::V1Fields),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
                HeaderError::V1Fields,
            ),
            (
                b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
                HeaderError::V1Fields,
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
                HeaderError::V1Fields,
            ),
            (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", HeaderError::V1Address),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", HeaderError::V1Address),
            (
                b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
                HeaderError::V1Address,
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
                HeaderError::V1Port,
            ),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", HeaderError::V1Port),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", HeaderError::V1Port),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999\r\n",
                HeaderError::V1Port,
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
                HeaderError::V1Byte(b'\n'),
            ),
            (
                b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
                HeaderError::V1Byte(b'\r'),
            ),
            (b"PROXY TCP4 1.2.3.4\t5", HeaderError::V1Byte(b'\t')),
            (b"PROXY UNKNOWN \x00\r\n", HeaderError::V1Byte(0)),
            (b"PROXY UNKNOWN \xff\r\n", HeaderError::V1Byte(0xff)),
            (b"PROXY  TCP4", HeaderError::V1Protocol),
        ];
        for (input, want) in bad {
            assert_eq!(
                parse(input),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn v2_proxy_over_inet_inet6_unix_and_unspec() {
        let mut body = vec![192, 0, 2, 7, 10, 0, 0, 1];
        body.extend_from_slice(&56324u16.to_be_bytes());
        body.extend_from_slice(&110u16.to_be_bytes());
        let h = v2(1, 0x11, &body);
        assert_eq!(
            header(&h),
            Header {
                version: 2,
                client: tcp("192.0.2.7:56324", "10.0.0.1:110"),
                len: 28
            }
        );
        check_prefixes(&h);
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut body = src.octets().to_vec();
        body.extend_from_slice(&dst.octets());
        body.extend_from_slice(&[0xdc, 0x04, 0x03, 0xe3]);
        let h = v2(1, 0x21, &body);
        assert_eq!(
            header(&h).client,
            tcp("[2001:db8::7]:56324", "[2001:db8::1]:995")
        );
        check_prefixes(&h);
        let h = v2(1, 0x31, &[b'/'; 216]);
        assert_eq!(header(&h).client, Client::Unix);
        check_prefixes(&h);
        let h = v2(1, 0x00, &[]);
        assert_eq!(header(&h).client, Client::Local);
        check_prefixes(&h);
    }

    #[test]
    fn v2_local_ignores_family_and_addresses() {
        for (fam, body) in [(0x00, &[][..]), (0x11, &[1u8; 12][..]), (0x12, &[][..])] {
            let h = v2(0, fam, body);
            assert_eq!(header(&h).client, Client::Local);
            check_prefixes(&h);
        }
    }

    #[test]
    fn v2_tlvs_are_skipped() {
        let mut body = vec![127, 0, 0, 1, 127, 0, 0, 2, 0, 1, 0, 2];
        // PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_NOOP (padding).
        body.extend_from_slice(&[0x01, 0, 4]);
        body.extend_from_slice(b"pop3");
        body.extend_from_slice(&[0x02, 0, 11]);
        body.extend_from_slice(b"example.org");
        body.extend_from_slice(&[0x04, 0, 3, 0, 0, 0]);
        let h = v2(1, 0x11, &body);
        assert_eq!(header(&h).len, h.len());
        assert_eq!(header(&h).client, tcp("127.0.0.1:1", "127.0.0.2:2"));
        check_prefixes(&h);
        // The largest the length field allows.
        let mut body = vec![0u8; u16::MAX as usize];
        body[..12].copy_from_slice(&[10, 0, 0, 9, 10, 0, 0, 1, 0, 9, 0, 110]);
        let h = v2(1, 0x11, &body);
        assert_eq!(h.len(), V2_MAX);
        assert_eq!(header(&h).len, V2_MAX);
    }

    #[test]
    fn v2_malformed_headers() {
        let mut bad_version = v2(1, 0x11, &[0; 12]);
        bad_version[12] = 0x11;
        assert_eq!(parse(&bad_version), Err(HeaderError::V2Version(1)));
        bad_version[12] = 0x31;
        assert_eq!(parse(&bad_version), Err(HeaderError::V2Version(3)));
        assert_eq!(
            parse(&v2(2, 0x11, &[0; 12])),
            Err(HeaderError::V2Command(2))
        );
        assert_eq!(
            parse(&v2(0xf, 0x11, &[0; 12])),
            Err(HeaderError::V2Command(15))
        );
        for fam in [0x01, 0x13, 0x41, 0xff, 0x10] {
            assert_eq!(
                parse(&v2(1, fam, &[0; 12])),
                Err(HeaderError::V2Family(fam))
            );
        }
        assert_eq!(parse(&v2(1, 0x12, &[0; 12])), Err(HeaderError::V2Datagram));
        assert_eq!(
            parse(&v2(1, 0x11, &[0; 11])),
            Err(HeaderError::V2Length {
                length: 11,
                need: 12
            })
        );
        assert_eq!(
            parse(&v2(1, 0x21, &[0; 12])),
            Err(HeaderError::V2Length {
                length: 12,
                need: 36
            })
        );
        assert_eq!(
            parse(&v2(1, 0x31, &[0; 215])),
            Err(HeaderError::V2Length {
                length: 215,
                need: 216
            })
        );
        // A length that claims more than came: more is needed, exactly.
        let mut h = v2(1, 0x11, &[0; 12]);
        h[15] = 20;
        assert_eq!(parse(&h), Ok(Parsed::NeedMore(8)));
    }

    #[test]
    fn bad_signatures() {
        for input in [
            &b"USER alice\r\n"[..],
            b"\x16\x03\x01\x02\x00",
            b"PROXY",
            b"\r\n\r\n\0\r\nQUIT\r",
            b"\r\n\r\n\x01",
            b"proxy TCP4",
            b"\0",
        ] {
            let r = parse(input);
            let short_prefix = input == b"PROXY";
            if short_prefix {
                assert_eq!(r, Ok(Parsed::NeedMore(MIN_HEADER - 5)));
            } else {
                assert_eq!(r, Err(HeaderError::Signature), "{input:?}");
            }
        }
        assert_eq!(parse(b""), Ok(Parsed::NeedMore(MIN_HEADER)));
        assert_eq!(parse(b"\r\n"), Ok(Parsed::NeedMore(MIN_HEADER - 2)));
        // A v2 signature and nothing after it wants its fixed part.
        assert_eq!(parse(V2_SIGNATURE), Ok(Parsed::NeedMore(4)));
        // Every message is printable.
        assert!(
            HeaderError::V2Length {
                length: 1,
                need: 12
            }
            .to_string()
            .contains("12")
        );
    }
}
