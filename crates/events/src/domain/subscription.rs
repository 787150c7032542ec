//! Subscriptions as Altinn Events models them: what a subscriber asks for, how it is checked,
//! and which CloudEvents it receives.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::cloud_event::{
    CloudEvent, ORGANIZATION_URN_PREFIX, PERSON_URN_PREFIX, RESOURCE_URN_PREFIX,
};
use super::error::{EventsError, FieldErrors};

/// What a subscriber asks for (the body of `POST /events/api/v1/subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRequest {
    /// The webhook, http(s).
    pub end_point: String,
    /// `urn:altinn:resource:<id>`, exact.
    pub resource_filter: String,
    /// The subject, exact; only a resource's service owner may omit it.
    #[serde(default)]
    pub subject_filter: Option<String>,
    /// A prefix of the events' `source`.
    #[serde(default)]
    pub source_filter: Option<String>,
    /// One event type, exact.
    #[serde(default)]
    pub type_filter: Option<String>,
    /// Whether a main unit also gets its sub-units' events (stored; matching sub-units needs
    /// the unit register, which the broker does not have yet).
    #[serde(default)]
    pub include_subunits: bool,
}

/// A stored subscription, as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Assigned by the store.
    pub id: i64,
    /// The filters and endpoint.
    #[serde(flatten)]
    pub request: SubscriptionRequest,
    /// Who owns it: `/organisation/<orgnr>`, `/org/<code>`, `/systemuser/<uuid>`.
    pub consumer: String,
    /// Who created it, in the same form.
    pub created_by: String,
    /// When.
    pub created: DateTime<Utc>,
    /// Whether the endpoint answered the validation handshake; only then it gets events.
    pub validated: bool,
}

/// Facts from outside the request that its validation depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationContext {
    /// The operator allows private, loopback and link-local endpoints (tests, closed networks).
    pub allow_private_endpoints: bool,
    /// The subscriber is the resource's service owner, so it may omit the subject filter.
    pub subscriber_owns_resource: bool,
}

impl SubscriptionRequest {
    /// Checks every field, listing all failures at once.
    pub fn validate(&self, context: ValidationContext) -> Result<(), EventsError> {
        let mut errors = FieldErrors::new();
        let mut fail = |field: &str, message: String| {
            errors.entry(field.to_owned()).or_default().push(message);
        };
        if let Err(message) = check_endpoint(&self.end_point, context.allow_private_endpoints) {
            fail("endPoint", message);
        }
        if resource_id(&self.resource_filter).is_none() {
            fail(
                "resourceFilter",
                format!("must be {RESOURCE_URN_PREFIX}<resource id>"),
            );
        }
        match &self.subject_filter {
            Some(subject) if !is_subject(subject) => fail(
                "subjectFilter",
                format!(
                    "must be {ORGANIZATION_URN_PREFIX}<9 digits> or {PERSON_URN_PREFIX}<11 digits>"
                ),
            ),
            None if !context.subscriber_owns_resource => fail(
                "subjectFilter",
                "is required unless you own the resource".to_owned(),
            ),
            _ => {}
        }
        if let Some(source) = &self.source_filter
            && Url::parse(source).is_err()
        {
            fail("sourceFilter", "must be an absolute URI".to_owned());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EventsError::Invalid(errors))
        }
    }
}

impl Subscription {
    /// Whether `event` is for this subscription: the resource and the subject match exactly (a
    /// subscription without a subject filter, which only a resource's owner may create, takes
    /// every subject), the type exactly when given, and the source by prefix when given. As in
    /// Altinn, an empty filter never matches.
    pub fn matches(&self, event: &CloudEvent) -> bool {
        let request = &self.request;
        request.resource_filter == event.resource
            && request
                .subject_filter
                .as_ref()
                .is_none_or(|subject| *subject == event.subject)
            && request
                .type_filter
                .as_ref()
                .is_none_or(|event_type| *event_type == event.event_type)
            && request
                .source_filter
                .as_ref()
                .is_none_or(|source| !source.is_empty() && event.source.starts_with(source))
    }
}

/// The prefix of an organisation consumer.
pub const ORGANISATION_CONSUMER_PREFIX: &str = "/organisation/";

/// The consumer (and creator) name of an organisation: `/organisation/<orgnr>`.
pub fn organisation_consumer(org_number: &str) -> String {
    format!("{ORGANISATION_CONSUMER_PREFIX}{org_number}")
}

/// The resource id of `urn:altinn:resource:<id>`, if it is one.
pub fn resource_id(urn: &str) -> Option<&str> {
    urn.strip_prefix(RESOURCE_URN_PREFIX)
        .filter(|id| is_resource_id(id))
}

impl Subscription {
    /// Whether the subscription's consumer may receive `event` given the resource's `owner`:
    /// it is the event's subject organisation, or the resource's owner. Subscriptions are
    /// checked when created; this re-check at enqueue keeps a subscription whose consumer lost
    /// ownership from receiving other organisations' events.
    pub fn may_receive(&self, event: &CloudEvent, owner: Option<&str>) -> bool {
        let subject_org = event.subject.strip_prefix(ORGANIZATION_URN_PREFIX);
        let is = |org: Option<&str>| {
            org.and_then(|org| {
                self.consumer
                    .strip_prefix(ORGANISATION_CONSUMER_PREFIX)
                    .map(|c| c == org)
            })
            .unwrap_or(false)
        };
        is(subject_org) || is(owner)
    }

