//! CRD-time checks of `x-kubernetes-validations`: each rule (and `messageExpression`) must
//! compile, transition rules must sit where old values can be correlated, and the rule's
//! estimated cost must fit the real server's budget.
//!
//! The cost check approximates cel-go's static estimator as apiextensions uses it:
//! - a rule's cost is its expression's worst-case cost times the node's *cardinality*, the
//!   product of the maximum sizes of the lists and maps enclosing it (`maxItems`,
//!   `maxProperties`, or, when absent, as many minimal elements as fit in a 3 MiB request);
//! - in the expression: one per identifier, field selection and call; comprehensions
//!   (`all`, `exists`, `map`, `filter`, …) cost their range's maximum size times their body;
//!   string work costs 0.1 per character of the string's maximum length (`maxLength`, else
//!   3 MiB): equality, `startsWith`/`endsWith`, `lowerAscii` and the like linearly, `contains`
//!   as the product of both lengths, `matches` as the string's cost times a quarter of the
//!   pattern's length;
//! - a rule over 10,000,000 (cel's `StaticEstimatedCostLimit`) is refused with the real
//!   message, and so is a schema whose rules together exceed 100,000,000.
//!
//! So, as on a real server, a cheap rule on an unbounded string is accepted, while a rule that
//! scans an unbounded string inside an unbounded list, or compares two unbounded strings with
//! `contains`, is refused until `maxLength`/`maxItems` bound it.

use super::path::{flag, schema_type};
use crate::apiserver::error::Cause;
use kube::core::cel::cel::Program;
use kube::core::cel::cel::common::ast::{Expr, LiteralValue};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

const MAX_REQUEST_BYTES: u64 = 3 * 1024 * 1024;
const PER_RULE_LIMIT: u64 = 10_000_000;
const PER_CRD_LIMIT: u64 = 100_000_000;
/// The longest string a request can carry: all of it but the quotes.
const UNBOUNDED_STRING: u64 = MAX_REQUEST_BYTES - 2;

pub fn check(schema: &Value, at: &str, out: &mut Vec<Cause>) {
    let mut total = 0u64;
    // Rules at the root see only `metadata.name` and `metadata.generateName`.
    let mut root = schema.clone();
    if let Some(root_map) = root.as_object_mut() {
        let properties = root_map
            .entry("properties")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(properties) = properties.as_object_mut() {
            properties.insert(
                "metadata".into(),
                serde_json::json!({"type": "object", "properties": {
                    "name": {"type": "string"}, "generateName": {"type": "string"}}}),
            );
        }
    }
    walk(&root, at, 1, None, &mut total, out);
    if total > PER_CRD_LIMIT {
        out.push(Cause {
            reason: "FieldValueForbidden",
            field: at.to_string(),
            message: format!(
                "Forbidden: {}",
                cost_message(
                    "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                    total,
                    PER_CRD_LIMIT
                )
            ),
        });
    }
}

/// `uncorrelatable`: the path of the list whose items have no old value, if any encloses this.
fn walk(
    s: &Value,
    at: &str,
    cardinality: u64,
    uncorrelatable: Option<&str>,
    total: &mut u64,
    out: &mut Vec<Cause>,
) {
    for (i, rule) in s
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let rule_at = format!("{at}.x-kubernetes-validations[{i}]");
        check_rule(rule, s, &rule_at, cardinality, uncorrelatable, total, out);
    }
    for (name, p) in s
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let child_at = super::path::key(at, "properties", name);
        walk(p, &child_at, cardinality, uncorrelatable, total, out);
    }
    if let Some(items) = s.get("items") {
        let child_at = format!("{at}.items");
        let size = max_items(s);
        let correlatable = s.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
        let unc = if correlatable {
            uncorrelatable
        } else {
            uncorrelatable.or(Some(at))
        };
        walk(
            items,
            &child_at,
            cardinality.saturating_mul(size),
            unc,
            total,
            out,
        );
    }
    if let Some(additional) = s.get("additionalProperties").filter(|a| a.is_object()) {
        let child_at = format!("{at}.additionalProperties");
        let size = max_properties(s);
        walk(
            additional,
            &child_at,
            cardinality.saturating_mul(size),
            uncorrelatable,
            total,
            out,
        );
    }
}

