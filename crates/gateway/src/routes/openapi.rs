//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers' annotations so it
//! cannot drift from the routes. Also the schemas of the two error shapes, which are rendered by
//! `broker_common::Problem` rather than serialised from a type.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::state::AppState;

/// The content type of an RFC 7807 problem.
const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 7807 problem, as every error except the token endpoint's is answered.
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // Only describes the shape `broker_common::Problem` renders; never built.
pub struct ProblemDetails {
    /// A URI naming the kind of problem (the RFC 9110 section of the status, or
    /// `urn:altinn:error:<code>` for the Resource Registry's coded problems).
    r#type: String,
    /// The status's reason phrase, or a coded problem's text.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong this time.
    detail: Option<String>,
    /// Altinn's error code, `BRO-nnnnn` or `RR-nnnnn`.
    code: Option<String>,
    /// The request id (`x-request-id`), for finding the request in logs.
    #[schema(rename = "traceId")]
    trace_id: Option<String>,
    /// The status described once more, on coded problems.
    #[schema(rename = "statusDescription")]
    status_description: Option<String>,
    /// Field name → messages, for validation failures.
    errors: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// The Resource Registry's validation errors: `{code, title, paths}` each.
    #[schema(rename = "validationErrors")]
    validation_errors: Option<Vec<serde_json::Value>>,
}

/// An RFC 6749 §5.2 error, as the token endpoint answers.
#[derive(ToSchema)]
#[allow(dead_code)] // Only describes the shape `broker_common::Problem` renders; never built.
pub struct OAuthError {
    /// `invalid_request`, `invalid_grant`, `invalid_scope`, `invalid_client` or
    /// `unsupported_grant_type`.
    error: String,
    /// What went wrong.
    error_description: String,
}

// utoipa describes a `Vec<u8>` body as a JSON array of numbers, which is not what goes over the
// wire and makes client generators send and expect JSON; this says `string`/`binary` instead.
/// The file's bytes, as they are: the body itself.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Only describes the bytes a handler streams; never built.
pub struct FileBytes(Vec<u8>);

/// The OpenAPI document of the gateway.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Broker",
        description = "Managed file transfer, compatible with the Altinn 3 Broker API."
    ),
    paths(
        super::health::live,
        super::health::ready,
        super::token::issue_token,
        super::token::metadata,
        super::token::jwks,
        super::token::exchange,
        super::admin::create_client,
        super::admin::list_clients,
        super::admin::get_client,
        super::admin::delete_client,
        super::admin::add_key,
        super::admin::remove_key,
        super::service_owners::create_service_owner,
        super::service_owners::list_service_owners,
        super::service_owners::delete_service_owner,
        super::resources::get_resource,
        super::resources::list_resources,
        super::resources::create_resource,
        super::resources::update_resource,
        super::resources::delete_resource,
        super::resources::get_policy,
        super::resources::put_policy,
        super::access_lists::list_access_lists,
        super::access_lists::get_access_list,
        super::access_lists::upsert_access_list,
        super::access_lists::delete_access_list,
        super::access_lists::patch_access_list,
        super::access_lists::list_members,
        super::access_lists::replace_members,
        super::access_lists::add_members,
        super::access_lists::remove_members,
        super::access_lists::list_connections,
        super::access_lists::connect_resource,
        super::access_lists::disconnect_resource,
        super::access_list_memberships::memberships,
        super::access_list_memberships::get_by_member,
        super::filetransfer::initialize,
        super::filetransfer::upload::upload,
        super::filetransfer::multipart::initialize_and_upload,
        super::filetransfer::overview,
        super::filetransfer::details,
        super::filetransfer::search::search,
        super::filetransfer::download::download,
        super::filetransfer::confirm_download,
        super::filetransfer::tus::tus_options,
        super::filetransfer::tus::tus_create,
        super::filetransfer::tus::tus_head,
        super::filetransfer::tus::tus_patch,
        super::filetransfer::tus::tus_terminate,
        super::filetransfer::settings::register_service_owner,
        super::filetransfer::settings::get_service_owner,
        super::filetransfer::settings::put_resource_settings,
        super::filetransfer::settings::get_resource_settings,
        super::filetransfer::statistics::monthly_statistics,
        super::filetransfer::malware::malware_scan_result,
        super::events::subscriptions::create,
        super::events::subscriptions::list,
        super::events::subscriptions::get,
        super::events::subscriptions::delete,
        super::events::pull::pull,
        super::events::dead_letters::list,
        super::events::dead_letters::redrive,
        super::whoami::whoami,
        openapi_json,
    ),
    components(schemas(
        ProblemDetails,
        OAuthError,
        super::filetransfer::wire::FileTransferStatus,
        super::filetransfer::wire::RecipientFileTransferStatus,
        super::filetransfer::wire::SearchRole,
    )),
    modifiers(
        &SecuritySchemes,
        &ProblemResponses,
        &AltinnAnswers,
        &HeaderParameters,
        &UniqueOperationIds
    ),
    tags(
        (name = "token", description = "Maskinporten-style tokens and Altinn's token exchange"),
        (name = "admin",
            description = "The client and service-owner registries and dead letters, for the operator"),
        (name = "resources", description = "The Resource Registry's resources and their policies"),
        (name = "access-lists", description = "The Resource Registry's access lists"),
        (name = "filetransfer", description = "Altinn Broker v1 file transfers"),
        (name = "broker-settings",
            description = "Altinn Broker v1 service-owner and resource settings, statistics"),
        (name = "events", description = "Altinn Events: webhook subscriptions and the pull"),
        (name = "auth", description = "What the gateway concludes from a token"),
        (name = "health", description = "Liveness and readiness probes"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Adds the two bearer credentials: access tokens (JWT) and the operator's admin token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from `POST /token` or the exchange"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's admin token (`BROKER_ADMIN_TOKEN`)"))
                    .build(),
            ),
        );
    }
}

