//! Two network namespaces joined by a veth pair, made by a test and
//! removed when it is dropped: a server side at [`SERVER_ADDR`] and a
//! client side at [`CLIENT_ADDR`], each with its own loopback. Traffic
//! between them never leaves them (nothing is routed to the machine's
//! namespace), so a test can show popper a client from "another host".

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server side's address.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
/// The client side's address.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 2);

/// The pair; both namespaces are deleted on drop.
#[derive(Debug)]
pub struct NetPair {
    /// The server namespace's name (`ip netns`).
    pub server: String,
    /// The client namespace's name.
    pub client: String,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    crate::run(Command::new("ip").args(args));
}

impl NetPair {
    /// Makes the two namespaces, the veth pair between them, their
    /// addresses, and brings every link up (loopbacks too).
    pub fn new() -> NetPair {
        crate::require_root();
        let tag = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let pair = NetPair {
            server: format!("popper-e2e-srv-{tag}"),
            client: format!("popper-e2e-cli-{tag}"),
        };
        ip(&["netns", "add", &pair.server]);
        ip(&["netns", "add", &pair.client]);
        // Interface names are per namespace: the same two everywhere.
        ip(&[
            "link",
            "add",
            "veth-srv",
            "netns",
            &pair.server,
            "type",
            "veth",
            "peer",
            "name",
            "veth-cli",
            "netns",
            &pair.client,
        ]);
        for (ns, dev, addr) in [
            (&pair.server, "veth-srv", SERVER_ADDR),
            (&pair.client, "veth-cli", CLIENT_ADDR),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// The server namespace's file (for `nsenter --net=`).
    pub fn server_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.server)
    }

    /// The client namespace's file.
    pub fn client_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.client)
    }

    /// A command running `program` in the client namespace.
    pub fn in_client(&self, program: &Path) -> Command {
        in_netns(&self.client_path(), program)
    }

    /// A command running `program` in the server namespace.
    pub fn in_server(&self, program: &Path) -> Command {
        in_netns(&self.server_path(), program)
    }
}

impl Default for NetPair {
    fn default() -> Self {
        NetPair::new()
    }
}

/// A command running `program` in the network namespace `ns` (a file such
/// as `/run/netns/NAME`), nothing else changed.
pub fn in_netns(ns: &Path, program: &Path) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={}", ns.display()))
        .arg("--")
        .arg(program);
    c
}

impl Drop for NetPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and so
        // the pair.
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
