//! OpenAPI schemas of typed values, made from the bounds they parse with, so that the
//! published contract is the enforced one (a value type implements
//! `utoipa::PartialSchema` with these).

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
