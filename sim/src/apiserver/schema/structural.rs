//! Whether a CRD schema is structural, plus the schema checks of the CRD's own validation,
//! with the real server's fields and messages (apiextensions-apiserver
//! `pkg/apiserver/schema/validation.go`, `complete.go` and
//! `pkg/apis/apiextensions/validation`).
//!
//! Checked: every specified node has a `type` (unless int-or-string or preserve-unknown);
//! arrays have `items`; the root is an object without `additionalProperties`; `properties` and
//! `additionalProperties` exclude each other; root `metadata` constrains only `name` and
//! `generateName`; embedded resources are objects; allOf/anyOf/oneOf/not carry only value
//! validations, over fields the schema itself specifies; patterns compile; `uniqueItems` and
//! `x-kubernetes-preserve-unknown-fields: false` are refused; list types are known and map lists
//! name their keys.

use super::path::{flag, key, schema_type};
use crate::apiserver::error::Cause;
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

pub fn check(schema: &Value, at: &str, out: &mut Vec<Cause>) {
    node(schema, Level::Root, at, out);
    completeness(schema, schema, at, at, out);
}

fn required(field: String, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        field,
        message: format!("Required value: {detail}"),
    }
}

fn forbidden(field: String, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden",
        field,
        message: format!("Forbidden: {detail}"),
    }
}

fn invalid(field: String, value: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        field,
        message: format!("Invalid value: {value}: {detail}"),
    }
}