fn check_rule(
    rule: &Value,
    node: &Value,
    at: &str,
    cardinality: u64,
    uncorrelatable: Option<&str>,
    total: &mut u64,
    out: &mut Vec<Cause>,
) {
    let text = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
    if text.trim().is_empty() {
        out.push(Cause {
            reason: "FieldValueRequired",
            field: format!("{at}.rule"),
            message: "Required value: rule is not specified".into(),
        });
        return;
    }
    if let Some(reason) = rule.get("reason").and_then(Value::as_str)
        && !matches!(
            reason,
            "FieldValueDuplicate"
                | "FieldValueForbidden"
                | "FieldValueInvalid"
                | "FieldValueRequired"
        )
    {
        out.push(Cause {
            reason: "FieldValueNotSupported",
            field: format!("{at}.reason"),
            message: format!(
                "Unsupported value: {reason:?}: supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
            ),
        });
    }
    let program = match Program::compile(text) {
        Ok(p) => p,
        Err(e) => {
            out.push(Cause {
                reason: "FieldValueInvalid",
                field: format!("{at}.rule"),
                message: format!(
                    "Invalid value: {}: compilation failed: {}",
                    shown_rule(rule),
                    e.to_string().trim()
                ),
            });
            return;
        }
    };
    if let Some(expr) = rule.get("messageExpression").and_then(Value::as_str)
        && let Err(e) = Program::compile(expr)
    {
        out.push(Cause {
            reason: "FieldValueInvalid",
            field: format!("{at}.messageExpression"),
            message: format!(
                "Invalid value: {}: messageExpression compilation failed: {}",
                shown_rule(rule),
                e.to_string().trim()
            ),
        });
    }
    let transition = program.references().has_variable("oldSelf");
    if transition && let Some(list) = uncorrelatable {
        out.push(Cause {
            reason: "FieldValueInvalid",
            field: format!("{at}.rule"),
            message: format!(
                "Invalid value: {text:?}: oldSelf cannot be used on the uncorrelatable portion of the schema within {list}"
            ),
        });
    }
    let undefined = RefCell::new(Vec::new());
    let env = Env {
        vars: HashMap::from([
            ("self".to_string(), Some(node)),
            ("oldSelf".to_string(), Some(node)),
        ]),
        undefined: &undefined,
    };
    let expr_cost = estimate(&program.expression().expr, &env).cost;
    if let Some(field) = undefined.into_inner().first() {
        // cel-go's type check, for the one kind of type error a schema makes likely: a typo.
        out.push(Cause {
            reason: "FieldValueInvalid",
            field: format!("{at}.rule"),
            message: format!(
                "Invalid value: {}: compilation failed: ERROR: <input>: undefined field '{field}'",
                shown_rule(rule)
            ),
        });
        return;
    }
    let cost = expr_cost.max(1).saturating_mul(cardinality);
    *total = total.saturating_add(cost);
    if cost > PER_RULE_LIMIT {
        out.push(Cause {
            reason: "FieldValueForbidden",
            field: format!("{at}.rule"),
            message: format!(
                "Forbidden: {}",
                cost_message("estimated rule cost", cost, PER_RULE_LIMIT)
            ),
        });
    }
}

