//! `POST /broker/api/v1/filetransfer/upload`: initialize and upload in one multipart/form-data
//! request, as Altinn's `FileTransferInitializeAndUploadExt` binds it: the `Metadata` fields as
//! ASP.NET form keys (`Metadata.ResourceId`, `Metadata.Recipients` repeated or
//! `Metadata.Recipients[0]`, `Metadata.PropertyList[key]`, names case-insensitive, the prefix
//! optional) or one `Metadata` part of JSON, and the `FileTransfer` part with the file, in any
//! order.
//!
//! The file is never held here: its chunks go on to the service's `Upload` stream as they
//! arrive, whatever the order. When every required metadata field came before the file, the
//! stream starts with the transfer's metadata and the file goes straight into the transfer, as
//! through the upload endpoint. Otherwise it starts as a `spool`: the service writes the file to
//! its storage while the metadata after it is read here, and that metadata follows the file's
//! end; the service then initializes the transfer and makes the spool its bytes. Whatever goes
//! wrong first (metadata missing or invalid, a second file part, a client gone), the stream
//! ends without the metadata and the service deletes the spool before the problem is answered.
//!
//! A metadata part after a file that already went into its transfer is refused (400 naming it,
//! and the transfer fails): honouring it is no longer possible, and ignoring it (a checksum,
//! say) would be worse.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, State};
use broker_common::Problem;
use broker_proto::common::Principal;
use broker_proto::filetransfer as pb;
use broker_proto::filetransfer::upload_message::Message;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

use super::wire::{FileTransferIdBody, FileTransferInitialize};
use super::{Sender, WRITE, upload};
use crate::auth::Authorized;
use crate::binding::parse_json;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

/// The part carrying the file.
const FILE_PART: &str = "FileTransfer";

/// The prefix of the metadata parts.
const METADATA: &str = "Metadata";

/// The longest metadata part accepted; they are short texts (the property values the longest).
const MAX_TEXT_PART: usize = 64 * 1024;

/// The most metadata parts accepted.
const MAX_PARTS: usize = 1000;

/// File chunks buffered between the form and the gRPC stream.
const IN_FLIGHT: usize = 4;

// The form as a schema can state it: the metadata as one part of JSON (a multipart object
// property's default content type) beside the file, and no other part. Altinn's
// `Metadata.<Field>` keys, one part each, bind instead of the JSON part too; a schema cannot say
// "these keys or that part", so the request body's description names them.
/// `FileTransferInitializeAndUpload`: a transfer's metadata and its file in one form.
#[derive(ToSchema)]
#[allow(dead_code)] // Only describes the form `read_form` reads part by part; never built.
struct FileTransferInitializeAndUpload {
    /// The `FileTransferInitialize` fields as JSON (or, instead, `Metadata.<Field>` parts).
    #[schema(rename = "Metadata")]
    metadata: FileTransferInitialize,
    /// The file.
    #[schema(rename = "FileTransfer", value_type = String, format = Binary)]
    file_transfer: Vec<u8>,
}

/// Initializes a file transfer and uploads its file in one request.
#[utoipa::path(post, path = "/broker/api/v1/filetransfer/upload", tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    request_body(content = inline(FileTransferInitializeAndUpload),
        content_type = "multipart/form-data",
        description = "One `Metadata` part of JSON, or `Metadata.<Field>` parts with the \
            `FileTransferInitialize` fields as ASP.NET binds them (`Metadata.Recipients` \
            repeated, `Metadata.PropertyList[key]`), and the `FileTransfer` part with the file, \
            in any order"),
    responses(
        (status = 200, description = "Initialized and uploaded", body = FileTransferIdBody),
        (status = 400, description = "A metadata field is missing or invalid (or comes after a \
            file sent with complete metadata before it), the file part is missing or sent \
            twice, the file is larger than the resource allows, its checksum differs, or the \
            body was cut short", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing, or the caller may not send on the \
            resource", body = ProblemDetails),
    ))]
