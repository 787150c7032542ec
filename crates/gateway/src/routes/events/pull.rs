//! `GET /events/api/v1/events`: a resource's events after a given one, for subscribers that
//! poll instead of (or besides) receiving webhooks.
//!
//! As Altinn's `EventsController`: the answer is a JSON array of CloudEvents sent as
//! `application/cloudevents+json`, and every non-empty page carries a `next` header, the URL of
//! the following page (`after` = the last event's id), so a poller can save it and come back.
//! Altinn starts with `after=0`, reads `size` above 1000 as 1000, and takes the alternative
//! subject from the `Altinn-AlternativeSubject` header; all three are accepted here too. The
//! link is relative to the gateway's origin, which the gateway cannot know behind proxies.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use broker_common::Problem;
use broker_proto::events as pb;
use http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;

use super::wire::{self, PullQuery};
use super::{EVENTS, SUBSCRIBE};
use crate::auth::Authenticated;
use crate::binding::ApiQuery;
use crate::clients::forward;
use crate::routes::openapi::ProblemDetails;
use crate::routes::paging::encode;
use crate::state::AppState;

/// Events per answer when the query does not say.
const DEFAULT_SIZE: u32 = 50;
/// The most events per answer; a larger `size` is read as this, as Altinn does.
const MAX_SIZE: u32 = 1000;
/// Where Altinn clients send the alternative subject.
const ALTERNATIVE_SUBJECT_HEADER: &str = "altinn-alternativesubject";
/// The content type Altinn answers the pull with (a JSON array despite the name).
const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";
/// The header carrying the next page's URL.
const NEXT: &str = "next";

/// The events of a resource after `after`, oldest first.
#[utoipa::path(get, path = "/events/api/v1/events", tag = "events",
    security(("bearer" = ["altinn:events.subscribe"])),
    params(PullQuery,
        ("Altinn-AlternativeSubject" = Option<String>, Header,
            description = "As the `alternativeSubject` parameter, where Altinn clients send it")),
    responses(
        (status = 200, description = "The events (CloudEvents), oldest first",
            content_type = "application/cloudevents+json", body = Vec<Object>,
            headers(("next" = String, description = "The next page's URL (path and query); \
                sent with every non-empty page"))),
        (status = 400, description = "A parameter is missing or invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing, or the caller may not read the \
            resource's events", body = ProblemDetails),
    ))]
pub async fn pull(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<PullQuery>,
) -> Result<Response, Problem> {
    caller.require_any_scope(&[SUBSCRIBE])?;
    let filters = validate(query, &headers)?;
    let mut client = state.clients.events();
    let message = filters.clone();
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
    if let Some(next) = next_link(&filters, &page.cloud_events_json)? {
        let value = HeaderValue::from_str(&next).map_err(|_| Problem::internal())?;
        response.headers_mut().insert(NEXT, value);
    }
    Ok(response)
}

