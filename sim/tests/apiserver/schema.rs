//! CRD schemas enforced like the real apiserver: structural-schema and CEL checks on CRDs;
//! pruning, defaulting, OpenAPI validation and strict field validation on custom resources.

use crate::support::*;
use beskar7_sim::apiserver::ApiServer;
use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams, WatchParams};
use kube::core::{GroupVersionKind, WatchEvent};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn gadget_crd(spec_schema: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.schema.example.com"},
        "spec": {"group": "schema.example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": spec_schema,
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string", "enum": ["Pending", "Ready"]}}}}}}}]}
    })
}

/// The schema most tests use: one property per keyword, defaults, preserved and embedded parts.
fn gadget_spec() -> Value {
    json!({"type": "object", "required": ["size"],
    "x-kubernetes-validations": [
        {"rule": "!(has(self.insecure) && self.insecure && has(self.caSecret))",
         "message": "insecure and caSecret are mutually exclusive"},
        {"rule": "!has(oldSelf.owner) || !has(self.owner) || self.owner == oldSelf.owner",
         "message": "owner cannot be changed, only set or cleared", "reason": "FieldValueForbidden"}
    ],
    "properties": {
        "size": {"type": "integer", "minimum": 1, "maximum": 10},
        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
        // An object default: it must survive the CRD's own (built-in) pruning to apply.
        "limits": {"type": "object", "default": {"cpu": "1"},
            "properties": {"cpu": {"type": "string", "maxLength": 8}}},
        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
        "since": {"type": "string", "format": "date-time"},
        "ratio": {"type": "number"},
        "port": {"x-kubernetes-int-or-string": true},
        "insecure": {"type": "boolean"},
        "caSecret": {"type": "string", "maxLength": 253},
        "owner": {"type": "string", "maxLength": 253},
        "tags": {"type": "array", "maxItems": 3, "x-kubernetes-list-type": "set",
            "items": {"type": "string", "maxLength": 16}},
        "ports": {"type": "array", "maxItems": 8, "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "maxLength": 16},
                "protocol": {"type": "string", "default": "TCP", "maxLength": 3}}}},
        "labels": {"type": "object", "maxProperties": 2,
            "additionalProperties": {"type": "string", "minLength": 1}},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true}
    }})
}

async fn gadgets() -> (Arc<ApiServer>, Client, Api<DynamicObject>) {
    let (server, client) = server();
    server
        .create_crd(gadget_crd(gadget_spec()))
        .expect("gadget CRD");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("schema.example.com", "v1", "Gadget"),
        "gadgets",
    );
    let api = Api::namespaced_with(client.clone(), "default", &ar);
    (server, client, api)
}

fn gadget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "schema.example.com/v1", "kind": "Gadget",
        "metadata": {"name": name}, "spec": spec}))
    .expect("a DynamicObject")
}

/// `field: message` of each cause of a 422.
fn causes(status: &kube::core::Status) -> Vec<String> {
    assert_eq!(
        (status.code, status.reason.as_str()),
        (422, "Invalid"),
        "{status:?}"
    );
    status
        .details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect()
        })
        .unwrap_or_default()
}

/// A request to the in-process router, returning status, `Warning` headers and body.
async fn send(
    server: &Arc<ApiServer>,
    method: &str,
    uri: &str,
    content_type: &str,
    body: &str,
) -> (u16, Vec<String>, Value) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(axum::body::Body::from(body.to_string()))
        .expect("request");
    let response = server.router().oneshot(request).await.expect("infallible");
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        code,
        warnings,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const GADGETS: &str = "/apis/schema.example.com/v1/namespaces/default/gadgets";

