//! CRD and Namespace lifecycles: established and served at once; deletion terminates contents.

use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;

#[tokio::test]
async fn a_created_crd_is_established_and_deleting_it_removes_its_objects() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get("widgets.example.com").await.unwrap();
    let status = crd.status.unwrap();
    assert_eq!(status.stored_versions, Some(vec!["v1".to_string()]));
    assert_eq!(status.accepted_names.unwrap().kind, "Widget");

    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    widgets
        .create(&PostParams::default(), &widget("plain", 1))
        .await
        .unwrap();
    let mut held = widget("held", 1);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    widgets.create(&PostParams::default(), &held).await.unwrap();

    let mut watch = widgets
        .watch(
            &kube::api::WatchParams::default()
                .timeout(60)
                .disable_bookmarks(),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    // The CRD waits for its instances; the one without finalizers is gone already.
    let terminating = crds.get("widgets.example.com").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert!(widgets.get_opt("plain").await.unwrap().is_none());
    assert!(
        widgets
            .get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );

    widgets
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    let uid = terminating.metadata.uid.unwrap();
    within(
        "CRD deletion",
        await_condition(crds, "widgets.example.com", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap();
    let err = api_error(widgets.get("held").await);
    assert_eq!(err.code, 404, "the resource is no longer served");
    // Open watches on it end (after the events they were owed), long before their timeout.
    let drained = within("the watch ends with the CRD", async {
        let mut seen = 0;
        while let Some(event) = watch.next().await {
            event.unwrap();
            seen += 1;
        }
        seen
    })
    .await;
    assert!(
        drained >= 2,
        "saw the initial objects and their deletion: {drained}"
    );
}

#[tokio::test]
async fn invalid_crds_are_refused_with_causes() {
    let (_server, client) = server();
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let mut crd = <Widget as kube::CustomResourceExt>::crd();
    crd.metadata.name = Some("wrong.example.com".into());
    crd.spec.scope = "Everywhere".into();
    let err = api_error(crds.create(&PostParams::default(), &crd).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(fields, ["spec.scope", "metadata.name"]);
}

#[tokio::test]
async fn every_served_version_serves_the_same_objects() {
    let (server, client) = server();
    let mut crd = serde_json::to_value(<Widget as kube::CustomResourceExt>::crd()).unwrap();
    let mut alpha = crd["spec"]["versions"][0].clone();
    alpha["name"] = json!("v1alpha1");
    alpha["storage"] = json!(false);
    crd["spec"]["versions"].as_array_mut().unwrap().push(alpha);
    server.create_crd(crd).unwrap();
    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1alpha1", "Widget"),
        "widgets",
    );
    let old: Api<DynamicObject> = Api::default_namespaced_with(client, &ar);
    let through_alpha = old.get("w").await.unwrap();
    assert_eq!(
        through_alpha.types.unwrap().api_version,
        "example.com/v1alpha1"
    );
    let patched = old
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.types.unwrap().api_version, "example.com/v1alpha1");
    let through_v1 = widgets.get("w").await.unwrap();
    assert_eq!(through_v1.spec.size, 2);
}

#[tokio::test]
async fn deleting_a_namespace_terminates_its_contents() {
    let (_server, client) = server();
    create_namespace(&client, "doomed").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let cm = |name: &str, finalizers: Option<Vec<String>>| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            finalizers,
            ..Default::default()
        },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm("plain", None))
        .await
        .unwrap();
    cms.create(
        &PostParams::default(),
        &cm("held", Some(vec!["example.com/hold".into()])),
    )
    .await
    .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("namespaces terminate");
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(cms.get_opt("plain").await.unwrap().is_none());

    let err = api_error(cms.create(&PostParams::default(), &cm("late", None)).await);
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert!(
        err.message.contains("because it is being terminated"),
        "{}",
        err.message
    );

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let uid = ns.metadata.uid.unwrap();
    within(
        "namespace deletion",
        await_condition(namespaces, "doomed", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_system_namespaces_cannot_be_deleted() {
    let (_server, client) = server();
    let namespaces: Api<Namespace> = Api::all(client);
    for name in ["default", "kube-system", "kube-public"] {
        let err = api_error(namespaces.delete(name, &DeleteParams::default()).await);
        assert_eq!(
            (err.code, err.reason.as_str()),
            (403, "Forbidden"),
            "{name}"
        );
        assert!(
            namespaces
                .get(name)
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_none()
        );
    }
}
