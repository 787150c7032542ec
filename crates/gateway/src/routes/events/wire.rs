//! The Altinn Events wire format and its one mapping to and from the event contract: camelCase
//! JSON as Altinn's models, filters Altinn leaves out when null left out, CloudEvents as the JSON
//! objects the service stored.

use broker_common::Problem;
use broker_proto::events as pb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::binding::{JsonBody, QueryBinding, QueryModel, null_as_default};

/// `SubscriptionRequestModel`: what a subscriber asks for. Every member may be left out or
/// `null` (Altinn's rules then answer); Altinn's `Uri` members bind any JSON string.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    /// The webhook events are POSTed to: an absolute https URL.
    #[schema(
        example = "https://example.com/broker-events",
        required = true,
        pattern = "^https://[a-z0-9.-]+(/[A-Za-z0-9._~/-]*)?$"
    )]
    #[serde(default)]
    pub end_point: Option<String>,
    /// A prefix of the events' `source`; Altinn takes it only for app resources, so Broker
    /// refuses it.
    #[serde(default)]
    pub source_filter: Option<String>,
    /// The subject, exact; only the resource's service owner may omit it.
    #[schema(example = "urn:altinn:organization:identifier-no:991825827")]
    #[serde(default)]
    pub subject_filter: Option<String>,
    /// The resource, a URN in lower case.
    #[schema(example = "urn:altinn:resource:broker-demo")]
    #[serde(default)]
    pub resource_filter: Option<String>,
    /// Altinn takes it only for app resources, so Broker refuses it.
    #[serde(default)]
    pub alternative_subject_filter: Option<String>,
    /// One event type, exact.
    #[schema(example = "no.altinn.broker.published")]
    #[serde(default)]
    pub type_filter: Option<String>,
    /// Whether a main unit's subscription also gets its sub-units' events (needs a subject).
    #[serde(default)]
    pub include_subunits: bool,
    /// Broker's extension: sign each delivery; the answer then carries `signingSecret` once.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sign_deliveries: bool,
}

impl NewSubscription {
    /// The contract's message (without principal).
    pub fn into_request(self) -> pb::CreateSubscriptionRequest {
        pb::CreateSubscriptionRequest {
            principal: None,
            end_point: self.end_point,
            source_filter: self.source_filter,
            resource_filter: self.resource_filter,
            subject_filter: self.subject_filter,
            type_filter: self.type_filter,
            include_subunits: self.include_subunits,
            sign_deliveries: self.sign_deliveries,
            alternative_subject_filter: self.alternative_subject_filter,
        }
    }
}

/// `Subscription`: a stored subscription, members in Altinn's order, null filters left out as
/// Altinn's serializer leaves them out.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    /// The subscription's id.
    #[schema(example = 42)]
    id: i64,
    /// The webhook, normalised.
    end_point: String,
    /// A prefix of the events' `source`; left out when not filtered.
    #[serde(skip_serializing_if = "Option::is_none")]
    source_filter: Option<String>,
    /// The resource.
    resource_filter: String,
    /// The subject; left out when not filtered.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_filter: Option<String>,
    /// The event type; left out when not filtered.
    #[serde(skip_serializing_if = "Option::is_none")]
    type_filter: Option<String>,
    /// Who receives the events: `/org/<code>`, `/systemuser/<uuid>` or `/organisation/<orgnr>`.
    #[schema(example = "/organisation/991825827")]
    consumer: String,
    /// Who created it, in the same form.
    created_by: String,
    /// When it was created (UTC, ISO 8601).
    created: String,
    /// Whether the endpoint answered the validation handshake; only then it gets events.
    validated: bool,
    /// Whether a main unit's subscription also gets its sub-units' events.
    include_subunits: bool,
    /// Broker's extension: the HMAC key deliveries are signed with; only in the answer that
    /// created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
}

impl SubscriptionView {
    /// Where Altinn says the subscription lives (`Created("/events/api/v1/subscription/" + id)`:
    /// singular, relative).
    pub fn location(&self) -> String {
        format!("/events/api/v1/subscription/{}", self.id)
    }
}

/// `Some(text)`, or `None` for the contract's empty string.
fn non_empty(text: String) -> Option<String> {
    Some(text).filter(|text| !text.is_empty())
}

