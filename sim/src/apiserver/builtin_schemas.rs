//! OpenAPI v3 schemas of the built-in kinds the server serves, generated once from k8s-openapi's
//! `JsonSchema` impls (feature `schemars`), so nothing is downloaded at run time.
//!
//! Components are named as the real server names them (`io.k8s.api.core.v1.ConfigMap`,
//! `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`) and refer to each other with
//! `$ref: "#/components/schemas/<name>"`. Schemas are recursive (JSONSchemaProps), so refs are
//! kept, never inlined; [`SchemaSet::resolve`] follows one.
//!
//! Consumers: `/openapi/v3` documents (kubectl explain and apply) and strict field validation.

use k8s_openapi::api::{apps, coordination, core, events, networking, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// Where OpenAPI v3 keeps named schemas; every `$ref` in a [`SchemaSet`] starts with it.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// The component name of `metadata` in every object.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// A closed set of named schemas plus the root component of each served kind.
#[derive(Debug, Default)]
pub struct SchemaSet {
    components: BTreeMap<String, Value>,
    /// (group, version, kind) → component name.
    roots: BTreeMap<(String, String, String), String>,
}

impl SchemaSet {
    /// The built-in kinds of `resources.rs`, generated on first use.
    pub fn builtin() -> &'static SchemaSet {
        static SET: OnceLock<SchemaSet> = OnceLock::new();
        SET.get_or_init(generate_builtin)
    }

    /// The component name of a kind's schema, e.g. `("", "v1", "ConfigMap")` →
    /// `io.k8s.api.core.v1.ConfigMap`.
    pub fn root(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.roots
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }

    pub fn component(&self, name: &str) -> Option<&Value> {
        self.components.get(name)
    }

    pub fn components(&self) -> &BTreeMap<String, Value> {
        &self.components
    }

    /// Every (group, version, kind) with a root schema.
    pub fn kinds(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.roots
            .keys()
            .map(|(g, v, k)| (g.as_str(), v.as_str(), k.as_str()))
    }

    /// `schema` itself, or the component its `$ref` names (also through a lone
    /// `allOf: [{$ref}]`, the form a described reference takes). An unknown ref resolves to
    /// itself so callers see the unresolvable schema rather than a panic.
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut current = schema;
        // A chain of refs is at most a few long; the bound stops a malformed self-reference.
        for _ in 0..8 {
            match ref_target(current).and_then(|name| self.components.get(name)) {
                Some(next) => current = next,
                None => return current,
            }
        }
        current
    }

    /// The components `names` refer to, transitively, including themselves: what one OpenAPI
    /// document must carry so that every `$ref` in it resolves.
    pub fn closure<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let mut pending: Vec<String> = names.into_iter().map(str::to_string).collect();
        while let Some(name) = pending.pop() {
            if out.contains_key(&name) {
                continue;
            }
            let Some(schema) = self.components.get(&name) else {
                continue;
            };
            let mut refs = BTreeSet::new();
            collect_refs(schema, &mut refs);
            pending.extend(refs.into_iter().filter(|r| !out.contains_key(r)));
            out.insert(name, schema.clone());
        }
        out
    }
}

/// The component name a schema refers to: `{$ref}` or `{allOf: [{$ref}], …}`.
pub fn ref_target(schema: &Value) -> Option<&str> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.strip_prefix(REF_PREFIX);
    }
    match schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([only]) => only
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(REF_PREFIX)),
        _ => None,
    }
}

/// Adds every component name referred to anywhere inside `schema`.
pub fn collect_refs(schema: &Value, into: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref"
                    && let Some(name) = value.as_str().and_then(|r| r.strip_prefix(REF_PREFIX))
                {
                    into.insert(name.to_string());
                } else {
                    collect_refs(value, into);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, into)),
        _ => {}
    }
}

/// Registers `T` as the root of (group, version, kind), marking its component with
/// `x-kubernetes-group-version-kind` as the real server does (kubectl explain looks for it).
fn add_root<T: schemars::JsonSchema>(
    generator: &mut SchemaGenerator,
    roots: &mut BTreeMap<(String, String, String), String>,
    group: &str,
    version: &str,
    kind: &str,
) {
    generator.subschema_for::<T>();
    roots.insert(
        (group.to_string(), version.to_string(), kind.to_string()),
        T::schema_name().into_owned(),
    );
}

