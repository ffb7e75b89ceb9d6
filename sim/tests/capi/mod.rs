//! The CAPI stand-in against the sim apiserver with CAPI's CRDs (v1beta2) and Beskar7's own.

use crate::support::{create_namespace, server};
use beskar7_sim::capi::{CapiStandIn, MachineOptions, objects};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const NS: &str = "capi-test";
const WAIT: Duration = Duration::from_secs(20);

async fn setup() -> (Client, CapiStandIn) {
    let (apiserver, client) = server();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    apiserver
        .load_crds(&root.join("../../shared/fixtures/capi-crds"))
        .expect("CAPI CRDs");
    apiserver.load_crds(&root.join("../crds")).expect("crds/");
    create_namespace(&client, NS).await;
    let capi = CapiStandIn::new(client.clone(), NS);
    capi.create_template(
        "plain",
        json!({"inspectionImageURL": "http://images.example.invalid/agent",
            "targetImageURL": "http://images.example.invalid/other.raw",
            "handoff": "Kexec"}),
    )
    .await
    .expect("template through create_template");
    let templates = capi.api_for("Beskar7MachineTemplate").await;
    let template: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "Beskar7MachineTemplate",
        "metadata": {"name": "workers", "namespace": NS},
        "spec": {"template": {"metadata": {"labels": {"pool": "workers"}}, "spec": {
            "inspectionImageURL": "http://images.example.invalid/agent",
            "targetImageURL": "http://images.example.invalid/kairos.raw",
            "targetImageDigest": format!("sha256:{}", "a".repeat(64))}}}
    }))
    .unwrap();
    templates
        .create(&PostParams::default(), &template)
        .await
        .expect("template");
    tokio::spawn(capi.clone().run());
    capi.create_cluster("c1", json!({}), Some(("192.0.2.100", 6443)))
        .await
        .expect("cluster");
    (client, capi)
}

trait InfraApi {
    async fn api_for(&self, kind: &str) -> Api<DynamicObject>;
}

impl InfraApi for CapiStandIn {
    async fn api_for(&self, kind: &str) -> Api<DynamicObject> {
        let ar = self.infra(kind).await.expect("contract label");
        Api::namespaced_with(self.client(), NS, &ar)
    }
}

