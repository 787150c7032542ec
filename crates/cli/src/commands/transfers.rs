//! `inbox`, `search`, `show` and `confirm`: reading transfers and confirming them.

use serde_json::{Value, json};

use super::{Context, READ};
use crate::error::CliError;

/// Lists published transfers of `resource` addressed to this organisation.
pub async fn inbox(ctx: &Context, resource: &str) -> Result<(), CliError> {
    search(ctx, resource, Some("Published"), Some("Recipient")).await
}

/// Lists transfer ids of `resource`, optionally by status and role.
pub async fn search(
    ctx: &Context,
    resource: &str,
    status: Option<&str>,
    role: Option<&str>,
) -> Result<(), CliError> {
    let (api, _) = ctx.api(&[READ]).await?;
    let mut query = vec![("resourceId", resource)];
    query.extend(status.map(|status| ("status", status)));
    query.extend(role.map(|role| ("role", role)));
    let ids = api.search(&query).await?;
    ctx.print(&json!(ids), || ids.join("\n"));
    Ok(())
}

/// Shows a transfer, with its histories when `details`.
pub async fn show(ctx: &Context, id: &str, details: bool) -> Result<(), CliError> {
    let (api, _) = ctx.api(&[READ]).await?;
    let transfer = api.transfer(id, details).await?;
    ctx.print(&transfer, || describe(&transfer));
    Ok(())
}

/// Confirms the download of a transfer.
pub async fn confirm(ctx: &Context, id: &str) -> Result<(), CliError> {
    let (api, _) = ctx.api(&[READ]).await?;
    api.confirm(id).await?;
    ctx.print(&json!({"fileTransferId": id, "confirmed": true}), || {
        format!("confirmed {id}")
    });
    Ok(())
}

/// A transfer in lines of `label  value`.
fn describe(transfer: &Value) -> String {
    let text = |name: &str| transfer[name].as_str().unwrap_or("-").to_owned();
    let mut lines = vec![
        format!("id          {}", text("fileTransferId")),
        format!("resource    {}", text("resourceId")),
        format!(
            "file        {} ({} bytes)",
            text("fileName"),
            transfer["fileTransferSize"].as_u64().unwrap_or_default()
        ),
        format!(
            "status      {} since {}",
            text("fileTransferStatus"),
            text("fileTransferStatusChanged")
        ),
        format!("sender      {}", text("sender")),
        format!("created     {}", text("created")),
        format!("expires     {}", text("expirationTime")),
        format!("checksum    {}", text("checksum")),
    ];
    if let Some(reference) = transfer["sendersFileTransferReference"].as_str() {
        lines.push(format!("reference   {reference}"));
    }
    for recipient in transfer["recipients"].as_array().into_iter().flatten() {
        lines.push(format!(
            "recipient   {} {}",
            recipient["recipient"].as_str().unwrap_or("-"),
            recipient["currentRecipientFileTransferStatusCode"]
                .as_str()
                .unwrap_or("-")
        ));
    }
    for (key, value) in transfer["propertyList"].as_object().into_iter().flatten() {
        lines.push(format!(
            "property    {key}={}",
            value.as_str().unwrap_or_default()
        ));
    }
    for entry in transfer["fileTransferStatusHistory"]
        .as_array()
        .into_iter()
        .flatten()
    {
        lines.push(format!(
            "history     {} {}",
            entry["fileTransferStatusChanged"].as_str().unwrap_or("-"),
            entry["fileTransferStatus"].as_str().unwrap_or("-")
        ));
    }
    for entry in transfer["recipientFileTransferStatusHistory"]
        .as_array()
        .into_iter()
        .flatten()
    {
        lines.push(format!(
            "history     {} {} {}",
            entry["recipientFileTransferStatusChanged"]
                .as_str()
                .unwrap_or("-"),
            entry["recipient"].as_str().unwrap_or("-"),
            entry["recipientFileTransferStatusCode"]
                .as_str()
                .unwrap_or("-")
        ));
    }
    lines.join("\n")
}