/// The problem conventions, applied once instead of in every annotation: `Problem` bodies are
/// `application/problem+json`; an operation with parameters or a body answers 400 when one does
/// not bind, and one with a body (on Broker's own APIs) 415 for another content type; every
/// forwarding route may answer 503 while its service is down, and every authenticated operation
/// 429 when rate limits are configured. The tus routes (see [`tus`]) answer 503 as text and
/// are never rate-limited.
struct ProblemResponses;

/// Routes the gateway answers itself; `/health/ready` documents its own 503.
const LOCAL_PATHS: [&str; 3] = ["/health", "/health/ready", "/openapi.json"];

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let problem = Ref::from_schema_name("Problem");
        let unavailable = ResponseBuilder::new()
            .description("A service Broker depends on did not answer; try again shortly")
            .content(PROBLEM_JSON, Content::new(Some(problem.clone())))
            .build();
        let unavailable_text = ResponseBuilder::new()
            .description("A service Broker depends on did not answer; try again shortly")
            .content(
                "text/plain",
                Content::new(Some(utoipa::openapi::ObjectBuilder::new().schema_type(
                    utoipa::openapi::schema::SchemaType::Type(utoipa::openapi::Type::String),
                ))),
            )
            .build();
        let limited = ResponseBuilder::new()
            .description(
                "The caller sent more requests than the operation's rate limit allows (only \
                when rate limits are configured); try again after `Retry-After`",
            )
            .content(PROBLEM_JSON, Content::new(Some(problem.clone())))
            .header(
                "Retry-After",
                utoipa::openapi::HeaderBuilder::new()
                    .schema(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::Type::Integer)
                            .minimum(Some(0)),
                    )
                    .description(Some("Seconds until the limit lets a request through again"))
                    .build(),
            )
            .build();
        let unbound = ResponseBuilder::new()
            .description("A parameter or the body does not bind (a validation problem)")
            .content(PROBLEM_JSON, Content::new(Some(problem.clone())))
            .build();
        let unsupported = ResponseBuilder::new()
            .description("The body is not of the content type the operation takes")
            .content(PROBLEM_JSON, Content::new(Some(problem.clone())))
            .build();
        let authenticated_by_default = openapi.security.as_ref().is_some_and(|s| !s.is_empty());
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (_, operation) in operations_mut(item) {
                let Some(operation) = operation else { continue };
                let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let takes_body = operation.request_body.is_some();
                let responses = &mut operation.responses.responses;
                // The tus routes bind nothing ASP.NET-style; each documents its own 400.
                if (has_parameters || takes_body) && !tus(path) {
                    responses
                        .entry("400".to_owned())
                        .or_insert_with(|| unbound.clone().into());
                }
                if takes_body
                    && !ALTINN_PREFIXES
                        .iter()
                        .any(|prefix| path.starts_with(prefix))
                {
                    responses
                        .entry("415".to_owned())
                        .or_insert_with(|| unsupported.clone().into());
                }
                for response in responses.values_mut() {
                    if let RefOr::T(response) = response
                        && response.content.get("application/json").is_some_and(
                            |json| matches!(&json.schema, Some(RefOr::Ref(r)) if *r == problem),
                        )
                        && let Some(json) = response.content.shift_remove("application/json")
                    {
                        response.content.insert(PROBLEM_JSON.to_owned(), json);
                    }
                }
                if tus(path) {
                    responses
                        .entry("503".to_owned())
                        .or_insert_with(|| unavailable_text.clone().into());
                } else if !LOCAL_PATHS.contains(&path.as_str()) {
                    responses
                        .entry("503".to_owned())
                        .or_insert_with(|| unavailable.clone().into());
                }
                let authenticated = operation
                    .security
                    .as_ref()
                    .map_or(authenticated_by_default, |s| !s.is_empty());
                // No rate limit names a tus operation.
                if authenticated && !tus(path) {
                    responses
                        .entry("429".to_owned())
                        .or_insert_with(|| limited.clone().into());
                }
            }
        }
    }
}

