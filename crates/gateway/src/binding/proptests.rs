//! Property-based tests of the lenient binding every query string and JSON body goes through:
//! whatever a caller sends is bound or refused with a 400 validation problem, never a panic,
//! and values written any of the ways ASP.NET accepts (names in any case, numbers as text,
//! repeated names as lists) bind to what was written.

use proptest::prelude::*;
use serde::Deserialize;

use super::{
    JsonBody, QueryBinding, QueryModel, ResourceId, parse_json, parse_query, query_collection,
};

/// Cases per property: binding is pure and fast.
const CASES: u32 = 4096;

/// A model with one member of each kind the handlers bind.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Model {
    count: Option<i32>,
    flag: Option<bool>,
    names: Option<Vec<String>>,
    resource_id: Option<ResourceId>,
    when: Option<super::Timestamp>,
}

impl QueryModel for Model {
    const BINDING: QueryBinding = QueryBinding::Model;
}

impl JsonBody for Model {
    const PARAMETER: &'static str = "model";
    const TYPE: &'static str = "Model";
}

/// `name` with each letter's case flipped where `flips` says so.
fn recase(name: &str, flips: &[bool]) -> String {
    name.chars()
        .zip(flips.iter().cycle())
        .map(|(c, flip)| if *flip { c.to_ascii_uppercase() } else { c })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any query string: bound, or a 400 problem.
    #[test]
    fn any_query_is_bound_or_refused(
        query in "((count|COUNT|flag|names|resourceId|when|\\PC{0,6})=(\\PC|%[0-9A-Fa-f]{2}){0,12}&?){0,6}",
    ) {
        if let Err(problem) = parse_query::<Model>(&query) {
            prop_assert_eq!(problem.status, 400);
        }
    }

    /// Values written as ASP.NET takes them bind to what was written, names in any case.
    #[test]
    fn written_values_bind_to_themselves(
        count in any::<i32>(),
        flag in any::<bool>(),
        names in proptest::collection::vec("[a-z0-9]{1,8}", 2..5),
        resource in "[a-z0-9-]{1,20}",
        flips in proptest::collection::vec(any::<bool>(), 1..8),
        seconds in 0i64..253_402_300_799,
    ) {
        let when = chrono::DateTime::from_timestamp(seconds, 0).unwrap();
        let mut query = format!(
            "{}={count}&{}={flag}&{}=urn:altinn:resource:{resource}&{}={}",
            recase("count", &flips),
            recase("flag", &flips),
            recase("resourceId", &flips),
            recase("when", &flips),
            when.format("%Y-%m-%dT%H:%M:%S%%2B00:00"),
        );
        for name in &names {
            query += &format!("&{}={name}", recase("names", &flips));
        }
        let model = parse_query::<Model>(&query).unwrap();
        prop_assert_eq!(model.count, Some(count));
        prop_assert_eq!(model.flag, Some(flag));
        prop_assert_eq!(model.names, Some(names));
        prop_assert_eq!(model.resource_id.map(|id| id.0), Some(resource));
        prop_assert_eq!(model.when.map(|at| at.0), Some(when));
    }

    /// Grouping keeps every value: as many as were sent, each under one name.
    #[test]
    fn grouping_keeps_every_value(pairs in proptest::collection::vec(("[a-cA-C]{1,2}", "[a-z0-9]{0,4}"), 0..12)) {
        let query = pairs
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        let grouped = query_collection(&query);
        prop_assert_eq!(grouped.iter().map(|(_, values)| values.len()).sum::<usize>(), pairs.len());
        for (i, (name, _)) in grouped.iter().enumerate() {
            prop_assert!(!grouped[i + 1..].iter().any(|(other, _)| other.eq_ignore_ascii_case(name)));
        }
    }

    /// Any body: bound, or a 400 problem.
    #[test]
    fn any_body_is_bound_or_refused(body in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Err(problem) = parse_json::<Model>(&body) {
            prop_assert_eq!(problem.status, 400);
        }
    }

    /// JSON-shaped bodies with members of any type: bound, or a 400 problem.
    #[test]
    fn json_of_any_shape_is_bound_or_refused(
        member in "count|COUNT|flag|names|resourceId|when|x",
        value in "null|true|false|-?[0-9]{1,12}|\"[^\"\\\\]{0,10}\"|\\[\\]|\\{\\}|\\[1,\"a\"\\]|1e400",
    ) {
        let body = format!("{{\"{member}\": {value}}}");
        if let Err(problem) = parse_json::<Model>(body.as_bytes()) {
            prop_assert_eq!(problem.status, 400);
        }
    }

    /// Numbers sent as JSON numbers or as JSON strings bind alike.
    #[test]
    fn numbers_bind_from_numbers_and_text(count in any::<i32>()) {
        let as_number = parse_json::<Model>(format!("{{\"count\": {count}}}").as_bytes()).unwrap();
        let as_text = parse_json::<Model>(format!("{{\"Count\": \"{count}\"}}").as_bytes()).unwrap();
        prop_assert_eq!(as_number.count, Some(count));
        prop_assert_eq!(as_text.count, Some(count));
    }
}