    /// Whether the consumer is the event's subject, so no owner lookup is needed.
    pub fn is_subject_of(&self, event: &CloudEvent) -> bool {
        self.may_receive(event, None)
    }
}

/// Letters, digits, `-` and `_`, as Altinn's resource ids.
fn is_resource_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_subject(subject: &str) -> bool {
    let digits =
        |text: &str, count: usize| text.len() == count && text.chars().all(|c| c.is_ascii_digit());
    subject
        .strip_prefix(ORGANIZATION_URN_PREFIX)
        .is_some_and(|number| digits(number, 9))
        || subject
            .strip_prefix(PERSON_URN_PREFIX)
            .is_some_and(|number| digits(number, 11))
}

/// An http(s) URL whose host is public unless `allow_private`.
fn check_endpoint(text: &str, allow_private: bool) -> Result<(), String> {
    let url = Url::parse(text).map_err(|error| format!("is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be http or https".to_owned());
    }
    let private = match url.host() {
        None => return Err("has no host".to_owned()),
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        Some(Host::Ipv4(address)) => is_private_v4(address),
        Some(Host::Ipv6(address)) => is_private_v6(address),
    };
    if private && !allow_private {
        return Err("must not be a private, loopback or link-local address".to_owned());
    }
    Ok(())
}

fn is_private_v4(address: Ipv4Addr) -> bool {
    address.is_private()
        || address.is_loopback()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        // 100.64.0.0/10, carrier-grade NAT: not reachable from the internet either.
        || (address.octets()[0] == 100 && address.octets()[1] & 0xc0 == 64)
}

fn is_private_v6(address: Ipv6Addr) -> bool {
    if let Some(mapped) = address.to_ipv4_mapped() {
        return is_private_v4(mapped);
    }
    let first = address.segments()[0];
    address.is_loopback()
        || address.is_unspecified()
        || first & 0xfe00 == 0xfc00 // unique local
        || first & 0xffc0 == 0xfe80 // link-local
}

/// Whether a resolved address of an endpoint is private, for the delivery side to re-check
/// after DNS (a public name may resolve to a private address).
pub fn is_private_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(address) => is_private_v4(address),
        IpAddr::V6(address) => is_private_v6(address),
    }
}

#[cfg(test)]
mod tests {
    use broker_common::transfer_event::PartyRole;
    use uuid::Uuid;

    use super::*;
    use crate::domain::cloud_event::EventData;

    const ORG: &str = "urn:altinn:organization:identifier-no:974760673";
    const OTHER: &str = "urn:altinn:organization:identifier-no:991825827";
    const RESOURCE: &str = "urn:altinn:resource:my-resource";
    const SOURCE: &str = "https://broker.example/broker/api/v1/filetransfer";

    fn request() -> SubscriptionRequest {
        SubscriptionRequest {
            end_point: "https://hooks.example/events".into(),
            resource_filter: RESOURCE.into(),
            subject_filter: Some(ORG.into()),
            source_filter: None,
            type_filter: None,
            include_subunits: false,
        }
    }

    fn subscription(request: SubscriptionRequest) -> Subscription {
        Subscription {
            id: 1,
            request,
            consumer: "/organisation/974760673".into(),
            created_by: "/organisation/974760673".into(),
            created: Utc::now(),
            validated: true,
        }
    }

