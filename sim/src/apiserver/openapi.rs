//! OpenAPI v3: `/openapi/v3` (an index of one document per group-version) and
//! `/openapi/v3/{api/v1 | apis/G/V}`.
//!
//! kubectl needs two things from them. `explain` finds a kind's schema by the
//! `x-kubernetes-group-version-kind` of a component. `apply` (and every write with the default
//! `--validate=strict`) looks for a PATCH operation of the kind whose parameters include
//! `fieldValidation`; finding it, kubectl leaves validation to the server and sends
//! `fieldValidation=Strict`. Without these documents kubectl refuses to apply unless
//! `--validate=false`.
//!
//! `/openapi/v2` is an empty document, see [`V2_PROTOBUF`].
//!
//! Built-in kinds' schemas come from [`SchemaSet::builtin`]; custom resources' from their CRD's
//! `openAPIV3Schema`, with `metadata` a reference to ObjectMeta as the real server does.

use super::builtin_schemas::{OBJECT_META, REF_PREFIX, SchemaSet};
use super::resources::{Registry, ResourceType};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The Content-Type of `/openapi/v2` (gnostic's protobuf `openapi_v2.Document`), spelled as the
/// real server answers it: clients ask for `…spec.v2@v1.0+protobuf`, but Go's mime parser rejects
/// the `@` in a response.
///
/// `/openapi/v2` is served as an empty document: zero bytes are a valid protobuf message with no
/// definitions. kubectl 1.27 fetches v2 before every strict-validated write and gives up on a
/// 404 (later versions tolerate it); with an empty v2 document it goes on to the v3 documents,
/// finds `fieldValidation` there and leaves validation to the server. No kind is described in
/// v2, so nothing is validated client-side against it.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `api/v1` or `apis/{group}/{version}`: how the index and the document URLs name a GV.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Every served (group, version).
fn group_versions(registry: &Registry) -> BTreeSet<(String, String)> {
    registry
        .all()
        .flat_map(|rt| rt.versions.iter().map(|v| (rt.group.clone(), v.clone())))
        .collect()
}

/// The `/openapi/v3` index. Each URL carries a hash of its document so clients that cache by URL
/// (kubectl with `--cache-dir`) fetch again when a CRD changes.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions(registry) {
        let path = gv_path(&group, &version);
        let doc = document_for(registry, &group, &version);
        let hash = fnv1a(&serde_json::to_vec(&doc).expect("JSON values always serialize"));
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

/// The document at `/openapi/v3/{path}`, or `None` when no such group-version is served.
pub fn document(registry: &Registry, path: &str) -> Option<Value> {
    let path = path.trim_matches('/');
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", version] => (String::new(), version.to_string()),
        ["apis", group, version] => (group.to_string(), version.to_string()),
        _ => return None,
    };
    group_versions(registry)
        .contains(&(group.clone(), version.clone()))
        .then(|| document_for(registry, &group, &version))
}

fn document_for(registry: &Registry, group: &str, version: &str) -> Value {
    let builtin = SchemaSet::builtin();
    let mut types: Vec<&std::sync::Arc<ResourceType>> = registry
        .all()
        .filter(|rt| rt.group == group && rt.serves(version))
        .collect();
    types.sort_by(|a, b| a.plural.cmp(&b.plural));
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    let mut builtin_roots: Vec<&str> = vec![OBJECT_META];
    let mut paths = Map::new();
    for rt in types {
        let component = if let Some(crd) = &rt.crd {
            let name = crd_component_name(group, version, &rt.kind);
            schemas.insert(name.clone(), crd_schema(crd, group, version, &rt.kind));
            name
        } else if let Some(name) = builtin.root(group, version, &rt.kind) {
            builtin_roots.push(name);
            name.to_string()
        } else {
            // Every built-in served has a schema (a builtin_schemas test checks it); this keeps a
            // future kind without one documented rather than missing from the paths.
            let name = format!("{}.{}", gv_path(group, version).replace('/', "."), rt.kind);
            schemas.insert(
                name.clone(),
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": rt.kind}]}),
            );
            name
        };
        add_paths(&mut paths, rt, version, &component);
    }
    schemas.extend(builtin.closure(builtin_roots));
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// The real server's name for a custom kind's component: the group reversed, then version and
/// kind (`infrastructure.cluster.x-k8s.io`, `v1beta1`, `PhysicalHost` →
/// `io.x-k8s.cluster.infrastructure.v1beta1.PhysicalHost`).
pub fn crd_component_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// A custom kind's schema: the CRD version's `openAPIV3Schema` with `apiVersion`, `kind` and
/// `metadata` as every object has them.
fn crd_schema(crd: &Value, group: &str, version: &str, kind: &str) -> Value {
    let declared = super::resources::crd_version(crd, version)
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
        .cloned();
    let mut schema = match declared {
        Some(Value::Object(map)) => map,
        _ => {
            let mut map = Map::new();
            map.insert("type".into(), json!("object"));
            map.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            map
        }
    };
    let properties = schema.entry("properties").or_insert_with(|| json!({}));
    if let Value::Object(properties) = properties {
        properties.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}));
        properties.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}));
        properties.insert(
            "metadata".into(),
            json!({
                "allOf": [{"$ref": format!("{REF_PREFIX}{OBJECT_META}")}],
                "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            }),
        );
    }
    schema.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{"group": group, "version": version, "kind": kind}]),
    );
    Value::Object(schema)
}