async fn wait<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test]
async fn a_cluster_of_machines_has_owner_refs_labels_bootstrap_secrets_and_cloned_infra_machines() {
    let (_client, capi) = setup().await;
    let names = capi.create_machines("c1", "workers", 3, 1).await.unwrap();
    assert_eq!(names, ["c1-cp-0", "c1-md-0", "c1-md-1"]);

    let cluster = capi.clusters().get("c1").await.unwrap();
    assert_eq!(
        cluster.data["spec"]["infrastructureRef"],
        json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Cluster", "name": "c1"})
    );
    assert_eq!(cluster.data["spec"]["controlPlaneEndpoint"]["port"], 6443);
    let b7c = capi
        .api_for("Beskar7Cluster")
        .await
        .get("c1")
        .await
        .unwrap();
    let owner = &b7c.owner_references()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.controller,
            owner.uid.as_str()
        ),
        ("Cluster", "c1", Some(true), cluster.uid().unwrap().as_str())
    );
    assert_eq!(b7c.labels()["cluster.x-k8s.io/cluster-name"], "c1");

    let b7ms = capi.api_for("Beskar7Machine").await;
    for name in &names {
        let machine = capi.machines().get(name).await.unwrap();
        assert_eq!(
            machine.types.as_ref().unwrap().api_version,
            "cluster.x-k8s.io/v1beta2"
        );
        assert_eq!(machine.labels()["cluster.x-k8s.io/cluster-name"], "c1");
        assert_eq!(
            machine
                .labels()
                .contains_key("cluster.x-k8s.io/control-plane"),
            name.contains("-cp-")
        );
        assert_eq!(machine.data["spec"]["clusterName"], "c1");
        assert_eq!(
            machine.data["spec"]["bootstrap"]["dataSecretName"],
            name.as_str()
        );
        assert_eq!(
            machine.data["spec"]["infrastructureRef"],
            json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Machine", "name": name})
        );
        assert_eq!(machine.finalizers(), ["machine.cluster.x-k8s.io"]);
        assert_eq!(machine.owner_references()[0].kind, "Cluster");
        assert_eq!(machine.data["status"]["phase"], "Provisioning");

        let secret = capi.secrets().get(name).await.unwrap();
        assert_eq!(secret.type_.as_deref(), Some("cluster.x-k8s.io/secret"));
        assert_eq!(secret.labels()["cluster.x-k8s.io/cluster-name"], "c1");
        let value = String::from_utf8(secret.data.as_ref().unwrap()["value"].0.clone()).unwrap();
        assert_eq!(value, objects::kubeadm_bootstrap("c1", name));
        assert!(value.contains("- name: provider-id\n        value: BESKAR7_PROVIDER_ID"));
        assert_eq!(secret.owner_references()[0].uid, machine.uid().unwrap());

        let b7m = b7ms.get(name).await.unwrap();
        let owner = &b7m.owner_references()[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.controller
            ),
            ("cluster.x-k8s.io/v1beta2", "Machine", Some(true))
        );
        assert_eq!(owner.uid, machine.uid().unwrap());
        assert_eq!(b7m.labels()["cluster.x-k8s.io/cluster-name"], "c1");
        assert_eq!(b7m.labels()["pool"], "workers", "template metadata");
        assert_eq!(
            b7m.annotations()["cluster.x-k8s.io/cloned-from-name"],
            "workers"
        );
        assert_eq!(
            b7m.data["spec"]["targetImageURL"],
            "http://images.example.invalid/kairos.raw"
        );
    }
}

