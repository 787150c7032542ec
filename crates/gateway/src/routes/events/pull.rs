//! `GET /events/api/v1/events`: a resource's events after a given one, for subscribers that
//! poll instead of (or besides) receiving webhooks.
//!
//! As Altinn's `EventsController.Get`: the answer is a JSON array of CloudEvents (written as
//! Altinn's formatter writes it) sent as `application/cloudevents+json`, and every non-empty
//! page carries a `next` header built as Altinn's `SetNextLink` builds it: the gateway's public
//! URL and path, `after` the last event's id, then every other parameter of the request as it
//! was sent (decoded, in order, repeated ones repeated), and, when only the
//! `Altinn-AlternativeSubject` header named the subject, the first event's subject.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use broker_common::Problem;
use broker_proto::events as pb;
use http::{HeaderMap, HeaderValue, Uri, header};
use serde::Deserialize;

use super::wire::PullQuery;
use super::{SUBSCRIBE, Subscriber};
use crate::auth::Authorized;
use crate::binding::{ApiQuery, query_collection};
use crate::clients::forward;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

/// Where Altinn clients send the alternative subject.
const ALTERNATIVE_SUBJECT_HEADER: &str = "altinn-alternativesubject";
/// The content type of Altinn's pull answer (a JSON array despite the name).
const CLOUDEVENTS_JSON: &str = "application/cloudevents+json; charset=utf-8";
/// The header carrying the next page's URL.
const NEXT: &str = "next";
/// The parameter `next` sets itself; Altinn drops it from the repeated query by its exact name.
const AFTER: &str = "after";

/// The events of a resource after `after`, oldest first, those the caller may see.
#[utoipa::path(get, path = "/events/api/v1/events", tag = "events",
    security(("bearer" = ["altinn:events.subscribe"])),
    params(PullQuery,
        ("Altinn-AlternativeSubject" = Option<String>, Header,
            description = "Matched against the events' `alternativesubject`, which Broker's \
                events do not have (so a page is empty); not together with `subject`")),
    responses(
        (status = 200, description = "The events (CloudEvents), oldest first; the page holds \
            only those the caller may see, so it may be short or empty while more follow",
            content_type = "application/cloudevents+json", body = Vec<Object>,
            headers(("next" = String, description = "The next page's absolute URL; sent with \
                every non-empty page"))),
        (status = 400, description = "A parameter is missing or invalid",
            content_type = "application/cloudevents+json", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing (no body)"),
        (status = 415, description = "A `Content-Type` other than `application/json` (no body)"),
    ))]
pub async fn pull(
    State(state): State<AppState>,
    caller: Authorized<Subscriber>,
    headers: HeaderMap,
    uri: Uri,
    ApiQuery(query): ApiQuery<PullQuery>,
) -> Result<Response, Problem> {
    // ASP.NET binds an empty header, as an empty parameter, as null.
    let alternative_subject = headers
        .get(ALTERNATIVE_SUBJECT_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let subject = query.subject.unwrap_or_default();
    let subject_from_page = !alternative_subject.is_empty() && subject.is_empty();
    let message = pb::PullEventsRequest {
        principal: None,
        resource: query.resource,
        after: query.after.unwrap_or_default(),
        // Altinn reads a size below 1 as its default; the service applies it to 0.
        size: u32::try_from(query.size).unwrap_or(0),
        subject,
        types: query.types,
        alternative_subject,
    };
    let mut client = state.clients.events();
    let page = forward(
        &caller,
        &[SUBSCRIBE],
        |principal| pb::PullEventsRequest {
            principal: Some(principal),
            ..message
        },
        |request| client.pull_events(request),
    )
    .await?;
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(CLOUDEVENTS_JSON),
        )],
        batch(&page.cloud_events_json),
    )
        .into_response();
    let link = Link {
        base: &state.public_url.0,
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        subject_from_page,
    };
    if let Some(next) = link.after(&page.cloud_events_json)? {
        // Kestrel refuses a header it cannot send (a control or non-ASCII character that a
        // decoded parameter brought in), which Altinn's client sees as a 500.
        let value = HeaderValue::from_str(&next).map_err(|_| {
            tracing::warn!("the next link holds a character a header cannot carry");
            Problem::internal()
        })?;
        response.headers_mut().insert(NEXT, value);
    }
    Ok(response)
}

/// The events as one JSON array, each exactly as the service stored it, separated as Altinn's
/// `CloudEventJsonOutputFormatter` separates them.
fn batch(events: &[String]) -> String {
    format!("[{}]", events.join(", "))
}

