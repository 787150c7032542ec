//! HTTP below the client library: raw TCP connections to the gateway from a chosen source
//! address, hand-written requests, and the process figures (resident memory, open-file limit)
//! that tests of the listener's limits measure.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The gateway's socket address from its base URL (`http://127.0.0.1:4000`).
pub fn gateway_addr(base_url: &str) -> SocketAddr {
    base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|error| panic!("{base_url} is not http://ip:port: {error}"))
}

/// A TCP connection to `to` whose own end is bound to `source` (any of 127/8 on loopback).
pub async fn connect_from(source: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(to).await
}

/// Sends `request` on `stream` and reads the answer's status code; `None` when the server
/// closes or resets the connection instead, or says nothing within `wait`.
pub async fn status_of(stream: &mut TcpStream, request: &[u8], wait: Duration) -> Option<u16> {
    // A server that refuses may reset the connection before or while we write.
    stream.write_all(request).await.ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(wait, async {
        while !head.windows(2).any(|w| w == b"\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    if !matches!(read, Ok(true)) {
        return None;
    }
    // `HTTP/1.1 200 OK`
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `GET path` on a fresh connection from `source`: its status, or `None` if refused.
pub async fn get_from(source: IpAddr, to: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = connect_from(source, to).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n");
    status_of(&mut stream, request.as_bytes(), Duration::from_secs(5)).await
}

/// Whether the server has closed `stream` (EOF or reset) within `wait`; bytes it sends are
/// skipped.
pub async fn closed_by_server(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The resident set size of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("reading /proc/{pid}/status: {error}"));
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

/// Raises this process's soft limit of open files to at least `wanted` (up to the hard limit);
/// returns the soft limit in force.
pub fn raise_open_files(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit);
    }
    limit.rlim_cur
}
