//! A real webhook receiver on loopback, the other end of event delivery in tests and
//! benchmarks: it records every POST (headers, body, when it arrived, what it answered) and can
//! be told to fail, to refuse the validation handshake, or to answer slowly. Told which
//! processes may be delivering ([`Webhook::identify_deliverers`]), it also records which of them
//! each POST came from.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use tokio::net::TcpListener;

/// The CloudEvent type of the subscription validation handshake.
pub const VALIDATION_TYPE: &str = "platform.events.validatesubscription";

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body exactly as sent.
    pub raw: Bytes,
    /// Its body as JSON (`Null` if it was not JSON).
    pub body: Value,
    /// The status the receiver answered.
    pub answered: StatusCode,
    /// The address the POST came from.
    pub peer: SocketAddr,
    /// The process (among those given to [`Webhook::identify_deliverers`]) whose connection
    /// carried the POST.
    pub delivered_by: Option<u32>,
}

impl Received {
    /// The CloudEvent's `type`.
    pub fn event_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    /// The CloudEvent's `id`.
    pub fn id(&self) -> &str {
        self.body["id"].as_str().unwrap_or_default()
    }

    /// Whether this is the validation handshake rather than an event.
    pub fn is_validation(&self) -> bool {
        self.event_type() == VALIDATION_TYPE
    }

    /// Whether the receiver answered 2xx.
    pub fn accepted(&self) -> bool {
        self.answered.is_success()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

#[derive(Default)]
struct Behaviour {
    /// Where the receiver listens.
    addr: Option<SocketAddr>,
    received: Mutex<Vec<Received>>,
    /// Process ids of the possible deliverers, to tell which one a POST came from.
    deliverers: Mutex<Vec<u32>>,
    /// Event POSTs still to fail with 503.
    failures_left: AtomicUsize,
    /// Answer the validation handshake with 500.
    refuse_validation: AtomicBool,
    /// Milliseconds to wait before answering.
    delay_ms: AtomicU64,
    /// POSTs being answered now, and the most at once.
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// A webhook receiver serving `POST /hook` until dropped.
pub struct Webhook {
    addr: SocketAddr,
    behaviour: Arc<Behaviour>,
    server: tokio::task::JoinHandle<()>,
}

impl Webhook {
    /// A receiver that accepts everything.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the webhook receiver");
        let addr = listener.local_addr().expect("local address");
        let behaviour = Arc::new(Behaviour {
            addr: Some(addr),
            ..Behaviour::default()
        });
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(behaviour.clone());
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .ok();
        });
        Self {
            addr,
            behaviour,
            server,
        }
    }

    /// The endpoint to subscribe with.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next `count` event POSTs (not validations) are answered 503.
    pub fn fail_next_events(&self, count: usize) {
        self.behaviour.failures_left.store(count, Ordering::SeqCst);
    }

    /// Whether to answer the validation handshake with 500.
    pub fn refuse_validation(&self, refuse: bool) {
        self.behaviour
            .refuse_validation
            .store(refuse, Ordering::SeqCst);
    }

    /// Waits this long before answering each POST.
    pub fn answer_after(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.behaviour.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// From now on, records which of the processes `pids` each POST came from
    /// ([`Received::delivered_by`]), read from the operating system while the POST is served
    /// (see [`crate::sockets`]).
    pub fn identify_deliverers(&self, pids: &[u32]) {
        *self
            .behaviour
            .deliverers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = pids.to_vec();
    }

    /// Every POST so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.behaviour
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The most POSTs the receiver was answering at once.
    pub fn most_in_flight(&self) -> usize {
        self.behaviour.most_in_flight.load(Ordering::SeqCst)
    }

    /// Every validation handshake POST, accepted or not.
    pub fn validations(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(Received::is_validation)
            .collect()
    }

    /// Every event POST (validations left out), accepted or not.
    pub fn attempts(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|post| !post.is_validation())
            .collect()
    }

    /// The events the receiver accepted.
    pub fn delivered(&self) -> Vec<Received> {
        self.attempts()
            .into_iter()
            .filter(Received::accepted)
            .collect()
    }

    /// Whether the receiver accepted a validation handshake.
    pub fn validated(&self) -> bool {
        self.received()
            .iter()
            .any(|post| post.is_validation() && post.accepted())
    }

    /// Polls until `done` holds, panicking with `what` after `timeout`.
    pub async fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "webhook: {what} did not happen within {timeout:?}; received {:#?}",
                self.received()
                    .iter()
                    .map(|post| (post.event_type().to_owned(), post.answered))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `count` events were accepted and returns them.
    pub async fn wait_for_deliveries(&self, count: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(&format!("{count} deliveries"), timeout, |hook| {
            hook.delivered().len() >= count
        })
        .await;
        self.delivered()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(behaviour): State<Arc<Behaviour>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    raw: Bytes,
) -> StatusCode {
    // While the POST is being served its connection is surely open.
    let deliverers = behaviour
        .deliverers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let delivered_by = match behaviour.addr {
        Some(addr) if !deliverers.is_empty() => crate::sockets::owner(peer, addr, &deliverers),
        _ => None,
    };
    let in_flight = behaviour.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    behaviour
        .most_in_flight
        .fetch_max(in_flight, Ordering::SeqCst);
    let delay = behaviour.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    behaviour.in_flight.fetch_sub(1, Ordering::SeqCst);
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let validation = body["type"] == VALIDATION_TYPE;
    let answered = if validation {
        if behaviour.refuse_validation.load(Ordering::SeqCst) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    } else if behaviour
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok()
    {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    behaviour
        .received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received {
            at: Instant::now(),
            headers,
            raw,
            body,
            answered,
            peer,
            delivered_by,
        });
    answered
}
