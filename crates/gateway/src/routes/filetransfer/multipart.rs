//! `POST /broker/api/v1/filetransfer/upload`: initialize and upload in one multipart/form-data
//! request, as Altinn's `FileTransferInitializeAndUploadExt` binds it: the `Metadata` fields as
//! ASP.NET form keys (`Metadata.ResourceId`, `Metadata.Recipients` repeated or
//! `Metadata.Recipients[0]`, `Metadata.PropertyList[key]`, names case-insensitive, the prefix
//! optional) or one `Metadata` part of JSON, then the `FileTransfer` part with the file.
//!
//! The metadata must come before the file, because the file is streamed on as it arrives rather
//! than held until the form ends.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, State};
use broker_common::Problem;
use broker_proto::common::Principal;
use broker_proto::filetransfer as pb;
use tokio::sync::mpsc;

use super::wire::{FileTransferIdBody, FileTransferInitialize};
use super::{WRITE, upload};
use crate::auth::Authenticated;
use crate::extract::parse_json;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

/// The part carrying the file.
const FILE_PART: &str = "FileTransfer";

/// The prefix of the metadata parts.
const METADATA: &str = "Metadata";

/// The longest metadata part accepted; they are short texts (the property values the longest).
const MAX_TEXT_PART: usize = 64 * 1024;

/// The most metadata parts accepted before the file.
const MAX_PARTS: usize = 1000;

/// File chunks buffered between the form and the gRPC stream.
const IN_FLIGHT: usize = 4;

/// Initializes a file transfer and uploads its file in one request.
#[utoipa::path(post, path = "/broker/api/v1/filetransfer/upload", tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    request_body(content_type = "multipart/form-data",
        description = "`Metadata.*` parts with the `FileTransferInitialize` fields (or one \
            `Metadata` part of JSON), then the `FileTransfer` part with the file"),
    responses(
        (status = 200, description = "Initialized and uploaded", body = FileTransferIdBody),
        (status = 400, description = "A metadata field is missing or invalid, the file part is \
            missing or comes first, or the body was cut short", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing, or the caller may not send on the \
            resource", body = ProblemDetails),
    ))]
pub async fn initialize_and_upload(
    State(state): State<AppState>,
    caller: Authenticated,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<FileTransferIdBody>, Problem> {
    caller.require_any_scope(&[WRITE])?;
    let mut form =
        form.map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))?;
    let mut metadata = FormMetadata::default();
    let mut parts = 0;
    while let Some(field) = form.next_field().await.map_err(form_problem)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name.eq_ignore_ascii_case(FILE_PART) {
            let initialize = metadata.finish()?;
            let id = stream_file(&state, &caller, initialize, field).await?;
            return Ok(Json(id.into()));
        }
        parts += 1;
        if parts > MAX_PARTS {
            return Err(Problem::invalid_field(
                FILE_PART,
                format!("more than {MAX_PARTS} parts came before the file"),
            ));
        }
        let value = read_text(&name, field).await?;
        metadata.set(&name, value)?;
    }
    Err(Problem::invalid_field(
        FILE_PART,
        "the form has no FileTransfer part",
    ))
}

/// Streams the file part to the service as the upload of a transfer `initialize` declares.
async fn stream_file(
    state: &AppState,
    caller: &Authenticated,
    initialize: FileTransferInitialize,
    mut field: Field<'_>,
) -> Result<pb::FileTransferId, Problem> {
    // The part borrows the form, so a pump forwards its chunks to the ('static) gRPC stream.
    let (sender, mut receiver) = mpsc::channel::<Result<Bytes, String>>(IN_FLIGHT);
    let pump = async move {
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => break,
                Err(error) => Err(error.body_text()),
            };
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
    };
    let body = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let start = |principal: Principal| pb::UploadStart {
        principal: Some(principal.clone()),
        file_transfer_id: String::new(),
        initialize: Some(initialize.into_request(Some(principal))),
        // The form's length is not the file's.
        declared_length: None,
        spool: false,
    };
    let upload = upload::send(state, caller, start, body);
    tokio::pin!(upload, pump);
    tokio::select! {
        answer = &mut upload => answer,
        () = &mut pump => upload.await,
    }
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
    /// Takes in part `name` with `value`; parts that name no metadata field are ignored, as
    /// ASP.NET's binder ignores them.
    fn set(&mut self, name: &str, value: String) -> Result<(), Problem> {
        if name.eq_ignore_ascii_case(METADATA) {
            self.json = Some(parse_json(value.as_bytes())?);
            return Ok(());
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
                let flag = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" | "" => false,
                    _ => return Err(bad("is not true or false")),
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
            _ => {}
        }
        Ok(())
    }

    /// The declaration the parts make, or a 400 listing every missing required field.
    fn finish(self) -> Result<FileTransferInitialize, Problem> {
        let has_fields = self.resource_id.is_some()
            || self.file_name.is_some()
            || self.sender.is_some()
            || !self.recipients.is_empty();
        if let Some(json) = self.json
            && !has_fields
        {
            return Ok(json);
        }
        let mut errors = BTreeMap::new();
        let mut required = |name: &str, value: Option<String>| {
            value.unwrap_or_else(|| {
                errors.insert(
                    format!("{METADATA}.{name}"),
                    vec![format!("is required, in a part before `{FILE_PART}`")],
                );
                String::new()
            })
        };
        let resource_id = required("ResourceId", self.resource_id);
        let file_name = required("FileName", self.file_name);
        let sender = required("Sender", self.sender);
        let recipients: Vec<String> = self.recipients.into_values().collect();
        if recipients.is_empty() {
            errors.insert(
                format!("{METADATA}.Recipients"),
                vec![format!(
                    "at least one is required, in a part before `{FILE_PART}`"
                )],
            );
        }
        let mut property_list = self.property_list;
        for (index, pair) in self.property_pairs {
            match pair {
                (Some(key), value) => {
                    property_list.insert(key, value.unwrap_or_default());
                }
                (None, _) => {
                    errors.insert(
                        format!("{METADATA}.PropertyList[{index}].Key"),
                        vec!["is required".to_owned()],
                    );
                }
            }
        }
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        Ok(FileTransferInitialize {
            resource_id,
            file_name,
            senders_file_transfer_reference: self
                .senders_file_transfer_reference
                .unwrap_or_default(),
            sender,
            recipients,
            property_list,
            checksum: self.checksum.unwrap_or_default(),
            disable_virus_scan: self.disable_virus_scan.unwrap_or_default(),
        })
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
        assert_eq!(initialize.resource_id, "broker-demo");
        assert_eq!(initialize.recipients, ["0192:910753614", "0192:986252932"]);
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
        assert_eq!(initialize.recipients, ["0192:986252932", "0192:910753614"]);
    }

    #[test]
    fn accepts_one_json_part() {
        let json = r#"{"resourceId": "r", "fileName": "f", "sender": "s", "recipients": ["x"]}"#;
        let initialize = metadata(&[("Metadata", json)]).unwrap();
        assert_eq!(initialize.recipients, ["x"]);
    }

    #[test]
    fn names_every_missing_field() {
        let problem = metadata(&[("Metadata.FileName", "a.txt")]).unwrap_err();
        let errors = problem.errors.unwrap();
        let names: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "Metadata.Recipients",
                "Metadata.ResourceId",
                "Metadata.Sender"
            ]
        );
    }
}
