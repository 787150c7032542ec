//! [`ApiQuery`]: query parameters bound as ASP.NET binds them — names in any case, repeated
//! names filling lists, values converted to each field's type ([`super::lenient`]), an empty
//! value null for an optional one and invalid for a number — and every failure answered with
//! ASP.NET's message for it.

use axum::extract::FromRequestParts;
use broker_common::Problem;
use http::request::Parts;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{BindError, QueryBinding, query_error};
use super::lenient::{Lenient, Source};

/// A set of query parameters, and how ASP.NET binds it.
pub trait QueryModel: DeserializeOwned {
    /// Whether Altinn's action takes the parameters one by one or as one model.
    const BINDING: QueryBinding;
}

/// Query parameters bound into `T`.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: QueryModel,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Self)
    }
}

/// The parameters of `query` (without the `?`), decoded, as ASP.NET's `Request.Query` holds
/// them: grouped by name case-insensitively under the name as first sent, in the order the
/// names first came, each with its values in order.
pub fn query_collection(query: &str) -> Vec<(String, Vec<String>)> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match grouped
            .iter_mut()
            .find(|(seen, _)| seen.eq_ignore_ascii_case(&name))
        {
            Some((_, values)) => values.push(value.into_owned()),
            None => grouped.push((name.into_owned(), vec![value.into_owned()])),
        }
    }
    grouped
}

/// The parameters of `query` as [`query_collection`] groups them: one value as text, several
/// as a list.
pub fn parameters(query: &str) -> Map<String, Value> {
    query_collection(query)
        .into_iter()
        .map(|(name, mut values)| {
            let value = if values.len() == 1 {
                Value::String(values.swap_remove(0))
            } else {
                Value::Array(values.into_iter().map(Value::String).collect())
            };
            (name, value)
        })
        .collect()
}

/// Binds `query` into `T`, or the 400 validation problem ASP.NET would answer, naming every
/// parameter that does not bind: after a failure, binding goes on without that parameter.
pub fn parse_query<T: QueryModel>(query: &str) -> Result<T, Problem> {
    let mut parameters = parameters(query);
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        let value = Value::Object(parameters.clone());
        let error = match serde_path_to_error::deserialize(Lenient::new(value, Source::Query)) {
            Ok(bound) if errors.is_empty() => return Ok(bound),
            Ok(_) => return Err(Problem::validation(errors)),
            Err(error) => error,
        };
        let path = error.path().to_string();
        let field = path.split(['[', '.']).next().unwrap_or_default();
        let field = match error.inner() {
            BindError::Missing(missing) if field.is_empty() || field == "?" => missing.as_str(),
            _ => field,
        };
        let (key, message) = query_error(field, error.inner(), T::BINDING);
        let messages = errors.entry(key).or_default();
        if !messages.contains(&message) {
            messages.push(message);
        }
        let sent = parameters
            .keys()
            .find(|name| name.eq_ignore_ascii_case(field))
            .cloned();
        // A missing parameter has nothing to take out: what was found is all there is.
        match sent {
            Some(name) => {
                parameters.remove(&name);
            }
            None => return Err(Problem::validation(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Search {
        resource_id: String,
        #[serde(default)]
        order_ascending: Option<bool>,
        #[serde(default, rename = "type")]
        types: Vec<String>,
    }

    impl QueryModel for Search {
        const BINDING: QueryBinding = QueryBinding::Parameters;
    }

    #[test]
    fn names_in_any_case_lists_from_repeats_and_empty_as_null() {
        let search: Search = parse_query("RESOURCEID=r&type=a&Type=b&orderAscending=&x=1").unwrap();
        assert_eq!(search.resource_id, "r");
        assert_eq!(search.types, ["a", "b"]);
        assert_eq!(search.order_ascending, None);
        let search: Search = parse_query("resourceId=r&orderascending=TRUE&type=one").unwrap();
        assert_eq!(search.order_ascending, Some(true));
        assert_eq!(search.types, ["one"]);
    }

    #[test]
    fn the_query_collection_keeps_the_first_name_and_order() {
        assert_eq!(
            query_collection("type=a&Size=5&TYPE=b&subject=%2Fparty%2F1+2&&after=0"),
            [
                ("type".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
                ("Size".to_owned(), vec!["5".to_owned()]),
                ("subject".to_owned(), vec!["/party/1 2".to_owned()]),
                ("after".to_owned(), vec!["0".to_owned()]),
            ]
        );
    }

    #[test]
    fn every_bad_parameter_is_named_at_once() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)] // Only deserialised, to exercise the error paths.
        struct Model {
            #[serde(default)]
            year: i32,
            #[serde(default)]
            month: i32,
            #[serde(default)]
            flag: bool,
        }
        impl QueryModel for Model {
            const BINDING: QueryBinding = QueryBinding::Model;
        }
        let problem = parse_query::<Model>("year=abc&month=&flag=1").unwrap_err();
        assert_eq!(
            *problem.errors.unwrap(),
            BTreeMap::from([
                (
                    "Year".to_owned(),
                    vec!["The value 'abc' is not valid for Year.".to_owned()]
                ),
                (
                    "Month".to_owned(),
                    vec!["The value '' is invalid.".to_owned()]
                ),
                (
                    "Flag".to_owned(),
                    vec!["The value '1' is not valid for Flag.".to_owned()]
                ),
            ])
        );
    }

    #[test]
    fn failures_are_worded_as_asp_net_words_them() {
        let problem = parse_query::<Search>("resourceId=").unwrap_err();
        assert_eq!(
            problem.errors.unwrap()["resourceId"],
            ["The resourceId field is required."]
        );
        let problem = parse_query::<Search>("resourceId=r&orderAscending=1").unwrap_err();
        assert_eq!(
            problem.errors.unwrap()["orderAscending"],
            ["The value '1' is not valid."]
        );
    }
}