#[tokio::test]
async fn every_crd_we_ship_or_install_is_accepted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fixtures = root.join("../shared/fixtures");
    let server = ApiServer::in_memory();
    let mut loaded = 0;
    for dir in [
        root.join("crds"),
        fixtures.join("capi-crds"),
        fixtures.join("cert-manager-crds"),
    ] {
        loaded += server
            .load_crds(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    assert_eq!(loaded, 4 + 8 + 3);
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_preserved_ones_kept() {
    let (_server, _client, api) = gadgets().await;
    let created = api
        .create(
            &PostParams::default(),
            &gadget("g", json!({"size": 1, "bogus": true, "ports": [{"name": "a", "x": 1}],
                "extra": {"anything": {"goes": [1, 2]}},
                "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t", "junk": 1}, "data": {"k": "v"}}})),
        )
        .await
        .unwrap();
    let stored = api.get("g").await.unwrap();
    for obj in [&created, &stored] {
        let spec = &obj.data["spec"];
        assert!(spec.get("bogus").is_none(), "{spec}");
        assert_eq!(spec["ports"], json!([{"name": "a", "protocol": "TCP"}]));
        assert_eq!(spec["extra"], json!({"anything": {"goes": [1, 2]}}));
        // An embedded resource keeps what its schema preserves, and ObjectMeta's fields only.
        assert_eq!(
            spec["template"],
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "data": {"k": "v"}})
        );
    }
}

#[tokio::test]
async fn defaults_appear_in_the_response_and_in_storage() {
    let (_server, _client, api) = gadgets().await;
    let created = api
        .create(
            &PostParams::default(),
            &gadget("g", json!({"size": 2, "ports": [{"name": "http"}]})),
        )
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["color"], "red");
    assert_eq!(created.data["spec"]["limits"], json!({"cpu": "1"}));
    assert_eq!(created.data["spec"]["ports"][0]["protocol"], "TCP");
    let stored = api.get("g").await.unwrap();
    assert_eq!(stored.data["spec"], created.data["spec"]);
    // A later patch that removes a defaulted field gets the default back.
    let patched = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": null}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["color"], "red");
}

#[tokio::test]
async fn each_keyword_rejects_with_the_real_servers_cause() {
    let (_server, _client, api) = gadgets().await;
    let bad = json!({"size": 0, "color": "green", "name": "Too-Long-Name", "since": "yesterday",
        "ratio": "half", "port": true, "tags": ["a", "a"],
        "ports": [{"name": "a"}, {"name": "a"}, {"protocol": "UDP"}],
        "labels": {"a": "", "b": "x", "c": "y"}});
    let err = api_error(api.create(&PostParams::default(), &gadget("g", bad)).await);
    assert_eq!(
        causes(&err),
        vec![
            "spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\"",
            "spec.labels: Too many: 3: must have at most 2 items",
            "spec.labels.a: Invalid value: \"\": spec.labels.a in body should be at least 1 chars long",
            "spec.name: Too long: may not be more than 8 bytes",
            "spec.name: Invalid value: \"Too-Long-Name\": spec.name in body should match '^[a-z]+$'",
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
            "spec.ports[1]: Duplicate value: map[string]interface {}{\"name\":\"a\"}",
            "spec.ports[2].name: Required value",
            "spec.ratio: Invalid value: \"string\": spec.ratio in body must be of type number: \"string\"",
            "spec.since: Invalid value: \"yesterday\": spec.since in body must be of type date-time: \"yesterday\"",
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
            "spec.tags[1]: Duplicate value: \"a\"",
        ]
    );
    assert!(
        err.message
            .starts_with("Gadget.schema.example.com \"g\" is invalid: ["),
        "{}",
        err.message
    );
    let err = api_error(
        api.create(
            &PostParams::default(),
            &gadget("g", json!({"size": 11, "color": "blue"})),
        )
        .await,
    );
    assert_eq!(
        causes(&err),
        vec!["spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"]
    );
    let err = api_error(
        api.create(
            &PostParams::default(),
            &gadget("g", json!({"color": "blue"})),
        )
        .await,
    );
    assert_eq!(causes(&err), vec!["spec.size: Required value"]);
    let err = api_error(
        api.create(&PostParams::default(), &gadget("g", json!({"size": 1.5})))
            .await,
    );
    assert_eq!(
        causes(&err),
        vec![
            "spec.size: Invalid value: \"number\": spec.size in body must be of type integer: \"number\""
        ]
    );
    // int-or-string takes both forms; an embedded resource must say what it is.
    api.create(
        &PostParams::default(),
        &gadget("ok-int", json!({"size": 1, "port": 8080})),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &gadget("ok-str", json!({"size": 1, "port": "http"})),
    )
    .await
    .unwrap();
    let err = api_error(
        api.create(
            &PostParams::default(),
            &gadget("g", json!({"size": 1, "template": {"data": {}}})),
        )
        .await,
    );
    assert_eq!(
        causes(&err),
        vec![
            "spec.template.apiVersion: Required value: must not be empty",
            "spec.template.kind: Required value: must not be empty",
        ]
    );
}

