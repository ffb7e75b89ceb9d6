//! The Cluster API types Beskar7 reads, and the provider ID.

use beskar7::api::capi::{self, Cluster, Machine};
use beskar7::api::{
    Beskar7Machine, Beskar7MachineSpec, Handoff, InvalidProviderId, PhysicalHost, ProviderId,
};
use kube::Resource;
use serde_json::json;

/// A Machine as CAPI v1.14 stores it, with fields Beskar7 does not model.
fn machine_json() -> serde_json::Value {
    json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Machine",
        "metadata": {
            "name": "worker-01", "namespace": "default", "uid": "u-1",
            "labels": {"cluster.x-k8s.io/cluster-name": "my-cluster"},
            "ownerReferences": [
                {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineSet", "name": "ms", "uid": "u-2"}
            ]
        },
        "spec": {
            "clusterName": "my-cluster",
            "version": "v1.33.1",
            "bootstrap": {
                "configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": "worker-01"},
                "dataSecretName": "worker-01-bootstrap"
            },
            "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Machine", "name": "worker-01"},
            "failureDomain": "rack-1",
            "deletion": {"nodeDrainTimeoutSeconds": 10},
            "someFutureField": {"x": 1}
        },
        "status": {"phase": "Provisioning", "conditions": [{"type": "Ready", "status": "False"}]}
    })
}

#[test]
fn a_capi_machine_reads_with_unknown_fields() {
    let m: Machine = serde_json::from_value(machine_json()).unwrap();
    assert_eq!(m.spec.cluster_name.as_deref(), Some("my-cluster"));
    assert_eq!(m.bootstrap_data_secret_name(), Some("worker-01-bootstrap"));
    assert_eq!(m.spec.failure_domain.as_deref(), Some("rack-1"));
    let infra = m.spec.infrastructure_ref.as_ref().unwrap();
    assert_eq!(
        (infra.api_group.as_str(), infra.kind.as_str()),
        ("infrastructure.cluster.x-k8s.io", "Beskar7Machine")
    );

    let mut waiting = machine_json();
    waiting["spec"]["bootstrap"]
        .as_object_mut()
        .unwrap()
        .remove("dataSecretName");
    let m: Machine = serde_json::from_value(waiting).unwrap();
    assert_eq!(
        m.bootstrap_data_secret_name(),
        None,
        "wait for the bootstrap provider"
    );

    let minimal: Machine = serde_json::from_value(json!({"metadata": {"name": "m"}})).unwrap();
    assert_eq!(minimal.bootstrap_data_secret_name(), None);
}

#[test]
fn the_capi_types_address_the_v1beta2_api() {
    assert_eq!(Machine::api_version(&()), "cluster.x-k8s.io/v1beta2");
    assert_eq!(
        Machine::url_path(&(), Some("ns")),
        "/apis/cluster.x-k8s.io/v1beta2/namespaces/ns/machines"
    );
    assert_eq!(
        Cluster::url_path(&(), Some("ns")),
        "/apis/cluster.x-k8s.io/v1beta2/namespaces/ns/clusters"
    );
    assert_eq!(Cluster::kind(&()), "Cluster");
}

#[test]
fn a_capi_cluster_reads_pause_endpoint_and_provisioning() {
    let mut c = json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Cluster",
        "metadata": {"name": "my-cluster", "namespace": "default"},
        "spec": {
            "paused": true,
            "controlPlaneEndpoint": {"host": "192.168.1.10", "port": 6443},
            "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Cluster", "name": "my-cluster"},
            "topology": {"classRef": {"name": "x"}}
        },
        "status": {"initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": false}}
    });
    let cluster: Cluster = serde_json::from_value(c.clone()).unwrap();
    assert!(cluster.is_paused());
    assert!(cluster.infrastructure_provisioned());
    let ep = cluster.control_plane_endpoint().unwrap();
    assert_eq!((ep.host.as_str(), ep.port), ("192.168.1.10", 6443));

    c["spec"]["paused"] = json!(false);
    c["spec"]["controlPlaneEndpoint"] = json!({"host": "", "port": 0});
    c["status"] = json!({});
    let cluster: Cluster = serde_json::from_value(c.clone()).unwrap();
    assert!(!cluster.is_paused());
    assert!(!cluster.infrastructure_provisioned());
    assert!(
        cluster.control_plane_endpoint().is_none(),
        "an empty endpoint is not an endpoint"
    );

    c["metadata"]["annotations"] = json!({"cluster.x-k8s.io/paused": ""});
    let cluster: Cluster = serde_json::from_value(c).unwrap();
    assert!(
        cluster.is_paused(),
        "the paused annotation counts, whatever its value"
    );
}

#[test]
fn owners_are_found_by_kind_and_group_not_version_or_uid() {
    let mut machine: Beskar7Machine = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "Beskar7Machine",
        "metadata": {"name": "worker-01", "ownerReferences": [
            {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "Machine", "name": "not-capi", "uid": "a"},
            {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineSet", "name": "ms", "uid": "b"}
        ]},
        "spec": {"inspectionImageURL": "http://b/x", "targetImageURL": "http://b/y"}
    }))
    .unwrap();
    assert!(
        capi::machine_owner(machine.meta()).is_none(),
        "no CAPI Machine owner yet"
    );
    machine.metadata.owner_references.as_mut().unwrap().push(
        serde_json::from_value(json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine", "name": "worker-01", "uid": "c"})).unwrap(),
    );
    assert_eq!(
        capi::machine_owner(machine.meta()).unwrap().name,
        "worker-01"
    );
    assert!(capi::cluster_owner(machine.meta()).is_none());
}

#[test]
fn provider_ids_format_and_parse() {
    let id = ProviderId::new("default", "server-01", "worker-01");
    assert_eq!(id.to_string(), "b7://default/server-01/worker-01");
    assert_eq!(
        "b7://default/server-01/worker-01".parse::<ProviderId>(),
        Ok(id)
    );
    for bad in [
        "",
        "b7://",
        "b7://a/b",
        "b7://a/b/c/d",
        "b7://a//c",
        "metal3://a/b/c",
    ] {
        assert_eq!(
            bad.parse::<ProviderId>(),
            Err(InvalidProviderId(bad.to_owned())),
            "{bad}"
        );
    }
}

#[test]
fn the_handoff_defaults_to_image_with_a_digest_else_kexec() {
    let mut spec = Beskar7MachineSpec::default();
    assert_eq!(spec.effective_handoff(), Handoff::Kexec);
    spec.images.target_image_digest = Some(format!("sha256:{}", "a".repeat(64)));
    assert_eq!(spec.effective_handoff(), Handoff::Image);
    spec.handoff = Some(Handoff::Kexec);
    assert_eq!(spec.effective_handoff(), Handoff::Kexec);
}

#[test]
fn host_helpers() {
    let host: PhysicalHost = serde_json::from_value(super::support::full_host()).unwrap();
    assert!(host.is_claimed());
    assert_eq!(host.state(), None);
}
