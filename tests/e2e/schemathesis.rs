//! Schemathesis drives every operation of `/openapi.json` with requests generated from the
//! document, as the sender, the service owner and the operator, on SQLite and on PostgreSQL with
//! RabbitMQ: no answer may be a server error, a status the operation does not document, a body
//! its schema does not allow, or a refusal of a request the document calls valid. So the
//! document states the server's real constraints, and the server keeps to them.
//!
//! What no schema keyword can state (an organisation number's check digit, the entity tags and
//! page tokens the server writes) the document names as formats, and
//! `tests/clients/python/schemathesis_hooks.py` generates valid values of each. The few refusals
//! that are not of valid data (Altinn's "resource not configured", a grant nobody signed, rules
//! between a parameter and another or the path) are dropped there by name, each with its reason,
//! and counted in schemathesis's summary; every other failure fails the test.
//!
//! Schemathesis is pinned in `tests/clients/python/requirements.txt` (`.ci/run` installs it).
//! Without it the test skips with a line saying so; in CI it fails instead.

use broker_tests::python::{PYTHON, client_dir, run, tools_present};
use broker_tests::{Database, Scenario, on_each_database};
use tokio::process::Command;

/// What every answer is held to (schemathesis's names).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,positive_data_acceptance";
/// Generated cases per operation and phase: enough to reach every constraint of a parameter,
/// few enough that the three runs take a minute or two on two cores.
const MAX_EXAMPLES: &str = "25";
/// A fixed seed, so CI generates the same requests every run.
const SEED: &str = "15";

/// Runs schemathesis against the broker at `base` with `token` as the bearer; panics with its
/// report unless every check passed. Returns the summary it printed.
async fn schemathesis(base: &str, who: &str, token: &str) -> String {
    // Schemathesis keeps a `.schemathesis` folder where it runs; not in the source tree.
    let work = tempfile::tempdir().expect("a temporary directory");
    let output = run(
        &format!("schemathesis as {who}"),
        Command::new(PYTHON)
            .args(["-m", "schemathesis.cli", "--config-file"])
            .arg(client_dir().join("schemathesis.toml"))
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args(["--checks", CHECKS])
            .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
            // Deterministic generation keeps no example database, so one run does not depend
            // on the last.
            .arg("--generation-deterministic")
            .args(["--phases", "examples,coverage,fuzzing"])
            // One worker: Hypothesis's lambda descriptions race under threads on CPython 3.11
            // ("AST constructor recursion depth mismatch").
            .args(["--workers", "1", "--no-color", "--output-truncate", "false"])
            .arg("--header")
            .arg(format!("Authorization: Bearer {token}"))
            .env("NO_COLOR", "1")
            // The formats the document names and the answers that are not refusals.
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .env("PYTHONPATH", client_dir())
            .current_dir(work.path()),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let summary = stdout
        .lines()
        .skip_while(|line| !line.contains("SUMMARY"))
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    println!("schemathesis as {who}:\n{summary}");
    summary
}

on_each_database! {
    /// As the sender, the service owner and the operator, every generated request gets an
    /// answer the document describes, and none a server error.
    async fn generated_requests_get_only_documented_answers(db: Database) {
        if !tools_present(&["schemathesis"]).await {
            return;
        }
        let s = Scenario::start(db).await;
        // A published transfer, so operations on one of the sender's transfers are reachable.
        s.published(b"schemathesis").await;
        let base = s.base_url().to_owned();
        for (who, token) in [
            ("the sender", s.sender.both.clone()),
            ("the service owner", s.owner.clone()),
            ("the operator", s.admin_token().to_owned()),
        ] {
            let summary = schemathesis(&base, who, &token).await;
            assert!(summary.contains("generated"), "no summary from schemathesis:\n{summary}");
        }
        assert!(!s.output().contains("panicked"), "the broker panicked:\n{}", s.output());
    }
}
