//! Pruning: fields a structural schema does not declare are dropped, as the real server drops
//! them while decoding, and their paths are returned for strict field validation.
//!
//! Kept: everything under `x-kubernetes-preserve-unknown-fields: true` (known properties below
//! it are still pruned), map entries under `additionalProperties`, and at the root and in
//! `x-kubernetes-embedded-resource` objects `apiVersion`, `kind` and `metadata`; `metadata`
//! keeps only ObjectMeta's fields.

use super::path::{child, flag, index};
use serde_json::Value;

/// Where schema nodes come from: CRD schemas are inline, built-in ones follow `$ref`s into
/// `#/components/schemas`.
pub trait SchemaSource {
    /// The node itself, or the one its `$ref` (or OpenAPI v3's single-`allOf` `$ref`) names.
    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value;

    /// Whether an object under this (resolved) node keeps fields the node does not declare,
    /// besides `x-kubernetes-preserve-unknown-fields`.
    fn keeps_unknown(&self, _node: &Value) -> bool {
        false
    }
}

/// The fields of ObjectMeta; anything else under `metadata` is unknown.
pub const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Drops the undeclared fields of `obj` (a whole object, so the root's implicit fields are
/// known) and returns their paths (`spec.foo`, `spec.items[0].bar`).
pub fn prune(obj: &mut Value, schema: &Value, source: &dyn SchemaSource) -> Vec<String> {
    let mut unknown = Vec::new();
    prune_node(obj, schema, source, "", true, &mut unknown);
    unknown
}

/// Like [`prune`], for a value that is not a whole resource (a `default:`).
pub fn prune_value(value: &mut Value, schema: &Value, source: &dyn SchemaSource) -> Vec<String> {
    let mut unknown = Vec::new();
    prune_node(value, schema, source, "", false, &mut unknown);
    unknown
}

fn prune_node(
    value: &mut Value,
    schema: &Value,
    source: &dyn SchemaSource,
    path: &str,
    is_resource: bool,
    unknown: &mut Vec<String>,
) {
    let schema = source.resolve(schema);
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields")
                || source.keeps_unknown(schema);
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let at = child(path, &key);
                if is_resource && (key == "apiVersion" || key == "kind") {
                    continue;
                }
                if is_resource && key == "metadata" {
                    if let Some(meta) = map.get_mut("metadata") {
                        prune_object_meta(meta, &at, unknown);
                    }
                    continue;
                }
                let declared = properties
                    .and_then(|p| p.get(&key))
                    .or_else(|| additional.filter(|a| a.is_object()));
                match declared {
                    Some(child_schema) => {
                        let child_schema = source.resolve(child_schema);
                        let embedded = flag(child_schema, "x-kubernetes-embedded-resource");
                        if let Some(v) = map.get_mut(&key) {
                            prune_node(v, child_schema, source, &at, embedded, unknown);
                        }
                    }
                    None if preserve || additional == Some(&Value::Bool(true)) => {}
                    None => {
                        map.remove(&key);
                        unknown.push(at);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                let item_schema = source.resolve(item_schema);
                let embedded = flag(item_schema, "x-kubernetes-embedded-resource");
                for (i, item) in items.iter_mut().enumerate() {
                    prune_node(
                        item,
                        item_schema,
                        source,
                        &index(path, i),
                        embedded,
                        unknown,
                    );
                }
            }
        }
        _ => {}
    }
}

/// `metadata` is decoded into ObjectMeta, which has no room for other fields.
fn prune_object_meta(meta: &mut Value, path: &str, unknown: &mut Vec<String>) {
    if let Value::Object(map) = meta {
        let extra: Vec<String> = map
            .keys()
            .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in extra {
            map.remove(&key);
            unknown.push(child(path, &key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Inline;
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_undeclared_fields_and_keeps_preserved_ones() {
        let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "size": {"type": "integer"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}}
        }}}});
        let mut obj = json!({"apiVersion": "x/v1", "kind": "X",
            "metadata": {"name": "a", "bogus": 1},
            "spec": {"size": 1, "extra": true, "free": {"anything": [1]},
                "labels": {"k": "v"}, "items": [{"a": "x", "b": "y"}]},
            "status": {}});
        let unknown = prune(&mut obj, &schema, &Inline);
        assert_eq!(
            unknown,
            vec!["metadata.bogus", "spec.extra", "spec.items[0].b", "status"]
        );
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
                "spec": {"size": 1, "free": {"anything": [1]}, "labels": {"k": "v"},
                    "items": [{"a": "x"}]}})
        );
    }
}
