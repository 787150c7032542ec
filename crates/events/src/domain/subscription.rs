//! Subscriptions as Altinn Events models them: what a subscriber sends, Altinn's rules for it
//! (checked in Altinn's order, the first failure answered with Altinn's text), who the
//! subscriber is called, and which CloudEvents a subscription receives.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use broker_common::auth::Caller;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::{Host, Url};
use uuid::Uuid;

use super::cloud_event::{CloudEvent, ORGANIZATION_URN_PREFIX, RESOURCE_URN_PREFIX};
use super::error::EventsError;

/// Altinn's answer to an endpoint that is missing, relative or not https.
pub const INVALID_ENDPOINT: &str = "Missing or invalid endpoint to push events towards";
/// Broker's answer to an endpoint on a private network (an extension: Altinn accepts it).
pub const PRIVATE_ENDPOINT: &str =
    "The endpoint must not be a private, loopback or link-local address";
/// Altinn's answer to a source filter that is not an absolute https URL.
pub const INVALID_SOURCE_FILTER: &str =
    "SourceFilter must be an absolute URL with the https scheme.";
/// Altinn's answer to a resource filter that is not a URN.
pub const INVALID_RESOURCE_FILTER: &str = "Resource filter must be a valid urn";
/// Altinn's answer to a subscription without a resource filter.
pub const MISSING_RESOURCE_FILTER: &str = "Resource filter is required.";
/// Altinn's answer to a source filter on a resource that is not an app (Broker has no apps).
pub const SOURCE_FILTER_NOT_SUPPORTED: &str =
    "Source filter is not supported for subscriptions on this resource.";
/// Altinn's answer to an alternative subject filter on a resource that is not an app.
pub const ALTERNATIVE_SUBJECT_NOT_SUPPORTED: &str =
    "AlternativeSubject filter is not supported for subscriptions on this resource.";
/// Altinn's answer to `includeSubunits` without a subject filter.
pub const SUBUNITS_NEED_SUBJECT: &str = "IncludeSubunits requires a subject filter.";

/// What a subscriber sends (Altinn's `SubscriptionRequestModel`): a member left out or `null`
/// is `None`, one sent empty is `Some("")`, since Altinn's rules tell them apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionRequestModel {
    /// The webhook.
    pub end_point: Option<String>,
    /// The resource URN.
    pub resource_filter: Option<String>,
    /// The subject, exact.
    pub subject_filter: Option<String>,
    /// A prefix of the events' `source` (Altinn takes it only for app resources).
    pub source_filter: Option<String>,
    /// The event type, exact.
    pub type_filter: Option<String>,
    /// Altinn's alternative subject (taken only for app resources).
    pub alternative_subject_filter: Option<String>,
    /// Whether a main unit also gets its sub-units' events.
    pub include_subunits: bool,
}

/// A subscription's endpoint and filters, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRequest {
    /// The webhook, normalised as Altinn stores it (`Uri.AbsoluteUri`).
    pub end_point: String,
    /// `urn:altinn:resource:<id>`, exact.
    pub resource_filter: String,
    /// The subject, exact; absent for every subject (only a resource's owner may leave it out).
    #[serde(default)]
    pub subject_filter: Option<String>,
    /// A prefix of the events' `source` (subscriptions made before Altinn's rule refused it).
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
    /// Who owns it: `/org/<code>`, `/systemuser/<uuid>` or `/organisation/<orgnr>`.
    pub consumer: String,
    /// The organisation number the consumer acts for, which decides what it may receive.
    #[serde(skip)]
    pub consumer_org: String,
    /// Who created it, in the same form.
    pub created_by: String,
    /// When.
    pub created: DateTime<Utc>,
    /// Whether the endpoint answered the validation handshake; only then it gets events.
    pub validated: bool,
}

