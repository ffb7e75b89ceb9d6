//! Events are one store with two views: core/v1 (what `kubectl describe` reads) and
//! events.k8s.io/v1 (what kube's `Recorder` writes). Objects are stored in the core form; the
//! events.k8s.io form renames fields, as the real server's conversion does.

use super::resources::ResourceType;
use serde_json::Value;

/// (events.k8s.io/v1 field, core/v1 field)
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn is_events_view(rt: &ResourceType) -> bool {
    rt.view_of.is_some() && rt.group == "events.k8s.io"
}

fn rename(obj: &mut Value, from_to: impl Iterator<Item = (&'static str, &'static str)>) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    for (from, to) in from_to {
        if let Some(v) = map.remove(from) {
            map.insert(to.to_string(), v);
        }
    }
}

/// From the form a client sent through `rt` to the stored form.
pub fn to_storage(rt: &ResourceType, obj: &mut Value) {
    if is_events_view(rt) {
        rename(obj, RENAMES.iter().copied());
        obj["apiVersion"] = Value::String("v1".into());
    }
}

/// From the stored form to the form served through `rt`.
pub fn to_view(rt: &ResourceType, obj: &mut Value) {
    if is_events_view(rt) {
        rename(obj, RENAMES.iter().map(|(a, b)| (*b, *a)));
    }
}

pub fn is_view(rt: &ResourceType) -> bool {
    rt.view_of.is_some()
}
