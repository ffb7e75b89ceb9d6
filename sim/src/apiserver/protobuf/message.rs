//! One protobuf message to its JSON form, driven by a field table.

use super::tables::{Message, TIME, Ty};
use super::wire::{self, Fields, Value as Wire};
use crate::apiserver::time::format_unix;
use base64::Engine;
use serde_json::{Map, Value};

/// Why a body could not be decoded.
#[derive(Debug, PartialEq)]
pub enum Error {
    /// The bytes are not valid protobuf (or not what the field's type needs).
    Malformed(String),
    /// A well-formed field the sim's tables do not describe.
    UnknownField {
        message: &'static str,
        number: u32,
        /// The JSON path of the message holding it; empty for the top level.
        at: String,
    },
}

type Result<T> = std::result::Result<T, Error>;

/// Decodes `bytes` as `message` into a JSON object. `at` is the JSON path of the message, for
/// error messages.
pub fn decode(message: &'static Message, bytes: &[u8], at: &str) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for field in Fields::new(bytes) {
        let (number, value) = field.map_err(|e| Error::Malformed(format!("{at}: {e}")))?;
        let Some(spec) = message.fields.iter().find(|f| f.number == number) else {
            return Err(Error::UnknownField {
                message: message.name,
                number,
                at: at.to_string(),
            });
        };
        let path = if at.is_empty() {
            spec.json.to_string()
        } else {
            format!("{at}.{}", spec.json)
        };
        let expected = match spec.ty {
            Ty::Bool | Ty::Flag | Ty::Int | Ty::OptInt => wire::VARINT,
            _ => wire::LEN,
        };
        if value.wire_type() != expected {
            return Err(Error::Malformed(format!(
                "{path} (field {number} of {}) has wire type {}, expected {expected}",
                message.name,
                value.wire_type()
            )));
        }
        match (spec.ty, value) {
            (Ty::Str, Wire::Len(b)) => {
                let s = utf8(b, &path)?;
                if !s.is_empty() {
                    out.insert(spec.json.into(), Value::String(s));
                }
            }
            (Ty::Bool, Wire::Varint(v)) => {
                out.insert(spec.json.into(), Value::Bool(v != 0));
            }
            (Ty::Flag, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(spec.json.into(), Value::Bool(true));
                }
            }
            // Go's int64 and int32 travel as two's-complement varints.
            (Ty::Int, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(spec.json.into(), Value::from(v as i64));
                }
            }
            (Ty::OptInt, Wire::Varint(v)) => {
                out.insert(spec.json.into(), Value::from(v as i64));
            }
            (Ty::Time, Wire::Len(b)) => {
                let time = decode(&TIME, b, &path)?;
                let seconds = time.get("seconds").and_then(Value::as_i64).unwrap_or(0);
                let nanos = time.get("nanos").and_then(Value::as_i64).unwrap_or(0);
                if seconds != 0 || nanos != 0 {
                    out.insert(spec.json.into(), Value::String(format_unix(seconds)));
                }
            }
            (Ty::Msg(inner), Wire::Len(b)) => {
                out.insert(spec.json.into(), Value::Object(decode(inner, b, &path)?));
            }
            (Ty::Msgs(inner), Wire::Len(b)) => {
                let item = Value::Object(decode(inner, b, &path)?);
                push(&mut out, spec.json, item);
            }
            (Ty::Strs, Wire::Len(b)) => {
                push(&mut out, spec.json, Value::String(utf8(b, &path)?));
            }
            (Ty::StrMap | Ty::BytesMap | Ty::QuantityMap, Wire::Len(b)) => {
                let (key, value) = map_entry(b, &path)?;
                let key = utf8(key, &path)?;
                let at = format!("{path}[{key}]");
                let value = match spec.ty {
                    Ty::BytesMap => base64::engine::general_purpose::STANDARD.encode(value),
                    Ty::QuantityMap => quantity(value, &at)?,
                    _ => utf8(value, &at)?,
                };
                let map = out
                    .entry(spec.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, Value::String(value));
                }
            }
            (Ty::IntOrStr, Wire::Len(b)) => {
                out.insert(spec.json.into(), int_or_string(b, &path)?);
            }
            (Ty::FieldsV1, Wire::Len(b)) => {
                let raw = fields_v1(b, &path)?;
                out.insert(spec.json.into(), raw);
            }
            _ => unreachable!("the wire type was checked against the field's type above"),
        }
    }
    Ok(out)
}

fn push(out: &mut Map<String, Value>, key: &str, item: Value) {
    let list = out.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        list.push(item);
    }
}

fn utf8(bytes: &[u8], path: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::Malformed(format!("{path} is not valid UTF-8")))
}

/// A map entry: a message with the key as field 1 and the value as field 2, both
/// length-delimited here (string keys; string or bytes values). Either may be absent (empty).
fn map_entry<'a>(bytes: &'a [u8], path: &str) -> Result<(&'a [u8], &'a [u8])> {
    let (mut key, mut value): (&[u8], &[u8]) = (b"", b"");
    for field in Fields::new(bytes) {
        match field.map_err(|e| Error::Malformed(format!("{path}: {e}")))? {
            (1, Wire::Len(b)) => key = b,
            (2, Wire::Len(b)) => value = b,
            (number, _) => {
                return Err(Error::Malformed(format!(
                    "{path}: a map entry has field {number}; only a string key (1) and value (2) are valid"
                )));
            }
        }
    }
    Ok((key, value))
}

/// `resource.Quantity`, a message holding the quantity's string form as field 1.
fn quantity(bytes: &[u8], path: &str) -> Result<String> {
    let mut text = String::new();
    for field in Fields::new(bytes) {
        match field.map_err(|e| Error::Malformed(format!("{path}: {e}")))? {
            (1, Wire::Len(b)) => text = utf8(b, path)?,
            (number, _) => {
                return Err(Error::UnknownField {
                    message: "Quantity",
                    number,
                    at: path.to_string(),
                });
            }
        }
    }
    Ok(text)
}

/// `IntOrString{type = 1, intVal = 2, strVal = 3}`: type 1 is the string form.
fn int_or_string(bytes: &[u8], path: &str) -> Result<Value> {
    let (mut is_string, mut int, mut text) = (false, 0i64, String::new());
    for field in Fields::new(bytes) {
        match field.map_err(|e| Error::Malformed(format!("{path}: {e}")))? {
            (1, Wire::Varint(v)) => is_string = v == 1,
            // int32, sign-extended to 64 bits on the wire when negative.
            (2, Wire::Varint(v)) => int = i64::from(v as i32),
            (3, Wire::Len(b)) => text = utf8(b, path)?,
            (number, _) => {
                return Err(Error::UnknownField {
                    message: "IntOrString",
                    number,
                    at: path.to_string(),
                });
            }
        }
    }
    Ok(if is_string {
        Value::String(text)
    } else {
        Value::from(int)
    })
}

/// `FieldsV1{Raw = 1}`, whose JSON form is the raw document itself.
fn fields_v1(bytes: &[u8], path: &str) -> Result<Value> {
    let mut raw: &[u8] = b"{}";
    for field in Fields::new(bytes) {
        match field.map_err(|e| Error::Malformed(format!("{path}: {e}")))? {
            (1, Wire::Len(b)) => raw = b,
            (number, _) => {
                return Err(Error::UnknownField {
                    message: "FieldsV1",
                    number,
                    at: path.to_string(),
                });
            }
        }
    }
    serde_json::from_slice(raw)
        .map_err(|e| Error::Malformed(format!("{path} is not a JSON document: {e}")))
}
