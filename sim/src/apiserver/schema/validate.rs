//! OpenAPI value validation of a custom resource, worded as the real server words it
//! (kube-openapi's messages, converted to causes by apiextensions' `ConvertSchemaValidationErrors`):
//! type (integers, numbers, int-or-string, nullable), enum, pattern, format, required,
//! minimum/maximum (exclusive too), multipleOf, min/maxLength, min/maxItems, list-type set and
//! map uniqueness, min/maxProperties, additionalProperties, allOf/anyOf/oneOf/not, and the
//! schema's constraints on `metadata.name`/`generateName`.

use super::path::{child, flag, go_value, index, schema_type, type_name};
use crate::apiserver::error::Cause;
use serde_json::Value;

/// Every violation in `obj`, one cause each. On updates (`old` is the stored object) values
/// equal to their correlated old value are not validated again: the real server's validation
/// ratcheting (GA in 1.33), so a tightened schema does not block writes that leave an old
/// value alone.
pub fn validate(obj: &Value, old: Option<&Value>, schema: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_node(obj, old, schema, "", true, &mut causes);
    causes
}

/// Every violation in a value that is not a whole resource (a `default:` at `path`).
pub fn validate_value(value: &Value, schema: &Value, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_node(value, None, schema, path, false, &mut causes);
    causes
}

fn validate_node(
    value: &Value,
    old: Option<&Value>,
    schema: &Value,
    path: &str,
    is_resource: bool,
    out: &mut Vec<Cause>,
) {
    if old == Some(value) || (value.is_null() && flag(schema, "nullable")) {
        return;
    }
    if !type_matches(value, schema, path, out) {
        return;
    }
    check_enum(value, schema, path, out);
    match value {
        Value::String(s) => check_string(s, schema, path, out),
        Value::Number(_) => check_number(value, schema, path, out),
        Value::Array(items) => check_array(items, old, schema, path, out),
        Value::Object(map) => check_object(map, old, schema, path, is_resource, out),
        _ => {}
    }
    check_junctors(value, schema, path, out);
}

/// Whether `value` has the schema's type; a cause if not.
fn type_matches(value: &Value, schema: &Value, path: &str, out: &mut Vec<Cause>) -> bool {
    let actual = type_name(value);
    let ok = if flag(schema, "x-kubernetes-int-or-string") {
        matches!(actual, "integer" | "string") || value.as_f64().is_some_and(|f| f.fract() == 0.0)
    } else {
        match schema_type(schema) {
            None => true,
            Some("integer") => {
                actual == "integer" || value.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            Some("number") => matches!(actual, "integer" | "number"),
            Some(expected) => actual == expected,
        }
    };
    if !ok {
        let expected = if flag(schema, "x-kubernetes-int-or-string") {
            "integer,string"
        } else {
            schema_type(schema).unwrap_or_default()
        };
        out.push(Cause {
            reason: "FieldValueTypeInvalid",
            field: path.to_string(),
            message: format!(
                "Invalid value: \"{actual}\": {} in body must be of type {expected}: \"{actual}\"",
                body(path)
            ),
        });
    }
    ok
}

/// How kube-openapi names a location: `spec.size in body`; the root is `body`.
fn body(path: &str) -> String {
    if path.is_empty() {
        "body".into()
    } else {
        path.to_string()
    }
}

fn invalid(path: &str, value: &Value, detail: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        field: path.to_string(),
        message: format!(
            "Invalid value: {}: {} in body {detail}",
            go_value(value),
            body(path)
        ),
    }
}

fn check_enum(value: &Value, schema: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(allowed) = schema.get("enum").and_then(Value::as_array) else {
        return;
    };
    if allowed.contains(value) {
        return;
    }
    // apiextensions prints each allowed value with `%v`, then quotes it: `"1"`, `"red"`.
    let supported: Vec<String> = allowed
        .iter()
        .map(|v| match v {
            Value::String(s) => format!("{s:?}"),
            other => format!("{:?}", other.to_string()),
        })
        .collect();
    out.push(Cause {
        reason: "FieldValueNotSupported",
        field: path.to_string(),
        message: format!(
            "Unsupported value: {}: supported values: {}",
            go_value(value),
            supported.join(", ")
        ),
    });
}

fn u64_of(schema: &Value, key: &str) -> Option<u64> {
    schema.get(key).and_then(Value::as_u64)
}