fn generate_builtin() -> SchemaSet {
    let mut settings = SchemaSettings::openapi3();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let mut roots = BTreeMap::new();
    let g = &mut generator;
    let r = &mut roots;
    add_root::<core::v1::Namespace>(g, r, "", "v1", "Namespace");
    add_root::<core::v1::Secret>(g, r, "", "v1", "Secret");
    add_root::<core::v1::ConfigMap>(g, r, "", "v1", "ConfigMap");
    add_root::<core::v1::ServiceAccount>(g, r, "", "v1", "ServiceAccount");
    add_root::<core::v1::Service>(g, r, "", "v1", "Service");
    add_root::<core::v1::Node>(g, r, "", "v1", "Node");
    add_root::<core::v1::Event>(g, r, "", "v1", "Event");
    add_root::<events::v1::Event>(g, r, "events.k8s.io", "v1", "Event");
    add_root::<apps::v1::Deployment>(g, r, "apps", "v1", "Deployment");
    add_root::<coordination::v1::Lease>(g, r, "coordination.k8s.io", "v1", "Lease");
    let rbac_group = "rbac.authorization.k8s.io";
    add_root::<rbac::v1::Role>(g, r, rbac_group, "v1", "Role");
    add_root::<rbac::v1::RoleBinding>(g, r, rbac_group, "v1", "RoleBinding");
    add_root::<rbac::v1::ClusterRole>(g, r, rbac_group, "v1", "ClusterRole");
    add_root::<rbac::v1::ClusterRoleBinding>(g, r, rbac_group, "v1", "ClusterRoleBinding");
    add_root::<networking::v1::NetworkPolicy>(g, r, "networking.k8s.io", "v1", "NetworkPolicy");
    add_root::<apiextensions::v1::CustomResourceDefinition>(
        g,
        r,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    );
    // Custom resources' documents refer to ObjectMeta even when no built-in is in them.
    g.subschema_for::<ObjectMeta>();

    let mut components: BTreeMap<String, Value> =
        generator.take_definitions(true).into_iter().collect();
    for ((group, version, kind), name) in &roots {
        if let Some(Value::Object(schema)) = components.get_mut(name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "version": version, "kind": kind}]),
            );
        }
    }
    SchemaSet { components, roots }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_builtin_kind_has_a_root_with_its_gvk() {
        let set = SchemaSet::builtin();
        let registry = super::super::resources::Registry::with_built_ins();
        for rt in registry.all() {
            let name = set
                .root(&rt.group, rt.preferred_version(), &rt.kind)
                .unwrap_or_else(|| panic!("no schema for {}/{}", rt.group, rt.kind));
            let gvk = &set.component(name).unwrap()["x-kubernetes-group-version-kind"][0];
            assert_eq!(gvk["kind"], rt.kind.as_str());
            assert_eq!(gvk["group"], rt.group.as_str());
        }
        assert_eq!(
            set.root("", "v1", "ConfigMap"),
            Some("io.k8s.api.core.v1.ConfigMap")
        );
        assert_eq!(
            set.root("events.k8s.io", "v1", "Event"),
            Some("io.k8s.api.events.v1.Event")
        );
    }

    #[test]
    fn refs_resolve_inside_the_set_and_recursion_stays_a_ref() {
        let set = SchemaSet::builtin();
        let cm = set.component("io.k8s.api.core.v1.ConfigMap").unwrap();
        let metadata = set.resolve(&cm["properties"]["metadata"]);
        assert!(metadata["properties"]["labels"].is_object());
        assert_eq!(ref_target(&cm["properties"]["metadata"]), Some(OBJECT_META));
        // Every ref anywhere resolves to a component of the set.
        let mut refs = BTreeSet::new();
        for schema in set.components().values() {
            collect_refs(schema, &mut refs);
        }
        let missing: Vec<_> = refs.iter().filter(|r| set.component(r).is_none()).collect();
        assert!(missing.is_empty(), "unresolvable refs: {missing:?}");
        // JSONSchemaProps refers to itself: kept as a ref.
        let props = set
            .component("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
            .unwrap();
        let mut inner = BTreeSet::new();
        collect_refs(props, &mut inner);
        assert!(
            inner.contains(
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"
            )
        );
    }

    #[test]
    fn closure_carries_what_object_meta_refers_to() {
        let set = SchemaSet::builtin();
        let closure = set.closure([OBJECT_META]);
        assert!(closure.contains_key(OBJECT_META));
        assert!(closure.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"));
        assert!(!closure.contains_key("io.k8s.api.core.v1.ConfigMap"));
    }
}
