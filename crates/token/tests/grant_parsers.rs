//! Property-based tests of how the token endpoint reads a JWT-bearer grant before checking its
//! signature: the grant type, the assertion's three segments, its header (`alg`, `kid`) and its
//! issuer. Well-formed assertions give back their `kid` and `iss`; anything else is an error of
//! the grant, never a panic.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use broker_token::domain::error::GrantError;
use broker_token::domain::grant::{JWT_BEARER, parse};
use proptest::prelude::*;
use serde_json::json;

/// Cases per property: parsing is pure and fast.
const CASES: u32 = 4096;

/// A JSON value as one base64url segment.
fn segment(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A header with an RS algorithm and a kid, and a payload with an issuer, read back as
    /// they were written, whatever the signature segment holds.
    #[test]
    fn a_well_formed_assertion_gives_its_kid_and_issuer(
        alg in "RS(256|384|512)",
        kid in "\\PC{1,40}",
        iss in "\\PC{1,60}",
        signature in "[A-Za-z0-9_-]{0,50}",
        extra in proptest::option::of("\\PC{0,20}"),
    ) {
        let header = segment(&json!({"alg": alg, "kid": kid, "typ": "JWT"}));
        let payload = segment(&json!({"iss": iss, "extra": extra, "exp": 1}));
        let assertion = format!("{header}.{payload}.{signature}");
        let parsed = parse(JWT_BEARER, &assertion).unwrap();
        prop_assert_eq!(parsed.kid, kid);
        prop_assert_eq!(parsed.client_id, iss);
    }

    /// Another algorithm is an invalid grant; a missing kid or issuer too.
    #[test]
    fn other_algorithms_and_missing_names_are_invalid_grants(
        alg in "(HS|ES|PS)(256|384|512)|none|\\PC{0,8}",
        kid in proptest::option::of("\\PC{0,10}"),
    ) {
        let header = segment(&json!({"alg": alg, "kid": kid}));
        let payload = segment(&json!({"iss": "client"}));
        let assertion = format!("{header}.{payload}.sig");
        let result = parse(JWT_BEARER, &assertion);
        prop_assert!(matches!(result, Err(GrantError::InvalidGrant(_))), "{result:?}");
    }

    /// Any grant type and assertion text: parsed, or refused with a grant error, no panic;
    /// only the JWT-bearer grant type is ever parsed.
    #[test]
    fn any_request_is_parsed_or_refused(
        grant_type in "\\PC{0,10}|urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion in "([A-Za-z0-9_=-]{0,30}\\.){0,4}\\PC{0,30}",
    ) {
        if parse(&grant_type, &assertion).is_ok() {
            prop_assert_eq!(grant_type.as_str(), JWT_BEARER);
            prop_assert_eq!(assertion.split('.').count(), 3);
        }
    }

    /// Arbitrary JSON-ish bytes in the segments (wrong types for `alg`, `kid`, `iss`): no panic.
    #[test]
    fn segments_of_any_json_are_read_or_refused(
        header in "\\PC{0,40}",
        payload in "\\PC{0,40}",
    ) {
        let assertion = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let _ = parse(JWT_BEARER, &assertion);
    }
}