pub async fn initialize_and_upload(
    State(state): State<AppState>,
    caller: Authorized<Sender>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<FileTransferIdBody>, Problem> {
    caller.require_any_scope(&[WRITE])?;
    let form = form.map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))?;
    let (plan_sender, plan) = oneshot::channel();
    let (file_sender, file) = mpsc::channel(IN_FLIGHT);
    let (metadata_sender, metadata) = oneshot::channel();
    // The form (which the file part borrows) has one reader; the upload starts once the reader
    // reaches the file and knows how it goes on.
    let reading = read_form(form, plan_sender, file_sender, metadata_sender);
    let uploading = async {
        let plan = plan.await.ok()?;
        let messages = |principal| plan.messages(principal, metadata);
        let rpc = |mut client: upload::FileTransferClient, request| async move {
            client.upload(request).await
        };
        Some(upload::send(&state, &caller, messages, file_chunks(file), rpc).await)
    };
    tokio::pin!(reading, uploading);
    let mut read = None;
    let answer = loop {
        tokio::select! {
            // After the form, the service's answer is awaited even when the form failed: the
            // upload then ends unfinished, and what it left is gone once the service answers.
            result = &mut reading, if read.is_none() => read = Some(result),
            // Before the form's end only when the service refused the upload.
            answer = &mut uploading => break answer,
        }
    };
    match (read, answer) {
        (Some(Err(problem)), _) => Err(problem),
        (_, Some(answer)) => Ok(Json(answer?.into())),
        // The reader finished without reaching a file.
        (_, None) => Err(Problem::invalid_field(
            FILE_PART,
            "the form has no FileTransfer part",
        )),
    }
}

/// How the file goes on to the service.
#[derive(Debug)]
enum Plan {
    /// Straight into the transfer the metadata before it declares.
    Direct(FileTransferInitialize),
    /// Into a spool, with the metadata after it.
    Spool,
}

impl Plan {
    /// The upload's start message for `principal`, and its trailer: for a spool, the metadata
    /// from `metadata` once the form ended (nothing when it failed).
    fn messages(
        self,
        principal: Principal,
        metadata: oneshot::Receiver<FileTransferInitialize>,
    ) -> (
        pb::UploadStart,
        impl Stream<Item = pb::UploadMessage> + Send + 'static,
    ) {
        let (initialize, trailer) = match self {
            Self::Direct(initialize) => {
                (Some(initialize.into_request(Some(principal.clone()))), None)
            }
            Self::Spool => (None, Some(metadata)),
        };
        let start = pb::UploadStart {
            spool: trailer.is_some(),
            principal: Some(principal.clone()),
            initialize,
            // The form's length is not the file's.
            declared_length: None,
            file_transfer_id: String::new(),
            tus: None,
        };
        let trailer = futures::stream::iter(trailer)
            .then(|metadata| metadata)
            .filter_map(move |metadata| {
                let message = metadata.ok().map(|metadata| pb::UploadMessage {
                    message: Some(Message::Initialize(Box::new(
                        metadata.into_request(Some(principal.clone())),
                    ))),
                });
                std::future::ready(message)
            });
        (start, trailer)
    }
}

/// What the form reader hands the upload of the file.
#[derive(Debug)]
enum Piece {
    /// The next bytes.
    Chunk(Bytes),
    /// The file is complete.
    End,
}

/// The file's chunks from the form reader; a reader that stops before [`Piece::End`] fails
/// the stream, so the upload is aborted rather than taken for complete.
fn file_chunks(
    pieces: mpsc::Receiver<Piece>,
) -> impl Stream<Item = Result<Bytes, &'static str>> + Send + Unpin + 'static {
    Box::pin(futures::stream::unfold(Some(pieces), |pieces| async move {
        let mut pieces = pieces?;
        match pieces.recv().await {
            Some(Piece::Chunk(chunk)) => Some((Ok(chunk), Some(pieces))),
            Some(Piece::End) => None,
            None => Some((Err("the form ended before the file did"), None)),
        }
    }))
}