/// The path prefixes of the APIs whose answers are Altinn's (ASP.NET Core's).
const ALTINN_PREFIXES: [&str; 4] = [
    "/broker/",
    "/resourceregistry/",
    "/events/",
    "/authentication/",
];

/// Altinn's broker actions without `[Produces("application/json")]`: their problems stay
/// `application/problem+json` and they take any `Accept` (method, path).
const PROBLEM_JSON_ACTIONS: [(&str, &str); 4] = [
    (
        "get",
        "/broker/api/v1/filetransfer/{fileTransferId}/download",
    ),
    ("post", "/broker/api/v1/serviceowner"),
    ("get", "/broker/api/v1/statistics/monthly"),
    ("post", "/broker/api/v1/webhooks/malwarescanresults"),
];

/// The prefixes of the paths whose routes check `Content-Type` whatever the method
/// (`negotiation::consumes_json` on the whole router): another content type is a 415.
const CONSUMING_PREFIXES: [&str; 2] = [
    "/resourceregistry/api/v1/access-lists/",
    "/events/api/v1/events",
];

/// The content type Altinn's servers send problems of `action` as, when not
/// `application/problem+json`: ASP.NET's `[Produces]` gives the action's own type to every
/// object it answers (the routes' `negotiation::problems_as*` layers).
fn problems_as(method: &str, path: &str) -> Option<&'static str> {
    let produces_json = (path.starts_with("/broker/")
        && !tus(path)
        && !PROBLEM_JSON_ACTIONS.contains(&(method, path)))
        || (path.starts_with("/resourceregistry/api/v1/resource") && !path.ends_with("/policy"))
        || path.starts_with("/resourceregistry/api/v1/access-lists")
        || path.starts_with("/events/api/v1/subscriptions");
    if path == "/events/api/v1/events" {
        Some("application/cloudevents+json")
    } else {
        produces_json.then_some("application/json")
    }
}

/// A path item's operations by their lower-case method, each there or not.
fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> [(&'static str, &mut Option<utoipa::openapi::path::Operation>); 7] {
    [
        ("get", &mut item.get),
        ("post", &mut item.post),
        ("put", &mut item.put),
        ("patch", &mut item.patch),
        ("delete", &mut item.delete),
        ("head", &mut item.head),
        ("options", &mut item.options),
    ]
}

/// Whether `path` is one of the tus upload routes, which answer as tusdotnet does: errors as
/// plain text, no `Accept` or `Content-Type` check of ASP.NET's (their own 415 is documented
/// where it is).
fn tus(path: &str) -> bool {
    path.starts_with(super::filetransfer::tus::BASE)
}

/// What Altinn's ASP.NET pipeline answers, stated once for every operation of its APIs: a
/// missing or bad token is 401 with no body and a bearer challenge, a missing scope 403 with no
/// body; the actions with `[Produces]` send problems as the type they produce, and the broker's
/// JSON-producing ones answer an `Accept` they cannot satisfy with 406; an action that takes a
/// body (or sits behind a `[Consumes]` check) answers another content type with 415.
struct AltinnAnswers;

impl Modify for AltinnAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let challenge = utoipa::openapi::HeaderBuilder::new()
            .schema(
                utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String),
            )
            .description(Some(
                "`Bearer`, or `Bearer error=\"invalid_token\", error_description=\"…\"`",
            ))
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !ALTINN_PREFIXES
                .iter()
                .any(|prefix| path.starts_with(prefix))
            {
                continue;
            }
            for (method, operation) in operations_mut(item) {
                let Some(operation) = operation else { continue };
                let problem_type = problems_as(method, path);
                let takes_body = operation.request_body.is_some();
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    // A failed authentication or authorization has no body, even where a coded
                    // problem may follow it later (the description says which): a document
                    // cannot make a body optional, and most such answers have none.
                    if status == "401" || status == "403" {
                        response.content.clear();
                    }
                    if status == "401" {
                        response
                            .headers
                            .insert("WWW-Authenticate".to_owned(), challenge.clone());
                    }
                    // The rate limit answers before any route, as a plain problem.
                    if status == "429" {
                        continue;
                    }
                    if let Some(problem_type) = problem_type
                        && let Some(problem) = response.content.shift_remove(PROBLEM_JSON)
                    {
                        response.content.insert(problem_type.to_owned(), problem);
                    }
                }
                if problem_type == Some("application/json") {
                    responses.entry("406".to_owned()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(
                                "The `Accept` header names nothing the action produces: \
                                Altinn's text, no content type",
                            )
                            .build()
                            .into()
                    });
                }
                if !tus(path)
                    && (takes_body
                        || CONSUMING_PREFIXES
                            .iter()
                            .any(|prefix| path.starts_with(prefix)))
                {
                    responses.entry("415".to_owned()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(
                                "The content type is not the one the action takes; no body",
                            )
                            .build()
                            .into()
                    });
                }
            }
        }
    }
}