fn node(s: &Value, level: Level, at: &str, out: &mut Vec<Cause>) {
    let ty = schema_type(s);
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    let properties = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties");

    if ty == Some("array") && s.get("items").is_none() {
        out.push(required(format!("{at}.items"), "must be specified"));
    }
    if let Some(items) = s.get("items") {
        node(items, Level::Item, &format!("{at}.items"), out);
    }
    for (name, prop) in properties.into_iter().flatten() {
        node(prop, Level::Field, &key(at, "properties", name), out);
    }
    if let Some(additional) = additional {
        if level == Level::Root {
            out.push(forbidden(
                format!("{at}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        if properties.is_some() {
            out.push(forbidden(
                format!("{at}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if additional.is_object() {
            node(
                additional,
                Level::Field,
                &format!("{at}.additionalProperties"),
                out,
            );
        }
    }
    if int_or_string && preserve {
        out.push(invalid(
            format!("{at}.x-kubernetes-preserve-unknown-fields"),
            "true",
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        out.push(invalid(
            format!("{at}.x-kubernetes-embedded-resource"),
            "true",
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        out.push(invalid(
            format!("{at}.x-kubernetes-preserve-unknown-fields"),
            "false",
            "must be true or undefined",
        ));
    }
    if flag(s, "uniqueItems") {
        out.push(forbidden(
            format!("{at}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    list_type(s, at, out);
    value_validation(s, int_or_string, at, out);

    if embedded && ty != Some("object") {
        match ty {
            None => out.push(required(
                format!("{at}.type"),
                "must be object if x-kubernetes-embedded-resource is true",
            )),
            Some(t) => out.push(invalid(
                format!("{at}.type"),
                &format!("{t:?}"),
                "must be object if x-kubernetes-embedded-resource is true",
            )),
        }
    } else if ty.is_none() && !int_or_string && !preserve {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(required(format!("{at}.type"), detail));
    }
    if embedded && additional.is_some() {
        out.push(forbidden(
            format!("{at}.additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if level == Level::Root
        && let Some(t) = ty
        && t != "object"
    {
        out.push(invalid(
            format!("{at}.type"),
            &format!("{t:?}"),
            "must be object at the root",
        ));
    }
    let is_resource = level == Level::Root || embedded;
    if is_resource {
        for name in ["kind", "apiVersion"] {
            if let Some(p) = properties.and_then(|p| p.get(name))
                && schema_type(p) != Some("string")
            {
                out.push(invalid(
                    format!("{}.type", key(at, "properties", name)),
                    &format!("{:?}", schema_type(p).unwrap_or_default()),
                    "must be string",
                ));
            }
        }
    }
    if let Some(meta) = properties.and_then(|p| p.get("metadata")) {
        metadata(
            meta,
            is_resource,
            level,
            &key(at, "properties", "metadata"),
            out,
        );
    }
    if embedded && !preserve && properties.is_none_or(|p| p.is_empty()) {
        out.push(required(
            format!("{at}.properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

fn list_type(s: &Value, at: &str, out: &mut Vec<Cause>) {
    let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
    let has_keys = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .is_some_and(|k| !k.is_empty());
    match list_type {
        None | Some("atomic") | Some("set") => {}
        Some("map") if !has_keys => out.push(required(
            format!("{at}.x-kubernetes-list-map-keys"),
            "must not be empty if x-kubernetes-list-type is map",
        )),
        Some("map") => {}
        Some(other) => out.push(Cause {
            reason: "FieldValueNotSupported",
            field: format!("{at}.x-kubernetes-list-type"),
            message: format!(
                "Unsupported value: {other:?}: supported values: \"atomic\", \"set\", \"map\""
            ),
        }),
    }
    if has_keys && list_type != Some("map") {
        out.push(forbidden(
            format!("{at}.x-kubernetes-list-map-keys"),
            "must only be set if x-kubernetes-list-type is map",
        ));
    }
}

/// Root metadata may only restrict `name` and `generateName`: nothing else is allowed there
/// because metadata is always ObjectMeta.
fn metadata(meta: &Value, is_resource: bool, level: Level, at: &str, out: &mut Vec<Cause>) {
    if is_resource && schema_type(meta) != Some("object") {
        out.push(invalid(
            format!("{at}.type"),
            &format!("{:?}", schema_type(meta).unwrap_or_default()),
            "must be object",
        ));
    }
    if level != Level::Root {
        return;
    }
    let only_names = meta
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"));
    let extra = meta.as_object().is_some_and(|m| {
        m.keys()
            .any(|k| !matches!(k.as_str(), "type" | "properties" | "default"))
    });
    if !only_names || extra {
        out.push(forbidden(
            at.to_string(),
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

/// The int-or-string idiom: `anyOf: [{type: integer}, {type: string}]`.
fn is_int_or_string_any_of(any_of: &Value) -> bool {
    any_of.as_array().is_some_and(|a| {
        a.len() == 2
            && a[0] == serde_json::json!({"type": "integer"})
            && a[1] == serde_json::json!({"type": "string"})
    })
}

fn value_validation(s: &Value, int_or_string: bool, at: &str, out: &mut Vec<Cause>) {
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(pattern)
    {
        out.push(invalid(
            format!("{at}.pattern"),
            &format!("{pattern:?}"),
            &format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
    let skip_any_of = int_or_string && s.get("anyOf").is_some_and(is_int_or_string_any_of);
    let skip_first_all_of = int_or_string
        && s.pointer("/allOf/0/anyOf")
            .is_some_and(is_int_or_string_any_of);
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if junctor == "anyOf" && skip_any_of {
            continue;
        }
        let branches = s
            .get(junctor)
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (i, nested_schema) in branches.enumerate() {
            // The first allOf of the int-or-string idiom carries the idiom's anyOf.
            let skip_inner_any_of = junctor == "allOf" && i == 0 && skip_first_all_of;
            nested(
                nested_schema,
                skip_inner_any_of,
                &format!("{at}.{junctor}[{i}]"),
                out,
            );
        }
    }
    if let Some(not) = s.get("not") {
        nested(not, false, &format!("{at}.not"), out);
    }
}

/// Inside a junctor only value validations may appear.
fn nested(v: &Value, skip_any_of: bool, at: &str, out: &mut Vec<Cause>) {
    let rules: &[(&str, &str)] = &[
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        ("externalDocs", "must be undefined to be structural"),
        (
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
        (
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        ),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ];
    for (keyword, detail) in rules {
        let present = match v.get(*keyword) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        if present {
            out.push(forbidden(format!("{at}.{keyword}"), detail));
        }
    }
    if v.pointer("/properties/metadata").is_some() {
        out.push(forbidden(
            key(at, "properties", "metadata"),
            "must not be specified in a nested context",
        ));
    }
    if let Some(items) = v.get("items") {
        nested(items, false, &format!("{at}.items"), out);
    }
    for (name, p) in v
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        nested(p, false, &key(at, "properties", name), out);
    }
    value_validation_nested(v, skip_any_of, at, out);
}

fn value_validation_nested(v: &Value, skip_any_of: bool, at: &str, out: &mut Vec<Cause>) {
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if junctor == "anyOf" && skip_any_of {
            continue;
        }
        for (i, n) in v
            .get(junctor)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            nested(n, false, &format!("{at}.{junctor}[{i}]"), out);
        }
    }
    if let Some(not) = v.get("not") {
        nested(not, false, &format!("{at}.not"), out);
    }
}

/// The schemas under `allOf`/`anyOf`/`oneOf`/`not`, each with its path suffix (`anyOf[1]`).
fn junctor_branches(v: &Value) -> impl Iterator<Item = (String, &Value)> {
    ["allOf", "anyOf", "oneOf"]
        .into_iter()
        .flat_map(move |junctor| {
            v.get(junctor)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(move |(i, n)| (format!("{junctor}[{i}]"), n))
        })
        .chain(v.get("not").map(|n| ("not".to_string(), n)))
}

/// Every field or items a junctor speaks about must be specified by the schema itself.
fn completeness(v: &Value, s: &Value, s_at: &str, v_at: &str, out: &mut Vec<Cause>) {
    for (branch, n) in junctor_branches(v) {
        nested_completeness(n, Some(s), s_at, &format!("{v_at}.{branch}"), out);
    }
    if std::ptr::eq(v, s) {
        // Walk the structural tree itself so nested junctors are found everywhere.
        if let Some(items) = s.get("items") {
            completeness(
                items,
                items,
                &format!("{s_at}.items"),
                &format!("{s_at}.items"),
                out,
            );
        }
        for (name, p) in s
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let at = key(s_at, "properties", name);
            completeness(p, p, &at, &at, out);
        }
        if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
            let at = format!("{s_at}.additionalProperties");
            completeness(a, a, &at, &at, out);
        }
    }
}

fn nested_completeness(v: &Value, s: Option<&Value>, s_at: &str, v_at: &str, out: &mut Vec<Cause>) {
    let Some(s) = s else {
        out.push(required(
            s_at.to_string(),
            &format!("because it is defined in {v_at}"),
        ));
        return;
    };
    for (branch, n) in junctor_branches(v) {
        nested_completeness(n, Some(s), s_at, &format!("{v_at}.{branch}"), out);
    }
    if let Some(items) = v.get("items") {
        nested_completeness(
            items,
            s.get("items"),
            &format!("{s_at}.items"),
            &format!("{v_at}.items"),
            out,
        );
    }
    for (name, p) in v
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let s_prop = s.pointer(&format!(
            "/properties/{}",
            name.replace('~', "~0").replace('/', "~1")
        ));
        nested_completeness(
            p,
            s_prop,
            &key(s_at, "properties", name),
            &key(v_at, "properties", name),
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(schema: Value) -> Vec<String> {
        let mut out = Vec::new();
        check(&schema, "s", &mut out);
        out.into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn structural_schemas_pass() {
        let ok = json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}},
            "spec": {"type": "object", "properties": {
                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "free": {"x-kubernetes-preserve-unknown-fields": true},
                "tpl": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                "a": {"type": "string"}, "b": {"type": "string"}
            }, "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}}});
        assert_eq!(fields(ok), Vec::<String>::new());
    }

    #[test]
    fn non_structural_schemas_name_each_problem() {
        let bad = json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "spec": {"properties": {"list": {"type": "array"}},
                "anyOf": [{"properties": {"x": {"type": "string"}}}]}}});
        assert_eq!(
            fields(bad),
            vec![
                "s.properties[spec].properties[list].items: Required value: must be specified",
                "s.properties[spec].anyOf[0].properties[x].type: Forbidden: must be empty to be structural",
                "s.properties[spec].type: Required value: must not be empty for specified object fields",
                "s.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
                "s.properties[spec].properties[x]: Required value: because it is defined in s.properties[spec].anyOf[0].properties[x]",
            ]
        );
    }
}
