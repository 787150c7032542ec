//! A serde [`Deserializer`] over a parsed JSON value (or a query string turned into one) that
//! reads it the way ASP.NET Core's model binding reads Altinn's requests, so every input type of
//! the gateway binds like Altinn's without a line of its own:
//!
//! - a struct's property names match case-insensitively (`"FileName"` fills `fileName`), an
//!   exact match first; unknown names are left for serde to ignore, as ASP.NET ignores them;
//! - numbers may arrive as JSON strings (`"maxFileTransferSize": "1024"`,
//!   `NumberHandling.AllowReadingFromString`);
//! - enums bind by name in any case or by their number (the position of the variant, which is
//!   why wire enums list their variants in Altinn's order);
//! - from a query string ([`Source::Query`]) every value is text, converted to the type asked
//!   for (`true`, `5`, an enum name); a repeated parameter fills a list, and a scalar takes the
//!   first of several values; an empty value is `null` for an optional one.
//!
//! Nothing else is loosened: a string property still refuses a number, and a boolean in a JSON
//! body must be `true` or `false`, as `System.Text.Json` has it. Failures are [`BindError`]s,
//! which say what ASP.NET would say about them.

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde_json::{Map, Number, Value};

use super::error::BindError;

/// Where the value came from, which decides how text converts to other types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A JSON body: numbers may be strings, everything else keeps its JSON type.
    Json,
    /// A query string: every value is text, converted to whatever type is asked for.
    Query,
}

/// A value to deserialize the ASP.NET way.
pub struct Lenient {
    value: Value,
    source: Source,
}

impl Lenient {
    /// `value`, read as coming from `source`.
    pub fn new(value: Value, source: Source) -> Self {
        Self { value, source }
    }

    /// The text a scalar was sent as: a JSON string, or in a query the first of several values.
    fn text(&self) -> Option<&str> {
        match (&self.value, self.source) {
            (Value::String(text), _) => Some(text),
            (Value::Array(values), Source::Query) => values.first().and_then(Value::as_str),
            _ => None,
        }
    }

    /// A number sent as text, parsed; in a query, surrounding blanks are allowed as .NET's
    /// converters allow them, integers may be hexadecimal (`0x1F`, `&h1F`, `#1F`, as
    /// `Int32Converter` reads them), and an empty value is invalid.
    fn parsed<T: std::str::FromStr>(
        &self,
        from_integer: impl Fn(i64) -> Option<T>,
    ) -> Result<Option<T>, BindError> {
        let Some(text) = self.text() else {
            return Ok(None);
        };
        let trimmed = match self.source {
            Source::Query if text.trim().is_empty() => {
                return Err(BindError::Undefined(text.to_owned()));
            }
            Source::Query => text.trim(),
            Source::Json => text,
        };
        let hexadecimal = || {
            let digits = ["0x", "0X", "&h", "&H", "#"]
                .iter()
                .find_map(|prefix| trimmed.strip_prefix(prefix))?;
            from_integer(i64::from_str_radix(digits, 16).ok()?)
        };
        match (trimmed.parse(), self.source) {
            (Ok(number), _) => Ok(Some(number)),
            (Err(_), Source::Query) => hexadecimal()
                .map(Some)
                .ok_or_else(|| BindError::NotValid(text.to_owned())),
            // System.Text.Json names the type it could not make of the value.
            (Err(_), Source::Json) => Err(BindError::WrongType {
                expected: std::any::type_name::<T>().to_owned(),
            }),
        }
    }

    /// What a value of the wrong type was, for the error.
    fn unexpected(&self) -> Unexpected<'_> {
        match &self.value {
            Value::Null => Unexpected::Unit,
            Value::Bool(flag) => Unexpected::Bool(*flag),
            Value::Number(number) => match (number.as_u64(), number.as_i64(), number.as_f64()) {
                (Some(n), _, _) => Unexpected::Unsigned(n),
                (_, Some(n), _) => Unexpected::Signed(n),
                (_, _, Some(n)) => Unexpected::Float(n),
                _ => Unexpected::Other("a number"),
            },
            Value::String(text) => Unexpected::Str(text),
            Value::Array(_) => Unexpected::Seq,
            Value::Object(_) => Unexpected::Map,
        }
    }

    fn wrong_type<'de, V: Visitor<'de>, T>(&self, visitor: &V) -> Result<T, BindError> {
        Err(de::Error::invalid_type(self.unexpected(), visitor))
    }
}

