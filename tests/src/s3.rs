//! An S3-compatible server for the tests that store file bytes in object storage: moto's
//! standalone server (`pip install "moto[server]"`), started on a free loopback port with one
//! bucket, and killed when dropped.
//!
//! Without `moto_server` on the `PATH`, S3 tests skip with a line saying so; in CI they fail
//! instead (see [`crate::database::in_ci`]), as the PostgreSQL tests do.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::database::in_ci;

/// The program started.
const PROGRAM: &str = "moto_server";
/// How long the server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running S3-compatible server with one bucket.
pub struct S3Server {
    endpoint: String,
    bucket: String,
    _child: Child,
}

impl S3Server {
    /// Starts the server and creates `bucket`, or `None` (after printing why) when S3 tests
    /// should skip. Panics in CI when the server cannot be started.
    pub async fn start(bucket: &str) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = match Command::new(PROGRAM)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(error) if in_ci() => panic!("{PROGRAM} must run in CI: {error}"),
            Err(error) => {
                println!(
                    "skipping: {PROGRAM} cannot start ({error}); pip install \"moto[server]\""
                );
                return None;
            }
        };
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_owned(),
            _child: child,
        };
        server.create_bucket().await;
        Some(server)
    }

    /// Creates the bucket, retrying until the server answers.
    async fn create_bucket(&self) {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            match client.put(self.bucket_url()).send().await {
                Ok(answer) if answer.status().is_success() => return,
                outcome => assert!(
                    tokio::time::Instant::now() < deadline,
                    "{PROGRAM} did not create bucket {} within {START_TIMEOUT:?}: {outcome:?}",
                    self.bucket
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn bucket_url(&self) -> String {
        format!("{}/{}", self.endpoint, self.bucket)
    }

    /// The settings that point a broker's file storage at this server, under `prefix`.
    pub fn broker_env(&self, prefix: &str) -> Vec<(&'static str, String)> {
        self.broker_env_through(prefix, &self.endpoint)
    }

    /// The server's loopback address, for a proxy in front of it.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.endpoint
            .trim_start_matches("http://")
            .parse()
            .expect("the server's loopback address")
    }

    /// [`S3Server::broker_env`] with the server reached at `endpoint` (a proxy in front of it).
    pub fn broker_env_through(&self, prefix: &str, endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            (
                "BROKER_STORAGE_URL",
                format!("s3://{}/{prefix}", self.bucket),
            ),
            ("AWS_ENDPOINT", endpoint.to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ]
    }

    /// The keys of every object in the bucket, page by page (S3 lists at most 1,000 at once).
    pub async fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2")];
            if let Some(token) = &token {
                query.push(("continuation-token", token.as_str()));
            }
            let listing = self.get(&query).await;
            keys.extend(elements(&listing, "Key"));
            token = elements(&listing, "NextContinuationToken").pop();
            if token.is_none() {
                return keys;
            }
        }
    }

    /// Each multipart upload begun and neither completed nor aborted (what an upload that
    /// broke off leaves behind unless it is cleaned up): its key and how many parts it holds.
    pub async fn unfinished_uploads_with_parts(&self) -> Vec<(String, usize)> {
        let listing = self.get(&[("uploads", "")]).await;
        let mut uploads = Vec::new();
        for upload in elements(&listing, "Upload") {
            let (Some(key), Some(id)) = (
                elements(&upload, "Key").pop(),
                elements(&upload, "UploadId").pop(),
            ) else {
                continue;
            };
            let parts = self.get_at(&key, &[("uploadId", id.as_str())]).await;
            uploads.push((key, elements(&parts, "PartNumber").len()));
        }
        uploads
    }

    /// `GET` on the bucket with `query`; the answer's text.
    async fn get(&self, query: &[(&str, &str)]) -> String {
        self.get_at("", query).await
    }

    /// `GET` on the object `key` (the bucket itself when empty) with `query`; the answer's text.
    async fn get_at(&self, key: &str, query: &[(&str, &str)]) -> String {
        let base = match key {
            "" => self.bucket_url(),
            key => format!("{}/{key}", self.bucket_url()),
        };
        let mut url = reqwest::Url::parse(&base).expect("the bucket's URL");
        url.query_pairs_mut().extend_pairs(query);
        reqwest::get(url)
            .await
            .expect("asking the bucket")
            .text()
            .await
            .expect("the bucket's answer")
    }
}

/// The text of every `<name>` element of an S3 XML answer.
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|rest| {
            rest.split_once(close.as_str())
                .map(|(text, _)| text.to_owned())
        })
        .collect()
}
