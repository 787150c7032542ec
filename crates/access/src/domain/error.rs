//! Errors of the access registry, each mapped once to what the client sees. A decision's deny is
//! not an error: it is an answer ([`Decision`](super::decision::Decision)).

use std::collections::BTreeMap;

use broker_common::Problem;
use http::StatusCode;

use crate::store::StoreError;

/// An error of any access-registry operation, rendered as problem+json.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// One or more request fields are invalid (field path → messages).
    #[error("invalid request: {0:?}")]
    Invalid(BTreeMap<String, Vec<String>>),
    /// No such service owner, resource, policy, list or connection.
    #[error("{0}")]
    NotFound(String),
    /// The entity exists already, or is still in use.
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` names a version other than the current one.
    #[error("the entity is not at the version given in If-Match")]
    Stale,
    /// The admin credential is missing or wrong.
    #[error("the admin credential is missing or wrong")]
    NotAdmin,
    /// The forwarded token is missing or does not verify.
    #[error("{0}")]
    Unauthenticated(Problem),
    /// The token lacks a scope the operation needs.
    #[error("the token lacks the scope {0}")]
    InsufficientScope(&'static str),
    /// The caller may not do this (not the owner, not a service owner).
    #[error("{0}")]
    Forbidden(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccessError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl ToString) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        Self::Invalid(errors.0)
    }
}

impl From<AccessError> for Problem {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Invalid(errors) => Problem::validation(errors),
            AccessError::NotFound(detail) => Problem::not_found(detail),
            AccessError::Conflict(detail) => Problem::new(StatusCode::CONFLICT, detail),
            stale @ AccessError::Stale => {
                Problem::new(StatusCode::PRECONDITION_FAILED, stale.to_string())
            }
            AccessError::NotAdmin => {
                Problem::unauthorized("the admin credential is missing or wrong")
            }
            AccessError::Unauthenticated(problem) => problem,
            AccessError::InsufficientScope(scope) => Problem::insufficient_scope(scope),
            AccessError::Forbidden(detail) => Problem::new(StatusCode::FORBIDDEN, detail),
            AccessError::Store(error) => {
                tracing::error!(%error, "access store failed");
                Problem::unavailable("the access registry's database is unavailable")
            }
        }
    }
}

impl From<AccessError> for tonic::Status {
    fn from(error: AccessError) -> Self {
        Problem::from(error).into()
    }
}

/// Collects every failing field of a request, so one answer lists them all as ASP.NET does.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// Records a failure of `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl ToString) {
        self.0
            .entry(field.into())
            .or_default()
            .push(message.to_string());
    }

    /// The value, or `None` after recording why `field` failed.
    pub fn check<T, E: ToString>(
        &mut self,
        field: impl Into<String>,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|error| self.add(field, error)).ok()
    }

    /// `value` when no field failed, else every failure.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, AccessError> {
        if !self.0.is_empty() {
            return Err(AccessError::Invalid(self.0));
        }
        // Every `None` from `check` recorded a failure, so this only guards against a caller
        // that forgot to: a generic validation error rather than a panic.
        value().ok_or_else(|| AccessError::invalid("request", "invalid"))
    }
}

/// Checks a text field's length in characters; `max` is inclusive.
pub fn check_len(
    errors: &mut FieldErrors,
    field: impl Into<String>,
    text: &str,
    max: usize,
) -> bool {
    let fits = text.chars().count() <= max;
    if !fits {
        errors.add(field, format!("at most {max} characters"));
    }
    fits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let status = |error: AccessError| Problem::from(error).status;
        assert_eq!(status(AccessError::invalid("a", "b")), 400);
        assert_eq!(status(AccessError::NotAdmin), 401);
        assert_eq!(status(AccessError::InsufficientScope("s")), 403);
        assert_eq!(status(AccessError::Forbidden("no".into())), 403);
        assert_eq!(status(AccessError::NotFound("x".into())), 404);
        assert_eq!(status(AccessError::Conflict("x".into())), 409);
        assert_eq!(status(AccessError::Stale), 412);
    }

    #[test]
    fn collects_every_failing_field() {
        let mut errors = FieldErrors::default();
        assert_eq!(errors.check("a", Ok::<_, String>(1)), Some(1));
        assert_eq!(errors.check("b", Err::<u8, _>("bad")), None);
        errors.add("c", "worse");
        let Err(AccessError::Invalid(map)) = errors.finish(|| Some(())) else {
            panic!("expected a validation error");
        };
        assert_eq!(map.keys().collect::<Vec<_>>(), ["b", "c"]);
    }
}
