//! The PROXY protocol (HAProxy's `send-proxy` and `send-proxy-v2`): behind
//! a balancer, the client's real address comes in a header the balancer
//! sends before anything else on the connection.
//!
//! Only a connection whose socket peer is in `proxy-trusted-networks` is
//! read as one, and then it must be: popper reads the header (exactly its
//! bytes, within `proxy-timeout`) before the greeting and before port
//! 995's TLS handshake, and from then on the address it names is the
//! [`Peer`] every log line, the `-s` statistics, the clear-text policy's
//! `local` and relay control see. A trusted source that sends no header,
//! a malformed, truncated or slow one: the connection is closed, logged.
//!
//! An untrusted source is never read as a proxy: whatever it sends is
//! POP3. A v1 header from there is an unknown command (`-ERR`, logged as
//! every `-ERR` is); a v2 header's signature holds the line `QUIT`, which
//! ends the session — as the protocol's authors meant a server that does
//! not expect the header to do. Trusting the header from anyone would let
//! any client claim to be 127.0.0.1.
//!
//! * [`header`]: the pure parser (bytes in, `NeedMore`/`Header`/error out);
//! * [`read`]: reading it off the socket with the deadline;
//! * [`networks`]: the CIDR list.

pub mod header;
pub mod networks;
pub mod read;

use std::os::fd::BorrowedFd;
use std::time::Duration;

use self::header::Client;
use self::networks::Networks;
use crate::log::Log;
use crate::peer::{Peer, unmap};

/// Why the connection is closed before the greeting.
#[derive(Debug)]
pub struct Refused;

/// Reads the PROXY header when the connection comes from a trusted
/// network, and makes `peer` the client it names. Ok with nothing read
/// when PROXY is off or the source is not trusted; `Refused` (logged)
/// when a trusted source did not send a good header in time.
pub fn accept(
    networks: &Networks,
    limit: Duration,
    log: &Log,
    peer: &mut Peer,
    fd: BorrowedFd<'_>,
) -> Result<(), Refused> {
    if networks.is_empty() || !peer.is_socket {
        return Ok(());
    }
    let Some(proxy) = peer.ip.filter(|ip| networks.contains(*ip)) else {
        return Ok(());
    };
    let h = match read::read_header(fd, limit) {
        Ok(h) => h,
        Err(e) => {
            log.notice(&format!(
                "PROXY header from trusted {proxy} refused: {e}; connection closed"
            ));
            return Err(Refused);
        }
    };
    peer.proxy = Some(proxy);
    match h.client {
        Client::Tcp {
            source,
            destination,
        } => {
            peer.ip = Some(unmap(source.ip()));
            log.debug(&format!(
                "PROXY v{} from {proxy}: client {source}, connected to {destination}",
                h.version
            ));
        }
        // COMPAT proxy-protocol.txt: LOCAL and UNKNOWN mean the socket's
        // own addresses (the proxy's health checks use them).
        Client::Local => log.debug(&format!(
            "PROXY v{} from {proxy}: LOCAL/UNKNOWN, the connection's own addresses",
            h.version
        )),
        // A client of a socket at the proxy has no IP address: logged as
        // unknown, never local for the clear-text policy, no relay file.
        Client::Unix => {
            peer.ip = None;
            log.debug(&format!(
                "PROXY v2 from {proxy}: a client of a local (AF_UNIX) socket at the proxy"
            ));
        }
    }
    Ok(())
}
