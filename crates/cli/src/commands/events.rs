//! `subscribe`, `subscriptions`, `unsubscribe` and `watch`: a resource's events, pushed to a
//! webhook or pulled and printed.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Context, SUBSCRIBE};
use crate::error::CliError;
use crate::party::{OrgNumber, resource_urn};

/// Events asked for per poll; a full page is followed at once rather than after the interval.
const PAGE: usize = 100;

/// Subscribes `endpoint` to `resource`'s events for this organisation.
pub async fn subscribe(
    ctx: &Context,
    resource: &str,
    endpoint: &str,
    event_type: Option<&str>,
    sign: bool,
) -> Result<(), CliError> {
    let (api, profile) = ctx.api(&[SUBSCRIBE]).await?;
    let mut body = json!({
        "endPoint": endpoint,
        "resourceFilter": resource_urn(resource),
        "subjectFilter": OrgNumber::parse(&profile.org)?.urn(),
        "signDeliveries": sign,
    });
    if let Some(event_type) = event_type {
        body["typeFilter"] = event_type.into();
    }
    let created = api.subscribe(&body).await?;
    ctx.print(&created, || {
        let mut text = format!("subscription {}", created["id"]);
        if let Some(secret) = created["signingSecret"].as_str() {
            text.push_str(&format!("\nsigning secret (shown once): {secret}"));
        }
        text
    });
    Ok(())
}

/// Lists this client's subscriptions.
pub async fn subscriptions(ctx: &Context) -> Result<(), CliError> {
    let (api, _) = ctx.api(&[SUBSCRIBE]).await?;
    let list = api.subscriptions().await?;
    ctx.print(&list, || {
        list["subscriptions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{}  {}  {}  {}{}",
                    s["id"],
                    s["resourceFilter"].as_str().unwrap_or("-"),
                    s["typeFilter"].as_str().unwrap_or("*"),
                    s["endPoint"].as_str().unwrap_or("-"),
                    if s["validated"] == true {
                        ""
                    } else {
                        "  (not validated)"
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// Deletes a subscription.
pub async fn unsubscribe(ctx: &Context, id: &str) -> Result<(), CliError> {
    let (api, _) = ctx.api(&[SUBSCRIBE]).await?;
    api.unsubscribe(id).await?;
    ctx.print(&json!({"id": id, "deleted": true}), || {
        format!("deleted subscription {id}")
    });
    Ok(())
}

/// Prints `resource`'s events after `after` (this organisation's, or with `all_subjects`
/// every party's), polling every `interval` (or until there are no more, with `once`).
pub async fn watch(
    ctx: &Context,
    resource: &str,
    after: Option<String>,
    event_type: Option<&str>,
    interval: Duration,
    once: bool,
    all_subjects: bool,
) -> Result<(), CliError> {
    let resource = resource_urn(resource);
    let size = PAGE.to_string();
    let mut after = after.unwrap_or_else(|| "0".to_owned());
    loop {
        // Asked for each poll: a watch outlives a token, and the cache makes this cheap.
        let (api, profile) = ctx.api(&[SUBSCRIBE]).await?;
        let subject = OrgNumber::parse(&profile.org)?.urn();
        let mut query = vec![
            ("resource", resource.as_str()),
            ("after", after.as_str()),
            ("size", size.as_str()),
        ];
        if !all_subjects {
            query.push(("subject", subject.as_str()));
        }
        query.extend(event_type.map(|t| ("type", t)));
        let events = api.events(&query).await?;
        for event in &events {
            ctx.print(event, || line(event));
        }
        if let Some(last) = events.last().and_then(|e| e["id"].as_str()) {
            after = last.to_owned();
        }
        if events.len() < PAGE {
            if once {
                return Ok(());
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// One event as a line: time, type, transfer, subject.
fn line(event: &Value) -> String {
    let field = |name: &str| event[name].as_str().unwrap_or("-");
    format!(
        "{}  {}  {}  {}",
        field("time"),
        field("type"),
        field("resourceinstance"),
        field("subject")
    )
}
