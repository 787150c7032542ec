//! `send`: checksum the file, initialize the transfer, upload the bytes streamed from disk, and
//! optionally wait until the broker publishes it.
//!
//! The MD5 is computed first (one streamed pass) and declared at initialize, so the broker fails
//! a transfer whose bytes changed on the way rather than publishing them.

use std::path::Path;
use std::time::Duration;

use md5::Digest;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::{Context, WRITE};
use crate::api::{Api, Initialize};
use crate::cli::SendArgs;
use crate::error::CliError;
use crate::party::OrgNumber;
use crate::progress;

/// Bytes read from disk at a time.
const CHUNK: usize = 256 * 1024;
/// How often `--wait` asks for the status.
const POLL: Duration = Duration::from_millis(500);

/// Sends `args.file`.
pub async fn run(ctx: &Context, args: SendArgs) -> Result<(), CliError> {
    let recipients = args
        .recipients
        .iter()
        .map(|r| OrgNumber::parse(r).map(|org| org.party()))
        .collect::<Result<Vec<_>, _>>()?;
    let file_name = args
        .file
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| CliError::Config(format!("{} has no file name", args.file.display())))?
        .to_owned();
    let length = std::fs::metadata(&args.file)
        .map_err(|error| CliError::io(&args.file, error))?
        .len();
    let visible = progress::wanted(ctx.json);
    let checksum = md5_of(&args.file, length, "checksum", visible).await?;

    let (api, profile) = ctx.api(&[WRITE]).await?;
    // Altinn requires a reference; the file's name stands in when none is given.
    let reference = args.reference.unwrap_or_else(|| file_name.clone());
    let body = Initialize {
        resource_id: args.resource,
        file_name,
        sender: OrgNumber::parse(&profile.org)?.party(),
        recipients,
        property_list: args.properties.into_iter().collect(),
        checksum: checksum.clone(),
        senders_file_transfer_reference: Some(reference),
    };
    let id = api.initialize(&body).await?;

    let file = tokio::fs::File::open(&args.file)
        .await
        .map_err(|error| CliError::io(&args.file, error))?;
    let bar = progress::bar(length, "upload", visible);
    let stream = progress::counted(ReaderStream::with_capacity(file, CHUNK), bar.clone());
    let uploaded = api
        .upload(&id, reqwest::Body::wrap_stream(stream), length)
        .await;
    bar.finish_and_clear();
    uploaded?;

    let status = if args.wait {
        Some(wait_until_published(&api, &id).await?)
    } else {
        None
    };
    ctx.print(
        &json!({
            "fileTransferId": id,
            "size": length,
            "checksum": checksum,
            "status": status,
        }),
        || id.clone(),
    );
    Ok(())
}

/// The file's MD5 as lowercase hex, read in chunks so memory stays flat; `label` names the bar.
pub async fn md5_of(
    path: &Path,
    length: u64,
    label: &'static str,
    visible: bool,
) -> Result<String, CliError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|error| CliError::io(path, error))?;
    let bar = progress::bar(length, label, visible);
    let mut hasher = md5::Md5::new();
    let mut buffer = vec![0; CHUNK];
    loop {
        let read = file
            .read(&mut buffer)
            .await
            .map_err(|error| CliError::io(path, error))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        bar.inc(read as u64);
    }
    bar.finish_and_clear();
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Polls until the transfer is Published; any end state but that is an error.
async fn wait_until_published(api: &Api, id: &str) -> Result<String, CliError> {
    loop {
        let overview = api.transfer(id, false).await?;
        let status = overview["fileTransferStatus"].as_str().unwrap_or_default();
        match status {
            "Published" => return Ok(status.to_owned()),
            "Failed" | "Cancelled" | "Purged" => {
                return Err(CliError::TransferFailed {
                    id: id.to_owned(),
                    status: status.to_owned(),
                });
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}
