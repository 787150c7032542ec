//! What crosses the gRPC boundary: uploads streamed in fixed-size chunks with their start
//! message and the caller's token, an interrupted body ending the stream as aborted, a form's
//! file before its metadata spooled with the metadata after its end (or never), download
//! headers rendered from the stream's first message, and the upload path's throughput.

use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::double::{Double, Ending, FILE, FILE_NAME};
use super::{BASE, ID, INITIALIZE, METADATA, READ, WRITE, form, json, request, token};
use crate::support::{header, send};

/// The bounds the gateway's chunk size must fall in.
const CHUNK_RANGE: std::ops::RangeInclusive<usize> = 256 * 1024..=1024 * 1024;

/// The bounds of a chunk made of a socket's reads: hyper's frames of 64 KiB and more go on as
/// they are (how large they are depends on how busy the machine is), smaller ones are gathered.
const FRAME_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=1024 * 1024;

/// A body of `frames` frames of `frame` bytes each, counting up.
fn body(frames: usize, frame: usize) -> Body {
    let stream = futures::stream::iter(
        (0..frames)
            .map(move |i| Ok::<_, std::io::Error>(Bytes::from(vec![(i % 251) as u8; frame]))),
    );
    Body::from_stream(stream)
}

/// `frames`, then (a moment later, as a disconnect comes) a failure.
fn cut_short(frames: Vec<Bytes>) -> Body {
    let failure = futures::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        ))
    });
    Body::from_stream(futures::stream::iter(frames.into_iter().map(Ok)).chain(failure))
}

/// Checks every chunk but the last has the same size, within [`CHUNK_RANGE`].
fn assert_fixed_chunks(sizes: &[usize], total: u64) {
    let (last, full) = sizes.split_last().expect("chunks");
    assert!(CHUNK_RANGE.contains(&full[0]), "chunk size {}", full[0]);
    assert!(full.iter().all(|size| *size == full[0]), "{sizes:?}");
    assert!(*last <= full[0] && *last > 0);
    assert_eq!(sizes.iter().sum::<usize>() as u64, total);
}

#[tokio::test]
async fn initialize_sends_the_wire_fields_and_the_callers_token() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    let (response, body) = send(
        &app,
        request(Method::POST, BASE, Some(&writer), json(INITIALIZE)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body["fileTransferId"], ID);
    let seen = double.seen.lock().unwrap();
    assert_eq!(seen.bearers, [writer]);
    let sent = &seen.initializes[0];
    assert_eq!(sent.resource_id.as_deref(), Some("broker-demo"));
    assert_eq!(sent.sender.as_deref(), Some("0192:991825827"));
    assert_eq!(sent.recipients, ["0192:986252932"]);
    assert_eq!(sent.principal.as_ref().unwrap().org_number, "991825827");
}

#[tokio::test]
async fn an_upload_is_streamed_in_fixed_chunks_with_its_declared_length() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    // Small uneven frames, as a client's writes arrive; the id in upper case is normalised.
    let (frames, frame) = (300, 10_000);
    let total = (frames * frame) as u64;
    let upload = http::Request::post(format!("{BASE}/{}/upload", ID.to_uppercase()))
        .header("authorization", format!("Bearer {writer}"))
        .header("content-type", "application/octet-stream")
        .header("content-length", total)
        .body(body(frames, frame))
        .unwrap();
    let (response, answer) = send(&app, upload).await;
    assert_eq!(response.status(), StatusCode::OK, "{answer}");
    assert_eq!(answer["fileTransferId"], ID);
    let seen = double.seen.lock().unwrap();
    assert_eq!(seen.bearers, [writer]);
    assert_eq!(seen.starts[0].file_transfer_id, ID);
    assert_eq!(seen.starts[0].declared_length, Some(total));
    assert!(seen.starts[0].initialize.is_none());
    assert_fixed_chunks(&seen.chunk_sizes, total);
    assert_eq!(seen.endings, [Ending::Clean]);
}

