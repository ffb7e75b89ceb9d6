//! `PhysicalHost`: one bare-metal server and its BMC, the inventory Beskar7Machines claim.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::beskar7_machine::{BootMode, Handoff, HardwareRequirements, Images, RootDeviceHints};
use super::rules;

/// The desired state of a PhysicalHost: how to reach its BMC, and (while it is claimed) what to
/// provision on it.
// Each typed `printcolumn(..)` repeats `name`/`type_`, which clippy mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "PhysicalHost",
    plural = "physicalhosts",
    namespaced,
    status = "PhysicalHostStatus",
    derive = "PartialEq",
    shortname = "ph",
    category = "cluster-api",
    category = "beskar7",
    doc = "A bare-metal server with a Redfish BMC, registered in Beskar7's inventory. Beskar7 enrolls it (reads its inventory, MAC addresses and power state over Redfish) and makes it Available; a Beskar7Machine in the same namespace then claims it (spec.consumerRef) and provisions it over PXE.",
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.state",
        description = "Where the host is in its lifecycle"
    ),
    printcolumn(
        name = "Power",
        type_ = "string",
        json_path = ".status.observedPowerState",
        description = "Power state last read from the BMC"
    ),
    printcolumn(
        name = "Consumer",
        type_ = "string",
        json_path = ".spec.consumerRef.name",
        description = "The Beskar7Machine that claims this host"
    ),
    printcolumn(
        name = "BMC",
        type_ = "string",
        json_path = ".spec.redfishConnection.address",
        description = "Redfish address of the BMC"
    ),
    printcolumn(
        name = "Model",
        type_ = "string",
        json_path = ".status.hardwareDetails.model",
        description = "Server model reported by the BMC",
        priority = 1
    ),
    printcolumn(
        name = "Error",
        type_ = "string",
        json_path = ".status.errorMessage",
        description = "The last error, if any",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    selectable = ".spec.redfishConnection.address",
    selectable = ".spec.consumerRef.name"
)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalHostSpec {
    /// How to reach the server's BMC over Redfish.
    pub redfish_connection: RedfishConnection,

    /// MAC address of the NIC the server PXE-boots from. Optional: when omitted Beskar7 uses the
    /// MAC address the BMC reports for the server's first network interface.
    #[serde(
        rename = "bootMACAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 17))]
    #[x_kube(validation = Rule::new(rules::MAC_ADDRESS).message(rules::MAC_ADDRESS_MSG))]
    pub boot_mac_address: Option<String>,

    /// What happens to the disks when the host is released: "metadata" (the default) boots the
    /// Beskar7 agent to wipe partition tables and filesystem signatures before the host is
    /// offered again; "disabled" skips cleaning (use it with agents that cannot clean).
    #[serde(default)]
    pub automated_cleaning_mode: AutomatedCleaningMode,

    /// The Beskar7Machine that claims this host. Set and cleared by Beskar7 (it is the claim);
    /// it may be set or removed, but never changed from one machine to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new(rules::CONSUMER_REF_UNCHANGED).message(rules::CONSUMER_REF_UNCHANGED_MSG),
        merge_strategy = MapMerge::Atomic
    )]
    pub consumer_ref: Option<ConsumerRef>,

    /// What to provision, copied by Beskar7 from the claiming Beskar7Machine. Not meant to be
    /// edited by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<ProvisioningIntent>,
}

