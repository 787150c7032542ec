//! `/events/api/v1/subscriptions`: create, list, read and delete the caller's webhook
//! subscriptions, answered as Altinn's `SubscriptionController` answers: 201 with `Location`,
//! 200 (with no body on delete), and the service's refusals as Altinn passes a `ServiceError`
//! on (`StatusCode(code, message)`): the message as a JSON string, or no body without one.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use broker_common::Problem;
use broker_proto::events as pb;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use super::wire::{NewSubscription, SubscriptionList, SubscriptionView};
use super::{AnyCaller, SubscriptionId};
use crate::auth::{Authorized, refused};
use crate::binding::ApiJson;
use crate::clients::forward;
use crate::problem::bare;
use crate::state::AppState;

/// The content type of Altinn's JSON answers.
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// `value` as Altinn's actions answer an object result: JSON, typed with its charset.
fn altinn_json(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "an answer could not be written as JSON");
            Problem::internal().into_response()
        }
    }
}

/// The service's refusal as Altinn's controller answers a `ServiceError`: a client error with
/// its message as a JSON string (`"Resource filter is required."`), or without a body when it
/// has none (404, someone else's subscription's 403, the missing scope's `Forbid()`). A 401 is
/// the authentication's answer; server errors stay problems, as Altinn's exception handler
/// answers them.
fn altinn_answer(problem: Problem) -> Response {
    match (problem.status_code(), problem.detail.as_deref()) {
        (StatusCode::UNAUTHORIZED, _) => refused(problem),
        (status, _) if !status.is_client_error() || problem.errors.is_some() => {
            problem.into_response()
        }
        (status, None) => bare(status),
        (status, Some(text)) => altinn_json(status, &text),
    }
}

/// Subscribes a webhook to a resource's events; it gets them once it has answered the
/// validation event. The same subscription again answers the one there is.
#[utoipa::path(post, path = "/events/api/v1/subscriptions", tag = "events",
    security(("bearer" = ["altinn:events.subscribe"])),
    request_body = NewSubscription,
    responses(
        (status = 201, description = "The subscription (with `signingSecret` when it was made \
            now with signed deliveries)", body = SubscriptionView,
            headers(("Location" = String, description = "`/events/api/v1/subscription/{id}`, \
                as Altinn writes it"))),
        (status = 400, description = "A rule is broken: Altinn's text as a JSON string, or a \
            body that does not bind (a validation problem)", body = serde_json::Value,
            content_type = "application/json"),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "No scope (no body), or the caller may not subscribe to \
            the resource for the subject (Altinn's text as a JSON string)", body = String),
        (status = 413, description = "The body exceeds 1 MiB"),
        (status = 415, description = "The body is not `application/json` (no body)"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Authorized<AnyCaller>,
    ApiJson(body): ApiJson<NewSubscription>,
) -> Result<Response, Response> {
    let message = body.into_request();
    let mut client = state.clients.events();
    let created: SubscriptionView = forward(
        &caller,
        &[],
        |principal| pb::CreateSubscriptionRequest {
            principal: Some(principal),
            ..message
        },
        |request| client.create_subscription(request),
    )
    .await
    .map_err(altinn_answer)?
    .into();
    let mut response = altinn_json(StatusCode::CREATED, &created);
    if let Ok(location) = HeaderValue::from_str(&created.location()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The caller's subscriptions, validated or not.
#[utoipa::path(get, path = "/events/api/v1/subscriptions", tag = "events",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's subscriptions", body = SubscriptionList),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authorized<AnyCaller>,
) -> Result<Response, Response> {
    let mut client = state.clients.events();
    let list = forward(
        &caller,
        &[],
        |principal| pb::ListSubscriptionsRequest {
            principal: Some(principal),
        },
        |request| client.list_subscriptions(request),
    )
    .await
    .map_err(altinn_answer)?;
    Ok(altinn_json(StatusCode::OK, &SubscriptionList::from(list)))
}

/// One of the caller's subscriptions.
#[utoipa::path(get, path = "/events/api/v1/subscriptions/{id}", tag = "events",
    security(("bearer" = [])),
    params(("id" = i32, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 400, description = "The id is not a 32-bit integer (a validation problem)"),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "Someone else created it (no body)"),
        (status = 404, description = "No such subscription (no body)"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Authorized<AnyCaller>,
    id: SubscriptionId,
) -> Result<Response, Response> {
    let mut client = state.clients.events();
    let subscription = forward(&caller, &[], id.message(), |request| {
        client.get_subscription(request)
    })
    .await
    .map_err(altinn_answer)?;
    Ok(altinn_json(
        StatusCode::OK,
        &SubscriptionView::from(subscription),
    ))
}

/// Deletes one of the caller's subscriptions.
#[utoipa::path(delete, path = "/events/api/v1/subscriptions/{id}", tag = "events",
    security(("bearer" = [])),
    params(("id" = i32, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Deleted (no body, as Altinn answers)"),
        (status = 400, description = "The id is not a 32-bit integer (a validation problem)"),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "Someone else created it (no body)"),
        (status = 404, description = "No such subscription (no body)"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Authorized<AnyCaller>,
    id: SubscriptionId,
) -> Result<StatusCode, Response> {
    let mut client = state.clients.events();
    forward(&caller, &[], id.message(), |request| {
        client.delete_subscription(request)
    })
    .await
    .map_err(altinn_answer)?;
    Ok(StatusCode::OK)
}
