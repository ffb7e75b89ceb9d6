//! Field ownership and server-side apply: managedFields as the real server writes them,
//! conflicts, forced takeover, removal of fields a manager stops applying, list-map merging by
//! key, the status subresource, no-op applies, and kube-lease-manager's Lease pattern.

use crate::support::*;
use futures::TryStreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::core::Status;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// The managedFields entries of an object, as JSON.
fn managed(meta: &ObjectMeta) -> Vec<Value> {
    serde_json::to_value(meta.managed_fields.clone().unwrap_or_default())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The entry of `manager` with `operation`.
fn entry(meta: &ObjectMeta, manager: &str, operation: &str) -> Option<Value> {
    managed(meta)
        .into_iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn config_map(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": data})
}

fn conflict(result: kube::Result<ConfigMap>) -> Box<Status> {
    let err = api_error(result);
    assert_eq!(
        (err.code, err.reason.as_str()),
        (409, "Conflict"),
        "{err:?}"
    );
    err
}

fn causes(err: &Status) -> Vec<(String, String, String)> {
    err.details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.reason.clone(), c.field.clone(), c.message.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn writes_record_managed_fields_in_the_servers_fieldsv1_shape() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cm", "labels": {"app": "x"}},
        "data": {"a": "1", "b": "1"}}))
        .unwrap();
    let pp = PostParams {
        field_manager: Some("creator".into()),
        ..PostParams::default()
    };
    let created = cms.create(&pp, &cm).await.unwrap();
    let entries = managed(&created.metadata);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(
        (
            &e["manager"],
            &e["operation"],
            &e["apiVersion"],
            &e["fieldsType"]
        ),
        (
            &json!("creator"),
            &json!("Update"),
            &json!("v1"),
            &json!("FieldsV1")
        )
    );
    assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    assert!(e.get("subresource").is_none(), "{e}");
    // Name, namespace, uid and the like are nobody's; containers the write added carry ".".
    assert_eq!(
        e["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}, "f:b": {}},
               "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );

    // A later writer takes over what it changes; the creator keeps the rest.
    let edited = cms
        .patch(
            "cm",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"data": {"a": "2"}})),
        )
        .await
        .unwrap();
    let editor = entry(&edited.metadata, "editor", "Update").expect("editor entry");
    assert_eq!(editor["fieldsV1"], json!({"f:data": {"f:a": {}}}));
    let creator = entry(&edited.metadata, "creator", "Update").expect("creator entry");
    assert_eq!(
        creator["fieldsV1"],
        json!({"f:data": {".": {}, "f:b": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );
}

#[tokio::test]
async fn without_field_manager_the_user_agent_names_the_manager() {
    use tower::ServiceExt;
    let (server, client) = server();
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "kubectl/v1.32.0 (linux/amd64) kubernetes/abcdef",
        )
        .body(axum::body::Body::from(
            json!({"metadata": {"name": "cm"}, "data": {"a": "1"}}).to_string(),
        ))
        .unwrap();
    let response = server.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let cm = Api::<ConfigMap>::default_namespaced(client)
        .get("cm")
        .await
        .unwrap();
    assert!(
        entry(&cm.metadata, "kubectl", "Update").is_some(),
        "{:?}",
        managed(&cm.metadata)
    );
}

#[tokio::test]
async fn apply_conflicts_name_field_and_manager_and_force_takes_ownership() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let created = cms
        .patch(
            "cm",
            &PatchParams::apply("a"),
            &Patch::Apply(config_map(json!({"x": "1", "y": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        entry(&created.metadata, "a", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:x": {}, "f:y": {}}})
    );

    let err = conflict(
        cms.patch(
            "cm",
            &PatchParams::apply("b"),
            &Patch::Apply(config_map(json!({"x": "2"}))),
        )
        .await,
    );
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"a\": .data.x"
    );
    assert_eq!(
        causes(&err),
        vec![(
            "FieldManagerConflict".into(),
            ".data.x".into(),
            "conflict with \"a\"".into()
        )]
    );
    assert_eq!(
        cms.get("cm").await.unwrap().metadata.resource_version,
        created.metadata.resource_version
    );

    // Applying the value already there is no conflict: both own the field.
    let shared = cms
        .patch(
            "cm",
            &PatchParams::apply("b"),
            &Patch::Apply(config_map(json!({"x": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        entry(&shared.metadata, "b", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:x": {}}})
    );

    // An updater conflicts too, named with its version.
    cms.patch(
        "cm",
        &PatchParams {
            field_manager: Some("editor".into()),
            ..PatchParams::default()
        },
        &Patch::Merge(json!({"data": {"z": "1"}})),
    )
    .await
    .unwrap();
    let err = conflict(
        cms.patch(
            "cm",
            &PatchParams::apply("b"),
            &Patch::Apply(config_map(json!({"x": "2", "y": "2", "z": "2"}))),
        )
        .await,
    );
    assert_eq!(
        err.message,
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .data.x\n- .data.y\nconflicts with \"editor\" using v1:\n- .data.z"
    );
    assert_eq!(causes(&err).len(), 3);

    let forced = cms
        .patch(
            "cm",
            &PatchParams::apply("b").force(),
            &Patch::Apply(config_map(json!({"x": "2", "y": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["x"], "2");
    // The losers' entries shrink: "a" owned x and y and has nothing left, so its entry goes.
    assert!(
        entry(&forced.metadata, "a", "Apply").is_none(),
        "{:?}",
        managed(&forced.metadata)
    );
    assert_eq!(
        entry(&forced.metadata, "b", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:x": {}, "f:y": {}}})
    );
    assert!(entry(&forced.metadata, "editor", "Update").is_some());
}

/// The project's PhysicalHost CRD (status subresource; `status.conditions` is a list-map keyed
/// by `type`), loaded from `crds/` as the operator installs it.
fn physical_hosts(
    server: &Arc<beskar7_sim::apiserver::ApiServer>,
    client: kube::Client,
) -> Api<DynamicObject> {
    server
        .load_crds(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds"))
        .expect("load the project's CRDs");
    let gvk = GroupVersionKind::gvk("infrastructure.cluster.x-k8s.io", "v1beta1", "PhysicalHost");
    Api::default_namespaced_with(client, &ApiResource::from_gvk(&gvk))
}

fn host(extra: Value) -> Value {
    let mut host = json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "PhysicalHost",
        "metadata": {"name": "h1"},
        "spec": {"redfishConnection": {"address": "https://10.0.0.1", "credentialsSecretRef": "bmc"}}});
    for (k, v) in extra.as_object().unwrap() {
        host[k] = v.clone();
    }
    host
}

fn condition(kind: &str, status: &str) -> Value {
    json!({"type": kind, "status": status, "reason": "Test", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

fn status_apply(conditions: Value) -> Value {
    json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "PhysicalHost",
        "metadata": {"name": "h1"}, "status": {"conditions": conditions}})
}

fn condition_types(obj: &DynamicObject) -> Vec<String> {
    obj.data["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn status_apply_merges_conditions_by_type_and_removes_what_is_no_longer_applied() {
    let (server, client) = server();
    let hosts = physical_hosts(&server, client);
    hosts
        .patch(
            "h1",
            &PatchParams::apply("admin"),
            &Patch::Apply(host(json!({}))),
        )
        .await
        .unwrap();

    let ctrl = PatchParams::apply("ctrl").force();
    let other = PatchParams::apply("other").force();
    hosts
        .patch_status(
            "h1",
            &ctrl,
            &Patch::Apply(status_apply(json!([
                condition("Ready", "False"),
                condition("Inspecting", "True")
            ]))),
        )
        .await
        .unwrap();
    // A second manager's condition merges in by its type instead of replacing the list.
    let both = hosts
        .patch_status(
            "h1",
            &other,
            &Patch::Apply(status_apply(json!([condition("Synced", "True")]))),
        )
        .await
        .unwrap();
    assert_eq!(
        condition_types(&both),
        vec!["Ready", "Inspecting", "Synced"]
    );
    let ctrl_entry = managed(&both.metadata)
        .into_iter()
        .find(|e| e["manager"] == "ctrl")
        .unwrap();
    assert_eq!(ctrl_entry["subresource"], "status", "{ctrl_entry}");
    assert!(
        ctrl_entry["fieldsV1"]["f:status"]["f:conditions"]
            .get("k:{\"type\":\"Inspecting\"}")
            .is_some(),
        "{ctrl_entry}"
    );

    // The controller stops reporting Inspecting: a naive merge would keep it forever.
    let after = hosts
        .patch_status(
            "h1",
            &ctrl,
            &Patch::Apply(status_apply(json!([condition("Ready", "True")]))),
        )
        .await
        .unwrap();
    assert_eq!(condition_types(&after), vec!["Ready", "Synced"]);
    assert_eq!(after.data["status"]["conditions"][0]["status"], "True");

    // Co-owned: both apply Synced; when one stops, it stays; when the other stops too, it goes.
    hosts
        .patch_status(
            "h1",
            &ctrl,
            &Patch::Apply(status_apply(json!([
                condition("Ready", "True"),
                condition("Synced", "True")
            ]))),
        )
        .await
        .unwrap();
    let kept = hosts
        .patch_status("h1", &other, &Patch::Apply(status_apply(json!([]))))
        .await
        .unwrap();
    assert_eq!(condition_types(&kept), vec!["Ready", "Synced"]);
    let gone = hosts
        .patch_status(
            "h1",
            &ctrl,
            &Patch::Apply(status_apply(json!([condition("Ready", "True")]))),
        )
        .await
        .unwrap();
    assert_eq!(condition_types(&gone), vec!["Ready"]);
}

#[tokio::test]
async fn status_and_main_endpoint_applies_own_only_their_part() {
    let (server, client) = server();
    let hosts = physical_hosts(&server, client);
    // Status in a main-endpoint apply is ignored and not owned; spec on /status likewise.
    let created = hosts
        .patch(
            "h1",
            &PatchParams::apply("admin"),
            &Patch::Apply(host(json!({"status": {"state": "Available"}}))),
        )
        .await
        .unwrap();
    assert!(created.data.get("status").is_none(), "{:?}", created.data);
    let admin = entry(&created.metadata, "admin", "Apply").unwrap();
    assert!(admin["fieldsV1"].get("f:status").is_none(), "{admin}");
    assert!(admin.get("subresource").is_none());

    let mut body = host(json!({"status": {"state": "Available"}}));
    body["spec"]["automatedCleaningMode"] = json!("disabled");
    let written = hosts
        .patch_status("h1", &PatchParams::apply("ctrl"), &Patch::Apply(body))
        .await
        .unwrap();
    assert_eq!(written.data["status"]["state"], "Available");
    // The spec change on /status is ignored: the field keeps the CRD's default.
    assert_eq!(written.data["spec"]["automatedCleaningMode"], "metadata");
    let ctrl = entry(&written.metadata, "ctrl", "Apply").unwrap();
    assert_eq!(
        (ctrl["subresource"].as_str(), &ctrl["fieldsV1"]),
        (Some("status"), &json!({"f:status": {"f:state": {}}}))
    );
}

#[tokio::test]
async fn repeating_an_apply_changes_nothing_no_new_version_no_event() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let body = Patch::Apply(config_map(json!({"x": "1"})));
    let first = cms
        .patch("cm", &PatchParams::apply("a"), &body)
        .await
        .unwrap();
    // Let the clock pass a second: a new managedFields time alone must not make a write.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = cms
        .patch("cm", &PatchParams::apply("a"), &body)
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        first.metadata.resource_version
    );
    assert_eq!(managed(&again.metadata), managed(&first.metadata));
    let same = cms
        .patch(
            "cm",
            &PatchParams {
                field_manager: Some("a".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"data": {"x": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        first.metadata.resource_version
    );

    let events: Vec<WatchEvent<ConfigMap>> = within(
        "watch",
        cms.watch(
            &WatchParams::default().timeout(1).disable_bookmarks(),
            first.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .try_collect(),
    )
    .await
    .unwrap();
    assert!(
        events.iter().all(|e| matches!(e, WatchEvent::Bookmark(_))),
        "{events:?}"
    );
}

#[tokio::test]
async fn lists_follow_their_declared_types_for_built_ins() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let with_finalizers = |fs: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "finalizers": fs}});
    // Finalizers are a set: two managers' values merge and each owns its own.
    cms.patch(
        "cm",
        &PatchParams::apply("a"),
        &Patch::Apply(with_finalizers(json!(["example.com/a"]))),
    )
    .await
    .unwrap();
    let both = cms
        .patch(
            "cm",
            &PatchParams::apply("b"),
            &Patch::Apply(with_finalizers(json!(["example.com/b"]))),
        )
        .await
        .unwrap();
    assert_eq!(
        both.metadata.finalizers.clone().unwrap(),
        vec!["example.com/a", "example.com/b"]
    );
    assert_eq!(
        entry(&both.metadata, "b", "Apply").unwrap()["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"example.com/b\"": {}}}})
    );
    let one = cms
        .patch(
            "cm",
            &PatchParams::apply("a"),
            &Patch::Apply(with_finalizers(json!([]))),
        )
        .await
        .unwrap();
    assert_eq!(one.metadata.finalizers.unwrap(), vec!["example.com/b"]);
}

/// kube-lease-manager 0.13 (state.rs), reproduced request by request: each holder is its own
/// field manager; an orphaned Lease is taken by an apply without force, so a held one answers
/// 409 Conflict; renewal and release are strategic merge patches, release setting nulls.
#[tokio::test]
async fn lease_acquire_renew_release_in_kube_lease_managers_pattern() {
    let (_server, client) = server();
    let leases: Api<Lease> = Api::default_namespaced(client);
    let pp = |who: &str| PatchParams {
        field_manager: Some(format!("kube-lease-manager-{who}")),
        ..PatchParams::default()
    };
    let lock = |who: &str, now: &str| {
        Patch::Apply(
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "spec": {"acquireTime": now, "renewTime": now, "holderIdentity": who, "leaseDurationSeconds": 15}}),
        )
    };
    let transitions = |n: i32| {
        Patch::Strategic(
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "spec": {"leaseTransitions": n}}),
        )
    };
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("leader".into()),
            ..ObjectMeta::default()
        },
        spec: Some(Default::default()),
    };
    leases.create(&PostParams::default(), &lease).await.unwrap();

    leases
        .patch(
            "leader",
            &pp("a"),
            &lock("a", "2026-11-24T23:00:00.000000Z"),
        )
        .await
        .unwrap();
    leases
        .patch("leader", &pp("a"), &transitions(1))
        .await
        .unwrap();

    // b saw the Lease orphaned a moment ago and tries to take it: a soft apply loses.
    let err = api_error(
        leases
            .patch(
                "leader",
                &pp("b"),
                &lock("b", "2026-11-24T23:00:01.000000Z"),
            )
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .iter()
        .map(|c| c.field.clone())
        .collect();
    assert_eq!(
        fields,
        vec![
            ".spec.acquireTime",
            ".spec.holderIdentity",
            ".spec.renewTime"
        ]
    );
    assert_eq!(
        leases
            .get("leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("a")
    );

    // a renews.
    let renew = Patch::Strategic(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "spec": {"renewTime": "2026-11-24T23:00:10.000000Z", "leaseDurationSeconds": 15}}),
    );
    let renewed = leases.patch("leader", &pp("a"), &renew).await.unwrap();
    assert_eq!(
        renewed.spec.unwrap().renew_time.unwrap().0.to_string(),
        "2026-11-24T23:00:10Z"
    );

    // a releases: nulls delete the fields, and with them everyone's ownership.
    let release = Patch::Strategic(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "spec": {"acquireTime": null, "renewTime": null, "holderIdentity": null, "leaseDurationSeconds": null}}),
    );
    let released = leases.patch("leader", &pp("a"), &release).await.unwrap();
    let spec = released.spec.unwrap();
    assert_eq!(
        (
            spec.holder_identity,
            spec.renew_time,
            spec.lease_transitions
        ),
        (None, None, Some(1))
    );

    // Now b's soft apply wins, and a's would lose.
    let taken = leases
        .patch(
            "leader",
            &pp("b"),
            &lock("b", "2026-11-24T23:00:20.000000Z"),
        )
        .await
        .unwrap();
    assert_eq!(taken.spec.unwrap().holder_identity.as_deref(), Some("b"));
    leases
        .patch("leader", &pp("b"), &transitions(2))
        .await
        .unwrap();
    let err = api_error(
        leases
            .patch(
                "leader",
                &pp("a"),
                &lock("a", "2026-11-24T23:00:21.000000Z"),
            )
            .await,
    );
    assert_eq!(err.code, 409);
    assert!(
        err.message.contains("with \"kube-lease-manager-b\""),
        "{}",
        err.message
    );
}

/// The real kube-lease-manager 0.13 (the leader election the house style names) against the
/// server: two candidates, never two leaders through several renewals, and a hand-over when the
/// leader lets go. Its soft apply only keeps a second candidate out if conflicts are real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_lease_manager_elects_one_leader_and_hands_over() {
    use kube_lease_manager::LeaseManagerBuilder;
    use std::time::{Duration, Instant};
    let (_server, client) = server();
    let candidate = |id: &'static str| {
        LeaseManagerBuilder::new(client.clone(), "sim-leader")
            .with_namespace("default")
            .with_identity(id)
            .with_duration(3)
            .with_grace(1)
            .build()
    };
    let (a, b) = (candidate("a").await.unwrap(), candidate("b").await.unwrap());
    let (mut rx_a, task_a) = a.watch().await;
    let (mut rx_b, task_b) = b.watch().await;
    within("a leader is elected", async {
        while !*rx_a.borrow() && !*rx_b.borrow() {
            tokio::select! {
                _ = rx_a.changed() => {}
                _ = rx_b.changed() => {}
            }
        }
    })
    .await;
    // Longer than the lease lasts, so the leader renews and the other keeps trying meanwhile.
    let until = Instant::now() + Duration::from_secs(4);
    let a_leads = *rx_a.borrow();
    while Instant::now() < until {
        assert_eq!(
            (*rx_a.borrow(), *rx_b.borrow()),
            (a_leads, !a_leads),
            "one leader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (leader, follower) = if a_leads { ("a", "b") } else { ("b", "a") };
    let leases: Api<Lease> = Api::default_namespaced(client.clone());
    let lease = leases.get("sim-leader").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some(leader));
    // (The builder keeps the field manager of its random default identity.)
    let appliers: Vec<Value> = managed(&lease.metadata)
        .into_iter()
        .filter(|e| e["operation"] == "Apply")
        .collect();
    assert_eq!(appliers.len(), 1, "{appliers:?}");
    assert!(
        appliers[0]["manager"]
            .as_str()
            .unwrap()
            .starts_with("kube-lease-manager-"),
        "{appliers:?}"
    );

    // The leader closes its channel: its task releases the Lease and ends; the other takes over.
    let (mut rx_follower, task_leader, task_follower) = if a_leads {
        drop(rx_a);
        (rx_b, task_a, task_b)
    } else {
        drop(rx_b);
        (rx_a, task_b, task_a)
    };
    within("the leader releases", task_leader)
        .await
        .unwrap()
        .unwrap();
    within(
        "the follower takes over",
        rx_follower.wait_for(|leads| *leads),
    )
    .await
    .unwrap();
    let lease = leases.get("sim-leader").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(follower)
    );
    drop(rx_follower);
    within("the follower releases", task_follower)
        .await
        .unwrap()
        .unwrap();
}

