//! The event API as a subscriber uses it: subscriptions, the validation wait, pull, and the
//! operator's dead letters.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::reply::Reply;
use crate::scenario::{RECIPIENT, RESOURCE, Scenario, urn};
use crate::webhook::Webhook;

/// Where subscriptions live.
pub const SUBSCRIPTIONS: &str = "/events/api/v1/subscriptions";
/// Where events are pulled.
pub const EVENTS: &str = "/events/api/v1/events";
/// The operator's dead letters.
pub const DEAD_LETTERS: &str = "/admin/v1/events/dead-letters";
/// How long a test waits for a subscription to be validated.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(30);

/// `urn:altinn:resource:<id>`.
pub fn resource_urn(id: &str) -> String {
    format!("urn:altinn:resource:{id}")
}

/// A subscription request for `end_point` to the scenario's resource, for `org`'s events.
pub fn subscription(end_point: &str, org: &str) -> Value {
    json!({
        "endPoint": end_point,
        "resourceFilter": resource_urn(RESOURCE),
        "subjectFilter": urn(org),
    })
}

/// The CloudEvent types of a transfer's life, as Altinn names them.
pub mod types {
    /// The transfer was initialized.
    pub const INITIALIZED: &str = "no.altinn.broker.filetransferinitialized";
    /// The upload is being processed.
    pub const PROCESSING: &str = "no.altinn.broker.uploadprocessing";
    /// The transfer was published to its recipients.
    pub const PUBLISHED: &str = "no.altinn.broker.published";
    /// A recipient confirmed its download.
    pub const CONFIRMED: &str = "no.altinn.broker.downloadconfirmed";
    /// Every recipient confirmed.
    pub const ALL_CONFIRMED: &str = "no.altinn.broker.allconfirmeddownloaded";
}

impl Scenario {
    /// `POST /events/api/v1/subscriptions`.
    pub async fn subscribe(&self, token: &str, body: Value) -> Reply {
        self.call(token, Method::POST, SUBSCRIPTIONS, Some(body))
            .await
    }

    /// Subscribes and waits until the endpoint has passed the validation handshake; returns
    /// the subscription as created.
    pub async fn subscribed(&self, token: &str, body: Value) -> Value {
        let created = self.subscribe(token, body).await.expect_status(201).json();
        let id = created["id"].as_i64().expect("a numeric subscription id");
        self.wait_until_validated(token, id).await;
        created
    }

    /// A webhook receiver the recipient subscribed to its events of the resource, validated.
    pub async fn recipient_webhook(&self) -> Webhook {
        let hook = Webhook::start().await;
        self.subscribed(&self.recipient.events, subscription(&hook.url(), RECIPIENT))
            .await;
        hook
    }

    /// Polls the subscription until it is validated.
    pub async fn wait_until_validated(&self, token: &str, id: i64) {
        let deadline = tokio::time::Instant::now() + VALIDATION_TIMEOUT;
        loop {
            let current = self.subscription(token, id).await.ok_json();
            if current["validated"] == true {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "subscription {id} was not validated within {VALIDATION_TIMEOUT:?}: {current}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /events/api/v1/subscriptions/{id}`.
    pub async fn subscription(&self, token: &str, id: i64) -> Reply {
        self.call(token, Method::GET, &format!("{SUBSCRIPTIONS}/{id}"), None)
            .await
    }

    /// `GET /events/api/v1/events?<query>`.
    pub async fn pull(&self, token: &str, query: &str) -> Reply {
        self.call(token, Method::GET, &format!("{EVENTS}?{query}"), None)
            .await
    }
}