fn check_string(s: &str, schema: &Value, path: &str, out: &mut Vec<Cause>) {
    let value = Value::String(s.to_string());
    // kube-openapi counts characters, not bytes.
    let chars = s.chars().count() as u64;
    if let Some(max) = u64_of(schema, "maxLength")
        && chars > max
    {
        out.push(Cause {
            reason: "FieldValueTooLong",
            field: path.to_string(),
            message: format!("Too long: may not be more than {max} bytes"),
        });
    }
    if let Some(min) = u64_of(schema, "minLength")
        && chars < min
    {
        out.push(invalid(
            path,
            &value,
            format!("should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && matches_pattern(pattern, s) == Some(false)
    {
        out.push(invalid(path, &value, format!("should match '{pattern}'")));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !format_ok(format, s)
    {
        out.push(invalid(
            path,
            &value,
            format!("must be of type {format}: {s:?}"),
        ));
    }
}

/// Whether `s` matches `pattern`; `None` for a pattern that does not compile (the CRD check
/// refuses those). Compiled patterns are kept per thread: schemas repeat them on every write.
fn matches_pattern(pattern: &str, s: &str) -> Option<bool> {
    thread_local! {
        static COMPILED: std::cell::RefCell<std::collections::HashMap<String, Option<regex::Regex>>> =
            Default::default();
    }
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        let re = cache
            .entry(pattern.to_string())
            .or_insert_with(|| regex::Regex::new(pattern).ok());
        re.as_ref().map(|re| re.is_match(s))
    })
}

/// The string formats the real server checks (kube-openapi's registry restricted by
/// apiextensions); any other format is accepted as-is, as there.
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => is_date_time(s),
        "date" => is_date(s),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        "uuid" | "uuid3" | "uuid4" | "uuid5" => uuid::Uuid::parse_str(s).is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(s),
        "hostname" => is_hostname(s),
        "email" => is_email(s),
        "duration" => is_duration(s),
        _ => true,
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2
        && digits(y) && digits(m) && digits(d)
        && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&d.parse::<u32>().unwrap_or(0)))
}

/// RFC 3339 `2006-01-02T15:04:05[.frac](Z|±hh:mm)`, `T` or `t` or a space between.
fn is_date_time(s: &str) -> bool {
    if s.len() < 20 || !s.is_char_boundary(10) || !s.is_char_boundary(11) {
        return false;
    }
    let (date, rest) = (&s[..10], &s[11..]);
    if !is_date(date) || !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return false;
    }
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => return false,
    };
    let hms = time.split('.').next().unwrap_or_default();
    let frac_ok = time.split('.').nth(1).is_none_or(digits);
    let hms: Vec<&str> = hms.split(':').collect();
    let time_ok = matches!(hms.as_slice(), [h, m, sec] if [h, m, sec].iter().all(|p| p.len() == 2 && digits(p)));
    let zone_ok = zone.eq_ignore_ascii_case("z")
        || (zone.len() == 6
            && zone.as_bytes()[3] == b':'
            && digits(&zone[1..3])
            && digits(&zone[4..]));
    time_ok && frac_ok && zone_ok
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let max = if ip.parse::<std::net::Ipv4Addr>().is_ok() {
        32
    } else if ip.parse::<std::net::Ipv6Addr>().is_ok() {
        128
    } else {
        return false;
    };
    bits.parse::<u32>().is_ok_and(|b| b <= max) && digits(bits)
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((local, domain)) if !local.is_empty() && is_hostname(domain))
}

/// Go durations (`1h30m`, `500ms`) as strfmt's duration accepts them.
fn is_duration(s: &str) -> bool {
    static DURATION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+$")
            .expect("valid duration pattern")
    });
    s == "0" || DURATION.is_match(s)
}