impl SubscriptionRequestModel {
    /// The checks Altinn's controller makes before it looks at the scope: the endpoint must be
    /// an absolute https URL (Broker also refuses private networks unless `allow_private`,
    /// where plain http is then allowed too), and a source filter must be one. Returns the
    /// endpoint normalised.
    pub fn check_urls(&self, allow_private: bool) -> Result<String, EventsError> {
        let end_point = self
            .end_point
            .as_deref()
            .and_then(|text| Url::parse(text).ok())
            .ok_or_else(|| EventsError::bad_request(INVALID_ENDPOINT))?;
        let private = is_private_host(&end_point);
        let scheme_allowed = match end_point.scheme() {
            "https" => private.is_some(),
            "http" => allow_private && private == Some(true),
            _ => false,
        };
        if !scheme_allowed {
            return Err(EventsError::bad_request(INVALID_ENDPOINT));
        }
        if private == Some(true) && !allow_private {
            return Err(EventsError::bad_request(PRIVATE_ENDPOINT));
        }
        if let Some(source) = &self.source_filter
            && !Url::parse(source).is_ok_and(|url| url.scheme() == "https")
        {
            return Err(EventsError::bad_request(INVALID_SOURCE_FILTER));
        }
        Ok(end_point.to_string())
    }

    /// The checks Altinn makes after the scope, for a resource that is not an app (Broker has
    /// none): a resource filter that is a URN, no source or alternative subject filter, and
    /// a subject filter with `includeSubunits`. The subscription to store at `end_point`.
    pub fn into_generic(self, end_point: String) -> Result<SubscriptionRequest, EventsError> {
        if let Some(resource) = &self.resource_filter
            && !is_valid_urn(resource)
        {
            return Err(EventsError::bad_request(INVALID_RESOURCE_FILTER));
        }
        let Some(resource_filter) = self.resource_filter.filter(|r| !r.is_empty()) else {
            return Err(EventsError::bad_request(MISSING_RESOURCE_FILTER));
        };
        if self.source_filter.is_some() {
            return Err(EventsError::bad_request(SOURCE_FILTER_NOT_SUPPORTED));
        }
        if self
            .alternative_subject_filter
            .is_some_and(|alternative| !alternative.is_empty())
        {
            return Err(EventsError::bad_request(ALTERNATIVE_SUBJECT_NOT_SUPPORTED));
        }
        if self.include_subunits && self.subject_filter.as_deref().is_none_or(str::is_empty) {
            return Err(EventsError::bad_request(SUBUNITS_NEED_SUBJECT));
        }
        Ok(SubscriptionRequest {
            end_point,
            // Altinn stores it lower-cased; a valid URN has no upper case anyway.
            resource_filter: resource_filter.to_lowercase(),
            subject_filter: self.subject_filter,
            source_filter: None,
            type_filter: self.type_filter,
            include_subunits: self.include_subunits,
        })
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

    /// Whether the subscription's consumer may receive `event` given the resource's `owner`:
    /// it acts for the event's subject organisation, or for the resource's owner.
    /// Subscriptions are checked when created; this re-check at enqueue keeps a subscription
    /// whose consumer lost ownership from receiving other organisations' events.
    pub fn may_receive(&self, event: &CloudEvent, owner: Option<&str>) -> bool {
        let consumer = Some(self.consumer_org.as_str()).filter(|org| !org.is_empty());
        consumer.is_some_and(|org| {
            event.subject.strip_prefix(ORGANIZATION_URN_PREFIX) == Some(org) || owner == Some(org)
        })
    }

    /// Whether the consumer is the event's subject, so no owner lookup is needed.
    pub fn is_subject_of(&self, event: &CloudEvent) -> bool {
        self.may_receive(event, None)
    }
}

/// The name Altinn gives a caller as consumer and creator of its subscriptions: `/org/<code>`
/// for a service owner's token, `/systemuser/<uuid>` for a system user's, otherwise
/// `/organisation/<orgnr>` (Broker has no user tokens, Altinn's `/user/<id>`).
pub fn consumer_name(caller: &Caller) -> String {
    if let Some(code) = caller.org_code.as_deref().filter(|code| !code.is_empty()) {
        return format!("/org/{code}");
    }
    let system_user = caller
        .system_user_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
        .filter(|id| !id.is_nil());
    match system_user {
        Some(id) => format!("/systemuser/{id}"),
        None => format!("/organisation/{}", caller.org),
    }
}

/// The organisation number a subject filter names: `urn:altinn:organization:identifier-no:<n>`
/// or Altinn's older `/organisation/<n>`.
pub fn subject_organisation(subject: &str) -> Option<&str> {
    subject
        .strip_prefix(ORGANIZATION_URN_PREFIX)
        .or_else(|| subject.strip_prefix("/organisation/"))
}

/// The resource id of `urn:altinn:resource:<id>`, if it is one.
pub fn resource_id(urn: &str) -> Option<&str> {
    urn.strip_prefix(RESOURCE_URN_PREFIX)
        .filter(|id| is_resource_id(id))
}

/// Letters, digits, `-` and `_`, as Altinn's resource ids.
fn is_resource_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Altinn's `UriExtensions.IsValidUrn`: `urn:`, a namespace of 1 to 30 lower-case letters,
/// digits or `-`, then 1 to 10 segments of 1 to 100 of `a-z0-9()+,.-;$_!/`, each after a `:`.
/// Every string of that form is also a well-formed absolute URI, Altinn's other condition.
pub fn is_valid_urn(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("urn:") else {
        return false;
    };
    let mut parts = rest.split(':');
    let namespace = parts.next().unwrap_or_default();
    let namespace_ok = (1..=30).contains(&namespace.len())
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let segments: Vec<&str> = parts.collect();
    namespace_ok
        && (1..=10).contains(&segments.len())
        && segments.iter().all(|segment| {
            (1..=100).contains(&segment.len())
                && segment.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"()+,.-;$_!/".contains(&b)
                })
        })
}

