//! A client generated from the broker's own `/openapi.json` runs a whole transfer, on SQLite and
//! on PostgreSQL with RabbitMQ: the document must pass an OpenAPI 3.1 validator
//! (openapi-spec-validator), generate a Python client without a warning (openapi-python-client),
//! and describe what goes over the wire closely enough that the client's typed calls and models
//! carry the service owner's setup, initialize, upload, overview, search, download, confirm and
//! an error (`tests/clients/python/flow.py`).
//!
//! The tools are pinned in `tests/clients/python/requirements.txt` (`.ci/run` installs them).
//! Without them the test skips with a line saying so; in CI it fails instead.

use broker_tests::python::{PYTHON, client_dir, run, tools_present};
use broker_tests::scenario::{RECIPIENT, RESOURCE, SENDER, party};
use broker_tests::{Database, Scenario, on_each_database};
use tokio::process::Command;

/// The package the generator writes and `flow.py` imports.
const PACKAGE: &str = "broker_client";
/// The size of the file `flow.py` sends.
const FILE_SIZE: u64 = 100_000;

on_each_database! {
    /// The document validates and generates a client that sends a file from the sender to the
    /// recipient and sees it AllConfirmedDownloaded, as checked here over plain HTTP too.
    async fn a_client_generated_from_the_document_runs_the_whole_flow(db: Database) {
        if !tools_present(&["openapi_python_client", "openapi_spec_validator"]).await {
            return;
        }
        let s = Scenario::start(db).await;
        let work = tempfile::tempdir().expect("a temporary directory");
        let document = work.path().join("openapi.json");
        let served = s.get("/openapi.json").await.expect_status(200);
        std::fs::write(&document, &served.bytes).expect("writing the document");

        run(
            "openapi-spec-validator",
            Command::new(PYTHON).args(["-m", "openapi_spec_validator"]).arg(&document),
        )
        .await;
        run(
            "openapi-python-client",
            Command::new(PYTHON)
                .args(["-m", "openapi_python_client", "generate", "--meta", "none"])
                // An operation it cannot generate is a document that does not say what its
                // client should send or expect.
                .arg("--fail-on-warning")
                .arg("--config")
                .arg(client_dir().join("openapi-python-client.yaml"))
                .arg("--path")
                .arg(&document)
                .arg("--output-path")
                .arg(work.path().join(PACKAGE)),
        )
        .await;

        let flow = Command::new(PYTHON)
            .arg(client_dir().join("flow.py"))
            .env("PYTHONPATH", work.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("BROKER_URL", s.base_url())
            .env("BROKER_OWNER_TOKEN", &s.owner)
            .env("BROKER_SENDER_TOKEN", &s.sender.write)
            .env("BROKER_RECIPIENT_TOKEN", &s.recipient.read)
            .env("BROKER_RESOURCE", RESOURCE)
            .env("BROKER_SENDER", party(SENDER))
            .env("BROKER_RECIPIENT", party(RECIPIENT))
            .output()
            .await
            .expect("flow.py starts");
        let stdout = String::from_utf8_lossy(&flow.stdout);
        assert!(
            flow.status.success(),
            "flow.py failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}\n--- broker ---\n{}",
            flow.status,
            String::from_utf8_lossy(&flow.stderr),
            s.output(),
        );
        println!("{stdout}");
        let id = stdout
            .lines()
            .find_map(|line| line.strip_prefix("OK: "))
            .unwrap_or_else(|| panic!("flow.py named no transfer:\n{stdout}"));

        let overview = s.overview(&s.sender.write, id).await.ok_json();
        assert_eq!(overview["fileTransferStatus"], "AllConfirmedDownloaded", "{overview}");
        assert_eq!(overview["fileTransferSize"], FILE_SIZE, "{overview}");
        assert_eq!(
            overview["recipients"][0]["currentRecipientFileTransferStatusCode"],
            "DownloadConfirmed",
            "{overview}"
        );
    }
}
