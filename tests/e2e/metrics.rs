//! Prometheus metrics: after a transfer is sent, downloaded and delivered to a webhook, the
//! broker's `/metrics` page (on `BROKER_METRICS_ADDR`, apart from the public gateway) counts
//! the requests by route template, the gRPC calls, the bytes each way and the delivery, and no
//! upload is left in flight.

use std::time::Duration;

use broker_tests::broker::Database;
use broker_tests::events::types::PUBLISHED;
use broker_tests::scenario::{Scenario, pattern};

/// The value of the sample named exactly `series` (name and labels), if present.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

async fn scrape(scenario: &Scenario) -> String {
    let url = format!("{}/metrics", scenario.listening("metrics"));
    let response = reqwest::get(&url)
        .await
        .expect("the metrics listener answers");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/openmetrics-text")),
        "{:?}",
        response.headers()
    );
    response.text().await.unwrap()
}

async fn counts_a_whole_transfer(database: Database) {
    let scenario = Scenario::start(database).await;
    let hook = scenario.recipient_webhook().await;
    let bytes = pattern(300_000);
    let id = scenario.published(&bytes).await;
    let downloaded = scenario
        .download(&scenario.recipient.read, &id, None)
        .await
        .expect_status(200);
    assert_eq!(downloaded.bytes, bytes);
    hook.wait_until("the published event", Duration::from_secs(20), |hook| {
        hook.delivered().iter().any(|r| r.event_type() == PUBLISHED)
    })
    .await;

    // Delivery outcomes are counted after the webhook answers; the page may lag a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = scrape(&scenario).await;
        let delivered = sample(
            &page,
            r#"broker_event_deliveries_total{outcome="Delivered"}"#,
        );
        if delivered.is_some_and(|n| n >= 1.0) || tokio::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let upload_route = r#"broker_http_request_duration_seconds_count{method="POST",route="/broker/api/v1/filetransfer/{fileTransferId}/upload",status="200"}"#;
    assert_eq!(sample(&page, upload_route), Some(1.0), "{page}");
    assert!(
        !page.contains(&id),
        "transfer ids never become label values:\n{page}"
    );
    let upload_call = r#"broker_grpc_server_duration_seconds_count{method="/broker.filetransfer.v1.FileTransferService/Upload",code="Ok"}"#;
    assert_eq!(sample(&page, upload_call), Some(1.0), "{page}");
    assert_eq!(
        sample(&page, r#"broker_file_bytes_total{direction="Upload"}"#),
        Some(bytes.len() as f64),
        "{page}"
    );
    assert_eq!(
        sample(&page, r#"broker_file_bytes_total{direction="Download"}"#),
        Some(bytes.len() as f64),
        "{page}"
    );
    assert_eq!(
        sample(&page, "broker_uploads_in_flight"),
        Some(0.0),
        "{page}"
    );
    assert!(
        sample(
            &page,
            r#"broker_event_deliveries_total{outcome="Delivered"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{page}"
    );
    assert!(
        page.lines().any(|line| line
            .starts_with("broker_bus_published_total{routing_key=\"filetransfer.published\"}")),
        "{page}"
    );
}

#[tokio::test]
async fn metrics_count_a_whole_transfer_on_sqlite() {
    counts_a_whole_transfer(Database::Sqlite).await;
}

#[tokio::test]
async fn metrics_count_a_whole_transfer_on_postgres() {
    let Some(database) = Database::postgres().await else {
        return;
    };
    counts_a_whole_transfer(database).await;
}
