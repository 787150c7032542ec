//! Input binding as ASP.NET Core binds Altinn's requests, built once for every JSON body and
//! query string of the gateway: property and parameter names in any case, numbers as JSON
//! strings, enums by name in any case or by number, points in time in any form
//! `DateTimeOffset` parses, a resource id with or without its URN prefix, unknown names ignored
//! and no name that was sent ever dropped; a failure is the 400 validation problem ASP.NET
//! would answer, with its keys and messages.
//!
//! - [`lenient`]: the serde deserializer that does the binding;
//! - [`json`] and [`query`]: the extractors handlers use ([`ApiJson`], [`ApiQuery`]);
//! - [`values`]: values written more than one way ([`Timestamp`], [`ResourceId`]);
//! - [`error`]: ASP.NET's words for each failure.

mod error;
mod json;
mod lenient;
#[cfg(test)]
mod proptests;
mod query;
mod values;

pub use error::QueryBinding;
pub use json::{ApiJson, JsonBody, bind_json, parse_json};
pub use query::{ApiQuery, QueryModel, parse_query, query_collection};
pub use values::{ResourceId, Timestamp};

use serde::{Deserialize, Deserializer};

/// Reads `null` as the type's default, as ASP.NET binds a null string or object: for body fields
/// Altinn clients send either absent or `null` (`#[serde(default, deserialize_with = ...)]`).
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Reads a member that must be sent but may be `null` (a C# `required` nullable property): left
/// out it fails binding, `null` is `None` for validation to refuse.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}
