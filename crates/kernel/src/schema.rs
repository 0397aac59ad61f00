//! OpenAPI schemas of typed values, made from the bounds they parse with, so that the
//! published contract is the enforced one (a value type implements
//! `utoipa::PartialSchema` with these).

use serde::Deserializer;
use serde::de::{Error as _, Unexpected, Visitor};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};

/// An integer from `min` to `max`, with its default if it has one.
pub fn bounded_integer(
    min: u64,
    max: u64,
    default: Option<u64>,
    description: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min as f64))
        .maximum(Some(max as f64))
        .default(default.map(serde_json::Value::from))
        .description(Some(description))
        .into()
}

/// A string of `min` to `max` characters, matching `pattern` if given.
pub fn bounded_string(
    min: usize,
    max: usize,
    pattern: Option<&str>,
    format: Option<SchemaFormat>,
    description: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(pattern)
        .format(format)
        .description(Some(description))
        .into()
}

/// The characters [`crate::bounded_text`] refuses (Unicode's `Cc`), as a regular
/// expression class body.
pub const CONTROL_CHARACTERS: &str = r"\u0000-\u001f\u007f-\u009f";

/// The `pattern` of text checked by [`crate::bounded_text`]: no control character, and
/// not only white space (it is trimmed before its length is checked).
pub fn text_pattern() -> String {
    let c = CONTROL_CHARACTERS;
    format!(r"^[^{c}]*[^\s{c}][^{c}]*$")
}

/// Deserializes a JSON number that is a whole number into an `i64`, written `40` or
/// `40.0`: JSON Schema counts both as an `integer` (JSON Schema Validation 2020-12,
/// section 6.1.1, and Core section 4.2.2), so every body valid by the published schema
/// parses. `40.5`, and whole numbers past 2^53 written as floats, are refused.
pub fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Whole;
    impl Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            // Past 2^53 a float no longer holds every whole number exactly.
            const EXACT: f64 = 9_007_199_254_740_992.0;
            if v.fract() == 0.0 && v.abs() <= EXACT {
                Ok(v as i64)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(Whole).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct N {
        #[serde(deserialize_with = "whole_number")]
        n: i64,
    }

    fn n(json: &str) -> Option<i64> {
        serde_json::from_str::<N>(json).ok().map(|v| v.n)
    }

    #[test]
    fn a_whole_number_may_be_written_as_a_float() {
        assert_eq!(n(r#"{"n": 40}"#), Some(40));
        assert_eq!(n(r#"{"n": 40.0}"#), Some(40));
        assert_eq!(n(r#"{"n": -3.0e0}"#), Some(-3));
        for bad in [
            r#"{"n": 40.5}"#,
            r#"{"n": 1e300}"#,
            r#"{"n": "40"}"#,
            r#"{"n": 18446744073709551615}"#,
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_text_pattern_is_the_text_rule() {
        let re = regex_lite::Regex::new(&text_pattern()).unwrap();
        for (s, ok) in
            [("Ada", true), ("  a ", true), ("   ", false), ("", false), ("a\u{7}b", false)]
        {
            assert_eq!(re.is_match(s), ok, "{s:?}");
            assert_eq!(crate::bounded_text("t", s, 1, 10).is_ok(), ok, "{s:?}");
        }
    }
}
