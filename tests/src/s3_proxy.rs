//! A TCP proxy on loopback that can make a server unavailable for a while without stopping it:
//! the way to take S3 away from the broker, since restarting moto would lose its in-memory
//! buckets.
//!
//! While [paused](TcpProxy::pause), every connection open through the proxy is cut and each new
//! one is closed as soon as it is accepted, as a load balancer with no healthy backend does;
//! [resumed](TcpProxy::resume), it passes bytes both ways again. Dropped, it stops listening and
//! cuts everything.

use std::net::SocketAddr;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A pausable TCP proxy to one upstream address.
pub struct TcpProxy {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (paused, watching) = watch::channel(false);
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watching.borrow() {
                    drop(client);
                    continue;
                }
                tokio::spawn(forward(client, upstream, watching.clone()));
            }
        });
        Self {
            addr,
            paused,
            accepting,
        }
    }

    /// `http://127.0.0.1:<port>`: where clients reach the upstream through the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts every open connection and refuses new ones until [`TcpProxy::resume`].
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Forwards new connections again.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.pause();
    }
}

/// Copies bytes between `client` and a new connection to `upstream` until either side closes
/// or the proxy is paused (dropping both sockets cuts the connection).
async fn forward(mut client: TcpStream, upstream: SocketAddr, mut paused: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        _ = paused.wait_for(|paused| *paused) => {}
    }
}