fn query_parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

/// The write parameters kubectl checks for; `fieldValidation` on PATCH is the one that makes it
/// trust server-side validation.
fn write_parameters(patch: bool) -> Vec<Value> {
    let mut params = vec![
        query_parameter(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
        ),
        query_parameter(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query_parameter(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
    ];
    if patch {
        params.push(json!({"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests.", "schema": {"type": "boolean", "uniqueItems": true}}));
    }
    params
}

fn add_paths(paths: &mut Map<String, Value>, rt: &ResourceType, version: &str, component: &str) {
    let base = format!("/{}", gv_path(&rt.group, version));
    let collection = if rt.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", rt.plural)
    } else {
        format!("{base}/{}", rt.plural)
    };
    let gvk = json!({"group": rt.group, "version": version, "kind": rt.kind});
    let object = json!({"$ref": format!("{REF_PREFIX}{component}")});
    // kubectl's client-side apply computes a strategic merge patch only for kinds whose PATCH
    // request body lists that content type (never custom resources), a JSON merge patch otherwise.
    let mut patch_types = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if !rt.custom {
        patch_types.push("application/strategic-merge-patch+json");
    }
    let op = |action: &str, params: Vec<Value>| {
        let mut op = json!({
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": params,
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": object}}}},
        });
        let body_types: &[&str] = match action {
            "post" | "put" => &["application/json", "application/yaml"],
            "patch" => &patch_types,
            _ => &[],
        };
        if !body_types.is_empty() {
            let content: Map<String, Value> = body_types
                .iter()
                .map(|t| (t.to_string(), json!({"schema": object})))
                .collect();
            op["requestBody"] = json!({"content": content, "required": true});
        }
        op
    };
    let path_params = |named: bool| {
        let mut params = Vec::new();
        if named {
            params.push(json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        if rt.namespaced {
            params.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        Value::Array(params)
    };
    paths.insert(
        collection.clone(),
        json!({
            "get": op("list", vec![]),
            "post": op("post", write_parameters(false)),
            "parameters": path_params(false),
        }),
    );
    let item = |suffix: &str| {
        json!({
            "get": op("get", vec![]),
            "put": op("put", write_parameters(false)),
            "patch": op("patch", write_parameters(true)),
            "parameters": path_params(true),
        })
        .as_object()
        .cloned()
        .map(|mut m| {
            if suffix.is_empty() {
                m.insert("delete".into(), op("delete", vec![]));
            }
            Value::Object(m)
        })
        .expect("an object literal")
    };
    paths.insert(format!("{collection}/{{name}}"), item(""));
    if rt.status_subresource {
        paths.insert(format!("{collection}/{{name}}/status"), item("status"));
    }
}

/// 64-bit FNV-1a: a stable content hash for the index URLs (not security relevant).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::resource_type_from_crd;

    fn registry_with_widgets() -> Registry {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "description": "What the widget should be.",
                                 "properties": {"size": {"type": "integer"}}}}}}}]}
        });
        let mut registry = Registry::with_built_ins();
        registry.insert(resource_type_from_crd(&crd).unwrap());
        registry
    }

    #[test]
    fn index_lists_every_group_version_with_a_content_hash() {
        let registry = registry_with_widgets();
        let index = index(&registry);
        let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/example.com/v1?hash="));
        assert!(index["paths"]["api/v1"].is_object());
        assert!(document(&registry, "apis/nope.io/v1").is_none());
    }

    #[test]
    fn crd_document_has_the_kind_its_metadata_ref_and_a_validating_patch() {
        let doc = document(&registry_with_widgets(), "apis/example.com/v1").unwrap();
        let schemas = &doc["components"]["schemas"];
        let widget = &schemas["com.example.v1.Widget"];
        assert_eq!(
            widget["x-kubernetes-group-version-kind"][0]["kind"],
            "Widget"
        );
        assert_eq!(
            widget["properties"]["spec"]["description"],
            "What the widget should be."
        );
        let meta_ref = widget["properties"]["metadata"]["allOf"][0]["$ref"]
            .as_str()
            .unwrap();
        let meta = meta_ref.strip_prefix(REF_PREFIX).unwrap();
        assert!(schemas[meta]["properties"]["ownerReferences"].is_object());
        let patch =
            &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Widget");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        // Custom resources take no strategic merge patch, so kubectl must not send one.
        let content = patch["requestBody"]["content"].as_object().unwrap();
        assert!(content.contains_key("application/merge-patch+json"));
        assert!(!content.contains_key("application/strategic-merge-patch+json"));
    }

    #[test]
    fn core_document_carries_builtin_schemas_and_their_references() {
        let doc = document(&Registry::with_built_ins(), "api/v1").unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(schemas.contains_key("io.k8s.api.core.v1.ConfigMap"));
        assert!(schemas.contains_key("io.k8s.api.core.v1.ServicePort"));
        assert!(doc["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
    }

    #[test]
    fn component_names_reverse_the_group() {
        assert_eq!(
            crd_component_name("infrastructure.cluster.x-k8s.io", "v1beta1", "PhysicalHost"),
            "io.x-k8s.cluster.infrastructure.v1beta1.PhysicalHost"
        );
    }
}
