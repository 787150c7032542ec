//! The Altinn Events API: `/events/api/v1/subscriptions…` and the pull `/events/api/v1/events`,
//! and the operator's dead letters under `/admin/v1/events/…` (admin credential), forwarded to
//! the event service.
//!
//! As Altinn's `SubscriptionController` and `EventsController`: the gateway authorizes as their
//! policies do (any token for subscriptions, where the service asks the scope itself; the scope
//! `altinn:events.subscribe` for the pull), binds the input as ASP.NET does, and writes the
//! answers as Altinn's actions write them; the service verifies the forwarded token again and
//! decides everything else (Altinn's rules, who may see what). The wire format lives in `wire`.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path};
use axum::middleware::from_fn;
use axum::routing::{get, post};
use broker_common::Problem;
use broker_proto::common::Principal;
use broker_proto::events as pb;
use http::request::Parts;
use serde::Deserialize;

use crate::auth::Policy;
use crate::binding::{QueryBinding, QueryModel, parse_query};
use crate::negotiation;
use crate::state::AppState;

pub mod dead_letters;
pub mod pull;
pub mod subscriptions;
pub mod wire;

/// Scope of creating subscriptions and of the pull.
const SUBSCRIBE: &str = "altinn:events.subscribe";

/// Where subscriptions live.
const SUBSCRIPTIONS: &str = "/events/api/v1/subscriptions";

/// Where events are pulled from.
const EVENTS: &str = "/events/api/v1/events";

/// Bodies here are small JSON documents; a larger one is refused (413) before it is buffered.
const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Altinn Events' bare `[Authorize]`: any authenticated caller (the subscription actions).
pub struct AnyCaller;
impl Policy for AnyCaller {
    const SCOPES: &'static [&'static str] = &[];
}

/// Altinn Events' `ScopeEventsSubscribe` policy (the pull).
pub struct Subscriber;
impl Policy for Subscriber {
    const SCOPES: &'static [&'static str] = &[SUBSCRIBE];
}

/// The subscription, pull and dead-letter routes.
pub fn routes() -> Router<AppState> {
    let consumes_json = || from_fn(negotiation::consumes_json);
    let produces_json = || from_fn(negotiation::problems_as_json);
    Router::new()
        .route(
            SUBSCRIPTIONS,
            post(subscriptions::create)
                .route_layer(consumes_json())
                .get(subscriptions::list)
                .route_layer(produces_json()),
        )
        .route(
            &format!("{SUBSCRIPTIONS}/{{id}}"),
            get(subscriptions::get)
                .delete(subscriptions::delete)
                .route_layer(produces_json()),
        )
        .route(
            EVENTS,
            get(pull::pull)
                .route_layer(consumes_json())
                .route_layer(from_fn(negotiation::problems_as_cloudevents)),
        )
        .route("/admin/v1/events/dead-letters", get(dead_letters::list))
        .route(
            "/admin/v1/events/dead-letters/redrive",
            post(dead_letters::redrive),
        )
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
}

/// A subscription id from the path, bound as ASP.NET binds Altinn's `int id`: a 32-bit integer
/// in any form .NET's converter reads (0 and negatives included; they name no subscription),
/// else 400 naming `id`.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionId(i32);

/// The route value as the one parameter of Altinn's action (a value type, so not required).
#[derive(Deserialize)]
struct RouteId {
    #[serde(default)]
    id: i32,
}

impl QueryModel for RouteId {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}

impl SubscriptionId {
    /// The contract's message addressing this subscription for `principal`.
    fn message(self) -> impl FnOnce(Principal) -> pb::GetSubscriptionRequest {
        move |principal| pb::GetSubscriptionRequest {
            principal: Some(principal),
            id: i64::from(self.0),
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
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id", &id)
            .finish();
        parse_query::<RouteId>(&query).map(|route| Self(route.id))
    }
}
