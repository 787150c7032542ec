//! The one error type of the command line, and how each error reads and exits.
//!
//! The broker answers errors as RFC 7807 problems (RFC 6749 errors on `POST /token`); both are
//! parsed here into variants so the user reads the server's words, not a status code and a JSON
//! blob. Exit codes let scripts tell "fix your setup" from "try again later".

use std::path::PathBuf;

use reqwest::StatusCode;
use serde::Deserialize;

/// Everything that can make a command fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration file, a profile or a flag is missing or wrong.
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Where a download would land is taken (an existing file, a directory, a link).
    #[error("{0}")]
    Target(String),
    /// The client's private key is unusable.
    #[error("key: {0}")]
    Key(String),
    /// The broker could not be reached or the connection broke.
    #[error("{0}")]
    Connection(String),
    /// The broker answered with a problem (RFC 7807); boxed to keep every `Result` small.
    #[error("{0}")]
    Problem(Box<Problem>),
    /// The token endpoint refused the grant (RFC 6749).
    #[error("{error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        /// The error code (`invalid_grant`, …).
        error: String,
        /// The server's explanation.
        description: Option<String>,
    },
    /// The broker refused the token (401) or its scopes (403) with no body, as Altinn's
    /// servers do; the bearer challenge says why, when it does.
    #[error("{}{}", status, reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Refused {
        /// 401 or 403.
        status: StatusCode,
        /// The challenge's `error_description`, or what the status means for this client.
        reason: Option<String>,
    },
    /// The broker refused a tus request; tus servers say why in plain text, not as a problem.
    #[error("{message} ({status})")]
    Tus {
        /// The HTTP status.
        status: StatusCode,
        /// The answer's text, or what the status means when it had none (HEAD).
        message: String,
    },
    /// A resumable upload stopped before its end; the broker keeps what arrived.
    #[error(
        "{cause}; the upload stopped at byte {offset} of {length}: resume it with \
         `broker send --resume {id} {}`", file.display()
    )]
    Interrupted {
        /// The transfer.
        id: String,
        /// The file being sent.
        file: PathBuf,
        /// The bytes the broker had when it stopped, as far as this client knows.
        offset: u64,
        /// The file's length.
        length: u64,
        /// Why it stopped.
        cause: Box<CliError>,
    },
    /// The broker answered something this client does not understand.
    #[error("unexpected answer from the broker ({status}): {body}")]
    Unexpected {
        /// The HTTP status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// What arrived is not what the broker said it would be (size or checksum).
    #[error("{0}")]
    Integrity(String),
    /// A transfer ended in a status that is not the one waited for.
    #[error("file transfer {id} is {status}")]
    TransferFailed {
        /// The transfer.
        id: String,
        /// Its final status.
        status: String,
    },
}

impl CliError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// The process exit code: 2 setup (config, key, local files), 3 the broker unreachable or
    /// failing (5xx; worth retrying), 4 refused by the broker (4xx, token errors), 5 a transfer
    /// that failed or arrived corrupt. Clap's own usage errors also exit with 2.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Io { .. } | Self::Key(_) | Self::Target(_) => 2,
            Self::Connection(_) => 3,
            Self::Problem(problem) if problem.status >= 500 => 3,
            Self::Unexpected { status, .. } | Self::Tus { status, .. }
                if status.is_server_error() =>
            {
                3
            }
            Self::Interrupted { cause, .. } => cause.exit_code(),
            Self::Problem(_)
            | Self::OAuth { .. }
            | Self::Refused { .. }
            | Self::Unexpected { .. }
            | Self::Tus { .. } => 4,
            Self::Integrity(_) | Self::TransferFailed { .. } => 5,
        }
    }

    /// The error as `--json` prints it on stderr.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::json!({
            "error": self.to_string(),
            "exitCode": self.exit_code(),
        });
        match self {
            Self::Problem(problem) => {
                value["status"] = problem.status.into();
                value["code"] = problem.code.clone().into();
                value["traceId"] = problem.trace_id.clone().into();
            }
            Self::Tus { status, .. } => value["status"] = status.as_u16().into(),
            Self::Interrupted {
                id, offset, length, ..
            } => {
                value["fileTransferId"] = id.as_str().into();
                value["offset"] = (*offset).into();
                value["length"] = (*length).into();
            }
            _ => {}
        }
        value
    }
}