/// How to reach a BMC over Redfish.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(rules::TLS_EXCLUSIVE).message(rules::TLS_EXCLUSIVE_MSG))]
#[serde(rename_all = "camelCase")]
pub struct RedfishConnection {
    /// Base URL of the Redfish service, e.g. "https://192.168.1.100" or
    /// "https://bmc-01.example.com:8443". Beskar7 discovers everything else from the service
    /// root (/redfish/v1).
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new(rules::HTTP_URL).message(rules::BMC_ADDRESS_MSG))]
    pub address: String,

    /// Name of a Secret in the host's namespace with the BMC credentials under the keys
    /// "username" and "password". Beskar7 makes the host own this Secret, so `clusterctl move`
    /// carries it along.
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new(rules::DNS_SUBDOMAIN).message(rules::SECRET_NAME_MSG))]
    pub credentials_secret_ref: String,

    /// Skip verifying the BMC's TLS certificate. Off by default; prefer caBundleSecretRef.
    /// Mutually exclusive with caBundleSecretRef.
    #[serde(default)]
    pub insecure_skip_verify: bool,

    /// A Secret in the host's namespace holding the PEM CA bundle that signed the BMC's
    /// certificate, under the key "ca.crt" (or "tls.crt"). Mutually exclusive with
    /// insecureSkipVerify.
    #[serde(
        rename = "caBundleSecretRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ca_bundle_secret_ref: Option<SecretRef>,

    /// Path of the ComputerSystem to manage, e.g. "/redfish/v1/Systems/1", for a BMC that
    /// manages several systems. Optional when the BMC manages exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub system_path: Option<String>,
}

/// A reference to a Secret in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new(rules::DNS_SUBDOMAIN).message(rules::SECRET_NAME_MSG))]
    pub name: String,
}

/// Whether a released host's disks are cleaned before it is offered again.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(extend("maxLength" = 8))]
pub enum AutomatedCleaningMode {
    /// Wipe partition tables and filesystem signatures.
    #[default]
    Metadata,
    /// Do not clean.
    Disabled,
}

/// The object that claims a host: a Beskar7Machine in the host's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerRef {
    /// API group of the consumer, "infrastructure.cluster.x-k8s.io".
    #[schemars(length(max = 253))]
    pub api_group: String,
    /// Kind of the consumer, "Beskar7Machine".
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// Name of the consumer, in the host's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What to provision on a claimed host, copied from the claiming Beskar7Machine and its Machine.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new(rules::IMAGE_NEEDS_DIGEST).message(rules::IMAGE_NEEDS_DIGEST_MSG))]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningIntent {
    /// See Beskar7Machine spec (inspectionImageURL, targetImageURL, targetImageDigest,
    /// configurationURL).
    #[serde(flatten)]
    pub images: Images,

    /// The handoff to use, resolved from the machine (Image with a digest, else Kexec).
    pub handoff: Handoff,

    /// See Beskar7Machine spec.bootMode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<BootMode>,

    /// See Beskar7Machine spec.rootDeviceHints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_hints: Option<RootDeviceHints>,

    /// See Beskar7Machine spec.staticIP.
    #[serde(rename = "staticIP", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 80))]
    #[x_kube(validation = Rule::new(rules::STATIC_IP).message(rules::STATIC_IP_MSG))]
    pub static_ip: Option<String>,

    /// See Beskar7Machine spec.hardwareRequirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_requirements: Option<HardwareRequirements>,

    /// The provider ID the machine gets once provisioned, b7://<namespace>/<host>/<machine>.
    #[serde(rename = "providerID")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(rules::PROVIDER_ID_FORMAT).message(rules::PROVIDER_ID_FORMAT_MSG))]
    pub provider_id: String,

    /// Name of the Secret holding the bootstrap data (key "value"), from the Machine's
    /// spec.bootstrap.dataSecretName.
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new(rules::DNS_SUBDOMAIN).message(rules::SECRET_NAME_MSG))]
    pub bootstrap_data_secret_name: String,
}

/// Where the host is in its lifecycle: Enrolling, Available (free to be claimed), InUse (claimed),
/// Inspecting, Deploying, Provisioned, Deprovisioning (released: cleaning, power off), or Error
/// (the BMC or its credentials failed, or a deprovision timed out; see errorMessage).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(extend("maxLength" = 14))]
pub enum HostState {
    /// Beskar7 is reaching the BMC and reading the inventory.
    Enrolling,
    /// Enrolled and free to be claimed.
    Available,
    /// Claimed by a Beskar7Machine; a provisioning attempt is starting.
    InUse,
    /// The agent is booting and reporting the hardware.
    Inspecting,
    /// The agent is writing or loading the target OS.
    Deploying,
    /// Handed over to its target OS.
    Provisioned,
    /// Released: cleaning (when enabled), powering off, clearing the boot override.
    Deprovisioning,
    /// The BMC or its credentials failed, or a deprovision timed out; see errorMessage and the
    /// conditions. Not offered again until the cause is fixed and the BMC answers.
    Error,
}

