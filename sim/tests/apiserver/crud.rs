use crate::support::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use std::collections::BTreeMap;

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_get_replace_delete_round_trip() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let created = cms
        .create(&PostParams::default(), &config_map("c1", &[("k", "v")]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        created.metadata.generation, None,
        "ConfigMaps carry no generation"
    );

    let mut fetched = cms.get("c1").await.unwrap();
    assert_eq!(fetched, created);
    fetched.data = Some(BTreeMap::from([("k".to_string(), "w".to_string())]));
    let replaced = cms
        .replace("c1", &PostParams::default(), &fetched)
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "w");
    assert!(rv(&replaced.metadata) > rv(&created.metadata));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    let deleted = cms.delete("c1", &DeleteParams::default()).await.unwrap();
    let status = deleted
        .right()
        .expect("an object without finalizers is gone: a Status comes back");
    assert_eq!(status.details.unwrap().name, "c1");
    assert!(cms.get_opt("c1").await.unwrap().is_none());
}

#[tokio::test]
async fn generate_name_adds_a_five_character_suffix() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let mut cm = config_map("", &[]);
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("boot-".into());
    let a = cms.create(&PostParams::default(), &cm).await.unwrap();
    let b = cms.create(&PostParams::default(), &cm).await.unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("boot-") && a.len() == 10, "{a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn duplicate_create_is_already_exists() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    cms.create(&PostParams::default(), &config_map("c1", &[]))
        .await
        .unwrap();
    let err = api_error(
        cms.create(&PostParams::default(), &config_map("c1", &[]))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(err.message, "configmaps \"c1\" already exists");
}

#[tokio::test]
async fn missing_object_and_missing_namespace_are_not_found() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let err = api_error(cms.get("nope").await);
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.details.unwrap().kind, "configmaps");

    let elsewhere: Api<ConfigMap> = Api::namespaced(client, "no-such-namespace");
    let err = api_error(
        elsewhere
            .create(&PostParams::default(), &config_map("c1", &[]))
            .await,
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"no-such-namespace\" not found");
}

#[tokio::test]
async fn secret_string_data_is_stored_as_base64_data() {
    let (_server, client) = server();
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("bmc".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(
            "password".to_string(),
            "hunter2".to_string(),
        )])),
        ..Default::default()
    };
    let created = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    assert!(created.string_data.is_none());
    assert_eq!(created.data.unwrap()["password"].0, b"hunter2");
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
}

#[tokio::test]
async fn invalid_names_and_labels_are_422_with_a_cause_each() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let mut cm = config_map("Bad_Name", &[]);
    cm.metadata.labels = Some(BTreeMap::from([(
        "ok".to_string(),
        "not valid!".to_string(),
    )]));
    let err = api_error(cms.create(&PostParams::default(), &cm).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(fields, ["metadata.name", "metadata.labels"]);
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing half-written"
    );
}

#[tokio::test]
async fn cluster_wide_list_spans_namespaces() {
    let (_server, client) = server();
    create_namespace(&client, "other").await;
    for ns in ["default", "other"] {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        cms.create(&PostParams::default(), &config_map("c", &[]))
            .await
            .unwrap();
    }
    let all: Api<ConfigMap> = Api::all(client);
    let namespaces: Vec<String> = all
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.namespace)
        .collect();
    assert_eq!(namespaces, ["default", "other"]);
}

#[tokio::test]
async fn delete_collection_deletes_what_the_selector_matches() {
    let (_server, client) = server();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    for (name, pool) in [("a", "free"), ("b", "free"), ("c", "claimed")] {
        let mut cm = config_map(name, &[]);
        cm.metadata.labels = Some(BTreeMap::from([("pool".to_string(), pool.to_string())]));
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let deleted = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("pool=free"),
        )
        .await
        .unwrap()
        .left()
        .expect("a list of what was deleted");
    let names: Vec<String> = deleted
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["c"]);
}

#[tokio::test]
async fn services_get_a_cluster_ip_that_updates_keep() {
    use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
    let (_server, client) = server();
    let services: Api<Service> = Api::default_namespaced(client);
    let svc = Service {
        metadata: ObjectMeta {
            name: Some("callback".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                port: 8082,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = services.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.clone().unwrap();
    let ip = spec.cluster_ip.expect("a cluster IP");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let mut changed = created.clone();
    changed.spec.as_mut().unwrap().cluster_ip = None;
    changed.spec.as_mut().unwrap().cluster_ips = None;
    let replaced = services
        .replace("callback", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(
        replaced.spec.unwrap().cluster_ip.as_deref(),
        Some(ip.as_str()),
        "an update keeps the address"
    );
}
