//! Strict field validation for built-in kinds, against the OpenAPI schemas generated from
//! k8s-openapi (`builtin_schemas`). The real server decodes built-ins into Go structs, which
//! drops unknown fields; so does this, reporting them per `fieldValidation` like custom
//! resources. Nothing else of the schema is enforced for built-ins.

use super::SchemaSource;
use crate::apiserver::builtin_schemas::SchemaSet;
use serde_json::Value;

pub struct Builtin(pub &'static SchemaSet);

impl SchemaSource for Builtin {
    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        self.0.resolve(node)
    }

    /// Free-form JSON in the Go types (`JSON`, `FieldsV1`, `RawExtension`) is an object schema
    /// declaring nothing: it holds whatever it is given.
    fn keeps_unknown(&self, node: &Value) -> bool {
        node.get("properties").is_none() && node.get("additionalProperties").is_none()
    }
}

/// The root schema of a stored object's kind, from its own `apiVersion` and `kind`.
pub fn root_schema(obj: &Value) -> Option<&'static Value> {
    let set = SchemaSet::builtin();
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    set.component(set.root(group, version, kind)?)
}