/// Reads the whole form: its metadata parts, and the file's chunks into `file` as they come.
/// On reaching the file, says through `plan` how it goes on; after a spooled file, sends the
/// metadata through `metadata` once the form ended. `Ok` when the form ended (with or without
/// a file) or the upload stopped taking the file (its answer says why); the form's problem
/// otherwise, when the senders go without the file's end or the metadata, so the upload ends
/// unfinished.
async fn read_form(
    mut form: Multipart,
    plan: oneshot::Sender<Plan>,
    file: mpsc::Sender<Piece>,
    metadata: oneshot::Sender<FileTransferInitialize>,
) -> Result<(), Problem> {
    let mut fields = FormMetadata::default();
    let mut plan = Some(plan);
    // `None` before the file; then whether it was spooled.
    let mut spooled = None;
    let mut parts = 0;
    while let Some(field) = form.next_field().await.map_err(form_problem)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name.eq_ignore_ascii_case(FILE_PART) {
            let Some(plan) = plan.take() else {
                return Err(Problem::invalid_field(
                    FILE_PART,
                    "the form has more than one FileTransfer part",
                ));
            };
            let spool = !fields.has_required();
            let next = if spool {
                Plan::Spool
            } else {
                Plan::Direct(std::mem::take(&mut fields).finish()?)
            };
            // The upload waits for the plan; should it have stopped, the next send says so.
            let _ = plan.send(next);
            if !pump(field, &file).await? {
                return Ok(());
            }
            // A spool is finished while the metadata after it is read.
            if spool && file.send(Piece::End).await.is_err() {
                return Ok(());
            }
            spooled = Some(spool);
            continue;
        }
        parts += 1;
        if parts > MAX_PARTS {
            return Err(Problem::invalid_field(
                METADATA,
                format!("the form has more than {MAX_PARTS} metadata parts"),
            ));
        }
        let value = read_text(&name, field).await?;
        let bound = fields.set(&name, value)?;
        if bound && spooled == Some(false) {
            return Err(Problem::invalid_field(
                &name,
                format!(
                    "comes after `{FILE_PART}`, whose transfer the metadata before it had \
                     already declared: send all metadata parts before the file, or all after it"
                ),
            ));
        }
    }
    match spooled {
        // No file: the upload never started, and says so.
        None => {}
        Some(false) => {
            // The file is complete only now that no metadata part came after it.
            let _ = file.send(Piece::End).await;
        }
        Some(true) => {
            let _ = metadata.send(fields.finish()?);
        }
    }
    Ok(())
}

