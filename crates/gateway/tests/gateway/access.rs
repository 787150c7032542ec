//! The Resource Registry's public API: what the gateway decides itself, as Altinn's ASP.NET
//! pipeline decides it before its controllers run (credentials and scopes with empty 401/403,
//! `[Consumes]`, the binding of bodies, queries and condition headers), and that everything
//! else reaches the access registry (a 503 here, where the registry is down).

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::Value;

use crate::support::{ADMIN_TOKEN, gateway, header, maskinporten_claims, send, sign};

const RESOURCES: &str = "/resourceregistry/api/v1/resource";
const LISTS: &str = "/resourceregistry/api/v1/access-lists/digdir";
const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";
const RESOURCE_ADMIN: &str = "altinn:resourceregistry/resource.admin";
const LIST_READ: &str = "altinn:resourceregistry/accesslist.read";
const LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";
const PDP_READ: &str = "altinn:resourceregistry/pdp:accesslist.read";

const RESOURCE: &str = r#"{"identifier": "broker-demo", "resourceType": "BrokerService"}"#;
const LIST: &str = r#"{"name": "Allowed senders"}"#;
const MEMBERS: &str = r#"{"data": ["urn:altinn:organization:identifier-no:991825827"]}"#;

/// A caller's token with `scope`.
fn token(scope: &str) -> String {
    sign(&maskinporten_claims(scope))
}

/// A request with an optional bearer token and JSON body.
fn request(method: Method, uri: &str, bearer: Option<&str>, json: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    match json {
        Some(json) => request
            .header("content-type", "application/json")
            .body(Body::from(json.to_owned())),
        None => request.body(Body::empty()),
    }
    .unwrap()
}

/// `request` with one more header.
fn with(mut request: Request<Body>, name: &'static str, value: &str) -> Request<Body> {
    request.headers_mut().append(name, value.parse().unwrap());
    request
}

/// Sends `request` and checks its status; returns the body.
async fn expect(request: Request<Body>, status: StatusCode) -> Value {
    let what = format!("{} {}", request.method(), request.uri());
    let (response, body) = send(&gateway(), request).await;
    assert_eq!(response.status(), status, "{what}: {body}");
    body
}

/// Sends `request` and checks the answer is `status` with no body, as ASP.NET answers a failed
/// authentication or authorization.
async fn expect_bare(request: Request<Body>, status: StatusCode) {
    let what = format!("{} {}", request.method(), request.uri());
    let (response, body) = send(&gateway(), request).await;
    assert_eq!(response.status(), status, "{what}: {body}");
    assert_eq!(body, Value::Null, "{what}: no body");
}

