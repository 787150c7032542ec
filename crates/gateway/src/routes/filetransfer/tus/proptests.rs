//! Property-based tests of the tus header parsers: whatever a client sends is parsed or
//! refused, never a panic; what a client writes as the protocol says (and as the document's
//! patterns state) parses to what was written.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::string::string_regex;

use super::headers::{
    Algorithm, CHECKSUM_PATTERN, Checksum, Concat, Metadata, MetadataError, NUMBER_PATTERN,
    Refusal, concat, concat_pattern, creation, location, metadata_pattern, number, patch,
};

/// Cases per property: the parsers are pure and fast.
const CASES: u32 = 2048;

const ID: &str = "0b5a2d1c-8a61-4d5e-9d7e-1f2a3b4c5d6e";

/// Strings matching `pattern` (the document's, without its anchors).
fn matching(pattern: &str) -> impl Strategy<Value = String> {
    let bare = pattern.trim_start_matches('^').trim_end_matches('$');
    string_regex(bare).expect("the pattern compiles")
}

/// Metadata with unique keys.
fn metadata() -> impl Strategy<Value = Metadata> {
    proptest::collection::btree_map(
        "[!-+\\--~]{1,12}",
        proptest::collection::vec(any::<u8>(), 0..40),
        0..6,
    )
    .prop_map(|pairs| Metadata(pairs.into_iter().collect()))
}

/// `name: value` pairs of any bytes a header value may hold, some under the tus names.
fn any_headers() -> impl Strategy<Value = HeaderMap> {
    let names = prop_oneof![
        Just("tus-resumable"),
        Just("upload-length"),
        Just("upload-offset"),
        Just("upload-metadata"),
        Just("upload-concat"),
        Just("upload-checksum"),
        Just("upload-defer-length"),
        Just("content-type"),
    ];
    let value = prop_oneof![
        Just("1.0.0".to_owned()),
        Just("application/offset+octet-stream".to_owned()),
        "final;[ -~]{0,80}",
        "[0-9]{0,25}",
        "\\PC{0,40}",
    ];
    proptest::collection::vec((names, value), 0..8).prop_map(|pairs| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        headers
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Metadata written as the protocol says reads back as it was.
    #[test]
    fn metadata_round_trips(metadata in metadata()) {
        prop_assert_eq!(Metadata::parse(&metadata.to_header()), Ok(metadata));
    }

    /// Any text is metadata or refused; what is accepted writes back to text that reads the same.
    #[test]
    fn any_metadata_is_read_or_refused(text in prop_oneof!["\\PC{0,60}", "[a-z ,=A-Z0-9+/]{0,60}"]) {
        if let Ok(metadata) = Metadata::parse(&text) {
            prop_assert_eq!(Metadata::parse(&metadata.to_header()), Ok(metadata));
        }
    }

    /// Metadata the document's pattern allows is accepted, unless a key repeats.
    #[test]
    fn metadata_the_document_allows_is_accepted(text in matching(&metadata_pattern())) {
        match Metadata::parse(&text) {
            Ok(_) | Err(MetadataError::Duplicate(_)) => {}
            Err(other) => prop_assert!(false, "{text:?} refused: {other}"),
        }
    }

    /// A final upload names its partials by absolute path or URL, in any case of the prefix,
    /// and gets their ids in order.
    #[test]
    fn final_references_are_read_from_urls_and_paths(
        partials in proptest::collection::vec("[0-9a-fA-F]{32}", 1..5),
        origins in proptest::collection::vec(
            prop_oneof![Just(String::new()), "https?://[a-z0-9.-]{1,20}(:[0-9]{1,4})?"], 5),
        upper in any::<bool>(),
        spaces in 1usize..3,
    ) {
        let references: Vec<String> = partials
            .iter()
            .zip(&origins)
            .map(|(partial, origin)| {
                let path = location(ID, partial);
                let path = if upper { path.to_uppercase() } else { path };
                format!("{origin}{path}")
            })
            .collect();
        let header = format!("final;{}", references.join(&" ".repeat(spaces)));
        let expected: Vec<String> = partials.iter().map(|p| p.to_ascii_lowercase()).collect();
        prop_assert_eq!(concat(&header, ID), Ok(Concat::Final(expected)));
    }

    /// Any `Upload-Concat` is read or refused; a final one names partial ids only.
    #[test]
    fn any_concat_is_read_or_refused(text in prop_oneof![
        "\\PC{0,80}",
        "final;[ -~]{0,120}",
        "final;( ?(https?://[a-z.]{1,5})?/broker/api/v1/filetransfer/upload/tus/[0-9a-f-]{36}/partial/[0-9a-fA-F]{30,33}){1,3}",
    ]) {
        match concat(&text, ID) {
            Ok(Concat::Final(partials)) => {
                prop_assert!(!partials.is_empty());
                for partial in partials {
                    prop_assert!(partial.len() == 32
                        && partial.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                }
            }
            Ok(_) => prop_assert_eq!(text, "partial"),
            Err(refusal) => prop_assert_eq!(refusal, Refusal::Concat),
        }
    }

    /// `Upload-Concat` the document's pattern allows is accepted for the path's transfer.
    #[test]
    fn concat_the_document_allows_is_accepted(text in matching(&concat_pattern(ID))) {
        prop_assert!(concat(&text, ID).is_ok(), "{:?} refused", text);
    }

    /// A checksum written as the protocol says reads back; the document's pattern is accepted.
    #[test]
    fn checksums_round_trip(
        algorithm in prop_oneof![Just(Algorithm::Md5), Just(Algorithm::Sha1), Just(Algorithm::Sha256)],
        seed in any::<u8>(),
        allowed in matching(CHECKSUM_PATTERN),
    ) {
        use base64::Engine;
        let length = match algorithm { Algorithm::Md5 => 16, Algorithm::Sha1 => 20, Algorithm::Sha256 => 32 };
        let digest = vec![seed; length];
        let text = format!(
            "{} {}",
            algorithm.name(),
            base64::engine::general_purpose::STANDARD.encode(&digest),
        );
        prop_assert_eq!(Checksum::parse(&text), Ok(Checksum { algorithm, digest }));
        prop_assert!(Checksum::parse(&allowed).is_ok(), "{:?} refused", allowed);
    }

    /// Numbers read back; any text is a number only when it is digits.
    #[test]
    fn numbers_are_digits(n in any::<u64>(), text in "\\PC{0,22}", allowed in matching(NUMBER_PATTERN)) {
        prop_assert_eq!(number(&n.to_string()), Some(n));
        if number(&text).is_some() {
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit()));
        }
        prop_assert!(number(&allowed).is_some());
    }

    /// Any headers make a creation or a PATCH, or a refusal; never a panic.
    #[test]
    fn any_headers_are_read_or_refused(headers in any_headers()) {
        let _ = creation(&headers, ID);
        let _ = patch(&headers);
    }
}
