//! Conditional requests as Altinn's Resource Registry takes them (`RequestConditionCollection`,
//! RFC 9110 §13.1), and versioned answers as it writes them (`ConditionalResult`).
//!
//! Entity tags are weak and opaque: `W/"<base64url of {"version":"<n>"}>"`, sent with
//! `Last-Modified` on every versioned answer. The request's `If-Match`, `If-None-Match` (lists
//! of such tags, or `*`), `If-Modified-Since` and `If-Unmodified-Since` are read here into the
//! registry's [`pb::Conditions`]; whether they hold is the registry's decision (412, or 304 for
//! a read). A strong or undecodable tag is refused as Altinn's binder refuses it: a 400
//! validation problem under the action's parameter name; a date that does not parse, or is
//! sent twice, is ignored (RFC 9110 §13.1.3).

use std::marker::PhantomData;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use broker_common::Problem;
use broker_proto::access as pb;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde::{Deserialize, Serialize};

/// The action parameter Altinn binds conditions to, which names its validation errors.
pub trait Parameter {
    /// The parameter's name (`conditions`).
    const NAME: &'static str;
}

/// Most actions' `RequestConditionCollection conditions`.
pub struct Named;
impl Parameter for Named {
    const NAME: &'static str = "conditions";
}

/// The paged reads' `RequestConditionCollection requestConditions`.
pub struct PageParameter;
impl Parameter for PageParameter {
    const NAME: &'static str = "requestConditions";
}

/// A request's conditions, bound as Altinn binds them to the parameter `P`.
pub struct Conditions<P = Named>(pub pb::Conditions, PhantomData<P>);

impl<P> Conditions<P> {
    /// The conditions for the registry.
    pub fn into_inner(self) -> Option<pb::Conditions> {
        Some(self.0)
    }
}

impl<S: Send + Sync, P: Parameter> FromRequestParts<S> for Conditions<P> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let read = parts.method == Method::GET || parts.method == Method::HEAD;
        read_conditions(&parts.headers, read)
            .map(|conditions| Self(conditions, PhantomData))
            .map_err(|errors| Problem::validation([(P::NAME.to_owned(), errors)].into()))
    }
}

/// The conditions of a request's headers, or ASP.NET's messages for the tags that do not bind.
fn read_conditions(headers: &HeaderMap, read: bool) -> Result<pb::Conditions, Vec<String>> {
    let mut errors = Vec::new();
    let mut conditions = pb::Conditions {
        read,
        ..pb::Conditions::default()
    };
    match tags(headers, &header::IF_MATCH, "If-Match", &mut errors) {
        Some(Tags::Any) => conditions.if_match_any = true,
        Some(Tags::Versions(versions)) => conditions.if_match = versions,
        // `If-Unmodified-Since` counts only without `If-Match`.
        None => conditions.if_unmodified_since = date(headers, &header::IF_UNMODIFIED_SINCE),
    }
    match tags(
        headers,
        &header::IF_NONE_MATCH,
        "If-None-Match",
        &mut errors,
    ) {
        Some(Tags::Any) => conditions.if_none_match_any = true,
        Some(Tags::Versions(versions)) => conditions.if_none_match = versions,
        None => conditions.if_modified_since = date(headers, &header::IF_MODIFIED_SINCE),
    }
    if errors.is_empty() {
        Ok(conditions)
    } else {
        Err(errors)
    }
}

/// What a tag header names.
enum Tags {
    Any,
    Versions(Vec<u64>),
}

