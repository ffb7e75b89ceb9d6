//! Strategic merge patch for the built-in kinds (apimachinery `strategicpatch`): a JSON merge
//! patch whose lists of objects merge by the field's patch merge key and whose scalar lists with
//! `patchStrategy: merge` (finalizers) merge as sets, plus the directives `$patch`
//! (replace | delete | merge), `$retainKeys`, `$deleteFromPrimitiveList/<field>` and
//! `$setElementOrder/<field>`. Lists without a merge key are replaced, as on the real server.

use super::merge_keys::Shape;
use serde_json::{Map, Value};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";
const ELEMENT_ORDER: &str = "$setElementOrder/";

/// Applies `patch` to `target` (an object). The error is the message for a 400.
pub fn strategic_merge(target: &mut Value, patch: &Value, shape: &Shape) -> Result<(), String> {
    let (Value::Object(target), Value::Object(patch)) = (target, patch) else {
        return Err("strategic merge patch: the object and the patch must be JSON objects".into());
    };
    if directive(patch) == Some("delete") {
        return Err("strategic merge patch: $patch: delete may not delete the whole object".into());
    }
    merge_map(target, patch, shape)
}

fn directive(m: &Map<String, Value>) -> Option<&str> {
    m.get(PATCH).and_then(Value::as_str)
}

fn merge_map(
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    shape: &Shape,
) -> Result<(), String> {
    match directive(patch) {
        None | Some("merge") => {}
        Some("replace") => {
            *orig = strip(patch);
            return Ok(());
        }
        // Handled by the parent, which drops the whole map.
        Some("delete") => {}
        Some(other) => {
            return Err(format!(
                "Unknown patch type: {other} in map: {}",
                Value::Object(patch.clone())
            ));
        }
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keys = retain
            .as_array()
            .filter(|a| a.iter().all(Value::is_string))
            .ok_or_else(|| {
                format!("invalid patch: {RETAIN_KEYS} must be a list of strings, got {retain}")
            })?;
        // Nulls delete, so they need not be retained (strategicpatch `applyRetainKeysDirective`).
        if let Some(stray) = patch
            .iter()
            .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
            .map(|(k, _)| k)
            .find(|k| !keys.iter().any(|r| r == k.as_str()))
        {
            return Err(format!(
                "The patch for this map is not valid: field {stray:?} is set but not listed in {RETAIN_KEYS}"
            ));
        }
        orig.retain(|k, _| keys.iter().any(|r| r == k.as_str()));
    }
    for (key, values) in patch {
        let Some(field) = key.strip_prefix(DELETE_FROM) else {
            continue;
        };
        let values = values
            .as_array()
            .ok_or_else(|| format!("invalid patch: {key} must be a list, got {values}"))?;
        if let Some(Value::Array(list)) = orig.get_mut(field) {
            list.retain(|item| !values.contains(item));
        }
    }
    // $setElementOrder interleaves the items it does not name by their live positions.
    let live_order: Vec<(&str, Vec<Value>)> = patch
        .keys()
        .filter_map(|k| k.strip_prefix(ELEMENT_ORDER))
        .map(|field| {
            let live = orig.get(field).and_then(Value::as_array).cloned();
            (field, live.unwrap_or_default())
        })
        .collect();
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        let child = shape.field(key);
        match value {
            Value::Null => {
                orig.remove(key);
            }
            Value::Object(p) if directive(p) == Some("delete") => {
                orig.remove(key);
            }
            Value::Object(p) => {
                let slot = orig
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                merge_map(
                    slot.as_object_mut().expect("just made an object"),
                    p,
                    &child,
                )?;
            }
            Value::Array(p) => {
                let slot = orig
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                merge_list(slot.as_array_mut().expect("just made an array"), p, &child)?;
            }
            scalar => {
                orig.insert(key.clone(), scalar.clone());
            }
        }
    }
    for (key, order) in patch {
        let Some(field) = key.strip_prefix(ELEMENT_ORDER) else {
            continue;
        };
        let order = order
            .as_array()
            .ok_or_else(|| format!("invalid patch: {key} must be a list, got {order}"))?;
        let merge_key = shape.field(field).patch_merge_key();
        let live = live_order
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, l)| l.as_slice())
            .unwrap_or_default();
        if let Some(Value::Array(list)) = orig.get_mut(field) {
            reorder(list, order, live, merge_key);
        }
    }
    Ok(())
}

fn merge_list(orig: &mut Vec<Value>, patch: &[Value], shape: &Shape) -> Result<(), String> {
    let replace = patch
        .iter()
        .any(|item| item.as_object().and_then(directive) == Some("replace"));
    if replace {
        *orig = patch
            .iter()
            .filter(|item| item.as_object().and_then(directive).is_none())
            .map(strip_value)
            .collect();
        return Ok(());
    }
    if let Some(merge_key) = shape.patch_merge_key() {
        let item_shape = shape.items();
        for item in patch {
            let Value::Object(p) = item else {
                return Err(format!(
                    "invalid patch: items of a list merged by {merge_key:?} must be objects, got {item}"
                ));
            };
            let key = p.get(merge_key).ok_or_else(|| {
                format!("map: {item} does not contain declared merge key: {merge_key}")
            })?;
            let position = orig.iter().position(|o| o.get(merge_key) == Some(key));
            match (directive(p), position) {
                (Some("delete"), Some(i)) => {
                    orig.remove(i);
                }
                (Some("delete"), None) => {}
                (_, Some(i)) => {
                    let found = orig[i].to_string();
                    let o = orig[i]
                        .as_object_mut()
                        .ok_or_else(|| format!("cannot merge {item} into {found}"))?;
                    merge_map(o, p, &item_shape)?;
                }
                (_, None) => {
                    let mut fresh = Map::new();
                    merge_map(&mut fresh, p, &item_shape)?;
                    orig.push(Value::Object(fresh));
                }
            }
        }
    } else if shape.patch_merges_scalars() {
        for item in patch {
            if !orig.contains(item) {
                orig.push(item.clone());
            }
        }
    } else {
        *orig = patch.iter().map(strip_value).collect();
    }
    Ok(())
}

