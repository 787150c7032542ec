//! Request-body extractors whose rejections are problems, never axum's plain-text answers.
//!
//! [`ApiJson`] is the only way handlers read JSON: a wrong content type is a 415 problem, and a
//! body that does not fit the type is a 400 validation problem naming the failing field
//! (`jwks.keys[0]`, `orgNumber`), as ASP.NET's model binding does for Altinn's API.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use broker_common::Problem;
use http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// The field name ASP.NET uses for an error about the body as a whole.
const ROOT_FIELD: &str = "$";

/// A JSON request body deserialised into `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(request.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))?;
        parse_json(&body).map(Self)
    }
}

/// Reads `null` as the type's default, as ASP.NET binds a null string or object: for body fields
/// Altinn clients send either absent or `null` (`#[serde(default, deserialize_with = ...)]`).
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Whether the content type is `application/json` or an `application/*+json` type.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// Deserialises a whole JSON document, or names the field that failed (400).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        field_problem(&path, error.into_inner())
    })?;
    deserializer
        .end()
        .map_err(|error| field_problem(".", error))?;
    Ok(value)
}

fn field_problem(path: &str, error: serde_json::Error) -> Problem {
    let message = error.to_string();
    if !error.is_data() {
        return Problem::invalid_field(
            ROOT_FIELD,
            format!("the body is not valid JSON: {message}"),
        );
    }
    // serde reports a missing field at its parent's path, naming it only in the message.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let field = match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => ROOT_FIELD.to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (path, None) => path.to_owned(),
    };
    Problem::invalid_field(&field, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)] // Only deserialised, to exercise the error paths.
    struct Body {
        org_number: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // Only deserialised, to exercise the error paths.
    struct Inner {
        keys: Vec<String>,
    }

    fn failing_field(body: &str) -> String {
        let problem = parse_json::<Body>(body.as_bytes()).unwrap_err();
        assert_eq!(problem.status, 400);
        problem.errors.unwrap().keys().next().unwrap().clone()
    }

    #[test]
    fn names_the_failing_field() {
        assert_eq!(failing_field("{}"), "orgNumber");
        assert_eq!(failing_field(r#"{"orgNumber": 5}"#), "orgNumber");
        assert_eq!(
            failing_field(r#"{"orgNumber": "1", "inner": {"keys": [1]}}"#),
            "inner.keys[0]"
        );
        assert_eq!(
            failing_field(r#"{"orgNumber": "1", "inner": {}}"#),
            "inner.keys"
        );
        assert_eq!(failing_field("[]"), "$");
        assert_eq!(failing_field("{"), "$");
        assert_eq!(failing_field(r#"{"orgNumber": "1"} x"#), "$");
    }

    #[test]
    fn accepts_json_and_structured_json_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }
}