/// The versions one tag header names, `None` when it is absent or does not bind (the failure
/// recorded in `errors` with Altinn's words).
fn tags(
    headers: &HeaderMap,
    name: &HeaderName,
    label: &str,
    errors: &mut Vec<String>,
) -> Option<Tags> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap_or("\u{0}"))
        .collect();
    if values.is_empty() {
        return None;
    }
    let Some(items) = entity_tags(&values) else {
        errors.push(format!("Invalid {label} header."));
        return None;
    };
    match items.as_slice() {
        [] => return None,
        [EntityTag { weak: false, tag }] if *tag == "*" => return Some(Tags::Any),
        _ => {}
    }
    let mut versions = Vec::with_capacity(items.len());
    let mut failed = false;
    for item in items {
        if !item.weak {
            errors.push(format!(
                "Invalid {label} header. Only weak etags are supported."
            ));
            failed = true;
            continue;
        }
        match version_of(item.tag) {
            Some(version) => versions.push(version),
            None => {
                errors.push(format!("Invalid {label} header. Invalid etag."));
                failed = true;
            }
        }
    }
    (!failed).then_some(Tags::Versions(versions))
}

/// One entity tag of a header: its opaque text (`*` unquoted) and whether it is weak.
struct EntityTag<'a> {
    weak: bool,
    tag: &'a str,
}

/// The tags of a comma-separated list (`EntityTagHeaderValue.TryParseList`): each `*`,
/// `"<opaque>"` or `W/"<opaque>"`; empty items are skipped; `None` when one is malformed.
fn entity_tags<'a>(values: &[&'a str]) -> Option<Vec<EntityTag<'a>>> {
    let mut tags = Vec::new();
    for value in values {
        let mut rest = value.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix(',') {
                rest = after.trim_start();
                continue;
            }
            let (weak, quoted) = match rest.strip_prefix("W/") {
                Some(quoted) => (true, quoted),
                None => (false, rest),
            };
            let (tag, after) = if let Some(after) = quoted.strip_prefix('*').filter(|_| !weak) {
                ("*", after)
            } else {
                let inner = quoted.strip_prefix('"')?;
                let end = inner.find('"')?;
                (&inner[..end], &inner[end + 1..])
            };
            tags.push(EntityTag { weak, tag });
            rest = after.trim_start();
            if !rest.is_empty() && !rest.starts_with(',') {
                return None;
            }
        }
    }
    Some(tags)
}

/// Altinn's `AggregateVersion`, the JSON inside a tag; the version is written as a string and
/// read as a string or a number.
#[derive(Serialize, Deserialize)]
struct AggregateVersion {
    #[serde(with = "version_text")]
    version: u64,
}

