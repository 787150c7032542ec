//! Property-based tests of the multipart initialize-and-upload form
//! (`POST /broker/api/v1/filetransfer/upload`) over real HTTP, on SQLite and on PostgreSQL with
//! RabbitMQ: a well-formed form with any file bytes is stored byte for byte (its size and MD5),
//! and any form, however broken (parts, names, boundaries, truncation), is answered below 500.

use std::sync::Arc;

use broker_tests::scenario::{file_part_head, md5_hex};
use broker_tests::{Database, Scenario, on_each_database};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;

/// Cases per property: each is a real upload, so hundreds rather than thousands.
const CASES: u32 = 200;

/// One part of a generated form: its name, an optional file name, and its bytes.
type Part = (String, Option<String>, Vec<u8>);

/// Parts with the names the form reads, near-misses and junk, holding anything.
fn part() -> impl Strategy<Value = Part> {
    (
        "Metadata|FileTransfer|Metadata\\.ResourceId|Metadata\\.Recipients\\[0\\]|metadata|\\PC{0,8}",
        proptest::option::of("[a-z.]{0,8}"),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            Just(b"{\"resourceId\": \"broker-e2e\"}".to_vec()),
            Just(b"--".to_vec()),
        ],
    )
}

/// A form of `parts` under `boundary`; `ending` says how it closes.
fn form(boundary: &str, parts: &[Part], ending: u8) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        let file_name = file_name
            .as_ref()
            .map(|file| format!("; filename=\"{file}\""))
            .unwrap_or_default();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{file_name}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    match ending % 3 {
        0 => body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes()),
        1 => body.truncate(body.len() / 2),
        _ => {}
    }
    body
}

/// Runs `property` for `CASES` generated values on a blocking thread, each case blocking on the
/// broker's answer.
async fn check<S>(
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
) where
    S: Strategy + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config::with_cases(CASES));
        if let Err(failure) = runner.run(&strategy, property) {
            panic!("{failure}");
        }
    })
    .await
    .expect("the property runs");
}

on_each_database! {
    /// Any file bytes in a well-formed form are stored as sent: the transfer is Published with
    /// their size and MD5.
    async fn a_well_formed_form_stores_any_bytes(db: Database) {
        let s = Arc::new(Scenario::start(db).await);
        let runtime = tokio::runtime::Handle::current();
        let metadata = s.initialize_body();
        let scenario = s.clone();
        check(proptest::collection::vec(any::<u8>(), 1..4096), move |bytes| {
            let s = &scenario;
            let id = runtime.block_on(async {
                let reply = s.initialize_and_upload(&s.sender.write, &metadata, &bytes).await;
                let body = reply.ok_json();
                body["fileTransferId"].as_str().expect("an id").to_owned()
            });
            let overview = runtime.block_on(s.wait_for_status(&s.sender.write, &id, "Published"));
            prop_assert_eq!(overview["fileTransferSize"].as_u64(), Some(bytes.len() as u64));
            let checksum = md5_hex(&bytes);
            prop_assert_eq!(overview["checksum"].as_str(), Some(checksum.as_str()));
            Ok(())
        })
        .await;
        assert!(!s.output().contains("panicked"), "the broker panicked:\n{}", s.output());
    }
}

on_each_database! {
    /// Forms of any parts, names and boundaries, whole, unterminated or cut short, and a
    /// `Content-Type` whose boundary may not match: never a server error.
    async fn any_form_is_answered_below_500(db: Database) {
        let s = Arc::new(Scenario::start(db).await);
        let runtime = tokio::runtime::Handle::current();
        let scenario = s.clone();
        let strategy = (
            "[A-Za-z0-9'()+_,./:=?-]{1,40}",
            proptest::collection::vec(part(), 0..5),
            any::<u8>(),
            any::<bool>(),
        );
        check(strategy, move |(boundary, parts, ending, matching)| {
            let s = &scenario;
            let declared = if matching { boundary.clone() } else { format!("{boundary}x") };
            let mut parts = parts;
            if ending % 2 == 0 {
                // Half the forms carry a file part as clients send it.
                let head = file_part_head(&boundary);
                let (name, file) = ("FileTransfer".to_owned(), Some("report.pdf".to_owned()));
                parts.push((name, file, head.into_bytes()));
            }
            let body = form(&boundary, &parts, ending);
            let status = runtime.block_on(async {
                let request = s
                    .request(Method::POST, "/broker/api/v1/filetransfer/upload")
                    .bearer_auth(&s.sender.write)
                    .header("content-type", format!("multipart/form-data; boundary={declared}"))
                    .body(body);
                s.send(request).await.status
            });
            prop_assert!(!status.is_server_error(), "answered {status}");
            Ok(())
        })
        .await;
        assert!(!s.output().contains("panicked"), "the broker panicked:\n{}", s.output());
    }
}
