//! The README's five-minute walk-through works as written: `scripts/walkthrough.sh` against a
//! freshly started broker registers a client, gets a token, exchanges it and calls the API.

use broker_tests::{Broker, BrokerOptions};

#[tokio::test]
async fn the_readme_walkthrough_script_gets_and_uses_tokens() {
    let broker = Broker::start(BrokerOptions::new()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/walkthrough.sh");
    let work = std::env::temp_dir().join(format!("broker-walkthrough-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work).unwrap();
    let output = tokio::process::Command::new("bash")
        .arg(script)
        .env("BROKER_URL", broker.base_url())
        .env("BROKER_ADMIN_TOKEN", broker.admin_token())
        .env("WORK_DIR", &work)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the walk-through failed:\n{stdout}\n{}\n--- broker ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        broker.output()
    );
    assert!(stdout.contains(r#""tokenKind":"Maskinporten""#), "{stdout}");
    assert!(stdout.contains(r#""tokenKind":"Platform""#), "{stdout}");
    assert!(stdout.contains(r#""organisation":"991825827""#), "{stdout}");
    std::fs::remove_dir_all(work).unwrap();
}
