//! What the Accept header selects: Tables, PartialObjectMetadata (kube's `list_metadata` and
//! `watch_metadata`), and the discovery forms, through the real kube client and raw requests.

use crate::support::*;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};
use std::sync::Arc;

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

async fn get(
    server: &Arc<beskar7_sim::apiserver::ApiServer>,
    uri: &str,
    accept: &str,
) -> (u16, String, Value) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .uri(uri)
        .header("accept", accept)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = server.router().oneshot(request).await.unwrap();
    let code = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        code,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn metadata_lists_and_watches_through_kube() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let mut w = widget("w1", 1);
    w.metadata.labels = Some([("tier".to_string(), "one".to_string())].into());
    widgets.create(&PostParams::default(), &w).await.unwrap();

    let list = widgets.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let meta = &list.items[0];
    assert_eq!(meta.metadata.name.as_deref(), Some("w1"));
    assert_eq!(meta.metadata.labels.as_ref().unwrap()["tier"], "one");
    assert_eq!(
        meta.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );

    let rv = list.metadata.resource_version.clone().unwrap();
    let mut stream = widgets
        .watch_metadata(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "two"}}})),
        )
        .await
        .unwrap();
    let event = within("metadata watch event", stream.try_next())
        .await
        .unwrap()
        .expect("an event");
    match event {
        WatchEvent::Modified(meta) => {
            assert_eq!(meta.metadata.labels.unwrap()["tier"], "two");
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }
}

#[tokio::test]
async fn tables_for_list_get_and_watch_respect_include_object() {
    let (server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    widgets
        .create(&PostParams::default(), &widget("w1", 3))
        .await
        .unwrap();
    let base = "/apis/example.com/v1/namespaces/default/widgets";

    let (code, content_type, table) = get(&server, base, TABLE).await;
    assert_eq!((code, content_type.as_str()), (200, "application/json"));
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // The Widget CRD declares no printer columns: Name and the Age the server adds.
    assert_eq!(columns, ["Name", "Age"]);
    assert_eq!(table["rows"][0]["cells"][0], "w1");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert!(table["metadata"]["resourceVersion"].is_string());

    let (_, _, full) = get(&server, &format!("{base}/w1?includeObject=Object"), TABLE).await;
    assert_eq!(full["rows"].as_array().unwrap().len(), 1);
    assert_eq!(full["rows"][0]["object"]["spec"]["size"], 3);
    let (_, _, bare) = get(&server, &format!("{base}?includeObject=None"), TABLE).await;
    assert!(bare["rows"][0].get("object").is_none());
    let (code, _, bad) = get(&server, &format!("{base}?includeObject=All"), TABLE).await;
    assert_eq!(code, 400);
    assert!(bad["message"].as_str().unwrap().contains("includeObject"));

    let beta = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
    let (_, _, old) = get(&server, base, beta).await;
    assert_eq!(old["apiVersion"], "meta.k8s.io/v1beta1");

    // Plain JSON and protobuf-only Accept headers get the objects.
    let (_, _, list) = get(&server, base, "application/json").await;
    assert_eq!(list["kind"], "WidgetList");
    let (_, _, list) = get(&server, base, "application/vnd.kubernetes.protobuf").await;
    assert_eq!(list["kind"], "WidgetList");

    // A watch in Table form: each event's object is a one-row Table.
    let rv = table["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let watch = {
        let server = server.clone();
        let uri = format!("{base}?watch=true&resourceVersion={rv}&timeoutSeconds=2");
        tokio::spawn(async move { get_lines(&server, &uri, TABLE).await })
    };
    // The events may be logged before or after the watch starts: both deliver them.
    for size in [4, 5] {
        widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": size}})),
            )
            .await
            .unwrap();
    }
    let lines = within("table watch", watch).await.unwrap();
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{lines:?}");
    for event in &events {
        assert_eq!(event["type"], "MODIFIED");
        assert_eq!(event["object"]["kind"], "Table");
        assert_eq!(event["object"]["rows"][0]["cells"][0], "w1");
    }
    // As on the real server, only the first event carries the column definitions.
    assert_eq!(events[0]["object"]["columnDefinitions"][0]["name"], "Name");
    assert!(events[1]["object"]["columnDefinitions"].is_null());
}

/// A whole watch response (it ends at `timeoutSeconds`), split into lines.
async fn get_lines(
    server: &Arc<beskar7_sim::apiserver::ApiServer>,
    uri: &str,
    accept: &str,
) -> Vec<String> {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .uri(uri)
        .header("accept", accept)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = server.router().oneshot(request).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn discovery_answers_the_form_asked_for() {
    let (server, client) = server();
    install_widgets(&client).await;
    let v2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    let v2beta1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

    let (_, content_type, groups) = get(
        &server,
        "/apis",
        &format!("{v2},{v2beta1},application/json"),
    )
    .await;
    assert_eq!(content_type, v2);
    let widgets = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "example.com")
        .expect("a new CRD's group is discovered at once");
    let resource = &widgets["versions"][0]["resources"][0];
    assert_eq!(resource["resource"], "widgets");
    assert_eq!(resource["shortNames"], json!(["wd"]));
    assert_eq!(resource["responseKind"]["kind"], "Widget");
    assert_eq!(resource["subresources"][0]["subresource"], "status");

    let (_, content_type, core) =
        get(&server, "/api", &format!("{v2beta1},application/json")).await;
    assert_eq!(content_type, v2beta1);
    assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2beta1");

    let (_, content_type, legacy) = get(&server, "/apis", "application/json, */*").await;
    assert_eq!(content_type, "application/json");
    assert_eq!(legacy["kind"], "APIGroupList");
    let (_, _, per_gv) = get(&server, "/apis/example.com/v1", "application/json").await;
    assert_eq!(per_gv["kind"], "APIResourceList");
}

#[tokio::test]
async fn openapi_v3_describes_crds_and_builtins() {
    let (server, client) = server();
    install_widgets(&client).await;
    let (code, _, index) = get(&server, "/openapi/v3", "application/json").await;
    assert_eq!(code, 200);
    let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _, doc) = get(&server, &url, "application/json").await;
    assert_eq!(code, 200);
    let widget = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"][0]["kind"],
        "Widget"
    );
    assert!(widget["properties"]["spec"]["properties"]["size"].is_object());
    let (code, _, core) = get(&server, "/openapi/v3/api/v1", "application/json").await;
    assert_eq!(code, 200);
    assert!(core["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"].is_object());
    let (code, _, _) = get(
        &server,
        "/openapi/v3/apis/nope.example/v1",
        "application/json",
    )
    .await;
    assert_eq!(code, 404);
}
