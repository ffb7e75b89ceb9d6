//! Enrollment's pure half: turning what the BMC reported into the status fields.

use crate::api::beskar7_machine::BootMode as ApiBootMode;
use crate::api::physical_host::{HardwareDetails, PowerState as ApiPowerState};
use crate::redfish::{Health, Inventory, PowerState};

/// `status.hardwareDetails` from a Redfish inventory.
pub fn hardware_details(inv: &Inventory) -> HardwareDetails {
    let clamp = |v: Option<u32>| v.and_then(|n| i32::try_from(n).ok());
    HardwareDetails {
        manufacturer: inv.manufacturer.clone(),
        model: inv.model.clone(),
        serial_number: inv.serial_number.clone(),
        sku: None,
        uuid: inv.uuid.clone(),
        bios_version: inv.bios_version.clone(),
        processor_count: clamp(inv.cpu_count),
        cpu_cores: clamp(inv.cpu_cores),
        processor_model: inv.cpu_model.clone(),
        // GiB may be fractional on some BMCs (e.g. 15.5); MiB is exact enough.
        memory_mib: inv.memory_gib.map(|g| (g * 1024.0).round() as i64),
        boot_mode: match inv.snapshot.boot.mode.as_deref() {
            Some("UEFI") => Some(ApiBootMode::Uefi),
            Some("Legacy") => Some(ApiBootMode::Legacy),
            _ => None,
        },
        health: match inv.snapshot.health {
            Health::Ok => Some("OK".into()),
            Health::Warning => Some("Warning".into()),
            Health::Critical => Some("Critical".into()),
            Health::Unknown => None,
        },
    }
}

/// The host NICs' MACs in lower case, as reported (at most the 64 the schema allows).
pub fn mac_addresses(inv: &Inventory) -> Vec<String> {
    inv.nics
        .iter()
        .map(|n| n.mac.to_ascii_lowercase())
        .take(64)
        .collect()
}

pub fn power_state(p: &PowerState) -> ApiPowerState {
    match p {
        PowerState::On => ApiPowerState::On,
        PowerState::Off => ApiPowerState::Off,
        PowerState::PoweringOn => ApiPowerState::PoweringOn,
        PowerState::PoweringOff => ApiPowerState::PoweringOff,
        PowerState::Paused => ApiPowerState::Paused,
        PowerState::Unknown(_) => ApiPowerState::Unknown,
    }
}
