//! The inspection report of contract §5, as `POST /api/v1/inspection/{ns}/{host}` sends it.
//!
//! The shape is pinned by `golden_inspection_report.json`: camelCase names, memory capacity
//! with a unit (`32GiB`), disk size in decimal GB, CPU frequency as `2.0GHz`, NIC speed as
//! `10Gbps`. Scalars that were not probed are left out; lists are always present.

use serde::{Deserialize, Serialize};

use crate::probe::{self, Hardware};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectionReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(default)]
    pub cpus: Vec<Cpu>,
    #[serde(default)]
    pub memory: Vec<Memory>,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub nics: Vec<Nic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode_detected: Option<BootMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub cores: u32,
    pub threads: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    pub id: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// With a unit: `MiB` or `GiB`.
    pub capacity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    /// The device path, e.g. `/dev/nvme0n1`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Decimal gigabytes (10^9 bytes), rounded down.
    #[serde(rename = "sizeGB")]
    pub size_gb: u64,
    #[serde(rename = "type")]
    pub kind: DiskType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskType {
    #[serde(rename = "HDD")]
    Hdd,
    #[serde(rename = "SSD")]
    Ssd,
    #[serde(rename = "NVMe")]
    Nvme,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nic {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<String>,
    #[serde(default)]
    pub ip_addresses: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BootMode {
    #[serde(rename = "UEFI")]
    Uefi,
    #[serde(rename = "Legacy")]
    Legacy,
}

impl InspectionReport {
    pub fn from_hardware(hw: &Hardware) -> Self {
        Self {
            manufacturer: hw.system.manufacturer.clone(),
            model: hw.system.product.clone(),
            serial_number: hw.system.serial.clone(),
            cpus: hw
                .cpus
                .iter()
                .map(|c| Cpu {
                    id: c.id.clone(),
                    vendor: c.vendor.clone(),
                    model: c.model.clone(),
                    cores: c.cores,
                    threads: c.threads,
                    frequency: c.frequency_mhz.map(frequency),
                })
                .collect(),
            memory: hw
                .memory
                .iter()
                .map(|m| Memory {
                    id: m.id.clone(),
                    kind: m.kind.clone(),
                    capacity: capacity(m.size_mib),
                    speed: m.speed_mts.map(|s| format!("{s}MHz")),
                })
                .collect(),
            disks: hw
                .disks
                .iter()
                .map(|d| Disk {
                    name: d.path(),
                    model: d.model.clone(),
                    size_gb: d.size_bytes / 1_000_000_000,
                    kind: match d.kind {
                        probe::DiskKind::Hdd => DiskType::Hdd,
                        probe::DiskKind::Ssd => DiskType::Ssd,
                        probe::DiskKind::Nvme => DiskType::Nvme,
                    },
                    serial_number: d.serial.clone(),
                })
                .collect(),
            nics: hw
                .nics
                .iter()
                .map(|n| Nic {
                    name: n.name.clone(),
                    mac_address: n.mac.clone(),
                    driver: n.driver.clone(),
                    speed: n.speed_mbps.map(speed),
                    ip_addresses: n.addresses.iter().map(|a| a.to_string()).collect(),
                })
                .collect(),
            boot_mode_detected: hw.boot_mode.map(|b| match b {
                probe::BootMode::Uefi => BootMode::Uefi,
                probe::BootMode::Legacy => BootMode::Legacy,
            }),
            firmware_version: hw.system.firmware_version.clone(),
        }
    }
}

/// `2000` → `2.0GHz`, `2250` → `2.25GHz`, `800` → `800MHz`.
fn frequency(mhz: u32) -> String {
    if mhz < 1000 {
        return format!("{mhz}MHz");
    }
    let whole = mhz / 1000;
    let frac = format!("{:03}", mhz % 1000);
    let frac = frac.trim_end_matches('0');
    let frac = if frac.is_empty() { "0" } else { frac };
    format!("{whole}.{frac}GHz")
}

/// `32768` → `32GiB`, `7947` → `7947MiB`.
fn capacity(mib: u64) -> String {
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{}GiB", mib / 1024)
    } else {
        format!("{mib}MiB")
    }
}

/// `10000` → `10Gbps`, `2500` → `2500Mbps`.
fn speed(mbps: u32) -> String {
    if mbps >= 1000 && mbps.is_multiple_of(1000) {
        format!("{}Gbps", mbps / 1000)
    } else {
        format!("{mbps}Mbps")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(frequency(2000), "2.0GHz");
        assert_eq!(frequency(2250), "2.25GHz");
        assert_eq!(frequency(3001), "3.001GHz");
        assert_eq!(frequency(800), "800MHz");
        assert_eq!(capacity(32768), "32GiB");
        assert_eq!(capacity(7947), "7947MiB");
        assert_eq!(capacity(512), "512MiB");
        assert_eq!(speed(10000), "10Gbps");
        assert_eq!(speed(2500), "2500Mbps");
        assert_eq!(speed(100), "100Mbps");
    }

    #[test]
    fn unknowns_are_left_out() {
        let json = serde_json::to_value(InspectionReport::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"cpus": [], "memory": [], "disks": [], "nics": []})
        );
    }
}
