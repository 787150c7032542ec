//! The tus 1.0 headers as pure functions: each request header parsed into what the service
//! takes, or refused with the [`Refusal`] (status and text) tusdotnet answers; each response
//! header written from the service's answer. No I/O, and no input makes one panic
//! (`proptests.rs` holds them to it).

use base64::Engine;
use base64::alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use http::{HeaderMap, HeaderName, StatusCode, header};

/// The protocol version this server speaks (`Tus-Resumable`, `Tus-Version`).
pub const VERSION: &str = "1.0.0";
/// The extensions this server supports (`Tus-Extension`).
pub const EXTENSIONS: &str =
    "creation,creation-with-upload,termination,checksum,concatenation,expiration";
/// The checksum algorithms `Upload-Checksum` may name (`Tus-Checksum-Algorithm`).
pub const CHECKSUM_ALGORITHMS: &str = "md5,sha1,sha256";
/// The content type of a PATCH body (and of a creation POST that carries bytes).
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// Where the tus uploads live; `/{fileTransferId}` and `/{fileTransferId}/partial/{partialId}`
/// below it.
pub const BASE: &str = "/broker/api/v1/filetransfer/upload/tus";

/// `Tus-Resumable`, on requests and answers.
pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
/// `Tus-Version`.
pub const TUS_VERSION: HeaderName = HeaderName::from_static("tus-version");
/// `Tus-Extension`.
pub const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
/// `Tus-Checksum-Algorithm`.
pub const TUS_CHECKSUM_ALGORITHM: HeaderName = HeaderName::from_static("tus-checksum-algorithm");
/// `Tus-Max-Size`.
pub const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
/// `Upload-Length`.
pub const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
/// `Upload-Offset`.
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
/// `Upload-Metadata`.
pub const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
/// `Upload-Concat`.
pub const UPLOAD_CONCAT: HeaderName = HeaderName::from_static("upload-concat");
/// `Upload-Checksum`.
pub const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
/// `Upload-Expires`.
pub const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
/// `Upload-Defer-Length`, which this server refuses.
const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");

/// Base64 as .NET's `Convert.FromBase64String` reads it for tusdotnet: the standard alphabet,
/// padded, the unused bits of the last character ignored.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// A number of bytes as the document states it (fits `u64` whatever the digits).
pub const NUMBER_PATTERN: &str = "^[0-9]{1,19}$";
/// Base64 of any bytes, padded.
const BASE64_PATTERN: &str = "([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?";
/// A metadata key: visible ASCII but the comma.
const KEY_PATTERN: &str = r"[!-+\--~]+";
/// `Upload-Checksum` as the document states it: an algorithm and a digest of its length.
pub const CHECKSUM_PATTERN: &str =
    "^(md5 [A-Za-z0-9+/]{22}==|sha1 [A-Za-z0-9+/]{27}=|sha256 [A-Za-z0-9+/]{43}=)$";

/// `Upload-Metadata` as the document states it (which keys are unique, no pattern can say).
pub fn metadata_pattern() -> String {
    let pair = format!("{KEY_PATTERN}( {BASE64_PATTERN})?");
    format!("^{pair}(,{pair})*$")
}

/// `Upload-Concat` as the document states it, for a transfer id matching `transfer` (that it
/// is the path's own, no pattern can say).
pub fn concat_pattern(transfer: &str) -> String {
    let reference = format!(
        "(https?://[A-Za-z0-9.-]+(:[0-9]{{1,4}})?)?{BASE}/{transfer}/partial/[0-9a-fA-F]{{32}}"
    );
    format!("^(partial|final; *{reference}( +{reference})* *)$")
}