#[tokio::test]
async fn cel_rules_reject_with_their_message_and_transition_rules_run_only_on_update() {
    let (_server, _client, api) = gadgets().await;
    let err = api_error(
        api.create(
            &PostParams::default(),
            &gadget("g", json!({"size": 1, "insecure": true, "caSecret": "ca"})),
        )
        .await,
    );
    assert_eq!(
        causes(&err),
        vec!["spec: Invalid value: \"object\": insecure and caSecret are mutually exclusive"]
    );
    // No old object on create: the transition rule does not run.
    api.create(
        &PostParams::default(),
        &gadget("g", json!({"size": 1, "owner": "a"})),
    )
    .await
    .unwrap();
    let change = Patch::Merge(json!({"spec": {"owner": "b"}}));
    let err = api_error(api.patch("g", &PatchParams::default(), &change).await);
    assert_eq!(
        causes(&err),
        vec!["spec: Forbidden: owner cannot be changed, only set or cleared"]
    );
    // Clearing and setting again are allowed.
    api.patch(
        "g",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"owner": null}})),
    )
    .await
    .unwrap();
    api.patch("g", &PatchParams::default(), &change)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_write_changes_nothing_and_emits_no_event() {
    let (_server, _client, api) = gadgets().await;
    let created = api
        .create(&PostParams::default(), &gadget("g", json!({"size": 1})))
        .await
        .unwrap();
    let before = rv(&created.metadata);
    let watch = api
        .watch(&WatchParams::default().timeout(1), &before.to_string())
        .await
        .unwrap();
    let err = api_error(
        api.patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 0, "name": "ok"}})),
        )
        .await,
    );
    assert_eq!(err.code, 422);
    let mut replaced = created.clone();
    replaced.data["spec"]["size"] = json!(99);
    assert_eq!(
        api_error(api.replace("g", &PostParams::default(), &replaced).await).code,
        422
    );
    let status = Patch::Merge(json!({"status": {"phase": "Unknown"}}));
    assert_eq!(
        api_error(
            api.patch_status("g", &PatchParams::default(), &status)
                .await
        )
        .code,
        422
    );
    let after = api.get("g").await.unwrap();
    assert_eq!((rv(&after.metadata), &after.data), (before, &created.data));
    let events: Vec<WatchEvent<DynamicObject>> =
        within("watch ends", watch.try_collect()).await.unwrap();
    assert!(
        events.iter().all(|e| matches!(e, WatchEvent::Bookmark(_))),
        "no change events: {events:?}"
    );
}

#[tokio::test]
async fn status_writes_validate_the_status_and_ignore_spec() {
    let (_server, _client, api) = gadgets().await;
    api.create(&PostParams::default(), &gadget("g", json!({"size": 1})))
        .await
        .unwrap();
    let err = api_error(
        api.patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Lost"}})),
        )
        .await,
    );
    assert_eq!(
        causes(&err),
        vec!["status.phase: Unsupported value: \"Lost\": supported values: \"Pending\", \"Ready\""]
    );
    let written = api
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 0}, "status": {"phase": "Ready", "junk": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(written.data["status"], json!({"phase": "Ready"}));
    assert_eq!(written.data["spec"]["size"], 1);
}

