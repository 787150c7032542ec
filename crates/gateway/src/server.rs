//! The gateway's listener: accepts TCP connections and serves HTTP/1.1 and HTTP/2 on them with
//! hyper, under limits that keep a flood of idle or half-sent connections from exhausting
//! memory (axum's `serve` has none of them):
//!
//! - at most `max_connections` open connections, and `max_per_peer` from one IP address; an
//!   excess connection is reset as soon as it is accepted, before anything is allocated for it;
//! - a connection must complete its first request header within the header-read timeout
//!   (version sniffing and slow first headers included), and each later HTTP/1.1 header within
//!   the same time (hyper's own timer);
//! - a connection with no request in flight and no byte moving either way for the idle timeout
//!   is closed (an HTTP/2 connection between requests, a client that stopped reading);
//! - request headers are bounded (`max_header_bytes` for HTTP/1.1, answered 431; the header
//!   list size for HTTP/2), as are HTTP/2 streams; HTTP/2 peers are pinged and dropped when they
//!   do not answer.
//!
//! Memory that closed connections freed is handed back to the system after a wave of them
//! ([`trim_after_waves`]): without it RSS stayed at its peak (see there).
//!
//! On shutdown it stops accepting, lets every connection finish its requests (HTTP/2 peers get
//! GOAWAY) for at most the drain time, cuts the connections still busy then, and returns when
//! the last connection has closed: a client downloading for an hour cannot hold a stop open.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use broker_common::Shutdown;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ConnectionLimits;

/// The HTTP service each connection is served by.
pub type App = tower_http::normalize_path::NormalizePath<axum::Router>;