/// Why the gateway refuses a tus request before the service sees it, in tusdotnet's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The path names no upload (an id that is not a UUID, a partial id that is not 32 hex
    /// digits).
    #[error("The requested file transfer was not found")]
    NotFound,
    /// `Tus-Resumable` is missing or names another version.
    #[error("Tus version {0} is not supported. Supported versions: 1.0.0")]
    Version(String),
    /// A creation without `Upload-Length` (and not a final concatenation).
    #[error("Missing Upload-Length header")]
    MissingLength,
    /// `Upload-Length` is not a decimal number.
    #[error("Header Upload-Length must be a positive number")]
    Length,
    /// `Upload-Defer-Length`: the creation-defer-length extension is not supported.
    #[error("Upload-Defer-Length is not supported")]
    DeferLength,
    /// `Upload-Metadata` is not `key base64,key base64,…` with unique keys.
    #[error("Header Upload-Metadata: {0}")]
    Metadata(MetadataError),
    /// `Upload-Concat` is not `partial` or `final;` and this transfer's partial upload URLs.
    #[error("Header Upload-Concat: Header is invalid")]
    Concat,
    /// A PATCH body of another content type.
    #[error("Content-Type {0} is invalid. Must be application/offset+octet-stream")]
    ContentType(String),
    /// A PATCH without `Upload-Offset`.
    #[error("Missing Upload-Offset header")]
    MissingOffset,
    /// `Upload-Offset` is not a decimal number.
    #[error("Header Upload-Offset must be a positive number")]
    Offset,
    /// `Upload-Checksum` names an algorithm other than md5, sha1 and sha256.
    #[error("Unsupported checksum algorithm. Supported algorithms are: md5,sha1,sha256")]
    ChecksumAlgorithm,
    /// `Upload-Checksum` is not `<algorithm> <base64 digest of the algorithm's length>`.
    #[error("Could not parse Upload-Checksum header")]
    Checksum,
}

impl Refusal {
    /// The status tusdotnet answers the refusal with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Version(_) => StatusCode::PRECONDITION_FAILED,
            Self::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// What is wrong with an `Upload-Metadata` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// `a b,,c d`, or a trailing comma.
    #[error("a key-value pair is empty")]
    EmptyPair,
    /// A pair with more than one space.
    #[error("a key and its value must be separated by one space")]
    Spaces,
    /// A key with a character outside visible ASCII (spaces and commas separate pairs).
    #[error("a key must be visible ASCII without spaces and commas")]
    Key,
    /// A value that is not base64 (RFC 4648, padded).
    #[error("the value of {0} is not base64")]
    Value(String),
    /// A key given twice.
    #[error("the key {0} is given twice")]
    Duplicate(String),
}

/// The header `name` as text: `None` when absent, a refusal when not visible ASCII.
fn text<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    unreadable: Refusal,
) -> Result<Option<&'a str>, Refusal> {
    headers
        .get(name)
        .map(|value| value.to_str().map_err(|_| unreadable))
        .transpose()
}

/// A file transfer id from the path, in its hyphenated lower-case form.
pub fn transfer_id(text: &str) -> Result<String, Refusal> {
    uuid::Uuid::parse_str(text)
        .map(|uuid| uuid.hyphenated().to_string())
        .map_err(|_| Refusal::NotFound)
}

/// A partial upload id from the path: 32 hex digits (as the server wrote them, lower case).
pub fn partial_id(text: &str) -> Result<String, Refusal> {
    if text.len() == 32 && text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(Refusal::NotFound)
    }
}

/// The upload URL's path, as `Location` and a final upload's `Upload-Concat` name it.
pub fn location(transfer_id: &str, partial_id: &str) -> String {
    if partial_id.is_empty() {
        format!("{BASE}/{transfer_id}")
    } else {
        format!("{BASE}/{transfer_id}/partial/{partial_id}")
    }
}

