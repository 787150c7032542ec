//! The one error shape of Broker: an RFC 7807 problem, optionally carrying an RFC 6749 OAuth2
//! error for the token endpoint.
//!
//! Services return it inside a gRPC status (JSON in the status details, the HTTP status mapped to
//! the nearest gRPC code); the gateway turns it back into the HTTP answer. So a rule decided deep
//! in a service reaches the client with its status, code and field errors intact.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

/// The title of ASP.NET's validation problem.
const VALIDATION_TITLE: &str = "One or more validation errors occurred.";

/// The Altinn Authorization part of a problem: its descriptor and validation errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AltinnError {
    /// The error code, such as `RR-00001`.
    pub code: String,
    /// The descriptor's text, the problem's `title`.
    pub title: String,
    /// The validation errors of a validation problem (`STD-00000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_errors: Option<Vec<ValidationError>>,
}

/// One entry of `validationErrors`, as `AltinnValidationError` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// The error code, such as `RR-00010`.
    pub code: String,
    /// The descriptor's text.
    pub title: String,
    /// JSON pointers to what failed (`/data`, `/$QUERY/include`, `/$PATH/owner`).
    pub paths: Vec<String>,
    /// More about this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ValidationError {
    /// The error `code` with its `title`, at `paths`.
    pub fn new(code: &str, title: &str, paths: &[&str]) -> Self {
        Self {
            code: code.to_owned(),
            title: title.to_owned(),
            paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            detail: None,
        }
    }
}

/// How ASP.NET writes an error it answers without a problem document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Plain {
    /// The status alone, no body (`Forbid()`, `Unauthorized()`).
    Empty,
    /// The detail as `text/plain` (`NotFound("…")` on an action without `[Produces]`).
    Text,
    /// The detail as a JSON string (`Conflict("…")` on an action with
    /// `[Produces("application/json")]`).
    JsonString,
}

/// An RFC 7807 problem, with Altinn's `code` and field `errors` extensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// When set, an Altinn Authorization problem (`urn:altinn:error:RR-00001`) rather than an
    /// ASP.NET one: its code, title and validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altinn: Option<Box<AltinnError>>,
    /// When set, ASP.NET answers without a problem document (see [`Plain`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<Plain>,
    /// The HTTP status.
    pub status: u16,
    /// Human-readable explanation of this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Altinn's numeric error code, rendered `BRO-00009`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Field name → messages, for request validation failures (boxed: errors stay small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Box<BTreeMap<String, Vec<String>>>>,
    /// The request or trace id, filled in by the gateway.
    #[serde(default, rename = "traceId", skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// When set, the answer is rendered as RFC 6749 `{error, error_description}` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_error: Option<String>,
    /// A `WWW-Authenticate` challenge to send with a 401.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub www_authenticate: Option<String>,
}

