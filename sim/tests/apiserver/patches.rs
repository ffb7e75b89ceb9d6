//! The four patch types and bad input: each failure names its cause and changes nothing.

use crate::support::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

#[tokio::test]
async fn merge_patch_merges_and_null_deletes() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let mut w = widget("w", 1);
    w.spec.color = Some("red".into());
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let patched = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": null, "size": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.spec,
        WidgetSpec {
            size: 4,
            color: None
        }
    );
}

#[tokio::test]
async fn json_patch_test_failure_is_422_and_changes_nothing() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let created = widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let claim: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/size", "value": 7},
        {"op": "test", "path": "/spec/color", "value": "blue"}
    ]))
    .unwrap();
    let err = api_error(
        widgets
            .patch("w", &PatchParams::default(), &Patch::Json::<()>(claim))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message.contains("testing value /spec/color failed"),
        "{}",
        err.message
    );
    let after = widgets.get("w").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        created.metadata.resource_version
    );

    let ok: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/color", "value": null},
        {"op": "replace", "path": "/spec/size", "value": 7}
    ]))
    .unwrap();
    let patched = widgets
        .patch("w", &PatchParams::default(), &Patch::Json::<()>(ok))
        .await
        .unwrap();
    assert_eq!(patched.spec.size, 7);
}

#[tokio::test]
async fn strategic_merge_is_refused_for_custom_resources_and_merges_built_ins() {
    let (server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let err = api_error(
        widgets
            .patch(
                "w",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 2}})),
            )
            .await,
    );
    assert_eq!(
        (err.code, err.reason.as_str()),
        (415, "UnsupportedMediaType")
    );

    // kube-lease-manager renews and releases Leases with strategic merge patches; null deletes.
    let leases: Api<Lease> = Api::default_namespaced(client);
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("l".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let acquire = json!({"spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
    leases
        .patch("l", &PatchParams::default(), &Patch::Strategic(&acquire))
        .await
        .unwrap();
    let release =
        json!({"spec": {"holderIdentity": null, "$retainKeys": ["leaseDurationSeconds"]}});
    let after = leases
        .patch("l", &PatchParams::default(), &Patch::Strategic(&release))
        .await
        .unwrap();
    let spec = after.spec.unwrap();
    assert_eq!(
        (spec.holder_identity, spec.lease_duration_seconds),
        (None, Some(15))
    );
    let (code, body) = raw(
        &server,
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/l",
        "",
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        body["spec"].get("$retainKeys").is_none(),
        "directives are not stored: {body}"
    );
}

#[tokio::test]
async fn apply_creates_what_is_missing_and_needs_a_field_manager() {
    let (server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let applied = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}});
    let created = widgets
        .patch("w", &PatchParams::apply("tests"), &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(created.spec.size, 3);
    let (code, body) = raw(
        &server,
        "PATCH",
        &format!("{WIDGETS}/w"),
        "application/apply-patch+yaml",
        "spec:\n  size: 4\n",
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["field"], "fieldManager");
}

#[tokio::test]
async fn bad_bodies_are_400_or_415_and_name_the_problem() {
    let (server, client) = server();
    install_widgets(&client).await;
    let (code, body) = raw(
        &server,
        "POST",
        WIDGETS,
        "application/json",
        "{\"metadata\": {\"name\": \"w\"},",
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        body["message"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );

    let (code, body) = raw(
        &server,
        "POST",
        WIDGETS,
        "application/yaml",
        "metadata: {name: w\nspec: [",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("not valid YAML"),
        "{body}"
    );

    let (code, body) = raw(
        &server,
        "POST",
        WIDGETS,
        "application/vnd.kubernetes.protobuf",
        "k8s\0",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );

    let (code, body) = raw(&server, "POST", WIDGETS, "application/json", "[1, 2]").await;
    assert_eq!(code, 400, "{body}");

    let (code, body) = raw(
        &server,
        "POST",
        WIDGETS,
        "application/json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}}"#,
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("does not match the expected API version"),
        "{body}"
    );

    let (code, _) = raw(
        &server,
        "POST",
        WIDGETS,
        "application/yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: from-yaml}\nspec: {size: 2}\n",
    )
    .await;
    assert_eq!(code, 201, "YAML bodies are accepted like the real server's");

    let (code, body) = raw(
        &server,
        "PATCH",
        &format!("{WIDGETS}/from-yaml"),
        "application/merge-patch+json",
        "{oops",
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("error decoding patch"),
        "{body}"
    );

    let (code, _) = raw(
        &server,
        "PATCH",
        &format!("{WIDGETS}/from-yaml"),
        "text/plain",
        "{}",
    )
    .await;
    assert_eq!(code, 415);

    let (code, body) = raw(
        &server,
        "PUT",
        &format!("{WIDGETS}/from-yaml"),
        "application/json",
        r#"{"metadata": {"name": "other", "resourceVersion": "1"}}"#,
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("does not match the name on the URL"),
        "{body}"
    );

    let (code, body) = raw(
        &server,
        "POST",
        WIDGETS,
        "application/json",
        r#"{"metadata": {"name": "x", "namespace": "other"}}"#,
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("does not match the namespace"),
        "{body}"
    );
}