/// One write of each kind, with the scopes any of which it needs.
fn writes(bearer: Option<&str>) -> Vec<(Request<Body>, &'static [&'static str])> {
    const RESOURCE_WRITERS: &[&str] = &[RESOURCE_WRITE, RESOURCE_ADMIN];
    const LIST_WRITERS: &[&str] = &[LIST_WRITE, RESOURCE_ADMIN];
    vec![
        (
            request(Method::POST, RESOURCES, bearer, Some(RESOURCE)),
            RESOURCE_WRITERS,
        ),
        (
            request(
                Method::PUT,
                &format!("{RESOURCES}/broker-demo"),
                bearer,
                Some(RESOURCE),
            ),
            RESOURCE_WRITERS,
        ),
        (
            request(
                Method::PUT,
                &format!("{RESOURCES}/broker-demo/policy"),
                bearer,
                Some(r#"{"rules": []}"#),
            ),
            RESOURCE_WRITERS,
        ),
        (
            request(
                Method::DELETE,
                &format!("{RESOURCES}/broker-demo"),
                bearer,
                None,
            ),
            RESOURCE_WRITERS,
        ),
        (
            request(Method::PUT, &format!("{LISTS}/senders"), bearer, Some(LIST)),
            LIST_WRITERS,
        ),
        (
            request(
                Method::POST,
                &format!("{LISTS}/senders/members"),
                bearer,
                Some(MEMBERS),
            ),
            LIST_WRITERS,
        ),
        (
            request(
                Method::PUT,
                &format!("{LISTS}/senders/resource-connections/broker-demo"),
                bearer,
                Some(r#"{"actionFilters": null}"#),
            ),
            LIST_WRITERS,
        ),
        (
            request(
                Method::DELETE,
                &format!("{LISTS}/senders/resource-connections/broker-demo"),
                bearer,
                None,
            ),
            LIST_WRITERS,
        ),
    ]
}

/// The list reads, each needing one of Altinn's `AccessListRead` scopes.
fn list_reads(bearer: Option<&str>) -> Vec<Request<Body>> {
    [
        format!("{LISTS}?include=resources&resource=broker-demo"),
        format!("{LISTS}/senders"),
        format!("{LISTS}/senders/members?token=x"),
        format!("{LISTS}/senders/resource-connections"),
    ]
    .iter()
    .map(|uri| request(Method::GET, uri, bearer, None))
    .collect()
}

/// Mirrors Altinn's `Unauthenticated_Returns_Unauthorized`: 401 with a challenge, no body.
#[tokio::test]
async fn calls_without_a_token_are_401_with_no_body() {
    let requests = writes(None)
        .into_iter()
        .map(|(request, _)| request)
        .chain(list_reads(None));
    for request in requests {
        let what = request.uri().to_string();
        let (response, body) = send(&gateway(), request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(header(&response, "www-authenticate"), "Bearer", "{what}");
        assert_eq!(body, Value::Null, "{what}");
    }
}

/// Mirrors `MissingScope_Returns_Forbidden`: 403 with no body, before the body is read.
#[tokio::test]
async fn a_token_without_the_scope_is_403_with_no_body() {
    let reader = token(&format!("{LIST_READ} {PDP_READ}"));
    for (mut request, _) in writes(Some(&reader)) {
        // Not even a body that does not bind is looked at first.
        *request.body_mut() = Body::from("{not json");
        expect_bare(request, StatusCode::FORBIDDEN).await;
    }
    let other = token(RESOURCE_WRITE);
    for request in list_reads(Some(&other)) {
        expect_bare(request, StatusCode::FORBIDDEN).await;
    }
}

/// Mirrors Altinn's policies: `resource.admin` writes resources and lists, and any of the four
/// read scopes reads lists.
#[tokio::test]
async fn each_of_altinns_scopes_reaches_the_service() {
    for scope in [RESOURCE_WRITE, RESOURCE_ADMIN, LIST_WRITE] {
        let bearer = token(scope);
        for (request, scopes) in writes(Some(&bearer)) {
            if scopes.contains(&scope) {
                expect(request, StatusCode::SERVICE_UNAVAILABLE).await;
            } else {
                expect_bare(request, StatusCode::FORBIDDEN).await;
            }
        }
    }
    for scope in [LIST_READ, LIST_WRITE, RESOURCE_ADMIN, PDP_READ] {
        for request in list_reads(Some(&token(scope))) {
            expect(request, StatusCode::SERVICE_UNAVAILABLE).await;
        }
    }
}

#[tokio::test]
async fn public_reads_need_no_token() {
    for uri in [
        format!("{RESOURCES}/broker-demo"),
        format!("{RESOURCES}/resourcelist"),
        format!("{RESOURCES}/resourcelist?includeApps=false&pageSize=5"),
        format!("{RESOURCES}/broker-demo/policy"),
    ] {
        // 503 rather than 401: the request went on to the (stopped) access registry.
        expect(
            request(Method::GET, &uri, None, None),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    }
}

/// Mirrors ASP.NET's binding of `bool includeApps`: a value that is no bool is a 400.
#[tokio::test]
async fn resourcelist_binds_altinns_parameters() {
    let body = expect(
        request(
            Method::GET,
            &format!("{RESOURCES}/resourcelist?includeApps=maybe"),
            None,
            None,
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["errors"]["includeApps"],
        serde_json::json!(["The value 'maybe' is not valid."])
    );
}

/// Mirrors `RequestConditionCollectionModelBinder`: weak opaque tags only, Altinn's messages
/// under the action's parameter name.
#[tokio::test]
async fn condition_headers_bind_as_altinns_binder_binds_them() {
    let writer = token(&format!("{RESOURCE_WRITE} {LIST_WRITE}"));
    for (tag, message) in [
        (
            "\"3\"",
            "Invalid If-Match header. Only weak etags are supported.",
        ),
        ("W/\"3\"", "Invalid If-Match header. Invalid etag."),
        ("3", "Invalid If-Match header."),
    ] {
        for (write, _) in writes(Some(&writer)) {
            let body = expect(with(write, "if-match", tag), StatusCode::BAD_REQUEST).await;
            assert_eq!(
                body["errors"]["conditions"],
                serde_json::json!([message]),
                "{tag}: {body}"
            );
        }
    }
    // The paged reads bind them as `requestConditions`.
    let reader = token(LIST_READ);
    let read = request(
        Method::GET,
        &format!("{LISTS}/senders/members"),
        Some(&reader),
        None,
    );
    let body = expect(
        with(read, "if-none-match", "\"1\""),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["errors"]["requestConditions"][0],
        "Invalid If-None-Match header. Only weak etags are supported."
    );
    // Well-formed conditions, and dates that do not parse (ignored), go on.
    for (name, value) in [
        ("if-match", "W/\"eyJ2ZXJzaW9uIjoiMyJ9\""),
        ("if-match", "*"),
        ("if-none-match", "*"),
        ("if-unmodified-since", "yesterday"),
    ] {
        let write = request(
            Method::PUT,
            &format!("{LISTS}/senders"),
            Some(&writer),
            Some(LIST),
        );
        expect(with(write, name, value), StatusCode::SERVICE_UNAVAILABLE).await;
    }
}

#[tokio::test]
async fn a_body_that_does_not_bind_names_its_json_path() {
    let writer = token(&format!("{RESOURCE_WRITE} {LIST_WRITE}"));
    let cases = [
        (
            Method::POST,
            RESOURCES.to_owned(),
            r#"{"version": 1}"#,
            "$.version",
        ),
        (
            Method::POST,
            RESOURCES.to_owned(),
            r#"{"resourceType": "Broker"}"#,
            "$.resourceType",
        ),
        (
            Method::POST,
            RESOURCES.to_owned(),
            r#"{"accessListMode": 2}"#,
            "$.accessListMode",
        ),
        (
            Method::PUT,
            format!("{RESOURCES}/broker-demo/policy"),
            r#"{"rules": [{"subjects": "any-organization", "actions": []}]}"#,
            "$.rules[0].subjects",
        ),
        (
            Method::PUT,
            format!("{LISTS}/senders"),
            r#"{"name": 5}"#,
            "$.name",
        ),
        (
            Method::PUT,
            format!("{LISTS}/senders/members"),
            r#"{"data": "urn"}"#,
            "$.data",
        ),
        // Altinn's members converter takes `data` and nothing else.
        (
            Method::POST,
            format!("{LISTS}/senders/members"),
            r#"{"Data": []}"#,
            "$",
        ),
        (
            Method::POST,
            format!("{LISTS}/senders/members"),
            r#"{"data": [], "more": 1}"#,
            "$",
        ),
        (
            Method::PUT,
            format!("{LISTS}/senders/resource-connections/broker-demo"),
            r#"{"actionFilters": "read"}"#,
            "$.actionFilters",
        ),
    ];
    for (method, uri, body, key) in cases {
        let problem = expect(
            request(method, &uri, Some(&writer), Some(body)),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(problem["errors"][key].is_array(), "{key}: {problem}");
    }
}

#[tokio::test]
async fn a_body_naming_another_policy_resource_than_the_path_is_400() {
    let writer = token(RESOURCE_WRITE);
    let problem = expect(
        request(
            Method::PUT,
            &format!("{RESOURCES}/other/policy"),
            Some(&writer),
            Some(r#"{"resource": "broker-demo", "rules": []}"#),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(problem["errors"]["resource"].is_array(), "{problem}");
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let writer = token(LIST_WRITE);
    let party = "\"urn:altinn:organization:identifier-no:991825827\",";
    let parties = party.repeat(1024 * 1024 / party.len() + 1);
    let body = format!("{{\"data\": [{}]}}", parties.trim_end_matches(','));
    assert!(body.len() > 1024 * 1024);
    expect(
        request(
            Method::PUT,
            &format!("{LISTS}/senders/members"),
            Some(&writer),
            Some(&body),
        ),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

/// Mirrors `AccessListIncludesModelBinder`: unknown values are named, case matters.
#[tokio::test]
async fn an_unknown_include_is_400_naming_it() {
    let reader = token(LIST_READ);
    let problem = expect(
        request(
            Method::GET,
            &format!("{LISTS}?include=Resources&include=members,other"),
            Some(&reader),
            None,
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        problem["errors"]["include"],
        serde_json::json!(["Invalid value: 'Resources'", "Invalid value: 'other'"])
    );
}

/// Mirrors the controller's `[Consumes("application/json")]` and `[Produces]`: another body
/// type is a bare 415 (GETs too), and problems are `application/json`.
#[tokio::test]
async fn access_lists_consume_and_produce_json() {
    let reader = token(LIST_READ);
    let text = with(
        request(Method::GET, LISTS, Some(&reader), None),
        "content-type",
        "text/plain",
    );
    expect_bare(text, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let (response, _) = send(&gateway(), request(Method::GET, LISTS, Some(&reader), None)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        header(&response, "content-type"),
        "application/json; charset=utf-8"
    );
}

/// Mirrors `UpdateAccessList` (`[Consumes("application/json-patch+json")]`, then 501 from the
/// service's owner check on).
#[tokio::test]
async fn patch_takes_a_json_patch() {
    let patch = |scope: &str, content_type: &str| {
        Request::builder()
            .method(Method::PATCH)
            .uri(format!("{LISTS}/senders"))
            .header("authorization", format!("Bearer {}", token(scope)))
            .header("content-type", content_type)
            .body(Body::from("[]"))
            .unwrap()
    };
    let json_patch = "application/json-patch+json";
    expect_bare(
        patch(LIST_WRITE, "application/json"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    expect_bare(patch(LIST_READ, json_patch), StatusCode::FORBIDDEN).await;
    expect(
        patch(LIST_WRITE, json_patch),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
}

/// Mirrors `AccessListMembershipsController`'s policies: memberships need `resource.admin`
/// (`InternalOrPlatform`); `get-by-member` admits platform components only, which Broker has
/// none of. Both are literal paths, not owners.
#[tokio::test]
async fn memberships_are_for_the_registrys_internal_callers() {
    let uri = "/resourceregistry/api/v1/access-lists/memberships\
        ?party=urn:altinn:organization:identifier-no:991825827\
        &resource=urn:altinn:resource:broker-demo";
    expect_bare(
        request(Method::GET, uri, None, None),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let writer = token(&format!("{LIST_WRITE} {RESOURCE_WRITE}"));
    expect_bare(
        request(Method::GET, uri, Some(&writer), None),
        StatusCode::FORBIDDEN,
    )
    .await;
    let admin = token(RESOURCE_ADMIN);
    expect(
        request(Method::GET, uri, Some(&admin), None),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    let by_member = "/resourceregistry/api/v1/access-lists/get-by-member?party=x";
    expect_bare(
        request(Method::GET, by_member, Some(&admin), None),
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn service_owners_need_the_admin_token() {
    let owner = r#"{"orgNumber": "991825827", "orgCode": "digdir", "name": "Digdir"}"#;
    let caller = token(RESOURCE_WRITE);
    for bearer in [None, Some("wrong"), Some(caller.as_str())] {
        expect(
            request(
                Method::POST,
                "/admin/v1/service-owners",
                bearer,
                Some(owner),
            ),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let admin = Some(ADMIN_TOKEN);
    let calls = [
        request(Method::POST, "/admin/v1/service-owners", admin, Some(owner)),
        request(
            Method::GET,
            "/admin/v1/service-owners?pageSize=5",
            admin,
            None,
        ),
        request(
            Method::DELETE,
            "/admin/v1/service-owners/digdir",
            admin,
            None,
        ),
    ];
    for call in calls {
        expect(call, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    let problem = expect(
        request(
            Method::POST,
            "/admin/v1/service-owners",
            admin,
            Some(r#"{"orgNumber": "991825827", "name": "Digdir"}"#),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let missing = problem["errors"]["$"][0].as_str().unwrap_or_default();
    assert!(missing.contains("'orgCode'"), "{problem}");
}
