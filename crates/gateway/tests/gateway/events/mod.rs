//! The Altinn Events API at the gateway: what it decides itself (credentials, the pull's scope,
//! content types, how ids, queries and bodies bind) with the services down, and what it sends
//! and how it writes the answers across the gRPC boundary, against a recording stand-in of the
//! event service. Each test names the Altinn test (in `Altinn/altinn-events`'
//! `SubscriptionControllerTests` and `EventsControllerTests`) or source it mirrors.

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, ORG, gateway, header, maskinporten_claims, send, sign};

mod double;

use double::{
    Double, EVENTS, FORBIDDEN_RESOURCE, FORBIDDEN_TEXT, NOT_A_URN, NOT_A_URN_TEXT, QUIET_RESOURCE,
    RANDOM_RESOURCE, RANDOM_TEXT, SECRET, SUBSCRIPTION_ID, THEIRS, event_json,
};

const SUBSCRIPTIONS: &str = "/events/api/v1/subscriptions";
const PULL: &str = "/events/api/v1/events";
const DEAD_LETTERS: &str = "/admin/v1/events/dead-letters";
const REDRIVE: &str = "/admin/v1/events/dead-letters/redrive";
const SUBSCRIBE: &str = "altinn:events.subscribe";
const RESOURCE: &str = "urn:altinn:resource:broker-demo";
/// The test gateway's public URL (`BROKER_PUBLIC_URL` unset: from the listening address).
const PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// How Altinn's JSON answers are typed.
const JSON_UTF8: &str = "application/json; charset=utf-8";
/// How Altinn's pull answers (and its problems) are typed.
const CLOUDEVENTS_UTF8: &str = "application/cloudevents+json; charset=utf-8";

const NEW_SUBSCRIPTION: &str = r#"{"endPoint": "https://example.com/hook",
    "resourceFilter": "urn:altinn:resource:broker-demo",
    "subjectFilter": "urn:altinn:organization:identifier-no:991825827"}"#;

/// A subscriber's token.
fn subscriber() -> String {
    sign(&maskinporten_claims(SUBSCRIBE))
}

