//! Optimistic concurrency over HTTP (RFC 9110 §13.1.1, §8.8.3): the `If-Match` a client sends
//! becomes the version the access registry compares, and every answer carrying a versioned
//! entity names its version in `ETag`.
//!
//! Versions are counters starting at 1, so an entity tag is `"<n>"`. This module only reads and
//! writes the headers; whether a tag is current is the registry's decision (412 when it is not).

use axum::Json;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use broker_common::Problem;
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// The version a write is conditional on: `If-Match: "<n>"`, or 0 (no condition) when absent.
///
/// `*` ("any current version") is also 0: the registry then applies no version check. The weak
/// form `W/"<n>"` is accepted like the strong one, since a version names exactly one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfMatch(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let mut values = parts.headers.get_all(header::IF_MATCH).iter();
        let Some(value) = values.next() else {
            return Ok(Self(0));
        };
        if values.next().is_some() {
            return Err(malformed());
        }
        value.to_str().map_err(|_| malformed()).and_then(parse)
    }
}

/// Reads one entity tag as this API issues them.
fn parse(text: &str) -> Result<IfMatch, Problem> {
    let text = text.trim();
    if text == "*" {
        return Ok(IfMatch(0));
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let version = tag
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u64>().ok())
        .ok_or_else(malformed)?;
    if version == 0 {
        // 0 means "no condition" to the registry, but no entity ever has version 0.
        return Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "no entity is at version 0",
        ));
    }
    Ok(IfMatch(version))
}

fn malformed() -> Problem {
    Problem::invalid_field(
        "If-Match",
        "must be one entity tag as an ETag gave it, such as \"3\", or *",
    )
}

/// The `ETag` of `version`.
fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// An answer carrying a versioned entity: its status, `ETag`, optional `Location`, JSON body.
#[derive(Debug)]
pub struct Tagged<T> {
    status: StatusCode,
    version: u64,
    location: Option<String>,
    body: T,
}

impl<T> Tagged<T> {
    /// 200 with `body` at `version`.
    pub fn ok(version: u64, body: T) -> Self {
        Self {
            status: StatusCode::OK,
            version,
            location: None,
            body,
        }
    }

    /// 201 with `body` at `version`, created at `location`.
    pub fn created(version: u64, location: String, body: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            version,
            location: Some(location),
            body,
        }
    }
}

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::try_from(etag(self.version)) {
            headers.insert(header::ETAG, etag);
        }
        if let Some(location) = self
            .location
            .and_then(|location| HeaderValue::try_from(location).ok())
        {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(text: &str) -> u16 {
        parse(text).unwrap_err().status
    }

    #[test]
    fn reads_strong_weak_and_wildcard_tags() {
        assert_eq!(parse("\"7\"").unwrap(), IfMatch(7));
        assert_eq!(parse(" W/\"12\" ").unwrap(), IfMatch(12));
        assert_eq!(parse("*").unwrap(), IfMatch(0));
    }

    #[test]
    fn refuses_what_no_etag_looks_like() {
        for text in [
            "7",
            "\"\"",
            "\"x\"",
            "\"1\", \"2\"",
            "w/\"1\"",
            "\"-1\"",
            "",
        ] {
            assert_eq!(status(text), 400, "{text}");
        }
        let problem = parse("7").unwrap_err();
        assert!(problem.errors.unwrap().contains_key("If-Match"));
    }

    #[test]
    fn version_zero_never_matches() {
        assert_eq!(status("\"0\""), 412);
    }

    #[test]
    fn answers_carry_the_etag() {
        let response = Tagged::created(3, "/x/1".to_owned(), "body").into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::ETAG], "\"3\"");
        assert_eq!(response.headers()[header::LOCATION], "/x/1");
    }
}
