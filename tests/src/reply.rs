//! An HTTP answer, kept whole so a failing assertion can print what the broker said.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::checklist::Expected;

/// A response: status, headers and the body, as bytes and as (lossy) text.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `METHOD path`, for messages.
    pub request: String,
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text (invalid UTF-8 replaced), for JSON and messages.
    pub body: String,
    /// The body exactly as received, for downloads.
    pub bytes: Vec<u8>,
}

impl Reply {
    /// The `Content-Type`, or "".
    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or_default()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON; panics (showing the body) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| {
            panic!(
                "{}: body is not JSON ({error}): {} {}",
                self.request, self.status, self.body
            )
        })
    }

    /// Panics unless the status is `expected`; returns the reply for chaining.
    #[track_caller]
    pub fn expect_status(self, expected: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "{}: expected {expected}, got {} with body {}",
            self.request,
            self.status,
            self.body
        );
        self
    }

    /// Panics unless the reply is 200/201 JSON; returns the body.
    #[track_caller]
    pub fn ok_json(self) -> Value {
        assert!(
            self.status.is_success(),
            "{}: expected success, got {} with body {}",
            self.request,
            self.status,
            self.body
        );
        self.json()
    }

    /// Asserts an RFC 6749 §5.2 error: this status, JSON content, `error` = `error`, and a
    /// textual `error_description`. Returns the body.
    #[track_caller]
    pub fn assert_oauth_error(&self, status: u16, error: &str) -> Value {
        let shown = format!(
            "{}: {} {} {}",
            self.request,
            self.status,
            self.content_type(),
            self.body
        );
        assert_eq!(self.status.as_u16(), status, "status of {shown}");
        assert!(
            self.content_type().starts_with("application/json"),
            "content type of {shown}"
        );
        let body = self.json();
        assert_eq!(body["error"], error, "error of {shown}");
        assert!(
            body["error_description"].is_string(),
            "error_description of {shown}"
        );
        body
    }

    /// Whether the content type is one a problem is sent as: problem+json, or the type the
    /// action produces (`application/json`, Altinn Events' pull `application/cloudevents+json`),
    /// as ASP.NET's `[Produces]` sends Altinn's problems.
    pub fn has_problem_type(&self) -> bool {
        let content_type = self.content_type();
        content_type.starts_with("application/problem+json")
            || content_type == "application/json; charset=utf-8"
            || content_type == "application/cloudevents+json; charset=utf-8"
    }

    /// Asserts an RFC 7807 problem with this status: type, title and status, sent as
    /// problem+json, or as `application/json` where the action produces JSON (as ASP.NET's
    /// `[Produces]` sends Altinn's problems; `altinn_compat` checks which is which).
    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> Value {
        let shown = format!(
            "{}: {} {} {}",
            self.request,
            self.status,
            self.content_type(),
            self.body
        );
        assert_eq!(self.status.as_u16(), status, "status of {shown}");
        assert!(self.has_problem_type(), "content type of {shown}");
        let body = self.json();
        assert!(body["type"].is_string(), "type of {shown}");
        assert!(body["title"].is_string(), "title of {shown}");
        assert_eq!(body["status"], status, "status field of {shown}");
        body
    }

    /// Asserts an answer with this status and no body nor content type, as ASP.NET answers a
    /// failed authentication or authorization, an unsupported content type, or Altinn's
    /// `StatusCode(code, null)`.
    #[track_caller]
    pub fn assert_bare(&self, status: u16) {
        let shown = format!("{}: {} {}", self.request, self.status, self.body);
        assert_eq!(self.status.as_u16(), status, "status of {shown}");
        assert!(self.body.is_empty(), "body of {shown}");
        assert_eq!(self.content_type(), "", "content type of {shown}");
    }

    /// Asserts Altinn's `StatusCode(code, "text")` from an action producing JSON: this status,
    /// `application/json; charset=utf-8`, and the body exactly `"text"` (a JSON string).
    #[track_caller]
    pub fn assert_text(&self, status: u16, text: &str) {
        let shown = format!("{}: {} {}", self.request, self.status, self.body);
        assert_eq!(self.status.as_u16(), status, "status of {shown}");
        assert_eq!(
            self.content_type(),
            "application/json; charset=utf-8",
            "content type of {shown}"
        );
        assert_eq!(self.body, format!("\"{text}\""), "body of {shown}");
    }

    /// Asserts a 401 problem carrying a `WWW-Authenticate: Bearer …` challenge (RFC 6750).
    #[track_caller]
    pub fn assert_unauthorized(&self) -> Value {
        let body = self.assert_problem(401);
        let challenge = self.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "{}: WWW-Authenticate should start with Bearer, got {challenge:?}",
            self.request
        );
        body
    }

    /// Panics unless the reply meets `expected` (see [`Expected`]); returns the body as JSON.
    #[track_caller]
    pub fn assert_expected(&self, expected: Expected<'_>) -> Value {
        if let Some(why) = expected.mismatch(self) {
            panic!("{}: {why}", self.request);
        }
        self.json()
    }

    /// Asserts a problem with this status carrying the broker error `code` (`BRO-00009`).
    #[track_caller]
    pub fn assert_code(&self, status: u16, code: u16) -> Value {
        self.assert_expected(Expected::Code(status, code))
    }
}
