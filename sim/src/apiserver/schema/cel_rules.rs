//! `x-kubernetes-validations`: the CEL rules of every schema node that has a value, evaluated
//! with kube-cel (the `kube/cel` feature) as the real server evaluates them.
//!
//! Old values are correlated the way the real server correlates them, which decides where
//! transition rules (`oldSelf`) run: through object properties and map values by key, through
//! `x-kubernetes-list-type: map` items by their keys, and nowhere else (items of other lists
//! have no old value). A transition rule runs only when the old value exists, unless it sets
//! `optionalOldSelf`.

use super::path::{child, index, schema_type, type_name};
use crate::apiserver::error::Cause;
use kube::core::cel::{ValidationError, Validator};
use serde_json::Value;

pub fn evaluate(obj: &Value, old: Option<&Value>, schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    walk(obj, old, schema, "", &mut out);
    out
}

fn walk(value: &Value, old: Option<&Value>, schema: &Value, path: &str, out: &mut Vec<Cause>) {
    if !has_type(value, schema) {
        // Schema validation has already reported it; rules cannot run on the wrong type.
        return;
    }
    if schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
    {
        run_rules(value, old, schema, path, out);
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, v) in map {
                if let Some(s) = properties.and_then(|p| p.get(key)).or(additional) {
                    let old_v = old.and_then(|o| o.get(key));
                    walk(v, old_v, s, &child(path, key), out);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            let keys = map_list_keys(schema);
            let old_items = old.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                let old_item = match (&keys, old_items) {
                    (Some(keys), Some(olds)) => olds
                        .iter()
                        .find(|o| keys.iter().all(|k| o.get(k) == item.get(k))),
                    _ => None,
                };
                walk(item, old_item, item_schema, &index(path, i), out);
            }
        }
        _ => {}
    }
}

fn map_list_keys(schema: &Value) -> Option<Vec<String>> {
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| {
            k.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
}

fn has_type(value: &Value, schema: &Value) -> bool {
    match schema_type(schema) {
        None => true,
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some(t) => type_name(value) == t,
    }
}

/// Evaluates the rules of this node only: its descendants' rules are removed from the copy
/// handed to kube-cel, so each rule runs once, with the old value correlated here.
fn run_rules(value: &Value, old: Option<&Value>, schema: &Value, path: &str, out: &mut Vec<Cause>) {
    let mut own = schema.clone();
    strip_descendant_rules(&mut own, true);
    if old == Some(value) {
        // Ratcheting: an unchanged value is not judged again, except by transition rules.
        if let Some(rules) = own
            .get_mut("x-kubernetes-validations")
            .and_then(Value::as_array_mut)
        {
            rules.retain(|r| {
                r.get("rule")
                    .and_then(Value::as_str)
                    .is_some_and(reads_old_self)
            });
        }
    }
    bind_optional_old_self(&mut own, old.is_some());
    let (value, old) = if path.is_empty() {
        (root_view(value), old.map(root_view))
    } else {
        (value.clone(), old.cloned())
    };
    let Err(errors) = VALIDATOR.with(|v| v.validate(&own, &value, old.as_ref())) else {
        return;
    };
    let shown_type = schema_type(schema).unwrap_or(type_name(&value));
    for e in errors.iter() {
        out.push(cause(e, path, shown_type));
    }
}

/// `optionalOldSelf: true` makes `oldSelf` a CEL optional, present on updates and
/// `optional.none()` on creates, and the rule runs in both cases. kube-cel binds the plain old
/// value (or null), so the rule is rewritten to read `oldSelf` through an optional.
fn bind_optional_old_self(schema: &mut Value, has_old: bool) {
    let Some(rules) = schema
        .get_mut("x-kubernetes-validations")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for rule in rules {
        if rule.get("optionalOldSelf").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let Some(text) = rule.get("rule").and_then(Value::as_str) else {
            continue;
        };
        let replacement = if has_old {
            "optional.of(oldSelf)"
        } else {
            "optional.none()"
        };
        let rewritten = OLD_SELF.replace_all(text, replacement).into_owned();
        rule["rule"] = Value::String(rewritten);
        if let Some(map) = rule.as_object_mut() {
            map.remove("optionalOldSelf");
        }
    }
}

static OLD_SELF: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"\boldSelf\b").expect("valid pattern"));

/// The object as rules at the root see it: of `metadata`, only `name` and `generateName`.
fn root_view(obj: &Value) -> Value {
    let mut view = obj.clone();
    if let Some(meta) = view.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| k == "name" || k == "generateName");
    }
    view
}