#[tokio::test]
async fn field_validation_strict_warn_and_ignore() {
    let (server, _client, _api) = gadgets().await;
    let body = |name: &str| {
        json!({"apiVersion": "schema.example.com/v1", "kind": "Gadget", "metadata": {"name": name},
            "spec": {"size": 1, "foo": 1, "ports": [{"name": "a", "bar": 2}]}})
        .to_string()
    };
    let (code, _, status) = send(
        &server,
        "POST",
        &format!("{GADGETS}?fieldValidation=Strict"),
        "application/json",
        &body("s"),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        status["message"],
        "Gadget in version \"v1\" cannot be handled as a Gadget: strict decoding error: unknown field \"spec.foo\", unknown field \"spec.ports[0].bar\""
    );
    let (code, warnings, created) =
        send(&server, "POST", GADGETS, "application/json", &body("w")).await;
    assert_eq!(code, 201);
    assert_eq!(
        warnings,
        vec![
            "299 - \"unknown field \\\"spec.foo\\\"\"",
            "299 - \"unknown field \\\"spec.ports[0].bar\\\"\"",
        ]
    );
    assert!(created["spec"].get("foo").is_none());
    let (code, warnings, created) = send(
        &server,
        "POST",
        &format!("{GADGETS}?fieldValidation=Ignore"),
        "application/json",
        &body("i"),
    )
    .await;
    assert_eq!((code, warnings.len()), (201, 0));
    assert_eq!(
        created["spec"]["ports"],
        json!([{"name": "a", "protocol": "TCP"}])
    );
    // Unknown fields a patch brings are judged the same way.
    let (code, _, _) = send(
        &server,
        "PATCH",
        &format!("{GADGETS}/w?fieldValidation=Strict"),
        "application/merge-patch+json",
        r#"{"spec": {"baz": 1}}"#,
    )
    .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn duplicate_fields_are_refused_under_strict_and_warned_about_otherwise() {
    let (server, _client, _api) = gadgets().await;
    let body = |name: &str| {
        format!(
            r#"{{"apiVersion": "schema.example.com/v1", "kind": "Gadget", "metadata": {{"name": "{name}"}}, "spec": {{"size": 1, "size": 2}}}}"#
        )
    };
    let (code, _, status) = send(
        &server,
        "POST",
        &format!("{GADGETS}?fieldValidation=Strict"),
        "application/json",
        &body("s"),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .ends_with("strict decoding error: duplicate field \"spec.size\""),
        "{status}"
    );
    let (code, warnings, created) =
        send(&server, "POST", GADGETS, "application/json", &body("w")).await;
    assert_eq!((code, created["spec"]["size"].as_i64()), (201, Some(2)));
    assert_eq!(
        warnings,
        vec!["299 - \"duplicate field \\\"spec.size\\\"\""]
    );
}

#[tokio::test]
async fn non_structural_crds_are_refused() {
    let (server, _client) = server();
    let crd = gadget_crd(json!({"properties": {"list": {"type": "array"}},
        "additionalProperties": {"type": "string"}}));
    let err = server.create_crd(crd).unwrap_err();
    assert_eq!(err.code, 422);
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let at = "spec.versions[0].schema.openAPIV3Schema.properties[spec]";
    assert_eq!(
        fields,
        vec![
            format!("{at}.properties[list].items: Required value: must be specified"),
            format!(
                "{at}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
            ),
            format!("{at}.type: Required value: must not be empty for specified object fields"),
        ]
    );
    // A version without a schema is refused as on a v1 server.
    let mut schemaless = gadget_crd(json!({"type": "object"}));
    schemaless["spec"]["versions"][0]
        .as_object_mut()
        .unwrap()
        .remove("schema");
    let err = server.create_crd(schemaless).unwrap_err();
    assert_eq!(
        err.details.unwrap().causes[0].message,
        "Required value: schemas are required"
    );
}

#[tokio::test]
async fn crds_with_rules_too_costly_or_not_compiling_are_refused() {
    let (server, _client) = server();
    let unbounded = json!({"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.a.contains(self.b)"}]});
    let err = server
        .create_crd(gadget_crd(unbounded.clone()))
        .unwrap_err();
    let first = &err.details.as_ref().unwrap().causes[0];
    assert_eq!(
        first.field,
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    );
    assert!(
        first.message.starts_with("Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule(s), or adding maxItems, maxProperties, and maxLength"),
        "{}",
        first.message
    );
    // Bounded by maxLength, the same rule is accepted.
    let mut bounded = unbounded;
    bounded["properties"]["a"]["maxLength"] = json!(64);
    bounded["properties"]["b"]["maxLength"] = json!(64);
    server.create_crd(gadget_crd(bounded)).unwrap();
    let (server, _client) = crate::support::server();
    let broken = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a >"}]});
    let err = server.create_crd(gadget_crd(broken)).unwrap_err();
    assert!(
        err.message.contains("compilation failed"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn multi_version_crds_validate_against_the_addressed_version() {
    let (server, client) = server();
    let mut crd = gadget_crd(
        json!({"type": "object", "properties": {"size": {"type": "integer", "maximum": 5}}}),
    );
    let mut v2 = crd["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"]["maximum"] =
        json!(50);
    crd["spec"]["versions"].as_array_mut().unwrap().push(v2);
    server.create_crd(crd).unwrap();
    let api_at = |version: &str| {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("schema.example.com", version, "Gadget"),
            "gadgets",
        );
        Api::<DynamicObject>::namespaced_with(client.clone(), "default", &ar)
    };
    let mut obj = gadget("g", json!({"size": 20}));
    let err = api_error(api_at("v1").create(&PostParams::default(), &obj).await);
    assert_eq!(
        causes(&err),
        vec!["spec.size: Invalid value: 20: spec.size in body should be less than or equal to 5"]
    );
    obj.types.as_mut().unwrap().api_version = "schema.example.com/v2".into();
    api_at("v2")
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
}

fn physical_host_api(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("infrastructure.cluster.x-k8s.io", "v1beta1", "PhysicalHost"),
        "physicalhosts",
    );
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn repo_crds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds")
}