/// Orders a merged list as strategicpatch `normalizeElementOrder` does: the items `order` names
/// in that order, and the others (in their current order) slotted in before the first named item
/// that came after them in the live list.
fn reorder(list: &mut Vec<Value>, order: &[Value], live: &[Value], merge_key: Option<&str>) {
    let id = |v: &Value| match merge_key {
        Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
        None => v.clone(),
    };
    let live_position = |v: &Value| live.iter().position(|l| id(l) == id(v));
    let mut rest = std::mem::take(list);
    let mut named = Vec::new();
    for wanted in order {
        let wanted = id(wanted);
        if let Some(i) = rest.iter().position(|item| id(item) == wanted) {
            named.push(rest.remove(i));
        }
    }
    let (mut rest, mut named) = (rest.into_iter().peekable(), named.into_iter().peekable());
    loop {
        let take_rest = match (rest.peek(), named.peek()) {
            (Some(r), Some(n)) => matches!(
                (live_position(r), live_position(n)),
                (Some(ri), Some(ni)) if ri < ni
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_rest { rest.next() } else { named.next() };
        list.extend(next);
    }
}

fn strip(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_value(v)))
        .collect()
}

fn strip_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip(m)),
        Value::Array(a) => Value::Array(a.iter().map(strip_value).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;
    use serde_json::json;

    fn deployment_patch(orig: Value, patch: Value) -> Result<Value, String> {
        let registry = Registry::with_built_ins();
        let rt = registry.lookup("apps", "v1", "deployments").unwrap();
        let mut target = orig;
        strategic_merge(&mut target, &patch, &Shape::of(&rt, "v1"))?;
        Ok(target)
    }

    fn pod(containers: Value) -> Value {
        json!({"spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn containers_merge_by_name_and_delete() {
        let orig = pod(
            json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1", "args": ["x"]}]),
        );
        let out = deployment_patch(
            orig,
            pod(json!([{"name": "b", "image": "b:2"}, {"name": "a", "$patch": "delete"}, {"name": "c", "image": "c:1"}])),
        )
        .unwrap();
        assert_eq!(
            out,
            pod(
                json!([{"name": "b", "image": "b:2", "args": ["x"]}, {"name": "c", "image": "c:1"}])
            )
        );
    }

    #[test]
    fn directives() {
        let orig = json!({"metadata": {"finalizers": ["a", "b"]},
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let out = deployment_patch(
            orig,
            json!({"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
                "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"finalizers": ["b", "c"]}, "spec": {"strategy": {"type": "Recreate"}}})
        );
        let err = deployment_patch(json!({}), json!({"spec": {"$patch": "sideways"}})).unwrap_err();
        assert!(err.contains("Unknown patch type: sideways"), "{err}");
    }

    #[test]
    fn element_order_and_replace() {
        let orig = pod(json!([{"name": "a"}, {"name": "b"}]));
        let out = deployment_patch(
            orig.clone(),
            pod(json!([{"name": "c"}]))
                .pointer("/spec")
                .cloned()
                .map(|spec| {
                    let mut p = json!({"spec": spec});
                    p["spec"]["template"]["spec"]["$setElementOrder/containers"] =
                        json!([{"name": "c"}, {"name": "b"}, {"name": "a"}]);
                    p
                })
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            out,
            pod(json!([{"name": "c"}, {"name": "b"}, {"name": "a"}]))
        );
        // Items the order does not name (a sidecar injected by someone else) keep their place
        // before the first named item that followed them in the live list.
        let live = pod(json!([{"name": "a"}, {"name": "injected"}, {"name": "b"}]));
        let order = |names: Value| {
            let mut patch = json!({"spec": {"template": {"spec": {}}}});
            patch["spec"]["template"]["spec"]["$setElementOrder/containers"] = names;
            patch
        };
        let kept = deployment_patch(live.clone(), order(json!([{"name": "a"}, {"name": "b"}])));
        assert_eq!(kept.unwrap(), live);
        let swapped = deployment_patch(live, order(json!([{"name": "b"}, {"name": "a"}])));
        assert_eq!(
            swapped.unwrap(),
            pod(json!([{"name": "injected"}, {"name": "b"}, {"name": "a"}]))
        );
        let out =
            deployment_patch(orig, pod(json!([{"$patch": "replace"}, {"name": "z"}]))).unwrap();
        assert_eq!(out, pod(json!([{"name": "z"}])));
    }
}