fn check_number(value: &Value, schema: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(n) = value.as_f64() else {
        return;
    };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if flag(schema, "exclusiveMinimum") {
            if n <= min {
                out.push(invalid(
                    path,
                    value,
                    format!("should be greater than {}", num(min)),
                ));
            }
        } else if n < min {
            out.push(invalid(
                path,
                value,
                format!("should be greater than or equal to {}", num(min)),
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if flag(schema, "exclusiveMaximum") {
            if n >= max {
                out.push(invalid(
                    path,
                    value,
                    format!("should be less than {}", num(max)),
                ));
            }
        } else if n > max {
            out.push(invalid(
                path,
                value,
                format!("should be less than or equal to {}", num(max)),
            ));
        }
    }
    if let Some(m) = schema.get("multipleOf").and_then(Value::as_f64)
        && m > 0.0
        && (n / m).fract() != 0.0
    {
        out.push(invalid(
            path,
            value,
            format!("should be a multiple of {}", num(m)),
        ));
    }
}

/// Bounds print as Go prints them: `1`, not `1.0`.
fn num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn check_array(
    items: &[Value],
    old: Option<&Value>,
    schema: &Value,
    path: &str,
    out: &mut Vec<Cause>,
) {
    let len = items.len() as u64;
    if let Some(max) = u64_of(schema, "maxItems")
        && len > max
    {
        out.push(Cause {
            reason: "FieldValueTooMany",
            field: path.to_string(),
            message: format!("Too many: {len}: must have at most {max} items"),
        });
    }
    if let Some(min) = u64_of(schema, "minItems")
        && len < min
    {
        out.push(invalid(
            path,
            &Value::from(len),
            format!("should have at least {min} items"),
        ));
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    out.push(duplicate(&index(path, i), &go_value(item)));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let key_of = |item: &Value| -> Vec<Value> {
                keys.iter()
                    .map(|k| item.get(*k).cloned().unwrap_or(Value::Null))
                    .collect()
            };
            for (i, item) in items.iter().enumerate() {
                let k = key_of(item);
                if items[..i].iter().any(|earlier| key_of(earlier) == k) {
                    let shown: Vec<String> = keys
                        .iter()
                        .zip(&k)
                        .map(|(name, v)| format!("{name:?}:{}", go_value(v)))
                        .collect();
                    out.push(duplicate(
                        &index(path, i),
                        &format!("map[string]interface {{}}{{{}}}", shown.join(", ")),
                    ));
                }
            }
        }
        _ => {}
    }
    if let Some(item_schema) = schema.get("items") {
        let embedded = flag(item_schema, "x-kubernetes-embedded-resource");
        for (i, item) in items.iter().enumerate() {
            let old_item = correlated_item(item, old, schema);
            validate_node(item, old_item, item_schema, &index(path, i), embedded, out);
        }
    }
}

/// The old item an item stands for: by key in a `map` list, by value in a `set`; items of other
/// lists are not correlated.
fn correlated_item<'a>(item: &Value, old: Option<&'a Value>, schema: &Value) -> Option<&'a Value> {
    let olds = old?.as_array()?;
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => {
            let keys = schema.get("x-kubernetes-list-map-keys")?.as_array()?;
            olds.iter().find(|o| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .all(|k| o.get(k) == item.get(k))
            })
        }
        Some("set") => olds.iter().find(|o| *o == item),
        _ => None,
    }
}

fn duplicate(path: &str, shown: &str) -> Cause {
    Cause {
        reason: "FieldValueDuplicate",
        field: path.to_string(),
        message: format!("Duplicate value: {shown}"),
    }
}

fn check_object(
    map: &serde_json::Map<String, Value>,
    old: Option<&Value>,
    schema: &Value,
    path: &str,
    is_resource: bool,
    out: &mut Vec<Cause>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            // `null` counts as missing for a non-nullable field.
            let present = map.get(name).is_some_and(|v| {
                !v.is_null()
                    || schema
                        .pointer(&format!(
                            "/properties/{}/nullable",
                            name.replace('~', "~0").replace('/', "~1")
                        ))
                        .and_then(Value::as_bool)
                        == Some(true)
            });
            if !present {
                out.push(Cause {
                    reason: "FieldValueRequired",
                    field: child(path, name),
                    message: "Required value".into(),
                });
            }
        }
    }
    let count = map.len() as u64;
    if let Some(max) = u64_of(schema, "maxProperties")
        && count > max
    {
        out.push(Cause {
            reason: "FieldValueTooMany",
            field: path.to_string(),
            message: format!("Too many: {count}: must have at most {max} items"),
        });
    }
    if let Some(min) = u64_of(schema, "minProperties")
        && count < min
    {
        out.push(invalid(
            path,
            &Value::from(count),
            format!("should have at least {min} properties"),
        ));
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, v) in map {
        let at = child(path, key);
        if is_resource && matches!(key.as_str(), "apiVersion" | "kind") {
            continue;
        }
        if is_resource && key == "metadata" {
            let old_meta = old.and_then(|o| o.get("metadata"));
            check_metadata(
                v,
                old_meta,
                properties.and_then(|p| p.get("metadata")),
                &at,
                out,
            );
            continue;
        }
        if let Some(prop) = properties.and_then(|p| p.get(key)).or(additional) {
            let embedded = flag(prop, "x-kubernetes-embedded-resource");
            validate_node(v, old.and_then(|o| o.get(key)), prop, &at, embedded, out);
        }
    }
    if is_resource && !path.is_empty() {
        // An embedded resource must say what it is.
        for name in ["apiVersion", "kind"] {
            if map
                .get(name)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                out.push(Cause {
                    reason: "FieldValueRequired",
                    field: child(path, name),
                    message: "Required value: must not be empty".into(),
                });
            }
        }
    }
}

