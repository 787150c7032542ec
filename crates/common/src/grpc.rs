//! Serving and calling gRPC: one way to run a service's server (with the standard health
//! service and graceful shutdown) and to forward the caller's credential to another service.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;
use tonic::transport::channel::Change;
use tonic::transport::server::TcpIncoming;
use tower::util::MapRequest;
use tower_http::trace::TraceLayer;

use crate::Shutdown;
use crate::call_log::LogByFault;
use crate::telemetry::propagation;

/// A channel to another service that carries the caller's trace context on every call.
pub type Channel =
    MapRequest<tonic::transport::Channel, fn(http::Request<Body>) -> http::Request<Body>>;

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
        .layer(
            TraceLayer::new_for_grpc()
                .make_span_with(call_span)
                .on_failure(LogByFault),
        )
        .layer(tower::layer::layer_fn(Metered))
        .add_routes(router)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// A lazily connecting channel to `urls`: one `http://host:port`, or several separated by
/// commas for a service's replicas, between which calls are balanced (power of two choices)
/// while they accept connections.
/// Calls fail with Unavailable while every peer is down instead of failing start-up.
pub fn channel(urls: &str) -> Result<Channel, tonic::transport::Error> {
    let mut endpoints = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(endpoint)
        .collect::<Result<Vec<_>, _>>()?;
    match endpoints.len() {
        // Only an empty setting gets here; parsing it again yields the error that names it.
        0 => Ok(traced(endpoint(urls)?.connect_lazy())),
        1 => Ok(traced(endpoints.remove(0).connect_lazy())),
        _ => Ok(traced(balanced(endpoints))),
    }
}

/// How often a balanced channel checks which replicas accept connections.
const PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// A channel balancing calls between the replicas that accept connections. tonic's balancer
/// alone keeps choosing a replica that went away (its lazy connection still reports ready) and
/// every call sent there fails; a probe takes it out of the set and puts it back when it answers
/// again. With none answering all stay in, so calls fail at once with Unavailable instead of
/// waiting for a replica.
fn balanced(endpoints: Vec<Endpoint>) -> tonic::transport::Channel {
    let (channel, changes) = tonic::transport::Channel::balance_channel(endpoints.len());
    tokio::spawn(async move {
        let mut member = vec![false; endpoints.len()];
        loop {
            let mut up = Vec::with_capacity(endpoints.len());
            for endpoint in &endpoints {
                up.push(accepts_connections(endpoint.uri()).await);
            }
            if !up.contains(&true) {
                up.fill(true);
            }
            for (index, endpoint) in endpoints.iter().enumerate() {
                let change = match (member[index], up[index]) {
                    (false, true) => Change::Insert(index, endpoint.clone()),
                    (true, false) => Change::Remove(index),
                    _ => continue,
                };
                // The channel and all its clones are gone: nobody calls through it any more.
                if changes.send(change).await.is_err() {
                    return;
                }
                member[index] = up[index];
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    });
    channel
}

/// Whether a TCP connection to the endpoint's host and port opens within the probe interval.
async fn accepts_connections(uri: &http::Uri) -> bool {
    let Some(host) = uri.host() else {
        return false;
    };
    // An IPv6 literal keeps its brackets in a URI, not in a socket address.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host, port));
    matches!(
        tokio::time::timeout(PROBE_INTERVAL, connect).await,
        Ok(Ok(_))
    )
}

fn traced(channel: tonic::transport::Channel) -> Channel {
    MapRequest::new(channel, with_trace_context)
}

fn with_trace_context(mut request: http::Request<Body>) -> http::Request<Body> {
    propagation::inject_headers(request.headers_mut());
    request
}

/// Records each served call's method, status and time to its answer's headers (for a
/// server stream that is the time to its first message, not to its end).
#[derive(Clone)]
struct Metered<S>(S);

impl<S, B, R> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let started = std::time::Instant::now();
        let answer = self.0.call(request);
        Box::pin(async move {
            let answer = answer.await;
            let code = match &answer {
                // A status in the headers is a trailers-only answer: an error, or OK.
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .map_or(tonic::Code::Ok, |value| {
                        tonic::Code::from_bytes(value.as_bytes())
                    }),
                Err(_) => tonic::Code::Unavailable,
            };
            crate::metrics::grpc_call(&method, &format!("{code:?}"), started.elapsed());
            answer
        })
    }
}

/// One span per incoming call, continuing the caller's trace; named by the method's path
/// (`/broker.filetransfer.v1.FileTransferService/Upload`), never by metadata, which carries tokens.
fn call_span<B>(request: &http::Request<B>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc",
        otel.name = request.uri().path(),
        rpc.system = "grpc"
    );
    propagation::continue_from_headers(&span, request.headers());
    span
}

fn endpoint(url: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_frame_size(MAX_FRAME_BYTES))
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