impl From<pb::Subscription> for SubscriptionView {
    fn from(subscription: pb::Subscription) -> Self {
        Self {
            id: subscription.id,
            end_point: subscription.end_point,
            source_filter: subscription.source_filter,
            resource_filter: subscription.resource_filter,
            subject_filter: subscription.subject_filter,
            type_filter: subscription.type_filter,
            consumer: subscription.consumer,
            created_by: subscription.created_by,
            created: subscription.created,
            validated: subscription.validated,
            include_subunits: subscription.include_subunits,
            signing_secret: non_empty(subscription.signing_secret),
        }
    }
}

/// `SubscriptionList`: the caller's subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    /// How many there are.
    count: usize,
    /// The subscriptions.
    subscriptions: Vec<SubscriptionView>,
}

impl From<pb::ListSubscriptionsResponse> for SubscriptionList {
    fn from(list: pb::ListSubscriptionsResponse) -> Self {
        let subscriptions: Vec<SubscriptionView> =
            list.subscriptions.into_iter().map(Into::into).collect();
        Self {
            count: subscriptions.len(),
            subscriptions,
        }
    }
}

/// The pull's query parameters, bound as Altinn's `EventsController.Get` binds them.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// The resource, `urn:altinn:resource:<id>`, exact (required).
    #[param(example = "urn:altinn:resource:broker-demo")]
    pub resource: String,
    /// The id of the last event already read (required); `0`, or an id that is not an
    /// event's, reads from the start.
    #[serde(default)]
    #[param(required = true, value_type = String, example = "0")]
    pub after: Option<String>,
    /// Only events about this subject, exact.
    #[serde(default)]
    pub subject: Option<String>,
    /// Only events whose type matches one of these (repeat the parameter; SQL `LIKE`
    /// patterns: `%` any text, `_` any one character).
    #[serde(default, rename = "type")]
    #[param(rename = "type", example = json!(["no.altinn.broker.published"]))]
    pub types: Vec<String>,
    /// Events per answer: below 1 (or absent) is 50, above 1000 is 1000.
    #[serde(default)]
    pub size: i32,
}

/// A delivery that ran out of attempts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    /// The dead letter's id (pass it to the re-drive).
    id: String,
    /// The subscription it was for.
    subscription_id: i64,
    /// The CloudEvent that was not delivered.
    #[schema(value_type = Object)]
    cloud_event: Value,
    /// How many deliveries were tried.
    attempts: u32,
    /// What the last attempt ended with; `null` if unknown.
    last_error: Option<String>,
    /// When it was given up (RFC 3339).
    dead_since: String,
}

impl TryFrom<pb::DeadLetter> for DeadLetterView {
    type Error = Problem;

    fn try_from(letter: pb::DeadLetter) -> Result<Self, Problem> {
        let cloud_event = serde_json::from_str(&letter.cloud_event_json).map_err(|error| {
            tracing::error!(%error, id = letter.id, "event service sent an unreadable dead letter");
            Problem::internal()
        })?;
        Ok(Self {
            id: letter.id,
            subscription_id: letter.subscription_id,
            cloud_event,
            attempts: letter.attempts,
            last_error: non_empty(letter.last_error),
            dead_since: letter.dead_since,
        })
    }
}

/// One page of dead letters.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterPage {
    /// The dead letters on this page, oldest first.
    pub dead_letters: Vec<DeadLetterView>,
    /// Pass as `pageToken` for the next page; `null` on the last one.
    pub next_page_token: Option<String>,
}

/// Which dead letters to deliver again.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RedriveBody {
    /// Dead letter ids; empty or absent for every dead letter.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ids: Vec<String>,
}

/// What a re-drive did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redriven {
    /// How many dead letters were queued for delivery again.
    pub redriven: u32,
}

impl JsonBody for NewSubscription {
    const PARAMETER: &'static str = "subscriptionRequest";
    const TYPE: &'static str = "Altinn.Platform.Events.Models.SubscriptionRequestModel";
}

impl QueryModel for PullQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mirrors what Altinn's `WhenWritingNull` leaves out.
    #[test]
    fn null_filters_are_left_out_and_empty_ones_kept() {
        let view = SubscriptionView::from(pb::Subscription {
            id: 7,
            end_point: "https://example.com/hook".to_owned(),
            resource_filter: "urn:altinn:resource:r".to_owned(),
            subject_filter: Some(String::new()),
            ..Default::default()
        });
        let json = serde_json::to_value(&view).unwrap();
        assert!(json.get("sourceFilter").is_none(), "{json}");
        assert!(json.get("typeFilter").is_none(), "{json}");
        assert!(json.get("signingSecret").is_none(), "{json}");
        assert_eq!(json["subjectFilter"], "");
        assert_eq!(view.location(), "/events/api/v1/subscription/7");
    }
}
