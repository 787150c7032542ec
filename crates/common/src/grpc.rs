//! Serving and calling gRPC: one way to run a service's server (with the standard health
//! service and graceful shutdown) and to forward the caller's credential to another service.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};

use crate::Shutdown;

/// HTTP/2 flow-control window per stream. tonic's default (64 KiB) lets a sender have only
/// 64 KiB in flight before waiting a round trip for the receiver's update, which throttles a
/// file stream to a fraction of what loopback and the disk can do.
pub const STREAM_WINDOW_BYTES: u32 = 2 * 1024 * 1024;
/// HTTP/2 flow-control window per connection, shared by its streams (a few large ones at once).
pub const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// Largest HTTP/2 frame a peer may send us: the default 16 KiB cuts each file chunk into
/// dozens of frames, each with its own header and bookkeeping.
pub const MAX_FRAME_BYTES: u32 = 512 * 1024;

/// Serves `router` on `listener` until `shutdown` fires, then drains in-flight calls.
pub async fn serve(
    router: tonic::service::Routes,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), tonic::transport::Error> {
    // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to small answers.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .add_routes(router)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// A lazily connecting channel to `url` (`http://host:port`); calls fail with Unavailable while
/// the peer is down instead of failing start-up.
pub fn channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .connect_lazy())
}

/// The URL of a listener bound on loopback, for embedded mode's in-process clients.
pub fn loopback_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Puts `Authorization: Bearer <token>` on an outgoing request.
pub fn with_bearer<T>(mut request: tonic::Request<T>, token: &str) -> tonic::Request<T> {
    if let Ok(value) = MetadataValue::try_from(format!("Bearer {token}")) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The bearer token of an incoming request, if any.
pub fn bearer<T>(request: &tonic::Request<T>) -> Option<&str> {
    request
        .metadata()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}