#[tokio::test]
async fn our_crds_rules_hold_mutual_exclusion_and_claims() {
    let (server, client) = server();
    server.load_crds(&repo_crds()).unwrap();
    let hosts = physical_host_api(&client);
    let host = |spec: Value| -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "PhysicalHost", "metadata": {"name": "h1"}, "spec": spec}),
        )
        .unwrap()
    };
    let redfish = |extra: Value| {
        let mut r = json!({"address": "https://10.0.0.1", "credentialsSecretRef": "bmc"});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        r
    };
    let both = host(
        json!({"redfishConnection": redfish(json!({"insecureSkipVerify": true,
        "caBundleSecretRef": {"name": "ca"}}))}),
    );
    let err = api_error(hosts.create(&PostParams::default(), &both).await);
    let found = causes(&err);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("spec.redfishConnection: Invalid value: \"object\": insecureSkipVerify and caBundleSecretRef are mutually exclusive"),
        "{found:?}"
    );
    let created = hosts
        .create(
            &PostParams::default(),
            &host(json!({"redfishConnection": redfish(json!({}))})),
        )
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"]["automatedCleaningMode"], "metadata",
        "defaulted"
    );
    // consumerRef: set, cleared, set again, but never changed from one consumer to another.
    let claim = |name: &str| {
        Patch::Merge(
            json!({"spec": {"consumerRef": {"apiGroup": "infrastructure.cluster.x-k8s.io",
            "kind": "Beskar7Machine", "name": name}}}),
        )
    };
    let pp = PatchParams::default();
    hosts.patch("h1", &pp, &claim("m1")).await.unwrap();
    let err = api_error(hosts.patch("h1", &pp, &claim("m2")).await);
    assert_eq!(
        causes(&err),
        vec![
            "spec.consumerRef: Invalid value: \"object\": consumerRef cannot be changed from one consumer to another: release the host first (remove consumerRef), then claim it again"
        ]
    );
    hosts
        .patch(
            "h1",
            &pp,
            &Patch::Merge(json!({"spec": {"consumerRef": null}})),
        )
        .await
        .unwrap();
    hosts.patch("h1", &pp, &claim("m2")).await.unwrap();
    // A rule with a pattern: the MAC address.
    let err = api_error(
        hosts
            .patch(
                "h1",
                &pp,
                &Patch::Merge(json!({"spec": {"bootMACAddress": "nope"}})),
            )
            .await,
    );
    assert!(
        causes(&err)[0]
            .starts_with("spec.bootMACAddress: Invalid value: \"string\": must be a MAC address")
    );
}