/// The power state last read from the BMC: On, Off, PoweringOn, PoweringOff, Paused or Unknown.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(extend("maxLength" = 11))]
pub enum PowerState {
    On,
    Off,
    PoweringOn,
    PoweringOff,
    Paused,
    /// The BMC did not say, or said something else.
    Unknown,
}

/// The observed state of a PhysicalHost, written by Beskar7.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalHostStatus {
    /// Where the host is in its lifecycle: Enrolling, Available, InUse, Inspecting, Deploying,
    /// Provisioned, Deprovisioning or Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<HostState>,

    /// The power state last read from the BMC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_power_state: Option<PowerState>,

    /// Why the host is in the Error state, or why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub error_message: Option<String>,

    /// The inventory read from the BMC over Redfish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_details: Option<HardwareDetails>,

    /// The hardware report of the last inspection, normalized and bounded (64 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspection: Option<InspectionReport>,

    /// MAC addresses of the server's network interfaces, as the BMC reports them.
    #[serde(
        rename = "macAddresses",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(length(max = 64), inner(length(max = 17)))]
    pub mac_addresses: Vec<String>,

    /// The current provisioning or cleaning attempt: only hashes of its secrets are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Attempt>,

    /// When the host was last enrolled (inventory read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<Time>,

    /// When the host last entered its current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state_change: Option<Time>,

    /// When the BMC last answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Time>,

    /// When the host was last handed over to its target OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_at: Option<Time>,

    /// The most recent provisioning or cleaning attempt that failed. It describes the current
    /// attempt only while attemptID equals status.attempt.id; otherwise it is history (see
    /// docs/api.md, "Attempt outcomes"). The machine controller reads it to release the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<AttemptFailure>,

    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready plus one condition per cause of waiting or failure (metav1 Conditions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// The inventory a BMC reports over Redfish.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HardwareDetails {
    /// System manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub manufacturer: Option<String>,
    /// System model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub model: Option<String>,
    /// System serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub serial_number: Option<String>,
    /// System SKU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub sku: Option<String>,
    /// System UUID.
    #[serde(rename = "uuid", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub uuid: Option<String>,
    /// BIOS or UEFI firmware version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub bios_version: Option<String>,
    /// Number of processors (sockets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor_count: Option<i32>,
    /// Total processor cores (Redfish ProcessorSummary.CoreCount), when the BMC reports it.
    #[serde(rename = "cpuCores", default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<i32>,
    /// Processor model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub processor_model: Option<String>,
    /// Total system memory in MiB (Redfish MemorySummary.TotalSystemMemoryGiB × 1024).
    #[serde(rename = "memoryMiB", default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
    /// Boot mode the BMC reports (BootSourceOverrideMode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<BootMode>,
    /// Health rollup the BMC reports (OK, Warning, Critical).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub health: Option<String>,
}

