//! How stored objects are presented: at the version a client asked for, in lists, and as watch
//! event lines.

use super::resources::ResourceType;
use super::store::Change;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// The object as served at `version`: custom resources are stored once (`conversion: None`) and
/// served at every version with only `apiVersion` changed, as the real server does.
pub fn at_version<'a>(obj: &'a Arc<Value>, rt: &ResourceType, version: &str) -> Cow<'a, Value> {
    let api_version = rt.api_version(version);
    if super::event_views::is_view(rt) {
        let mut owned = (**obj).clone();
        super::event_views::to_view(rt, &mut owned);
        owned["apiVersion"] = Value::String(api_version);
        return Cow::Owned(owned);
    }
    if obj.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str()) {
        Cow::Borrowed(obj.as_ref())
    } else {
        let mut owned = (**obj).clone();
        owned["apiVersion"] = Value::String(api_version);
        Cow::Owned(owned)
    }
}

#[derive(Serialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_token: Option<String>,
    #[serde(rename = "remainingItemCount", skip_serializing_if = "Option::is_none")]
    remaining: Option<usize>,
}

#[derive(Serialize)]
struct ListBody<'a> {
    kind: &'a str,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: ListMeta,
    items: Vec<Cow<'a, Value>>,
}

pub fn list_json(
    rt: &ResourceType,
    version: &str,
    items: &[Arc<Value>],
    rv: u64,
    continue_token: Option<String>,
    remaining: Option<usize>,
) -> Vec<u8> {
    let body = ListBody {
        kind: &rt.list_kind,
        api_version: rt.api_version(version),
        metadata: ListMeta {
            resource_version: rv.to_string(),
            continue_token,
            remaining,
        },
        items: items.iter().map(|o| at_version(o, rt, version)).collect(),
    };
    serde_json::to_vec(&body).expect("JSON values always serialize")
}

#[derive(Serialize)]
struct EventLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: &'a Value,
}

/// One watch event, newline-terminated and not pretty-printed: kube's LinesCodec splits on `\n`.
pub fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&EventLine { kind, object }).expect("JSON values always serialize");
    line.push(b'\n');
    Bytes::from(line)
}

/// The same line from an object already encoded as JSON: `{"type":"…","object":…}\n`.
pub fn event_line_encoded(kind: &str, object_json: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object_json.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object_json);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// A BOOKMARK: `kind` and `apiVersion` are required (kube's TypeMeta has no defaults).
pub fn bookmark_line(rt: &ResourceType, version: &str, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = serde_json::json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = serde_json::json!({"k8s.io/initial-events-end": "true"});
    }
    let object = serde_json::json!({"kind": rt.kind, "apiVersion": rt.api_version(version), "metadata": metadata});
    event_line("BOOKMARK", &object)
}

/// A watch event line for a logged change, reusing the change's cached encoding when the watch
/// is served at the stored form (the common case).
pub fn change_line(kind: &str, change: &Change, rt: &ResourceType, version: &str) -> Bytes {
    match at_version(&change.object, rt, version) {
        Cow::Borrowed(object) => {
            let encoded = change.encoded.get_or_init(|| {
                Bytes::from(serde_json::to_vec(object).expect("JSON values always serialize"))
            });
            event_line_encoded(kind, encoded)
        }
        Cow::Owned(object) => event_line(kind, &object),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_lines_equal_serialized_ones() {
        let object = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v\n\"q\""}});
        let encoded = serde_json::to_vec(&object).unwrap();
        assert_eq!(
            event_line_encoded("MODIFIED", &encoded),
            event_line("MODIFIED", &object)
        );
    }
}
