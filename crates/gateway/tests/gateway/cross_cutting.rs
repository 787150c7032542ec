//! What every route shares: health, problem shapes for unknown routes and methods, request ids.

use axum::body::Body;
use http::StatusCode;
use serde_json::json;

use crate::support::{gateway, get, header, send, trace_id_of};

#[tokio::test]
async fn liveness_needs_no_backend() {
    let (response, body) = send(&gateway(), get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body,
        json!("Environment properly configured"),
        "Altinn's text"
    );
    assert!(header(&response, "content-type").starts_with("text/plain"));
}

#[tokio::test]
async fn readiness_names_the_backends_that_are_down() {
    let (response, body) = send(
        &gateway(),
        get("/health/ready").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({
            "status": "Unhealthy",
            "checks": {
                "token": "Unhealthy",
                "access": "Unhealthy",
                "filetransfer": "Unhealthy",
                "events": "Unhealthy",
            },
        })
    );
}

#[tokio::test]
async fn unknown_route_is_a_404_problem_with_the_request_id() {
    let (response, body) = send(&gateway(), get("/nowhere").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert_eq!(body["status"], 404);
    assert_eq!(body["title"], "Not Found");
    assert_eq!(
        body["type"],
        "https://tools.ietf.org/html/rfc9110#section-15.5.5"
    );
    let request_id = header(&response, "x-request-id");
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    assert_eq!(body["traceId"], trace_id_of(request_id));
}

/// ASP.NET's routing answers an unknown path or method of Altinn's APIs with no body.
#[tokio::test]
async fn unknown_routes_of_altinns_apis_have_no_body() {
    for (method, path) in [
        ("GET", "/broker/api/v1/nowhere"),
        ("DELETE", "/broker/api/v1/filetransfer"),
        ("GET", "/resourceregistry/api/v1/nowhere"),
        ("PUT", "/events/api/v1/events"),
    ] {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let (response, body) = send(&gateway(), request).await;
        assert!(response.status().is_client_error(), "{method} {path}");
        assert_eq!(body, serde_json::Value::Null, "{method} {path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "cache-control"), "no-store");
    }
}

#[tokio::test]
async fn wrong_method_is_a_405_problem_listing_allowed_methods() {
    let request = http::Request::delete("/health")
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&gateway(), request).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert_eq!(body["status"], 405);
    assert!(header(&response, "allow").contains("GET"));
}

#[tokio::test]
async fn a_client_request_id_is_kept_and_becomes_the_trace_id() {
    let request = get("/nowhere")
        .header("x-request-id", "client-chosen-id")
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&gateway(), request).await;
    assert_eq!(header(&response, "x-request-id"), "client-chosen-id");
    // Not a UUID: the trace id is the request id as it came, as ASP.NET's is the request's
    // own identifier when nothing traces it.
    assert_eq!(body["traceId"], "client-chosen-id");
}

#[tokio::test]
async fn a_bad_query_is_a_problem_not_plain_text() {
    let request = get("/authentication/api/v1/exchange/maskinporten?test=maybe")
        .header("authorization", "Bearer x")
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&gateway(), request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert_eq!(
        body["errors"]["test"][0], "The value 'maybe' is not valid.",
        "{body}"
    );
    assert!(body["traceId"].is_string());
}

#[tokio::test]
async fn openapi_documents_every_route_and_both_credentials() {
    let (response, body) = send(
        &gateway(),
        get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/token",
        "/.well-known/oauth-authorization-server",
        "/jwk",
        "/authentication/api/v1/exchange/{tokenProvider}",
        "/admin/v1/clients",
        "/admin/v1/clients/{clientId}",
        "/admin/v1/clients/{clientId}/keys",
        "/admin/v1/clients/{clientId}/keys/{kid}",
        "/admin/v1/service-owners",
        "/admin/v1/service-owners/{orgCode}",
        "/resourceregistry/api/v1/resource",
        "/resourceregistry/api/v1/resource/resourcelist",
        "/resourceregistry/api/v1/resource/{id}",
        "/resourceregistry/api/v1/resource/{id}/policy",
        "/resourceregistry/api/v1/access-lists/{owner}",
        "/resourceregistry/api/v1/access-lists/{owner}/{identifier}",
        "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
        "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/resource-connections",
        "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/resource-connections/{resourceIdentifier}",
        "/resourceregistry/api/v1/access-lists/memberships",
        "/resourceregistry/api/v1/access-lists/get-by-member",
        "/api/v1/whoami",
        "/health",
        "/health/ready",
        "/openapi.json",
    ] {
        assert!(body["paths"][path].is_object(), "{path} is not documented");
    }
    let components = &body["components"];
    assert_eq!(
        components["securitySchemes"]["bearer"]["bearerFormat"],
        "JWT"
    );
    assert!(components["securitySchemes"]["admin"].is_object());
    assert!(components["schemas"]["Problem"]["properties"]["traceId"].is_object());
    // Forwarding routes document the answer while their service is down; liveness does not.
    assert!(body["paths"]["/jwk"]["get"]["responses"]["503"].is_object());
    assert!(body["paths"]["/health"]["get"]["responses"]["503"].is_null());
    let unauthorized = &body["paths"]["/api/v1/whoami"]["get"]["responses"]["401"];
    assert!(unauthorized["content"]["application/problem+json"].is_object());
}