async fn provision_infra_machine(b7ms: &Api<DynamicObject>, name: &str, provider_id: &str) {
    let pp = PatchParams::default();
    b7ms.patch(
        name,
        &pp,
        &Patch::Merge(json!({"spec": {"providerID": provider_id}})),
    )
    .await
    .unwrap();
    b7ms.patch_status(
        name,
        &pp,
        &Patch::Merge(json!({"status": {"initialization": {"provisioned": true},
            "addresses": [{"type": "InternalIP", "address": "192.0.2.21"}]}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn provider_id_and_provisioned_status_appear_on_the_machine_and_cluster() {
    let (_client, capi) = setup().await;
    capi.create_machines("c1", "workers", 1, 0).await.unwrap();
    let b7ms = capi.api_for("Beskar7Machine").await;
    provision_infra_machine(&b7ms, "c1-md-0", "b7://capi-test/host-1/c1-md-0").await;

    let machine = wait("the Machine", capi.wait_machine_provisioned("c1-md-0"))
        .await
        .unwrap();
    assert_eq!(
        machine.data["spec"]["providerID"],
        "b7://capi-test/host-1/c1-md-0"
    );
    assert_eq!(machine.data["status"]["phase"], "Provisioned");
    assert_eq!(
        machine.data["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "192.0.2.21"}])
    );
    assert_eq!(
        machine.data["status"]["initialization"],
        json!({"bootstrapDataSecretCreated": true, "infrastructureProvisioned": true})
    );

    let b7cs = capi.api_for("Beskar7Cluster").await;
    b7cs.patch_status(
        "c1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"initialization": {"provisioned": true}}})),
    )
    .await
    .unwrap();
    wait(
        "the Cluster",
        await_condition(capi.clusters(), "c1", |c: Option<&DynamicObject>| {
            c.is_some_and(|c| {
                c.data["status"]["initialization"]["infrastructureProvisioned"] == true
            })
        }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_paused_cluster_holds_the_mirror_until_unpaused() {
    let (_client, capi) = setup().await;
    capi.create_machines("c1", "workers", 1, 0).await.unwrap();
    capi.set_paused("c1", true).await.unwrap();
    let cluster = capi.clusters().get("c1").await.unwrap();
    assert_eq!(cluster.data["spec"]["paused"], true);

    let b7ms = capi.api_for("Beskar7Machine").await;
    provision_infra_machine(&b7ms, "c1-md-0", "b7://capi-test/host-1/c1-md-0").await;
    // A bounded look for something that must not happen.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let machine = capi.machines().get("c1-md-0").await.unwrap();
    assert!(
        machine.data["spec"]["providerID"].is_null(),
        "paused: nothing mirrored"
    );

    capi.set_paused("c1", false).await.unwrap();
    let machine = wait("the Machine", capi.wait_machine_provisioned("c1-md-0"))
        .await
        .unwrap();
    assert_eq!(
        machine.data["spec"]["providerID"],
        "b7://capi-test/host-1/c1-md-0"
    );
}

#[tokio::test]
async fn deleting_a_machine_waits_for_the_infra_machines_finalizer() {
    let (_client, capi) = setup().await;
    capi.create_machines("c1", "workers", 1, 0).await.unwrap();
    let b7ms = capi.api_for("Beskar7Machine").await;
    let pp = PatchParams::default();
    // What the operator's finalizer does: hold the Beskar7Machine until the host is released.
    b7ms.patch(
        "c1-md-0",
        &pp,
        &Patch::Merge(
            json!({"metadata": {"finalizers": ["infrastructure.cluster.x-k8s.io/beskar7machine"]}}),
        ),
    )
    .await
    .unwrap();

    let deletion = tokio::spawn({
        let capi = capi.clone();
        async move { capi.delete_machine("c1-md-0").await }
    });
    wait(
        "the Beskar7Machine's deletion",
        await_condition(b7ms.clone(), "c1-md-0", |m: Option<&DynamicObject>| {
            m.is_some_and(|m| m.metadata.deletion_timestamp.is_some())
        }),
    )
    .await
    .unwrap();
    let machine = capi.machines().get("c1-md-0").await.unwrap();
    assert!(machine.metadata.deletion_timestamp.is_some());
    assert_eq!(
        machine.finalizers(),
        ["machine.cluster.x-k8s.io"],
        "held by its finalizer"
    );
    assert!(capi.secrets().get_opt("c1-md-0").await.unwrap().is_some());
    assert!(!deletion.is_finished());

    b7ms.patch(
        "c1-md-0",
        &pp,
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait("the deletion", deletion).await.unwrap().unwrap();
    assert!(capi.machines().get_opt("c1-md-0").await.unwrap().is_none());
    assert!(b7ms.get_opt("c1-md-0").await.unwrap().is_none());
    assert!(capi.secrets().get_opt("c1-md-0").await.unwrap().is_none());
}

#[tokio::test]
async fn a_machine_from_create_template_with_its_own_bootstrap_data() {
    let (_client, capi) = setup().await;
    let options = MachineOptions {
        bootstrap: Some("#cloud-config\nprovider: BESKAR7_PROVIDER_ID\n".into()),
        ..MachineOptions::default()
    };
    capi.create_machine("c1", "m-plain", "plain", &options)
        .await
        .unwrap();
    let b7m = capi
        .api_for("Beskar7Machine")
        .await
        .get("m-plain")
        .await
        .unwrap();
    assert_eq!(b7m.data["spec"]["handoff"], "Kexec");
    assert_eq!(
        b7m.annotations()["cluster.x-k8s.io/cloned-from-name"],
        "plain"
    );
    assert!(!b7m.labels().contains_key("pool"));
    let secret = capi.secrets().get("m-plain").await.unwrap();
    assert_eq!(
        secret.data.as_ref().unwrap()["value"].0,
        b"#cloud-config\nprovider: BESKAR7_PROVIDER_ID\n"
    );
}
