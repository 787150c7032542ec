//! Validation of an initialize request (Altinn's `FileTransferInitalizeExt`) by the rules of its
//! data annotations, worded as ASP.NET words them: every failing member is collected into one
//! 400 problem under its C# name (`FileName`), `Required` first, the other rules in the order
//! Altinn declares them. Lengths count UTF-16 code units, as .NET's `string.Length` does.

use std::collections::{BTreeMap, BTreeSet};

use broker_common::identity::{ORGANIZATION_URN_PREFIX, OrgNumber};

use super::error::FileTransferError;

/// Longest resource id and file name.
pub const MAX_NAME_LENGTH: usize = 255;
/// Longest sender's reference.
pub const MAX_REFERENCE_LENGTH: usize = 4096;
/// Most property-list entries.
pub const MAX_PROPERTIES: usize = 10;
/// Longest property key.
pub const MAX_PROPERTY_KEY_LENGTH: usize = 50;
/// Longest property value.
pub const MAX_PROPERTY_VALUE_LENGTH: usize = 3000;

/// The prefix that makes a resource id a resource URN.
const RESOURCE_URN_PREFIX: &str = "urn:altinn:resource:";

/// An initialize request as the client sent it: `None` for a member sent as JSON null, `""`
/// (or an empty list) for one left out, as Altinn's model defaults them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitializeRequest {
    /// `resourceId`, with or without `urn:altinn:resource:`.
    pub resource_id: Option<String>,
    /// `fileName`.
    pub file_name: Option<String>,
    /// `sendersFileTransferReference`.
    pub senders_file_transfer_reference: Option<String>,
    /// `sender`, an organisation identifier.
    pub sender: Option<String>,
    /// `recipients`, organisation identifiers.
    pub recipients: Option<Vec<String>>,
    /// `propertyList`.
    pub property_list: BTreeMap<String, String>,
    /// `checksum`, MD5 hex.
    pub checksum: Option<String>,
    /// `disableVirusScan`.
    pub disable_virus_scan: bool,
}

/// An initialize request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidInitialize {
    /// The resource, without a URN prefix.
    pub resource_id: String,
    /// The file's name.
    pub file_name: String,
    /// The sender's reference.
    pub senders_reference: Option<String>,
    /// The sending organisation.
    pub sender: OrgNumber,
    /// The sender as the client wrote it (`0192:…` or a URN), echoed back as Altinn does.
    pub sender_party: String,
    /// The receiving organisations, distinct, in request order.
    pub recipients: Vec<OrgNumber>,
    /// Free metadata.
    pub property_list: BTreeMap<String, String>,
    /// The expected MD5 as sent: `Some("")` when left out, `None` when sent as null.
    pub checksum: Option<String>,
    /// Whether the file is scanned for malware.
    pub use_virus_scan: bool,
}

/// Altinn's message for a sender that is not an organisation identifier.
const SENDER_PATTERN: &str = "Organization numbers should be on the form countrycode:organizationnumber (e.g. 0192:910753614) or urn:altinn:organization:identifier-no:organizationnumber";
/// Altinn's message for a recipient that is not an organisation identifier.
const RECIPIENT_PATTERN: &str = "Each recipient should be on the form countrycode:organizationnumber (e.g. 0192:910753614) or urn:altinn:organization:identifier-no:organizationnumber";

