//! The Beskar7Cluster controller in the real manager: waits for its owner Cluster, takes the
//! endpoint from its spec or the Cluster's, reports failure domains from the hosts' zone labels,
//! honours pause and skips externally managed objects.

use beskar7::api::Beskar7Cluster;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::capi_env::{Env, NS};
use super::dead_address;

const ZONE: &str = "topology.kubernetes.io/zone";

fn reason(c: &Beskar7Cluster, t: &str) -> Option<(String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == t)
        .map(|x| (x.status.clone(), x.reason.clone()))
}

fn provisioned(c: &Beskar7Cluster) -> bool {
    c.status
        .as_ref()
        .and_then(|s| s.initialization.as_ref())
        .and_then(|i| i.provisioned)
        == Some(true)
}

fn zones(c: &Beskar7Cluster) -> Vec<(String, Option<bool>)> {
    c.status
        .as_ref()
        .map(|s| {
            s.failure_domains
                .iter()
                .map(|f| (f.name.clone(), f.control_plane))
                .collect()
        })
        .unwrap_or_default()
}

async fn b7c(
    env: &Env,
    name: &str,
    owner: Option<(&str, &str)>,
    spec: serde_json::Value,
    annotations: serde_json::Value,
) {
    let mut meta = json!({"name": name, "annotations": annotations});
    if let Some((n, uid)) = owner {
        // Since CAPI 1.13 a plain (non-controller) ownerRef unless the Cluster has a topology.
        meta["ownerReferences"] = json!([{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": n, "uid": uid}]);
    }
    let obj: Beskar7Cluster = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "Beskar7Cluster",
        "metadata": meta,
        "spec": spec,
    }))
    .unwrap();
    env.b7cs()
        .create(&PostParams::default(), &obj)
        .await
        .expect("create Beskar7Cluster");
}

async fn cluster_uid(env: &Env, name: &str) -> String {
    env.clusters().get(name).await.unwrap().uid().unwrap()
}

async fn wait_b7c(
    env: &Env,
    name: &str,
    what: &str,
    cond: impl Fn(&Beskar7Cluster) -> bool + Send + 'static,
) -> Beskar7Cluster {
    let api = env.b7cs();
    let r = tokio::time::timeout(
        super::GUARD,
        kube::runtime::wait::await_condition(
            api.clone(),
            name,
            move |c: Option<&Beskar7Cluster>| c.is_some_and(&cond),
        ),
    )
    .await;
    match r {
        Ok(Ok(Some(c))) => c,
        _ => panic!(
            "Beskar7Cluster {name} never became {what}; now: {:#?}\n{}",
            api.get_opt(name).await.ok().flatten(),
            env.log_tail()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_from_spec_makes_it_provisioned_and_zones_become_failure_domains() {
    let mut env = Env::start().await;
    // Zones come from labels only: these hosts need not be reachable.
    let dead = dead_address();
    env.cluster
        .host(NS, "a1", &dead, "bmc", json!({"labels": {ZONE: "zone-a"}}))
        .await;
    env.cluster
        .host(NS, "a2", &dead, "bmc", json!({"labels": {ZONE: "zone-a"}}))
        .await;
    env.cluster
        .host(NS, "nozone", &dead, "bmc", json!({}))
        .await;

    // No owner yet.
    b7c(
        &env,
        "c1",
        None,
        json!({"controlPlaneEndpoint": {"host": "10.0.0.100", "port": 6443}}),
        json!({}),
    )
    .await;
    let c = wait_b7c(&env, "c1", "WaitingForClusterOwner", |c| {
        reason(c, "Ready").is_some_and(|r| r.1 == "WaitingForClusterOwner")
    })
    .await;
    assert!(!provisioned(&c));

    env.capi_cluster("c1", json!({}), false).await;
    let uid = cluster_uid(&env, "c1").await;
    env.b7cs()
        .patch("c1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": "c1", "uid": uid}]}})))
        .await
        .unwrap();
    let c = wait_b7c(&env, "c1", "provisioned", provisioned).await;
    assert_eq!(
        reason(&c, "Ready"),
        Some(("True".into(), "Provisioned".into()))
    );
    assert_eq!(
        reason(&c, "Paused"),
        Some(("False".into(), "NotPaused".into()))
    );
    assert_eq!(zones(&c), vec![("zone-a".to_owned(), Some(true))]);

    // A host in a new zone appears: the failure domains follow.
    env.add_host_nowait("b1", json!({ZONE: "zone-b"}), 8, 16)
        .await;
    let c = wait_b7c(&env, "c1", "two zones", |c| zones(c).len() == 2).await;
    assert_eq!(
        zones(&c),
        vec![
            ("zone-a".to_owned(), Some(true)),
            ("zone-b".to_owned(), Some(true))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_is_copied_from_the_cluster_when_the_spec_has_none() {
    let env = Env::start().await;
    env.capi_cluster("c1", json!({}), false).await;
    let uid = cluster_uid(&env, "c1").await;
    b7c(&env, "c1", Some(("c1", &uid)), json!({}), json!({})).await;
    let c = wait_b7c(&env, "c1", "WaitingForControlPlaneEndpoint", |c| {
        reason(c, "Ready").is_some_and(|r| r.1 == "WaitingForControlPlaneEndpoint")
    })
    .await;
    assert!(!provisioned(&c));
    env.patch_cluster(
        "c1",
        json!({"spec": {"controlPlaneEndpoint": {"host": "vip.example", "port": 7443}}}),
    )
    .await;
    let c = wait_b7c(&env, "c1", "provisioned", provisioned).await;
    let e = c
        .spec
        .control_plane_endpoint
        .expect("written back into the spec");
    assert_eq!((e.host.as_str(), e.port), ("vip.example", 7443));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_cluster_and_an_externally_managed_one_are_left_alone() {
    let env = Env::start().await;
    env.capi_cluster("c1", json!({"paused": true}), false).await;
    let uid = cluster_uid(&env, "c1").await;
    // Externally managed: never touched.
    b7c(
        &env,
        "managed",
        Some(("c1", &uid)),
        json!({"controlPlaneEndpoint": {"host": "10.0.0.1", "port": 6443}}),
        json!({"cluster.x-k8s.io/managed-by": "someone-else"}),
    )
    .await;
    b7c(
        &env,
        "c1",
        Some(("c1", &uid)),
        json!({"controlPlaneEndpoint": {"host": "10.0.0.100", "port": 6443}}),
        json!({}),
    )
    .await;
    let c = wait_b7c(&env, "c1", "Paused", |c| {
        reason(c, "Paused").is_some_and(|r| r.0 == "True")
    })
    .await;
    assert!(
        !provisioned(&c),
        "nothing but the Paused condition while paused"
    );
    assert!(reason(&c, "Ready").is_none());

    env.patch_cluster("c1", json!({"spec": {"paused": false}}))
        .await;
    wait_b7c(&env, "c1", "provisioned after unpause", provisioned).await;
    // Both objects were created before; the managed one was reconciled no later than c1's
    // last change would have been, and it never got a status.
    let managed = env.b7cs().get("managed").await.unwrap();
    assert!(managed.status.is_none(), "{:?}", managed.status);
}