mod version_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(version: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(version)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Number(u64),
            String(String),
        }
        match Text::deserialize(deserializer)? {
            Text::Number(version) => Ok(version),
            Text::String(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The version a tag's opaque text names.
fn version_of(opaque: &str) -> Option<u64> {
    let json = URL_SAFE_NO_PAD.decode(opaque.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<AggregateVersion>(&json)
        .ok()
        .map(|tag| tag.version)
}

/// An HTTP date header as Unix seconds; absent, repeated or unparsable counts as absent.
fn date(headers: &HeaderMap, name: &HeaderName) -> Option<i64> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    chrono::DateTime::parse_from_rfc2822(value.to_str().ok()?.trim())
        .ok()
        .map(|date| date.timestamp())
}

/// The entity tag of `version`, as Altinn writes it.
pub fn etag(version: u64) -> String {
    // Serialising a number into JSON cannot fail.
    let json = serde_json::to_vec(&AggregateVersion { version }).unwrap_or_default();
    format!("W/\"{}\"", URL_SAFE_NO_PAD.encode(json))
}

/// `Last-Modified` of a change at `unix` seconds (an IMF-fixdate).
pub fn http_date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// An answer carrying a versioned entity: its status, `ETag`, `Last-Modified`, optional
/// `Location`, and JSON body (or none).
#[derive(Debug)]
pub struct Tagged<T> {
    status: StatusCode,
    version: u64,
    updated_at: i64,
    location: Option<String>,
    body: Option<T>,
}

impl<T> Tagged<T> {
    /// 200 with `body` at `version`, last changed at `updated_at`.
    pub fn ok(version: u64, updated_at: i64, body: T) -> Self {
        Self {
            status: StatusCode::OK,
            version,
            updated_at,
            location: None,
            body: Some(body),
        }
    }

    /// `status` without a body (Altinn's `Ok()` and `Created(uri, null)`), at `version`.
    pub fn empty(status: StatusCode, version: u64, updated_at: i64) -> Self {
        Self {
            status,
            version,
            updated_at,
            location: None,
            body: None,
        }
    }

    /// The same answer, at `location`.
    pub fn at(self, location: String) -> Self {
        Self {
            location: Some(location),
            ..self
        }
    }
}

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (self.status, Json(body)).into_response(),
            None => self.status.into_response(),
        };
        let headers = response.headers_mut();
        set_version(headers, self.version, self.updated_at);
        if let Some(location) = self
            .location
            .and_then(|location| HeaderValue::try_from(location).ok())
        {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

/// 304: the client's copy is current; its `ETag` and `Last-Modified`, no body.
pub fn not_modified(version: u64, updated_at: i64) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    set_version(response.headers_mut(), version, updated_at);
    response
}

fn set_version(headers: &mut HeaderMap, version: u64, updated_at: i64) {
    if let Ok(etag) = HeaderValue::try_from(etag(version)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(date) = HeaderValue::try_from(http_date(updated_at)) {
        headers.insert(header::LAST_MODIFIED, date);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, value.parse().unwrap());
        }
        headers
    }

    /// Mirrors `RequestCondition.SerializeETag`: version 5 is `W/"eyJ2ZXJzaW9uIjoiNSJ9"`.
    #[test]
    fn tags_are_altinns_weak_opaque_versions() {
        assert_eq!(etag(5), "W/\"eyJ2ZXJzaW9uIjoiNSJ9\"");
        assert_eq!(version_of("eyJ2ZXJzaW9uIjoiNSJ9"), Some(5));
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    /// Mirrors `RequestConditionCollectionModelBinderTests`.
    #[test]
    fn reads_tag_lists_wildcards_and_dates() {
        let conditions = read_conditions(
            &headers(&[
                (header::IF_MATCH, &format!("{}, {}", etag(3), etag(4))),
                (header::IF_NONE_MATCH, "*"),
                (header::IF_UNMODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:10 GMT"),
                (header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:10 GMT"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(conditions.if_match, [3, 4]);
        assert!(conditions.if_none_match_any);
        assert_eq!(
            (conditions.if_unmodified_since, conditions.if_modified_since),
            (None, None),
            "dates count only without tags"
        );
        let dates = read_conditions(
            &headers(&[(header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:10 GMT")]),
            true,
        )
        .unwrap();
        assert_eq!(dates.if_modified_since, Some(10));
        assert!(dates.read);
        let ignored = read_conditions(
            &headers(&[
                (header::IF_UNMODIFIED_SINCE, "yesterday"),
                (header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:10 GMT"),
                (header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:11 GMT"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(
            ignored,
            pb::Conditions {
                read: true,
                ..pb::Conditions::default()
            }
        );
    }

    #[test]
    fn refuses_strong_and_foreign_tags_in_altinns_words() {
        for (value, message) in [
            (
                "\"3\"",
                "Invalid If-Match header. Only weak etags are supported.",
            ),
            ("W/\"3\"", "Invalid If-Match header. Invalid etag."),
            ("3", "Invalid If-Match header."),
            ("W/\"unterminated", "Invalid If-Match header."),
        ] {
            let errors =
                read_conditions(&headers(&[(header::IF_MATCH, value)]), false).unwrap_err();
            assert_eq!(errors, [message], "{value}");
        }
    }

    #[test]
    fn versioned_answers_carry_tag_date_and_location() {
        let response = Tagged::<()>::empty(StatusCode::CREATED, 3, 0)
            .at("/x/1".to_owned())
            .into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::ETAG], etag(3));
        assert_eq!(
            response.headers()[header::LAST_MODIFIED],
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(response.headers()[header::LOCATION], "/x/1");
        assert_eq!(not_modified(3, 0).status(), StatusCode::NOT_MODIFIED);
    }
}
