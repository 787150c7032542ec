//! The Altinn Events wire format and its one mapping to and from the event contract: camelCase
//! JSON as Altinn's models, absent optional text as `null` rather than `""`, CloudEvents as the
//! JSON objects the service stored, and Altinn's alternative subjects (`/organisation/<orgnr>`)
//! converted to the subject URNs Broker's events carry.

use broker_common::Problem;
use broker_common::identity::OrgNumber;
use broker_proto::events as pb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::binding::{JsonBody, QueryBinding, QueryModel, null_as_default};

/// The alternative-subject form Altinn converts: an organisation by its number.
const ORGANISATION_PREFIX: &str = "/organisation/";

/// `SubscriptionRequestModel`: what a subscriber asks for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    /// The webhook events are POSTed to (HTTPS).
    #[schema(example = "https://example.com/broker-events")]
    pub end_point: String,
    /// The resource, exact.
    #[schema(example = "urn:altinn:resource:broker-demo")]
    pub resource_filter: String,
    /// The subject, exact; only the resource's service owner may omit it.
    #[schema(example = "urn:altinn:organization:identifier-no:991825827")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub subject_filter: String,
    /// A prefix of the events' `source` (legacy).
    #[serde(default, deserialize_with = "null_as_default")]
    pub source_filter: String,
    /// One event type, exact.
    #[schema(example = "no.altinn.broker.published")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub type_filter: String,
    /// `/organisation/<orgnr>`: converted to the subject filter, not stored.
    #[schema(example = "/organisation/991825827")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub alternative_subject_filter: String,
    /// Whether a main unit's subscription also gets its sub-units' events.
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_subunits: bool,
    /// Broker's extension: sign each delivery; the answer then carries `signingSecret` once.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sign_deliveries: bool,
}

impl NewSubscription {
    /// The contract's message (without principal), with the alternative subject converted.
    pub fn into_request(self) -> Result<pb::CreateSubscriptionRequest, Problem> {
        let subject_filter = subject(
            ("subjectFilter", self.subject_filter),
            ("alternativeSubjectFilter", self.alternative_subject_filter),
        )?;
        Ok(pb::CreateSubscriptionRequest {
            principal: None,
            end_point: self.end_point,
            source_filter: self.source_filter,
            resource_filter: self.resource_filter,
            subject_filter,
            type_filter: self.type_filter,
            include_subunits: self.include_subunits,
            sign_deliveries: self.sign_deliveries,
        })
    }
}

/// The subject to filter on: the subject as given, else the alternative subject converted;
/// 400 naming the alternative when it is not `/organisation/<orgnr>` or contradicts the subject.
pub fn subject(
    (subject_name, subject): (&str, String),
    (alternative_name, alternative): (&str, String),
) -> Result<String, Problem> {
    if alternative.is_empty() {
        return Ok(subject);
    }
    let converted = alternative
        .strip_prefix(ORGANISATION_PREFIX)
        .and_then(|number| OrgNumber::parse(number).ok())
        .map(|org| org.urn())
        .ok_or_else(|| {
            Problem::invalid_field(
                alternative_name,
                format!("{alternative:?} is not /organisation/<organisation number>"),
            )
        })?;
    if !subject.is_empty() && subject != converted {
        return Err(Problem::invalid_field(
            alternative_name,
            format!("names another subject than {subject_name} {subject:?}"),
        ));
    }
    Ok(converted)
}

/// `Subscription`: a stored subscription.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    /// The subscription's id.
    #[schema(example = 42)]
    id: i64,
    /// The webhook.
    end_point: String,
    /// A prefix of the events' `source`; `null` when not filtered.
    source_filter: Option<String>,
    /// The resource.
    resource_filter: String,
    /// The subject; `null` when not filtered.
    subject_filter: Option<String>,
    /// The event type; `null` when not filtered.
    type_filter: Option<String>,
    /// Who receives the events: `/organisation/<orgnr>`, `/org/<code>` or `/systemuser/<uuid>`.
    #[schema(example = "/organisation/991825827")]
    consumer: String,
    /// Who created it, in the same form.
    created_by: String,
    /// When it was created (RFC 3339).
    created: String,
    /// Whether the endpoint answered the validation handshake; only then it gets events.
    validated: bool,
    /// Whether a main unit's subscription also gets its sub-units' events.
    include_subunits: bool,
    /// The HMAC key deliveries are signed with; only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
}

impl SubscriptionView {
    /// Where the subscription lives.
    pub fn location(&self) -> String {
        format!("{}/{}", super::SUBSCRIPTIONS, self.id)
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
            source_filter: non_empty(subscription.source_filter),
            resource_filter: subscription.resource_filter,
            subject_filter: non_empty(subscription.subject_filter),
            type_filter: non_empty(subscription.type_filter),
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

/// The pull query, as sent; `pull` validates it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct PullQuery {
    /// The resource, exact (required).
    #[param(example = "urn:altinn:resource:broker-demo")]
    pub resource: Option<String>,
    /// The id (a UUID) of the last event already read; absent or `0` to read from the start.
    pub after: Option<String>,
    /// Events per answer, 1 to 1000 (default 50; more is read as 1000, as Altinn does).
    pub size: Option<String>,
    /// Only events about this subject, exact.
    pub subject: Option<String>,
    /// Only events about this organisation, `/organisation/<orgnr>` (also read from the
    /// `Altinn-AlternativeSubject` header, where Altinn takes it).
    pub alternative_subject: Option<String>,
    /// Only events of this type, exact.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
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

    fn subject_of(subject: &str, alternative: &str) -> Result<String, Problem> {
        super::subject(("s", subject.to_owned()), ("a", alternative.to_owned()))
    }

    #[test]
    fn converts_an_organisation_alternative_subject() {
        assert_eq!(
            subject_of("", "/organisation/991825827").unwrap(),
            "urn:altinn:organization:identifier-no:991825827"
        );
        assert_eq!(
            subject_of("urn:altinn:organization:identifier-no:991825827", "").unwrap(),
            "urn:altinn:organization:identifier-no:991825827"
        );
        assert_eq!(subject_of("", "").unwrap(), "");
    }

    #[test]
    fn rejects_other_alternative_subjects_naming_the_field() {
        for alternative in [
            "/person/01017012345",
            "/organisation/991825828",
            "/organisation/",
            "991825827",
        ] {
            let problem = subject_of("", alternative).unwrap_err();
            assert_eq!(problem.status, 400, "{alternative}");
            assert!(problem.errors.unwrap().contains_key("a"), "{alternative}");
        }
        let contradicting = subject_of(
            "urn:altinn:organization:identifier-no:974760673",
            "/organisation/991825827",
        );
        assert!(contradicting.unwrap_err().errors.unwrap().contains_key("a"));
    }

    #[test]
    fn empty_contract_text_is_null() {
        let view = SubscriptionView::from(pb::Subscription {
            id: 7,
            end_point: "https://example.com/hook".to_owned(),
            resource_filter: "urn:altinn:resource:r".to_owned(),
            ..Default::default()
        });
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["subjectFilter"], Value::Null);
        assert_eq!(json["sourceFilter"], Value::Null);
        assert_eq!(json["typeFilter"], Value::Null);
        assert!(json.get("signingSecret").is_none());
        assert_eq!(view.location(), "/events/api/v1/subscriptions/7");
    }
}
