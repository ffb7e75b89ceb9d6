//! The objects the stand-in writes, as CAPI v1beta2 shapes them (pure functions, so the shapes
//! are unit-tested without a server).

use serde_json::{Value, json};

pub const CAPI_GROUP: &str = "cluster.x-k8s.io";
pub const CAPI_API_VERSION: &str = "cluster.x-k8s.io/v1beta2";
pub const INFRA_GROUP: &str = "infrastructure.cluster.x-k8s.io";
pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
pub const CONTROL_PLANE_LABEL: &str = "cluster.x-k8s.io/control-plane";
/// The Machine controller's finalizer: it deletes the InfraMachine and waits for it first.
pub const MACHINE_FINALIZER: &str = "machine.cluster.x-k8s.io";
pub const BOOTSTRAP_SECRET_TYPE: &str = "cluster.x-k8s.io/secret";
/// What templates put where the provider ID goes (inspector-contract.md §2).
pub const PROVIDER_ID_TOKEN: &str = "BESKAR7_PROVIDER_ID";

/// An ownerReference to an object that exists (its uid known).
pub fn owner_ref(api_version: &str, kind: &str, name: &str, uid: &str, controller: bool) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
        "controller": controller, "blockOwnerDeletion": true})
}

pub fn cluster(
    namespace: &str,
    name: &str,
    infra_kind: &str,
    control_plane_endpoint: Option<(&str, u16)>,
) -> Value {
    let mut spec = json!({
        "infrastructureRef": {"apiGroup": INFRA_GROUP, "kind": infra_kind, "name": name},
    });
    if let Some((host, port)) = control_plane_endpoint {
        spec["controlPlaneEndpoint"] = json!({"host": host, "port": port});
    }
    json!({"apiVersion": CAPI_API_VERSION, "kind": "Cluster",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}

/// kubeadm-like bootstrap data: the provider ID token in `kubeletExtraArgs` list form (CAPI
/// v1beta2), in both init and join configuration, as cluster templates write it.
pub fn kubeadm_bootstrap(cluster: &str, machine: &str) -> String {
    format!(
        "## template: jinja\n#cloud-config\n# cluster {cluster}, machine {machine}\n\
write_files:\n- path: /run/kubeadm/kubeadm.yaml\n  owner: root:root\n  permissions: '0640'\n  content: |\n\
    apiVersion: kubeadm.k8s.io/v1beta4\n    kind: InitConfiguration\n    nodeRegistration:\n\
      kubeletExtraArgs:\n      - name: provider-id\n        value: {PROVIDER_ID_TOKEN}\n\
    ---\n    apiVersion: kubeadm.k8s.io/v1beta4\n    kind: JoinConfiguration\n    nodeRegistration:\n\
      kubeletExtraArgs:\n      - name: provider-id\n        value: {PROVIDER_ID_TOKEN}\n\
runcmd:\n- kubeadm init --config /run/kubeadm/kubeadm.yaml\n"
    )
}

pub fn bootstrap_secret(namespace: &str, cluster: &str, machine: &str, value: &str) -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({"apiVersion": "v1", "kind": "Secret", "type": BOOTSTRAP_SECRET_TYPE,
        "metadata": {"name": machine, "namespace": namespace,
            "labels": {CLUSTER_NAME_LABEL: cluster}},
        "data": {"value": b64(value), "format": b64("cloud-config")}})
}

pub struct MachineShape<'a> {
    pub namespace: &'a str,
    pub cluster: &'a str,
    pub name: &'a str,
    pub infra_kind: &'a str,
    pub control_plane: bool,
    pub version: &'a str,
}

