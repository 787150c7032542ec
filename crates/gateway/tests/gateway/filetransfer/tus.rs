//! The tus routes against the recording stand-in of the service: what the gateway reads from
//! the tus headers and sends, and how it answers as tusdotnet does (`Tus-Resumable` on every
//! answer but a failed authentication's, errors as plain text, a caller who may not see the
//! transfer told nothing but the service's 404); and the expired tokens it lets through.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use broker_gateway::TokenGrace;
use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::double::{Double, PARTIAL_ID, TUS_LENGTH, TUS_MAX_SIZE};
use super::{ID, READ, WRITE, token};
use crate::support::{header, maskinporten_claims, send, sign};

const TUS: &str = "/broker/api/v1/filetransfer/upload/tus";
const EXPIRES: &str = "Wed, 19 Aug 2026 11:40:51 GMT";
/// A transfer the double does not know.
const UNKNOWN: &str = "11111111-2222-4333-8444-555555555555";

/// A tus request with `Tus-Resumable: 1.0.0`, the `bearer`, and `headers`.
fn tus(
    method: Method,
    uri: &str,
    bearer: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {bearer}"))
        .header("tus-resumable", "1.0.0");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body).unwrap()
}

/// The upload URL of the transfer `id`.
fn upload(id: &str) -> String {
    format!("{TUS}/{id}")
}

/// A writer's token that expired `ago` seconds ago.
fn expired(ago: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let mut claims = maskinporten_claims(WRITE);
    claims["iat"] = json!(now - ago - 120);
    claims["exp"] = json!(now - ago);
    sign(&claims)
}

/// Checks a plain-text error answer of `status` saying `text`.
fn assert_text(answer: &(Response<()>, serde_json::Value), status: StatusCode, text: &str) {
    let (response, body) = answer;
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(
        header(response, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(header(response, "tus-resumable"), "1.0.0");
    assert_eq!(body, &json!(text));
}

#[tokio::test]
async fn options_says_what_the_server_supports_and_the_largest_upload() {
    let (_, app) = Double::start().await;
    let request = tus(
        Method::OPTIONS,
        &upload(ID),
        &token(WRITE),
        &[],
        Body::empty(),
    );
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "tus-resumable"), "1.0.0");
    assert_eq!(header(&response, "tus-version"), "1.0.0");
    assert_eq!(
        header(&response, "tus-extension"),
        "creation,creation-with-upload,termination,checksum,concatenation,expiration"
    );
    assert_eq!(
        header(&response, "tus-checksum-algorithm"),
        "md5,sha1,sha256"
    );
    assert_eq!(header(&response, "tus-max-size"), TUS_MAX_SIZE.to_string());
    // Another's transfer: still 204, without a size.
    let request = tus(
        Method::OPTIONS,
        &upload(UNKNOWN),
        &token(WRITE),
        &[],
        Body::empty(),
    );
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.headers().get("tus-max-size").is_none());
}

#[tokio::test]
async fn a_creation_forwards_length_and_metadata_and_answers_where_the_upload_is() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    let headers = [
        ("upload-length", "10"),
        ("upload-metadata", "filename YS50eHQ=,filetype"),
    ];
    let request = tus(Method::POST, &upload(ID), &writer, &headers, Body::empty());
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "location"), upload(ID));
    assert_eq!(header(&response, "upload-expires"), EXPIRES);
    assert_eq!(header(&response, "tus-resumable"), "1.0.0");
    assert!(response.headers().get("upload-offset").is_none());
    let seen = double.seen.lock().unwrap();
    let created = &seen.tus_creates[0];
    assert_eq!(created.file_transfer_id, ID);
    assert_eq!(created.length, Some(10));
    assert_eq!(created.metadata, "filename YS50eHQ=,filetype");
    assert!(!created.partial && created.final_partials.is_empty());
    assert_eq!(seen.bearers, [writer]);
}

#[tokio::test]
async fn partial_uploads_are_created_below_the_transfer_and_joined_by_url_or_path() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    let request = tus(
        Method::POST,
        &upload(ID),
        &writer,
        &[("upload-length", "4"), ("upload-concat", "partial")],
        Body::empty(),
    );
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let partial = format!("{}/partial/{PARTIAL_ID}", upload(ID));
    assert_eq!(header(&response, "location"), partial);
    let other = "ffeeddccbbaa99887766554433221100";
    let references = format!(
        "final;https://broker.example{partial} {}/partial/{}",
        upload(ID),
        other.to_uppercase()
    );
    let request = tus(
        Method::POST,
        &upload(ID),
        &writer,
        &[("upload-concat", &references)],
        Body::empty(),
    );
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "location"), upload(ID));
    let seen = double.seen.lock().unwrap();
    assert!(seen.tus_creates[0].partial);
    assert_eq!(seen.tus_creates[1].final_partials, [PARTIAL_ID, other]);
    assert_eq!(seen.tus_creates[1].length, None);
}