/// The length of `text` as .NET counts it.
fn length(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Whether `text` matches Altinn's organisation pattern
/// `^(?:\d{4}:\d{9}|urn:altinn:organization:identifier-no:\d{9})$`.
fn is_party(text: &str) -> bool {
    let digits = match text.strip_prefix(ORGANIZATION_URN_PREFIX) {
        Some(digits) => digits,
        None => match text.split_once(':') {
            Some((icd, digits)) if icd.len() == 4 && icd.bytes().all(|b| b.is_ascii_digit()) => {
                digits
            }
            _ => return false,
        },
    };
    digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Parses an organisation identifier as the broker API writes it (`0192:<orgnr>`, any four-digit
/// ICD, or the organisation URN), with a valid check digit.
pub fn parse_party(text: &str) -> Result<OrgNumber, String> {
    if !is_party(text) {
        return Err(SENDER_PATTERN.to_owned());
    }
    OrgNumber::parse_identifier(text).map_err(|error| error.to_string())
}

/// Altinn's rule for a resource that requires a party (`requiredParty`, compared without any
/// prefix): when the sender is not that party, it must be the one and only recipient (code 27
/// for more than one recipient, 26 when it is not the recipient). Blank requires nothing.
pub fn check_required_party(
    required: &str,
    sender: OrgNumber,
    recipients: &[OrgNumber],
) -> Result<(), FileTransferError> {
    let required = required.trim();
    if required.is_empty() {
        return Ok(());
    }
    let required = required.rsplit(':').next().unwrap_or(required);
    if sender.to_string() == required {
        return Ok(());
    }
    if recipients.len() > 1 {
        return Err(FileTransferError::RequiredPartyNotOnlyRecipient);
    }
    match recipients.first() {
        Some(recipient) if recipient.to_string() == required => Ok(()),
        _ => Err(FileTransferError::RequiredPartyMissing),
    }
}

/// Whether `text` is an MD5 as the reference writes it: 32 lowercase hex digits.
pub fn is_md5_hex(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `resourceId` without the `urn:altinn:resource:` a client may put before it.
fn without_resource_prefix(text: &str) -> &str {
    text.strip_prefix(RESOURCE_URN_PREFIX).unwrap_or(text)
}

/// The failing members and their messages, in the order ASP.NET reports them per member.
#[derive(Default)]
struct Errors(BTreeMap<String, Vec<String>>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// `[Required]`: null, empty or blank text fails.
    fn required(&mut self, field: &str, value: Option<&str>) {
        if value.is_none_or(|text| text.trim().is_empty()) {
            self.add(field, format!("The {field} field is required."));
        }
    }

    /// `[StringLength(max, MinimumLength = 1)]`: null passes.
    fn length(&mut self, field: &str, value: Option<&str>, max: usize) {
        if value.is_some_and(|text| !(1..=max).contains(&length(text))) {
            self.add(
                field,
                format!(
                    "The field {field} must be a string with a minimum length of 1 and a maximum \
                     length of {max}."
                ),
            );
        }
    }
}

impl InitializeRequest {
    /// The request with its identifiers parsed, or every failing member.
    pub fn validate(self) -> Result<ValidInitialize, FileTransferError> {
        let mut errors = Errors::default();
        let resource_id = self.resource_id.as_deref();
        errors.required("ResourceId", resource_id);
        errors.length("ResourceId", resource_id, MAX_NAME_LENGTH);
        let resource_format = resource_id.is_some_and(|text| {
            let bare = without_resource_prefix(text);
            text.is_empty()
                || (!bare.contains(':') && (1..=MAX_NAME_LENGTH).contains(&length(bare)))
        });
        if !resource_format {
            errors.add("ResourceId", "Invalid Resource identifier format");
        }
        let file_name = self.file_name.as_deref();
        errors.required("FileName", file_name);
        errors.length("FileName", file_name, MAX_NAME_LENGTH);
        errors.length(
            "SendersFileTransferReference",
            self.senders_file_transfer_reference.as_deref(),
            MAX_REFERENCE_LENGTH,
        );
        let sender_text = self.sender.as_deref().unwrap_or_default();
        errors.required("Sender", self.sender.as_deref());
        // `[RegularExpression]` lets an empty value through (`[Required]` reports it).
        let sender = if sender_text.is_empty() {
            None
        } else {
            parse_party(sender_text)
                .map_err(|message| errors.add("Sender", message))
                .ok()
        };
        let recipients = self.recipients_checked(&mut errors);
        self.check_properties(&mut errors);
        // A checksum that is left out, null or blank means none; Altinn checks only its length
        // and case here (the upload compares it with the file's MD5).
        if let Some(checksum) = self.checksum.as_deref().filter(|c| !c.trim().is_empty()) {
            if length(checksum) != 32 {
                errors.add(
                    "Checksum",
                    "The checksum, if used, must be a MD5 hash with a length of 32 characters",
                );
            } else if checksum.chars().any(char::is_uppercase) {
                errors.add(
                    "Checksum",
                    "The checksum, if used, must be a MD5 hash in lower case",
                );
            }
        }
        match sender {
            Some(sender) if errors.0.is_empty() => Ok(ValidInitialize {
                resource_id: without_resource_prefix(resource_id.unwrap_or_default()).to_owned(),
                file_name: self.file_name.unwrap_or_default(),
                senders_reference: self.senders_file_transfer_reference,
                sender,
                sender_party: sender_text.to_owned(),
                recipients,
                property_list: self.property_list,
                checksum: self.checksum,
                use_virus_scan: !self.disable_virus_scan,
            }),
            _ => Err(FileTransferError::Invalid(errors.0)),
        }
    }

    /// The recipients, parsed and made distinct (Altinn shows a recipient named twice once);
    /// Altinn's three rules on the list are added to `errors`.
    fn recipients_checked(&self, errors: &mut Errors) -> Vec<OrgNumber> {
        let Some(texts) = &self.recipients else {
            errors.add("Recipients", "The Recipients field is required.");
            return Vec::new();
        };
        let mut recipients = Vec::with_capacity(texts.len());
        let mut seen = BTreeSet::new();
        let mut malformed = false;
        for text in texts {
            let parsed = if is_party(text) {
                OrgNumber::parse_identifier(text).map_err(|error| error.to_string())
            } else {
                Err(RECIPIENT_PATTERN.to_owned())
            };
            match parsed {
                Ok(org) => {
                    if seen.insert(org) {
                        recipients.push(org);
                    }
                }
                // Altinn reports the pattern once for the whole list.
                Err(message) if !malformed => {
                    malformed = true;
                    errors.add("Recipients", message);
                }
                Err(_) => {}
            }
        }
        if texts.is_empty() {
            errors.add("Recipients", "One or more recipients are required");
        }
        recipients
    }

    /// Altinn's `PropertyList` rule: at most ten entries, then the first key or value too long.
    fn check_properties(&self, errors: &mut Errors) {
        if self.property_list.len() > MAX_PROPERTIES {
            errors.add(
                "PropertyList",
                format!("PropertyList can contain at most {MAX_PROPERTIES} properties"),
            );
            return;
        }
        for (key, value) in &self.property_list {
            let (key_length, value_length) = (length(key), length(value));
            if key_length > MAX_PROPERTY_KEY_LENGTH {
                errors.add(
                    "PropertyList",
                    format!(
                        "PropertyList Key can not be longer than {MAX_PROPERTY_KEY_LENGTH}. \
                         Length:{key_length}, KeyValue:{key}"
                    ),
                );
                return;
            }
            if value_length > MAX_PROPERTY_VALUE_LENGTH {
                errors.add(
                    "PropertyList",
                    format!(
                        "PropertyList Value can not be longer than {MAX_PROPERTY_VALUE_LENGTH}. \
                         Length:{value_length}, Value:{value}"
                    ),
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> InitializeRequest {
        InitializeRequest {
            resource_id: Some("broker-test".into()),
            file_name: Some("report.pdf".into()),
            senders_file_transfer_reference: Some("ref-1".into()),
            sender: Some("0192:991825827".into()),
            recipients: Some(vec![
                "urn:altinn:organization:identifier-no:974760673".into(),
                "0192:910753614".into(),
            ]),
            property_list: BTreeMap::from([("k".into(), "v".into())]),
            checksum: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            disable_virus_scan: false,
        }
    }

    fn errors(request: InitializeRequest) -> BTreeMap<String, Vec<String>> {
        match request.validate() {
            Err(FileTransferError::Invalid(errors)) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_request_is_parsed_and_keeps_the_senders_form() {
        let valid = InitializeRequest {
            resource_id: Some("urn:altinn:resource:broker-test".into()),
            sender: Some("urn:altinn:organization:identifier-no:991825827".into()),
            ..valid()
        }
        .validate()
        .unwrap();
        assert_eq!(valid.resource_id, "broker-test");
        assert_eq!(valid.sender.to_string(), "991825827");
        assert_eq!(
            valid.sender_party,
            "urn:altinn:organization:identifier-no:991825827"
        );
        let recipients: Vec<String> = valid.recipients.iter().map(|r| r.to_string()).collect();
        assert_eq!(recipients, ["974760673", "910753614"]);
        assert!(valid.use_virus_scan);
    }

    #[test]
    fn a_recipient_named_twice_counts_once_and_a_blank_checksum_is_none() {
        let valid = InitializeRequest {
            recipients: Some(vec![
                "0192:974760673".into(),
                "urn:altinn:organization:identifier-no:974760673".into(),
                "0192:910753614".into(),
            ]),
            checksum: Some(" ".into()),
            ..valid()
        }
        .validate()
        .unwrap();
        assert_eq!(valid.recipients.len(), 2);
        assert_eq!(valid.checksum.as_deref(), Some(" "));
    }

    /// Mirrors the messages Altinn's `FileTransferControllerTests` look for
    /// (`Initialize_With11Properties_ValidationFailure`, `…InvalidKeyLength…`,
    /// `…InvalidValueLength…`) and the framework's data-annotation messages.
    #[test]
    fn each_rule_says_what_asp_net_says() {
        let long = |n: usize| "x".repeat(n);
        let cases: Vec<(InitializeRequest, &str, Vec<String>)> = vec![
            (
                InitializeRequest {
                    file_name: Some(String::new()),
                    ..valid()
                },
                "FileName",
                vec![
                    "The FileName field is required.".into(),
                    "The field FileName must be a string with a minimum length of 1 and a \
                     maximum length of 255."
                        .into(),
                ],
            ),
            (
                InitializeRequest {
                    file_name: None,
                    ..valid()
                },
                "FileName",
                vec!["The FileName field is required.".into()],
            ),
            (
                InitializeRequest {
                    resource_id: Some("a:b".into()),
                    ..valid()
                },
                "ResourceId",
                vec!["Invalid Resource identifier format".into()],
            ),
            (
                InitializeRequest {
                    resource_id: None,
                    ..valid()
                },
                "ResourceId",
                vec![
                    "The ResourceId field is required.".into(),
                    "Invalid Resource identifier format".into(),
                ],
            ),
            (
                InitializeRequest {
                    senders_file_transfer_reference: Some(String::new()),
                    ..valid()
                },
                "SendersFileTransferReference",
                vec![
                    "The field SendersFileTransferReference must be a string with a minimum \
                     length of 1 and a maximum length of 4096."
                        .into(),
                ],
            ),
            (
                InitializeRequest {
                    sender: Some(String::new()),
                    ..valid()
                },
                "Sender",
                vec!["The Sender field is required.".into()],
            ),
            (
                InitializeRequest {
                    sender: Some("991825827".into()),
                    ..valid()
                },
                "Sender",
                vec![SENDER_PATTERN.into()],
            ),
            (
                InitializeRequest {
                    recipients: None,
                    ..valid()
                },
                "Recipients",
                vec!["The Recipients field is required.".into()],
            ),
            (
                InitializeRequest {
                    recipients: Some(vec![]),
                    ..valid()
                },
                "Recipients",
                vec!["One or more recipients are required".into()],
            ),
            (
                InitializeRequest {
                    recipients: Some(vec!["0192:12345678".into(), "x".into()]),
                    ..valid()
                },
                "Recipients",
                vec![RECIPIENT_PATTERN.into()],
            ),
            (
                InitializeRequest {
                    property_list: (0..11).map(|i| (i.to_string(), "v".into())).collect(),
                    ..valid()
                },
                "PropertyList",
                vec!["PropertyList can contain at most 10 properties".into()],
            ),
            (
                InitializeRequest {
                    property_list: BTreeMap::from([(long(54), "v".into())]),
                    ..valid()
                },
                "PropertyList",
                vec![format!(
                    "PropertyList Key can not be longer than 50. Length:54, KeyValue:{}",
                    long(54)
                )],
            ),
            (
                InitializeRequest {
                    property_list: BTreeMap::from([("k".into(), "A".repeat(3001))]),
                    ..valid()
                },
                "PropertyList",
                vec![format!(
                    "PropertyList Value can not be longer than 3000. Length:3001, Value:{}",
                    "A".repeat(3001)
                )],
            ),
            (
                InitializeRequest {
                    checksum: Some("D41D8CD98F00B204E9800998ECF8427E".into()),
                    ..valid()
                },
                "Checksum",
                vec!["The checksum, if used, must be a MD5 hash in lower case".into()],
            ),
            (
                InitializeRequest {
                    checksum: Some("abc".into()),
                    ..valid()
                },
                "Checksum",
                vec![
                    "The checksum, if used, must be a MD5 hash with a length of 32 characters"
                        .into(),
                ],
            ),
        ];
        for (request, field, messages) in cases {
            let errors = errors(request);
            assert_eq!(errors.keys().collect::<Vec<_>>(), [field], "{errors:?}");
            assert_eq!(errors[field], messages, "{field}");
        }
    }

    /// Mirrors Altinn's `InitializeFileTransfer_WithRequiredParty_*` tests.
    #[test]
    fn a_required_party_is_the_sender_or_the_only_recipient() {
        let org = |n: &str| OrgNumber::parse(n).unwrap();
        let (required, other, third) = (org("991825827"), org("312195771"), org("986252932"));
        let check = |sender, recipients: &[OrgNumber]| {
            check_required_party(
                "urn:altinn:organization:identifier-no:991825827",
                sender,
                recipients,
            )
        };
        assert!(
            check(required, &[other, third]).is_ok(),
            "the sender is the party"
        );
        assert!(
            check(other, &[required]).is_ok(),
            "the party is the only recipient"
        );
        assert!(matches!(
            check(other, &[third]),
            Err(FileTransferError::RequiredPartyMissing)
        ));
        assert!(matches!(
            check(other, &[third, required]),
            Err(FileTransferError::RequiredPartyNotOnlyRecipient)
        ));
        assert!(check_required_party(" ", other, &[third]).is_ok());
    }

    #[test]
    fn lengths_count_utf16_units_and_limits_are_inclusive() {
        let at_limits = InitializeRequest {
            resource_id: Some("r".repeat(255)),
            file_name: Some("é".repeat(255)),
            senders_file_transfer_reference: Some("s".repeat(4096)),
            property_list: (0..10)
                .map(|i| (format!("{i:0>50}"), "v".repeat(3000)))
                .collect(),
            ..valid()
        };
        assert!(at_limits.validate().is_ok());
        // An emoji is two UTF-16 units: 128 of them are 256.
        let too_long = InitializeRequest {
            file_name: Some("😀".repeat(128)),
            ..valid()
        };
        assert!(errors(too_long).contains_key("FileName"));
        let all_bad = InitializeRequest {
            resource_id: Some(String::new()),
            file_name: Some(String::new()),
            sender: Some("x".into()),
            recipients: Some(vec![]),
            checksum: Some("x".into()),
            ..valid()
        };
        let keys: Vec<String> = errors(all_bad).into_keys().collect();
        assert_eq!(
            keys,
            ["Checksum", "FileName", "Recipients", "ResourceId", "Sender"]
        );
    }
}