pub fn machine(m: &MachineShape<'_>, cluster_owner: Value) -> Value {
    let mut labels = json!({CLUSTER_NAME_LABEL: m.cluster});
    if m.control_plane {
        labels[CONTROL_PLANE_LABEL] = json!("");
    }
    json!({"apiVersion": CAPI_API_VERSION, "kind": "Machine",
        "metadata": {"name": m.name, "namespace": m.namespace, "labels": labels,
            "finalizers": [MACHINE_FINALIZER], "ownerReferences": [cluster_owner]},
        "spec": {"clusterName": m.cluster, "version": m.version,
            "bootstrap": {"dataSecretName": m.name},
            "infrastructureRef": {"apiGroup": INFRA_GROUP, "kind": m.infra_kind, "name": m.name}}})
}

/// The InfraMachine cloned from its template the way CAPI clones one (`GenerateTemplate`): the
/// Machine's name and labels, the template's metadata and spec, the cloned-from annotations,
/// and the Machine as its controller owner.
pub fn clone_from_template(
    template: &Value,
    machine: &Value,
    infra_api_version: &str,
    machine_owner: Value,
) -> Value {
    let kind = template["kind"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches("Template");
    let tmeta = &template["spec"]["template"]["metadata"];
    let mut labels = machine["metadata"]["labels"].clone();
    if let Some(extra) = tmeta["labels"].as_object() {
        for (k, v) in extra {
            labels[k] = v.clone();
        }
    }
    let mut annotations = tmeta["annotations"].clone();
    if !annotations.is_object() {
        annotations = json!({});
    }
    annotations["cluster.x-k8s.io/cloned-from-name"] = template["metadata"]["name"].clone();
    annotations["cluster.x-k8s.io/cloned-from-groupkind"] =
        json!(format!("{}Template.{INFRA_GROUP}", kind));
    json!({"apiVersion": infra_api_version, "kind": kind,
        "metadata": {"name": machine["metadata"]["name"], "namespace": machine["metadata"]["namespace"],
            "labels": labels, "annotations": annotations, "ownerReferences": [machine_owner]},
        "spec": template["spec"]["template"]["spec"].clone()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cloned_infra_machine_carries_the_machines_identity_and_the_templates_spec() {
        let shape = MachineShape {
            namespace: "ns",
            cluster: "c1",
            name: "c1-cp-0",
            infra_kind: "Beskar7Machine",
            control_plane: true,
            version: "v1.33.0",
        };
        let m = machine(
            &shape,
            owner_ref(CAPI_API_VERSION, "Cluster", "c1", "u1", false),
        );
        assert_eq!(m["spec"]["infrastructureRef"]["apiGroup"], INFRA_GROUP);
        assert_eq!(m["spec"]["bootstrap"]["dataSecretName"], "c1-cp-0");
        let template = json!({"kind": "Beskar7MachineTemplate", "metadata": {"name": "tpl"},
            "spec": {"template": {"metadata": {"labels": {"role": "cp"}},
                "spec": {"targetImageURL": "http://i/x.raw"}}}});
        let owner = owner_ref(CAPI_API_VERSION, "Machine", "c1-cp-0", "u2", true);
        let b7m = clone_from_template(
            &template,
            &m,
            "infrastructure.cluster.x-k8s.io/v1beta1",
            owner,
        );
        assert_eq!(b7m["kind"], "Beskar7Machine");
        assert_eq!(b7m["metadata"]["name"], "c1-cp-0");
        assert_eq!(b7m["metadata"]["labels"][CLUSTER_NAME_LABEL], "c1");
        assert_eq!(b7m["metadata"]["labels"]["role"], "cp");
        assert_eq!(
            b7m["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-groupkind"],
            "Beskar7MachineTemplate.infrastructure.cluster.x-k8s.io"
        );
        assert_eq!(b7m["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(b7m["spec"]["targetImageURL"], "http://i/x.raw");
    }

    #[test]
    fn bootstrap_data_carries_the_provider_id_token_in_list_form() {
        let data = kubeadm_bootstrap("c1", "m1");
        assert_eq!(
            data.matches("- name: provider-id\n        value: BESKAR7_PROVIDER_ID")
                .count(),
            2
        );
    }
}