/// Serves `app` on `listener` under `limits` until `shutdown` fires and every connection has
/// finished.
pub async fn serve(listener: TcpListener, app: App, limits: ConnectionLimits, shutdown: Shutdown) {
    let builder = builder(&limits);
    let admission = Arc::new(Admission::new(&limits));
    let limits = Arc::new(limits);
    let connections = TaskTracker::new();
    tokio::spawn(trim_after_waves(Arc::clone(&admission), shutdown.clone()));
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Some(admitted) = admission.admit(peer.ip()) else {
            refuse(tcp, peer);
            continue;
        };
        // Small answers (tokens, problems) must not wait on Nagle's algorithm.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
        let connection = Connection {
            activity: Arc::new(Activity::new()),
            peer,
            limits: Arc::clone(&limits),
            shutdown: shutdown.clone(),
            _admitted: admitted,
        };
        connections.spawn(connection.run(tcp, builder.clone(), app.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// hyper's connection builder with `limits` applied.
fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper answers 431 when a header does not fit its read buffer, and has no separate
        // header limit at this level; bodies are read in chunks of at most this size too, which
        // costs uploads nothing measurable at 64 KiB.
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(limits.h2_max_header_list_bytes)
        .keep_alive_interval(limits.h2_keep_alive_interval)
        .keep_alive_timeout(limits.h2_keep_alive_timeout);
    builder
}

/// Waits after an accept error that is not the connection's own: with no descriptors left
/// (`EMFILE`), retrying at once would spin.
async fn accept_failed(error: io::Error) {
    let own = matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
    );
    if !own {
        tracing::warn!(%error, "accepting a connection failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Closes a connection over the limits with a reset, so neither side keeps it in TIME_WAIT.
fn refuse(tcp: TcpStream, peer: SocketAddr) {
    tracing::debug!(%peer, "connection refused: too many open connections");
    let _ = tcp.set_zero_linger();
}

/// Connections that must have closed since the last trim before memory is trimmed again.
const TRIM_AFTER_CLOSED: u64 = 256;

/// How often [`trim_after_waves`] looks.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Hands memory freed by closed connections back to the system after each wave of at least
/// [`TRIM_AFTER_CLOSED`] closed connections.
///
/// Measured with 1,000 connections sending half a header: RSS rose 14 MiB and stayed there
/// after they closed, and 3,000 more held 19 MiB. The memory was free inside glibc's malloc:
/// each connection's buffers and state are small allocations interleaved with longer-lived
/// ones, so no heap top becomes free for malloc to trim on its own. `malloc_trim` releases free
/// pages anywhere in every arena, which brought RSS back to its baseline.
async fn trim_after_waves(admission: Arc<Admission>, shutdown: Shutdown) {
    let mut trimmed_at = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(TRIM_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
        let closed = admission.closed.load(Ordering::Relaxed);
        if closed - trimmed_at >= TRIM_AFTER_CLOSED {
            trimmed_at = closed;
            // It walks every arena under their locks: not on a runtime worker.
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim only returns free pages of malloc's arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {
    // Other allocators return memory on their own terms.
}

/// The open connections, in all and by peer address.
struct Admission {
    max_total: usize,
    max_per_peer: usize,
    open: Mutex<Open>,
    /// Connections closed since the start.
    closed: AtomicU64,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
struct Admitted {
    admission: Arc<Admission>,
    peer: IpAddr,
}

impl Admission {
    fn new(limits: &ConnectionLimits) -> Self {
        Self {
            max_total: limits.max_connections,
            max_per_peer: limits.max_per_peer,
            open: Mutex::default(),
            closed: AtomicU64::new(0),
        }
    }

    /// A place for a connection from `peer`, if the limits leave one.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_peer = open.by_peer.get(&peer).copied().unwrap_or(0);
        if open.total >= self.max_total || from_peer >= self.max_per_peer {
            return None;
        }
        open.total += 1;
        open.by_peer.insert(peer, from_peer + 1);
        Some(Admitted {
            admission: Arc::clone(self),
            peer,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.closed.fetch_add(1, Ordering::Relaxed);
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(count) = open.by_peer.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.by_peer.remove(&self.peer);
            }
        }
    }
}

/// What the watchdog of one connection knows: when a byte last moved, and its requests.
struct Activity {
    started: Instant,
    /// Milliseconds after `started` a byte was last read or written.
    last_io: AtomicU64,
    in_flight: AtomicUsize,
    had_request: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_io: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            had_request: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_io.store(millis, Ordering::Relaxed);
    }

    /// A request has begun; the connection is busy until the guard is dropped.
    fn begin(self: &Arc<Self>) -> Busy {
        self.had_request.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }

    /// When the connection is due to be closed, unless something happens before.
    fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        let last_io = self.started + Duration::from_millis(self.last_io.load(Ordering::Relaxed));
        let idle = if self.in_flight.load(Ordering::Relaxed) > 0 {
            // A request being worked on is not idle; look again later.
            Instant::now() + limits.idle_timeout
        } else {
            last_io + limits.idle_timeout
        };
        if self.had_request.load(Ordering::Relaxed) {
            idle
        } else {
            idle.min(self.started + limits.header_read_timeout)
        }
    }
}

/// A request in flight on its connection.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One accepted connection and what it needs to be served.
struct Connection {
    activity: Arc<Activity>,
    peer: SocketAddr,
    limits: Arc<ConnectionLimits>,
    shutdown: Shutdown,
    _admitted: Admitted,
}

impl Connection {
    /// Serves the connection until it closes, its watchdog's deadline passes, or (after
    /// shutdown) its last request is answered or the drain time runs out.
    async fn run(self, tcp: TcpStream, builder: auto::Builder<TokioExecutor>, app: App) {
        let io = TokioIo::new(Watched {
            inner: tcp,
            activity: Arc::clone(&self.activity),
        });
        let (activity, peer) = (Arc::clone(&self.activity), self.peer);
        let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            // The rate limiter keys anonymous calls by the peer's address.
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = activity.begin();
            let call = app.clone().oneshot(request);
            async move {
                let response = call.await;
                drop(busy);
                response.map_err(|never: Infallible| match never {})
            }
        });
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        // Set when shutdown begins: the connection is cut then, busy or not.
        let mut cut_at: Option<Instant> = None;
        loop {
            let deadline = self.activity.deadline(&self.limits);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
                    }
                    return;
                }
                () = tokio::time::sleep_until(deadline) => {
                    if self.activity.deadline(&self.limits) <= Instant::now() {
                        tracing::debug!(peer = %self.peer, "closing a connection that timed out");
                        return;
                    }
                }
                () = self.shutdown.cancelled(), if cut_at.is_none() => {
                    connection.as_mut().graceful_shutdown();
                    cut_at = Some(Instant::now() + self.limits.drain);
                }
                () = sleep_until_some(cut_at) => {
                    tracing::info!(peer = %self.peer, "cutting a connection still busy when the drain time ran out");
                    return;
                }
            }
        }
    }
}

/// Sleeps until `instant`; never wakes without one.
async fn sleep_until_some(instant: Option<Instant>) {
    match instant {
        Some(instant) => tokio::time::sleep_until(instant).await,
        None => std::future::pending().await,
    }
}

