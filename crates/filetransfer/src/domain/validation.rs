//! Validation of an initialize request (`FileTransferInitialize`), by the reference's rules:
//! every failing field is collected into one 400 problem, field names as on the wire.

use std::collections::{BTreeMap, BTreeSet};

use broker_common::identity::{ORGANIZATION_URN_PREFIX, OrgNumber};

use super::error::FileTransferError;

/// Longest resource id and file name.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest sender's reference.
pub const MAX_REFERENCE_CHARS: usize = 4096;
/// Most property-list entries.
pub const MAX_PROPERTIES: usize = 10;
/// Longest property key.
pub const MAX_PROPERTY_KEY_CHARS: usize = 50;
/// Longest property value.
pub const MAX_PROPERTY_VALUE_CHARS: usize = 3000;

/// An initialize request as the client sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitializeRequest {
    /// `resourceId`.
    pub resource_id: String,
    /// `fileName`.
    pub file_name: String,
    /// `sendersFileTransferReference`.
    pub senders_file_transfer_reference: Option<String>,
    /// `sender`, an organisation identifier.
    pub sender: String,
    /// `recipients`, organisation identifiers.
    pub recipients: Vec<String>,
    /// `propertyList`.
    pub property_list: BTreeMap<String, String>,
    /// `checksum`, MD5 hex.
    pub checksum: Option<String>,
    /// `disableVirusScan`.
    pub disable_virus_scan: bool,
}

/// An initialize request that passed validation, identifiers normalised to org numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidInitialize {
    /// The resource.
    pub resource_id: String,
    /// The file's name.
    pub file_name: String,
    /// The sender's reference.
    pub senders_reference: Option<String>,
    /// The sending organisation.
    pub sender: OrgNumber,
    /// The receiving organisations, in request order.
    pub recipients: Vec<OrgNumber>,
    /// Free metadata.
    pub property_list: BTreeMap<String, String>,
    /// The expected MD5.
    pub checksum: Option<String>,
    /// Whether the file is scanned for malware.
    pub use_virus_scan: bool,
}

/// Altinn's message for a sender that is not an organisation identifier.
const SENDER_PATTERN: &str = "Organization numbers should be on the form countrycode:organizationnumber, for instance 0192:910753614";
/// Altinn's message for a recipient that is not an organisation identifier.
const RECIPIENT_PATTERN: &str = "Each recipient should be on the form countrycode:organizationnumber, for instance 0192:910753614";

/// Parses an organisation identifier as the reference requires:
/// `^(?:\d{4}:\d{9}|urn:altinn:organization:identifier-no:\d{9})$` with a valid check digit.
/// Bare nine digits are refused, unlike [`OrgNumber::parse_identifier`].
pub fn parse_party(text: &str) -> Result<OrgNumber, String> {
    parse_identifier(text, SENDER_PATTERN)
}

fn parse_identifier(text: &str, pattern_message: &str) -> Result<OrgNumber, String> {
    let digits = match text.strip_prefix(ORGANIZATION_URN_PREFIX) {
        Some(digits) => digits,
        None => match text.split_once(':') {
            Some((icd, digits)) if icd.len() == 4 && icd.bytes().all(|b| b.is_ascii_digit()) => {
                digits
            }
            _ => return Err(pattern_message.to_owned()),
        },
    };
    if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(pattern_message.to_owned());
    }
    OrgNumber::parse(digits).map_err(|error| error.to_string())
}