#[tokio::test]
async fn provider_id_is_immutable_once_set() {
    let (server, client) = server();
    server.load_crds(&repo_crds()).unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            "infrastructure.cluster.x-k8s.io",
            "v1beta1",
            "Beskar7Machine",
        ),
        "beskar7machines",
    );
    let machines: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let machine: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "Beskar7Machine",
        "metadata": {"name": "m1"},
        "spec": {"inspectionImageURL": "http://boot/agent/", "targetImageURL": "http://boot/os.raw"}}))
    .unwrap();
    machines
        .create(&PostParams::default(), &machine)
        .await
        .unwrap();
    let pp = PatchParams::default();
    let set = |id: &str| Patch::Merge(json!({"spec": {"providerID": id}}));
    machines
        .patch("m1", &pp, &set("b7://default/h1/m1"))
        .await
        .unwrap();
    let err = api_error(machines.patch("m1", &pp, &set("b7://default/h2/m1")).await);
    assert_eq!(
        causes(&err),
        vec![
            "spec: Invalid value: \"object\": providerID is immutable once set: it identifies the Node, so it cannot be changed or removed"
        ]
    );
    let err = api_error(machines.patch("m1", &pp, &set("not-a-provider-id")).await);
    assert_eq!(causes(&err).len(), 2, "pattern rule and immutability");
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(path)
}

