//! `send`: checksum the file, initialize the transfer, upload the bytes streamed from disk, and
//! optionally wait until the broker publishes it.
//!
//! The MD5 is computed first (one streamed pass) and declared at initialize, so the broker fails
//! a transfer whose bytes changed on the way rather than publishing them. Files above the tus
//! threshold are uploaded resumably ([`tus`]): the transfer's id goes to stderr before the
//! upload starts, and `send --resume <id>` finishes an upload that was interrupted.

mod tus;

use std::path::Path;
use std::time::Duration;

use md5::Digest;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::{Context, WRITE};
use crate::api::{Api, Initialize};
use crate::cli::SendArgs;
use crate::config::Profile;
use crate::error::CliError;
use crate::party::OrgNumber;
use crate::progress;

/// Bytes read from disk at a time.
const CHUNK: usize = 256 * 1024;
/// How often `--wait` asks for the status.
const POLL: Duration = Duration::from_millis(500);

/// Sends `args.file`, or with `--resume` finishes sending it.
pub async fn run(ctx: &Context, args: SendArgs) -> Result<(), CliError> {
    let length = std::fs::metadata(&args.file)
        .map_err(|error| CliError::io(&args.file, error))?
        .len();
    let visible = progress::wanted(ctx.json);
    if let Some(id) = &args.resume {
        return resume(ctx, &args, id, length, visible).await;
    }
    let resource = args
        .resource
        .clone()
        .ok_or_else(|| CliError::Config("--resource is required".to_owned()))?;
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
    let checksum = md5_of(&args.file, length, "checksum", visible).await?;

    let (api, profile) = ctx.api(&[WRITE]).await?;
    // Altinn requires a reference; the file's name stands in when none is given.
    let reference = args.reference.clone().unwrap_or_else(|| file_name.clone());
    let body = Initialize {
        resource_id: resource,
        file_name,
        sender: OrgNumber::parse(&profile.org)?.party(),
        recipients,
        property_list: args.properties.iter().cloned().collect(),
        checksum: checksum.clone(),
        senders_file_transfer_reference: Some(reference),
    };
    let id = api.initialize(&body).await?;

    let threshold = args.tus_threshold.unwrap_or(profile.tus_threshold());
    // A broker without tus still takes the file in one request.
    let resumable = length > threshold.0 && api.tus_supported(&id).await?;
    let (api, resumed_from) = if resumable {
        announce(ctx, &id, &args.file);
        let target = tus::Target {
            id: &id,
            path: &args.file,
            length,
        };
        let settings = tus_settings(&args, &profile);
        let (api, from) = tus::upload(ctx, api, &target, settings, visible).await?;
        (api, Some(from))
    } else {
        upload_whole(&api, &id, &args.file, length, visible).await?;
        (api, None)
    };
    finish(ctx, &api, &args, &id, length, Some(checksum), resumed_from).await
}

/// Finishes the interrupted upload of transfer `id` from where the broker's copy ends.
async fn resume(
    ctx: &Context,
    args: &SendArgs,
    id: &str,
    length: u64,
    visible: bool,
) -> Result<(), CliError> {
    // The id becomes part of a path: only a UUID is taken.
    let id = uuid::Uuid::parse_str(id)
        .map_err(|_| CliError::Config(format!("`{id}` is not a file transfer id")))?
        .to_string();
    let (api, profile) = ctx.api(&[WRITE]).await?;
    let overview = api.transfer(&id, false).await?;
    // Another file than the one initialized would be refused only after all of it was sent.
    let declared = overview["checksum"]
        .as_str()
        .filter(|checksum| !checksum.is_empty());
    if let Some(declared) = declared {
        let actual = md5_of(&args.file, length, "checksum", visible).await?;
        if !actual.eq_ignore_ascii_case(declared) {
            return Err(CliError::Integrity(format!(
                "{} is not the file of transfer {id}: its MD5 is {actual}, the transfer's {declared}",
                args.file.display()
            )));
        }
    }
    if !api.tus_supported(&id).await? {
        return Err(CliError::Config(format!(
            "the broker at {} takes no resumable (tus 1.0) uploads",
            profile.base_url()
        )));
    }
    let target = tus::Target {
        id: &id,
        path: &args.file,
        length,
    };
    let settings = tus_settings(args, &profile);
    let (api, from) = tus::upload(ctx, api, &target, settings, visible).await?;
    let checksum = declared.map(str::to_owned);
    finish(ctx, &api, args, &id, length, checksum, Some(from)).await
}

/// The tus settings: the flags', else the profile's.
fn tus_settings(args: &SendArgs, profile: &Profile) -> tus::Settings {
    tus::Settings {
        chunk_size: args.tus_chunk_size.unwrap_or(profile.tus_chunk_size()).0,
        checksums: args.tus_checksum,
    }
}

/// Tells on stderr which transfer is about to be uploaded resumably, so whoever interrupts the
/// upload knows what to resume; stdout stays the result's (`ID=$(broker send …)`).
fn announce(ctx: &Context, id: &str, file: &Path) {
    let command = format!("broker send --resume {id} {}", file.display());
    if ctx.json {
        eprintln!("{}", json!({"fileTransferId": id, "resumeWith": command}));
    } else {
        eprintln!("file transfer {id}: if the upload is interrupted, resume it with `{command}`");
    }
}

/// Uploads the whole file in one request.
async fn upload_whole(
    api: &Api,
    id: &str,
    path: &Path,
    length: u64,
    visible: bool,
) -> Result<(), CliError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|error| CliError::io(path, error))?;
    let bar = progress::bar(length, "upload", visible);
    let stream = progress::counted(ReaderStream::with_capacity(file, CHUNK), bar.clone());
    let uploaded = api
        .upload(id, reqwest::Body::wrap_stream(stream), length)
        .await;
    bar.finish_and_clear();
    uploaded
}

/// Waits for publication if asked, then prints the result: the id alone for people, so
/// `ID=$(broker send …)` works; the whole result as JSON.
async fn finish(
    ctx: &Context,
    api: &Api,
    args: &SendArgs,
    id: &str,
    length: u64,
    checksum: Option<String>,
    resumed_from: Option<u64>,
) -> Result<(), CliError> {
    let status = if args.wait {
        Some(wait_until_published(api, id).await?)
    } else {
        None
    };
    ctx.print(
        &json!({
            "fileTransferId": id,
            "size": length,
            "checksum": checksum,
            "status": status,
            "resumable": resumed_from.is_some(),
            "resumedFrom": resumed_from,
        }),
        || id.to_owned(),
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
