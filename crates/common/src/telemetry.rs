//! Logging and tracing: readable (or JSON) logs always, OpenTelemetry trace export over OTLP
//! when `BROKER_OTLP_ENDPOINT` is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::CommonConfig;

/// Keeps the trace exporter alive; flushes pending spans when dropped.
#[must_use = "dropping the guard stops trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

/// Installs the process-wide subscriber. A second call (several brokers in one test process)
/// keeps the first subscriber.
pub fn init(service: &str, config: &CommonConfig) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(&config.log)?;
    // Logs go to stderr: stdout carries the `listening:` lines tooling waits for.
    let fmt = match config.log_format.as_str() {
        "json" => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        "text" => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        other => anyhow::bail!("BROKER_LOG_FORMAT must be text or json, not {other:?}"),
    };
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        Resource::builder()
                            .with_service_name(service.to_owned())
                            .build(),
                    )
                    .build(),
            )
        }
        None => None,
    };
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service.to_owned()))
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    Ok(Telemetry { provider })
}

/// W3C trace context (`traceparent`, `tracestate`) carried across process boundaries: HTTP and
/// gRPC headers, bus message headers, stored events. Without an exporter spans carry no trace,
/// so nothing is written and incoming context is ignored.
pub mod propagation {
    use std::collections::BTreeMap;

    use opentelemetry::Context;
    use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// The header naming a span's trace and parent (W3C Trace Context).
    pub const TRACEPARENT: &str = "traceparent";

    struct Headers<'a>(&'a mut http::HeaderMap);

    impl Injector for Headers<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(key.as_bytes()),
                http::HeaderValue::from_str(&value),
            ) {
                self.0.insert(name, value);
            }
        }
    }

    struct ReadHeaders<'a>(&'a http::HeaderMap);

    impl Extractor for ReadHeaders<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|value| value.to_str().ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(http::HeaderName::as_str).collect()
        }
    }

    struct Map<'a>(&'a mut BTreeMap<String, String>);

    impl Injector for Map<'_> {
        fn set(&mut self, key: &str, value: String) {
            self.0.insert(key.to_owned(), value);
        }
    }

    struct ReadMap<'a>(&'a BTreeMap<String, String>);

    impl Extractor for ReadMap<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).map(String::as_str)
        }

        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(String::as_str).collect()
        }
    }

    fn current() -> Context {
        tracing::Span::current().context()
    }

    /// Writes the current span's trace context into outgoing HTTP (or gRPC) headers.
    pub fn inject_headers(headers: &mut http::HeaderMap) {
        TraceContextPropagator::new().inject_context(&current(), &mut Headers(headers));
    }

    /// Writes the current span's trace context into a string map (bus message headers).
    pub fn inject_map(map: &mut BTreeMap<String, String>) {
        TraceContextPropagator::new().inject_context(&current(), &mut Map(map));
    }

    /// The current span's `traceparent`, when it belongs to a recorded trace.
    pub fn current_traceparent() -> Option<String> {
        let mut map = BTreeMap::new();
        inject_map(&mut map);
        map.remove(TRACEPARENT)
    }

    /// Makes `span` continue the trace named in incoming HTTP (or gRPC) headers.
    pub fn continue_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
        continue_from(
            span,
            TraceContextPropagator::new().extract(&ReadHeaders(headers)),
        );
    }

    /// Makes `span` continue the trace named in a string map (bus message headers).
    pub fn continue_from_map(span: &tracing::Span, map: &BTreeMap<String, String>) {
        continue_from(span, TraceContextPropagator::new().extract(&ReadMap(map)));
    }

    /// Makes `span` continue the trace a stored `traceparent` names.
    pub fn continue_from_traceparent(span: &tracing::Span, traceparent: &str) {
        let map = BTreeMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
        continue_from_map(span, &map);
    }

    fn continue_from(span: &tracing::Span, context: Context) {
        use opentelemetry::trace::TraceContextExt as _;
        // A missing or malformed header leaves the span a root; a span already started
        // (its context fixed) stays as it is.
        if context.span().span_context().is_valid() {
            let _ = span.set_parent(context);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn malformed_or_absent_context_is_ignored() {
            let span = tracing::info_span!("test");
            continue_from_traceparent(&span, "not a traceparent");
            continue_from_headers(&span, &http::HeaderMap::new());
            // Without a subscriber recording OpenTelemetry data there is nothing to inject.
            assert_eq!(span.in_scope(current_traceparent), None);
        }
    }
}
