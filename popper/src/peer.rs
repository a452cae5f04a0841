//! Who is on the other end of stdin: `getpeername(0)` for a socket from
//! inetd, tcpd or systemd (IPv4 and IPv6); tcpserver's `TCPREMOTEIP` when
//! stdin is a pipe; otherwise "unknown" — popper still runs, so a shell or
//! a test can talk to it through a pipe.
//!
//! Behind a balancer that speaks the PROXY protocol, [`crate::proxy`]
//! replaces the address with the client's its header names (when the
//! socket's peer is in `proxy-trusted-networks`), before anything uses it:
//! every consumer (logs, `-s` statistics, the clear-text policy's `local`,
//! relay control) reads [`Peer::ip`] and so the real client.

use std::net::IpAddr;

/// The client as popper logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its address, when known.
    pub ip: Option<IpAddr>,
    /// True when fd 0 is a socket (so write timeouts can be set on it).
    pub is_socket: bool,
    /// Its host name, when reverse lookup is on and found one.
    pub host: Option<String>,
    /// The trusted proxy whose PROXY header named [`Peer::ip`], if one did.
    pub proxy: Option<IpAddr>,
}

impl Peer {
    /// Finds the peer of fd 0, falling back to `TCPREMOTEIP` (ucspi-tcp).
    pub fn of_stdin() -> Peer {
        use nix::sys::socket::{SockaddrStorage, getpeername};
        match getpeername::<SockaddrStorage>(0) {
            Ok(sa) => {
                let ip = if let Some(v4) = sa.as_sockaddr_in() {
                    Some(IpAddr::V4(v4.ip()))
                } else {
                    sa.as_sockaddr_in6().map(|v6| unmap(IpAddr::V6(v6.ip())))
                };
                Peer {
                    ip,
                    is_socket: true,
                    host: None,
                    proxy: None,
                }
            }
            Err(_) => {
                let ip = std::env::var("TCPREMOTEIP")
                    .ok()
                    .and_then(|s| s.parse().ok());
                Peer {
                    ip,
                    is_socket: false,
                    host: None,
                    proxy: None,
                }
            }
        }
    }

    /// The address as text, or `unknown`.
    pub fn addr(&self) -> String {
        self.ip
            .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
    }

    /// The host name if known, else the address (qpopper logs the name).
    pub fn name(&self) -> String {
        self.host.clone().unwrap_or_else(|| self.addr())
    }

    /// How log lines name the client: `host (address)` when the name is
    /// known, else the address.
    pub fn describe(&self) -> String {
        match &self.host {
            Some(h) => format!("{h} ({})", self.addr()),
            None => self.addr(),
        }
    }

    /// Looks up the host name of the address, forward-confirmed: the name
    /// must resolve back to the address, else the address is kept (as
    /// qpopper's BIND43 check did).
    pub fn resolve(&mut self) {
        let Some(ip) = self.ip else { return };
        let Some(name) = crate::sys::reverse_name(ip) else {
            return;
        };
        use std::net::ToSocketAddrs;
        let confirmed = (name.as_str(), 0)
            .to_socket_addrs()
            .is_ok_and(|mut a| a.any(|sa| sa.ip() == ip));
        if confirmed {
            self.host = Some(name);
        }
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) as the IPv4 address
/// it is; any other address as it is.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
