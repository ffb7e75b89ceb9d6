//! Defaulting: a property's `default:` is set where the property is missing, at every depth
//! (objects, list items, map values), after `null`s of non-nullable fields are dropped; as the
//! real server does while decoding, so defaults are in the stored object and the response.

use super::path::flag;
use serde_json::Value;

pub fn apply(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in properties {
                    // The real server prunes a non-nullable `null` before defaulting, so the
                    // default replaces it.
                    if map.get(name) == Some(&Value::Null) && !flag(prop, "nullable") {
                        map.remove(name);
                    }
                    if !map.contains_key(name)
                        && let Some(default) = prop.get("default")
                    {
                        map.insert(name.clone(), default.clone());
                    }
                    if let Some(v) = map.get_mut(name) {
                        apply(v, prop);
                    }
                }
            } else if let Some(additional) =
                schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for v in map.values_mut() {
                    apply(v, additional);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_nested_objects_items_and_nulls() {
        let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "default": {}, "properties": {
            "replicas": {"type": "integer", "default": 1},
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "protocol": {"type": "string", "default": "TCP"}}}},
            "keep": {"type": "string", "nullable": true, "default": "x"}
        }}}});
        let mut obj = json!({"spec": null});
        apply(&mut obj, &schema);
        assert_eq!(obj, json!({"spec": {"replicas": 1, "keep": "x"}}));
        let mut obj = json!({"spec": {"ports": [{}], "keep": null}});
        apply(&mut obj, &schema);
        assert_eq!(
            obj,
            json!({"spec": {"replicas": 1, "ports": [{"protocol": "TCP"}], "keep": null}})
        );
    }
}