/// Whether the URL's host is on a private network: `Some(true)` for loopback, private and
/// link-local addresses and `localhost`, `Some(false)` for others, `None` without a host.
fn is_private_host(url: &Url) -> Option<bool> {
    Some(match url.host()? {
        Host::Domain(domain) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        Host::Ipv4(address) => is_private_v4(address),
        Host::Ipv6(address) => is_private_v6(address),
    })
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
    use broker_common::auth::TokenKind;
    use broker_common::identity::OrgNumber;
    use broker_common::transfer_event::PartyRole;
    use uuid::Uuid;

    use super::*;
    use crate::domain::cloud_event::EventData;

    const ORG: &str = "urn:altinn:organization:identifier-no:974760673";
    const OTHER: &str = "urn:altinn:organization:identifier-no:991825827";
    const RESOURCE: &str = "urn:altinn:resource:my-resource";
    const SOURCE: &str = "https://broker.example/broker/api/v1/filetransfer";

    fn model() -> SubscriptionRequestModel {
        SubscriptionRequestModel {
            end_point: Some("https://hooks.example/events".into()),
            resource_filter: Some(RESOURCE.into()),
            subject_filter: Some(ORG.into()),
            ..SubscriptionRequestModel::default()
        }
    }

    fn request() -> SubscriptionRequest {
        let model = model();
        let end_point = model.check_urls(false).unwrap();
        model.into_generic(end_point).unwrap()
    }

    fn subscription(request: SubscriptionRequest) -> Subscription {
        Subscription {
            id: 1,
            request,
            consumer: "/organisation/974760673".into(),
            consumer_org: "974760673".into(),
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

    /// Altinn's answer to `model`: the text of its 400, or `None` when it passes.
    fn refusal(model: SubscriptionRequestModel, allow_private: bool) -> Option<String> {
        let checked = model
            .check_urls(allow_private)
            .and_then(|end_point| model.clone().into_generic(end_point));
        match checked {
            Ok(_) => None,
            Err(EventsError::BadRequest(text)) => Some(text),
            Err(other) => panic!("unexpected {other}"),
        }
    }

    /// Mirrors Altinn's `Post_EndPointIsNotAnAbsoluteHttpsUrl_ReturnsBadRequest` and
    /// `Post_GivenSubscriptionWithoutEndpoint_ReturnsBadRequest`.
    #[test]
    fn the_endpoint_must_be_absolute_https() {
        for end_point in [
            None,
            Some(""),
            Some("skd/flyttemelding"),
            Some("altinn.no/ttd/apps-test/"),
            Some("platform.altinn.no/"),
            Some("http://altinn.no/ttd/"),
            Some("sftp://altinn.no/ttd/"),
        ] {
            let model = SubscriptionRequestModel {
                end_point: end_point.map(str::to_owned),
                ..model()
            };
            assert_eq!(
                refusal(model, true).as_deref(),
                Some(INVALID_ENDPOINT),
                "{end_point:?}"
            );
        }
    }

    /// Mirrors Altinn's `Post_SourceFilterIsNotAnAbsoluteHttpsUrl_ReturnsBadRequest`; and a
    /// valid one is still refused on a resource that is not an app
    /// (`CreateSubscription_InvalidUrnProvidedAsSourceFilter_ReturnsError`).
    #[test]
    fn a_source_filter_must_be_https_and_is_then_not_supported() {
        for source in [
            "skd/flyttemelding",
            "altinn.no/ttd/apps-test/",
            "platform.altinn.no/",
            "http://altinn.no/ttd/",
            "sftp://altinn.no/ttd/",
            "",
        ] {
            let model = SubscriptionRequestModel {
                source_filter: Some(source.into()),
                ..model()
            };
            assert_eq!(
                refusal(model, false).as_deref(),
                Some(INVALID_SOURCE_FILTER),
                "{source}"
            );
        }
        let https = SubscriptionRequestModel {
            source_filter: Some(SOURCE.into()),
            ..model()
        };
        assert_eq!(
            refusal(https, false).as_deref(),
            Some(SOURCE_FILTER_NOT_SUPPORTED)
        );
    }

    /// Mirrors Altinn's `Post_GivenSubscriptionWithInvalidUrnResource_ReturnsBadRequest`,
    /// `CreateSubscription_MissingResourceFilter_ReturnsError`,
    /// `CreateSubscription_AlternaticSubjectFilterProvided_ReturnsError` and
    /// `CreateSubscription_IncludeSubunitsWithoutSubjectFilter_ReturnsError`, in Altinn's order.
    #[test]
    fn the_generic_rules_answer_with_altinns_texts() {
        let cases = [
            (
                Some("some-service"),
                None,
                None,
                false,
                INVALID_RESOURCE_FILTER,
            ),
            (Some(""), None, None, false, INVALID_RESOURCE_FILTER),
            (
                Some("urn:altinn:resource:MyRes"),
                None,
                None,
                false,
                INVALID_RESOURCE_FILTER,
            ),
            (None, None, None, false, MISSING_RESOURCE_FILTER),
            (
                Some(RESOURCE),
                Some(ORG),
                Some("/organisation/974760673"),
                false,
                ALTERNATIVE_SUBJECT_NOT_SUPPORTED,
            ),
            (Some(RESOURCE), None, None, true, SUBUNITS_NEED_SUBJECT),
            (Some(RESOURCE), Some(""), None, true, SUBUNITS_NEED_SUBJECT),
        ];
        for (resource, subject, alternative, subunits, expected) in cases {
            let model = SubscriptionRequestModel {
                resource_filter: resource.map(str::to_owned),
                subject_filter: subject.map(str::to_owned),
                alternative_subject_filter: alternative.map(str::to_owned),
                include_subunits: subunits,
                ..model()
            };
            assert_eq!(
                refusal(model, false).as_deref(),
                Some(expected),
                "{resource:?} {subject:?} {alternative:?} {subunits}"
            );
        }
        let empty_alternative = SubscriptionRequestModel {
            alternative_subject_filter: Some(String::new()),
            include_subunits: true,
            ..model()
        };
        assert_eq!(refusal(empty_alternative, false), None);
    }

    #[test]
    fn stores_the_endpoint_normalised_and_empty_filters_as_sent() {
        let model = SubscriptionRequestModel {
            end_point: Some("https://Hooks.Example".into()),
            subject_filter: Some(String::new()),
            type_filter: Some(String::new()),
            ..model()
        };
        let end_point = model.check_urls(false).unwrap();
        let stored = model.into_generic(end_point).unwrap();
        assert_eq!(stored.end_point, "https://hooks.example/");
        assert_eq!(stored.subject_filter.as_deref(), Some(""));
        assert_eq!(stored.type_filter.as_deref(), Some(""));
        assert_eq!(stored.source_filter, None);
    }

    #[test]
    fn private_endpoints_need_the_operators_leave_and_may_then_be_http() {
        for (endpoint, private) in [
            ("ftp://hooks.example/", false),
            ("not a url", false),
            ("https://127.0.0.1:8080/hook", true),
            ("https://localhost/hook", true),
            ("https://10.1.2.3/", true),
            ("https://192.168.1.1/", true),
            ("https://169.254.169.254/latest/meta-data", true),
            ("https://[::1]/", true),
            ("https://[fe80::1]/", true),
            ("https://[::ffff:127.0.0.1]/", true),
            ("https://0.0.0.0/", true),
            ("http://127.0.0.1:8080/hook", true),
        ] {
            let model = SubscriptionRequestModel {
                end_point: Some(endpoint.into()),
                ..model()
            };
            let refused = refusal(model.clone(), false);
            assert!(refused.is_some(), "{endpoint}");
            assert_eq!(
                refusal(model, true).is_none(),
                private,
                "{endpoint} with private endpoints allowed"
            );
        }
        let public_http = SubscriptionRequestModel {
            end_point: Some("http://93.184.216.34/hook".into()),
            ..model()
        };
        assert_eq!(
            refusal(public_http.clone(), true).as_deref(),
            Some(INVALID_ENDPOINT)
        );
        let private = SubscriptionRequestModel {
            end_point: Some("https://10.0.0.1/hook".into()),
            ..model()
        };
        assert_eq!(refusal(private, false).as_deref(), Some(PRIVATE_ENDPOINT));
    }

    /// Mirrors Altinn's `UriExtensionsTests.IsValidUrn`.
    #[test]
    fn urns_are_valid_as_altinns_pattern_says() {
        for valid in [
            "urn:namespaceid:ttd:apps:apps-test",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            RESOURCE,
            "urn:altinn:resource:app_ttd_apps-test",
        ] {
            assert!(is_valid_urn(valid), "{valid}");
        }
        for invalid in [
            " urn:namespaceid:ttd:apps:apps-test",
            "urn:foo::::",
            "urn:altinn:resource:MyRes",
            "urn:altinn",
            "some-service",
            "",
        ] {
            assert!(!is_valid_urn(invalid), "{invalid}");
        }
    }

    /// Mirrors Altinn's `GetEntityFromPrincipal` theory, for the tokens Broker has.
    #[test]
    fn consumers_are_named_as_altinn_names_callers() {
        let mut caller = Caller {
            org: OrgNumber::parse("987654325").unwrap(),
            client_id: "client".into(),
            scopes: Vec::new(),
            org_code: None,
            system_user_id: None,
            consumer: None,
            kind: TokenKind::Maskinporten,
            token: String::new(),
        };
        assert_eq!(consumer_name(&caller), "/organisation/987654325");
        caller.system_user_id = Some(Uuid::nil().to_string());
        assert_eq!(consumer_name(&caller), "/organisation/987654325");
        caller.system_user_id = Some("f02a9454-1e4c-4b24-8a3d-5e7c1d5f1f6a".into());
        assert_eq!(
            consumer_name(&caller),
            "/systemuser/f02a9454-1e4c-4b24-8a3d-5e7c1d5f1f6a"
        );
        caller.org_code = Some("ttd".into());
        assert_eq!(consumer_name(&caller), "/org/ttd");
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
        let unknown = Subscription {
            consumer_org: String::new(),
            ..own
        };
        assert!(!unknown.may_receive(&event(ORG, "t"), Some("")));
        assert_eq!(resource_id(RESOURCE), Some("my-resource"));
        assert_eq!(resource_id("urn:altinn:resource:"), None);
        assert_eq!(subject_organisation(ORG), Some("974760673"));
        assert_eq!(
            subject_organisation("/organisation/974760673"),
            Some("974760673")
        );
        assert_eq!(subject_organisation("/party/1337"), None);
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
}