/// The hardware report of an inspection, normalized (see the inspector contract §5).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InspectionReport {
    /// When Beskar7 received the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Time>,
    /// System manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub manufacturer: Option<String>,
    /// System model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub model: Option<String>,
    /// System serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub serial_number: Option<String>,
    /// Boot mode the agent found itself booted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode_detected: Option<BootMode>,
    /// BIOS or UEFI firmware version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub firmware_version: Option<String>,
    /// Total CPU cores (sum over sockets).
    #[serde(rename = "cpuCores", default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<i32>,
    /// Total memory in MiB.
    #[serde(rename = "memoryMiB", default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
    /// Total disk size in GB.
    #[serde(rename = "diskGB", default, skip_serializing_if = "Option::is_none")]
    pub disk_gb: Option<i64>,
    /// One entry per CPU socket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub cpus: Vec<CpuInfo>,
    /// One entry per memory module.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub memory: Vec<MemoryInfo>,
    /// One entry per disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub disks: Vec<DiskInfo>,
    /// One entry per network interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub nics: Vec<NicInfo>,
    /// Set when the report was larger than Beskar7 keeps (lists capped, strings shortened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub truncated: Option<String>,
}

/// A CPU socket in an inspection report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuInfo {
    /// Identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub id: Option<String>,
    /// Vendor, e.g. GenuineIntel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub vendor: Option<String>,
    /// Model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub model: Option<String>,
    /// Cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<i32>,
    /// Threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<i32>,
    /// Frequency, e.g. 2.0GHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub frequency: Option<String>,
}

/// A memory module in an inspection report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryInfo {
    /// Identifier, e.g. DIMM0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub id: Option<String>,
    /// Type, e.g. DDR5.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub type_: Option<String>,
    /// Capacity with its unit, e.g. 32GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub capacity: Option<String>,
    /// Speed, e.g. 4800MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub speed: Option<String>,
}

/// A disk in an inspection report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskInfo {
    /// Device name, e.g. /dev/nvme0n1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub name: Option<String>,
    /// Model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub model: Option<String>,
    /// Size in GB.
    #[serde(rename = "sizeGB", default, skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<i64>,
    /// HDD, SSD or NVMe.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub type_: Option<String>,
    /// Serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub serial_number: Option<String>,
    /// World Wide Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub wwn: Option<String>,
}

/// A network interface in an inspection report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NicInfo {
    /// Interface name, e.g. eno1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub name: Option<String>,
    /// MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 17))]
    pub mac_address: Option<String>,
    /// Driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub driver: Option<String>,
    /// Link speed, e.g. 10Gbps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub speed: Option<String>,
    /// IP addresses the agent saw on the interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 64)))]
    pub ip_addresses: Vec<String>,
}

/// A failed attempt: which one, for which claim, why (a condition reason) and what happened.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptFailure {
    /// The failed attempt's id (status.attempt.id when it failed).
    #[serde(rename = "attemptID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub attempt_id: Option<String>,
    /// The claim the attempt served: the host's spec.provisioning.providerID when it started.
    /// The machine controller acts on a failure only when this equals the current claim's, so a
    /// stale failure never fails a new claim.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 512))]
    pub provider_id: Option<String>,
    /// Provision or clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AttemptMode>,
    /// Why, as a CamelCase reason: RequirementsNotMet, InspectionTimedOut, InspectionFailed,
    /// DeploymentTimedOut, ProvisionFailed, BootFailed, BMCError, CleaningFailed or
    /// CleaningTimedOut.
    #[schemars(length(max = 64))]
    pub reason: String,
    /// What happened, for people (one line per unmet requirement for RequirementsNotMet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
    /// When the attempt was declared failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
}

/// What the attempt boots the agent for: "provision" or "clean".
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(extend("maxLength" = 9))]
pub enum AttemptMode {
    /// Inspect and provision for the claiming machine.
    Provision,
    /// Wipe the disks after a release.
    Clean,
}

