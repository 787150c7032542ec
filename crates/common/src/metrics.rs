//! Prometheus metrics: one registry per process, so embedded mode's services share one
//! `/metrics` page, served on `BROKER_METRICS_ADDR` next to (never on) the public gateway.
//!
//! Callers record through the functions here; the families behind them stay private, so label
//! sets cannot drift between call sites.

use std::sync::LazyLock;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// The content type of the text exposition format the page is written in.
const CONTENT_TYPE_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    method: String,
    code: String,
}

/// Which way file bytes moved.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Direction {
    /// Uploaded by a sender.
    Upload,
    /// Downloaded by a recipient.
    Download,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: Direction,
}

/// How one webhook delivery attempt ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// The attempt failed and another is scheduled.
    Retry,
    /// The last attempt failed; the event became a dead letter.
    DeadLettered,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: DeliveryOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BusLabels {
    routing_key: String,
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~16 s: loopback gRPC calls at the low end, large streamed uploads at the top.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

struct Metrics {
    registry: Registry,
    http: Latencies<HttpLabels>,
    grpc: Latencies<GrpcLabels>,
    uploads_in_flight: Gauge,
    bytes: Family<DirectionLabels, Counter>,
    bus_published: Family<BusLabels, Counter>,
    deliveries: Family<OutcomeLabels, Counter>,
    delivery_queue: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("broker");
    Metrics {
        http: registered(
            &mut registry,
            "http_request_duration_seconds",
            "Gateway requests by route template, method and status, and how long they took",
            Family::new_with_constructor(latency_histogram),
        ),
        grpc: registered(
            &mut registry,
            "grpc_server_duration_seconds",
            "gRPC calls served, by method and status code, and how long they took",
            Family::new_with_constructor(latency_histogram),
        ),
        uploads_in_flight: registered(
            &mut registry,
            "uploads_in_flight",
            "File uploads being received right now",
            Gauge::default(),
        ),
        bytes: registered(
            &mut registry,
            "file_bytes",
            "File bytes moved, by direction",
            Family::default(),
        ),
        bus_published: registered(
            &mut registry,
            "bus_published",
            "Messages published to the bus, by routing key",
            Family::default(),
        ),
        deliveries: registered(
            &mut registry,
            "event_deliveries",
            "Webhook delivery attempts, by outcome",
            Family::default(),
        ),
        delivery_queue: registered(
            &mut registry,
            "event_delivery_queue",
            "Webhook deliveries waiting to be attempted, as last counted",
            Gauge::default(),
        ),
        registry,
    }
});

/// Registers `metric` (a handle sharing its values) and returns it for recording.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Records one answered gateway request; `route` is the route template, never the raw path,
/// so identifiers do not become label values.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let labels = HttpLabels {
        method: method.to_owned(),
        route: route.to_owned(),
        status,
    };
    METRICS
        .http
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
}

/// Records one served gRPC call: `method` is its path, `code` its gRPC status name.
pub fn grpc_call(method: &str, code: &str, took: Duration) {
    let labels = GrpcLabels {
        method: method.to_owned(),
        code: code.to_owned(),
    };
    METRICS
        .grpc
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
}

/// Counts an upload as in flight until the guard is dropped, however the upload ends.
pub fn upload_in_flight() -> UploadInFlight {
    METRICS.uploads_in_flight.inc();
    UploadInFlight(())
}

/// Holds one upload in the in-flight gauge.
#[must_use = "the upload counts as in flight only while the guard lives"]
pub struct UploadInFlight(());

impl Drop for UploadInFlight {
    fn drop(&mut self) {
        METRICS.uploads_in_flight.dec();
    }
}

/// Adds to the file bytes moved in one direction.
pub fn file_bytes(direction: Direction, bytes: u64) {
    METRICS
        .bytes
        .get_or_create(&DirectionLabels { direction })
        .inc_by(bytes);
}

/// Counts a message published to the bus.
pub fn bus_published(routing_key: &str) {
    let labels = BusLabels {
        routing_key: routing_key.to_owned(),
    };
    METRICS.bus_published.get_or_create(&labels).inc();
}

/// Counts a webhook delivery attempt's outcome.
pub fn event_delivery(outcome: DeliveryOutcome) {
    METRICS
        .deliveries
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}

/// Sets how many webhook deliveries wait to be attempted.
pub fn set_event_delivery_queue(waiting: i64) {
    METRICS.delivery_queue.set(waiting);
}

/// The page Prometheus scrapes.
pub fn render() -> String {
    let mut page = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut page, &METRICS.registry);
    page
}

/// `GET /metrics`.
pub fn router() -> Router {
    Router::new().route(
        "/metrics",
        get(|| async { ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], render()).into_response() }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_on_the_page() {
        http_request(
            "GET",
            "/broker/api/v1/filetransfer/{fileTransferId}",
            200,
            Duration::from_millis(3),
        );
        file_bytes(Direction::Upload, 1234);
        {
            let _upload = upload_in_flight();
            assert!(
                render().contains("broker_uploads_in_flight 1"),
                "{}",
                render()
            );
        }
        event_delivery(DeliveryOutcome::DeadLettered);
        let page = render();
        assert!(page.contains(
            r#"broker_http_request_duration_seconds_count{method="GET",route="/broker/api/v1/filetransfer/{fileTransferId}",status="200"} 1"#
        ), "{page}");
        assert!(
            page.contains(r#"broker_file_bytes_total{direction="Upload"} 1234"#),
            "{page}"
        );
        assert!(page.contains("broker_uploads_in_flight 0"), "{page}");
        assert!(
            page.contains(r#"broker_event_deliveries_total{outcome="DeadLettered"} 1"#),
            "{page}"
        );
        assert!(page.ends_with("# EOF\n"), "{page}");
    }
}
