//! The few Cluster API objects Beskar7 reads, at `cluster.x-k8s.io/v1beta2` (CAPI ≥ 1.11).
//!
//! Read-only and deliberately partial: only the fields the controllers need are modelled, every
//! one optional, and unknown fields are ignored, so a newer CAPI never breaks deserialization.
//! These types are never written back (they do not implement `Serialize`), so nothing Beskar7
//! does can drop the fields it does not know.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::{NamespaceResourceScope, Resource};
use serde::Deserialize;

/// The Cluster API group.
pub const CAPI_GROUP: &str = "cluster.x-k8s.io";
/// The Cluster API version Beskar7 reads.
pub const CAPI_VERSION: &str = "v1beta2";
/// The annotation that pauses reconciliation of one object (presence only).
pub const PAUSED_ANNOTATION: &str = "cluster.x-k8s.io/paused";

/// A Cluster API Machine (`cluster.x-k8s.io/v1beta2`), the owner of a Beskar7Machine.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The fields of the Machine's spec that Beskar7 reads.
    #[serde(default)]
    pub spec: MachineSpec,
}

/// The part of `Machine.spec` Beskar7 reads.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MachineSpec {
    /// The name of the Cluster the Machine belongs to.
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// Where the bootstrap data comes from.
    #[serde(default)]
    pub bootstrap: Bootstrap,
    /// The infrastructure machine (a Beskar7Machine).
    #[serde(default)]
    pub infrastructure_ref: Option<ContractVersionedObjectReference>,
    /// The failure domain the Machine should be placed in.
    #[serde(default)]
    pub failure_domain: Option<String>,
    /// The provider ID CAPI copied from the infrastructure machine.
    #[serde(default, rename = "providerID")]
    pub provider_id: Option<String>,
}

/// `Machine.spec.bootstrap`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    /// The Secret holding the bootstrap data (key `value`); `None` until the bootstrap provider
    /// has produced it, and the infrastructure machine must wait until then.
    #[serde(default)]
    pub data_secret_name: Option<String>,
}

/// A v1beta2 reference `{apiGroup, kind, name}` (no version: CAPI resolves it from CRD labels).
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContractVersionedObjectReference {
    /// API group of the referent.
    #[serde(default)]
    pub api_group: String,
    /// Kind of the referent.
    #[serde(default)]
    pub kind: String,
    /// Name of the referent, in the referrer's namespace.
    #[serde(default)]
    pub name: String,
}

/// A Cluster API Cluster (`cluster.x-k8s.io/v1beta2`).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Cluster {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The fields of the Cluster's spec that Beskar7 reads.
    #[serde(default)]
    pub spec: ClusterSpec,
    /// The fields of the Cluster's status that Beskar7 reads.
    #[serde(default)]
    pub status: Option<ClusterStatus>,
}

/// The part of `Cluster.spec` Beskar7 reads.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// When true, no provider may change anything of this cluster (`clusterctl move` sets it).
    #[serde(default)]
    pub paused: Option<bool>,
    /// The control plane endpoint, once known.
    #[serde(default)]
    pub control_plane_endpoint: Option<ClusterEndpoint>,
    /// The infrastructure cluster (a Beskar7Cluster).
    #[serde(default)]
    pub infrastructure_ref: Option<ContractVersionedObjectReference>,
}

/// `Cluster.spec.controlPlaneEndpoint`; CAPI leaves it empty (`host: ""`, `port: 0`) until known.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// DNS name or IP address.
    #[serde(default)]
    pub host: String,
    /// TCP port.
    #[serde(default)]
    pub port: i32,
}

impl ClusterEndpoint {
    /// Whether the endpoint is set (a host and a port).
    pub fn is_set(&self) -> bool {
        !self.host.is_empty() && self.port > 0
    }
}

/// The part of `Cluster.status` Beskar7 reads.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Initialization milestones.
    #[serde(default)]
    pub initialization: Option<ClusterInitialization>,
}

/// `Cluster.status.initialization`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInitialization {
    /// True once the infrastructure cluster is provisioned.
    #[serde(default)]
    pub infrastructure_provisioned: Option<bool>,
}

impl Cluster {
    /// Whether the cluster is paused: `spec.paused` or the paused annotation on the Cluster.
    pub fn is_paused(&self) -> bool {
        self.spec.paused == Some(true) || has_paused_annotation(&self.metadata)
    }

    /// Whether CAPI reports the infrastructure as provisioned.
    pub fn infrastructure_provisioned(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.initialization.as_ref())
            .and_then(|i| i.infrastructure_provisioned)
            .unwrap_or(false)
    }

    /// The control plane endpoint, when CAPI has one.
    pub fn control_plane_endpoint(&self) -> Option<&ClusterEndpoint> {
        self.spec
            .control_plane_endpoint
            .as_ref()
            .filter(|e| e.is_set())
    }
}

impl Machine {
    /// The bootstrap data Secret's name, once the bootstrap provider has set it.
    pub fn bootstrap_data_secret_name(&self) -> Option<&str> {
        self.spec
            .bootstrap
            .data_secret_name
            .as_deref()
            .filter(|n| !n.is_empty())
    }
}

/// Whether an object carries the `cluster.x-k8s.io/paused` annotation (its value is ignored).
pub fn has_paused_annotation(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(PAUSED_ANNOTATION))
}

/// The owner reference to a CAPI object of `kind` (group `cluster.x-k8s.io`, any version),
/// matched by kind and group only, as CAPI's own providers do: UIDs change across
/// `clusterctl move`.
pub fn capi_owner<'a>(meta: &'a ObjectMeta, kind: &str) -> Option<&'a OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|o| {
        o.kind == kind
            && o.api_version.split('/').next() == Some(CAPI_GROUP)
            && o.api_version.contains('/')
    })
}

/// The owning CAPI Machine of an infrastructure machine.
pub fn machine_owner(meta: &ObjectMeta) -> Option<&OwnerReference> {
    capi_owner(meta, "Machine")
}

/// The owning CAPI Cluster of an infrastructure cluster.
pub fn cluster_owner(meta: &ObjectMeta) -> Option<&OwnerReference> {
    capi_owner(meta, "Cluster")
}

macro_rules! capi_resource {
    ($ty:ty, $kind:literal, $plural:literal) => {
        impl Resource for $ty {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                CAPI_GROUP.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                CAPI_VERSION.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

capi_resource!(Machine, "Machine", "machines");
capi_resource!(Cluster, "Cluster", "clusters");