#[tokio::test]
async fn capi_machine_and_cluster_and_a_certificate_validate_and_store() {
    let (server, client) = server();
    server.load_crds(&fixture("capi-crds")).unwrap();
    server.load_crds(&fixture("cert-manager-crds")).unwrap();
    let apply = |group: &str, version: &str, kind: &str, plural: &str| {
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        Api::<DynamicObject>::namespaced_with(client.clone(), "default", &ar)
    };
    let yaml = |text: &str| -> DynamicObject { serde_saphyr::from_str(text).expect("YAML") };
    let clusters = apply("cluster.x-k8s.io", "v1beta2", "Cluster", "clusters");
    clusters
        .create(&PostParams::default(), &yaml(r#"
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata: {name: demo}
spec:
  clusterNetwork:
    pods: {cidrBlocks: ["192.168.0.0/16"]}
    services: {cidrBlocks: ["10.128.0.0/12"]}
  controlPlaneRef: {apiGroup: controlplane.cluster.x-k8s.io, kind: KubeadmControlPlane, name: demo-cp}
  infrastructureRef: {apiGroup: infrastructure.cluster.x-k8s.io, kind: Beskar7Cluster, name: demo}
"#))
        .await
        .unwrap();
    let machines = apply("cluster.x-k8s.io", "v1beta2", "Machine", "machines");
    let machine = r#"
apiVersion: cluster.x-k8s.io/v1beta2
kind: Machine
metadata: {name: demo-m1, labels: {cluster.x-k8s.io/cluster-name: demo}}
spec:
  clusterName: demo
  version: v1.33.1
  bootstrap:
    configRef: {apiGroup: bootstrap.cluster.x-k8s.io, kind: KubeadmConfig, name: demo-m1}
  infrastructureRef: {apiGroup: infrastructure.cluster.x-k8s.io, kind: Beskar7Machine, name: demo-m1}
"#;
    let created = machines
        .create(&PostParams::default(), &yaml(machine))
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["clusterName"], "demo");
    let mut invalid = yaml(machine);
    invalid.metadata.name = Some("demo-m2".into());
    invalid.data["spec"]
        .as_object_mut()
        .unwrap()
        .remove("clusterName");
    let err = api_error(machines.create(&PostParams::default(), &invalid).await);
    assert!(
        causes(&err).contains(&"spec.clusterName: Required value".to_string()),
        "{err:?}"
    );

    let control_planes = apply(
        "controlplane.cluster.x-k8s.io",
        "v1beta2",
        "KubeadmControlPlane",
        "kubeadmcontrolplanes",
    );
    let control_plane = r#"
apiVersion: controlplane.cluster.x-k8s.io/v1beta2
kind: KubeadmControlPlane
metadata: {name: demo-cp}
spec:
  replicas: 1
  version: v1.33.1
  machineTemplate:
    spec:
      infrastructureRef: {apiGroup: infrastructure.cluster.x-k8s.io, kind: Beskar7MachineTemplate, name: demo-cp}
  kubeadmConfigSpec:
    clusterConfiguration:
      apiServer:
        extraArgs:
        - {name: audit-log-maxage, value: "30"}
        - {name: audit-log-path, value: /var/log/audit.log}
"#;
    control_planes
        .create(&PostParams::default(), &yaml(control_plane))
        .await
        .unwrap();
    // CAPI's own rule: an argument name appears once.
    let mut twice = yaml(control_plane);
    twice.metadata.name = Some("twice".into());
    twice.data["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]["extraArgs"][1]
        ["name"] = json!("audit-log-maxage");
    let err = api_error(control_planes.create(&PostParams::default(), &twice).await);
    assert_eq!(
        causes(&err),
        vec![
            "spec.kubeadmConfigSpec.clusterConfiguration.apiServer.extraArgs: Invalid value: \"array\": extraArgs name must be unique"
        ]
    );

    let certificates = apply("cert-manager.io", "v1", "Certificate", "certificates");
    let certificate = r#"
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: inspector}
spec:
  secretName: inspector-tls
  duration: 2160h
  dnsNames: [inspector.beskar7-system.svc]
  issuerRef: {name: selfsigned, kind: Issuer}
  privateKey: {algorithm: ECDSA, size: 256}
"#;
    certificates
        .create(&PostParams::default(), &yaml(certificate))
        .await
        .unwrap();
    let mut invalid = yaml(certificate);
    invalid.metadata.name = Some("bad".into());
    invalid.data["spec"]["privateKey"]["algorithm"] = json!("DSA");
    let err = api_error(certificates.create(&PostParams::default(), &invalid).await);
    assert!(
        causes(&err)[0].starts_with("spec.privateKey.algorithm: Unsupported value: \"DSA\""),
        "{err:?}"
    );
}

#[tokio::test]
async fn watch_sees_the_pruned_and_defaulted_object() {
    let (_server, _client, api) = gadgets().await;
    let mut events = api
        .watch(&WatchParams::default().timeout(2), "0")
        .await
        .unwrap()
        .boxed();
    api.create(
        &PostParams::default(),
        &gadget("g", json!({"size": 1, "junk": 1})),
    )
    .await
    .unwrap();
    let added = within("ADDED", async {
        loop {
            if let Some(Ok(WatchEvent::Added(obj))) = events.next().await {
                return obj;
            }
        }
    })
    .await;
    assert_eq!(
        added.data["spec"],
        json!({"size": 1, "color": "red", "limits": {"cpu": "1"}})
    );
}

#[tokio::test]
async fn built_in_kinds_get_strict_field_validation() {
    let (server, client) = server();
    let deployment = |name: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicass": 2, "selector": {"matchLabels": {"app": "a"}},
                "template": {"metadata": {"labels": {"app": "a"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx", "imagee": "typo"}]}}}})
        .to_string()
    };
    let uri = "/apis/apps/v1/namespaces/default/deployments";
    let (code, _, status) = send(
        &server,
        "POST",
        &format!("{uri}?fieldValidation=Strict"),
        "application/json",
        &deployment("strict"),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replicass\", unknown field \"spec.template.spec.containers[0].imagee\""
    );
    let (code, warnings, created) = send(
        &server,
        "POST",
        uri,
        "application/json",
        &deployment("warn"),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(created["spec"].get("replicass").is_none());
    assert_eq!(
        created["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    // Free-form fields of the Go types keep what they hold, and typed clients see no warning.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::default_namespaced(client);
    let cm =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "v"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let (code, _, _) = send(
        &server,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c?fieldValidation=Strict",
        "application/merge-patch+json",
        r#"{"dataa": {"k": "v"}}"#,
    )
    .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn a_tightened_schema_ratchets_values_left_alone() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let (_server, client, api) = gadgets().await;
    api.create(
        &PostParams::default(),
        &gadget("g", json!({"size": 8, "name": "abc"})),
    )
    .await
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let mut crd =
        serde_json::to_value(crds.get("gadgets.schema.example.com").await.unwrap()).unwrap();
    let spec = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties";
    crd.pointer_mut(spec).unwrap()["size"]["maximum"] = json!(5);
    crds.replace(
        "gadgets.schema.example.com",
        &PostParams::default(),
        &serde_json::from_value(crd).unwrap(),
    )
    .await
    .unwrap();
    // Writes that leave the now-invalid size alone pass (1.33's validation ratcheting)...
    let pp = PatchParams::default();
    api.patch("g", &pp, &Patch::Merge(json!({"spec": {"name": "def"}})))
        .await
        .unwrap();
    // ...a write that changes it must satisfy the new schema.
    let err = api_error(
        api.patch("g", &pp, &Patch::Merge(json!({"spec": {"size": 7}})))
            .await,
    );
    assert_eq!(
        causes(&err),
        vec!["spec.size: Invalid value: 7: spec.size in body should be less than or equal to 5"]
    );
}

#[tokio::test]
async fn status_writes_report_unknown_fields_anywhere_in_the_body() {
    let (server, _client, api) = gadgets().await;
    api.create(&PostParams::default(), &gadget("g", json!({"size": 1})))
        .await
        .unwrap();
    let body = r#"{"spec": {"bogus": 1}, "status": {"phase": "Ready", "junk": 2}}"#;
    let uri = format!("{GADGETS}/g/status");
    let (code, _, status) = send(
        &server,
        "PATCH",
        &format!("{uri}?fieldValidation=Strict"),
        "application/merge-patch+json",
        body,
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .ends_with("unknown field \"spec.bogus\", unknown field \"status.junk\""),
        "{status}"
    );
    let (code, warnings, written) =
        send(&server, "PATCH", &uri, "application/merge-patch+json", body).await;
    assert_eq!(code, 200);
    assert_eq!(
        warnings,
        vec![
            "299 - \"unknown field \\\"spec.bogus\\\"\"",
            "299 - \"unknown field \\\"status.junk\\\"\"",
        ]
    );
    assert_eq!(written["status"], json!({"phase": "Ready"}));
}