/// Forwards the file part's chunks to `file`: `false` when the upload stopped taking them, a
/// problem when the form cannot be read.
async fn pump(mut field: Field<'_>, file: &mpsc::Sender<Piece>) -> Result<bool, Problem> {
    while let Some(chunk) = field.chunk().await.map_err(form_problem)? {
        if file.send(Piece::Chunk(chunk)).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A metadata part's text, refused when longer than [`MAX_TEXT_PART`].
async fn read_text(name: &str, mut field: Field<'_>) -> Result<String, Problem> {
    let mut text = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_problem)? {
        if text.len() + chunk.len() > MAX_TEXT_PART {
            return Err(Problem::invalid_field(
                name,
                format!("longer than {MAX_TEXT_PART} bytes"),
            ));
        }
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).map_err(|_| Problem::invalid_field(name, "is not UTF-8 text"))
}

/// A form that cannot be read: malformed, or cut short by the client (which axum reports as a
/// 500, but is the client's doing).
fn form_problem(error: axum::extract::multipart::MultipartError) -> Problem {
    let status = if error.status().is_client_error() {
        error.status()
    } else {
        http::StatusCode::BAD_REQUEST
    };
    Problem::new(
        status,
        format!("the form cannot be read: {}", error.body_text()),
    )
}

/// The metadata parts read so far.
#[derive(Debug, Default)]
struct FormMetadata {
    /// A `Metadata` part of JSON, when the client sent one.
    json: Option<FileTransferInitialize>,
    resource_id: Option<String>,
    file_name: Option<String>,
    senders_file_transfer_reference: Option<String>,
    sender: Option<String>,
    /// Recipients by index (`Recipients[3]`), or in order of arrival for plain `Recipients`.
    recipients: BTreeMap<(bool, usize), String>,
    property_list: HashMap<String, String>,
    /// `PropertyList[0].Key` / `PropertyList[0].Value` pairs, by index.
    property_pairs: BTreeMap<usize, (Option<String>, Option<String>)>,
    checksum: Option<String>,
    disable_virus_scan: Option<bool>,
}

impl FormMetadata {
    /// Takes in part `name` with `value`; whether it named a metadata field. Parts that name
    /// none are ignored, as ASP.NET's binder ignores them.
    fn set(&mut self, name: &str, value: String) -> Result<bool, Problem> {
        if name.eq_ignore_ascii_case(METADATA) {
            self.json = Some(parse_json(value.as_bytes())?);
            return Ok(true);
        }
        let key = strip_prefix_ignore_case(name, "Metadata.").unwrap_or(name);
        let (field, index, rest) = split_index(key);
        let bad = |message: &str| Problem::invalid_field(name, message.to_owned());
        match (field.to_ascii_lowercase().as_str(), index, rest) {
            ("resourceid", None, "") => self.resource_id = Some(value),
            ("filename", None, "") => self.file_name = Some(value),
            ("sendersfiletransferreference", None, "") => {
                self.senders_file_transfer_reference = Some(value);
            }
            ("sender", None, "") => self.sender = Some(value),
            ("checksum", None, "") => self.checksum = Some(value),
            ("disablevirusscan", None, "") => {
                let flag = match value.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" | "" => false,
                    _ => {
                        return Err(Problem::invalid_field(
                            &format!("{METADATA}.DisableVirusScan"),
                            format!("The value '{value}' is not valid for DisableVirusScan."),
                        ));
                    }
                };
                self.disable_virus_scan = Some(flag);
            }
            ("recipients", None, "") => {
                let next = self.recipients.len();
                self.recipients.insert((true, next), value);
            }
            ("recipients", Some(index), "") => {
                let index = index
                    .parse()
                    .map_err(|_| bad("the index is not a number"))?;
                self.recipients.insert((false, index), value);
            }
            ("propertylist", Some(index), rest) if !rest.is_empty() => {
                let index = index
                    .parse()
                    .map_err(|_| bad("the index is not a number"))?;
                let pair = self.property_pairs.entry(index).or_default();
                match rest.to_ascii_lowercase().as_str() {
                    ".key" => pair.0 = Some(value),
                    ".value" => pair.1 = Some(value),
                    _ => return Err(bad("a property is `[n].Key` and `[n].Value`")),
                }
            }
            ("propertylist", Some(key), "") => {
                self.property_list.insert(key.to_owned(), value);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether any metadata field came as a form key of its own.
    fn has_fields(&self) -> bool {
        self.resource_id.is_some()
            || self.file_name.is_some()
            || self.sender.is_some()
            || !self.recipients.is_empty()
    }

    /// Whether the parts so far declare a transfer: a `Metadata` part of JSON alone, or every
    /// required field as form keys.
    fn has_required(&self) -> bool {
        if self.has_fields() {
            self.resource_id.is_some()
                && self.file_name.is_some()
                && self.sender.is_some()
                && !self.recipients.is_empty()
        } else {
            self.json.is_some()
        }
    }

    /// The declaration the parts make, bound as ASP.NET binds Altinn's form: a field left out
    /// takes the model's default (and the service's validation names it, `Metadata.FileName`),
    /// an empty value is null; a form without any metadata is refused here.
    fn finish(self) -> Result<FileTransferInitialize, Problem> {
        if !self.has_fields() {
            return self.json.ok_or_else(|| {
                Problem::invalid_field(METADATA, format!("The {METADATA} field is required."))
            });
        }
        let mut property_list = self.property_list;
        for (index, pair) in self.property_pairs {
            match pair {
                (Some(key), value) => {
                    property_list.insert(key, value.unwrap_or_default());
                }
                (None, _) => {
                    return Err(Problem::invalid_field(
                        &format!("{METADATA}.PropertyList[{index}].Key"),
                        "The Key field is required.",
                    ));
                }
            }
        }
        Ok(FileTransferInitialize {
            resource_id: form_value(self.resource_id),
            file_name: form_value(self.file_name),
            senders_file_transfer_reference: form_value(self.senders_file_transfer_reference),
            sender: form_value(self.sender),
            recipients: Some(self.recipients.into_values().collect()),
            property_list,
            checksum: form_value(self.checksum),
            disable_virus_scan: self.disable_virus_scan.unwrap_or_default(),
        })
    }
}

/// A text field of the form as ASP.NET binds it: left out, the model's `""`; sent empty, null.
fn form_value(value: Option<String>) -> Option<String> {
    match value {
        None => Some(String::new()),
        Some(text) if text.is_empty() => None,
        Some(text) => Some(text),
    }
}

/// `text` without `prefix`, compared ASCII case-insensitively.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `Field[index]rest` split into its parts; `Field` alone has no index and no rest.
fn split_index(key: &str) -> (&str, Option<&str>, &str) {
    let Some((field, after)) = key.split_once('[') else {
        return (key, None, "");
    };
    match after.split_once(']') {
        Some((index, rest)) => (field, Some(index), rest),
        None => (key, None, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(parts: &[(&str, &str)]) -> Result<FileTransferInitialize, Problem> {
        let mut metadata = FormMetadata::default();
        for (name, value) in parts {
            metadata.set(name, (*value).to_owned())?;
        }
        metadata.finish()
    }

    #[test]
    fn binds_asp_net_form_keys() {
        let initialize = metadata(&[
            ("Metadata.ResourceId", "broker-demo"),
            ("metadata.fileName", "a.txt"),
            ("Metadata.Sender", "0192:991825827"),
            ("Metadata.Recipients[1]", "0192:986252932"),
            ("Metadata.Recipients[0]", "0192:910753614"),
            ("Metadata.PropertyList[kind]", "report"),
            ("Metadata.PropertyList[0].Key", "year"),
            ("Metadata.PropertyList[0].Value", "2026"),
            ("Metadata.DisableVirusScan", "True"),
            ("Metadata.Unknown", "ignored"),
        ])
        .unwrap();
        assert_eq!(initialize.resource_id.as_deref(), Some("broker-demo"));
        assert_eq!(
            initialize.recipients.unwrap(),
            ["0192:910753614", "0192:986252932"]
        );
        assert_eq!(initialize.property_list["kind"], "report");
        assert_eq!(initialize.property_list["year"], "2026");
        assert!(initialize.disable_virus_scan);
    }

    #[test]
    fn binds_unprefixed_keys_and_repeated_recipients() {
        let initialize = metadata(&[
            ("ResourceId", "broker-demo"),
            ("FileName", "a.txt"),
            ("Sender", "0192:991825827"),
            ("Recipients", "0192:986252932"),
            ("Recipients", "0192:910753614"),
        ])
        .unwrap();
        assert_eq!(
            initialize.recipients.unwrap(),
            ["0192:986252932", "0192:910753614"]
        );
    }

    #[test]
    fn accepts_one_json_part() {
        let json = r#"{"resourceId": "r", "fileName": "f", "sender": "s", "recipients": ["x"]}"#;
        let initialize = metadata(&[("Metadata", json)]).unwrap();
        assert_eq!(initialize.recipients.unwrap(), ["x"]);
    }

    #[test]
    fn the_file_goes_straight_in_only_after_every_required_field() {
        let mut form = FormMetadata::default();
        assert!(!form.has_required(), "nothing yet");
        for (name, value) in [
            ("Metadata.ResourceId", "broker-demo"),
            ("Metadata.FileName", "a.txt"),
            ("Metadata.Sender", "0192:991825827"),
        ] {
            assert!(
                form.set(name, value.to_owned()).unwrap(),
                "{name} is metadata"
            );
            assert!(!form.has_required(), "only up to {name}");
        }
        assert!(
            !form.set("Comment", "x".to_owned()).unwrap(),
            "not metadata"
        );
        form.set("Metadata.Recipients", "0192:986252932".to_owned())
            .unwrap();
        assert!(form.has_required());

        let mut json = FormMetadata::default();
        let declaration =
            r#"{"resourceId": "r", "fileName": "f", "sender": "s", "recipients": ["x"]}"#;
        assert!(json.set("Metadata", declaration.to_owned()).unwrap());
        assert!(json.has_required());
        // Form keys beside the JSON part make the declaration: then they must be complete.
        json.set("Metadata.FileName", "g".to_owned()).unwrap();
        assert!(!json.has_required());
    }

    #[test]
    fn fields_left_out_take_the_models_defaults_and_empty_ones_are_null() {
        let initialize =
            metadata(&[("Metadata.FileName", "a.txt"), ("Metadata.Checksum", "")]).unwrap();
        assert_eq!(initialize.file_name.as_deref(), Some("a.txt"));
        assert_eq!(initialize.resource_id.as_deref(), Some(""));
        assert_eq!(initialize.sender.as_deref(), Some(""));
        assert_eq!(initialize.recipients.as_deref(), Some(&[][..]));
        assert_eq!(initialize.checksum, None);
        let problem = metadata(&[]).unwrap_err();
        assert_eq!(
            problem.errors.unwrap()["Metadata"],
            ["The Metadata field is required."]
        );
        let problem = metadata(&[("Metadata.DisableVirusScan", "yes")]).unwrap_err();
        assert_eq!(
            problem.errors.unwrap()["Metadata.DisableVirusScan"],
            ["The value 'yes' is not valid for DisableVirusScan."]
        );
    }
}
