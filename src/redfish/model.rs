//! Typed wire models for the few resources the client reads, and the values it returns.
//! Every wire field is optional: real BMCs omit almost anything (OpenBMC has no Manufacturer).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

// ---------------------------------------------------------------- wire models

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Link {
    #[serde(rename = "@odata.id")]
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServiceRoot {
    #[serde(rename = "RedfishVersion")]
    pub redfish_version: Option<String>,
    #[serde(rename = "Vendor")]
    pub vendor: Option<String>,
    #[serde(rename = "Product")]
    pub product: Option<String>,
    #[serde(rename = "Systems")]
    pub systems: Option<Link>,
    #[serde(rename = "SessionService")]
    pub session_service: Option<Link>,
    #[serde(rename = "Links")]
    pub links: Option<RootLinks>,
    #[serde(rename = "Oem")]
    pub oem: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RootLinks {
    #[serde(rename = "Sessions")]
    pub sessions: Option<Link>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Collection {
    #[serde(rename = "Members")]
    pub members: Vec<Link>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ComputerSystem {
    #[serde(rename = "@odata.id")]
    pub odata_id: Option<String>,
    #[serde(rename = "@odata.etag")]
    pub etag: Option<String>,
    #[serde(rename = "Id")]
    pub id: Option<String>,
    #[serde(rename = "Manufacturer")]
    pub manufacturer: Option<String>,
    #[serde(rename = "Model")]
    pub model: Option<String>,
    #[serde(rename = "SerialNumber")]
    pub serial_number: Option<String>,
    #[serde(rename = "UUID")]
    pub uuid: Option<String>,
    #[serde(rename = "BiosVersion")]
    pub bios_version: Option<String>,
    #[serde(rename = "PowerState")]
    pub power_state: Option<String>,
    #[serde(rename = "Status")]
    pub status: Option<Status>,
    #[serde(rename = "Boot")]
    pub boot: Option<Boot>,
    #[serde(rename = "Actions")]
    pub actions: Option<SystemActions>,
    #[serde(rename = "EthernetInterfaces")]
    pub ethernet_interfaces: Option<Link>,
    #[serde(rename = "ProcessorSummary")]
    pub processor_summary: Option<ProcessorSummary>,
    #[serde(rename = "MemorySummary")]
    pub memory_summary: Option<MemorySummary>,
    #[serde(rename = "@Redfish.Settings")]
    pub settings: Option<Settings>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Status {
    #[serde(rename = "Health")]
    pub health: Option<String>,
    #[serde(rename = "State")]
    pub state: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Boot {
    #[serde(rename = "BootSourceOverrideTarget")]
    pub target: Option<String>,
    #[serde(rename = "BootSourceOverrideTarget@Redfish.AllowableValues")]
    pub target_allowed: Option<Vec<String>>,
    #[serde(rename = "BootSourceOverrideEnabled")]
    pub enabled: Option<String>,
    #[serde(rename = "BootSourceOverrideEnabled@Redfish.AllowableValues")]
    pub enabled_allowed: Option<Vec<String>>,
    #[serde(rename = "BootSourceOverrideMode")]
    pub mode: Option<String>,
    #[serde(rename = "BootSourceOverrideMode@Redfish.AllowableValues")]
    pub mode_allowed: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SystemActions {
    #[serde(rename = "#ComputerSystem.Reset")]
    pub reset: Option<ResetAction>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResetAction {
    pub target: Option<String>,
    #[serde(rename = "ResetType@Redfish.AllowableValues")]
    pub allowed: Option<Vec<String>>,
    #[serde(rename = "@Redfish.ActionInfo")]
    pub action_info: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ActionInfo {
    #[serde(rename = "Parameters")]
    pub parameters: Vec<ActionParameter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ActionParameter {
    #[serde(rename = "Name")]
    pub name: Option<String>,
    #[serde(rename = "AllowableValues")]
    pub allowed: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ProcessorSummary {
    #[serde(rename = "Count")]
    pub count: Option<u32>,
    #[serde(rename = "CoreCount")]
    pub core_count: Option<u32>,
    #[serde(rename = "Model")]
    pub model: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MemorySummary {
    #[serde(rename = "TotalSystemMemoryGiB")]
    pub total_gib: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Settings {
    #[serde(rename = "SettingsObject")]
    pub object: Option<Link>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EthernetInterface {
    #[serde(rename = "Id")]
    pub id: Option<String>,
    #[serde(rename = "Name")]
    pub name: Option<String>,
    #[serde(rename = "MACAddress")]
    pub mac: Option<String>,
    #[serde(rename = "PermanentMACAddress")]
    pub permanent_mac: Option<String>,
    #[serde(rename = "LinkStatus")]
    pub link_status: Option<String>,
    #[serde(rename = "IPv4Addresses")]
    pub ipv4: Option<Vec<Ipv4Address>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Ipv4Address {
    #[serde(rename = "Address")]
    pub address: Option<String>,
}

// ---------------------------------------------------------------- returned values

/// `ComputerSystem.PowerState`; `PoweringOn` counts as on and `PoweringOff` as off, as ironic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PowerState {
    On,
    Off,
    PoweringOn,
    PoweringOff,
    Paused,
    Unknown(String),
}

impl PowerState {
    pub(crate) fn parse(s: Option<&str>) -> Self {
        match s {
            Some("On") => Self::On,
            Some("Off") => Self::Off,
            Some("PoweringOn") => Self::PoweringOn,
            Some("PoweringOff") => Self::PoweringOff,
            Some("Paused") => Self::Paused,
            Some(other) => Self::Unknown(other.to_owned()),
            None => Self::Unknown(String::new()),
        }
    }

    /// On or powering on.
    pub fn is_on(&self) -> bool {
        matches!(self, Self::On | Self::PoweringOn)
    }

    /// Off or powering off.
    pub fn is_off(&self) -> bool {
        matches!(self, Self::Off | Self::PoweringOff)
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::On => f.write_str("On"),
            Self::Off => f.write_str("Off"),
            Self::PoweringOn => f.write_str("PoweringOn"),
            Self::PoweringOff => f.write_str("PoweringOff"),
            Self::Paused => f.write_str("Paused"),
            Self::Unknown(s) if s.is_empty() => f.write_str("unknown"),
            Self::Unknown(s) => write!(f, "{s}"),
        }
    }
}

/// `Status.Health`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Health {
    pub(crate) fn parse(s: Option<&str>) -> Self {
        match s {
            Some("OK") => Self::Ok,
            Some("Warning") => Self::Warning,
            Some("Critical") => Self::Critical,
            _ => Self::Unknown,
        }
    }
}

/// `BootSourceOverrideMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootMode {
    Uefi,
    Legacy,
}

impl BootMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uefi => "UEFI",
            Self::Legacy => "Legacy",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "UEFI" => Some(Self::Uefi),
            "Legacy" => Some(Self::Legacy),
            _ => None,
        }
    }
}

/// The boot override as read back from the BMC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootOverride {
    pub target: Option<String>,
    pub enabled: Option<String>,
    pub mode: Option<String>,
}

impl BootOverride {
    pub(crate) fn from_boot(b: Option<&Boot>) -> Self {
        let b = b.cloned().unwrap_or_default();
        Self {
            target: b.target,
            enabled: b.enabled,
            mode: b.mode,
        }
    }
}

/// What the idle check returns: the few fields that drift.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemSnapshot {
    /// The ComputerSystem's path, e.g. `/redfish/v1/Systems/1`.
    pub path: String,
    pub power: PowerState,
    pub health: Health,
    pub boot: BootOverride,
}

/// A NIC of the host (not of the BMC), with its MAC in lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    pub id: String,
    pub name: Option<String>,
    pub mac: String,
    pub link_up: Option<bool>,
    pub ipv4: Vec<String>,
}

/// Enrollment data.
#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    pub snapshot: SystemSnapshot,
    pub vendor: super::Vendor,
    pub redfish_version: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub uuid: Option<String>,
    pub bios_version: Option<String>,
    pub cpu_count: Option<u32>,
    /// `ProcessorSummary.CoreCount`, only when the BMC reports it.
    pub cpu_cores: Option<u32>,
    pub cpu_model: Option<String>,
    pub memory_gib: Option<f64>,
    /// Empty when the BMC lists no host NICs (OpenBMC); MACs then come from inspection.
    pub nics: Vec<Nic>,
    /// The reset types the BMC allows (inline AllowableValues or ActionInfo); `None` when
    /// it publishes neither, in which case every type is tried.
    pub reset_types: Option<Vec<String>>,
}

/// Power requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerAction {
    /// `On` (or `ForceOn` where only that is allowed).
    On,
    /// `ForceOff`.
    Off,
    /// `GracefulShutdown`.
    GracefulOff,
    /// `ForceRestart`, else `PowerCycle`, else `ForceOff` then `On`; `On` when off.
    Restart,
}

/// What a power request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PowerOutcome {
    /// The ResetTypes sent, in order; empty when the host already was in the wanted state.
    pub sent: Vec<String>,
    /// The last PowerState observed.
    pub state: PowerState,
}
