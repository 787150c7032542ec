//! The Altinn Events API at the gateway: what it decides itself (credentials, scope, ids, body and
//! query shape, the alternative-subject conversion) with the services down, and what it sends
//! and renders across the gRPC boundary, against a recording stand-in of the event service.

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, ORG, gateway, header, maskinporten_claims, send, sign};

mod double;

use double::{Double, EVENTS, QUIET_RESOURCE, SECRET, SUBSCRIPTION_ID, event_json, not_found};

const SUBSCRIPTIONS: &str = "/events/api/v1/subscriptions";
const PULL: &str = "/events/api/v1/events";
const DEAD_LETTERS: &str = "/admin/v1/events/dead-letters";
const REDRIVE: &str = "/admin/v1/events/dead-letters/redrive";
const SUBSCRIBE: &str = "altinn:events.subscribe";
const RESOURCE: &str = "urn:altinn:resource:broker-demo";

const NEW_SUBSCRIPTION: &str = r#"{"endPoint": "https://example.com/hook",
    "resourceFilter": "urn:altinn:resource:broker-demo",
    "alternativeSubjectFilter": "/organisation/991825827"}"#;

/// A subscriber's token.
fn subscriber() -> String {
    sign(&maskinporten_claims(SUBSCRIBE))
}

/// The subject URN of the test organisation.
fn org_urn() -> String {
    format!("urn:altinn:organization:identifier-no:{ORG}")
}

/// A request with an optional bearer token and an optional JSON body.
fn request(method: Method, uri: &str, bearer: Option<&str>, body: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned())),
        None => request.body(Body::empty()),
    }
    .unwrap()
}

/// Every subscriber route with a well-formed request.
fn subscriber_routes(bearer: Option<&str>) -> Vec<Request<Body>> {
    let one = format!("{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}");
    vec![
        request(Method::POST, SUBSCRIPTIONS, bearer, Some(NEW_SUBSCRIPTION)),
        request(Method::GET, SUBSCRIPTIONS, bearer, None),
        request(Method::GET, &one, bearer, None),
        request(Method::DELETE, &one, bearer, None),
        request(
            Method::GET,
            &format!("{PULL}?resource={RESOURCE}"),
            bearer,
            None,
        ),
    ]
}

/// Every operator route with a well-formed request.
fn admin_routes(bearer: Option<&str>) -> Vec<Request<Body>> {
    vec![
        request(Method::GET, DEAD_LETTERS, bearer, None),
        request(Method::POST, REDRIVE, bearer, Some("{}")),
    ]
}

/// Sends `request` to a gateway whose services are down and checks the answer is a problem with
/// `status`; returns the problem.
async fn expect_problem(request: Request<Body>, status: StatusCode) -> Value {
    let what = format!("{} {}", request.method(), request.uri());
    let (response, problem) = send(&gateway(), request).await;
    assert_eq!(response.status(), status, "{what}: {problem}");
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json",
        "{what}"
    );
    problem
}

