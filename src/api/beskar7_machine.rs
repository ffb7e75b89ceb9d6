//! `Beskar7Machine`: Cluster API's InfraMachine, one server to provision for one CAPI Machine.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Initialization, MachineAddress};
use super::rules;

/// The desired state of a Beskar7Machine: what to boot and install, and on which kind of host.
// Each typed `printcolumn(..)` repeats `name`/`type_`, which clippy mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "Beskar7Machine",
    plural = "beskar7machines",
    namespaced,
    status = "Beskar7MachineStatus",
    derive = "PartialEq",
    shortname = "b7m",
    category = "cluster-api",
    category = "beskar7",
    doc = "Cluster API's infrastructure machine for bare metal. Beskar7 claims a free PhysicalHost in the same namespace that matches hostSelector and hardwareRequirements, PXE-boots the Beskar7 agent on it, checks the hardware the agent reports, and hands the server over to the target OS with the Machine's bootstrap data.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".metadata.labels.cluster\\.x-k8s\\.io/cluster-name",
        description = "The Cluster API cluster this machine belongs to"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Where provisioning is"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "The Ready condition"
    ),
    printcolumn(
        name = "ProviderID",
        type_ = "string",
        json_path = ".spec.providerID",
        description = "b7://<namespace>/<host>/<machine>, set once provisioned"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Why the machine is not Ready",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(rules::IMAGE_NEEDS_DIGEST).message(rules::IMAGE_NEEDS_DIGEST_MSG))]
#[x_kube(validation = Rule::new(rules::PROVIDER_ID_IMMUTABLE).message(rules::PROVIDER_ID_IMMUTABLE_MSG))]
#[serde(rename_all = "camelCase")]
pub struct Beskar7MachineSpec {
    /// The agent to boot and the OS to hand over to.
    #[serde(flatten)]
    pub images: Images,

    /// The least hardware a host must have. Hosts known to be smaller are skipped; the agent's
    /// report is authoritative, and an attempt on a host that falls short fails with one message
    /// per shortfall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_requirements: Option<HardwareRequirements>,

    /// Restricts which PhysicalHosts this machine may claim, by their labels (matchLabels and
    /// matchExpressions, ANDed). Omitted: any free host in the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_selector: Option<LabelSelector>,

    /// How the agent hands the server over: "Image" writes targetImageURL to disk, verifies it
    /// against targetImageDigest and reboots; "Kexec" loads the kernel and initrd from the
    /// targetImageURL archive and kexecs into it. Default: Image when targetImageDigest is set,
    /// else Kexec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,

    /// The firmware boot mode for the PXE boot: UEFI or Legacy. Default: the mode the BMC reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<BootMode>,

    /// Which disk to install to. Omitted: the agent picks the smallest eligible disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_hints: Option<RootDeviceHints>,

    /// A static IPv4 configuration for the provisioning NIC instead of DHCP, in the kernel ip=
    /// form "<ip>::[<gateway>]:<netmask or prefix length>[:<dns>]", e.g.
    /// "192.168.150.10::192.168.150.1:24".
    #[serde(rename = "staticIP", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 80))]
    #[x_kube(validation = Rule::new(rules::STATIC_IP).message(rules::STATIC_IP_MSG))]
    pub static_ip: Option<String>,

    /// Set by Beskar7 once the server is provisioned: b7://<namespace>/<host>/<machine>. Cluster
    /// API matches the Node by it. Immutable once set.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(rules::PROVIDER_ID_FORMAT).message(rules::PROVIDER_ID_FORMAT_MSG))]
    pub provider_id: Option<String>,
}

/// The least hardware a host must have. Every field is optional; each one given must be at least 1.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HardwareRequirements {
    /// Minimum number of CPU cores, summed over all sockets.
    #[serde(
        rename = "minCPUCores",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[x_kube(validation = Rule::new(rules::AT_LEAST_ONE).message(rules::AT_LEAST_ONE_MSG))]
    pub min_cpu_cores: Option<i32>,

    /// Minimum memory in GB.
    #[serde(
        rename = "minMemoryGB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[x_kube(validation = Rule::new(rules::AT_LEAST_ONE).message(rules::AT_LEAST_ONE_MSG))]
    pub min_memory_gb: Option<i32>,

    /// Minimum total disk size in GB.
    #[serde(rename = "minDiskGB", default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::AT_LEAST_ONE).message(rules::AT_LEAST_ONE_MSG))]
    pub min_disk_gb: Option<i32>,
}

/// How the agent hands the server over to its target OS: "Image" writes targetImageURL to disk,
/// verifies it against targetImageDigest and reboots; "Kexec" loads the kernel and initrd from the
/// targetImageURL archive and kexecs into them. Default: Image when targetImageDigest is set, else
/// Kexec.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(extend("maxLength" = 5))]
pub enum Handoff {
    /// Load the target kernel and initrd and kexec into them (no disk write by Beskar7).
    Kexec,
    /// Write a digest-checked whole-disk image and reboot.
    Image,
}

/// A firmware boot mode, "UEFI" or "Legacy". On a machine, the mode for the PXE boot; omitted,
/// the mode the BMC reports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(extend("maxLength" = 6))]
pub enum BootMode {
    #[serde(rename = "UEFI")]
    Uefi,
    Legacy,
}