    fn event(subject: &str, event_type: &str) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".into(),
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            source: SOURCE.into(),
            time: Utc::now(),
            resource: RESOURCE.into(),
            resourceinstance: Uuid::now_v7().to_string(),
            subject: subject.into(),
            data: EventData {
                role: PartyRole::Recipient,
            },
        }
    }

    fn invalid_fields(request: &SubscriptionRequest, context: ValidationContext) -> Vec<String> {
        match request.validate(context) {
            Ok(()) => Vec::new(),
            Err(EventsError::Invalid(errors)) => errors.into_keys().collect(),
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn accepts_a_complete_request() {
        assert!(invalid_fields(&request(), ValidationContext::default()).is_empty());
        let person = SubscriptionRequest {
            subject_filter: Some("urn:altinn:person:identifier-no:01017012345".into()),
            source_filter: Some(SOURCE.into()),
            ..request()
        };
        assert!(invalid_fields(&person, ValidationContext::default()).is_empty());
    }

    #[test]
    fn endpoint_must_be_public_http() {
        for (endpoint, private) in [
            ("ftp://hooks.example/", false),
            ("not a url", false),
            ("http://127.0.0.1:8080/hook", true),
            ("http://localhost/hook", true),
            ("http://10.1.2.3/", true),
            ("http://192.168.1.1/", true),
            ("http://169.254.169.254/latest/meta-data", true),
            ("http://[::1]/", true),
            ("http://[fe80::1]/", true),
            ("http://[::ffff:127.0.0.1]/", true),
            ("http://0.0.0.0/", true),
        ] {
            let request = SubscriptionRequest {
                end_point: endpoint.into(),
                ..request()
            };
            assert_eq!(
                invalid_fields(&request, ValidationContext::default()),
                ["endPoint"],
                "{endpoint}"
            );
            let allowed = ValidationContext {
                allow_private_endpoints: true,
                ..ValidationContext::default()
            };
            assert_eq!(
                invalid_fields(&request, allowed).is_empty(),
                private,
                "{endpoint} with private endpoints allowed"
            );
        }
        let public = SubscriptionRequest {
            end_point: "http://93.184.216.34/hook".into(),
            ..request()
        };
        assert!(invalid_fields(&public, ValidationContext::default()).is_empty());
    }

    #[test]
    fn resource_and_subject_filters_are_checked() {
        let bad = SubscriptionRequest {
            resource_filter: "my-resource".into(),
            subject_filter: Some("/organisation/974760673".into()),
            source_filter: Some("not a uri".into()),
            ..request()
        };
        assert_eq!(
            invalid_fields(&bad, ValidationContext::default()),
            ["resourceFilter", "sourceFilter", "subjectFilter"]
        );
        let short = SubscriptionRequest {
            subject_filter: Some("urn:altinn:organization:identifier-no:12345".into()),
            ..request()
        };
        assert_eq!(
            invalid_fields(&short, ValidationContext::default()),
            ["subjectFilter"]
        );
        let no_subject = SubscriptionRequest {
            subject_filter: None,
            ..request()
        };
        assert_eq!(
            invalid_fields(&no_subject, ValidationContext::default()),
            ["subjectFilter"]
        );
        let owner = ValidationContext {
            subscriber_owns_resource: true,
            ..ValidationContext::default()
        };
        assert!(invalid_fields(&no_subject, owner).is_empty());
    }

    #[test]
    fn resolved_private_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
        ] {
            assert!(is_private_address(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(!is_private_address(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn only_the_subject_or_the_owner_may_receive() {
        let own = subscription(request());
        assert!(own.may_receive(&event(ORG, "t"), None));
        assert!(own.is_subject_of(&event(ORG, "t")));
        assert!(!own.may_receive(&event(OTHER, "t"), None));
        assert!(!own.may_receive(&event(OTHER, "t"), Some("991825827")));
        assert!(own.may_receive(&event(OTHER, "t"), Some("974760673")));
        assert_eq!(resource_id(RESOURCE), Some("my-resource"));
        assert_eq!(resource_id("urn:altinn:resource:"), None);
        assert_eq!(organisation_consumer("974760673"), own.consumer);
    }

    #[test]
    fn resource_matches_exactly() {
        let subscription = subscription(request());
        let mut other = event(ORG, "no.altinn.broker.published");
        assert!(subscription.matches(&other));
        other.resource = "urn:altinn:resource:my-resource-2".into();
        assert!(!subscription.matches(&other));
    }

    #[test]
    fn subject_matches_exactly_unless_owner_omitted_it() {
        let own = subscription(request());
        assert!(own.matches(&event(ORG, "no.altinn.broker.published")));
        assert!(!own.matches(&event(OTHER, "no.altinn.broker.published")));
        let owner = subscription(SubscriptionRequest {
            subject_filter: None,
            ..request()
        });
        assert!(owner.matches(&event(OTHER, "no.altinn.broker.published")));
        let empty = subscription(SubscriptionRequest {
            subject_filter: Some(String::new()),
            ..request()
        });
        assert!(!empty.matches(&event(ORG, "no.altinn.broker.published")));
    }

    #[test]
    fn type_matches_exactly_when_given() {
        let typed = subscription(SubscriptionRequest {
            type_filter: Some("no.altinn.broker.published".into()),
            ..request()
        });
        assert!(typed.matches(&event(ORG, "no.altinn.broker.published")));
        assert!(!typed.matches(&event(ORG, "no.altinn.broker.downloadconfirmed")));
        let empty = subscription(SubscriptionRequest {
            type_filter: Some(String::new()),
            ..request()
        });
        assert!(!empty.matches(&event(ORG, "no.altinn.broker.published")));
    }

    #[test]
    fn source_matches_by_prefix_when_given() {
        let prefixed = subscription(SubscriptionRequest {
            source_filter: Some("https://broker.example/broker/".into()),
            ..request()
        });
        assert!(prefixed.matches(&event(ORG, "no.altinn.broker.published")));
        let elsewhere = subscription(SubscriptionRequest {
            source_filter: Some("https://other.example/".into()),
            ..request()
        });
        assert!(!elsewhere.matches(&event(ORG, "no.altinn.broker.published")));
    }

    #[test]
    fn serializes_with_altinn_field_names() {
        let value = serde_json::to_value(subscription(request())).unwrap();
        for field in [
            "id",
            "endPoint",
            "resourceFilter",
            "subjectFilter",
            "sourceFilter",
            "typeFilter",
            "includeSubunits",
            "consumer",
            "createdBy",
            "created",
            "validated",
        ] {
            assert!(value.get(field).is_some(), "{field} in {value}");
        }
    }
}
