//! `/events/api/v1/subscriptions`: create, list, read and delete the caller's webhook
//! subscriptions, with Altinn's statuses (201 with `Location`, 200 on delete).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use broker_common::Problem;
use broker_proto::events as pb;
use http::{StatusCode, header};

use super::wire::{NewSubscription, SubscriptionList, SubscriptionView};
use super::{SUBSCRIBE, SubscriptionId};
use crate::auth::Authenticated;
use crate::binding::ApiJson;
use crate::clients::forward;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

/// Subscribes a webhook to a resource's events; it gets them once it has answered the
/// validation event.
#[utoipa::path(post, path = "/events/api/v1/subscriptions", tag = "events",
    security(("bearer" = ["altinn:events.subscribe"])),
    request_body = NewSubscription,
    responses(
        (status = 201, description = "The subscription (with `signingSecret` when deliveries \
            are signed)", body = SubscriptionView,
            headers(("Location" = String, description = "The subscription's address"))),
        (status = 400, description = "A field is missing or invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing, or the caller may not subscribe \
            to the resource for the subject", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
        (status = 415, description = "The body is not JSON", body = ProblemDetails),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<NewSubscription>,
) -> Result<impl IntoResponse, Problem> {
    caller.require_any_scope(&[SUBSCRIBE])?;
    let message = body.into_request()?;
    let mut client = state.clients.events();
    let created: SubscriptionView = forward(
        &caller,
        &[SUBSCRIBE],
        |principal| pb::CreateSubscriptionRequest {
            principal: Some(principal),
            ..message
        },
        |request| client.create_subscription(request),
    )
    .await?
    .into();
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, created.location())],
        Json(created),
    ))
}

/// The caller's subscriptions.
#[utoipa::path(get, path = "/events/api/v1/subscriptions", tag = "events",
    security(("bearer" = ["altinn:events.subscribe"])),
    responses(
        (status = 200, description = "The caller's subscriptions", body = SubscriptionList),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<SubscriptionList>, Problem> {
    let mut client = state.clients.events();
    let list = forward(
        &caller,
        &[SUBSCRIBE],
        |principal| pb::ListSubscriptionsRequest {
            principal: Some(principal),
        },
        |request| client.list_subscriptions(request),
    )
    .await?;
    Ok(Json(list.into()))
}

/// One of the caller's subscriptions.
#[utoipa::path(get, path = "/events/api/v1/subscriptions/{id}", tag = "events",
    security(("bearer" = ["altinn:events.subscribe"])),
    params(("id" = i64, Path, description = "The subscription's id (a positive integer)")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 400, description = "The id is not a positive integer", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 404, description = "No such subscription, or it is not the caller's",
            body = ProblemDetails),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Authenticated,
    id: SubscriptionId,
) -> Result<Json<SubscriptionView>, Problem> {
    let mut client = state.clients.events();
    let subscription = forward(&caller, &[SUBSCRIBE], id.message(), |request| {
        client.get_subscription(request)
    })
    .await?;
    Ok(Json(subscription.into()))
}

/// Deletes one of the caller's subscriptions.
#[utoipa::path(delete, path = "/events/api/v1/subscriptions/{id}", tag = "events",
    security(("bearer" = ["altinn:events.subscribe"])),
    params(("id" = i64, Path, description = "The subscription's id (a positive integer)")),
    responses(
        (status = 200, description = "Deleted (Altinn answers 200 with no body)"),
        (status = 400, description = "The id is not a positive integer", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 404, description = "No such subscription, or it is not the caller's",
            body = ProblemDetails),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Authenticated,
    id: SubscriptionId,
) -> Result<StatusCode, Problem> {
    let mut client = state.clients.events();
    forward(&caller, &[SUBSCRIBE], id.message(), |request| {
        client.delete_subscription(request)
    })
    .await?;
    Ok(StatusCode::OK)
}
