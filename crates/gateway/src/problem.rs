//! Every error answer is a problem: the fallbacks for unknown routes and methods, the answer to a
//! panicking handler, and the middleware that stamps each problem with the request id.
//!
//! The middleware also turns any error answer that is not yet JSON (an axum rejection, a layer's
//! bare status) into a problem, so no plain-text error can leave the gateway unless a handler
//! marks it [`Verbatim`]. OAuth errors (RFC 6749 JSON) and other JSON answers pass through
//! untouched.

use std::any::Any;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use broker_common::Problem;
use http::{StatusCode, header};

/// The header carrying the request id, set by the request-id layer when the client sent none.
pub const REQUEST_ID: &str = "x-request-id";

/// The content type of an RFC 7807 problem.
const PROBLEM_JSON: &str = "application/problem+json";

/// Error bodies are small; a larger one is replaced rather than buffered.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Marks an error answer that must reach the client exactly as written rather than as a
/// problem: Altinn answers an `Accept` header an endpoint cannot satisfy with a 406 in plain
/// text, without a Content-Type.
#[derive(Debug, Clone, Copy)]
pub struct Verbatim;

/// 404 for a path no route matches.
pub async fn not_found() -> Problem {
    Problem::not_found("no resource exists at this path")
}

/// 405 for a known path called with a method it does not support (axum adds `Allow`).
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this resource does not support the request's method",
    )
}

/// The answer to a panicking handler: a 500 problem that reveals nothing.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload");
    tracing::error!(panic = message, "a handler panicked");
    Problem::internal().into_response()
}

/// Puts the request id into every problem as `traceId`, and turns non-JSON error answers into
/// problems.
pub async fn finish(request: Request, next: Next) -> Response {
    let trace_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Verbatim>().is_some()
    {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with(PROBLEM_JSON) {
        stamp(response, trace_id).await
    } else if content_type.starts_with("application/json") {
        response
    } else {
        convert(response, trace_id).await
    }
}

/// Adds `traceId` to a problem body that lacks one.
async fn stamp(response: Response, trace_id: Option<String>) -> Response {
    let Some(trace_id) = trace_id else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return generic(parts.status, Some(trace_id));
    };
    let Ok(serde_json::Value::Object(mut problem)) = serde_json::from_slice(&bytes) else {
        return generic(parts.status, Some(trace_id));
    };
    problem
        .entry("traceId")
        .or_insert(serde_json::Value::String(trace_id));
    let Ok(body) = serde_json::to_vec(&problem) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Re-renders a non-JSON error answer as a problem, keeping its status and headers (`Allow`,
/// `WWW-Authenticate`) and using a short text body as the detail.
async fn convert(response: Response, trace_id: Option<String>) -> Response {
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .filter(|text| !text.trim().is_empty());
    let mut rendered = match text {
        // A server error's text may describe internals; the client learns only the status.
        Some(text) if parts.status.is_client_error() => Problem {
            trace_id,
            ..Problem::new(parts.status, text)
        }
        .into_response(),
        _ => generic(parts.status, trace_id),
    };
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().append(name, value.clone());
        }
    }
    rendered
}

/// A problem for `status` when the original answer cannot be kept.
fn generic(status: StatusCode, trace_id: Option<String>) -> Response {
    Problem {
        trace_id,
        ..generic_problem(status)
    }
    .into_response()
}

/// A problem saying no more than the status does.
fn generic_problem(status: StatusCode) -> Problem {
    Problem::new(status, status.canonical_reason().unwrap_or("Error"))
}