#[tokio::test]
async fn a_creation_with_bytes_writes_them_at_offset_zero() {
    let (double, app) = Double::start().await;
    let request = tus(
        Method::POST,
        &upload(ID),
        &token(WRITE),
        &[
            ("upload-length", "10"),
            ("content-type", "application/offset+octet-stream"),
        ],
        Body::from("hello"),
    );
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "upload-offset"), "5");
    assert_eq!(header(&response, "upload-expires"), EXPIRES);
    let seen = double.seen.lock().unwrap();
    assert_eq!(seen.tus_patches.len(), 1);
    assert_eq!(seen.tus_patches[0].offset, 0);
    assert_eq!(seen.tus_offset, 5);
}

#[tokio::test]
async fn head_answers_the_durable_offset_without_a_body() {
    let (_, app) = Double::start().await;
    let writer = token(WRITE);
    let request = tus(Method::HEAD, &upload(ID), &writer, &[], Body::empty());
    let (response, body) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "upload-offset"), "0");
    assert_eq!(header(&response, "upload-length"), TUS_LENGTH.to_string());
    assert_eq!(header(&response, "upload-metadata"), "filename YS50eHQ=");
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert!(response.headers().get("upload-concat").is_none());
    assert!(body.is_null());
    let partial = format!("{}/partial/{PARTIAL_ID}", upload(ID));
    let request = tus(Method::HEAD, &partial, &writer, &[], Body::empty());
    let (response, _) = send(&app, request).await;
    assert_eq!(header(&response, "upload-concat"), "partial");
    let request = tus(Method::HEAD, &upload(UNKNOWN), &writer, &[], Body::empty());
    let (response, body) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&response, "tus-resumable"), "1.0.0");
    assert!(body.is_null(), "{body}");
}

#[tokio::test]
async fn a_patch_streams_its_bytes_with_offset_and_checksum_and_answers_the_new_offset() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    let bytes = ("content-type", "application/offset+octet-stream");
    let md5 = ("upload-checksum", "md5 XUFAKrxLKna5cZ2REBfFkg==");
    let request = tus(
        Method::PATCH,
        &upload(ID),
        &writer,
        &[bytes, ("upload-offset", "0"), md5],
        Body::from("hello"),
    );
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "upload-offset"), "5");
    assert_eq!(header(&response, "upload-expires"), EXPIRES);
    assert_eq!(header(&response, "tus-resumable"), "1.0.0");
    {
        let seen = double.seen.lock().unwrap();
        let start = &seen.tus_patches[0];
        assert_eq!(start.checksum_algorithm, "md5");
        assert_eq!(start.checksum.len(), 16);
        assert_eq!(start.partial_id, "");
    }
    // The service's refusals reach the client as tusdotnet's text.
    let request = tus(
        Method::PATCH,
        &upload(ID),
        &writer,
        &[bytes, ("upload-offset", "0")],
        Body::from("again"),
    );
    assert_text(
        &send(&app, request).await,
        StatusCode::CONFLICT,
        "Offset does not match file. File offset: 5. Request offset: 0",
    );
    let zeros = ("upload-checksum", "md5 AAAAAAAAAAAAAAAAAAAAAA==");
    let request = tus(
        Method::PATCH,
        &upload(ID),
        &writer,
        &[bytes, ("upload-offset", "5"), zeros],
        Body::from("world"),
    );
    assert_text(
        &send(&app, request).await,
        StatusCode::from_u16(460).unwrap(),
        "Header Upload-Checksum does not match the checksum of the file",
    );
    // The last bytes: the upload no longer expires.
    let request = tus(
        Method::PATCH,
        &upload(ID),
        &writer,
        &[bytes, ("upload-offset", "5")],
        Body::from("world"),
    );
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "upload-offset"), "10");
    assert!(response.headers().get("upload-expires").is_none());
}

#[tokio::test]
async fn delete_terminates_the_named_upload() {
    let (double, app) = Double::start().await;
    let partial = format!("{}/partial/{PARTIAL_ID}", upload(ID));
    let request = tus(Method::DELETE, &partial, &token(WRITE), &[], Body::empty());
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "tus-resumable"), "1.0.0");
    let seen = double.seen.lock().unwrap();
    assert_eq!(seen.tus_terminations[0].file_transfer_id, ID);
    assert_eq!(seen.tus_terminations[0].partial_id, PARTIAL_ID);
}