/// Many kube-lease-manager candidates race for a fresh Lease. Applies reach the server 100 ms
/// late, so every candidate sees the Lease orphaned before any apply lands, and the applies land
/// together: only the field-ownership conflict keeps all but one out (with a merging apply,
/// several candidates each read themselves as holder before the next apply lands).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_lease_manager_race_has_one_winner() {
    use kube_lease_manager::LeaseManagerBuilder;
    use std::time::Duration;
    use tower::ServiceExt;
    let (server, _) = server();
    let router = server.router();
    let late_applies = tower::service_fn(move |req: axum::http::Request<kube::client::Body>| {
        let router = router.clone();
        async move {
            let apply = req
                .headers()
                .get("content-type")
                .is_some_and(|c| c == "application/apply-patch+yaml");
            if apply {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            router.oneshot(req).await
        }
    });
    let client = kube::Client::new(late_applies, "default");
    let mut candidates = Vec::new();
    for i in 0..8 {
        let manager = LeaseManagerBuilder::new(client.clone(), "raced")
            .with_namespace("default")
            .with_identity(format!("c{i}"))
            .with_duration(10)
            .with_grace(2)
            .build()
            .await
            .unwrap();
        candidates.push(manager);
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(candidates.len()));
    let tasks: Vec<_> = candidates
        .into_iter()
        .map(|m| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                // A loser keeps waiting for the lease to expire: still pending after a second.
                tokio::time::timeout(Duration::from_secs(1), m.changed()).await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Ok(true)) => winners += 1,
            Ok(other) => panic!("unexpected outcome: {other:?}"),
            Err(_elapsed) => {}
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn apply_configurations_that_do_not_type_are_refused_naming_the_field() {
    let (server, client) = server();
    let hosts = physical_hosts(&server, client.clone());
    hosts
        .patch(
            "h1",
            &PatchParams::apply("admin"),
            &Patch::Apply(host(json!({}))),
        )
        .await
        .unwrap();
    let refused = |result: kube::Result<DynamicObject>| {
        let err = api_error(result);
        // Not a Status on the real server either: 500 with no reason.
        assert_eq!((err.code, err.reason.as_str()), (500, ""), "{err:?}");
        err.message
    };

    let mut bogus = host(json!({}));
    bogus["spec"]["bogus"] = json!(1);
    assert_eq!(
        refused(
            hosts
                .patch("h1", &PatchParams::apply("admin"), &Patch::Apply(bogus))
                .await
        ),
        "failed to create typed patch object (default/h1; infrastructure.cluster.x-k8s.io/v1beta1, Kind=PhysicalHost): .spec.bogus: field not declared in schema"
    );

    let untyped = json!([{"status": "True", "reason": "R", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
    let message = refused(
        hosts
            .patch_status(
                "h1",
                &PatchParams::apply("ctrl"),
                &Patch::Apply(status_apply(untyped)),
            )
            .await,
    );
    assert!(
        message.ends_with(".status.conditions: element 0: associative list with keys has an element that omits key field \"type\" (and doesn't have default value)"),
        "{message}"
    );

    let twice = json!([condition("Ready", "True"), condition("Ready", "False")]);
    let message = refused(
        hosts
            .patch_status(
                "h1",
                &PatchParams::apply("ctrl"),
                &Patch::Apply(status_apply(twice)),
            )
            .await,
    );
    assert!(
        message.ends_with(".status.conditions: duplicate entries for key [type=\"Ready\"]"),
        "{message}"
    );

    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let err = api_error(
        cms.patch(
            "cm",
            &PatchParams::apply("a"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm", "finalizers": ["x/a", "x/b", "x/a"]}})),
        )
        .await,
    );
    assert_eq!(
        err.message,
        "failed to create typed patch object (default/cm; /v1, Kind=ConfigMap): .metadata.finalizers: duplicate entries for key [=\"x/a\"]"
    );
    // Nothing was written.
    assert!(api_error(cms.get("cm").await).code == 404);
    // metadata is typed for every kind.
    let err = api_error(
        cms.patch(
            "cm",
            &PatchParams::apply("a"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm", "label": {"app": "x"}}})),
        )
        .await,
    );
    assert!(
        err.message
            .ends_with(": .metadata.label: field not declared in schema"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn service_ports_are_keyed_by_port_and_protocol_defaulting_to_tcp() {
    let (_server, client) = server();
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::default_namespaced(client);
    let svc = |ports: Value| {
        Patch::Apply(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": ports}}),
        )
    };
    services
        .patch(
            "s",
            &PatchParams::apply("a"),
            &svc(json!([{"port": 80, "name": "http"}])),
        )
        .await
        .unwrap();
    // Another manager adds a UDP port 80: a different item, no conflict.
    let both = services
        .patch(
            "s",
            &PatchParams::apply("b"),
            &svc(json!([{"port": 80, "protocol": "UDP", "name": "dns"}])),
        )
        .await
        .unwrap();
    assert_eq!(both.spec.unwrap().ports.unwrap().len(), 2);
    assert_eq!(
        entry(&both.metadata, "a", "Apply").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}}}}})
    );
    // Renaming a's port (TCP by default) is a's own business; b renaming it conflicts.
    let err = api_error(
        services
            .patch(
                "s",
                &PatchParams::apply("b"),
                &svc(json!([{"port": 80, "protocol": "UDP", "name": "dns"},
                    {"port": 80, "protocol": "TCP", "name": "web"}])),
            )
            .await,
    );
    assert_eq!(err.code, 409);
    assert_eq!(
        err.details.unwrap().causes[0].field,
        ".spec.ports[port=80,protocol=\"TCP\"].name"
    );
}

/// A client may rewrite managedFields in an update (kubectl moving an object from client-side
/// to server-side apply hands the fields of `kubectl-client-side-apply` to its applier by a JSON
/// patch) or reset them with `[{}]`; through /status they are ignored.
#[tokio::test]
async fn updates_may_rewrite_or_reset_managed_fields() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let pp = PostParams {
        field_manager: Some("kubectl-client-side-apply".into()),
        ..PostParams::default()
    };
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cm"}, "data": {"x": "1"}})).unwrap();
    cms.create(&pp, &cm).await.unwrap();
    let err = conflict(
        cms.patch(
            "cm",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(config_map(json!({"x": "2"}))),
        )
        .await,
    );
    assert!(
        err.message.contains("kubectl-client-side-apply"),
        "{}",
        err.message
    );

    let upgrade: json_patch::Patch = serde_json::from_value(json!([{"op": "replace",
        "path": "/metadata/managedFields", "value": [{"manager": "kubectl", "operation": "Apply",
        "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}}]}]))
    .unwrap();
    let upgraded = cms
        .patch("cm", &PatchParams::default(), &Patch::Json::<()>(upgrade))
        .await
        .unwrap();
    assert!(entry(&upgraded.metadata, "kubectl", "Apply").is_some());
    assert!(entry(&upgraded.metadata, "kubectl-client-side-apply", "Update").is_none());
    let applied = cms
        .patch(
            "cm",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(config_map(json!({"x": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["x"], "2");

    let reset = cms
        .patch(
            "cm",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"managedFields": [{}]}})),
        )
        .await
        .unwrap();
    assert_eq!(reset.metadata.managed_fields, None);
    assert!(rv(&reset.metadata) > rv(&applied.metadata));
}
