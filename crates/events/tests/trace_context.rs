//! One trace from the bus to the webhook: a file-transfer event whose bus message carries a
//! `traceparent` is ingested in a span continuing it, and its delivery runs in a span continuing
//! the ingest span and sends its own `traceparent` to the subscriber. Its own test binary,
//! because the spans are recorded by a process-wide subscriber with an OpenTelemetry layer,
//! which would give every other scenario traces too.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use broker_events::domain::cloud_event::CloudEvent;
use broker_events::store::EventStore;
use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use support::{PUBLIC_URL, RECIPIENT, Service, published, subject};
use tracing_subscriber::layer::SubscriberExt;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let store = support::sqlite().await;
    the_webhook_joins_the_trace_of_the_bus_message(store.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if let Some(store) = support::postgres().await {
        the_webhook_joins_the_trace_of_the_bus_message(store.store.clone()).await;
    }
}

/// Where the process-wide subscriber's spans go as they end; installed on first use.
fn finished_spans() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    let (exporter, _provider) = EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("events-test"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only subscriber of this test binary");
        (exporter, provider)
    });
    exporter
}

/// The finished spans of `trace` by id, once one with id `until` is among them.
async fn spans_of(trace: &str, until: SpanId) -> HashMap<SpanId, SpanData> {
    let deadline = Instant::now() + WAIT;
    loop {
        let spans: HashMap<SpanId, SpanData> = finished_spans()
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|span| span.span_context.trace_id().to_string() == trace)
            .map(|span| (span.span_context.span_id(), span))
            .collect();
        if spans.contains_key(&until) {
            return spans;
        }
        assert!(Instant::now() < deadline, "span {until} never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|KeyValue { key: name, .. }| name.as_str() == key)
        .map(|attribute| attribute.value.clone())
}

async fn the_webhook_joins_the_trace_of_the_bus_message(store: Arc<dyn EventStore>) {
    finished_spans();
    let service = Service::start(store, &support::fast_config()).await;
    let (hook, subscription) = service.recipient_hook("traced").await;
    // A trace of this scenario alone: the other database's runs in the same process.
    let trace = Uuid::new_v4().simple().to_string();
    let caller = "00f067aa0ba902b7";
    let event = published("traced");
    service
        .publish_traced(&event, &format!("00-{trace}-{caller}-01"))
        .await;
    hook.wait_until("the traced delivery", WAIT, |hook| {
        hook.delivered().len() == 1
    })
    .await;

    let got = &hook.delivered()[0];
    let header = got.header("traceparent").expect("a traceparent header");
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", trace.as_str(), "01"));
    // The body stays Altinn's CloudEvent: the trace travels in the header only.
    let body: serde_json::Value = serde_json::from_slice(&got.raw).unwrap();
    assert!(body.get("traceparent").is_none(), "{body}");

    // The POST's parent is the delivery span, whose ancestors lead to the published span.
    let sender = SpanId::from_hex(parts[2]).unwrap();
    let spans = spans_of(&trace, sender).await;
    let deliver = &spans[&sender];
    assert_eq!(deliver.name, "events.deliver");
    let expected = CloudEvent::from_transfer_event(&event, PUBLIC_URL)
        .into_iter()
        .find(|cloud| cloud.subject == subject(RECIPIENT))
        .unwrap();
    assert_eq!(
        attribute(deliver, "subscription"),
        Some(Value::I64(subscription.id))
    );
    assert_eq!(
        attribute(deliver, "event"),
        Some(Value::from(expected.id.to_string()))
    );
    let caller = SpanId::from_hex(caller).unwrap();
    let mut chain = vec![deliver.name.to_string()];
    let mut parent = deliver.parent_span_id;
    while parent != caller {
        let span = spans.get(&parent).unwrap_or_else(|| {
            panic!("the chain {chain:?} breaks at {parent}, not at the published span")
        });
        chain.push(span.name.to_string());
        parent = span.parent_span_id;
    }
    assert_eq!(chain, ["events.deliver", "events.ingest"]);
    service.stop().await;
}
