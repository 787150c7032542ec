//! Errors of the event service, each mapped once to the problem the client sees.
//!
//! A subscriber asking for a filter it may not use gets 403, not Altinn's 401: 401 means "who
//! are you?" to every HTTP client (and carries a Bearer challenge here), while the caller is
//! known and only the right is missing.

use std::collections::BTreeMap;

use broker_common::Problem;
use reqwest::StatusCode;

use crate::store::StoreError;

/// Field path → messages, as a validation problem lists them.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// An error of any event-service operation, rendered as problem+json.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// One or more request fields are invalid.
    #[error("invalid request: {0:?}")]
    Invalid(FieldErrors),
    /// No such subscription (or not the caller's).
    #[error("the subscription was not found")]
    SubscriptionNotFound,
    /// The token lacks the scope the operation needs.
    #[error("the token lacks the scope {0}")]
    MissingScope(&'static str),
    /// The caller may not use this filter or read these events.
    #[error("{0}")]
    Forbidden(String),
    /// The operation needs the admin credential.
    #[error("the admin credential is missing or wrong")]
    NotAdmin,
    /// The resource is not in the resource registry.
    #[error("the resource {resource} does not exist")]
    UnknownResource {
        /// The request field that named it.
        field: &'static str,
        /// The resource as named.
        resource: String,
    },
    /// Something the service needs is missing (e.g. randomness); nothing the client did.
    #[error("the event service cannot serve the request now")]
    Unavailable,
    /// The access registry failed; its problem is passed on.
    #[error("the access registry failed: {0:?}")]
    Upstream(Problem),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EventsError {
    /// 400 with one failing field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_owned(), vec![message.into()]);
        Self::Invalid(errors)
    }
}

impl From<EventsError> for Problem {
    fn from(error: EventsError) -> Self {
        match error {
            EventsError::Invalid(errors) => Problem::validation(errors),
            not_found @ EventsError::SubscriptionNotFound => {
                Problem::not_found(not_found.to_string())
            }
            EventsError::MissingScope(scope) => Problem::insufficient_scope(scope),
            forbidden @ EventsError::Forbidden(_) => {
                Problem::new(StatusCode::FORBIDDEN, forbidden.to_string())
            }
            not_admin @ EventsError::NotAdmin => Problem::unauthorized(not_admin.to_string()),
            unknown @ EventsError::UnknownResource { field, .. } => {
                Problem::invalid_field(field, unknown.to_string())
            }
            unavailable @ EventsError::Unavailable => Problem::unavailable(unavailable.to_string()),
            EventsError::Upstream(problem) => problem,
            EventsError::Store(error) => {
                tracing::error!(%error, "event store failed");
                Problem::unavailable("the event service's database is unavailable")
            }
        }
    }
}

impl From<EventsError> for tonic::Status {
    fn from(error: EventsError) -> Self {
        Problem::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_problems() {
        let problem = Problem::from(EventsError::invalid("endPoint", "must be http(s)"));
        assert_eq!(problem.status, 400);
        assert!(problem.errors.unwrap().contains_key("endPoint"));
        assert_eq!(Problem::from(EventsError::SubscriptionNotFound).status, 404);
        let store = EventsError::Store(StoreError::Corrupt("x".into()));
        let problem = Problem::from(store);
        assert_eq!(problem.status, 503);
        assert!(!problem.detail.unwrap().contains('x'));
        assert_eq!(
            Problem::from(EventsError::Forbidden("no".into())).status,
            403
        );
        let scope = Problem::from(EventsError::MissingScope("altinn:events.subscribe"));
        assert_eq!(scope.status, 403);
        assert_eq!(Problem::from(EventsError::NotAdmin).status, 401);
        assert_eq!(
            Problem::from(EventsError::UnknownResource {
                field: "resource",
                resource: "r".into()
            })
            .status,
            400
        );
    }
}
