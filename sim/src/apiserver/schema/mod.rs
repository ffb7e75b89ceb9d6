//! CRD schemas enforced the way the real apiserver enforces them (apiextensions-apiserver).
//!
//! On CRD create and update: every version's `openAPIV3Schema` must be structural
//! ([`structural`]) and its CEL rules must compile and fit the cost budget ([`cel_cost`]).
//!
//! On every write of a custom resource ([`admit`]), in the real server's order:
//! 1. unknown fields are found and pruned ([`prune`]), and reported according to
//!    `fieldValidation` ([`strict`]): `Strict` refuses the request, `Warn` (the default) answers
//!    with `Warning` headers, `Ignore` says nothing;
//! 2. `default:` values are filled in ([`default`]);
//! 3. the object is validated against the OpenAPI keywords ([`validate`]);
//! 4. `x-kubernetes-validations` CEL rules run, transition rules only with an old object
//!    ([`cel_rules`]).
//!
//! On updates, values equal to their old value are not validated again (the real server's
//! ratcheting). Every failure of steps 3 and 4 is one `Cause`; they all go into one 422, and
//! nothing is written. Built-in kinds get step 1 only, against k8s-openapi's schemas ([`builtin`]).
//! See docs/sim-apiserver-schemas.md.

mod builtin;
mod cel_cost;
mod cel_rules;
mod default;
mod path;
pub(super) mod prune;
pub mod strict;
mod structural;
mod validate;

pub use prune::SchemaSource;
pub use strict::{FieldValidation, Warnings};

use super::builtin_schemas::SchemaSet;
use super::error::{ApiError, ApiResult, Cause};
use super::resources::ResourceType;
use super::write::WriteOptions;
use serde_json::Value;

/// CRD schemas hold no `$ref`s: a node is its own schema.
pub struct Inline;

impl SchemaSource for Inline {
    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        node
    }
}

/// The 422 causes that make a CRD's schemas unacceptable: non-structural schemas, invalid
/// keywords, CEL rules that do not compile or cost too much.
pub fn crd_schema_causes(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, version) in versions.iter().enumerate() {
        let at = format!("spec.versions[{i}].schema.openAPIV3Schema");
        match version.pointer("/schema/openAPIV3Schema") {
            Some(schema) if schema.is_object() => {
                structural::check(schema, &at, &mut causes);
                cel_cost::check(schema, &at, &mut causes);
                check_defaults(schema, &at, &mut causes);
            }
            _ => causes.push(Cause {
                reason: "FieldValueRequired",
                field: at,
                message: "Required value: schemas are required".into(),
            }),
        }
    }
    causes
}

/// Every `default:` must itself be valid for its node and hold no pruned fields, as the real
/// server checks when the CRD is written.
fn check_defaults(schema: &Value, at: &str, out: &mut Vec<Cause>) {
    if let Some(default) = schema.get("default") {
        let field = format!("{at}.default");
        let mut pruned = default.clone();
        for unknown in prune::prune_value(&mut pruned, schema, &Inline) {
            out.push(Cause {
                reason: "FieldValueInvalid",
                field: field.clone(),
                message: format!(
                    "Invalid value: {}: must not have unknown fields: {unknown}",
                    path::go_value(default)
                ),
            });
        }
        out.extend(validate::validate_value(&pruned, schema, &field));
    }
    for (name, p) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        check_defaults(p, &path::key(at, "properties", name), out);
    }
    if let Some(items) = schema.get("items") {
        check_defaults(items, &format!("{at}.items"), out);
    }
    if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        check_defaults(a, &format!("{at}.additionalProperties"), out);
    }
}

/// The schema a CRD declares for `version`.
pub fn version_schema<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    super::resources::crd_version(crd, version)?.pointer("/schema/openAPIV3Schema")
}

/// The schema of a custom resource at the version the request addressed, else at the stored
/// version (in-process writes name none).
fn custom_schema<'a>(rt: &'a ResourceType, version: &str) -> Option<&'a Value> {
    let crd = rt.crd.as_ref()?;
    version_schema(crd, version)
        .or_else(|| version_schema(crd, rt.preferred_version()))
        .filter(|s| s.is_object())
}

/// Steps 1 and 2 alone: drops the undeclared fields of a request's object and reports them.
/// A `/status` write runs this on the whole body it was sent (the real server decodes all of
/// it, spec included) before taking only `.status` from it.
pub fn prune_request(
    rt: &ResourceType,
    version: &str,
    obj: &mut Value,
    opts: &WriteOptions,
) -> ApiResult<()> {
    let unknown = match custom_schema(rt, version) {
        Some(schema) => prune::prune(obj, schema, &Inline),
        None => match builtin::root_schema(obj) {
            Some(schema) => prune::prune(obj, schema, &builtin::Builtin(SchemaSet::builtin())),
            None => Vec::new(),
        },
    };
    strict::report(rt, version, &unknown, opts)
}

/// Prunes, defaults and validates a custom resource about to be stored, against the schema of
/// the version the request addressed. `old` is the stored object on updates (for transition
/// rules). Unknown fields are reported per `opts.field_validation`.
pub fn admit(
    rt: &ResourceType,
    version: &str,
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOptions,
) -> ApiResult<()> {
    prune_request(rt, version, obj, opts)?;
    let Some(schema) = custom_schema(rt, version) else {
        // Built-in kinds: unknown fields only (what decoding into the Go types drops).
        return Ok(());
    };
    default::apply(obj, schema);
    let mut causes = validate::validate(obj, old, schema);
    causes.extend(cel_rules::evaluate(obj, old, schema));
    if causes.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(ApiError::invalid(&rt.group, &rt.kind, name, causes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_must_be_valid_for_their_schema() {
        let crd = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema":
            {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "minimum": 1, "default": 0},
                "tls": {"type": "object", "default": {"on": true, "extra": 1},
                    "properties": {"on": {"type": "boolean"}}}}}}}}}]}});
        let causes: Vec<String> = crd_schema_causes(&crd)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let at = "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties";
        assert_eq!(
            causes,
            vec![
                format!(
                    "{at}[replicas].default: Invalid value: 0: {at}[replicas].default in body should be greater than or equal to 1"
                ),
                format!(
                    "{at}[tls].default: Invalid value: \"object\": must not have unknown fields: extra"
                ),
            ]
        );
    }
}
