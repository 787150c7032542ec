//! Content negotiation as Altinn's servers do it, per route and before authentication:
//!
//! - [`produces`]: Altinn's `AcceptHeaderValidationMiddleware` for an action with `[Produces]`:
//!   an `Accept` header that names none of the produced types (nor `*/*`) is a 406 with a short
//!   text; and, as ASP.NET's `[Produces]` does, the action's problems are sent as its type
//!   (`application/json`), not as `application/problem+json`;
//! - [`consumes`]: ASP.NET's `[Consumes]` routing constraint: a request whose `Content-Type` is
//!   another type is a 415 with no body (one without a `Content-Type` passes);
//! - [`problems_as`]: `[Produces]` alone, for Altinn Events, which has no Accept check: the
//!   action's problems are sent as its type.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::problem::{Bare, ProblemsAs, bare};

/// JSON as ASP.NET's System.Text.Json formatter names it in an answer.
const JSON_UTF8: &str = "application/json; charset=utf-8";
/// CloudEvents JSON as ASP.NET names it in an answer of an action producing it.
const CLOUDEVENTS_UTF8: &str = "application/cloudevents+json; charset=utf-8";

/// The media types of a header's comma-separated list, parameters removed, lowercased.
pub(crate) fn media_types(headers: &HeaderMap, name: header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| {
            item.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|item| !item.is_empty())
        .collect()
}

/// Whether the request's `Accept` header lists `media_type` itself.
pub fn lists(headers: &HeaderMap, media_type: &str) -> bool {
    media_types(headers, header::ACCEPT)
        .iter()
        .any(|item| item == media_type)
}

/// Whether `accept` (the request's header, if any) lets an action producing `types` answer.
pub fn acceptable(headers: &HeaderMap, types: &[&str]) -> bool {
    if !headers.contains_key(header::ACCEPT) {
        return true;
    }
    media_types(headers, header::ACCEPT)
        .iter()
        .any(|item| item == "*/*" || types.contains(&item.as_str()))
}

/// Altinn's 406: its text, no content type, no other body.
pub fn not_acceptable(types: &[&str]) -> Response {
    let text = format!(
        "This endpoint does not support the requested Accept header. Supported Accept headers \
         are: {}, */*.",
        types.join(", ")
    );
    let mut response = (StatusCode::NOT_ACCEPTABLE, Body::from(text)).into_response();
    response.headers_mut().remove(header::CONTENT_TYPE);
    response.extensions_mut().insert(Bare);
    response
}

/// The middleware of an action producing `types` (the first one its problems' type).
pub async fn produces(types: &'static [&'static str], request: Request, next: Next) -> Response {
    if !acceptable(request.headers(), types) {
        return not_acceptable(types);
    }
    if types.first() == Some(&"application/json") {
        return problems_as(JSON_UTF8, request, next).await;
    }
    next.run(request).await
}

/// The middleware of an action whose problems are sent as `content_type`.
pub async fn problems_as(content_type: &'static str, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.extensions_mut().insert(ProblemsAs(content_type));
    response
}

/// [`problems_as`] for the actions producing JSON on a server without Altinn Broker's `Accept`
/// check (Altinn Events, the Resource Registry): any `Accept` is answered JSON.
pub async fn problems_as_json(request: Request, next: Next) -> Response {
    problems_as(JSON_UTF8, request, next).await
}

/// [`problems_as`] for Altinn Events' pull, which produces CloudEvents JSON.
pub async fn problems_as_cloudevents(request: Request, next: Next) -> Response {
    problems_as(CLOUDEVENTS_UTF8, request, next).await
}

/// The middleware of an action consuming only `content_type`.
pub async fn consumes(content_type: &'static str, request: Request, next: Next) -> Response {
    let sent = media_types(request.headers(), header::CONTENT_TYPE);
    if sent.first().is_some_and(|sent| sent != content_type) {
        return bare(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    next.run(request).await
}

/// [`produces`] for the actions that answer JSON.
pub async fn produces_json(request: Request, next: Next) -> Response {
    produces(&["application/json"], request, next).await
}

/// [`consumes`] for the raw upload.
pub async fn consumes_octet_stream(request: Request, next: Next) -> Response {
    consumes("application/octet-stream", request, next).await
}

/// [`consumes`] for the multipart initialize-and-upload.
pub async fn consumes_form(request: Request, next: Next) -> Response {
    consumes("multipart/form-data", request, next).await
}

/// [`consumes`] for the action that takes a JSON Patch.
pub async fn consumes_json_patch(request: Request, next: Next) -> Response {
    consumes("application/json-patch+json", request, next).await
}

/// [`consumes`] for the actions that take JSON.
pub async fn consumes_json(request: Request, next: Next) -> Response {
    consumes("application/json", request, next).await
}

/// Adds the headers Altinn's `SecurityHeadersMiddleware` puts on every answer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        headers
    }

    /// Mirrors Altinn's `AcceptHeaderValidationTests`.
    #[test]
    fn accept_passes_as_altinns_middleware_lets_it() {
        let json = ["application/json"];
        assert!(acceptable(&HeaderMap::new(), &json), "no Accept");
        for passes in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "*/*",
            "text/plain; q=0.9, text/markdown; q=0.8, application/json; q=0.5",
        ] {
            assert!(acceptable(&accept(passes), &json), "{passes}");
        }
        for refused in [
            "application/octet-stream",
            "application/*",
            "application/problem+json",
            "text/plain",
        ] {
            assert!(!acceptable(&accept(refused), &json), "{refused}");
        }
    }
}