#[tokio::test]
async fn the_gateways_refusals_are_tusdotnets_once_the_transfer_is_the_callers() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    // No Tus-Resumable.
    let request = Request::patch(upload(ID))
        .header("authorization", format!("Bearer {writer}"))
        .body(Body::empty())
        .unwrap();
    let answer = send(&app, request).await;
    assert_text(
        &answer,
        StatusCode::PRECONDITION_FAILED,
        "Tus version  is not supported. Supported versions: 1.0.0",
    );
    assert_eq!(header(&answer.0, "tus-version"), "1.0.0");
    let patch = |headers: &[(&str, &str)]| {
        tus(
            Method::PATCH,
            &upload(ID),
            &writer,
            headers,
            Body::from("x"),
        )
    };
    assert_text(
        &send(&app, patch(&[("content-type", "application/octet-stream")])).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Content-Type application/octet-stream is invalid. Must be application/offset+octet-stream",
    );
    let bytes = ("content-type", "application/offset+octet-stream");
    assert_text(
        &send(&app, patch(&[bytes])).await,
        StatusCode::BAD_REQUEST,
        "Missing Upload-Offset header",
    );
    assert_text(
        &send(
            &app,
            patch(&[
                bytes,
                ("upload-offset", "0"),
                ("upload-checksum", "crc32 AA=="),
            ]),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Unsupported checksum algorithm. Supported algorithms are: md5,sha1,sha256",
    );
    let create =
        |headers: &[(&str, &str)]| tus(Method::POST, &upload(ID), &writer, headers, Body::empty());
    assert_text(
        &send(&app, create(&[])).await,
        StatusCode::BAD_REQUEST,
        "Missing Upload-Length header",
    );
    assert_text(
        &send(
            &app,
            create(&[("upload-length", "1"), ("upload-metadata", "a b c")]),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Header Upload-Metadata: a key and its value must be separated by one space",
    );
    let elsewhere = format!("final;{}/partial/{PARTIAL_ID}", upload(UNKNOWN));
    assert_text(
        &send(&app, create(&[("upload-concat", &elsewhere)])).await,
        StatusCode::BAD_REQUEST,
        "Header Upload-Concat: Header is invalid",
    );
    let unnamed = format!("{}/partial/xyz", upload(ID));
    let request = tus(Method::HEAD, &unnamed, &writer, &[], Body::empty());
    let (response, body) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(body.is_null(), "{body}");
    // On a transfer that is not the caller's, the service's 404 comes first, whatever is wrong.
    let request = Request::patch(upload(UNKNOWN))
        .header("authorization", format!("Bearer {writer}"))
        .body(Body::empty())
        .unwrap();
    assert_text(
        &send(&app, request).await,
        StatusCode::NOT_FOUND,
        "The requested file transfer was not found",
    );
    assert!(double.seen.lock().unwrap().tus_creates.is_empty());
}

#[tokio::test]
async fn authentication_failures_are_bare_and_scopes_are_checked() {
    let (_, app) = Double::start().await;
    let request = Request::head(upload(ID))
        .header("tus-resumable", "1.0.0")
        .body(Body::empty())
        .unwrap();
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("tus-resumable").is_none());
    assert_eq!(header(&response, "www-authenticate"), "Bearer");
    let request = tus(Method::HEAD, &upload(ID), &token(READ), &[], Body::empty());
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&response, "tus-resumable"), "1.0.0");
}

#[tokio::test]
async fn a_recently_expired_token_goes_on_uploading_and_nothing_else() {
    let (double, app) = Double::start().await;
    let token = expired(3600);
    let request = tus(Method::HEAD, &upload(ID), &token, &[], Body::empty());
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let request = tus(
        Method::PATCH,
        &upload(ID),
        &token,
        &[
            ("content-type", "application/offset+octet-stream"),
            ("upload-offset", "0"),
        ],
        Body::from("abc"),
    );
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Forwarded as it came, for the service to decide whose upload it is.
    assert_eq!(double.seen.lock().unwrap().bearers, [token.as_str()]);
    // Not on the other routes.
    let request = Request::get(format!("/broker/api/v1/filetransfer/{ID}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Not past the grace.
    let request = tus(
        Method::HEAD,
        &upload(ID),
        &expired(2 * 86_400),
        &[],
        Body::empty(),
    );
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Not at all with no grace.
    let (_, strict) =
        Double::start_with(|state| state.with_tus_token_grace(TokenGrace(Duration::ZERO))).await;
    let request = tus(Method::HEAD, &upload(ID), &token, &[], Body::empty());
    let (response, _) = send(&strict, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