/// The field names a validation problem lists.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_object()
        .map(|errors| errors.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn subscriber_routes_need_a_token() {
    for request in subscriber_routes(None) {
        let what = format!("{} {}", request.method(), request.uri());
        let (response, problem) = send(&gateway(), request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(header(&response, "www-authenticate"), "Bearer", "{what}");
        assert_eq!(problem["status"], 401, "{what}");
    }
}

#[tokio::test]
async fn subscriber_routes_need_the_subscribe_scope() {
    let reader = sign(&maskinporten_claims("altinn:broker.read"));
    for request in subscriber_routes(Some(&reader)) {
        let what = format!("{} {}", request.method(), request.uri());
        let (response, _) = send(&gateway(), request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(
            header(&response, "www-authenticate").contains(SUBSCRIBE),
            "{what}"
        );
    }
}

#[tokio::test]
async fn admin_routes_need_the_admin_credential() {
    let subscriber = subscriber();
    for bearer in [None, Some("wrong-token"), Some(subscriber.as_str())] {
        for request in admin_routes(bearer) {
            let what = format!("{} {} as {bearer:?}", request.method(), request.uri());
            let problem = expect_problem(request, StatusCode::UNAUTHORIZED).await;
            assert_eq!(problem["status"], 401, "{what}");
        }
    }
}

#[tokio::test]
async fn calls_while_the_event_service_is_down_are_503() {
    let subscriber = subscriber();
    let requests = subscriber_routes(Some(&subscriber))
        .into_iter()
        .chain(admin_routes(Some(ADMIN_TOKEN)));
    for request in requests {
        expect_problem(request, StatusCode::SERVICE_UNAVAILABLE).await;
    }
}

#[tokio::test]
async fn subscription_ids_must_be_positive_integers() {
    let subscriber = subscriber();
    for id in ["abc", "0", "-1", "1.5", "99999999999999999999"] {
        for method in [Method::GET, Method::DELETE] {
            let uri = format!("{SUBSCRIPTIONS}/{id}");
            let problem = expect_problem(
                request(method, &uri, Some(&subscriber), None),
                StatusCode::BAD_REQUEST,
            )
            .await;
            assert_eq!(fields(&problem), ["id"], "{uri}");
        }
    }
}

#[tokio::test]
async fn pull_query_errors_name_the_parameter() {
    let subscriber = subscriber();
    let cases = [
        (String::new(), "resource"),
        (format!("resource={RESOURCE}&size=0"), "size"),
        (format!("resource={RESOURCE}&size=many"), "size"),
        (format!("resource={RESOURCE}&after=yesterday"), "after"),
        (
            format!("resource={RESOURCE}&alternativeSubject=/person/01017012345"),
            "alternativeSubject",
        ),
    ];
    for (query, field) in cases {
        let uri = format!("{PULL}?{query}");
        let problem = expect_problem(
            request(Method::GET, &uri, Some(&subscriber), None),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(fields(&problem), [field], "{uri}");
    }
}

#[tokio::test]
async fn subscription_body_errors_name_the_field() {
    let subscriber = subscriber();
    // What does not bind is keyed by its JSON path, with the body's parameter as missing.
    for (body, key) in [
        (r#"{"resourceFilter": "urn:altinn:resource:r"}"#, "$"),
        (r#"{"endPoint": "https://example.com/hook"}"#, "$"),
        (
            r#"{"endPoint": 5, "resourceFilter": "urn:altinn:resource:r"}"#,
            "$.endPoint",
        ),
        (
            r#"{"endPoint": "https://e.com", "resourceFilter": "r", "includeSubunits": "yes"}"#,
            "$.includeSubunits",
        ),
    ] {
        let problem = expect_problem(
            request(Method::POST, SUBSCRIPTIONS, Some(&subscriber), Some(body)),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(fields(&problem), [key, "subscriptionRequest"], "{body}");
    }
    let cases = [
        (
            r#"{"endPoint": "https://e.com", "resourceFilter": "r",
                "alternativeSubjectFilter": "/person/01017012345"}"#,
            "alternativeSubjectFilter",
        ),
        (
            r#"{"endPoint": "https://e.com", "resourceFilter": "r",
                "alternativeSubjectFilter": "/organisation/991825828"}"#,
            "alternativeSubjectFilter",
        ),
    ];
    let problem = expect_problem(
        request(
            Method::POST,
            SUBSCRIPTIONS,
            Some(&subscriber),
            Some(r#"{"endPoint": "#),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(fields(&problem), ["$", "subscriptionRequest"]);
    for (body, field) in cases {
        let problem = expect_problem(
            request(Method::POST, SUBSCRIPTIONS, Some(&subscriber), Some(body)),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(fields(&problem), [field], "{body}");
    }
}

#[tokio::test]
async fn create_answers_201_with_the_location_and_converts_the_alternative_subject() {
    let (double, app) = Double::start().await;
    let subscriber = subscriber();
    let (response, body) = send(
        &app,
        request(
            Method::POST,
            SUBSCRIPTIONS,
            Some(&subscriber),
            Some(NEW_SUBSCRIPTION),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    assert_eq!(
        header(&response, "location"),
        format!("{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}")
    );
    assert_eq!(
        body,
        json!({
            "id": SUBSCRIPTION_ID,
            "endPoint": "https://example.com/hook",
            "sourceFilter": null,
            "resourceFilter": RESOURCE,
            "subjectFilter": org_urn(),
            "typeFilter": null,
            "consumer": format!("/organisation/{ORG}"),
            "createdBy": format!("/organisation/{ORG}"),
            "created": "2026-11-29T08:00:00Z",
            "validated": false,
            "includeSubunits": false,
        })
    );
    let seen = double.seen.lock().unwrap();
    let sent = &seen.creates[0];
    assert_eq!(sent.subject_filter, org_urn());
    assert_eq!(sent.resource_filter, RESOURCE);
    assert!(!sent.sign_deliveries);
    assert_eq!(sent.principal.as_ref().unwrap().org_number, ORG);
    assert_eq!(seen.bearers, [subscriber]);
}

#[tokio::test]
async fn signed_subscriptions_show_their_secret_once() {
    let (double, app) = Double::start().await;
    let body = json!({
        "endPoint": "https://example.com/hook",
        "resourceFilter": RESOURCE,
        "subjectFilter": org_urn(),
        "typeFilter": "no.altinn.broker.published",
        "includeSubunits": true,
        "signDeliveries": true,
    })
    .to_string();
    let subscriber = subscriber();
    let (response, created) = send(
        &app,
        request(Method::POST, SUBSCRIPTIONS, Some(&subscriber), Some(&body)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{created}");
    assert_eq!(created["signingSecret"], SECRET);
    assert_eq!(created["typeFilter"], "no.altinn.broker.published");
    assert_eq!(created["includeSubunits"], true);
    assert!(double.seen.lock().unwrap().creates[0].sign_deliveries);

    let uri = format!("{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}");
    let (_, read) = send(&app, request(Method::GET, &uri, Some(&subscriber), None)).await;
    assert!(read.get("signingSecret").is_none(), "{read}");
}

#[tokio::test]
async fn lists_the_callers_subscriptions_as_altinn_does() {
    let (_, app) = Double::start().await;
    let subscriber = subscriber();
    let (response, body) = send(
        &app,
        request(Method::GET, SUBSCRIPTIONS, Some(&subscriber), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body["count"], 2);
    let ids: Vec<&Value> = body["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|subscription| &subscription["id"])
        .collect();
    assert_eq!(ids, [&json!(SUBSCRIPTION_ID), &json!(43)]);
    assert_eq!(body["subscriptions"][0]["subjectFilter"], org_urn());
}

#[tokio::test]
async fn get_and_delete_forward_the_id_and_pass_the_services_problem_through() {
    let (double, app) = Double::start().await;
    let subscriber = subscriber();
    let known = format!("{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}");
    let (response, body) = send(&app, request(Method::GET, &known, Some(&subscriber), None)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body["id"], SUBSCRIPTION_ID);

    let (response, body) = send(
        &app,
        request(Method::DELETE, &known, Some(&subscriber), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body, Value::Null);

    let expected = not_found();
    for method in [Method::GET, Method::DELETE] {
        let uri = format!("{SUBSCRIPTIONS}/7");
        let (response, problem) = send(&app, request(method, &uri, Some(&subscriber), None)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
        assert_eq!(problem["detail"], expected.detail.clone().unwrap());
        assert_eq!(problem["code"], expected.code_text().unwrap());
    }
    assert_eq!(
        double.seen.lock().unwrap().ids,
        [SUBSCRIPTION_ID, SUBSCRIPTION_ID, 7, 7]
    );
}

#[tokio::test]
async fn pull_answers_the_events_as_an_array_with_a_next_link() {
    let (double, app) = Double::start().await;
    let subscriber = subscriber();
    let after = "0B5A2D1C-8A61-4D5E-9D7E-1F2A3B4C5D6E";
    let uri = format!("{PULL}?resource={RESOURCE}&after={after}&size=2&type=t");
    let pull = Request::get(&uri)
        .header("authorization", format!("Bearer {subscriber}"))
        .header("Altinn-AlternativeSubject", "/organisation/991825827")
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&app, pull).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(
        header(&response, "content-type"),
        "application/cloudevents+json"
    );
    let expected: Vec<Value> = (1..=2)
        .map(|n| serde_json::from_str(&event_json(n)).unwrap())
        .collect();
    assert_eq!(body, Value::Array(expected));
    assert_eq!(
        header(&response, "next"),
        format!(
            "{PULL}?after=00000000-0000-4000-8000-000000000002\
             &resource=urn%3Aaltinn%3Aresource%3Abroker-demo&size=2\
             &subject=urn%3Aaltinn%3Aorganization%3Aidentifier-no%3A{ORG}&type=t"
        )
    );
    let seen = double.seen.lock().unwrap();
    let sent = &seen.pulls[0];
    assert_eq!(sent.resource, RESOURCE);
    assert_eq!(sent.after, after.to_ascii_lowercase());
    assert_eq!((sent.size, sent.r#type.as_str()), (2, "t"));
    assert_eq!(sent.subject, org_urn());
    assert_eq!(seen.bearers, [subscriber]);
}

#[tokio::test]
async fn pull_defaults_to_50_from_the_start_and_an_empty_page_has_no_next_link() {
    let (double, app) = Double::start().await;
    let subscriber = subscriber();
    let uri = format!("{PULL}?resource={RESOURCE}&after=0");
    let (response, body) = send(&app, request(Method::GET, &uri, Some(&subscriber), None)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), EVENTS as usize);
    assert!(header(&response, "next").contains("after=00000000-0000-4000-8000-000000000003"));

    let uri = format!("{PULL}?resource={QUIET_RESOURCE}");
    let (response, body) = send(&app, request(Method::GET, &uri, Some(&subscriber), None)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body, json!([]));
    assert!(response.headers().get("next").is_none());

    let seen = double.seen.lock().unwrap();
    assert_eq!((seen.pulls[0].size, seen.pulls[0].after.as_str()), (50, ""));
}

#[tokio::test]
async fn dead_letters_forward_the_admin_credential_and_render_the_event() {
    let (double, app) = Double::start().await;
    let uri = format!("{DEAD_LETTERS}?pageSize=10&pageToken=page-1");
    let (response, body) = send(&app, request(Method::GET, &uri, Some(ADMIN_TOKEN), None)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "deadLetters": [{
                "id": "dl-1",
                "subscriptionId": SUBSCRIPTION_ID,
                "cloudEvent": serde_json::from_str::<Value>(&event_json(1)).unwrap(),
                "attempts": 12,
                "lastError": "HTTP 503",
                "deadSince": "2026-11-29T09:00:00Z",
            }],
            "nextPageToken": "page-2",
        })
    );
    let seen = double.seen.lock().unwrap();
    let page = seen.pages[0].as_ref().unwrap();
    assert_eq!((page.token.as_str(), page.size), ("page-1", 10));
    assert_eq!(seen.bearers, [ADMIN_TOKEN]);
}

#[tokio::test]
async fn redrive_forwards_the_ids_and_empty_means_all() {
    let (double, app) = Double::start().await;
    for (body, redriven) in [
        (r#"{"ids": ["dl-1", "dl-2"]}"#, 2),
        ("{}", 5),
        (r#"{"ids": null}"#, 5),
    ] {
        let (response, answer) = send(
            &app,
            request(Method::POST, REDRIVE, Some(ADMIN_TOKEN), Some(body)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{body}: {answer}");
        assert_eq!(answer, json!({"redriven": redriven}), "{body}");
    }
    let problem = send(
        &app,
        request(
            Method::POST,
            REDRIVE,
            Some(ADMIN_TOKEN),
            Some(r#"{"ids": "dl-1"}"#),
        ),
    )
    .await
    .1;
    assert_eq!(fields(&problem), ["$.ids", "body"]);
    let seen = double.seen.lock().unwrap();
    let expected: [Vec<String>; 3] = [vec!["dl-1".into(), "dl-2".into()], vec![], vec![]];
    assert_eq!(seen.redrives, expected);
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let (_, document) = send(
        &gateway(),
        request(Method::GET, "/openapi.json", None, None),
    )
    .await;
    let paths = &document["paths"];
    for (path, methods) in [
        (SUBSCRIPTIONS, &["post", "get"][..]),
        ("/events/api/v1/subscriptions/{id}", &["get", "delete"]),
        (PULL, &["get"]),
        (DEAD_LETTERS, &["get"]),
        (REDRIVE, &["post"]),
    ] {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path}");
        }
    }
    let pull = &paths[PULL]["get"];
    assert!(pull["responses"]["200"]["headers"]["next"].is_object());
    assert!(pull["responses"]["200"]["content"]["application/cloudevents+json"].is_object());
}