/// The contract's filters (without principal), or a 400 naming every invalid parameter.
fn validate(query: PullQuery, headers: &HeaderMap) -> Result<pb::PullEventsRequest, Problem> {
    let mut errors = BTreeMap::<String, Vec<String>>::new();
    let alternative = query.alternative_subject.or_else(|| {
        headers
            .get(ALTERNATIVE_SUBJECT_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    });
    let subject = wire::subject(
        ("subject", query.subject.unwrap_or_default()),
        ("alternativeSubject", alternative.unwrap_or_default()),
    )
    .unwrap_or_else(|problem| {
        for (field, messages) in problem.errors.into_iter().flat_map(|errors| *errors) {
            errors.entry(field).or_default().extend(messages);
        }
        String::new()
    });
    let mut fail = |name: &str, message: String| {
        errors.entry(name.to_owned()).or_default().push(message);
    };
    let resource = query.resource.unwrap_or_default();
    if resource.trim().is_empty() {
        fail("resource", "is required".to_owned());
    }
    let after = match query.after.as_deref() {
        None | Some("" | "0") => String::new(),
        Some(text) => match uuid::Uuid::parse_str(text) {
            Ok(id) => id.hyphenated().to_string(),
            Err(_) => {
                fail(
                    "after",
                    format!("{text:?} is not an event id (a UUID) or 0"),
                );
                String::new()
            }
        },
    };
    let size = match query.size.as_deref() {
        None | Some("") => DEFAULT_SIZE,
        Some(text) => match text.parse::<u32>() {
            Ok(size) if size >= 1 => size.min(MAX_SIZE),
            _ => {
                fail(
                    "size",
                    format!("{text:?} is not a number from 1 to {MAX_SIZE}"),
                );
                DEFAULT_SIZE
            }
        },
    };
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    Ok(pb::PullEventsRequest {
        principal: None,
        resource,
        after,
        size,
        subject,
        r#type: query.event_type.unwrap_or_default(),
    })
}

/// The events as one JSON array, each exactly as the service stored it.
fn batch(events: &[String]) -> String {
    format!("[{}]", events.join(","))
}

/// The id every CloudEvent has.
#[derive(Deserialize)]
struct EventId {
    id: String,
}

/// The URL of the page after `events`, repeating `filters`; `None` when the page is empty.
/// Reading the last event's id also checks that the page is JSON objects with ids: anything
/// else from the service is a 500, not a broken array for the client.
fn next_link(
    filters: &pb::PullEventsRequest,
    events: &[String],
) -> Result<Option<String>, Problem> {
    let mut last = None;
    for event in events {
        let EventId { id } = serde_json::from_str(event).map_err(|error| {
            tracing::error!(%error, "event service sent an unreadable CloudEvent");
            Problem::internal()
        })?;
        last = Some(id);
    }
    let Some(after) = last else {
        return Ok(None);
    };
    let mut link = format!(
        "{EVENTS}?after={}&resource={}&size={}",
        encode(&after),
        encode(&filters.resource),
        filters.size
    );
    for (name, value) in [("subject", &filters.subject), ("type", &filters.r#type)] {
        if !value.is_empty() {
            link.push_str(&format!("&{name}={}", encode(value)));
        }
    }
    Ok(Some(link))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> PullQuery {
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let uri: http::Uri = format!("/?{}", text.join("&")).parse().unwrap();
        crate::binding::parse_query::<PullQuery>(uri.query().unwrap_or_default()).unwrap()
    }

    fn failing(pairs: &[(&str, &str)]) -> Vec<String> {
        let problem = validate(query(pairs), &HeaderMap::new()).unwrap_err();
        problem.errors.unwrap().keys().cloned().collect()
    }

    #[test]
    fn defaults_and_altinn_leniencies() {
        let filters = validate(
            query(&[("resource", "r"), ("after", "0")]),
            &HeaderMap::new(),
        );
        let filters = filters.unwrap();
        assert_eq!((filters.after.as_str(), filters.size), ("", DEFAULT_SIZE));
        let filters = validate(
            query(&[("resource", "r"), ("size", "5000")]),
            &HeaderMap::new(),
        );
        assert_eq!(filters.unwrap().size, MAX_SIZE);
        let filters = validate(
            query(&[
                ("resource", "r"),
                ("after", "0B5A2D1C-8A61-4D5E-9D7E-1F2A3B4C5D6E"),
            ]),
            &HeaderMap::new(),
        );
        assert_eq!(
            filters.unwrap().after,
            "0b5a2d1c-8a61-4d5e-9d7e-1f2a3b4c5d6e"
        );
    }

    #[test]
    fn names_every_invalid_parameter() {
        assert_eq!(
            failing(&[
                ("after", "x"),
                ("size", "0"),
                ("alternativeSubject", "/person/1")
            ]),
            ["after", "alternativeSubject", "resource", "size"]
        );
        assert_eq!(failing(&[("resource", "r"), ("size", "-1")]), ["size"]);
    }

    #[test]
    fn reads_the_alternative_subject_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            ALTERNATIVE_SUBJECT_HEADER,
            HeaderValue::from_static("/organisation/991825827"),
        );
        let filters = validate(query(&[("resource", "r")]), &headers).unwrap();
        assert_eq!(
            filters.subject,
            "urn:altinn:organization:identifier-no:991825827"
        );
    }

    #[test]
    fn next_links_start_after_the_last_event() {
        let filters = pb::PullEventsRequest {
            resource: "urn:altinn:resource:r".to_owned(),
            size: 2,
            r#type: "no.altinn.broker.published".to_owned(),
            ..Default::default()
        };
        let events = [
            r#"{"id":"a"}"#.to_owned(),
            r#"{"id":"b","x":[1]}"#.to_owned(),
        ];
        assert_eq!(
            next_link(&filters, &events).unwrap().as_deref(),
            Some(
                "/events/api/v1/events?after=b&resource=urn%3Aaltinn%3Aresource%3Ar&size=2\
                 &type=no.altinn.broker.published"
            )
        );
        assert_eq!(next_link(&filters, &[]).unwrap(), None);
        assert!(next_link(&filters, &["[1]".to_owned()]).is_err());
        assert_eq!(batch(&events), r#"[{"id":"a"},{"id":"b","x":[1]}]"#);
    }
}
