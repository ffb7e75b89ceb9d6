//! Lists: label and field selectors, CRD selectable fields, and consistent pagination.

use crate::support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::time::Duration;

async fn labelled(cms: &Api<ConfigMap>, name: &str, labels: &[(&str, &str)]) {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm).await.unwrap();
}

async fn names(cms: &Api<ConfigMap>, lp: &ListParams) -> Vec<String> {
    cms.list(lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect()
}

#[tokio::test]
async fn label_selectors_equality_set_and_existence() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    labelled(&cms, "a", &[("rack", "r1"), ("tier", "gpu")]).await;
    labelled(&cms, "b", &[("rack", "r2")]).await;
    labelled(&cms, "c", &[]).await;
    assert_eq!(
        names(&cms, &ListParams::default().labels("rack=r1")).await,
        ["a"]
    );
    assert_eq!(
        names(&cms, &ListParams::default().labels("rack in (r1,r2),!tier")).await,
        ["b"]
    );
    assert_eq!(
        names(&cms, &ListParams::default().labels("rack notin (r1)")).await,
        ["b", "c"]
    );
    assert_eq!(
        names(&cms, &ListParams::default().labels("rack")).await,
        ["a", "b"]
    );
    let err = api_error(cms.list(&ListParams::default().labels("rack in r1")).await);
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn field_selectors_and_unsupported_fields() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    labelled(&cms, "a", &[]).await;
    labelled(&cms, "b", &[]).await;
    assert_eq!(
        names(&cms, &ListParams::default().fields("metadata.name=b")).await,
        ["b"]
    );
    assert_eq!(
        names(
            &cms,
            &ListParams::default().fields("metadata.name!=b,metadata.namespace=default")
        )
        .await,
        ["a"]
    );
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let err = api_error(
        widgets
            .list(&ListParams::default().fields("spec.size=1"))
            .await,
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (400, "field label not supported: spec.size")
    );
}

#[tokio::test]
async fn crd_selectable_fields_filter_lists() {
    let (server, client) = server();
    let mut crd = serde_json::to_value(<Widget as kube::CustomResourceExt>::crd()).unwrap();
    crd["spec"]["versions"][0]["selectableFields"] =
        serde_json::json!([{"jsonPath": ".spec.color"}]);
    server.create_crd(crd).unwrap();
    let widgets: Api<Widget> = Api::default_namespaced(client);
    for (name, color) in [("w1", "red"), ("w2", "blue")] {
        let mut w = widget(name, 1);
        w.spec.color = Some(color.into());
        widgets.create(&PostParams::default(), &w).await.unwrap();
    }
    let blue: Vec<String> = widgets
        .list(&ListParams::default().fields("spec.color=blue"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|w| w.metadata.name)
        .collect();
    assert_eq!(blue, ["w2"]);
}

#[tokio::test]
async fn pagination_is_a_consistent_snapshot() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    for i in 0..5 {
        labelled(&cms, &format!("c{i}"), &[]).await;
    }
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let snapshot_rv = first.metadata.resource_version.clone();
    // Written after the first page: not part of this list.
    labelled(&cms, "c5", &[]).await;
    let mut all: Vec<String> = first
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let mut token = first.metadata.continue_;
    while let Some(t) = token.filter(|t| !t.is_empty()) {
        let page = cms
            .list(&ListParams::default().limit(2).continue_token(&t))
            .await
            .unwrap();
        assert_eq!(page.metadata.resource_version, snapshot_rv);
        all.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
        token = page.metadata.continue_;
    }
    assert_eq!(all, ["c0", "c1", "c2", "c3", "c4"]);
}

#[tokio::test]
async fn an_expired_continue_token_is_410() {
    let (_server, client) = server_with(beskar7_sim::apiserver::Tunables {
        continue_ttl: Duration::ZERO,
        ..Default::default()
    });
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    for i in 0..3 {
        labelled(&cms, &format!("c{i}"), &[]).await;
    }
    let first = cms.list(&ListParams::default().limit(1)).await.unwrap();
    let token = first.metadata.continue_.unwrap();
    let err = api_error(
        cms.list(&ListParams::default().limit(1).continue_token(&token))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (410, "Expired"));
}