/// Whether `text` is an MD5 as the reference writes it: 32 lowercase hex digits.
pub fn is_md5_hex(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_length(errors: &mut BTreeMap<String, Vec<String>>, field: &str, text: &str, max: usize) {
    let chars = text.chars().count();
    if chars == 0 {
        add(errors, field, format!("The {field} field is required."));
    } else if chars > max {
        add(
            errors,
            field,
            format!("must be between 1 and {max} characters"),
        );
    }
}

fn add(errors: &mut BTreeMap<String, Vec<String>>, field: &str, message: impl Into<String>) {
    errors
        .entry(field.to_owned())
        .or_default()
        .push(message.into());
}

impl InitializeRequest {
    /// The request with identifiers normalised, or every failing field.
    pub fn validate(self) -> Result<ValidInitialize, FileTransferError> {
        let mut errors = BTreeMap::new();
        check_length(&mut errors, "resourceId", &self.resource_id, MAX_NAME_CHARS);
        check_length(&mut errors, "fileName", &self.file_name, MAX_NAME_CHARS);
        if let Some(reference) = &self.senders_file_transfer_reference {
            check_length(
                &mut errors,
                "sendersFileTransferReference",
                reference,
                MAX_REFERENCE_CHARS,
            );
        }
        let sender = parse_party(&self.sender)
            .map_err(|message| add(&mut errors, "sender", message))
            .ok();
        if self.recipients.is_empty() {
            add(
                &mut errors,
                "recipients",
                "One or more recipients are required",
            );
        }
        // Altinn accepts a recipient named twice and shows it once; so do we, keeping the first.
        let mut recipients = Vec::with_capacity(self.recipients.len());
        let mut seen = BTreeSet::new();
        for text in &self.recipients {
            match parse_identifier(text, RECIPIENT_PATTERN) {
                Ok(org) => {
                    if seen.insert(org) {
                        recipients.push(org);
                    }
                }
                Err(message) => add(&mut errors, "recipients", message),
            }
        }
        if self.property_list.len() > MAX_PROPERTIES {
            add(
                &mut errors,
                "propertyList",
                format!("propertyList can contain at most {MAX_PROPERTIES} properties"),
            );
        }
        for (key, value) in &self.property_list {
            if key.chars().count() > MAX_PROPERTY_KEY_CHARS {
                add(
                    &mut errors,
                    "propertyList",
                    format!("keys are at most {MAX_PROPERTY_KEY_CHARS} characters"),
                );
            }
            if value.chars().count() > MAX_PROPERTY_VALUE_CHARS {
                add(
                    &mut errors,
                    "propertyList",
                    format!("values are at most {MAX_PROPERTY_VALUE_CHARS} characters"),
                );
            }
        }
        // As Altinn, an empty or blank checksum means none.
        let checksum = self.checksum.filter(|c| !c.trim().is_empty());
        if let Some(checksum) = &checksum {
            if checksum.len() != 32 {
                add(
                    &mut errors,
                    "checksum",
                    "The checksum, if used, must be a MD5 hash with a length of 32 characters",
                );
            } else if !is_md5_hex(checksum) {
                add(
                    &mut errors,
                    "checksum",
                    "The checksum, if used, must be a MD5 hash in lower case",
                );
            }
        }
        match sender {
            Some(sender) if errors.is_empty() => Ok(ValidInitialize {
                resource_id: self.resource_id,
                file_name: self.file_name,
                senders_reference: self.senders_file_transfer_reference,
                sender,
                recipients,
                property_list: self.property_list,
                checksum,
                use_virus_scan: !self.disable_virus_scan,
            }),
            _ => Err(FileTransferError::Invalid(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> InitializeRequest {
        InitializeRequest {
            resource_id: "broker-test".into(),
            file_name: "report.pdf".into(),
            senders_file_transfer_reference: Some("ref-1".into()),
            sender: "0192:991825827".into(),
            recipients: vec![
                "urn:altinn:organization:identifier-no:974760673".into(),
                "0192:910753614".into(),
            ],
            property_list: BTreeMap::from([("k".into(), "v".into())]),
            checksum: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            disable_virus_scan: false,
        }
    }

    fn fields(request: InitializeRequest) -> Vec<String> {
        match request.validate() {
            Err(FileTransferError::Invalid(errors)) => errors.into_keys().collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_request_is_normalised() {
        let valid = valid().validate().unwrap();
        assert_eq!(valid.sender.to_string(), "991825827");
        let recipients: Vec<String> = valid.recipients.iter().map(|r| r.to_string()).collect();
        assert_eq!(recipients, ["974760673", "910753614"]);
        assert!(valid.use_virus_scan);
    }

    #[test]
    fn a_recipient_named_twice_counts_once_and_a_blank_checksum_is_none() {
        let valid = InitializeRequest {
            recipients: vec![
                "0192:974760673".into(),
                "urn:altinn:organization:identifier-no:974760673".into(),
                "0192:910753614".into(),
            ],
            checksum: Some(" ".into()),
            ..valid()
        }
        .validate()
        .unwrap();
        let recipients: Vec<String> = valid.recipients.iter().map(|r| r.to_string()).collect();
        assert_eq!(recipients, ["974760673", "910753614"]);
        assert_eq!(valid.checksum, None);
    }

    #[test]
    fn each_rule_names_its_field() {
        let long = |n: usize| "x".repeat(n);
        let cases: Vec<(InitializeRequest, &str)> = vec![
            (
                InitializeRequest {
                    resource_id: String::new(),
                    ..valid()
                },
                "resourceId",
            ),
            (
                InitializeRequest {
                    resource_id: long(256),
                    ..valid()
                },
                "resourceId",
            ),
            (
                InitializeRequest {
                    file_name: String::new(),
                    ..valid()
                },
                "fileName",
            ),
            (
                InitializeRequest {
                    file_name: long(256),
                    ..valid()
                },
                "fileName",
            ),
            (
                InitializeRequest {
                    senders_file_transfer_reference: Some(String::new()),
                    ..valid()
                },
                "sendersFileTransferReference",
            ),
            (
                InitializeRequest {
                    senders_file_transfer_reference: Some(long(4097)),
                    ..valid()
                },
                "sendersFileTransferReference",
            ),
            (
                InitializeRequest {
                    sender: "991825827".into(),
                    ..valid()
                },
                "sender",
            ),
            (
                InitializeRequest {
                    sender: "0192:991825828".into(),
                    ..valid()
                },
                "sender",
            ),
            (
                InitializeRequest {
                    sender: "019:991825827".into(),
                    ..valid()
                },
                "sender",
            ),
            (
                InitializeRequest {
                    recipients: vec![],
                    ..valid()
                },
                "recipients",
            ),
            (
                InitializeRequest {
                    recipients: vec!["0192:12345678".into()],
                    ..valid()
                },
                "recipients",
            ),
            (
                InitializeRequest {
                    property_list: (0..11).map(|i| (i.to_string(), "v".into())).collect(),
                    ..valid()
                },
                "propertyList",
            ),
            (
                InitializeRequest {
                    property_list: BTreeMap::from([(long(51), "v".into())]),
                    ..valid()
                },
                "propertyList",
            ),
            (
                InitializeRequest {
                    property_list: BTreeMap::from([("k".into(), long(3001))]),
                    ..valid()
                },
                "propertyList",
            ),
            (
                InitializeRequest {
                    checksum: Some("D41D8CD98F00B204E9800998ECF8427E".into()),
                    ..valid()
                },
                "checksum",
            ),
            (
                InitializeRequest {
                    checksum: Some("abc".into()),
                    ..valid()
                },
                "checksum",
            ),
        ];
        for (request, field) in cases {
            assert_eq!(fields(request), [field]);
        }
    }

    #[test]
    fn limits_are_inclusive_and_every_failure_is_collected() {
        let at_limits = InitializeRequest {
            resource_id: "r".repeat(255),
            file_name: "f".repeat(255),
            senders_file_transfer_reference: Some("s".repeat(4096)),
            property_list: (0..10)
                .map(|i| (format!("{i:0>50}"), "v".repeat(3000)))
                .collect(),
            ..valid()
        };
        assert!(at_limits.validate().is_ok());
        let all_bad = InitializeRequest {
            resource_id: String::new(),
            file_name: String::new(),
            sender: "x".into(),
            recipients: vec![],
            checksum: Some("x".into()),
            ..valid()
        };
        assert_eq!(
            fields(all_bad),
            ["checksum", "fileName", "recipients", "resourceId", "sender"]
        );
    }
}
