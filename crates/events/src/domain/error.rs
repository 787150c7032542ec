//! Errors of the event service, each mapped once to the problem the client sees.
//!
//! Altinn Events answers its subscribers' mistakes with a text and a status
//! ([`EventsError::BadRequest`], [`EventsError::NotAuthorized`]) or with a bare status
//! ([`EventsError::SubscriptionNotFound`], [`EventsError::NotCreator`],
//! [`EventsError::MissingScope`]); the problems carry exactly that (a detail, or none), and the
//! gateway writes them as Altinn does on each route.

use std::collections::BTreeMap;

use broker_common::Problem;
use reqwest::StatusCode;

use crate::store::StoreError;

/// Field path → messages, as a validation problem lists them.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// An error of any event-service operation, rendered as problem+json.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// One or more request fields are invalid (the operator's calls).
    #[error("invalid request: {0:?}")]
    Invalid(FieldErrors),
    /// Altinn's 400 with its text.
    #[error("{0}")]
    BadRequest(String),
    /// No such subscription: Altinn's 404 without a body.
    #[error("the subscription was not found")]
    SubscriptionNotFound,
    /// The subscription was created by someone else: Altinn's 403 without a body.
    #[error("the subscription was created by someone else")]
    NotCreator,
    /// The token lacks the scope the operation needs: Altinn's `Forbid()`, without a body.
    #[error("the token lacks the scope {0}")]
    MissingScope(&'static str),
    /// The access decision refused a subscription to this resource (named as sent).
    #[error("Not authorized to create a subscription for resource {0}.")]
    NotAuthorized(String),
    /// The operation needs the admin credential.
    #[error("the admin credential is missing or wrong")]
    NotAdmin,
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

    /// Altinn's 400 with `text`.
    pub fn bad_request(text: &str) -> Self {
        Self::BadRequest(text.to_owned())
    }
}

impl From<EventsError> for Problem {
    fn from(error: EventsError) -> Self {
        match error {
            EventsError::Invalid(errors) => Problem::validation(errors),
            bad @ EventsError::BadRequest(_) => {
                Problem::new(StatusCode::BAD_REQUEST, bad.to_string())
            }
            EventsError::SubscriptionNotFound => Problem::bare(StatusCode::NOT_FOUND),
            EventsError::NotCreator => Problem::bare(StatusCode::FORBIDDEN),
            EventsError::MissingScope(scope) => Problem {
                detail: None,
                ..Problem::insufficient_scope(scope)
            },
            refused @ EventsError::NotAuthorized(_) => {
                Problem::new(StatusCode::FORBIDDEN, refused.to_string())
            }
            not_admin @ EventsError::NotAdmin => Problem::unauthorized(not_admin.to_string()),
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
        let problem = Problem::from(EventsError::invalid("ids", "must be dead-letter ids"));
        assert_eq!(problem.status, 400);
        assert!(problem.errors.unwrap().contains_key("ids"));
        let problem = Problem::from(EventsError::bad_request("Resource filter is required."));
        assert_eq!(
            (problem.status, problem.detail.as_deref()),
            (400, Some("Resource filter is required."))
        );
        for (error, status) in [
            (EventsError::SubscriptionNotFound, 404),
            (EventsError::NotCreator, 403),
            (EventsError::MissingScope("altinn:events.subscribe"), 403),
        ] {
            let problem = Problem::from(error);
            assert_eq!((problem.status, problem.detail), (status, None));
        }
        let refused = Problem::from(EventsError::NotAuthorized(
            "urn:altinn:resource:some-service".into(),
        ));
        assert_eq!(refused.status, 403);
        assert_eq!(
            refused.detail.as_deref(),
            Some(
                "Not authorized to create a subscription for resource urn:altinn:resource:some-service."
            )
        );
        let store = EventsError::Store(StoreError::Corrupt("x".into()));
        let problem = Problem::from(store);
        assert_eq!(problem.status, 503);
        assert!(!problem.detail.unwrap().contains('x'));
        assert_eq!(Problem::from(EventsError::NotAdmin).status, 401);
    }
}