impl Problem {
    /// A problem with the given status and detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            altinn: None,
            plain: None,
            status: status.as_u16(),
            detail: Some(detail.into()),
            code: None,
            errors: None,
            trace_id: None,
            oauth_error: None,
            www_authenticate: None,
        }
    }

    /// A problem that says no more than its status (ASP.NET's bare 415, for one).
    pub fn bare(status: StatusCode) -> Self {
        Self {
            detail: None,
            ..Self::new(status, "")
        }
    }

    /// A problem of Altinn Authorization's `ProblemDescriptor` (package
    /// `Altinn.Authorization.ProblemDetails`): `type` `urn:altinn:error:<code>`, the descriptor's
    /// text as `title`, its `code`, and no detail.
    pub fn descriptor(status: StatusCode, code: &str, title: &str) -> Self {
        Self {
            altinn: Some(Box::new(AltinnError {
                code: code.to_owned(),
                title: title.to_owned(),
                validation_errors: None,
            })),
            ..Self::bare(status)
        }
    }

    /// Altinn Authorization's validation problem (`STD-00000`), listing `errors`.
    pub fn validation_errors(errors: Vec<ValidationError>) -> Self {
        Self {
            altinn: Some(Box::new(AltinnError {
                code: "STD-00000".to_owned(),
                title: VALIDATION_TITLE.to_owned(),
                validation_errors: Some(errors),
            })),
            ..Self::bare(StatusCode::BAD_REQUEST)
        }
    }

    /// ASP.NET's answer without a document: `status` alone (`Forbid()`), or `text` as the whole
    /// body (`BadRequest("…")`), written as `shape` says.
    pub fn plain(status: StatusCode, shape: Plain) -> Self {
        Self {
            plain: Some(shape),
            ..Self::bare(status)
        }
    }

    /// 400 with one failing field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = BTreeMap::new();
        errors.insert(field.to_owned(), vec![message.into()]);
        Self::validation(errors)
    }

    /// 400 listing every failing field, as ASP.NET's validation problem does: its title says
    /// so, and it has no detail.
    pub fn validation(errors: BTreeMap<String, Vec<String>>) -> Self {
        Self {
            errors: Some(Box::new(errors)),
            ..Self::bare(StatusCode::BAD_REQUEST)
        }
    }

    /// 401 with a Bearer challenge (RFC 6750 §3).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let challenge = format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            detail.replace(['"', '\\'], "'")
        );
        Self {
            www_authenticate: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// 403 for a token without the scope a route needs (RFC 6750 `insufficient_scope`).
    pub fn insufficient_scope(required: &str) -> Self {
        Self {
            www_authenticate: Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{required}\""
            )),
            ..Self::new(
                StatusCode::FORBIDDEN,
                format!("the token lacks the scope {required}"),
            )
        }
    }

    /// 404 for a missing entity.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 500 that tells the client nothing about internals; log the cause before calling this.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error occurred; it has been logged.",
        )
    }

    /// 503 when a dependency cannot be reached.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// An RFC 6749 §5.2 error such as `invalid_grant`.
    pub fn oauth(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        Self {
            oauth_error: Some(error.to_owned()),
            ..Self::new(status, description)
        }
    }

    /// Attaches Altinn's numeric error code.
    pub fn with_code(mut self, code: u16) -> Self {
        self.code = Some(code);
        self
    }

    /// The code as Altinn writes it: `BRO-<5 digits>`.
    pub fn code_text(&self) -> Option<String> {
        self.code.map(|code| format!("BRO-{code:05}"))
    }

    /// The HTTP status, falling back to 500 for a value outside the valid range.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The problem `type`: the RFC 9110 section of the status, as ASP.NET writes it.
    pub fn type_uri(&self) -> &'static str {
        match self.status {
            400 => "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            401 => "https://tools.ietf.org/html/rfc9110#section-15.5.2",
            403 => "https://tools.ietf.org/html/rfc9110#section-15.5.4",
            404 => "https://tools.ietf.org/html/rfc9110#section-15.5.5",
            405 => "https://tools.ietf.org/html/rfc9110#section-15.5.6",
            409 => "https://tools.ietf.org/html/rfc9110#section-15.5.10",
            410 => "https://tools.ietf.org/html/rfc9110#section-15.5.11",
            411 => "https://tools.ietf.org/html/rfc9110#section-15.5.12",
            412 => "https://tools.ietf.org/html/rfc9110#section-15.5.13",
            413 => "https://tools.ietf.org/html/rfc9110#section-15.5.14",
            415 => "https://tools.ietf.org/html/rfc9110#section-15.5.16",
            416 => "https://tools.ietf.org/html/rfc9110#section-15.5.17",
            422 => "https://tools.ietf.org/html/rfc9110#section-15.5.21",
            429 => "https://tools.ietf.org/html/rfc6585#section-4",
            501 => "https://tools.ietf.org/html/rfc9110#section-15.6.2",
            502 => "https://tools.ietf.org/html/rfc9110#section-15.6.3",
            503 => "https://tools.ietf.org/html/rfc9110#section-15.6.4",
            504 => "https://tools.ietf.org/html/rfc9110#section-15.6.5",
            _ if self.status >= 500 => "https://tools.ietf.org/html/rfc9110#section-15.6.1",
            _ => "about:blank",
        }
    }

    /// Altinn's `statusDescription` of a coded problem: the reason phrase, except for 500.
    fn status_description(&self) -> &'static str {
        match self.status {
            500 => "An error occurred while processing your request.",
            _ => self.status_code().canonical_reason().unwrap_or("Error"),
        }
    }

    /// The body as RFC 7807 JSON (or RFC 6749 JSON for an OAuth2 error).
    pub fn body(&self) -> serde_json::Value {
        if let Some(error) = &self.oauth_error {
            return serde_json::json!({
                "error": error,
                "error_description": self.detail.clone().unwrap_or_default(),
            });
        }
        if let Some(altinn) = &self.altinn {
            return self.altinn_body(altinn);
        }
        let title = if self.errors.is_some() {
            VALIDATION_TITLE
        } else {
            self.status_code().canonical_reason().unwrap_or("Error")
        };
        let mut body = serde_json::json!({
            "type": self.type_uri(),
            "title": title,
            "status": self.status,
        });
        // Altinn's own problems (those with a code) describe their status once more.
        let status_description = self.code.map(|_| self.status_description());
        let fields = [
            ("detail", self.detail.clone().map(serde_json::Value::from)),
            ("code", self.code_text().map(serde_json::Value::from)),
            (
                "traceId",
                self.trace_id.clone().map(serde_json::Value::from),
            ),
            (
                "statusDescription",
                status_description.map(serde_json::Value::from),
            ),
            (
                "errors",
                self.errors.as_ref().map(|errors| serde_json::json!(errors)),
            ),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                body[name] = value;
            }
        }
        body
    }
}