impl From<reqwest::Error> for CliError {
    fn from(error: reqwest::Error) -> Self {
        Self::Connection(describe_transport(&error))
    }
}

/// A transport error in plain words: reqwest's own text is a chain of "error sending request
/// for url (…)" that hides the one cause a user can act on.
fn describe_transport(error: &reqwest::Error) -> String {
    let url = error
        .url()
        .map(|url| {
            let mut origin = url.clone();
            origin.set_path("");
            origin.set_query(None);
            origin.to_string()
        })
        .unwrap_or_else(|| "the broker".to_owned());
    if error.is_timeout() {
        return format!("{url} did not answer in time");
    }
    if error.is_connect() {
        let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
        let mut root = String::new();
        while let Some(inner) = cause {
            root = inner.to_string();
            cause = inner.source();
        }
        return if root.is_empty() {
            format!("cannot connect to {url}")
        } else {
            format!("cannot connect to {url}: {root}")
        };
    }
    if error.is_decode() {
        return format!("{url} sent an answer that is not what was expected: {error}");
    }
    format!("the connection to {url} failed: {error}")
}

/// An RFC 7807 problem as the broker writes it, with Altinn's `code` extension.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// The HTTP status.
    #[serde(default)]
    pub status: u16,
    /// A short summary of the kind of problem.
    #[serde(default)]
    pub title: Option<String>,
    /// This occurrence in words.
    #[serde(default)]
    pub detail: Option<String>,
    /// Altinn's error code, `BRO-000nn`.
    #[serde(default)]
    pub code: Option<String>,
    /// The request id the broker logged the problem under, for the operator.
    #[serde(default, rename = "traceId")]
    pub trace_id: Option<String>,
    /// Field errors of a validation problem: field name → messages.
    #[serde(default)]
    pub errors: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

impl std::fmt::Display for Problem {
    /// `<title>: <detail> (BRO-000nn)`, leaving out what the server left out, plus field errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fallback = StatusCode::from_u16(self.status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("error");
        let title = self.title.as_deref().unwrap_or(fallback);
        f.write_str(title)?;
        if let Some(detail) = self
            .detail
            .as_deref()
            .filter(|d| !d.is_empty() && *d != title)
        {
            write!(f, ": {detail}")?;
        }
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        for (field, messages) in self.errors.iter().flatten() {
            write!(f, "; {field}: {}", messages.join(", "))?;
        }
        Ok(())
    }
}

/// An RFC 6749 error answer from the token endpoint.
#[derive(Debug, Deserialize)]
pub struct OAuthError {
    /// The error code.
    pub error: String,
    /// The explanation.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// The error for an unsuccessful answer: a problem, an OAuth error, a refusal without a body
/// (its reason from `challenge`, the `WWW-Authenticate` header) or, failing all, the status and
/// the start of the body.
pub fn from_answer(status: StatusCode, challenge: Option<&str>, body: &[u8]) -> CliError {
    if body.is_empty() && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        let reason = challenge.and_then(error_description).or_else(|| {
            (status == StatusCode::FORBIDDEN)
                .then(|| "the token lacks the scope this call needs".to_owned())
        });
        return CliError::Refused { status, reason };
    }
    if let Ok(mut problem) = serde_json::from_slice::<Problem>(body)
        && (problem.title.is_some() || problem.detail.is_some())
    {
        if problem.status == 0 {
            problem.status = status.as_u16();
        }
        return CliError::Problem(Box::new(problem));
    }
    if let Ok(oauth) = serde_json::from_slice::<OAuthError>(body) {
        return CliError::OAuth {
            error: oauth.error,
            description: oauth.error_description,
        };
    }
    let text = String::from_utf8_lossy(body);
    CliError::Unexpected {
        status,
        body: text.chars().take(200).collect(),
    }
}