/// Metadata is ObjectMeta (validated by the generic write path); a schema may only constrain
/// `name` and `generateName`, and those constraints apply.
fn check_metadata(
    meta: &Value,
    old: Option<&Value>,
    schema: Option<&Value>,
    path: &str,
    out: &mut Vec<Cause>,
) {
    let Some(properties) = schema.and_then(|s| s.get("properties")) else {
        return;
    };
    for name in ["name", "generateName"] {
        if let (Some(v), Some(s)) = (meta.get(name), properties.get(name)) {
            let old_v = old.and_then(|o| o.get(name));
            validate_node(v, old_v, s, &child(path, name), false, out);
        }
    }
}

/// allOf, anyOf, oneOf and not: value validations without types of their own (structural).
fn check_junctors(value: &Value, schema: &Value, path: &str, out: &mut Vec<Cause>) {
    if flag(schema, "x-kubernetes-int-or-string") {
        // The int-or-string anyOf/allOf patterns restate the type check already done.
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate_node(value, None, s, path, false, out);
        }
    }
    let passes = |s: &Value| {
        let mut scratch = Vec::new();
        validate_node(value, None, s, path, false, &mut scratch);
        scratch.is_empty()
    };
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(passes)
    {
        out.push(invalid(
            path,
            value,
            "must validate at least one schema (anyOf)".into(),
        ));
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array)
        && one.iter().filter(|s| passes(s)).count() != 1
    {
        out.push(invalid(
            path,
            value,
            "must validate one and only one schema (oneOf)".into(),
        ));
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        out.push(invalid(
            path,
            value,
            "must not validate the schema (not)".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(obj: Value, schema: Value) -> Vec<String> {
        validate(
            &obj,
            None,
            &json!({"type": "object", "properties": {"spec": schema}}),
        )
        .into_iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
    }

    #[test]
    fn each_keyword_words_its_failure_like_the_real_server() {
        let schema = json!({"type": "object", "required": ["name"], "properties": {
            "n": {"type": "integer", "minimum": 1},
            "m": {"type": "number", "maximum": 10, "exclusiveMaximum": true},
            "s": {"type": "string", "enum": ["a", "b"]},
            "p": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 3},
            "t": {"type": "string", "format": "date-time"},
            "l": {"type": "array", "maxItems": 1, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "i": {"x-kubernetes-int-or-string": true},
            "name": {"type": "string"}
        }});
        let got = messages(
            json!({"spec": {"n": 0, "m": 10, "s": "c", "p": "Abcd", "t": "yesterday",
                "l": ["x", "x"], "i": true}}),
            schema,
        );
        assert_eq!(
            got,
            vec![
                "spec.name: Required value",
                "spec.i: Invalid value: \"boolean\": spec.i in body must be of type integer,string: \"boolean\"",
                "spec.l: Too many: 2: must have at most 1 items",
                "spec.l[1]: Duplicate value: \"x\"",
                "spec.m: Invalid value: 10: spec.m in body should be less than 10",
                "spec.n: Invalid value: 0: spec.n in body should be greater than or equal to 1",
                "spec.p: Too long: may not be more than 3 bytes",
                "spec.p: Invalid value: \"Abcd\": spec.p in body should match '^[a-z]+$'",
                "spec.s: Unsupported value: \"c\": supported values: \"a\", \"b\"",
                "spec.t: Invalid value: \"yesterday\": spec.t in body must be of type date-time: \"yesterday\"",
            ]
        );
    }

    #[test]
    fn numeric_enums_list_their_values_quoted() {
        let got = messages(
            json!({"spec": {"e": 3}}),
            json!({"type": "object", "properties": {"e": {"type": "integer", "enum": [1, 2]}}}),
        );
        assert_eq!(
            got,
            vec!["spec.e: Unsupported value: 3: supported values: \"1\", \"2\""]
        );
    }

    #[test]
    fn unchanged_values_are_not_validated_again() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "a": {"type": "integer", "minimum": 5}, "b": {"type": "integer", "minimum": 5},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer", "minimum": 5}}}}}}}});
        let old = json!({"spec": {"a": 1, "b": 1, "ports": [{"name": "x", "n": 1}, {"name": "y", "n": 1}]}});
        let new = json!({"spec": {"a": 1, "b": 2, "ports": [{"name": "y", "n": 1}, {"name": "x", "n": 2}]}});
        let fields: Vec<String> = validate(&new, Some(&old), &schema)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, vec!["spec.b", "spec.ports[1].n"]);
    }

    #[test]
    fn formats() {
        assert!(
            is_date_time("2026-11-24T23:40:00Z") && is_date_time("2026-11-24T23:40:00.123+01:00")
        );
        assert!(!is_date_time("2026-11-24 23:40") && !is_date_time("2026-13-24T23:40:00Z"));
        assert!(is_duration("1h30m") && is_duration("2160h") && !is_duration("an hour"));
        assert!(is_cidr("10.0.0.0/8") && !is_cidr("10.0.0.0/33"));
    }
}