impl Problem {
    /// The body of an Altinn Authorization problem, as `AltinnProblemDetails` writes it.
    fn altinn_body(&self, altinn: &AltinnError) -> serde_json::Value {
        let mut body = serde_json::json!({
            "type": format!("urn:altinn:error:{}", altinn.code),
            "title": altinn.title,
            "status": self.status,
        });
        if let Some(detail) = &self.detail {
            body["detail"] = detail.clone().into();
        }
        body["code"] = altinn.code.clone().into();
        if let Some(trace_id) = &self.trace_id {
            body["traceId"] = trace_id.clone().into();
        }
        body["statusDescription"] = self.status_description().into();
        if let Some(errors) = &altinn.validation_errors {
            body["validationErrors"] = serde_json::json!(errors);
        }
        body
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = self.code_text() {
            write!(f, " {code}")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        if let Some(shape) = self.plain {
            return plain_response(self.status_code(), shape, self.detail.unwrap_or_default());
        }
        let content_type = if self.oauth_error.is_some() {
            "application/json"
        } else {
            "application/problem+json"
        };
        let mut response = (self.status_code(), axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if self.oauth_error.is_some() {
            // RFC 6749 §5.1: token responses must not be cached; errors follow suit.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if let Some(challenge) = self
            .www_authenticate
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// ASP.NET's answer without a problem document; the response carries `shape` as an extension,
/// so the gateway's finishing layer knows to leave it as it is.
fn plain_response(status: StatusCode, shape: Plain, text: String) -> Response {
    let mut response = match shape {
        Plain::Empty => status.into_response(),
        Plain::Text => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response(),
        Plain::JsonString => (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            serde_json::Value::String(text).to_string(),
        )
            .into_response(),
    };
    response.extensions_mut().insert(shape);
    response
}

impl From<Problem> for tonic::Status {
    fn from(problem: Problem) -> Self {
        let code = match problem.status {
            400 | 411 | 413 | 415 | 422 => tonic::Code::InvalidArgument,
            401 => tonic::Code::Unauthenticated,
            403 => tonic::Code::PermissionDenied,
            404 | 410 => tonic::Code::NotFound,
            409 => tonic::Code::AlreadyExists,
            412 => tonic::Code::FailedPrecondition,
            416 => tonic::Code::OutOfRange,
            429 => tonic::Code::ResourceExhausted,
            503 => tonic::Code::Unavailable,
            504 => tonic::Code::DeadlineExceeded,
            _ => tonic::Code::Internal,
        };
        let message = problem.detail.clone().unwrap_or_default();
        let details = serde_json::to_vec(&problem).unwrap_or_default();
        tonic::Status::with_details(code, message, details.into())
    }
}

impl From<tonic::Status> for Problem {
    /// A problem carried in the status details comes back as it was sent; a status without
    /// one (a transport failure, a peer that is not ours) maps from its gRPC code.
    fn from(status: tonic::Status) -> Self {
        if let Ok(problem) = serde_json::from_slice::<Problem>(status.details()) {
            return problem;
        }
        let http = match status.code() {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => StatusCode::BAD_REQUEST,
            tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::AlreadyExists | tonic::Code::Aborted => StatusCode::CONFLICT,
            tonic::Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        };
        tracing::warn!(code = ?status.code(), message = status.message(), "service call failed");
        let detail = match http {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
                "A service Broker depends on did not answer; try again shortly.".to_owned()
            }
            StatusCode::BAD_GATEWAY => "A service Broker depends on failed.".to_owned(),
            _ => status.message().to_owned(),
        };
        Problem::new(http, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_grpc_round_trip() {
        let problem = Problem::invalid_field("fileName", "required").with_code(9);
        let status = tonic::Status::from(problem.clone());
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(Problem::from(status), problem);
    }

    #[test]
    fn renders_altinn_shape() {
        let body = Problem::new(StatusCode::NOT_FOUND, "no such transfer")
            .with_code(1)
            .body();
        assert_eq!(
            body["type"],
            "https://tools.ietf.org/html/rfc9110#section-15.5.5"
        );
        assert_eq!(body["title"], "Not Found");
        assert_eq!(body["status"], 404);
        assert_eq!(body["code"], "BRO-00001");
        assert_eq!(body["statusDescription"], "Not Found");
        let body = Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "failed")
            .with_code(8)
            .body();
        assert_eq!(
            body["statusDescription"],
            "An error occurred while processing your request."
        );
    }

    #[test]
    fn renders_asp_net_validation_problems() {
        let body = Problem::invalid_field("FileName", "The FileName field is required.").body();
        assert_eq!(body["title"], "One or more validation errors occurred.");
        assert_eq!(body["status"], 400);
        assert!(body.get("detail").is_none(), "{body}");
        assert!(body.get("statusDescription").is_none(), "{body}");
        assert_eq!(
            body["errors"]["FileName"][0],
            "The FileName field is required."
        );
    }

    #[test]
    fn renders_altinn_authorization_problems() {
        let body = Problem::descriptor(
            StatusCode::BAD_REQUEST,
            "RR-00001",
            "One or more party references not found.",
        )
        .body();
        assert_eq!(body["type"], "urn:altinn:error:RR-00001");
        assert_eq!(body["title"], "One or more party references not found.");
        assert_eq!(body["code"], "RR-00001");
        assert_eq!(body["statusDescription"], "Bad Request");
        let errors = vec![ValidationError::new("RR-00010", "owner", &["/$PATH/owner"])];
        let problem = Problem::validation_errors(errors);
        let status = tonic::Status::from(problem.clone());
        assert_eq!(Problem::from(status), problem, "survives gRPC");
        let body = problem.body();
        assert_eq!(body["type"], "urn:altinn:error:STD-00000");
        assert_eq!(body["validationErrors"][0]["paths"][0], "/$PATH/owner");
        assert!(body.get("errors").is_none(), "{body}");
    }

    #[test]
    fn plain_answers_have_no_problem_document() {
        let response = Problem::plain(StatusCode::FORBIDDEN, Plain::Empty).into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
        assert_eq!(response.extensions().get::<Plain>(), Some(&Plain::Empty));
        let response = Problem {
            detail: Some("The Resource already exist: x".into()),
            ..Problem::plain(StatusCode::CONFLICT, Plain::JsonString)
        }
        .into_response();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }

    #[test]
    fn renders_oauth_errors_per_rfc_6749() {
        let body = Problem::oauth(StatusCode::BAD_REQUEST, "invalid_grant", "expired").body();
        assert_eq!(
            body,
            serde_json::json!({"error": "invalid_grant", "error_description": "expired"})
        );
    }

    #[test]
    fn unknown_transport_failures_do_not_leak_internals() {
        let problem = Problem::from(tonic::Status::unavailable("tcp connect error 10.0.0.1"));
        assert_eq!(problem.status, 503);
        assert!(!problem.detail.unwrap().contains("10.0.0.1"));
    }
}
