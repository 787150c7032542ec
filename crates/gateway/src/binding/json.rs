//! [`ApiJson`], the only way handlers read a JSON body: the content type checked (415), the body
//! parsed and bound the ASP.NET way ([`super::lenient`]), and every failure a 400 validation
//! problem worded as ASP.NET words it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use broker_common::Problem;
use http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{json_errors, required};
use super::lenient::{Lenient, Source};

/// A JSON request body type, with the names ASP.NET's messages use for it.
pub trait JsonBody: DeserializeOwned {
    /// The action parameter the body binds to (`initializeExt`), which ASP.NET reports as
    /// required when the body cannot be read.
    const PARAMETER: &'static str;
    /// The .NET type, named when a required member is missing.
    const TYPE: &'static str;
}

/// A JSON request body bound into `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: JsonBody,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(request.headers()) {
            return Err(Problem::bare(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))?;
        parse_json(&body).map(Self)
    }
}

/// Whether the content type is one System.Text.Json's input formatter reads: `application/json`,
/// `text/json` or an `application/*+json` type.
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
        || essence == "text/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// Binds a whole JSON document into `T`, or the 400 validation problem ASP.NET would answer.
pub fn parse_json<T: JsonBody>(body: &[u8]) -> Result<T, Problem> {
    let value: Value = serde_json::from_slice(body).map_err(|error| syntax_problem::<T>(&error))?;
    bind_json(value)
}

/// Binds a parsed JSON document into `T`, as [`parse_json`] does.
pub fn bind_json<T: JsonBody>(value: Value) -> Result<T, Problem> {
    if value.is_null() {
        return Err(empty_body::<T>());
    }
    serde_path_to_error::deserialize(Lenient::new(value, Source::Json)).map_err(|error| {
        let path = error.path().to_string();
        Problem::validation(json_errors(&path, error.inner(), T::PARAMETER, T::TYPE))
    })
}

/// An empty body (or `null`): ASP.NET's "non-empty request body" error.
fn empty_body<T: JsonBody>() -> Problem {
    Problem::validation(
        [
            (
                String::new(),
                vec!["A non-empty request body is required.".to_owned()],
            ),
            (T::PARAMETER.to_owned(), vec![required(T::PARAMETER)]),
        ]
        .into(),
    )
}

/// A body that is not JSON: the reader's complaint at its position, 0-based as System.Text.Json
/// counts lines and bytes.
fn syntax_problem<T: JsonBody>(error: &serde_json::Error) -> Problem {
    if error.is_eof() && error.line() == 1 && error.column() == 0 {
        return empty_body::<T>();
    }
    let text = error.to_string();
    let reason = text
        .rfind(" at line ")
        .map_or(text.as_str(), |at| &text[..at]);
    let message = format!(
        "{reason}. Path: $ | LineNumber: {} | BytePositionInLine: {}.",
        error.line().saturating_sub(1),
        error.column().saturating_sub(1)
    );
    Problem::validation(
        [
            ("$".to_owned(), vec![message]),
            (T::PARAMETER.to_owned(), vec![required(T::PARAMETER)]),
        ]
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)] // Only deserialised, to exercise the error paths.
    struct Body {
        org_number: String,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // Only deserialised, to exercise the error paths.
    struct Inner {
        keys: Vec<String>,
    }

    impl JsonBody for Body {
        const PARAMETER: &'static str = "body";
        const TYPE: &'static str = "Body";
    }

    fn errors(body: &str) -> BTreeMap<String, Vec<String>> {
        let problem = parse_json::<Body>(body.as_bytes()).unwrap_err();
        assert_eq!(problem.status, 400);
        let errors = *problem.errors.unwrap();
        assert_eq!(
            errors["body"],
            ["The body field is required."],
            "{errors:?}"
        );
        errors
    }

    #[test]
    fn names_the_failing_member_by_its_json_path() {
        assert!(errors("{}")["$"][0].contains("'orgNumber'"));
        assert!(errors(r#"{"orgNumber": 5}"#).contains_key("$.orgNumber"));
        assert!(
            errors(r#"{"orgNumber": "1", "inner": {"keys": [1]}}"#).contains_key("$.inner.keys[0]")
        );
        assert!(errors("[]").contains_key("$"));
        assert!(errors("")[""][0].contains("non-empty request body"));
        assert!(errors("null").contains_key(""));
        let not_json = errors("{x");
        assert!(
            not_json["$"][0].ends_with("Path: $ | LineNumber: 0 | BytePositionInLine: 1."),
            "{not_json:?}"
        );
        assert!(errors(r#"{"orgNumber": "1"} x"#).contains_key("$"));
        assert_eq!(
            parse_json::<Body>(br#"{"OrgNumber": "1"}"#)
                .unwrap()
                .org_number,
            "1"
        );
    }

    #[test]
    fn accepts_the_json_types_system_text_json_reads() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("text/json", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }
}