/// The document is valid OpenAPI as generators read it: every `operationId` once, every `$ref`
/// naming a schema that exists; and it says what goes over the wire: Altinn's routes answer a
/// bad token with no body and a challenge, a JSON-producing broker action sends its problems
/// as `application/json` and refuses an unacceptable `Accept` with 406.
#[tokio::test]
async fn openapi_ids_are_unique_refs_resolve_and_altinns_answers_are_described() {
    let (_, body) = send(
        &gateway(),
        get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    let mut ids = std::collections::HashSet::new();
    for operations in body["paths"].as_object().expect("paths").values() {
        for operation in operations.as_object().expect("operations").values() {
            if let Some(id) = operation["operationId"].as_str() {
                assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            }
        }
    }
    let text = body.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(
            body["components"]["schemas"][name].is_object(),
            "$ref to the missing schema {name}"
        );
    }
    let search = &body["paths"]["/broker/api/v1/filetransfer"]["get"]["responses"];
    assert!(
        search["401"]["headers"]["WWW-Authenticate"].is_object(),
        "{search}"
    );
    assert!(
        search["403"]["content"].is_null(),
        "a missing scope has no body: {search}"
    );
    assert!(
        search["400"]["content"]["application/json"].is_object(),
        "{search}"
    );
    assert!(search["406"].is_object(), "{search}");
    let download =
        &body["paths"]["/broker/api/v1/filetransfer/{fileTransferId}/download"]["get"]["responses"];
    assert!(
        download["404"]["content"]["application/problem+json"].is_object(),
        "{download}"
    );
    assert!(
        download["406"].is_null(),
        "no [Produces] on download: {download}"
    );
}

/// The file-transfer operations a client generator reads as they go over the wire: a file is the
/// body itself (`string`/`binary`, not a JSON array of numbers), whole (200) or a range (206);
/// the multipart form names its parts; confirm and the service owner's registration answer with
/// no body; statuses are the enums and times date-times.
#[tokio::test]
async fn openapi_describes_the_file_transfer_wire() {
    let (_, body) = send(
        &gateway(),
        get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    let paths = &body["paths"];
    let binary = json!({"type": "string", "format": "binary"});
    let bytes = |content: &serde_json::Value| {
        let mut schema = content["application/octet-stream"]["schema"].clone();
        if let Some(schema) = schema.as_object_mut() {
            schema.remove("description");
        }
        schema
    };
    let upload = &paths["/broker/api/v1/filetransfer/{fileTransferId}/upload"]["post"];
    assert_eq!(bytes(&upload["requestBody"]["content"]), binary, "{upload}");
    let download = &paths["/broker/api/v1/filetransfer/{fileTransferId}/download"]["get"];
    for status in ["200", "206"] {
        let response = &download["responses"][status];
        assert_eq!(bytes(&response["content"]), binary, "{status}: {response}");
    }
    let form = &paths["/broker/api/v1/filetransfer/upload"]["post"]["requestBody"];
    let form = &form["content"]["multipart/form-data"]["schema"];
    assert_eq!(
        form["properties"]["FileTransfer"]["format"], "binary",
        "{form}"
    );
    assert_eq!(
        form["properties"]["Metadata"]["$ref"], "#/components/schemas/FileTransferInitialize",
        "{form}"
    );
    let confirm = &paths["/broker/api/v1/filetransfer/{fileTransferId}/confirmdownload"]["post"];
    assert!(
        confirm["responses"]["204"]["content"].is_null(),
        "{confirm}"
    );
    let register = &paths["/broker/api/v1/serviceowner"]["post"];
    assert!(
        register["responses"]["200"]["content"].is_null(),
        "{register}"
    );

    let schemas = &body["components"]["schemas"];
    let fields = &schemas["FileTransferFields"]["properties"];
    assert_eq!(
        fields["fileTransferStatus"]["$ref"], "#/components/schemas/FileTransferStatus",
        "{fields}"
    );
    let recipient = &schemas["RecipientFileTransferStatusDetails"]["properties"];
    assert_eq!(
        recipient["currentRecipientFileTransferStatusCode"]["$ref"],
        "#/components/schemas/RecipientFileTransferStatus",
        "{recipient}"
    );
    assert_eq!(
        recipient["currentRecipientFileTransferStatusChanged"]["format"], "date-time",
        "{recipient}"
    );
    let published = &schemas["FileTransferOverview"]["allOf"][1];
    assert_eq!(published["required"], json!(["published"]), "{published}");
}
