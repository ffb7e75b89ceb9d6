//! `Beskar7Cluster`: Cluster API's InfraCluster for a bare-metal cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Initialization;

/// The desired state of a Beskar7Cluster.
// Each typed `printcolumn(..)` repeats `name`/`type_`, which clippy mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "Beskar7Cluster",
    plural = "beskar7clusters",
    namespaced,
    status = "Beskar7ClusterStatus",
    derive = "PartialEq",
    shortname = "b7c",
    category = "cluster-api",
    category = "beskar7",
    doc = "Cluster API's infrastructure cluster for bare metal. It carries the control plane endpoint (a VIP you provide, as Beskar7 creates no load balancer) and reports the failure domains found on the namespace's PhysicalHosts.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".metadata.labels.cluster\\.x-k8s\\.io/cluster-name",
        description = "The Cluster API cluster"
    ),
    printcolumn(
        name = "Endpoint",
        type_ = "string",
        json_path = ".spec.controlPlaneEndpoint.host",
        description = "Control plane endpoint host"
    ),
    printcolumn(
        name = "Port",
        type_ = "integer",
        json_path = ".spec.controlPlaneEndpoint.port",
        description = "Control plane endpoint port"
    ),
    printcolumn(
        name = "Provisioned",
        type_ = "boolean",
        json_path = ".status.initialization.provisioned",
        description = "Whether the endpoint is known"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "The Ready condition"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct Beskar7ClusterSpec {
    /// The endpoint of the workload cluster's API server: a virtual IP you provide (keepalived,
    /// kube-vip, a load balancer). When omitted, Beskar7 copies the Cluster's
    /// spec.controlPlaneEndpoint once it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<ApiEndpoint>,
}

/// A host and port where an API server can be reached.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiEndpoint {
    /// DNS name or IP address.
    #[schemars(length(min = 1, max = 512))]
    pub host: String,
    /// TCP port, usually 6443.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// A failure domain (zone) hosts can be placed in.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureDomain {
    /// The zone: a value of the topology.kubernetes.io/zone label of the namespace's hosts.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Whether control plane machines may be placed here (always true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<bool>,
    /// Free-form attributes.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// The observed state of a Beskar7Cluster, written by Beskar7.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Beskar7ClusterStatus {
    /// Cluster API contract v1beta2: provisioned becomes true once the control plane endpoint is
    /// known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<Initialization>,

    /// The zones of the namespace's PhysicalHosts (label topology.kubernetes.io/zone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub failure_domains: Vec<FailureDomain>,

    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready (over the whole lifecycle, mirrored by Cluster API) plus one condition per cause of
    /// waiting (metav1 Conditions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