/// Refuses a request without `Tus-Resumable: 1.0.0` (every method but OPTIONS needs it).
pub fn tus_resumable(headers: &HeaderMap) -> Result<(), Refusal> {
    let sent = headers
        .get(&TUS_RESUMABLE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    if sent == VERSION {
        Ok(())
    } else {
        Err(Refusal::Version(sent))
    }
}

/// A decimal number of bytes (`Upload-Length`, `Upload-Offset`): digits only, as the
/// protocol writes it, within `u64`.
pub fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Validated `Upload-Metadata`: its pairs in order, values decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata(pub Vec<(String, Vec<u8>)>);

impl Metadata {
    /// Parses `key base64,key base64,…`; a value may be empty (with or without its space), and
    /// an empty header is no metadata.
    pub fn parse(text: &str) -> Result<Self, MetadataError> {
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        if text.is_empty() {
            return Ok(Self(pairs));
        }
        for pair in text.split(',') {
            if pair.is_empty() {
                return Err(MetadataError::EmptyPair);
            }
            let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
            if value.contains(' ') {
                return Err(MetadataError::Spaces);
            }
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|byte| byte.is_ascii_graphic() && byte != b',')
            {
                return Err(MetadataError::Key);
            }
            let value = BASE64
                .decode(value)
                .map_err(|_| MetadataError::Value(key.to_owned()))?;
            if pairs.iter().any(|(seen, _)| seen == key) {
                return Err(MetadataError::Duplicate(key.to_owned()));
            }
            pairs.push((key.to_owned(), value));
        }
        Ok(Self(pairs))
    }

    /// The header text: each key and its value in base64, an empty value as the key alone.
    pub fn to_header(&self) -> String {
        self.0
            .iter()
            .map(|(key, value)| {
                if value.is_empty() {
                    key.clone()
                } else {
                    format!("{key} {}", BASE64.encode(value))
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `Upload-Concat` of a creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concat {
    /// No concatenation: the transfer's own upload.
    None,
    /// `partial`: one part of the transfer, uploaded on its own.
    Partial,
    /// `final;…`: the partial uploads (their ids) whose bytes, in this order, make the file.
    Final(Vec<String>),
}

/// Parses `Upload-Concat` of a creation on `transfer_id`: `partial`, or `final;` followed by
/// space-separated references to partial uploads of this transfer, each an absolute URL or an
/// absolute path whose path is `{BASE}/{transfer_id}/partial/{partialId}` (the prefix compared
/// case-insensitively, as Altinn does).
pub fn concat(text: &str, transfer_id: &str) -> Result<Concat, Refusal> {
    if text == "partial" {
        return Ok(Concat::Partial);
    }
    let references = text.strip_prefix("final;").ok_or(Refusal::Concat)?;
    let partials = references
        .split(' ')
        .filter(|reference| !reference.is_empty())
        .map(|reference| partial_of(reference, transfer_id).ok_or(Refusal::Concat))
        .collect::<Result<Vec<_>, _>>()?;
    if partials.is_empty() {
        return Err(Refusal::Concat);
    }
    Ok(Concat::Final(partials))
}

/// The partial id a final upload's reference names, if it is one of `transfer_id`'s.
fn partial_of(reference: &str, transfer_id: &str) -> Option<String> {
    let uri: http::Uri = reference.parse().ok()?;
    match uri.scheme_str() {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {}
        Some(_) => return None,
        None if reference.starts_with('/') => {}
        None => return None,
    }
    if uri.query().is_some() {
        return None;
    }
    let prefix = format!("{BASE}/{transfer_id}/partial/");
    let path = uri.path();
    let rest = path
        .get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(&prefix))
        .and_then(|_| path.get(prefix.len()..))?;
    partial_id(rest).ok()
}

/// `Upload-Checksum`'s algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (16-byte digest).
    Md5,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
}

impl Algorithm {
    /// The algorithm's name as the protocol writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    fn named(name: &str) -> Option<Self> {
        [Self::Md5, Self::Sha1, Self::Sha256]
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }
}

/// A parsed `Upload-Checksum`: the digest the request's bytes must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The digest, decoded.
    pub digest: Vec<u8>,
}

impl Checksum {
    /// Parses `<algorithm> <base64 digest>`.
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        let (name, digest) = text.split_once(' ').ok_or(Refusal::Checksum)?;
        let algorithm = Algorithm::named(name).ok_or(Refusal::ChecksumAlgorithm)?;
        let digest = BASE64.decode(digest).map_err(|_| Refusal::Checksum)?;
        if digest.len() != algorithm.digest_len() {
            return Err(Refusal::Checksum);
        }
        Ok(Self { algorithm, digest })
    }
}

/// What a creation (POST) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    /// `Upload-Length`; `None` only for a final concatenation.
    pub length: Option<u64>,
    /// `Upload-Concat`.
    pub concat: Concat,
    /// `Upload-Metadata` (validated, written as [`Metadata::to_header`] writes it), or empty.
    pub metadata: String,
    /// `Upload-Checksum` of the bytes a creation-with-upload carries.
    pub checksum: Option<Checksum>,
}

/// Reads a creation on `transfer_id`, in tusdotnet's order: the version, `Upload-Concat`,
/// `Upload-Defer-Length` and `Upload-Length`, `Upload-Metadata`, then `Upload-Checksum`.
pub fn creation(headers: &HeaderMap, transfer_id: &str) -> Result<Creation, Refusal> {
    tus_resumable(headers)?;
    let concat = match text(headers, &UPLOAD_CONCAT, Refusal::Concat)? {
        Some(value) => concat(value, transfer_id)?,
        None => Concat::None,
    };
    if headers.contains_key(&UPLOAD_DEFER_LENGTH) {
        return Err(Refusal::DeferLength);
    }
    // A final upload's length is its partials'; an `Upload-Length` sent with it is ignored.
    let length = match (&concat, text(headers, &UPLOAD_LENGTH, Refusal::Length)?) {
        (Concat::Final(_), _) => None,
        (_, Some(value)) => Some(number(value).ok_or(Refusal::Length)?),
        (_, None) => return Err(Refusal::MissingLength),
    };
    let unreadable = Refusal::Metadata(MetadataError::Key);
    let metadata = text(headers, &UPLOAD_METADATA, unreadable)?
        .map(Metadata::parse)
        .transpose()
        .map_err(Refusal::Metadata)?
        .unwrap_or_default()
        .to_header();
    let checksum = text(headers, &UPLOAD_CHECKSUM, Refusal::Checksum)?
        .map(Checksum::parse)
        .transpose()?;
    Ok(Creation {
        length,
        concat,
        metadata,
        checksum,
    })
}

