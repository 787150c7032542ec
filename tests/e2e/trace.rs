//! One transfer is one trace: a sender's upload request, the gateway's span for it, the
//! file-transfer service's gRPC span, the bus hop (trace context in message headers), the event
//! service's ingest and its webhook delivery share the sender's trace id, and the webhook's
//! `traceparent` header names the delivery span. Every service runs in this test process (each
//! behind its gRPC server, as in embedded mode) so an in-memory exporter sees all their spans.

use std::collections::HashMap;
use std::time::Duration;

use broker_tests::broker::{Broker, Database};
use broker_tests::events::types::PUBLISHED;
use broker_tests::scenario::{AccessList, Scenario};
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use reqwest::Method;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The trace the sender's own tracing started, and the span its upload call runs in.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transfer_is_one_trace_from_the_gateway_through_the_bus_to_the_webhook() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("broker-test")))
        .init();

    let broker = Broker::in_process(Scenario::options(Database::Sqlite)).await;
    let scenario = Scenario::on(broker, AccessList::Disabled).await;
    let hook = scenario.recipient_webhook().await;

    let id = scenario.initialized(scenario.initialize_body()).await;
    let upload = scenario
        .request(
            Method::POST,
            &format!("/broker/api/v1/filetransfer/{id}/upload"),
        )
        .bearer_auth(&scenario.sender.write)
        .header("content-type", "application/octet-stream")
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .body(b"traced bytes".to_vec());
    scenario.send(upload).await.ok_json();
    scenario
        .wait_for_status(&scenario.sender.read, &id, "Published")
        .await;

    let published = hook
        .wait_for_deliveries(1, Duration::from_secs(20))
        .await
        .into_iter()
        .find(|received| received.event_type() == PUBLISHED)
        .expect("the recipient's webhook got the published event");
    let traceparent = published
        .header("traceparent")
        .expect("the webhook request carries a traceparent")
        .to_owned();
    let (trace, delivery_span) = parse_traceparent(&traceparent);
    let spans = wait_for_span(&exporter, delivery_span).await;
    assert_eq!(
        trace,
        TraceId::from_hex(CLIENT_TRACE).unwrap(),
        "the webhook continues the sender's trace: {traceparent}; spans: {}",
        describe(&spans)
    );
    let trace_spans: HashMap<SpanId, &SpanData> = spans
        .iter()
        .filter(|span| span.span_context.trace_id() == trace)
        .map(|span| (span.span_context.span_id(), span))
        .collect();

    // Walk from the webhook delivery up to the root: every hop is in the trace.
    let mut chain = Vec::new();
    let mut current = trace_spans.get(&delivery_span).copied();
    while let Some(span) = current {
        chain.push(span.name.to_string());
        current = trace_spans.get(&span.parent_span_id).copied();
        if current.is_none() {
            assert_eq!(
                span.parent_span_id,
                SpanId::from_hex(CLIENT_SPAN).unwrap(),
                "the root of the broker's part is the gateway's span for the sender's call; chain {chain:?}"
            );
        }
    }
    let position = |wanted: &dyn Fn(&str) -> bool, what: &str| {
        chain
            .iter()
            .position(|name| wanted(name))
            .unwrap_or_else(|| panic!("no {what} span in the chain {chain:?}"))
    };
    let delivery = position(&|name| name == "events.deliver", "webhook delivery");
    let ingest = position(&|name| name == "events.ingest", "event ingest");
    let filetransfer = position(
        &|name| name.ends_with("FileTransferService/Upload"),
        "file-transfer gRPC",
    );
    let gateway = position(
        &|name| name == format!("POST /broker/api/v1/filetransfer/{id}/upload"),
        "gateway request",
    );
    assert!(
        delivery < ingest && ingest < filetransfer && filetransfer < gateway,
        "the chain runs webhook → ingest → file transfer → gateway: {chain:?}"
    );
}

/// Each span's name, trace, id and parent, for failure messages.
fn describe(spans: &[SpanData]) -> String {
    spans
        .iter()
        .map(|span| {
            format!(
                "\n  {} trace {} span {} parent {}",
                span.name,
                span.span_context.trace_id(),
                span.span_context.span_id(),
                span.parent_span_id
            )
        })
        .collect()
}

/// `00-<trace>-<span>-<flags>` → its trace and span ids.
fn parse_traceparent(value: &str) -> (TraceId, SpanId) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "a W3C traceparent: {value}");
    (
        TraceId::from_hex(parts[1]).expect("a trace id"),
        SpanId::from_hex(parts[2]).expect("a span id"),
    )
}

/// The exported spans, once `span` is among them.
async fn wait_for_span(exporter: &InMemorySpanExporter, span: SpanId) -> Vec<SpanData> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let spans = exporter.get_finished_spans().expect("the exporter's spans");
        if spans.iter().any(|s| s.span_context.span_id() == span) {
            return spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "span {span} was never exported; {} spans were",
            spans.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
