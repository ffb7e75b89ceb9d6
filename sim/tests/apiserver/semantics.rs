//! Optimistic concurrency, no-op writes, generation and the status subresource: the behaviours
//! controllers silently depend on.

use crate::support::*;
use futures::TryStreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

#[tokio::test]
async fn resource_versions_are_global_and_monotonic() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let mut last = 0;
    for i in 0..3 {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("c{i}")),
                ..Default::default()
            },
            ..Default::default()
        };
        let a = rv(&cms
            .create(&PostParams::default(), &cm)
            .await
            .unwrap()
            .metadata);
        let b = rv(&widgets
            .create(&PostParams::default(), &widget(&format!("w{i}"), 1))
            .await
            .unwrap()
            .metadata);
        assert!(last < a && a < b, "{last} < {a} < {b}");
        last = b;
    }
    let list = cms.list(&ListParams::default()).await.unwrap();
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert!(list.items.iter().all(|c| rv(&c.metadata) <= list_rv));
    assert!(
        list_rv >= last,
        "a list's RV is at least every item's and the latest write's"
    );
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let original = widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let mut first = original.clone();
    first.spec.size = 2;
    widgets
        .replace("w", &PostParams::default(), &first)
        .await
        .unwrap();
    let mut second = original;
    second.spec.size = 3;
    let err = api_error(widgets.replace("w", &PostParams::default(), &second).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );
    assert_eq!(widgets.get("w").await.unwrap().spec.size, 2);

    // A resourceVersion inside a patch body is a precondition too.
    let patch = json!({"metadata": {"resourceVersion": "1"}, "spec": {"size": 9}});
    let err = api_error(
        widgets
            .patch("w", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    assert_eq!(err.code, 409);
}

#[tokio::test]
async fn custom_resource_update_needs_a_resource_version_but_configmap_does_not() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    let mut w = widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    w.metadata.resource_version = None;
    let err = api_error(widgets.replace("w", &PostParams::default(), &w).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.details.unwrap().causes[0].field,
        "metadata.resourceVersion"
    );

    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("c".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut unconditional = cm.clone();
    unconditional.data = Some([("k".to_string(), "v".to_string())].into());
    cms.replace("c", &PostParams::default(), &unconditional)
        .await
        .expect("built-ins allow an unconditional PUT");

    // Leases are the exception among built-ins: a PUT needs a resourceVersion, and a PUT of a
    // missing Lease creates it.
    let leases: Api<Lease> = Api::default_namespaced(client);
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("leader".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = leases
        .replace("leader", &PostParams::default(), &lease)
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    let err = api_error(
        leases
            .replace("leader", &PostParams::default(), &lease)
            .await,
    );
    assert_eq!(err.code, 422);
}

#[tokio::test]
async fn no_op_writes_keep_the_resource_version_and_emit_no_event() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let w = widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let status = json!({"status": {"ready": true}});
    let with_status = widgets
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    let again = widgets
        .replace("w", &PostParams::default(), &with_status)
        .await
        .unwrap();
    let patched = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 1}})),
        )
        .await
        .unwrap();
    let status_again = widgets
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    for same in [&again, &patched, &status_again] {
        assert_eq!(
            same.metadata.resource_version,
            with_status.metadata.resource_version
        );
    }
    assert!(rv(&with_status.metadata) > rv(&w.metadata));

    // Watching from the last real change sees nothing at all until the stream times out.
    let wp = WatchParams::default().timeout(1);
    let events: Vec<WatchEvent<Widget>> = within(
        "watch after no-op writes",
        widgets
            .watch(
                &wp,
                with_status.metadata.resource_version.as_deref().unwrap(),
            )
            .await
            .unwrap()
            .try_collect(),
    )
    .await
    .unwrap();
    assert!(
        events.iter().all(|e| matches!(e, WatchEvent::Bookmark(_))),
        "no-op writes produced events: {events:?}"
    );
}

#[tokio::test]
async fn generation_tracks_spec_changes_only() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let w = widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    let labelled = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let status = widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "status changes keep the generation"
    );
    let spec = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let mut w = widget("w", 1);
    w.status = Some(WidgetStatus {
        ready: true,
        message: None,
    });
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(
        created.status, None,
        "create drops status when status is a subresource"
    );

    // Through /status only .status counts: spec and labels in the request are ignored.
    let through_status =
        json!({"metadata": {"labels": {"x": "y"}}, "spec": {"size": 5}, "status": {"ready": true}});
    let after = widgets
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&through_status))
        .await
        .unwrap();
    assert_eq!(
        (after.spec.size, after.metadata.labels.is_none()),
        (1, true)
    );
    assert_eq!(after.status.as_ref().map(|s| s.ready), Some(true));

    // Through the main endpoint .status is ignored.
    let mut replaced = after.clone();
    replaced.spec.size = 3;
    replaced.status = Some(WidgetStatus {
        ready: false,
        message: Some("ignored".into()),
    });
    let after = widgets
        .replace("w", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(after.spec.size, 3);
    assert_eq!(
        after.status,
        Some(WidgetStatus {
            ready: true,
            message: None
        })
    );

    // replace_status takes the whole object but keeps only its status.
    let mut whole = after.clone();
    whole.spec.size = 100;
    whole.status = Some(WidgetStatus {
        ready: false,
        message: Some("rebooting".into()),
    });
    let after = widgets
        .replace_status("w", &PostParams::default(), &whole)
        .await
        .unwrap();
    assert_eq!(after.spec.size, 3);
    assert_eq!(after.status.unwrap().message.as_deref(), Some("rebooting"));
}

#[tokio::test]
async fn unknown_resources_and_subresources_are_not_found() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let err = api_error(cms.get_status("anything").await);
    assert_eq!(err.code, 404, "ConfigMaps have no status subresource");
    let gvk = kube::api::GroupVersionKind::gvk("example.com", "v1", "Gadget");
    let ar = kube::api::ApiResource::from_gvk(&gvk);
    let gadgets: Api<kube::api::DynamicObject> = Api::default_namespaced_with(client, &ar);
    let err = api_error(gadgets.list(&ListParams::default()).await);
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
}
