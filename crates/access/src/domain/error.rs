//! Errors of the access registry, each mapped once to what the client sees. A decision's deny is
//! not an error: it is an answer ([`Decision`](super::decision::Decision)).
//!
//! The Resource Registry answers its errors in three shapes (ASP.NET's problem documents,
//! Altinn Authorization's `RR-` problems, and ASP.NET's bare results); each variant says which,
//! so the gateway passes the answer through as it is.

use std::collections::BTreeMap;

use broker_common::{Plain, Problem, ValidationError};
use http::StatusCode;

use crate::store::StoreError;

/// A problem of Altinn's Resource Registry (`Problems.cs`): its code, status and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryProblem {
    /// `RR-00000`, 501: `include=members` on a listing.
    IncludeMembersNotImplemented,
    /// `RR-00001`, 400: a party the registry cannot resolve.
    PartyNotFound,
    /// `RR-00002`, 400: a resource that does not exist.
    ResourceNotFound,
    /// `RR-00004`, 403: a connection to another owner's resource.
    OtherOwnersResource,
}

impl RegistryProblem {
    fn problem(self) -> Problem {
        let (status, code, title) = match self {
            Self::IncludeMembersNotImplemented => (
                StatusCode::NOT_IMPLEMENTED,
                "RR-00000",
                "Members are not supported yet as an include option for this endpoint.",
            ),
            Self::PartyNotFound => (
                StatusCode::BAD_REQUEST,
                "RR-00001",
                "One or more party references not found.",
            ),
            Self::ResourceNotFound => (
                StatusCode::BAD_REQUEST,
                "RR-00002",
                "One or more resource references not found.",
            ),
            Self::OtherOwnersResource => (
                StatusCode::FORBIDDEN,
                "RR-00004",
                "Cannot create a access-list connection to a resource not owned by the same \
                 service-owner as the access-list.",
            ),
        };
        Problem::descriptor(status, code, title)
    }
}

/// A validation error of Altinn's Resource Registry (`ValidationErrors.cs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryValidation {
    /// `RR-00000`: a member replacement of more than 100 parties.
    ReplaceTooMany,
    /// `RR-00001`: a member addition or removal of more than 100 parties.
    AddRemoveTooMany,
    /// `RR-00002`: connections included without naming the resource.
    ConnectionsNeedResource,
    /// `RR-00003`: memberships asked for without a party.
    RequiresParty,
    /// `RR-00004`: a `party` that is no party URN.
    InvalidPartyUrn,
    /// `RR-00005`: a `resource` that is no resource URN.
    InvalidResourceUrn,
    /// `RR-00006`: memberships of more than one party.
    TooManyParties,
    /// `RR-00007`: memberships for more than one resource.
    TooManyResources,
    /// `RR-00010`: an owner that is no registered org code.
    OwnerMustBeOrgCode,
}

impl RegistryValidation {
    fn error(self) -> ValidationError {
        let (code, title, paths): (_, _, &[&str]) = match self {
            Self::ReplaceTooMany => (
                "RR-00000",
                "Cannot replace more than 100 members at a time. Use POST and DELETE methods \
                 instead.",
                &["/data"],
            ),
            Self::AddRemoveTooMany => (
                "RR-00001",
                "Cannot add or remove more than 100 members at a time.",
                &["/data"],
            ),
            Self::ConnectionsNeedResource => (
                "RR-00002",
                "Resource identifier is required when including resource connections.",
                &["/$QUERY/include", "/$QUERY/resource"],
            ),
            Self::RequiresParty => (
                "RR-00003",
                "At least 1 party must be specified.",
                &["/$QUERY/party"],
            ),
            Self::InvalidPartyUrn => ("RR-00004", "Invalid party URN.", &["/$QUERY/party"]),
            Self::InvalidResourceUrn => {
                ("RR-00005", "Invalid resource URN.", &["/$QUERY/resource"])
            }
            Self::TooManyParties => (
                "RR-00006",
                "Multiple parties currently not supported.",
                &["/$QUERY/party"],
            ),
            Self::TooManyResources => (
                "RR-00007",
                "Multiple resources currently not supported.",
                &["/$QUERY/resource"],
            ),
            Self::OwnerMustBeOrgCode => (
                "RR-00010",
                "Access list owner must be a valid and registered org-code.",
                &["/$PATH/owner"],
            ),
        };
        ValidationError::new(code, title, paths)
    }
}

