//! Every error answer is a problem, except where Altinn's servers answer with an empty body:
//! the fallbacks for unknown routes and methods, the answer to a panicking handler, and the
//! middleware that stamps each problem with its trace id (ASP.NET's `traceId`, the W3C
//! `traceparent` of the request).
//!
//! The middleware also turns any error answer that is not yet JSON (an axum rejection, a layer's
//! bare status) into a problem, so no plain-text error can leave the gateway — unless the answer
//! is marked [`Bare`] (or is a service's [`Plain`] answer): ASP.NET's 401, 403, 404, 405, 406
//! and 415 have no body, and Altinn's clients see exactly that. OAuth errors (RFC 6749 JSON) and other JSON answers pass through
//! untouched.

use std::any::Any;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use broker_common::{Plain, Problem};
use http::{StatusCode, header};

/// The header carrying the request id, set by the request-id layer when the client sent none.
pub const REQUEST_ID: &str = "x-request-id";

/// The content type of an RFC 7807 problem.
const PROBLEM_JSON: &str = "application/problem+json";

/// Error bodies are small; a larger one is replaced rather than buffered.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The path prefixes of the APIs Altinn's own servers answer (ASP.NET, whose routing answers an
/// unknown path or method with an empty body).
const ALTINN_PREFIXES: [&str; 4] = [
    "/broker/",
    "/resourceregistry/",
    "/events/",
    "/authentication/",
];

/// Marks an answer whose empty body is the contract (as ASP.NET answers a failed authentication
/// or authorization, an unknown route, an unacceptable `Accept` or content type): [`finish`]
/// leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct Bare;

/// Marks a route whose problems are sent as the content type it holds (`application/json;
/// charset=utf-8`, say): ASP.NET's `[Produces]` gives every object result of an action,
/// problem details included, the content type it names.
#[derive(Debug, Clone, Copy)]
pub struct ProblemsAs(pub &'static str);

/// `status` with no body, as ASP.NET answers it, kept so by [`finish`].
pub fn bare(status: StatusCode) -> Response {
    let mut response = status.into_response();
    response.extensions_mut().insert(Bare);
    response
}

/// Whether `path` belongs to one of the Altinn-compatible APIs.
fn altinn_path(path: &str) -> bool {
    ALTINN_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// 404 for a path no route matches: empty on Altinn's APIs, a problem on ours.
pub async fn not_found(uri: http::Uri) -> Response {
    if altinn_path(uri.path()) {
        return bare(StatusCode::NOT_FOUND);
    }
    Problem::not_found("no resource exists at this path").into_response()
}

/// 405 for a known path called with a method it does not support (axum adds `Allow`): empty on
/// Altinn's APIs, a problem on ours.
pub async fn method_not_allowed(uri: http::Uri) -> Response {
    if altinn_path(uri.path()) {
        return bare(StatusCode::METHOD_NOT_ALLOWED);
    }
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this resource does not support the request's method",
    )
    .into_response()
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

/// ASP.NET's `traceId`: the request's W3C `traceparent` when it is traced, else one made from
/// the request id (a UUID), so a client can quote either; a request id of the client's own that
/// is not a UUID is used as it came.
fn trace_id(request: &Request) -> Option<String> {
    if let Some(traceparent) = broker_common::telemetry::propagation::current_traceparent() {
        return Some(traceparent);
    }
    let request_id = request.headers().get(REQUEST_ID)?.to_str().ok()?;
    let Ok(uuid) = uuid::Uuid::parse_str(request_id) else {
        return Some(request_id.to_owned());
    };
    let simple = uuid.simple().to_string();
    Some(format!("00-{simple}-{}-00", &simple[16..]))
}

/// Puts the trace id into every problem as `traceId`, turns non-JSON error answers into
/// problems, and leaves [`Bare`] answers alone.
pub async fn finish(request: Request, next: Next) -> Response {
    let trace_id = trace_id(&request);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Bare>().is_some()
        || response.extensions().get::<Plain>().is_some()
    {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (mut response, typed) = if content_type.starts_with(PROBLEM_JSON) {
        stamp(response, trace_id).await
    } else if content_type.starts_with("application/json") {
        return response;
    } else {
        (convert(response, trace_id).await, false)
    };
    // Altinn Authorization's problems are written by `TypedResults.Problem`, which `[Produces]`
    // does not reach: they stay `application/problem+json`.
    let problems_as = response.extensions().get::<ProblemsAs>().copied();
    if let Some(ProblemsAs(content_type)) = problems_as.filter(|_| !typed) {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
    }
    response
}

/// Adds `traceId` to a problem body that lacks one; also says whether the problem is one of
/// Altinn Authorization's typed problems (`type` `urn:altinn:error:…`).
async fn stamp(response: Response, trace_id: Option<String>) -> (Response, bool) {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return (generic(parts.status, trace_id), false);
    };
    let Ok(serde_json::Value::Object(mut problem)) = serde_json::from_slice(&bytes) else {
        return (generic(parts.status, trace_id), false);
    };
    let typed = problem
        .get("type")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|kind| kind.starts_with("urn:altinn:error:"));
    let Some(trace_id) = trace_id else {
        return (Response::from_parts(parts, Body::from(bytes)), typed);
    };
    problem
        .entry("traceId")
        .or_insert(serde_json::Value::String(trace_id));
    let Ok(body) = serde_json::to_vec(&problem) else {
        return (Response::from_parts(parts, Body::from(bytes)), typed);
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    (Response::from_parts(parts, Body::from(body)), typed)
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
    let problems_as = parts.extensions.get::<ProblemsAs>().copied();
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
    if let Some(marker) = problems_as {
        rendered.extensions_mut().insert(marker);
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