/// A token without the events scope.
fn reader() -> String {
    sign(&maskinporten_claims("altinn:broker.read"))
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

/// Every subscription route with a well-formed request.
fn subscription_routes(bearer: Option<&str>) -> Vec<Request<Body>> {
    let one = format!("{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}");
    vec![
        request(Method::POST, SUBSCRIPTIONS, bearer, Some(NEW_SUBSCRIPTION)),
        request(Method::GET, SUBSCRIPTIONS, bearer, None),
        request(Method::GET, &one, bearer, None),
        request(Method::DELETE, &one, bearer, None),
    ]
}

/// A well-formed pull.
fn pull_request(bearer: Option<&str>) -> Request<Body> {
    let uri = format!("{PULL}?resource={RESOURCE}&after=0");
    request(Method::GET, &uri, bearer, None)
}

/// Every operator route with a well-formed request.
fn admin_routes(bearer: Option<&str>) -> Vec<Request<Body>> {
    vec![
        request(Method::GET, DEAD_LETTERS, bearer, None),
        request(Method::POST, REDRIVE, bearer, Some("{}")),
    ]
}

/// Sends `request` to a gateway whose services are down and checks the answer has `status`,
/// `content_type` and a problem body; returns the problem.
async fn expect_problem(request: Request<Body>, status: StatusCode, content_type: &str) -> Value {
    let what = format!("{} {}", request.method(), request.uri());
    let (response, problem) = send(&gateway(), request).await;
    assert_eq!(response.status(), status, "{what}: {problem}");
    assert_eq!(header(&response, "content-type"), content_type, "{what}");
    assert_eq!(problem["status"], status.as_u16(), "{what}: {problem}");
    problem
}

/// Sends `request` and checks the answer is `status` with no body and no content type.
async fn expect_bare(app: &axum::Router, request: Request<Body>, status: StatusCode) {
    let what = format!("{} {}", request.method(), request.uri());
    let (response, body) = send(app, request).await;
    assert_eq!(response.status(), status, "{what}: {body}");
    assert_eq!(body, Value::Null, "{what}");
    assert_eq!(header(&response, "content-type"), "", "{what}");
}

/// The `errors` of a validation problem.
fn errors(problem: &Value) -> &Value {
    &problem["errors"]
}

/// Mirrors `Get_MissingAuthToken_ReturnsUnauthorized`, `Post_GivenMissingBearerToken_…` and
/// `GetEvents_MissingBearerToken_ReturnsUnauthorized`: 401, no body.
#[tokio::test]
async fn without_a_token_every_route_is_401_without_a_body() {
    let app = gateway();
    for request in subscription_routes(None)
        .into_iter()
        .chain([pull_request(None)])
    {
        let what = format!("{} {}", request.method(), request.uri());
        let (response, body) = send(&app, request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(body, Value::Null, "{what}");
        assert_eq!(header(&response, "www-authenticate"), "Bearer", "{what}");
    }
}

/// Mirrors `Get_ValidTokenInvalidScope_ForbiddenResponse` (the pull's `ScopeEventsSubscribe`
/// policy: 403, no body) and Altinn's bare `[Authorize]` on the subscription actions, which
/// forward any token (here to a service that is down).
#[tokio::test]
async fn only_the_pull_needs_the_scope_at_the_door() {
    let reader = reader();
    expect_bare(
        &gateway(),
        pull_request(Some(&reader)),
        StatusCode::FORBIDDEN,
    )
    .await;
    for request in subscription_routes(Some(&reader)) {
        expect_problem(request, StatusCode::SERVICE_UNAVAILABLE, JSON_UTF8).await;
    }
}

#[tokio::test]
async fn admin_routes_need_the_admin_credential() {
    let subscriber = subscriber();
    for bearer in [None, Some("wrong-token"), Some(subscriber.as_str())] {
        for request in admin_routes(bearer) {
            expect_problem(
                request,
                StatusCode::UNAUTHORIZED,
                "application/problem+json",
            )
            .await;
        }
    }
    for request in admin_routes(Some(ADMIN_TOKEN)) {
        expect_problem(
            request,
            StatusCode::SERVICE_UNAVAILABLE,
            "application/problem+json",
        )
        .await;
    }
}

/// Altinn's actions take `int id`: what .NET does not read as a 32-bit integer is ASP.NET's
/// 400 on `id` (sent as JSON, the action's type); 0, negatives and hexadecimal bind, and go to
/// the service.
#[tokio::test]
async fn subscription_ids_bind_as_altinns_int() {
    let subscriber = subscriber();
    for id in ["abc", "1.5", "99999999999"] {
        for method in [Method::GET, Method::DELETE] {
            let uri = format!("{SUBSCRIPTIONS}/{id}");
            let problem = expect_problem(
                request(method, &uri, Some(&subscriber), None),
                StatusCode::BAD_REQUEST,
                JSON_UTF8,
            )
            .await;
            assert_eq!(
                errors(&problem),
                &json!({"id": [format!("The value '{id}' is not valid.")]}),
                "{uri}"
            );
        }
    }
    let (double, app) = Double::start().await;
    for id in ["0", "-1", "0x2A"] {
        let uri = format!("{SUBSCRIPTIONS}/{id}");
        send(&app, request(Method::GET, &uri, Some(&subscriber), None)).await;
    }
    assert_eq!(double.seen.lock().unwrap().ids, [0, -1, 42]);
}

/// Mirrors `GetEvents_MissingRequiredQueryParam_Resource_ReturnsBadRequest`: ASP.NET's
/// validation problem on `resource`; and `size` binds as an `int`. The problems are typed as
/// the pull's `[Produces]` types its answers.
#[tokio::test]
async fn pull_parameters_bind_as_altinn_binds_them() {
    let subscriber = subscriber();
    let cases = [
        (
            String::new(),
            json!({"resource": ["The resource field is required."]}),
        ),
        (
            "resource=&after=0".to_owned(),
            json!({"resource": ["The resource field is required."]}),
        ),
        (
            format!("resource={RESOURCE}&after=0&size=abc"),
            json!({"size": ["The value 'abc' is not valid."]}),
        ),
        (
            format!("resource={RESOURCE}&after=0&size="),
            json!({"size": ["The value '' is invalid."]}),
        ),
    ];
    for (query, expected) in cases {
        let uri = format!("{PULL}?{query}");
        let problem = expect_problem(
            request(Method::GET, &uri, Some(&subscriber), None),
            StatusCode::BAD_REQUEST,
            CLOUDEVENTS_UTF8,
        )
        .await;
        assert_eq!(errors(&problem), &expected, "{uri}");
        assert_eq!(problem["title"], "One or more validation errors occurred.");
    }
}

/// ASP.NET's `[Consumes("application/json")]` on the pull and on create: another content type
/// is 415 with no body; a pull without one passes.
#[tokio::test]
async fn other_content_types_are_415_without_a_body() {
    let subscriber = subscriber();
    let app = gateway();
    for uri in [
        format!("{PULL}?resource={RESOURCE}&after=0"),
        SUBSCRIPTIONS.to_owned(),
    ] {
        let method = if uri == SUBSCRIPTIONS {
            Method::POST
        } else {
            Method::GET
        };
        let text = Request::builder()
            .method(method)
            .uri(&uri)
            .header("authorization", format!("Bearer {subscriber}"))
            .header("content-type", "text/plain")
            .body(Body::from(NEW_SUBSCRIPTION))
            .unwrap();
        expect_bare(&app, text, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
}

/// What does not bind is ASP.NET's validation problem keyed by its JSON path, with the body's
/// parameter as missing, sent as JSON; `includeSubunits` must be a JSON boolean.
#[tokio::test]
async fn subscription_bodies_bind_as_altinns_model() {
    let subscriber = subscriber();
    for (body, key) in [
        (r#"{"endPoint": 5}"#, "$.endPoint"),
        (r#"{"resourceFilter": ["r"]}"#, "$.resourceFilter"),
        (r#"{"includeSubunits": "yes"}"#, "$.includeSubunits"),
        (r#"{"includeSubunits": null}"#, "$.includeSubunits"),
        (r#"{"endPoint": "#, "$"),
    ] {
        let problem = expect_problem(
            request(Method::POST, SUBSCRIPTIONS, Some(&subscriber), Some(body)),
            StatusCode::BAD_REQUEST,
            JSON_UTF8,
        )
        .await;
        let keys: Vec<&String> = problem["errors"].as_object().unwrap().keys().collect();
        assert_eq!(keys, [key, "subscriptionRequest"], "{body}");
    }
}

/// Mirrors `Post_GivenValidAppSubscription_ReturnsStatusCreatedAndCorrectData`'s shape: 201,
/// `Location` as Altinn writes it (singular, relative), filters left out when null; names in
/// any case bind; left-out, null and empty members reach the service as they were sent.
#[tokio::test]
async fn create_answers_201_with_altinns_location_and_shape() {
    let (double, app) = Double::start().await;
    let subscriber = subscriber();
    let body = r#"{"EndPoint": "https://example.com/hook", "RESOURCEFILTER":
        "urn:altinn:resource:broker-demo", "subjectfilter": "", "typeFilter": null}"#;
    let (response, created) = send(
        &app,
        request(Method::POST, SUBSCRIPTIONS, Some(&subscriber), Some(body)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{created}");
    assert_eq!(
        header(&response, "location"),
        format!("/events/api/v1/subscription/{SUBSCRIPTION_ID}")
    );
    assert_eq!(header(&response, "content-type"), JSON_UTF8);
    assert_eq!(
        created,
        json!({
            "id": SUBSCRIPTION_ID,
            "endPoint": "https://example.com/hook",
            "resourceFilter": RESOURCE,
            "subjectFilter": "",
            "consumer": format!("/organisation/{ORG}"),
            "createdBy": format!("/organisation/{ORG}"),
            "created": "2026-11-29T08:00:00Z",
            "validated": false,
            "includeSubunits": false,
        })
    );
    let seen = double.seen.lock().unwrap();
    let sent = &seen.creates[0];
    assert_eq!(sent.end_point.as_deref(), Some("https://example.com/hook"));
    assert_eq!(sent.subject_filter.as_deref(), Some(""));
    assert_eq!(
        (sent.type_filter.as_deref(), sent.source_filter.as_deref()),
        (None, None)
    );
    assert!(!sent.sign_deliveries);
    assert_eq!(sent.principal.as_ref().unwrap().org_number, ORG);
    assert_eq!(seen.bearers, [subscriber]);
}

/// Mirrors `Post_GivenSubscriptionWithInvalidUrnResource_ReturnsBadRequest` (the body exactly
/// `"Resource filter must be a valid urn"`, quotes included) and
/// `CreateSubscription_WithoutAccess_ReturnsForbiddenError`: the service's refusals as Altinn's
/// controller passes a `ServiceError` on.
#[tokio::test]
async fn create_refusals_are_altinns_json_strings() {
    let (_, app) = Double::start().await;
    let subscriber = subscriber();
    for (resource, status, text) in [
        (NOT_A_URN, StatusCode::BAD_REQUEST, NOT_A_URN_TEXT),
        (FORBIDDEN_RESOURCE, StatusCode::FORBIDDEN, FORBIDDEN_TEXT),
    ] {
        let body = json!({"endPoint": "https://example.com/hook", "resourceFilter": resource});
        let (response, answer) = send(
            &app,
            request(
                Method::POST,
                SUBSCRIPTIONS,
                Some(&subscriber),
                Some(&body.to_string()),
            ),
        )
        .await;
        assert_eq!(response.status(), status, "{resource}");
        assert_eq!(header(&response, "content-type"), JSON_UTF8, "{resource}");
        // The body is the text as a JSON string, quotes included.
        assert_eq!(answer, json!(text), "{resource}");
    }
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

/// Mirrors `Get_AuthenticatedOrg_CallsServiceAndReturnsList`: `{count, subscriptions}`.
#[tokio::test]
async fn lists_the_callers_subscriptions_as_altinn_does() {
    let (_, app) = Double::start().await;
    let (response, body) = send(
        &app,
        request(Method::GET, SUBSCRIPTIONS, Some(&reader()), None),
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

/// Mirrors `Get_GivenSubscriptionOrganisationWithValidSubject_ReturnsOk`,
/// `…WithInvalidCreatedBy_ReturnsForbidden`, `Delete_…_ReturnsCreated` (200, no body) and
/// `…_ReturnsForbidden`, and Altinn's `StatusCode(404, null)`: refusals have no body.
#[tokio::test]
async fn get_and_delete_answer_as_altinn_does() {
    let (double, app) = Double::start().await;
    let caller = reader();
    let known = format!("{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}");
    let (response, body) = send(&app, request(Method::GET, &known, Some(&caller), None)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body["id"], SUBSCRIPTION_ID);
    expect_bare(
        &app,
        request(Method::DELETE, &known, Some(&caller), None),
        StatusCode::OK,
    )
    .await;
    for (id, status) in [(THEIRS, StatusCode::FORBIDDEN), (7, StatusCode::NOT_FOUND)] {
        for method in [Method::GET, Method::DELETE] {
            let uri = format!("{SUBSCRIPTIONS}/{id}");
            expect_bare(&app, request(method, &uri, Some(&caller), None), status).await;
        }
    }
    assert_eq!(
        double.seen.lock().unwrap().ids,
        [SUBSCRIPTION_ID, SUBSCRIPTION_ID, THEIRS, THEIRS, 7, 7]
    );
}

/// Mirrors `GetEvents_ValidRequest_ReturnsListOfEventsAndNextUrl`: the events as Altinn's
/// formatter writes them, and `next` absolute, repeating the query as sent (decoded, in order,
/// `type` repeated, unknown parameters kept, `size` only when sent).
#[tokio::test]
async fn pull_answers_the_events_with_altinns_next_link() {
    let (double, app) = Double::start().await;
    let subscriber = subscriber();
    let uri = format!(
        "{PULL}?resource={RESOURCE}&after=0&subject=%2Fparty%2F1337&TYPE=a.%25&extra=1&type=b&size=2"
    );
    let (response, body) = send(&app, request(Method::GET, &uri, Some(&subscriber), None)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(header(&response, "content-type"), CLOUDEVENTS_UTF8);
    let expected: Vec<Value> = (1..=2)
        .map(|n| serde_json::from_str(&event_json(n)).unwrap())
        .collect();
    assert_eq!(body, Value::Array(expected));
    assert_eq!(
        header(&response, "next"),
        format!(
            "{PUBLIC_URL}{PULL}?after=00000000-0000-4000-8000-000000000002\
             &resource={RESOURCE}&subject=/party/1337&TYPE=a.%&TYPE=b&extra=1&size=2"
        )
    );
    let seen = double.seen.lock().unwrap();
    let sent = &seen.pulls[0];
    assert_eq!(sent.resource, RESOURCE);
    assert_eq!((sent.after.as_str(), sent.size), ("0", 2));
    assert_eq!(sent.subject, "/party/1337");
    assert_eq!(sent.types, ["a.%", "b"]);
    assert_eq!(sent.alternative_subject, "");
    assert_eq!(seen.bearers, [subscriber]);
}

/// Mirrors `GetEvents_SizeIsLessThanZero_UsesSize50` (the service reads what is below 1 as 50,
/// so the gateway sends 0) and `GetEvents_AlternativeSubjectInHeader_ReturnsListOfEventsAndNextUrl`
/// (the header goes to the service as sent, and `next` names the first event's subject).
#[tokio::test]
async fn pull_sends_the_alternative_subject_and_small_sizes_as_the_default() {
    let (double, app) = Double::start().await;
    let subscriber = subscriber();
    let uri = format!("{PULL}?resource={RESOURCE}&after=0&size=-5");
    let pull = Request::get(&uri)
        .header("authorization", format!("Bearer {subscriber}"))
        .header("Altinn-AlternativeSubject", "/person/01038712345")
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&app, pull).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(EVENTS as usize));
    assert_eq!(
        header(&response, "next"),
        format!(
            "{PUBLIC_URL}{PULL}?after=00000000-0000-4000-8000-000000000003\
             &resource={RESOURCE}&size=-5&subject=/party/1"
        )
    );
    let seen = double.seen.lock().unwrap();
    assert_eq!(seen.pulls[0].size, 0);
    assert_eq!(seen.pulls[0].alternative_subject, "/person/01038712345");
}

/// An empty page is `[]` without `next`; the service's 400 (Altinn's
/// `GetEvents_InvalidResourceFormat_ReturnsBadRequest`) is a problem with its detail, typed
/// as the pull's answers.
#[tokio::test]
async fn an_empty_page_has_no_next_link_and_refusals_are_problems() {
    let (_, app) = Double::start().await;
    let subscriber = subscriber();
    let uri = format!("{PULL}?resource={QUIET_RESOURCE}&after=0");
    let (response, body) = send(&app, request(Method::GET, &uri, Some(&subscriber), None)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body, json!([]));
    assert!(response.headers().get("next").is_none());

    let uri = format!("{PULL}?resource={RANDOM_RESOURCE}&after=0");
    let (response, problem) = send(&app, request(Method::GET, &uri, Some(&subscriber), None)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(header(&response, "content-type"), CLOUDEVENTS_UTF8);
    assert_eq!(problem["detail"], RANDOM_TEXT);
    assert_eq!(problem["title"], "Bad Request");
    assert!(problem["traceId"].is_string(), "{problem}");
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
    let keys: Vec<&String> = problem["errors"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["$.ids", "body"]);
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