/// Whether the request's body is tus bytes (`Content-Type: application/offset+octet-stream`,
/// parameters and case aside).
pub fn carries_bytes(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

/// What a PATCH asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// `Upload-Offset`: where the bytes go.
    pub offset: u64,
    /// `Upload-Checksum` of the bytes.
    pub checksum: Option<Checksum>,
}

/// Reads a PATCH, in tusdotnet's order: the version, `Content-Type`, `Upload-Offset`, then
/// `Upload-Checksum`.
pub fn patch(headers: &HeaderMap) -> Result<Patch, Refusal> {
    tus_resumable(headers)?;
    if !carries_bytes(headers) {
        let sent = headers
            .get(header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(Refusal::ContentType(sent));
    }
    let offset = text(headers, &UPLOAD_OFFSET, Refusal::Offset)?.ok_or(Refusal::MissingOffset)?;
    let offset = number(offset).ok_or(Refusal::Offset)?;
    let checksum = text(headers, &UPLOAD_CHECKSUM, Refusal::Checksum)?
        .map(Checksum::parse)
        .transpose()?;
    Ok(Patch { offset, checksum })
}

/// `Upload-Expires`: Unix seconds as an HTTP-date (RFC 9110 §5.6.7, .NET's `"R"` format).
pub fn http_date(unix_seconds: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|time| time.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

/// `Upload-Concat` of a HEAD answer: `partial`, `final;` and the partials' paths, or nothing.
pub fn concat_answer(
    transfer_id: &str,
    partial: bool,
    final_partials: &[String],
) -> Option<String> {
    if partial {
        return Some("partial".to_owned());
    }
    if final_partials.is_empty() {
        return None;
    }
    let paths: Vec<String> = final_partials
        .iter()
        .map(|partial_id| location(transfer_id, partial_id))
        .collect();
    Some(format!("final;{}", paths.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b5a2d1c-8a61-4d5e-9d7e-1f2a3b4c5d6e";
    const PARTIAL: &str = "00112233445566778899aabbccddeeff";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    #[test]
    fn a_creation_takes_a_length_metadata_and_a_checksum() {
        let creation = creation(
            &headers(&[
                ("tus-resumable", "1.0.0"),
                ("upload-length", "1024"),
                ("upload-metadata", "filename aW5wdXQudHh0,is_confidential"),
                ("upload-checksum", "md5 1B2M2Y8AsgTpgAmY7PhCfg=="),
            ]),
            ID,
        )
        .unwrap();
        assert_eq!(creation.length, Some(1024));
        assert_eq!(creation.concat, Concat::None);
        assert_eq!(creation.metadata, "filename aW5wdXQudHh0,is_confidential");
        assert_eq!(creation.checksum.unwrap().algorithm, Algorithm::Md5);
    }

    #[test]
    fn a_creation_is_refused_as_tusdotnet_refuses_it() {
        let refused = |pairs: &[(&str, &str)]| creation(&headers(pairs), ID).unwrap_err();
        assert_eq!(refused(&[]), Refusal::Version(String::new()));
        assert_eq!(
            refused(&[("tus-resumable", "0.2.2")]).to_string(),
            "Tus version 0.2.2 is not supported. Supported versions: 1.0.0"
        );
        let v = ("tus-resumable", "1.0.0");
        assert_eq!(refused(&[v]), Refusal::MissingLength);
        assert_eq!(refused(&[v, ("upload-length", "-1")]), Refusal::Length);
        assert_eq!(refused(&[v, ("upload-length", "1e3")]), Refusal::Length);
        assert_eq!(
            refused(&[v, ("upload-defer-length", "1")]),
            Refusal::DeferLength
        );
        assert_eq!(
            refused(&[v, ("upload-length", "1"), ("upload-metadata", "a b c")]),
            Refusal::Metadata(MetadataError::Spaces)
        );
        assert_eq!(
            refused(&[v, ("upload-concat", "final;")]),
            Refusal::Concat,
            "a final upload of nothing"
        );
        assert_eq!(
            refused(&[
                v,
                ("upload-length", "1"),
                ("upload-checksum", "crc32 AAAAAA==")
            ]),
            Refusal::ChecksumAlgorithm
        );
        assert_eq!(Refusal::Length.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            Refusal::Version(String::new()).status(),
            StatusCode::PRECONDITION_FAILED
        );
    }

    #[test]
    fn a_final_upload_needs_no_length_and_names_partials_by_url_or_path() {
        let path = location(ID, PARTIAL);
        let url = format!(
            "https://broker.example:8443{}",
            path.to_uppercase().replace("TUS", "tus")
        );
        let header = format!("final;{path}  {url}");
        let creation = creation(
            &headers(&[("tus-resumable", "1.0.0"), ("upload-concat", &header)]),
            ID,
        )
        .unwrap();
        assert_eq!(creation.length, None);
        assert_eq!(
            creation.concat,
            Concat::Final(vec![PARTIAL.to_owned(), PARTIAL.to_owned()])
        );
    }

    #[test]
    fn a_reference_outside_the_transfers_partials_is_invalid() {
        for reference in [
            PARTIAL.to_owned(),
            format!("{BASE}/{ID}/{PARTIAL}"),
            format!("{BASE}/0b5a2d1c-8a61-4d5e-9d7e-1f2a3b4c5d6f/partial/{PARTIAL}"),
            format!("{}/", location(ID, PARTIAL)),
            format!("{}?x=1", location(ID, PARTIAL)),
            format!("ftp://host{}", location(ID, PARTIAL)),
            format!("{BASE}/{ID}/partial/{}", &PARTIAL[1..]),
        ] {
            assert_eq!(
                concat(&format!("final;{reference}"), ID),
                Err(Refusal::Concat),
                "{reference}"
            );
        }
        assert_eq!(concat("partial", ID), Ok(Concat::Partial));
        assert_eq!(concat("Partial", ID), Err(Refusal::Concat));
    }

    #[test]
    fn a_patch_needs_the_tus_content_type_and_an_offset() {
        let v = ("tus-resumable", "1.0.0");
        let bytes = ("content-type", "application/offset+octet-stream");
        assert_eq!(
            patch(&headers(&[v, ("content-type", "application/octet-stream")]))
                .unwrap_err()
                .to_string(),
            "Content-Type application/octet-stream is invalid. Must be application/offset+octet-stream"
        );
        assert_eq!(
            patch(&headers(&[v])),
            Err(Refusal::ContentType(String::new()))
        );
        assert_eq!(patch(&headers(&[v, bytes])), Err(Refusal::MissingOffset));
        assert_eq!(
            patch(&headers(&[v, bytes, ("upload-offset", "x")])),
            Err(Refusal::Offset)
        );
        assert_eq!(
            patch(&headers(&[
                v,
                bytes,
                ("upload-offset", "5"),
                ("upload-checksum", "sha1 AAAA")
            ])),
            Err(Refusal::Checksum),
            "a digest of the wrong length"
        );
        let patch = patch(&headers(&[
            v,
            ("content-type", "Application/Offset+Octet-Stream; charset=x"),
            ("upload-offset", "5"),
            (
                "upload-checksum",
                "SHA256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            ),
        ]))
        .unwrap();
        assert_eq!(patch.offset, 5);
        assert_eq!(patch.checksum.unwrap().digest.len(), 32);
    }

    #[test]
    fn numbers_are_digits_within_u64() {
        assert_eq!(number("0"), Some(0));
        assert_eq!(number("18446744073709551615"), Some(u64::MAX));
        assert_eq!(number("18446744073709551616"), None);
        for bad in ["", "+1", " 1", "1.0", "0x10"] {
            assert_eq!(number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn answers_are_written_as_tusdotnet_writes_them() {
        assert_eq!(
            http_date(1_787_139_651).unwrap(),
            "Wed, 19 Aug 2026 11:40:51 GMT"
        );
        assert_eq!(
            concat_answer(ID, false, &[PARTIAL.to_owned(), PARTIAL.to_owned()]).unwrap(),
            format!("final;{0} {0}", location(ID, PARTIAL))
        );
        assert_eq!(concat_answer(ID, true, &[]).unwrap(), "partial");
        assert_eq!(concat_answer(ID, false, &[]), None);
        assert_eq!(transfer_id(&ID.to_uppercase()).unwrap(), ID);
        assert_eq!(
            partial_id("00112233445566778899AABBCCDDEEFF").unwrap(),
            PARTIAL
        );
        assert_eq!(partial_id("nothex"), Err(Refusal::NotFound));
    }
}
