//! Types and helpers shared by several Beskar7 kinds.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every Beskar7 kind.
pub const GROUP: &str = "infrastructure.cluster.x-k8s.io";
/// The (only) served and stored version of every Beskar7 kind.
pub const VERSION: &str = "v1beta1";
/// The CRD label through which Cluster API (≥ 1.11) finds the version implementing contract v1beta2.
pub const CONTRACT_LABEL: &str = "cluster.x-k8s.io/v1beta2";
/// The CRD label that makes `clusterctl move` discover a kind.
pub const CLUSTERCTL_LABEL: &str = "clusterctl.cluster.x-k8s.io";
/// The CRD label that makes `clusterctl move` take every object of a kind along.
pub const MOVE_HIERARCHY_LABEL: &str = "clusterctl.cluster.x-k8s.io/move-hierarchy";
/// The label CAPI puts on objects of a cluster.
pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
/// The host label failure domains come from.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The scheme of Beskar7 provider IDs.
pub const PROVIDER_ID_SCHEME: &str = "b7://";
/// The condition type that covers an object's whole lifecycle (mirrored by CAPI).
pub const READY_CONDITION: &str = "Ready";

/// `status.initialization` of the Cluster API v1beta2 contract.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Initialization {
    /// True once the infrastructure is provisioned. Cluster API reads this flag (contract
    /// v1beta2) and never flips it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<bool>,
}

/// The kind of a machine address, as Cluster API defines it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum MachineAddressType {
    Hostname,
    #[serde(rename = "ExternalIP")]
    ExternalIp,
    #[serde(rename = "InternalIP")]
    InternalIp,
    #[serde(rename = "ExternalDNS")]
    ExternalDns,
    #[serde(rename = "InternalDNS")]
    InternalDns,
}

/// One address of a machine.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineAddress {
    /// The kind of address: Hostname, ExternalIP, InternalIP, ExternalDNS or InternalDNS.
    #[serde(rename = "type")]
    pub type_: MachineAddressType,
    /// The address itself.
    #[schemars(length(min = 1, max = 256))]
    pub address: String,
}

/// A provider ID `b7://<namespace>/<host>/<machine>`: the identity Cluster API matches Nodes by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderId {
    /// The namespace of the PhysicalHost and the Beskar7Machine.
    pub namespace: String,
    /// The PhysicalHost's name.
    pub host: String,
    /// The Beskar7Machine's name.
    pub machine: String,
}

impl ProviderId {
    /// The provider ID of `machine` running on `host`, both in `namespace`.
    pub fn new(
        namespace: impl Into<String>,
        host: impl Into<String>,
        machine: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            host: host.into(),
            machine: machine.into(),
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PROVIDER_ID_SCHEME}{}/{}/{}",
            self.namespace, self.host, self.machine
        )
    }
}

/// Why a string is not a Beskar7 provider ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Beskar7 provider ID (b7://<namespace>/<host>/<machine>)")]
pub struct InvalidProviderId(pub String);

impl FromStr for ProviderId {
    type Err = InvalidProviderId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidProviderId(s.to_owned());
        let rest = s.strip_prefix(PROVIDER_ID_SCHEME).ok_or_else(invalid)?;
        let mut parts = rest.split('/');
        let (Some(namespace), Some(host), Some(machine), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        if [namespace, host, machine].iter().any(|p| p.is_empty()) {
            return Err(invalid());
        }
        Ok(Self::new(namespace, host, machine))
    }
}
