//! Errors of the event service, each mapped once to the problem the client sees.

use std::collections::BTreeMap;

use broker_common::Problem;

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
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EventsError> for Problem {
    fn from(error: EventsError) -> Self {
        match error {
            EventsError::Invalid(errors) => Problem::validation(errors),
            not_found @ EventsError::SubscriptionNotFound => {
                Problem::not_found(not_found.to_string())
            }
            EventsError::Store(error) => {
                tracing::error!(%error, "event store failed");
                Problem::unavailable("the event service's database is unavailable")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_problems() {
        let mut errors = FieldErrors::new();
        errors.insert("endPoint".into(), vec!["must be http(s)".into()]);
        let problem = Problem::from(EventsError::Invalid(errors));
        assert_eq!(problem.status, 400);
        assert!(problem.errors.unwrap().contains_key("endPoint"));
        assert_eq!(Problem::from(EventsError::SubscriptionNotFound).status, 404);
        let store = EventsError::Store(StoreError::Corrupt("x".into()));
        assert_eq!(Problem::from(store).status, 503);
    }
}