/// An entity tag list as `If-Match` and `If-None-Match` take it (RFC 9110 §13.1): `*`, or
/// weak tags (the only kind the server writes), separated by commas; which tags are the
/// server's own is the `entity-tags` format.
const ETAG_LIST: &str = r#"^(\*|W/"[A-Za-z0-9_-]+"( *, *W/"[A-Za-z0-9_-]+")*)$"#;

/// What the handlers' header parameters say wrongly when read from their Rust types: a header
/// is absent or a text, never `null` (an `Option` makes utoipa allow `null`, which a client then
/// sends as the text `null`), and a precondition header holds entity tags, not any text.
struct HeaderParameters;

impl Modify for HeaderParameters {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::schema::{Schema, SchemaFormat, SchemaType, Type};
        for item in openapi.paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                let parameters = operation
                    .iter_mut()
                    .flat_map(|operation| operation.parameters.iter_mut().flatten())
                    .filter(|parameter| parameter.parameter_in == ParameterIn::Header);
                for parameter in parameters {
                    let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema else {
                        continue;
                    };
                    if matches!(&schema.schema_type, SchemaType::Array(types)
                        if types.contains(&Type::String))
                    {
                        schema.schema_type = SchemaType::Type(Type::String);
                    }
                    if parameter.name.eq_ignore_ascii_case("if-match")
                        || parameter.name.eq_ignore_ascii_case("if-none-match")
                    {
                        schema.pattern = Some(ETAG_LIST.to_owned());
                        schema.format = Some(SchemaFormat::Custom("entity-tags".to_owned()));
                    }
                }
            }
        }
    }
}

/// Makes every `operationId` unique (a handler serving two methods, or two handlers of the same
/// name, would share one, which OpenAPI forbids and client generators choke on): a handler
/// serving several methods of one path gets `<method>_<path's last fixed segment>`
/// (`post_policy`), handlers of one name on several paths get the segment after their name
/// (`list_subscriptions`).
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut paths_of = std::collections::HashMap::<String, Vec<String>>::new();
        for (path, item) in &openapi.paths.paths {
            for operation in [
                &item.get,
                &item.post,
                &item.put,
                &item.patch,
                &item.delete,
                &item.head,
                &item.options,
            ]
            .into_iter()
            .flatten()
            {
                if let Some(id) = &operation.operation_id {
                    paths_of.entry(id.clone()).or_default().push(path.clone());
                }
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let segment = path
                .split('/')
                .rev()
                .find(|segment| !segment.is_empty() && !segment.starts_with('{'))
                .unwrap_or("api")
                .replace('-', "_");
            for (method, operation) in operations_mut(item) {
                let Some(operation) = operation else { continue };
                let Some(id) = operation.operation_id.clone() else {
                    continue;
                };
                let paths = paths_of.get(&id).map(Vec::as_slice).unwrap_or_default();
                if paths.len() < 2 {
                    continue;
                }
                let same_path = paths.iter().all(|other| other == path);
                operation.operation_id = Some(if same_path {
                    format!("{method}_{segment}")
                } else {
                    format!("{id}_{segment}")
                });
            }
        }
    }
}

/// The OpenAPI route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3 document", body = Object)))]
pub async fn openapi_json() -> Json<&'static serde_json::Value> {
    Json(document())
}

/// The document with the server's rules stated, built once.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        // Serialising the generated document cannot fail: it is maps, lists and strings.
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        super::openapi_rules::apply(&mut doc);
        doc
    })
}
