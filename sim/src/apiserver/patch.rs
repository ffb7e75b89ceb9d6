//! JSON merge patch (RFC 7386) and JSON Patch (RFC 6902) with the apiserver's quirks.
//!
//! The real apiserver uses evanphx/json-patch, whose `test` of `null` against a *missing* path
//! passes; kube-runtime's `finalizer()` relies on that to add the first finalizer
//! (`test /metadata/finalizers null` + `add`). Ordinary JSON Patch libraries fail that test, so
//! this is our own small implementation with Go's semantics.

use serde_json::{Map, Value};

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("just made an object");
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Why a JSON Patch could not be applied; the message is what the client sees.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchError(pub String);

/// Applies an RFC 6902 patch document (already parsed) to `doc`, all or nothing.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch".into())
    })?;
    let mut out = doc.clone();
    for op in ops {
        apply_op(&mut out, op)?;
    }
    Ok(out)
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let kind = op
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| PatchError("Unexpected kind: unknown".into()))?;
    let path = op
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| PatchError(format!("operation missing path field: {kind}")))?;
    let value = || {
        op.get("value").cloned().ok_or_else(|| {
            PatchError(format!(
                "missing value for {kind} operation at path: {path}"
            ))
        })
    };
    let from = || {
        op.get("from")
            .and_then(Value::as_str)
            .ok_or_else(|| PatchError(format!("missing from field for {kind} operation")))
    };
    match kind {
        "add" => add(doc, path, value()?),
        "remove" => remove(doc, path).map(drop),
        "replace" => {
            remove(doc, path).map_err(|_| {
                PatchError(format!(
                    "replace operation does not apply: doc is missing key: {path}"
                ))
            })?;
            add(doc, path, value()?)
        }
        "move" => {
            let moved = remove(doc, from()?)?;
            add(doc, path, moved)
        }
        "copy" => {
            let copied = get(doc, from()?).cloned().ok_or_else(|| {
                PatchError(format!(
                    "copy operation does not apply: doc is missing from path: {}",
                    from().unwrap_or_default()
                ))
            })?;
            add(doc, path, copied)
        }
        "test" => {
            let expected = op.get("value").cloned().unwrap_or(Value::Null);
            match get(doc, path) {
                Some(actual) if *actual == expected => Ok(()),
                // evanphx/json-patch: a missing path equals `null`.
                None if expected.is_null() => Ok(()),
                _ => Err(PatchError(format!(
                    "testing value {path} failed: test failed"
                ))),
            }
        }
        other => Err(PatchError(format!("Unexpected kind: {other}"))),
    }
}

fn split_pointer(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    if !path.starts_with('/') {
        return Err(PatchError(format!(
            "JSON pointer must be empty or start with a \"/\": {path}"
        )));
    }
    Ok(path[1..]
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = doc;
    for token in split_pointer(path).ok()? {
        current = match current {
            Value::Object(m) => m.get(&token)?,
            Value::Array(a) => a.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn parent_mut<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), PatchError> {
    let mut tokens = split_pointer(path)?;
    let last = tokens
        .pop()
        .ok_or_else(|| PatchError("unable to operate on the document root".into()))?;
    let mut current = doc;
    for token in tokens {
        current = match current {
            Value::Object(m) => m.get_mut(&token),
            Value::Array(a) => token.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError(format!("doc is missing path: \"{path}\": missing value")))?;
    }
    Ok((current, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent_mut(doc, path)?;
    match parent {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let index = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| {
                        PatchError(format!(
                            "add operation does not apply: index out of bounds: {path}"
                        ))
                    })?
            };
            a.insert(index, value);
            Ok(())
        }
        _ => Err(PatchError(format!(
            "add operation does not apply: doc is missing path: \"{path}\": missing value"
        ))),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let missing = || {
        PatchError(format!(
            "remove operation does not apply: doc is missing path: \"{path}\": missing value"
        ))
    };
    let (parent, last) = parent_mut(doc, path).map_err(|_| missing())?;
    match parent {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_merges_and_deletes() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn test_null_on_missing_path_passes_like_the_apiserver() {
        // kube-runtime's finalizer(): the first finalizer is added this way.
        let doc = json!({"metadata": {"name": "x"}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}
        ]);
        assert_eq!(
            json_patch(&doc, &patch).unwrap(),
            json!({"metadata": {"name": "x", "finalizers": ["f"]}})
        );
    }

    #[test]
    fn failed_test_changes_nothing() {
        let doc = json!({"spec": {"consumerRef": {"name": "m1"}}});
        let patch = json!([
            {"op": "add", "path": "/spec/extra", "value": 1},
            {"op": "test", "path": "/spec/consumerRef", "value": null}
        ]);
        let err = json_patch(&doc, &patch).unwrap_err();
        assert!(
            err.0.contains("testing value /spec/consumerRef failed"),
            "{}",
            err.0
        );
    }

    #[test]
    fn array_ops_and_escapes() {
        let doc = json!({"metadata": {"finalizers": ["a", "b"], "annotations": {"x/y": "1"}}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
            {"op": "remove", "path": "/metadata/finalizers/0"},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "c"},
            {"op": "replace", "path": "/metadata/annotations/x~1y", "value": "2"},
            {"op": "copy", "from": "/metadata/annotations", "path": "/copied"},
            {"op": "move", "from": "/copied", "path": "/moved"}
        ]);
        assert_eq!(
            json_patch(&doc, &patch).unwrap(),
            json!({"metadata": {"finalizers": ["b", "c"], "annotations": {"x/y": "2"}}, "moved": {"x/y": "2"}})
        );
    }

    #[test]
    fn remove_of_missing_path_fails() {
        let err = json_patch(&json!({}), &json!([{"op": "remove", "path": "/a"}])).unwrap_err();
        assert!(err.0.contains("missing"), "{}", err.0);
        assert!(json_patch(&json!({}), &json!({"op": "add"})).is_err());
    }
}
