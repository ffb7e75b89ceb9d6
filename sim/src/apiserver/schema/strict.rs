//! Strict field validation (`fieldValidation=Strict|Warn|Ignore`): what happens to unknown and
//! duplicate fields. The real server's default is `Warn`; kubectl sends `Strict`.
//!
//! `Strict` refuses the write with the real server's 400 (`… cannot be handled as a Widget:
//! strict decoding error: unknown field "spec.foo"`); `Warn` answers with one `Warning: 299`
//! header per field and stores the pruned object; `Ignore` prunes silently.

use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::resources::ResourceType;
use crate::apiserver::write::WriteOptions;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "Ignore" => Some(Self::Ignore),
            "Warn" => Some(Self::Warn),
            "Strict" => Some(Self::Strict),
            _ => None,
        }
    }
}

/// Warnings a write collected, for the response's `Warning` headers. Shared, so the options a
/// write is given can carry them back out.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    /// Adds a warning once: the real server sends each distinct warning of a request once.
    pub fn push(&self, warning: String) {
        let mut warnings = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Applies the request's policy to the fields pruning dropped and to duplicate keys found in
/// the body.
pub fn report(
    rt: &ResourceType,
    version: &str,
    unknown: &[String],
    opts: &WriteOptions,
) -> ApiResult<()> {
    let problems: Vec<String> = opts
        .duplicate_fields
        .iter()
        .map(|f| format!("duplicate field {f:?}"))
        .chain(unknown.iter().map(|f| format!("unknown field {f:?}")))
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    match opts.field_validation {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
            problems.join(", "),
            kind = rt.kind,
        ))),
        FieldValidation::Warn => {
            for p in problems {
                opts.warnings.push(p);
            }
            Ok(())
        }
        FieldValidation::Ignore => Ok(()),
    }
}

/// The paths of keys that appear twice in one JSON object of `body` (`spec.size`); the decoded
/// value keeps the last one, as Go's decoder does. Not JSON: nothing.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Walk {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut de);
    found
}

/// Visits a JSON document, recording repeated keys with their paths.
struct Walk<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let seed = Walk {
                path: format!("{}[{i}]", self.path),
                found: &mut *self.found,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.found.push(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_repeated_keys_at_any_depth() {
        let body = br#"{"spec": {"size": 1, "size": 2, "items": [{"a": 1, "a": 2}]}, "kind": "X", "kind": "X"}"#;
        assert_eq!(
            duplicate_fields(body),
            vec!["spec.size", "spec.items[0].a", "kind"]
        );
        assert!(duplicate_fields(b"not json").is_empty());
    }
}
