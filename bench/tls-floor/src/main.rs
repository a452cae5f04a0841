//! make bench's TLS floor: what a per-connection TLS server costs with
//! nothing behind the handshake. inetd hands it the connection as fd 0.
//!
//!     tls-floor CERT KEY greet        handshake, "+OK\r\n", close_notify
//!     tls-floor CERT KEY cat FILE     handshake, FILE streamed, close_notify
//!     tls-floor CERT KEY echo         handshake, every byte sent back
//!
//! rustls with the ring provider, TLS 1.3 and 1.2, no tickets and no
//! session cache: popper's configuration (popper/src/tls/mod.rs). Writes go
//! out through `TcpStream`'s `write_vectored`, so rustls hands the kernel
//! every record it has queued in one call.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::FromRawFd;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::version::{TLS12, TLS13};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: tls-floor CERT KEY greet|cat FILE|echo");
        std::process::exit(2);
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&args[1])
        .expect("certificate")
        .collect::<Result<_, _>>()
        .expect("certificate");
    let key = PrivateKeyDer::from_pem_file(&args[2]).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&TLS13, &TLS12])
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key");
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    // SAFETY: fd 0 is the connection inetd accepted; nothing else owns it.
    let sock = unsafe { TcpStream::from_raw_fd(0) };
    let _ = sock.set_nodelay(true);
    let conn = ServerConnection::new(Arc::new(config)).expect("connection");
    let mut tls = StreamOwned::new(conn, sock);
    let r = match args[3].as_str() {
        "greet" => tls.write_all(b"+OK\r\n"),
        "cat" => {
            let mut f = File::open(&args[4]).expect("file");
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        if let Err(e) = tls.write_all(&buf[..n]) {
                            break Err(e);
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
        }
        "echo" => {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match tls.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        if let Err(e) = tls.write_all(&buf[..n]) {
                            break Err(e);
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
        }
        m => {
            eprintln!("tls-floor: unknown mode {m}");
            std::process::exit(2);
        }
    };
    if r.is_ok() {
        tls.conn.send_close_notify();
        let _ = tls.conn.complete_io(&mut tls.sock);
    }
}
