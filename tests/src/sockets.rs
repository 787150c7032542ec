//! Which local process holds one end of a loopback TCP connection, read from Linux's `/proc`:
//! the connection's socket inode from `/proc/net/tcp`, then the candidate process whose file
//! descriptors include that socket.
//!
//! Tests use it to tell replicas apart by what they observably did (which event-service process
//! delivered a webhook POST) without asking the product to say so. It answers only while the
//! connection is open, so it is asked while a request is being served. IPv4 only: the test kit
//! listens on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr};

/// The process among `candidates` holding the connection whose own end is `local` and whose
/// far end is `remote`; `None` when the connection is gone or none of them holds it (or this
/// is not Linux).
pub fn owner(local: SocketAddr, remote: SocketAddr, candidates: &[u32]) -> Option<u32> {
    let socket = format!("socket:[{}]", inode(local, remote)?);
    candidates.iter().copied().find(|pid| holds(*pid, &socket))
}

/// The inode of the socket `local` → `remote` in `/proc/net/tcp`.
fn inode(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    // `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode`
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if address(fields.get(1)?)? != local || address(fields.get(2)?)? != remote {
            return None;
        }
        fields.get(9)?.parse().ok()
    })
}

/// `0100007F:1F90` → 127.0.0.1:8080: the address is the kernel's 32-bit word in native byte
/// order, the port a plain hexadecimal number.
fn address(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddr::from((Ipv4Addr::from(ip.to_ne_bytes()), port)))
}

/// Whether process `pid` has `socket` (`socket:[<inode>]`) among its file descriptors.
fn holds(pid: u32, socket: &str) -> bool {
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    descriptors
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kernel_addresses() {
        let loopback = u32::from_ne_bytes([127, 0, 0, 1]);
        let field = format!("{loopback:08X}:1F90");
        assert_eq!(address(&field), Some("127.0.0.1:8080".parse().unwrap()));
    }

    #[test]
    fn finds_the_process_holding_a_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let me = std::process::id();
        if std::fs::metadata("/proc/net/tcp").is_err() {
            return; // not Linux
        }
        assert_eq!(owner(client.local_addr().unwrap(), server, &[me]), Some(me));
        assert_eq!(owner(client.local_addr().unwrap(), server, &[]), None);
        assert_eq!(owner(server, server, &[me]), None, "no such connection");
    }
}
