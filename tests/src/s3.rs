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
        vec![
            (
                "BROKER_STORAGE_URL",
                format!("s3://{}/{prefix}", self.bucket),
            ),
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ]
    }

    /// The keys of every object in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let listing = reqwest::get(format!("{}?list-type=2", self.bucket_url()))
            .await
            .expect("listing the bucket")
            .text()
            .await
            .expect("the bucket listing");
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect()
    }
}
