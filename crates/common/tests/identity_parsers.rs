//! Property-based tests of the organisation identifiers every API takes (`0192:<orgnr>`,
//! `urn:altinn:organization:identifier-no:<orgnr>`, bare digits): valid numbers round-trip in
//! every form, a wrong check digit or a stray character is refused, and nothing panics.

use broker_common::identity::OrgNumber;
use proptest::prelude::*;

/// Cases per property: the parsers are pure and fast.
const CASES: u32 = 4096;

/// Nine digits whose mod-11 check digit is right, built from eight random ones.
fn valid_org_number() -> impl Strategy<Value = String> {
    proptest::array::uniform8(0u32..10).prop_filter_map("check digit 10 is never issued", |d| {
        const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
        let sum: u32 = WEIGHTS.iter().zip(&d).map(|(w, d)| w * d).sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => return None,
            check => check,
        };
        Some(d.iter().chain([&check]).map(u32::to_string).collect())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A valid number reads the same in every form and writes back as it was read.
    #[test]
    fn a_valid_number_round_trips_in_every_form(digits in valid_org_number(), icd in "[0-9]{4}") {
        let org = OrgNumber::parse(&digits).unwrap();
        prop_assert_eq!(org.to_string(), digits.clone());
        prop_assert_eq!(OrgNumber::parse_identifier(&org.iso6523()), Ok(org));
        prop_assert_eq!(OrgNumber::parse_identifier(&org.urn()), Ok(org));
        prop_assert_eq!(OrgNumber::parse_identifier(&format!("{icd}:{digits}")), Ok(org));
        prop_assert_eq!(OrgNumber::parse_identifier(&digits), Ok(org));
        prop_assert_eq!(digits.parse::<OrgNumber>(), Ok(org));
    }

    /// Changing the check digit of a valid number makes it invalid.
    #[test]
    fn a_wrong_check_digit_is_refused(digits in valid_org_number(), bump in 1u8..10) {
        let mut bytes = digits.into_bytes();
        bytes[8] = b'0' + (bytes[8] - b'0' + bump) % 10;
        let text = String::from_utf8(bytes).unwrap();
        prop_assert!(OrgNumber::parse(&text).is_err(), "{text} accepted");
    }

    /// Any text: refused or a nine-digit number that writes back as its digits.
    #[test]
    fn any_text_is_refused_or_nine_digits(text in "\\PC{0,50}") {
        for org in [OrgNumber::parse(&text), OrgNumber::parse_identifier(&text)].into_iter().flatten() {
            let written = org.to_string();
            prop_assert!(written.len() == 9 && text.ends_with(&written), "{text} → {written}");
        }
    }

    /// Identifier-shaped text with extra characters around the digits is refused.
    #[test]
    fn padded_identifiers_are_refused(digits in valid_org_number(), pad in "[ a-z:+-]{1,3}") {
        for text in [format!("0192:{digits}{pad}"), format!("{pad}{digits}")] {
            prop_assert!(OrgNumber::parse_identifier(&text).is_err(), "{text} accepted");
        }
    }
}