/// A provisioning or cleaning attempt. Only SHA-256 hashes of its boot nonce and bearer token
/// are stored, never the secrets themselves.
///
/// Two writers share it: the host controller starts the attempt (id, mode, times, hashes) and the
/// callback servers (field manager `beskar7-callback`) record what the agent did. The callback's
/// records count only while `recordsAttemptID` equals `id`; otherwise they are left over from an
/// earlier attempt.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Identifies the attempt: a random value from which (with the host's uid and the operator's
    /// token key) the attempt's secrets are derived. Not itself a secret.
    #[serde(rename = "id", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub id: Option<String>,
    /// Provision or clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AttemptMode>,
    /// When the attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the attempt's nonce and token stop being accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// Hex SHA-256 of the boot nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub nonce_hash: Option<String>,
    /// When the boot nonce was used (the first successful /boot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_consumed_at: Option<Time>,
    /// Hex SHA-256 of the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub token_hash: Option<String>,
    /// Hex SHA-256 of the configuration nonce (Kexec handoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub config_nonce_hash: Option<String>,
    /// When the configuration nonce was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_consumed_at: Option<Time>,
    /// When the boot nonce stops being accepted (it lives shorter than the token); omitted, at
    /// expiresAt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_expires_at: Option<Time>,
    /// The agent image (inspectionImageURL) this attempt boots. A cleaning attempt copies it from
    /// the provisioning attempt it cleans up after, so it survives the release of the intent.
    #[serde(
        rename = "agentImageURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 2048))]
    pub agent_image_url: Option<String>,
    /// When the host controller set the one-time PXE boot and powered the server on for this
    /// attempt (set once: a restarted manager does not boot it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booted_at: Option<Time>,
    /// When the host controller accepted the hardware report and moved the attempt to Deploying
    /// (from then on the agent may write disks, so a release cleans). Starts the deployment
    /// timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploying_at: Option<Time>,
    /// The attempt id the callback's records (nonceConsumedAt, nonceConsumedBy, configConsumedAt,
    /// reportedAt, bootstrapFetchedAt, provisionedAt, failedAt, failureReason, cleanedAt) belong
    /// to. When it differs from id they are left over from an earlier attempt and mean nothing.
    #[serde(
        rename = "recordsAttemptID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 64))]
    pub records_attempt_id: Option<String>,
    /// The MAC address the boot nonce was used with (omitted when /boot was given none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 17))]
    pub nonce_consumed_by: Option<String>,
    /// When the agent's inspection report was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<Time>,
    /// When the agent first fetched the bootstrap data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_fetched_at: Option<Time>,
    /// When the agent reported that it handed the server over to its target OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_at: Option<Time>,
    /// When the attempt failed as the callback saw it (see failureReason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<Time>,
    /// Why the attempt failed, prefixed with where the failure was seen: "agent: " (the agent's
    /// provision-failed reason, control characters stripped), "boot: " (the boot script could not
    /// be rendered) or "inspection: " (the report is unusable). At most 300 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 300))]
    pub failure_reason: Option<String>,
    /// When the agent reported that cleaning finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleaned_at: Option<Time>,
}

impl Attempt {
    /// The part of the attempt the host controller owns (everything but the callback's records).
    pub fn controller_part(&self) -> Attempt {
        Attempt {
            id: self.id.clone(),
            mode: self.mode,
            started_at: self.started_at.clone(),
            expires_at: self.expires_at.clone(),
            nonce_hash: self.nonce_hash.clone(),
            token_hash: self.token_hash.clone(),
            config_nonce_hash: self.config_nonce_hash.clone(),
            nonce_expires_at: self.nonce_expires_at.clone(),
            agent_image_url: self.agent_image_url.clone(),
            booted_at: self.booted_at.clone(),
            deploying_at: self.deploying_at.clone(),
            ..Attempt::default()
        }
    }

    /// Whether the callback's records in this attempt belong to it (rather than to an earlier
    /// attempt whose records have not been overwritten yet).
    pub fn records_are_current(&self) -> bool {
        self.id.is_some() && self.records_attempt_id == self.id
    }
}

impl PhysicalHost {
    /// The host's state, `None` before Beskar7 first reconciled it.
    pub fn state(&self) -> Option<HostState> {
        self.status.as_ref().and_then(|s| s.state)
    }

    /// Whether a Beskar7Machine claims the host.
    pub fn is_claimed(&self) -> bool {
        self.spec.consumer_ref.is_some()
    }
}
