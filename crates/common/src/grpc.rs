//! Serving and calling gRPC: one way to run a service's server (with the standard health
//! service and graceful shutdown) and to forward the caller's credential to another service.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};

use crate::Shutdown;

/// Serves `router` on `listener` until `shutdown` fires, then drains in-flight calls.
pub async fn serve(
    router: tonic::service::Routes,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), tonic::transport::Error> {
    // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to small answers.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
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
