//! Field paths and value descriptions as the real server prints them in causes.

use serde_json::Value;

/// `spec` + `size` = `spec.size`; the root is the empty path.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `spec.items` + 2 = `spec.items[2]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A schema path's map key, as apimachinery's `field.Path.Key` prints it: `properties[spec]`.
pub fn key(path: &str, name: &str, key: &str) -> String {
    format!("{path}.{name}[{key}]")
}

/// The JSON type name of a value, as OpenAPI validation names it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as Go's `%#v` shows it in `Invalid value: …` (strings quoted, numbers bare).
pub fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(_) => "\"array\"".into(),
        Value::Object(_) => "\"object\"".into(),
    }
}

pub fn schema_type(schema: &Value) -> Option<&str> {
    schema
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
}

pub fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}