/// Visits a JSON number as the widest type that holds it.
fn visit_number<'de, V: Visitor<'de>>(number: &Number, visitor: V) -> Result<V::Value, BindError> {
    if let Some(n) = number.as_u64() {
        visitor.visit_u64(n)
    } else if let Some(n) = number.as_i64() {
        visitor.visit_i64(n)
    } else {
        visitor.visit_f64(number.as_f64().unwrap_or(f64::NAN))
    }
}

/// Implements the integer and float methods: a number as is, or a number written as text.
macro_rules! numbers {
    ($($method:ident => $visit:ident: $ty:ty, $from_integer:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            if let Some(number) = self.parsed::<$ty>($from_integer)? {
                return visitor.$visit(number);
            }
            match &self.value {
                Value::Number(number) => visit_number(number, visitor),
                _ => self.wrong_type(&visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Lenient {
    type Error = BindError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let source = self.source;
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(flag) => visitor.visit_bool(flag),
            Value::Number(number) => visit_number(&number, visitor),
            Value::String(text) => visitor.visit_string(text),
            Value::Array(values) => visitor.visit_seq(Seq::new(values, source)),
            Value::Object(map) => visitor.visit_map(Fields::new(map, source, None)),
        }
    }

    numbers! {
        deserialize_i8 => visit_i8: i8, |n| i8::try_from(n).ok();
        deserialize_i16 => visit_i16: i16, |n| i16::try_from(n).ok();
        deserialize_i32 => visit_i32: i32, |n| i32::try_from(n).ok();
        deserialize_i64 => visit_i64: i64, Some;
        deserialize_u8 => visit_u8: u8, |n| u8::try_from(n).ok();
        deserialize_u16 => visit_u16: u16, |n| u16::try_from(n).ok();
        deserialize_u32 => visit_u32: u32, |n| u32::try_from(n).ok();
        deserialize_u64 => visit_u64: u64, |n| u64::try_from(n).ok();
        deserialize_f32 => visit_f32: f32, |_| None;
        deserialize_f64 => visit_f64: f64, |_| None;
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.source == Source::Query
            && let Some(text) = self.text()
        {
            // `bool.Parse`: either word, in any case, blanks around allowed.
            return match text.trim() {
                word if word.eq_ignore_ascii_case("true") => visitor.visit_bool(true),
                word if word.eq_ignore_ascii_case("false") => visitor.visit_bool(false),
                "" => Err(BindError::Undefined(text.to_owned())),
                _ => Err(BindError::NotValid(text.to_owned())),
            };
        }
        match self.value {
            Value::Bool(flag) => visitor.visit_bool(flag),
            _ => self.wrong_type(&visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match (self.value, self.source) {
            // ASP.NET binds an empty query value as null, which a required text refuses.
            (Value::String(text), Source::Query) if text.is_empty() => {
                Err(BindError::Missing(String::new()))
            }
            (Value::String(text), _) => visitor.visit_string(text),
            (Value::Array(mut values), Source::Query) if !values.is_empty() => {
                Lenient::new(values.swap_remove(0), Source::Query).deserialize_string(visitor)
            }
            (value, source) => Lenient::new(value, source).wrong_type(&visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match (&self.value, self.source) {
            (Value::Null, _) => visitor.visit_none(),
            // ASP.NET binds an empty query value to null for a nullable parameter.
            (Value::String(text), Source::Query) if text.trim().is_empty() => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            _ => self.wrong_type(&visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match (self.value, self.source) {
            (Value::Array(values), source) => visitor.visit_seq(Seq::new(values, source)),
            // One query value fills a one-element list.
            (Value::String(text), Source::Query) => {
                visitor.visit_seq(Seq::new(vec![Value::String(text)], Source::Query))
            }
            (value, source) => Lenient::new(value, source).wrong_type(&visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Object(map) => visitor.visit_map(Fields::new(map, self.source, None)),
            value => Lenient::new(value, self.source).wrong_type(&visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Object(map) => visitor.visit_map(Fields::new(map, self.source, Some(fields))),
            value => Lenient::new(value, self.source).wrong_type(&visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let text = match (&self.value, self.text()) {
            (Value::Number(number), _) => number.to_string(),
            (_, Some(text)) => text.to_owned(),
            _ => return self.wrong_type(&visitor),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(BindError::Undefined(text));
        }
        let by_name = variants
            .iter()
            .find(|variant| **variant == trimmed)
            .or_else(|| variants.iter().find(|v| v.eq_ignore_ascii_case(trimmed)));
        let variant = match (by_name, trimmed.parse::<u64>()) {
            (Some(variant), _) => variant,
            (None, Ok(number)) => usize::try_from(number)
                .ok()
                .and_then(|n| variants.get(n))
                .ok_or(BindError::Undefined(text.clone()))?,
            (None, Err(_)) => return Err(BindError::NotValid(text)),
        };
        visitor.visit_enum(UnitVariant(variant))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf identifier
    }
}

/// The elements of a list, each read the same lenient way.
struct Seq {
    values: std::vec::IntoIter<Value>,
    source: Source,
}

impl Seq {
    fn new(values: Vec<Value>, source: Source) -> Self {
        Self {
            values: values.into_iter(),
            source,
        }
    }
}

impl<'de> SeqAccess<'de> for Seq {
    type Error = BindError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.values
            .next()
            .map(|value| seed.deserialize(Lenient::new(value, self.source)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.values.len())
    }
}

/// The entries of an object; for a struct, each name is first matched to the struct's own
/// field names, case-insensitively.
struct Fields {
    entries: std::vec::IntoIter<(String, Value)>,
    value: Option<Value>,
    source: Source,
}

impl Fields {
    fn new(map: Map<String, Value>, source: Source, fields: Option<&[&str]>) -> Self {
        let entries: Vec<(String, Value)> = match fields {
            None => map.into_iter().collect(),
            Some(fields) => canonical_entries(map, fields),
        };
        Self {
            entries: entries.into_iter(),
            value: None,
            source,
        }
    }
}

/// The entries with every name that matches a field case-insensitively renamed to the field;
/// when several names match one field, the exact spelling wins (so a field is never sent twice).
fn canonical_entries(map: Map<String, Value>, fields: &[&str]) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> = Vec::with_capacity(map.len());
    for (name, value) in map {
        let exact = fields.contains(&name.as_str());
        let canonical = if exact {
            name
        } else {
            match fields
                .iter()
                .find(|field| field.eq_ignore_ascii_case(&name))
            {
                Some(field) => (*field).to_owned(),
                None => {
                    entries.push((name, value));
                    continue;
                }
            }
        };
        match entries.iter_mut().find(|(seen, _)| *seen == canonical) {
            Some(entry) if exact => entry.1 = value,
            Some(_) => {}
            None => entries.push((canonical, value)),
        }
    }
    entries
}

impl<'de> MapAccess<'de> for Fields {
    type Error = BindError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((name, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let key: StrDeserializer<'_, BindError> = name.as_str().into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        // serde asks for a value only after its key.
        let value = self.value.take().unwrap_or(Value::Null);
        seed.deserialize(Lenient::new(value, self.source))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A unit enum variant chosen by name or number.
struct UnitVariant(&'static str);

impl<'de> EnumAccess<'de> for UnitVariant {
    type Error = BindError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), Self::Error> {
        let name: StrDeserializer<'_, BindError> = self.0.into_deserializer();
        seed.deserialize(name).map(|variant| (variant, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant {
    type Error = BindError;

    fn unit_variant(self) -> Result<(), Self::Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        _seed: T,
    ) -> Result<T::Value, Self::Error> {
        Err(BindError::NotValid(self.0.to_owned()))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Err(BindError::NotValid(self.0.to_owned()))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Err(BindError::NotValid(self.0.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    enum Status {
        Initialized,
        UploadStarted,
        Published,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        file_name: String,
        #[serde(default)]
        max_size: Option<i64>,
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        status: Option<Status>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        properties: BTreeMap<String, String>,
    }

    fn json(value: serde_json::Value) -> Result<Body, BindError> {
        Body::deserialize(Lenient::new(value, Source::Json))
    }

    #[test]
    fn names_match_in_any_case_and_unknown_names_are_ignored() {
        let body = json(json!({"FileName": "a.txt", "MAXSIZE": 5, "Unknown": [1]})).unwrap();
        assert_eq!(body.file_name, "a.txt");
        assert_eq!(body.max_size, Some(5));
        // The exact spelling wins over another case of it, whatever their order.
        let body = json(json!({"FILENAME": "upper", "fileName": "exact"})).unwrap();
        assert_eq!(body.file_name, "exact");
    }

    #[test]
    fn numbers_may_be_strings_but_strings_may_not_be_numbers() {
        let max = |value| json(json!({"fileName": "a", "maxSize": value})).map(|b| b.max_size);
        assert_eq!(max(json!("42")).unwrap(), Some(42));
        assert_eq!(max(json!(-3)).unwrap(), Some(-3));
        assert!(
            matches!(max(json!("4x")), Err(BindError::WrongType { expected }) if expected == "i64")
        );
        assert!(matches!(max(json!(1.5)), Err(BindError::WrongType { .. })));
        assert!(matches!(
            json(json!({"fileName": 5})),
            Err(BindError::WrongType { .. })
        ));
        assert!(
            json(json!({"fileName": "a", "flag": "true"})).is_err(),
            "no bool from text in JSON"
        );
        assert!(json(json!({"fileName": "a", "properties": {"k": 1}})).is_err());
    }

    #[test]
    fn enums_bind_by_name_in_any_case_or_by_number() {
        let status = |value| json(json!({"fileName": "a", "status": value})).map(|b| b.status);
        assert_eq!(status(json!("published")).unwrap(), Some(Status::Published));
        assert_eq!(
            status(json!("UPLOADSTARTED")).unwrap(),
            Some(Status::UploadStarted)
        );
        assert_eq!(status(json!(0)).unwrap(), Some(Status::Initialized));
        assert_eq!(status(json!("2")).unwrap(), Some(Status::Published));
        assert_eq!(status(json!(null)).unwrap(), None);
        assert!(matches!(status(json!(3)), Err(BindError::Undefined(n)) if n == "3"));
        assert!(matches!(status(json!("Sent")), Err(BindError::NotValid(n)) if n == "Sent"));
    }

    #[test]
    fn query_values_convert_to_the_type_asked_for() {
        let query = json!({
            "filename": "a", "maxSize": " 7 ", "FLAG": "True", "status": ["published", "0"],
            "tags": ["x", "y"],
        });
        let body = Body::deserialize(Lenient::new(query, Source::Query)).unwrap();
        assert_eq!(body.max_size, Some(7));
        assert!(body.flag);
        assert_eq!(
            body.status,
            Some(Status::Published),
            "a scalar takes the first value"
        );
        assert_eq!(body.tags, ["x", "y"]);
        let one = json!({"fileName": ["a", "b"], "tags": "only", "maxSize": ""});
        let body = Body::deserialize(Lenient::new(one, Source::Query)).unwrap();
        assert_eq!(
            (body.file_name.as_str(), body.tags, body.max_size),
            ("a", vec!["only".to_owned()], None)
        );
        // .NET's `Int32Converter` reads hexadecimal too.
        let hex = json!({"fileName": "a", "maxSize": " 0x10 "});
        let body = Body::deserialize(Lenient::new(hex, Source::Query)).unwrap();
        assert_eq!(body.max_size, Some(16));
        let blank = json!({"fileName": "a", "flag": " "});
        assert!(matches!(
            Body::deserialize(Lenient::new(blank, Source::Query)),
            Err(BindError::Undefined(text)) if text == " "
        ));
        let bad = json!({"fileName": "a", "flag": "yes"});
        assert!(matches!(
            Body::deserialize(Lenient::new(bad, Source::Query)),
            Err(BindError::NotValid(text)) if text == "yes"
        ));
    }
}