/// Whether a rule is a transition rule.
fn reads_old_self(rule: &str) -> bool {
    OLD_SELF.is_match(rule)
}

thread_local! {
    /// Registering the Kubernetes CEL library is the costly part; do it once per thread.
    static VALIDATOR: Validator = Validator::new();
}

fn strip_descendant_rules(schema: &mut Value, is_node: bool) {
    let Value::Object(map) = schema else {
        return;
    };
    if !is_node {
        map.remove("x-kubernetes-validations");
    }
    for (k, v) in map.iter_mut() {
        match k.as_str() {
            "properties" => {
                if let Value::Object(props) = v {
                    for p in props.values_mut() {
                        strip_descendant_rules(p, false);
                    }
                }
            }
            "items" | "additionalProperties" => strip_descendant_rules(v, false),
            _ => {}
        }
    }
}

/// One failed rule as the real server reports it: `Invalid value: "object": <message>`, or the
/// form the rule's `reason` picks.
fn cause(e: &ValidationError, path: &str, shown_type: &str) -> Cause {
    let relative = e.field_path.trim_start_matches('.');
    let field = match (path.is_empty(), relative.is_empty()) {
        (_, true) => path.to_string(),
        (true, false) => relative.to_string(),
        (false, false) if relative.starts_with('[') => format!("{path}{relative}"),
        (false, false) => format!("{path}.{relative}"),
    };
    // Evaluation errors (a missing key, a type error) fail the object too, worded by CEL.
    let message = e.message.clone();
    match e.reason.as_deref() {
        Some("FieldValueForbidden") => Cause {
            reason: "FieldValueForbidden",
            field,
            message: format!("Forbidden: {message}"),
        },
        Some("FieldValueRequired") => Cause {
            reason: "FieldValueRequired",
            field,
            message: format!("Required value: {message}"),
        },
        Some("FieldValueDuplicate") => Cause {
            reason: "FieldValueDuplicate",
            field,
            message: format!("Duplicate value: {shown_type:?}"),
        },
        _ => Cause {
            reason: "FieldValueInvalid",
            field,
            message: format!("Invalid value: {shown_type:?}: {message}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [
            {"rule": "!(has(self.a) && has(self.b))", "message": "a and b are mutually exclusive"},
            {"rule": "!has(oldSelf.id) || self.id == oldSelf.id", "message": "id is immutable", "reason": "FieldValueForbidden"}
        ],
        "properties": {
            "a": {"type": "string"}, "b": {"type": "string"}, "id": {"type": "string"},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer",
                    "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may not shrink"}]}}}}
        }}}})
    }

    fn messages(obj: Value, old: Option<Value>) -> Vec<String> {
        evaluate(&obj, old.as_ref(), &schema())
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn optional_old_self_runs_on_create_with_none() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer",
            "x-kubernetes-validations": [{"optionalOldSelf": true, "message": "starts at 0, never shrinks",
                "rule": "oldSelf.hasValue() ? self >= oldSelf.value() : self == 0"}]}}});
        let run = |obj: Value, old: Option<Value>| evaluate(&obj, old.as_ref(), &schema).len();
        assert_eq!(run(json!({"n": 0}), None), 0);
        assert_eq!(run(json!({"n": 3}), None), 1);
        assert_eq!(run(json!({"n": 5}), Some(json!({"n": 3}))), 0);
        assert_eq!(run(json!({"n": 2}), Some(json!({"n": 3}))), 1);
    }

    #[test]
    fn rules_and_transition_rules() {
        assert_eq!(
            messages(json!({"spec": {"a": "x", "b": "y", "id": "1"}}), None),
            vec!["spec: Invalid value: \"object\": a and b are mutually exclusive"]
        );
        assert_eq!(
            messages(
                json!({"spec": {"id": "2"}}),
                Some(json!({"spec": {"id": "1"}}))
            ),
            vec!["spec: Forbidden: id is immutable"]
        );

        // Ratcheting: an unchanged, already invalid value is not judged again.
        let both = json!({"spec": {"a": "x", "b": "y"}});
        assert!(messages(both.clone(), Some(both)).is_empty());
        // Map-list items correlate by key, whatever their position.
        let old = json!({"spec": {"ports": [{"name": "a", "n": 5}, {"name": "b", "n": 1}]}});
        assert_eq!(
            messages(
                json!({"spec": {"ports": [{"name": "b", "n": 2}, {"name": "a", "n": 4}]}}),
                Some(old)
            ),
            vec!["spec.ports[1].n: Invalid value: \"integer\": may not shrink"]
        );
    }
}