/// Hints that select the disk to install to. All given hints must match.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RootDeviceHints {
    /// A device path, e.g. "/dev/nvme0n1" or "/dev/disk/by-id/wwn-0x5000c500a0b1c2d3".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    #[x_kube(validation = Rule::new(rules::DEVICE_PATH).message(rules::DEVICE_PATH_MSG))]
    pub device_name: Option<String>,

    /// The disk's serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    #[x_kube(validation = Rule::new(rules::DISK_ID).message(rules::DISK_ID_MSG))]
    pub serial_number: Option<String>,

    /// The disk's World Wide Name, e.g. "0x5000c500a0b1c2d3".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    #[x_kube(validation = Rule::new(rules::DISK_ID).message(rules::DISK_ID_MSG))]
    pub wwn: Option<String>,

    /// The smallest disk size to consider, in GB.
    #[serde(rename = "minSizeGB", default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::AT_LEAST_ONE).message(rules::AT_LEAST_ONE_MSG))]
    pub min_size_gb: Option<i32>,
}

/// Where provisioning is: Pending (waiting for the Machine, its bootstrap data or a free host),
/// Associated (a host is claimed), Inspecting, Deploying, Provisioned, Deprovisioning (releasing the
/// host), or Failed (the last attempt failed and no suitable host is free yet; the Ready condition
/// says why).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(extend("maxLength" = 14))]
pub enum MachinePhase {
    /// Waiting for its Machine, the bootstrap data, or a free host.
    Pending,
    /// A host is claimed.
    Associated,
    /// The agent is booting and reporting the hardware.
    Inspecting,
    /// The agent is installing the target OS.
    Deploying,
    /// The target OS runs; providerID is set.
    Provisioned,
    /// Releasing the host.
    Deprovisioning,
    /// The last attempt failed and no suitable host is free yet; cleared when a new attempt
    /// starts. The Ready condition says why.
    Failed,
}

/// The observed state of a Beskar7Machine, written by Beskar7.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Beskar7MachineStatus {
    /// Cluster API contract v1beta2: provisioned becomes true once the server runs its target OS
    /// and spec.providerID is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<Initialization>,

    /// Addresses of the server, copied to the Machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub addresses: Vec<MachineAddress>,

    /// Pending, Associated, Inspecting, Deploying, Provisioned, Deprovisioning or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MachinePhase>,

    /// The failure domain (zone) of the claimed host, copied to the Machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub failure_domain: Option<String>,

    /// Hosts an attempt for this machine failed on (most recent last, at most 16): this machine
    /// never claims them again. Kept in status so it survives a restart of the manager.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub rejected_hosts: Vec<RejectedHost>,

    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready (over the whole lifecycle, mirrored by Cluster API) plus one condition per cause of
    /// waiting or failure (metav1 Conditions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// A host an attempt for this machine failed on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedHost {
    /// The PhysicalHost's name (same namespace).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The attempt's failure reason, e.g. RequirementsNotMet.
    #[schemars(length(min = 1, max = 64))]
    pub reason: String,
    /// The attempt's failure message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
}

/// Where the agent and the target OS come from: shared by Beskar7Machine's spec and the
/// provisioning intent a claimed PhysicalHost carries.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Images {
    /// Where the Beskar7 agent boots from: a base URL serving "vmlinuz" and "initrd.img"
    /// (Beskar7 renders the iPXE script), or the URL of an iPXE script ending in ".ipxe" to chain
    /// (it must put ${beskar7-args} on its kernel line). http or https.
    #[serde(rename = "inspectionImageURL")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(rules::HTTP_URL).message(rules::IMAGE_URL_MSG))]
    pub inspection_image_url: String,

    /// The target OS: a whole-disk raw image written to disk (handoff Image), or a tar(.gz)
    /// holding a kernel, an initrd and optionally a "cmdline" file to kexec into (handoff Kexec).
    /// http or https.
    #[serde(rename = "targetImageURL")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(rules::HTTP_URL).message(rules::IMAGE_URL_MSG))]
    pub target_image_url: String,

    /// SHA-256 digest of the bytes at targetImageURL, "sha256:<64 lowercase hex>" (the output of
    /// sha256sum). Required with handoff Image, verified with Kexec when given.
    #[serde(
        rename = "targetImageDigest",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 71))]
    #[x_kube(validation = Rule::new(rules::SHA256_DIGEST).message(rules::SHA256_DIGEST_MSG))]
    pub target_image_digest: Option<String>,

    /// Optional URL of the target OS's configuration, passed to the agent (beskar7.config).
    #[serde(
        rename = "configurationURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(rules::HTTP_URL).message(rules::IMAGE_URL_MSG))]
    pub configuration_url: Option<String>,
}

impl Beskar7MachineSpec {
    /// The handoff in effect: the one given, else Image with a digest and Kexec without.
    pub fn effective_handoff(&self) -> Handoff {
        match (self.handoff, &self.images.target_image_digest) {
            (Some(h), _) => h,
            (None, Some(_)) => Handoff::Image,
            (None, None) => Handoff::Kexec,
        }
    }
}

impl Beskar7Machine {
    /// Whether Cluster API may consider this machine provisioned.
    pub fn is_provisioned(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.initialization.as_ref())
            .and_then(|i| i.provisioned)
            .unwrap_or(false)
    }
}
