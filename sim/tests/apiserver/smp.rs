//! Strategic merge patch on built-in kinds, through kube's `Patch::Strategic`: lists merge by
//! their patch merge keys, and the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList` and
//! `$setElementOrder` directives do what kubectl relies on.

use crate::support::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn deployment() -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "d", "finalizers": ["example.com/a"]},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [
                    {"name": "app", "image": "app:1", "args": ["--a"],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "1"}],
                     "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                    {"name": "sidecar", "image": "side:1"}
                ]}
            }
        }
    }))
    .unwrap()
}

async fn deployments() -> Api<Deployment> {
    let (_server, client) = server();
    let api: Api<Deployment> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    api
}

async fn smp(api: &Api<Deployment>, patch: Value) -> Value {
    let d = api
        .patch("d", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    serde_json::to_value(d).unwrap()
}

fn containers(patch: Value) -> Value {
    json!({"spec": {"template": {"spec": patch}}})
}

fn names(d: &Value, pointer: &str, key: &str) -> Vec<String> {
    d.pointer(pointer)
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|c| c[key].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn containers_merge_by_name_and_their_lists_by_their_keys() {
    let api = deployments().await;
    let d = smp(
        &api,
        containers(json!({"containers": [{"name": "app", "image": "app:2",
            "env": [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
            "args": ["--b"]}]})),
    )
    .await;
    let c = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        names(&d, "/spec/template/spec/containers", "name"),
        ["app", "sidecar"]
    );
    assert_eq!(c[0]["image"], "app:2");
    // env merges by name; args has no merge key and is replaced; ports are untouched.
    assert_eq!(
        c[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(c[0]["args"], json!(["--b"]));
    assert_eq!(
        c[0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(c[1]["image"], "side:1");
}

#[tokio::test]
async fn patch_delete_removes_one_item_and_replace_the_whole_list() {
    let api = deployments().await;
    let d = smp(
        &api,
        containers(json!({"containers": [{"name": "sidecar", "$patch": "delete"}]})),
    )
    .await;
    assert_eq!(names(&d, "/spec/template/spec/containers", "name"), ["app"]);

    let d = smp(
        &api,
        containers(
            json!({"containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]}),
        ),
    )
    .await;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"],
        json!([{"name": "only", "image": "o:1"}])
    );
    // A map-level $patch: replace swaps the whole map.
    let d = smp(
        &api,
        json!({"spec": {"template": {"metadata": {"$patch": "replace", "labels": {"app": "d", "v": "2"}}}}}),
    )
    .await;
    assert_eq!(
        d["spec"]["template"]["metadata"],
        json!({"labels": {"app": "d", "v": "2"}})
    );
}

#[tokio::test]
async fn retain_keys_clears_the_other_fields_of_the_strategy() {
    let api = deployments().await;
    // kubectl's patch to switch to Recreate: rollingUpdate must go.
    let d = smp(
        &api,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    )
    .await;
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    let err = api_error(
        api.patch(
            "d",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            ),
        )
        .await,
    );
    assert_eq!(err.code, 400);
    assert!(err.message.contains("rollingUpdate"), "{}", err.message);
}

#[tokio::test]
async fn set_element_order_reorders_and_primitive_lists_merge_or_shrink() {
    let api = deployments().await;
    let d = smp(
        &api,
        containers(json!({
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "sidecar", "image": "side:2"}]})),
    )
    .await;
    assert_eq!(
        names(&d, "/spec/template/spec/containers", "name"),
        ["sidecar", "app"]
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "side:2"
    );

    // Finalizers merge (patchStrategy merge) and $deleteFromPrimitiveList removes.
    let d = smp(&api, json!({"metadata": {"finalizers": ["example.com/b"]}})).await;
    assert_eq!(
        d["metadata"]["finalizers"],
        json!(["example.com/a", "example.com/b"])
    );
    let d = smp(
        &api,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
    )
    .await;
    assert_eq!(d["metadata"]["finalizers"], json!(["example.com/b"]));
}

#[tokio::test]
async fn service_ports_merge_by_port_and_unknown_directives_are_refused() {
    let (_server, client) = server();
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "s"},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], "selector": {"app": "s"}}}))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let patched = services
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ports": [{"port": 80, "name": "web"}, {"port": 443, "name": "https"}]}})),
        )
        .await
        .unwrap();
    let ports = serde_json::to_value(patched.spec.unwrap().ports.unwrap()).unwrap();
    assert_eq!(
        ports,
        json!([{"name": "web", "port": 80, "protocol": "TCP"}, {"name": "https", "port": 443}])
    );

    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let err = api_error(
        cms.patch(
            "c",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"$patch": "sideways"}})),
        )
        .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
    assert!(
        err.message.contains("Unknown patch type: sideways"),
        "{}",
        err.message
    );
}
