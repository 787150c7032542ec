//! Why a request could not be bound, and how ASP.NET Core words it: the `errors` keys and
//! messages of its validation problem, for a JSON body (System.Text.Json's messages under JSON
//! path keys) and for query parameters (model binding's messages under parameter names).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Expected, Unexpected};

/// A binding failure, as [`super::lenient::Lenient`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// A JSON value of another type than the member's.
    WrongType {
        /// What the member holds, in serde's words or as a Rust type name.
        expected: String,
    },
    /// A text that does not convert to the type asked for.
    NotValid(String),
    /// A number naming no member of an enum.
    Undefined(String),
    /// A required member is absent.
    Missing(String),
    /// Anything else serde reports.
    Other(String),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongType { expected } => write!(f, "expected {expected}"),
            Self::NotValid(text) => write!(f, "the value '{text}' is not valid"),
            Self::Undefined(text) => write!(f, "the value '{text}' is invalid"),
            Self::Missing(field) => write!(f, "the {field} field is required"),
            Self::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for BindError {}

impl de::Error for BindError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self::Other(message.to_string())
    }

    fn invalid_type(_unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::WrongType {
            expected: expected.to_string(),
        }
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        match unexpected {
            Unexpected::Str(text) => Self::NotValid(text.to_owned()),
            other => Self::Other(format!("invalid value: {other}, expected {expected}")),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self::Missing(field.to_owned())
    }
}

/// The .NET type System.Text.Json would name for a member serde describes as `expected`.
fn dotnet_type(expected: &str) -> &str {
    match expected {
        "a string" | "a borrowed string" | "string" => "System.String",
        "a boolean" | "bool" => "System.Boolean",
        "i8" | "i16" | "i32" | "u16" => "System.Int32",
        "u8" => "System.Byte",
        "i64" | "u32" | "u64" => "System.Int64",
        "f32" | "f64" => "System.Double",
        "a sequence" => "System.Collections.Generic.List`1[System.String]",
        "a map" => "System.Collections.Generic.Dictionary`2[System.String,System.String]",
        other => other.strip_prefix("struct ").unwrap_or(other),
    }
}

/// `errors` entries for a JSON body that failed at `path` (serde's `a.b[0]`, `.` for the root),
/// as ASP.NET reports them: the failure under its JSON path, and the body parameter as missing.
pub fn json_errors(
    path: &str,
    error: &BindError,
    parameter: &str,
    type_name: &str,
) -> BTreeMap<String, Vec<String>> {
    let json_path = match path {
        "." | "" => "$".to_owned(),
        path => format!("$.{path}"),
    };
    let (key, message) = match error {
        BindError::Missing(field) => (
            "$".to_owned(),
            format!(
                "JSON deserialization for type '{type_name}' was missing required properties \
                 including: '{field}'."
            ),
        ),
        BindError::WrongType { expected } => {
            let dotnet = dotnet_type(expected);
            (
                json_path.clone(),
                format!("The JSON value could not be converted to {dotnet}. Path: {json_path}."),
            )
        }
        BindError::NotValid(_) | BindError::Undefined(_) => (
            json_path.clone(),
            format!("The JSON value could not be converted to an enum value. Path: {json_path}."),
        ),
        BindError::Other(message) => (json_path.clone(), format!("{message}. Path: {json_path}.")),
    };
    let mut errors = BTreeMap::from([(key, vec![message])]);
    errors.insert(parameter.to_owned(), vec![required(parameter)]);
    errors
}

/// ASP.NET's message for a required value that is absent.
pub fn required(name: &str) -> String {
    format!("The {name} field is required.")
}

/// How ASP.NET binds a set of query parameters, which decides the names in its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryBinding {
    /// Each parameter is one of the action's own (`resourceId`): keys and messages use its name
    /// as declared, and a bad value is "not valid" without naming it.
    Parameters,
    /// The parameters fill the properties of one model: keys are the C# property names
    /// (`Year`), and a bad value is "not valid for Year".
    Model,
}

/// The `errors` key and message for query parameter `field` (the struct field's name) that
/// failed.
pub fn query_error(field: &str, error: &BindError, binding: QueryBinding) -> (String, String) {
    let key = match binding {
        QueryBinding::Parameters => field.to_owned(),
        QueryBinding::Model => pascal_case(field),
    };
    let message = match (error, binding) {
        (BindError::NotValid(text), QueryBinding::Parameters) => {
            format!("The value '{text}' is not valid.")
        }
        (BindError::NotValid(text), QueryBinding::Model) => {
            format!("The value '{text}' is not valid for {key}.")
        }
        (BindError::Undefined(text), _) => format!("The value '{text}' is invalid."),
        (BindError::Missing(_), _) => required(&key),
        (BindError::WrongType { .. }, _) => "The value is not valid.".to_owned(),
        (BindError::Other(message), _) => message.clone(),
    };
    (key, message)
}

/// `fileName` → `FileName`: the C# name of a camelCase wire name.
pub fn pascal_case(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_failures_are_keyed_by_json_path_with_the_parameter_required() {
        let errors = json_errors(
            "fileName",
            &BindError::WrongType {
                expected: "a string".into(),
            },
            "initializeExt",
            "FileTransferInitalizeExt",
        );
        assert_eq!(
            errors["$.fileName"],
            ["The JSON value could not be converted to System.String. Path: $.fileName."]
        );
        assert_eq!(
            errors["initializeExt"],
            ["The initializeExt field is required."]
        );
        let errors = json_errors(
            ".",
            &BindError::Missing("name".into()),
            "serviceOwnerInitializeExt",
            "Altinn.Broker.Models.ServiceOwner.ServiceOwnerInitializeExt",
        );
        assert!(errors["$"][0].contains("missing required properties including: 'name'"));
    }

    #[test]
    fn query_failures_speak_of_parameters_or_model_properties() {
        let error = |field, error, binding| query_error(field, &error, binding);
        assert_eq!(
            error(
                "status",
                BindError::NotValid("Sent".into()),
                QueryBinding::Parameters
            ),
            ("status".into(), "The value 'Sent' is not valid.".into())
        );
        assert_eq!(
            error(
                "year",
                BindError::NotValid("abc".into()),
                QueryBinding::Model
            ),
            (
                "Year".into(),
                "The value 'abc' is not valid for Year.".into()
            )
        );
        assert_eq!(
            error(
                "role",
                BindError::Undefined("2".into()),
                QueryBinding::Parameters
            ),
            ("role".into(), "The value '2' is invalid.".into())
        );
        assert_eq!(
            error(
                "resourceId",
                BindError::Missing(String::new()),
                QueryBinding::Parameters
            ),
            (
                "resourceId".into(),
                "The resourceId field is required.".into()
            )
        );
    }
}