/// An error of any access-registry operation.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Fields fail ASP.NET's model validation (C# property name or path → messages): its
    /// validation problem.
    #[error("invalid request: {0:?}")]
    Invalid(BTreeMap<String, Vec<String>>),
    /// An Altinn Resource Registry problem.
    #[error("{0:?}")]
    Registry(RegistryProblem),
    /// Altinn Resource Registry validation errors.
    #[error("{0:?}")]
    RegistryInvalid(Vec<RegistryValidation>),
    /// The entity does not exist: ASP.NET's `NotFound()`, a problem saying no more.
    #[error("not found")]
    Absent,
    /// No such service owner (the operator's API, which says which).
    #[error("{0}")]
    NotFound(String),
    /// ASP.NET's answer of a bare text (`BadRequest("…")`, `Conflict("…")`,
    /// `NotFound("…")`), written as `Plain` says.
    #[error("{2}")]
    Text(StatusCode, Plain, String),
    /// The entity exists already, is still in use, or changed meanwhile.
    #[error("{0}")]
    Conflict(String),
    /// A condition of the request (`If-Match`, `If-None-Match`, …) does not hold.
    #[error("a condition of the request does not hold")]
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
    /// The caller may not do this (not the owner, not a service owner): ASP.NET's `Forbid()`,
    /// no body; the reason is only logged.
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

    /// ASP.NET's message for a required value that is absent, under `field`.
    pub fn required(field: &str) -> Self {
        Self::invalid(field, required(field))
    }

    /// A bare text answer written as a JSON string (the action has `[Produces]`).
    pub fn json_text(status: StatusCode, text: impl Into<String>) -> Self {
        Self::Text(status, Plain::JsonString, text.into())
    }
}

/// ASP.NET's message for a required value that is absent.
pub fn required(field: &str) -> String {
    format!("The {field} field is required.")
}

impl From<AccessError> for Problem {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Invalid(errors) => Problem::validation(errors),
            AccessError::Registry(problem) => problem.problem(),
            AccessError::RegistryInvalid(errors) => Problem::validation_errors(
                errors.into_iter().map(RegistryValidation::error).collect(),
            ),
            AccessError::Absent => Problem::bare(StatusCode::NOT_FOUND),
            AccessError::NotFound(detail) => Problem::not_found(detail),
            AccessError::Text(status, shape, text) => Problem {
                detail: Some(text),
                ..Problem::plain(status, shape)
            },
            AccessError::Conflict(detail) => Problem::new(StatusCode::CONFLICT, detail),
            AccessError::Stale => Problem::bare(StatusCode::PRECONDITION_FAILED),
            AccessError::NotAdmin => {
                Problem::unauthorized("the admin credential is missing or wrong")
            }
            AccessError::Unauthenticated(problem) => problem,
            AccessError::InsufficientScope(scope) => {
                tracing::debug!(scope, "refused: the token lacks the scope");
                Problem::plain(StatusCode::FORBIDDEN, Plain::Empty)
            }
            AccessError::Forbidden(reason) => {
                tracing::debug!(%reason, "refused");
                Problem::plain(StatusCode::FORBIDDEN, Plain::Empty)
            }
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

    /// Whether no field failed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
        assert_eq!(status(AccessError::Absent), 404);
        assert_eq!(status(AccessError::Conflict("x".into())), 409);
        assert_eq!(status(AccessError::Stale), 412);
        assert_eq!(
            status(AccessError::Registry(
                RegistryProblem::IncludeMembersNotImplemented
            )),
            501
        );
    }

    /// Mirrors Altinn's `Forbid()` and `NotFound()`: a refusal has no body, a 404 no detail.
    #[test]
    fn refusals_and_absences_say_no_more_than_their_status() {
        let forbidden = Problem::from(AccessError::Forbidden("not the owner".into()));
        assert_eq!(forbidden.plain, Some(Plain::Empty));
        let absent = Problem::from(AccessError::Absent);
        assert_eq!((absent.detail, absent.plain), (None, None));
    }

    /// Mirrors `ValidationErrors.AccessList_Owner_MustBe_OrgCode` and `Problems.cs`.
    #[test]
    fn registry_errors_carry_altinns_codes() {
        let body = Problem::from(AccessError::RegistryInvalid(vec![
            RegistryValidation::OwnerMustBeOrgCode,
        ]))
        .body();
        assert_eq!(body["validationErrors"][0]["code"], "RR-00010");
        assert_eq!(body["validationErrors"][0]["paths"][0], "/$PATH/owner");
        let body =
            Problem::from(AccessError::Registry(RegistryProblem::OtherOwnersResource)).body();
        assert_eq!(body["code"], "RR-00004");
        assert_eq!(body["status"], 403);
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