fn shown_rule(rule: &Value) -> String {
    format!(
        "apiextensions.ValidationRule{{Rule:{:?}, Message:{:?}}}",
        rule.get("rule").and_then(Value::as_str).unwrap_or_default(),
        rule.get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

/// The real server's wording (apiextensions `getCostErrorMessage`).
fn cost_message(what: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{what} exceeds budget by factor of {factor} (try simplifying the rule(s), or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

/// The smallest JSON a value of this schema can be, which bounds how many fit in a request.
fn min_size(s: &Value) -> u64 {
    if flag(s, "x-kubernetes-int-or-string") {
        return 1;
    }
    match schema_type(s) {
        Some("string") => 2,
        Some("integer" | "number") => 1,
        Some("boolean") => 4,
        Some("object" | "array") => 2,
        _ => 1,
    }
}

fn max_items(s: &Value) -> u64 {
    s.get("maxItems")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| {
            let item = s.get("items").map(min_size).unwrap_or(1);
            // `[` `]` around items each followed by a comma.
            (MAX_REQUEST_BYTES - 2) / (item + 1)
        })
}

fn max_properties(s: &Value) -> u64 {
    s.get("maxProperties")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| {
            let value = s.get("additionalProperties").map(min_size).unwrap_or(1);
            // `"":` before each value and a comma after it.
            (MAX_REQUEST_BYTES - 2) / (value + 4)
        })
}

/// A sub-expression's worst-case cost, and what is known of its value: the schema node it
/// reads, and its maximum length (characters of a string, elements of a list).
#[derive(Clone, Copy)]
struct Estimate<'a> {
    cost: u64,
    node: Option<&'a Value>,
    len: Option<u64>,
}

impl<'a> Estimate<'a> {
    fn cost(cost: u64) -> Self {
        Estimate {
            cost,
            node: None,
            len: None,
        }
    }

    fn of_node(cost: u64, node: Option<&'a Value>) -> Self {
        let len = node.and_then(|n| match schema_type(n) {
            Some("string") => Some(
                n.get("maxLength")
                    .and_then(Value::as_u64)
                    .unwrap_or(UNBOUNDED_STRING),
            ),
            Some("array") => Some(max_items(n)),
            Some("object") if n.get("additionalProperties").is_some_and(Value::is_object) => {
                Some(max_properties(n))
            }
            _ => None,
        });
        Estimate { cost, node, len }
    }

    /// The maximum length, unknown treated as 1 (an optimistic guess, as for literals).
    fn length(&self) -> u64 {
        self.len.unwrap_or(1)
    }
}

/// 0.1 per character, rounded up, as cel's string traversal cost factor.
fn traversal(len: u64) -> u64 {
    len.div_ceil(10)
}

/// What identifiers read (schema nodes where known), and the fields a rule selects that its
/// schema does not declare.
#[derive(Clone)]
struct Env<'a, 'b> {
    vars: HashMap<String, Option<&'a Value>>,
    undefined: &'b RefCell<Vec<String>>,
}

fn estimate<'a>(expr: &Expr, env: &Env<'a, '_>) -> Estimate<'a> {
    match expr {
        Expr::Literal(LiteralValue::String(s)) => Estimate {
            cost: 0,
            node: None,
            len: Some(s.inner().chars().count() as u64),
        },
        Expr::Literal(_) | Expr::Unspecified => Estimate::cost(0),
        Expr::Ident(name) => Estimate::of_node(1, env.vars.get(name).copied().flatten()),
        Expr::Select(sel) => {
            let operand = estimate(&sel.operand.expr, env);
            if let Some(n) = operand.node
                && declares_no(n, &sel.field)
            {
                env.undefined.borrow_mut().push(sel.field.clone());
            }
            let field = operand.node.and_then(|n| {
                n.get("properties")
                    .and_then(|p| p.get(&sel.field))
                    .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
            });
            Estimate::of_node(operand.cost.saturating_add(1), field)
        }
        Expr::List(list) => {
            let cost = list
                .elements
                .iter()
                .map(|e| estimate(&e.expr, env).cost)
                .fold(1u64, u64::saturating_add);
            Estimate {
                cost,
                node: None,
                len: Some(list.elements.len() as u64),
            }
        }
        Expr::Map(_) | Expr::Struct(_) => Estimate::cost(1),
        Expr::Call(call) => {
            let target = call.target.as_ref().map(|t| estimate(&t.expr, env));
            let args: Vec<Estimate> = call.args.iter().map(|a| estimate(&a.expr, env)).collect();
            let mut cost = args
                .iter()
                .chain(target.iter())
                .map(|e| e.cost)
                .fold(1u64, u64::saturating_add);
            let receiver = target.or_else(|| args.first().copied());
            let mut result = Estimate::cost(0);
            match call.func_name.as_str() {
                "matches" => {
                    let (text, pattern) = match (target, args.as_slice()) {
                        (Some(t), [p]) => (t, *p),
                        (None, [t, p]) => (*t, *p),
                        _ => (Estimate::cost(0), Estimate::cost(0)),
                    };
                    let regex = pattern.length().div_ceil(4).max(1);
                    cost = cost.saturating_add(traversal(text.length()).saturating_mul(regex));
                }
                "contains" => {
                    let other = args.last().map(Estimate::length).unwrap_or(1);
                    let own = receiver.map(|r| r.length()).unwrap_or(1);
                    cost = cost.saturating_add(traversal(own.saturating_mul(other)));
                }
                "startsWith" | "endsWith" => {
                    let prefix = args.last().map(Estimate::length).unwrap_or(1);
                    cost = cost.saturating_add(traversal(prefix));
                }
                "_==_" | "_!=_" => {
                    let shortest = args.iter().map(Estimate::length).min().unwrap_or(1);
                    cost = cost.saturating_add(traversal(shortest));
                }
                "_+_" => {
                    let len = args
                        .iter()
                        .map(Estimate::length)
                        .fold(0u64, u64::saturating_add);
                    cost = cost.saturating_add(traversal(len));
                    result.len = Some(len);
                }
                "@in" => {
                    cost = cost.saturating_add(args.last().map(Estimate::length).unwrap_or(1));
                }
                "lowerAscii" | "upperAscii" | "trim" | "replace" | "split" | "find" | "findAll"
                | "indexOf" | "lastIndexOf" | "substring" | "charAt" | "join" | "reverse" => {
                    let len = receiver.map(|r| r.length()).unwrap_or(1);
                    cost = cost.saturating_add(traversal(len));
                    result.len = Some(len);
                }
                "_[_]" => {
                    result.node = receiver.and_then(|r| r.node).and_then(|n| {
                        n.get("items")
                            .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
                    });
                    result = Estimate::of_node(0, result.node);
                }
                _ => {}
            }
            result.cost = cost;
            result
        }
        Expr::Comprehension(c) => {
            let range = estimate(&c.iter_range.expr, env);
            let element = range.node.and_then(|n| {
                n.get("items").or_else(|| {
                    n.get("additionalProperties")
                        .filter(|a| a.is_object())
                        .map(|_| &*KEY_SCHEMA)
                })
            });
            let mut inner = env.clone();
            inner.vars.insert(c.iter_var.clone(), element);
            if let Some(v2) = &c.iter_var2 {
                inner.vars.insert(v2.clone(), element);
            }
            inner.vars.insert(c.accu_var.clone(), None);
            let body = estimate(&c.loop_step.expr, &inner)
                .cost
                .saturating_add(estimate(&c.loop_cond.expr, &inner).cost)
                .max(1);
            let cost = range
                .cost
                .saturating_add(estimate(&c.accu_init.expr, env).cost)
                .saturating_add(range.length().saturating_mul(body))
                .saturating_add(estimate(&c.result.expr, &inner).cost);
            Estimate {
                cost,
                node: None,
                len: range.len,
            }
        }
    }
}

/// Whether selecting `field` from a value of schema `node` is a type error: the node is an
/// object that declares its properties, keeps no unknown fields and is no map. The root's and
/// embedded resources' implicit `apiVersion`, `kind` and `metadata` are always there.
fn declares_no(node: &Value, field: &str) -> bool {
    let Some(properties) = node.get("properties").and_then(Value::as_object) else {
        return false;
    };
    let implicit = matches!(field, "apiVersion" | "kind" | "metadata");
    schema_type(node) == Some("object")
        && !flag(node, "x-kubernetes-preserve-unknown-fields")
        && node.get("additionalProperties").is_none()
        && !properties.contains_key(field)
        && !implicit
}

/// A map's keys: strings of unknown length.
static KEY_SCHEMA: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| serde_json::json!({"type": "string"}));

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn causes(schema: Value) -> Vec<String> {
        let mut out = Vec::new();
        check(&schema, "s", &mut out);
        out.into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    fn with_rule(prop: Value) -> Value {
        json!({"type": "object", "properties": {"spec": prop}})
    }

    #[test]
    fn cheap_rules_and_bounded_strings_pass() {
        let ok = with_rule(json!({"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string", "maxLength": 64},
            "names": {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 63,
                "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')"}]}}},
            "x-kubernetes-validations": [
                {"rule": "!has(self.a) || self.a.startsWith('x')"},
                {"rule": "self.b.contains('y')"},
                {"rule": "self.names.all(n, n.size() < 10)"}]}));
        assert_eq!(causes(ok), Vec::<String>::new());
    }

    #[test]
    fn unbounded_strings_and_lists_exceed_the_budget() {
        let bad = with_rule(json!({"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string"},
            "names": {"type": "array", "items": {"type": "string",
                "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')"}]}}},
            "x-kubernetes-validations": [{"rule": "self.a.contains(self.b)"}]}));
        let got = causes(bad);
        assert!(got[0].starts_with("s.properties[spec].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x"), "{got:?}");
        assert!(got[1].starts_with("s.properties[spec].properties[names].items.x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x"), "{got:?}");
    }

    #[test]
    fn rules_naming_undeclared_fields_do_not_compile() {
        let bad = with_rule(json!({"type": "object",
            "properties": {"items": {"type": "array", "maxItems": 4, "items": {"type": "object",
                "properties": {"name": {"type": "string", "maxLength": 8}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "x-kubernetes-validations": [
                {"rule": "has(self.free.anything) || self.items.all(i, i.name != '')"},
                {"rule": "self.items.all(i, has(i.nmae))"}]}));
        let got = causes(bad);
        assert_eq!(got.len(), 1, "{got:?}");

        assert!(
            got[0]
                .starts_with("s.properties[spec].x-kubernetes-validations[1].rule: Invalid value:")
                && got[0].ends_with("compilation failed: ERROR: <input>: undefined field 'nmae'"),
            "{got:?}"
        );
        // At the root, metadata offers only name and generateName.
        let root = json!({"type": "object", "x-kubernetes-validations": [
            {"rule": "self.metadata.name.startsWith('a')"}, {"rule": "has(self.metadata.labels)"}]});
        let at_root = causes(root);
        assert_eq!(at_root.len(), 1, "{at_root:?}");
        assert!(
            at_root[0].ends_with("undefined field 'labels'"),
            "{at_root:?}"
        );
    }

    #[test]
    fn rules_must_compile_and_transition_rules_must_be_correlatable() {
        let bad = with_rule(json!({"type": "object", "properties": {
            "list": {"type": "array", "maxItems": 4, "items": {"type": "string", "maxLength": 8,
                "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}},
            "x-kubernetes-validations": [{"rule": "self.a >"}, {"rule": "true", "reason": "Nope"}]}));
        let got = causes(bad);
        assert!(got.contains(&"s.properties[spec].x-kubernetes-validations[1].reason: Unsupported value: \"Nope\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"".to_string()), "{got:?}");
        assert!(got[0].contains("x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.a >\""), "{got:?}");
        assert_eq!(
            got[2],
            "s.properties[spec].properties[list].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within s.properties[spec].properties[list]"
        );
    }
}