/// What the link needs of a CloudEvent.
#[derive(Deserialize)]
struct Linked {
    id: String,
    #[serde(default)]
    subject: Option<String>,
}

/// What the `next` link is made of.
struct Link<'a> {
    /// The gateway's public URL, without a trailing slash.
    base: &'a str,
    /// The request's path.
    path: &'a str,
    /// The request's query, as sent.
    query: &'a str,
    /// Whether the subject came from the alternative-subject header only, so the link names
    /// the first event's.
    subject_from_page: bool,
}

impl Link<'_> {
    /// The URL of the page after `events`; `None` when the page is empty. Reading the events'
    /// ids also checks that the page is JSON objects with ids: anything else from the service
    /// is a 500, not a broken array for the client.
    fn after(&self, events: &[String]) -> Result<Option<String>, Problem> {
        let linked = events
            .iter()
            .map(|event| serde_json::from_str::<Linked>(event))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                tracing::error!(%error, "event service sent an unreadable CloudEvent");
                Problem::internal()
            })?;
        let (Some(first), Some(last)) = (linked.first(), linked.last()) else {
            return Ok(None);
        };
        let mut link = format!("{}{}?{AFTER}={}", self.base, self.path, last.id);
        for (name, values) in query_collection(self.query) {
            if name == AFTER {
                continue;
            }
            for value in values {
                link.push_str(&format!("&{name}={value}"));
            }
        }
        if self.subject_from_page {
            let subject = first.subject.as_deref().unwrap_or_default();
            link.push_str(&format!("&subject={subject}"));
        }
        Ok(Some(link))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, subject: &str) -> String {
        format!(r#"{{"id":"{id}","subject":"{subject}","x":[1]}}"#)
    }

    fn link(query: &str, subject_from_page: bool) -> Link<'_> {
        Link {
            base: "http://localhost:5080",
            path: "/events/api/v1/events",
            query,
            subject_from_page,
        }
    }

    /// Mirrors Altinn's `GetEvents_ValidRequest_ReturnsListOfEventsAndNextUrl`,
    /// `GetEvents_ValidRequest_ReturnsNextHeaderWithReplacedAfterParameter` and
    /// `GetEvents_AlternativeSubjectInHeader_ReturnsListOfEventsAndNextUrl`.
    #[test]
    fn next_links_are_altinns() {
        let page = [
            event("a", "/party/1337"),
            event("e31dbb11-2208-4dda-a549-92a0db8c8808", "/party/1"),
        ];
        let expected = "http://localhost:5080/events/api/v1/events\
            ?after=e31dbb11-2208-4dda-a549-92a0db8c8808\
            &resource=urn:altinn:resource:systemx&subject=/party/1337";
        for query in [
            "resource=urn:altinn:resource:systemx&after=0&subject=%2Fparty%2F1337",
            "resource=urn:altinn:resource:systemx&after=a&subject=%2Fparty%2F1337",
        ] {
            assert_eq!(
                link(query, false).after(&page).unwrap().as_deref(),
                Some(expected)
            );
        }
        let header_only = link("resource=urn:altinn:resource:systemx&after=0", true);
        assert_eq!(
            header_only.after(&page).unwrap().as_deref(),
            Some(
                "http://localhost:5080/events/api/v1/events\
                 ?after=e31dbb11-2208-4dda-a549-92a0db8c8808\
                 &resource=urn:altinn:resource:systemx&subject=/party/1337"
            )
        );
    }

    #[test]
    fn next_links_repeat_the_query_as_sent() {
        let page = [event("z", "s")];
        let query = "type=a&Size=5&TYPE=b&unknown=1&After=0&after=9";
        assert_eq!(
            link(query, false).after(&page).unwrap().as_deref(),
            Some(
                "http://localhost:5080/events/api/v1/events?after=z\
                 &type=a&type=b&Size=5&unknown=1&After=0&After=9"
            )
        );
        assert_eq!(link(query, false).after(&[]).unwrap(), None);
        assert!(link(query, false).after(&["[1]".to_owned()]).is_err());
    }

    /// Mirrors Altinn's `CloudEventJsonOutputFormatterTests`.
    #[test]
    fn events_are_written_as_altinns_formatter_writes_them() {
        assert_eq!(batch(&[]), "[]");
        assert_eq!(batch(&[r#"{"id":"a"}"#.to_owned()]), r#"[{"id":"a"}]"#);
        assert_eq!(
            batch(&[r#"{"id":"a"}"#.to_owned(), r#"{"id":"b"}"#.to_owned()]),
            r#"[{"id":"a"}, {"id":"b"}]"#
        );
    }
}