#[tokio::test]
async fn a_form_upload_sends_the_metadata_then_streams_the_file() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    let mut parts = METADATA.to_vec();
    parts.push(("Metadata.PropertyList[kind]", "report"));
    parts.push(("FileTransfer", "the file's bytes"));
    let uri = format!("{BASE}/upload");
    let (response, answer) = send(
        &app,
        request(Method::POST, &uri, Some(&writer), form(&parts)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{answer}");
    let seen = double.seen.lock().unwrap();
    let start = &seen.starts[0];
    assert!(start.file_transfer_id.is_empty());
    assert_eq!(start.declared_length, None);
    let initialize = start.initialize.as_ref().expect("the metadata");
    assert_eq!(initialize.resource_id.as_deref(), Some("broker-demo"));
    assert_eq!(initialize.recipients, ["0192:986252932"]);
    assert_eq!(initialize.property_list["kind"], "report");
    assert_eq!(seen.bytes, "the file's bytes".len() as u64);
    assert_eq!(seen.endings, [Ending::Clean]);
}

#[tokio::test]
async fn a_form_file_larger_than_axums_default_body_limit_streams_through() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    let file = "x".repeat(3 * 1024 * 1024);
    let mut parts = METADATA.to_vec();
    parts.push(("FileTransfer", &file));
    let uri = format!("{BASE}/upload");
    let (response, answer) = send(
        &app,
        request(Method::POST, &uri, Some(&writer), form(&parts)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{answer}");
    let seen = double.seen.lock().unwrap();
    assert_fixed_chunks(&seen.chunk_sizes, file.len() as u64);
}

#[tokio::test]
async fn a_body_cut_short_aborts_the_stream_instead_of_ending_it() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    let frames = vec![
        Ok(Bytes::from(vec![1u8; 700_000])),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    let upload = http::Request::post(format!("{BASE}/{ID}/upload"))
        .header("authorization", format!("Bearer {writer}"))
        .header("content-length", 2_000_000)
        .body(Body::from_stream(futures::stream::iter(frames)))
        .unwrap();
    let (response, problem) = send(&app, upload).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{problem}");
    double.wait_for(|seen| !seen.endings.is_empty()).await;
    let seen = double.seen.lock().unwrap();
    assert_eq!(seen.endings, [Ending::Aborted], "{problem} {seen:?}");
}

#[tokio::test]
async fn a_form_cut_short_aborts_the_stream_too() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    let mut head = String::new();
    for (name, value) in METADATA {
        head.push_str(&format!(
            "--B\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    head.push_str("--B\r\nContent-Disposition: form-data; name=\"FileTransfer\"\r\n\r\n");
    let frames = vec![Bytes::from(head), Bytes::from(vec![b'x'; 700_000])];
    let upload = http::Request::post(format!("{BASE}/upload"))
        .header("authorization", format!("Bearer {writer}"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(cut_short(frames))
        .unwrap();
    let (response, problem) = send(&app, upload).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{problem}");
    double.wait_for(|seen| !seen.endings.is_empty()).await;
    assert_eq!(double.seen.lock().unwrap().endings, [Ending::Aborted]);
}

/// Sends the form of `parts` to the initialize-and-upload endpoint of `app`.
async fn send_form(app: &axum::Router, parts: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let writer = token(WRITE);
    let uri = format!("{BASE}/upload");
    let (response, answer) =
        send(app, request(Method::POST, &uri, Some(&writer), form(parts))).await;
    (response.status(), answer)
}

#[tokio::test]
async fn a_file_before_its_metadata_is_spooled_and_the_metadata_follows_its_end() {
    let (double, app) = Double::start().await;
    let mut parts = vec![("FileTransfer", "the file's bytes")];
    parts.extend(METADATA);
    parts.push(("Metadata.PropertyList[kind]", "report"));
    let (status, answer) = send_form(&app, &parts).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["fileTransferId"], ID);
    let seen = double.seen.lock().unwrap();
    let start = &seen.starts[0];
    assert!(start.spool, "{start:?}");
    assert!(start.initialize.is_none() && start.file_transfer_id.is_empty());
    assert_eq!(seen.bytes, "the file's bytes".len() as u64);
    assert_eq!(seen.endings, [Ending::Clean]);
    let initialize = &seen.trailers[0];
    assert_eq!(initialize.resource_id.as_deref(), Some("broker-demo"));
    assert_eq!(initialize.recipients, ["0192:986252932"]);
    assert_eq!(initialize.property_list["kind"], "report");
    assert_eq!(
        initialize.principal.as_ref().unwrap().org_number,
        "991825827"
    );
}

#[tokio::test]
async fn a_json_metadata_part_after_the_file_follows_its_end_too() {
    let (double, app) = Double::start().await;
    let (status, answer) =
        send_form(&app, &[("FileTransfer", "bytes"), ("Metadata", INITIALIZE)]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let seen = double.seen.lock().unwrap();
    assert!(seen.starts[0].spool);
    assert_eq!(seen.trailers[0].file_name.as_deref(), Some("a.txt"));
}

#[tokio::test]
async fn a_spooled_file_without_metadata_is_400_and_the_metadata_never_follows() {
    let (double, app) = Double::start().await;
    let (status, problem) = send_form(&app, &[("FileTransfer", "bytes")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    // ASP.NET's answer to a form without any of its model's fields.
    assert_eq!(
        problem["errors"]["Metadata"][0], "The Metadata field is required.",
        "{problem}"
    );
    let seen = double.seen.lock().unwrap();
    assert!(
        seen.starts.iter().all(|start| start.spool),
        "{:?}",
        seen.starts
    );
    assert!(seen.trailers.is_empty(), "{:?}", seen.trailers);
}

/// Fields left out take Altinn's model defaults, for the service to validate (it names them
/// `Metadata.FileName`, …); the file is spooled, as the metadata before it was not complete.
#[tokio::test]
async fn fields_left_out_of_a_form_take_the_models_defaults() {
    let (double, app) = Double::start().await;
    let parts = [
        ("Metadata.ResourceId", "broker-demo"),
        ("FileTransfer", "bytes"),
        ("Metadata.SendersFileTransferReference", ""),
    ];
    let (status, answer) = send_form(&app, &parts).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let seen = double.seen.lock().unwrap();
    assert!(
        seen.starts.iter().all(|start| start.spool),
        "{:?}",
        seen.starts
    );
    let metadata = &seen.trailers[0];
    assert_eq!(metadata.resource_id.as_deref(), Some("broker-demo"));
    assert_eq!(
        metadata.file_name.as_deref(),
        Some(""),
        "left out: the default"
    );
    assert_eq!(metadata.sender.as_deref(), Some(""));
    assert!(metadata.recipients.is_empty());
    assert_eq!(
        metadata.senders_file_transfer_reference, None,
        "an empty value binds as null"
    );
}

#[tokio::test]
async fn a_second_file_part_is_400_naming_it_and_nothing_is_kept() {
    let (double, app) = Double::start().await;
    let mut direct = METADATA.to_vec();
    direct.extend([("FileTransfer", "one"), ("FileTransfer", "two")]);
    let mut spooled = vec![("FileTransfer", "one"), ("FileTransfer", "two")];
    spooled.extend(METADATA);
    for parts in [direct, spooled] {
        let (status, problem) = send_form(&app, &parts).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert!(problem["errors"]["FileTransfer"].is_array(), "{problem}");
    }
    let seen = double.seen.lock().unwrap();
    // The file that went into its transfer never ended; the spool never got its metadata.
    assert_eq!(seen.endings, [Ending::Aborted, Ending::Clean]);
    assert!(seen.trailers.is_empty(), "{:?}", seen.trailers);
}

#[tokio::test]
async fn a_metadata_part_after_a_file_sent_into_its_transfer_is_refused() {
    let (double, app) = Double::start().await;
    let mut parts = METADATA.to_vec();
    parts.extend([("FileTransfer", "bytes"), ("Metadata.Checksum", "0123")]);
    let (status, problem) = send_form(&app, &parts).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        problem["errors"]["Metadata.Checksum"].is_array(),
        "{problem}"
    );
    // Parts that name no metadata field are ignored wherever they are.
    let mut parts = METADATA.to_vec();
    parts.extend([("FileTransfer", "bytes"), ("Comment", "ignored")]);
    let (status, answer) = send_form(&app, &parts).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let seen = double.seen.lock().unwrap();
    assert!(seen.starts.iter().all(|start| !start.spool));
    assert_eq!(seen.endings, [Ending::Aborted, Ending::Clean]);
}

#[tokio::test]
async fn a_form_cut_short_in_the_metadata_after_a_spooled_file_sends_no_metadata() {
    let (double, app) = Double::start().await;
    let writer = token(WRITE);
    let mut head =
        String::from("--B\r\nContent-Disposition: form-data; name=\"FileTransfer\"\r\n\r\n");
    head.push_str(&"x".repeat(700_000));
    head.push_str("\r\n");
    for (name, value) in METADATA {
        head.push_str(&format!(
            "--B\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    let upload = http::Request::post(format!("{BASE}/upload"))
        .header("authorization", format!("Bearer {writer}"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(cut_short(vec![Bytes::from(head)]))
        .unwrap();
    let (response, problem) = send(&app, upload).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{problem}");
    let seen = double.seen.lock().unwrap();
    assert_eq!(seen.bytes, 700_000);
    assert_eq!(seen.endings, [Ending::Clean]);
    assert!(seen.trailers.is_empty(), "{:?}", seen.trailers);
}

#[tokio::test]
async fn a_whole_download_is_200_with_its_headers() {
    let (double, app) = Double::start().await;
    let reader = token(READ);
    let uri = format!("{BASE}/{ID}/download");
    let response = tower::ServiceExt::oneshot(app, request(Method::GET, &uri, Some(&reader), None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["content-length"], FILE.len().to_string().as_str());
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(headers.get("content-range").is_none());
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.ends_with("filename*=UTF-8''%C3%A5rsrapport%202026.pdf"),
        "{disposition} for {FILE_NAME}"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&body[..], FILE);
    assert_eq!(double.seen.lock().unwrap().ranges, [""]);
}

#[tokio::test]
async fn a_range_is_forwarded_verbatim_and_answered_206() {
    let (double, app) = Double::start().await;
    let reader = token(READ);
    let uri = format!("{BASE}/{ID}/download");
    let mut ranged = request(Method::GET, &uri, Some(&reader), None);
    ranged
        .headers_mut()
        .insert("range", "bytes=2-5".parse().unwrap());
    let (response, _) = send(&app, ranged).await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&response, "content-range"), "bytes 2-5/10");
    assert_eq!(header(&response, "content-length"), "4");
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    // Odd ranges reach the service as sent; its 416 problem comes back with its code.
    let mut beyond = request(Method::GET, &uri, Some(&reader), None);
    beyond
        .headers_mut()
        .insert("range", "Bytes = 100-, 1-2".parse().unwrap());
    let (response, problem) = send(&app, beyond).await;
    assert_eq!(
        response.status(),
        StatusCode::RANGE_NOT_SATISFIABLE,
        "{problem}"
    );
    assert_eq!(problem["code"], "BRO-00029");
    assert_eq!(
        double.seen.lock().unwrap().ranges,
        ["bytes=2-5", "Bytes = 100-, 1-2"]
    );
}

#[tokio::test]
async fn the_overview_is_rendered_in_altinn_field_names() {
    let (_double, app) = Double::start().await;
    let (response, body) = send(
        &app,
        request(
            Method::GET,
            &format!("{BASE}/{ID}"),
            Some(&token(READ)),
            None,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body["fileTransferStatus"], "Published");
    assert_eq!(body["checksum"], serde_json::Value::Null);
    assert_eq!(
        body["recipients"][0]["currentRecipientFileTransferStatusCode"],
        "Initialized"
    );
}

/// Measures the upload path over a real HTTP connection: a raw HTTP/1.1 client writes 256 MiB
/// in 64 KiB writes to the gateway on loopback, which streams it to the recording service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_path_throughput() {
    const TOTAL: usize = 256 * 1024 * 1024;
    const WRITE_SIZE: usize = 64 * 1024;
    let (double, app) = Double::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {BASE}/{ID}/upload HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {TOTAL}\r\n\
         Connection: close\r\n\r\n",
        token(WRITE)
    );
    let started = Instant::now();
    socket.write_all(head.as_bytes()).await.unwrap();
    let block = vec![7u8; WRITE_SIZE];
    for _ in 0..TOTAL / WRITE_SIZE {
        socket.write_all(&block).await.unwrap();
    }
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    let elapsed = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = double.seen.lock().unwrap();
    assert_eq!(seen.bytes, TOTAL as u64);
    // Reads off a socket come in sizes the machine's load decides; none is a tiny message.
    let (_, full) = seen.chunk_sizes.split_last().expect("chunks");
    assert!(
        full.iter().all(|size| FRAME_RANGE.contains(size)),
        "{:?}",
        seen.chunk_sizes
    );
    assert_eq!(seen.chunk_sizes.iter().sum::<usize>() as u64, TOTAL as u64);
    let rate = TOTAL as f64 / 1e6 / elapsed.as_secs_f64();
    println!(
        "gateway upload path: {} MiB in {:.2} s = {rate:.0} MB/s \
         (debug build, dependencies at opt-level 2)",
        TOTAL >> 20,
        elapsed.as_secs_f64()
    );
}
