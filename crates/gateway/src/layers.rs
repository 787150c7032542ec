//! The middleware every request passes, outermost first:
//!
//! 1. a request id (`x-request-id`, a UUID v4 unless the client sent one), echoed on the answer;
//! 2. one tracing span per request with method, path, status and request id; never headers,
//!    query strings or bodies, which carry tokens and assertions;
//! 3. request counts and latencies by route template, for `/metrics`;
//! 4. Altinn's security headers (`X-Content-Type-Options: nosniff`, `Cache-Control: no-store`)
//!    on every answer;
//! 5. problem finishing: the trace id as every problem's `traceId`, no plain-text errors;
//! 6. a panicking handler answered with a 500 problem instead of a dropped connection;
//! 7. a request with two `Authorization` headers refused (400).

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use http::HeaderName;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::problem::{self, REQUEST_ID};
use crate::{auth, negotiation};

/// Wraps `router` in the gateway's cross-cutting layers.
pub fn apply(router: Router) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(record_response),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(axum::middleware::from_fn(measure))
            .layer(axum::middleware::from_fn(negotiation::security_headers))
            .layer(axum::middleware::from_fn(problem::finish))
            .layer(CatchPanicLayer::custom(problem::panic_response))
            .layer(axum::middleware::from_fn(auth::single_authorization)),
    )
}

fn request_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {}", request.method(), request.uri().path()),
        method = %request.method(),
        path = request.uri().path(),
        request_id,
        status = tracing::field::Empty,
    );
    // A client that traces its own calls sees the broker's spans inside its trace.
    broker_common::telemetry::propagation::continue_from_headers(&span, request.headers());
    span
}

/// Counts and times each request by its route template (`/…/filetransfer/{fileTransferId}`),
/// never by its path, so transfer ids do not become metric labels.
async fn measure(request: Request, next: axum::middleware::Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    broker_common::metrics::http_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

fn record_response(response: &Response, latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
    tracing::info!(latency_ms = latency.as_millis(), "answered");
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use http::StatusCode;
    use tower::ServiceExt;

    use super::*;

    async fn explode() -> &'static str {
        panic!("a bug in a handler")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_500_problem() {
        let app = apply(Router::new().route("/explode", get(explode)));
        let request = Request::get("/explode").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/problem+json");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 500);
        assert!(!problem["detail"].as_str().unwrap().contains("bug"));
        let request_id = headers[REQUEST_ID].to_str().unwrap().replace('-', "");
        let trace_id = problem["traceId"].as_str().unwrap();
        assert!(
            trace_id.starts_with(&format!("00-{request_id}-")),
            "the W3C form of the request id: {trace_id}"
        );
    }
}