/// The error for an unsuccessful `response`, read to its end.
pub async fn from_response(response: reqwest::Response) -> CliError {
    let status = response.status();
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    match response.bytes().await {
        Ok(body) => from_answer(status, challenge.as_deref(), &body),
        Err(error) => error.into(),
    }
}

/// The `error_description` of a bearer challenge (RFC 6750 §3).
fn error_description(challenge: &str) -> Option<String> {
    let start = challenge.find("error_description=\"")? + "error_description=\"".len();
    let rest = &challenge[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_reads_title_detail_and_code() {
        let body = br#"{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.1","title":"Bad Request","status":400,"detail":"The checksum does not match","code":"BRO-00009","traceId":"x"}"#;
        let error = from_answer(StatusCode::BAD_REQUEST, None, body);
        assert_eq!(
            error.to_string(),
            "Bad Request: The checksum does not match (BRO-00009)"
        );
        assert_eq!(error.exit_code(), 4);
    }

    #[test]
    fn problem_without_detail_or_code_is_its_title() {
        let body = br#"{"title":"Not Found","status":404}"#;
        assert_eq!(
            from_answer(StatusCode::NOT_FOUND, None, body).to_string(),
            "Not Found"
        );
    }

    #[test]
    fn problem_lists_field_errors() {
        let body = br#"{"title":"One or more validation errors occurred.","status":400,"errors":{"fileName":["is required"]}}"#;
        assert_eq!(
            from_answer(StatusCode::BAD_REQUEST, None, body).to_string(),
            "One or more validation errors occurred.; fileName: is required"
        );
    }

    #[test]
    fn server_problems_exit_as_retryable() {
        let body = br#"{"title":"Service Unavailable","status":503,"detail":"storage is down"}"#;
        assert_eq!(
            from_answer(StatusCode::SERVICE_UNAVAILABLE, None, body).exit_code(),
            3
        );
    }

    #[test]
    fn oauth_error_reads_code_and_description() {
        let body = br#"{"error":"invalid_grant","error_description":"the jti was used before"}"#;
        assert_eq!(
            from_answer(StatusCode::BAD_REQUEST, None, body).to_string(),
            "invalid_grant: the jti was used before"
        );
    }

    #[test]
    fn anything_else_shows_status_and_body() {
        let error = from_answer(StatusCode::BAD_GATEWAY, None, b"<html>bad gateway</html>");
        assert_eq!(
            error.to_string(),
            "unexpected answer from the broker (502 Bad Gateway): <html>bad gateway</html>"
        );
        assert_eq!(error.exit_code(), 3);
    }

    #[test]
    fn an_interrupted_upload_says_how_to_resume() {
        let error = CliError::Interrupted {
            id: "a1".to_owned(),
            file: "big.bin".into(),
            offset: 10,
            length: 30,
            cause: Box::new(CliError::Tus {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "Service Unavailable".to_owned(),
            }),
        };
        assert_eq!(
            error.to_string(),
            "Service Unavailable (503 Service Unavailable); the upload stopped at byte 10 of 30: \
             resume it with `broker send --resume a1 big.bin`"
        );
        assert_eq!(error.exit_code(), 3, "the cause's exit code");
        let json = error.to_json();
        assert_eq!(json["fileTransferId"], "a1");
        assert_eq!(json["offset"], 10);
    }

    #[test]
    fn a_bare_refusal_reads_its_challenge() {
        let challenge =
            r#"Bearer error="invalid_token", error_description="the token has expired""#;
        let error = from_answer(StatusCode::UNAUTHORIZED, Some(challenge), b"");
        assert_eq!(error.to_string(), "401 Unauthorized: the token has expired");
        assert_eq!(error.exit_code(), 4);
        let error = from_answer(StatusCode::FORBIDDEN, None, b"");
        assert_eq!(
            error.to_string(),
            "403 Forbidden: the token lacks the scope this call needs"
        );
    }
}
