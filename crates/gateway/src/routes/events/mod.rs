//! The Altinn Events API: `/events/api/v1/subscriptions…` and the pull `/events/api/v1/events`
//! (scope `altinn:events.subscribe`), and the operator's dead letters under
//! `/admin/v1/events/…` (admin credential), forwarded to the event service.
//!
//! The gateway checks the credential, the scope and the request's shape (ids, query, the
//! alternative-subject conversion); the service verifies the forwarded token again and decides
//! everything else (endpoint and filter rules, ownership: another consumer's subscription is a
//! 404). The wire format lives in `wire`.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path};
use axum::routing::{get, post};
use broker_common::Problem;
use broker_proto::common::Principal;
use broker_proto::events as pb;
use http::request::Parts;

use crate::state::AppState;

pub mod dead_letters;
pub mod pull;
pub mod subscriptions;
pub mod wire;

/// Scope of every subscriber route.
const SUBSCRIBE: &str = "altinn:events.subscribe";

/// Where subscriptions live.
const SUBSCRIPTIONS: &str = "/events/api/v1/subscriptions";

/// Where events are pulled from.
const EVENTS: &str = "/events/api/v1/events";

/// Bodies here are small JSON documents; a larger one is refused (413) before it is buffered.
const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// The subscription, pull and dead-letter routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            SUBSCRIPTIONS,
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            &format!("{SUBSCRIPTIONS}/{{id}}"),
            get(subscriptions::get).delete(subscriptions::delete),
        )
        .route(EVENTS, get(pull::pull))
        .route("/admin/v1/events/dead-letters", get(dead_letters::list))
        .route(
            "/admin/v1/events/dead-letters/redrive",
            post(dead_letters::redrive),
        )
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
}

/// A subscription id from the path: a positive integer, else 400 naming `id`.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionId(i64);

impl SubscriptionId {
    /// The contract's message addressing this subscription for `principal`.
    fn message(self) -> impl FnOnce(Principal) -> pb::GetSubscriptionRequest {
        move |principal| pb::GetSubscriptionRequest {
            principal: Some(principal),
            id: self.0,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SubscriptionId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection: PathRejection| {
                Problem::new(rejection.status(), rejection.body_text())
            })?;
        id.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Self)
            .ok_or_else(|| {
                Problem::invalid_field("id", format!("{id:?} is not a positive integer"))
            })
    }
}