/// A connection's socket, noting each byte read or written in its [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_written(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_written(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Watched {
    fn note_written(&self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(written)) if *written > 0) {
            self.activity.touch();
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn limits(total: usize, per_peer: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: total,
            max_per_peer: per_peer,
            ..ConnectionLimits::default()
        }
    }

    #[test]
    fn places_are_limited_in_all_and_per_peer_and_freed_on_drop() {
        let admission = Arc::new(Admission::new(&limits(3, 2)));
        let (a, b, c) = (
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([127, 0, 0, 2]),
            IpAddr::from([127, 0, 0, 3]),
        );
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert!(admission.admit(a).is_none(), "a third from one peer");
        let _third = admission.admit(b).unwrap();
        assert!(admission.admit(c).is_none(), "a fourth in all");
        drop(first);
        drop(admission.admit(c).expect("the place freed"));
        assert!(
            !admission.open.lock().unwrap().by_peer.contains_key(&c),
            "a peer without connections is forgotten"
        );
    }

    /// Serves an app whose `/` answers `first` and then, after `rest_after`, `rest` (never, for
    /// `None`), with `drain`; the address, the running server and its shutdown.
    async fn answering_slowly(
        rest_after: Option<Duration>,
        drain: Duration,
    ) -> (SocketAddr, tokio::task::JoinHandle<()>, Shutdown) {
        use futures::StreamExt;
        let handler = move || async move {
            let first = futures::stream::once(async { Ok::<_, Infallible>(Bytes::from("first")) });
            let rest = futures::stream::once(async move {
                match rest_after {
                    Some(after) => tokio::time::sleep(after).await,
                    None => std::future::pending().await,
                }
                Ok(Bytes::from("rest"))
            });
            axum::body::Body::from_stream(first.chain(rest))
        };
        let router = axum::Router::new().route("/", axum::routing::get(handler));
        let app = tower_http::normalize_path::NormalizePath::trim_trailing_slash(router);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let limits = ConnectionLimits {
            drain,
            ..ConnectionLimits::default()
        };
        let server = tokio::spawn(serve(listener, app, limits, shutdown.clone()));
        (addr, server, shutdown)
    }

    /// Sends `GET /` and reads until the answer's first chunk has come.
    async fn request_begun(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("first") {
            let mut chunk = [0u8; 1024];
            let read = tcp.read(&mut chunk).await.unwrap();
            assert!(
                read > 0,
                "the answer ended early: {:?}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&chunk[..read]);
        }
        (tcp, seen)
    }

    #[tokio::test]
    async fn a_stop_cuts_a_connection_still_busy_when_the_drain_time_runs_out() {
        let drain = Duration::from_millis(300);
        let (addr, server, shutdown) = answering_slowly(None, drain).await;
        let (mut tcp, _) = request_begun(addr).await;

        let stopping = Instant::now();
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops although the answer never ends")
            .unwrap();
        let waited = stopping.elapsed();
        assert!(waited >= drain, "cut before the drain time: {waited:?}");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "the client's connection is closed, not left hanging"
        );
    }

    #[tokio::test]
    async fn a_stop_lets_a_request_finish_within_the_drain_time() {
        let (addr, server, shutdown) =
            answering_slowly(Some(Duration::from_millis(300)), Duration::from_secs(30)).await;
        let (mut tcp, mut answer) = request_begun(addr).await;

        shutdown.trigger();
        tcp.read_to_end(&mut answer).await.unwrap();
        assert!(
            String::from_utf8_lossy(&answer).contains("rest"),
            "the whole answer came"
        );
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops once the answer is done")
            .unwrap();
    }

    #[tokio::test]
    async fn a_connection_is_due_at_the_header_timeout_then_when_idle() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            ..ConnectionLimits::default()
        };
        let activity = Arc::new(Activity::new());
        activity.touch();
        assert_eq!(
            activity.deadline(&limits),
            activity.started + Duration::from_secs(5),
            "bytes alone do not extend the wait for the first header"
        );
        let busy = activity.begin();
        let idle_from = Instant::now();
        assert!(
            activity.deadline(&limits) >= idle_from + Duration::from_secs(60),
            "a request in flight is not idle"
        );
        drop(busy);
        let due = activity.deadline(&limits);
        assert!(
            due >= idle_from + Duration::from_secs(59)
                && due <= Instant::now() + limits.idle_timeout,
            "idle from the answer on: {:?}",
            due - idle_from
        );
    }
}
