//! The agent's inspection report (inspector contract §5): parsed leniently (every field optional,
//! unknown fields ignored), normalized into [`InspectionReport`] with totals, and bounded to
//! 64 KiB so one report cannot bloat the host object.

use serde::Deserialize;

use crate::api::physical_host::{CpuInfo, DiskInfo, MemoryInfo, NicInfo};
use crate::api::{BootMode, HardwareRequirements, InspectionReport};

use super::render::normalize_mac;

/// The normalized report kept in status is at most this many bytes of JSON.
pub const MAX_STORED_REPORT: usize = 64 * 1024;

/// The report as agents send it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireReport {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub boot_mode_detected: Option<String>,
    pub firmware_version: Option<String>,
    #[serde(default)]
    pub cpus: Vec<WireCpu>,
    #[serde(default)]
    pub memory: Vec<WireMemory>,
    #[serde(default)]
    pub disks: Vec<WireDisk>,
    #[serde(default)]
    pub nics: Vec<WireNic>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireCpu {
    pub id: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub cores: Option<u32>,
    pub threads: Option<u32>,
    pub frequency: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireMemory {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// A number with a unit ("32GiB"); a bare JSON number is accepted here and reported as an
    /// error, since its unit is unknown.
    pub capacity: Option<serde_json::Value>,
    pub speed: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireDisk {
    pub name: Option<String>,
    pub model: Option<String>,
    #[serde(rename = "sizeGB")]
    pub size_gb: Option<u64>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub serial_number: Option<String>,
    pub wwn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireNic {
    pub name: Option<String>,
    pub mac_address: Option<String>,
    pub driver: Option<String>,
    pub speed: Option<String>,
    #[serde(default)]
    pub ip_addresses: Vec<String>,
}

/// Parses a report body; the error names the problem (serde_json says what and where).
pub fn parse(body: &[u8]) -> Result<WireReport, String> {
    serde_json::from_slice(body).map_err(|e| format!("the inspection report is not valid: {e}"))
}

/// The normalized report and the problems to record on the host (one line each).
#[derive(Debug)]
pub struct Normalized {
    pub report: InspectionReport,
    pub errors: Vec<String>,
}

/// Control characters removed and at most `max` characters kept.
fn clean(s: Option<&String>, max: usize) -> Option<String> {
    let s: String = s?.chars().filter(|c| !c.is_control()).take(max).collect();
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// `"32GiB"` → MiB. Units MB, MiB, GB, GiB, TB, TiB (a space before the unit is allowed).
pub fn capacity_mib(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mib = match unit.trim() {
        "MiB" => n,
        "GiB" => n * 1024.0,
        "TiB" => n * 1024.0 * 1024.0,
        "MB" => n * 1e6 / 1048576.0,
        "GB" => n * 1e9 / 1048576.0,
        "TB" => n * 1e12 / 1048576.0,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some(mib)
}

fn cap<T>(list: &mut Vec<T>, max: usize, what: &str, notes: &mut Vec<String>) {
    if list.len() > max {
        notes.push(format!("{what}: kept {max} of {}", list.len()));
        list.truncate(max);
    }
}

/// Normalizes a report: strings cleaned and shortened, totals computed (CPU cores, memory in MiB,
/// disk GB), lists capped, the whole bounded to [`MAX_STORED_REPORT`]; `truncated` says what was
/// cut. Totals count every entry received, also those cut from the stored lists.
pub fn normalize(wire: WireReport) -> Normalized {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let cpu_cores: u64 = wire
        .cpus
        .iter()
        .filter_map(|c| c.cores)
        .map(u64::from)
        .sum();
    let disk_gb: u64 = wire.disks.iter().filter_map(|d| d.size_gb).sum();
    let mut memory_mib = 0f64;
    let mut memory_ok = true;
    for (i, m) in wire.memory.iter().enumerate() {
        let label = match clean(m.id.as_ref(), 64) {
            Some(id) => format!("memory[{i}] ({id})"),
            None => format!("memory[{i}]"),
        };
        match &m.capacity {
            None => {}
            Some(serde_json::Value::String(s)) => match capacity_mib(s) {
                Some(mib) => memory_mib += mib,
                None => {
                    memory_ok = false;
                    let shown: String = s.chars().filter(|c| !c.is_control()).take(32).collect();
                    errors.push(format!(
                        "{label}: capacity {shown:?} has no unit; use MB, MiB, GB, GiB, TB or TiB"
                    ));
                }
            },
            Some(other) => {
                memory_ok = false;
                let shown: String = other.to_string().chars().take(32).collect();
                errors.push(format!(
                    "{label}: capacity {shown} has no unit; use a string such as \"32GiB\""
                ));
            }
        }
    }
    let mut cpus: Vec<CpuInfo> = wire
        .cpus
        .iter()
        .map(|c| CpuInfo {
            id: clean(c.id.as_ref(), 64),
            vendor: clean(c.vendor.as_ref(), 64),
            model: clean(c.model.as_ref(), 256),
            cores: c.cores.map(|n| n.min(i32::MAX as u32) as i32),
            threads: c.threads.map(|n| n.min(i32::MAX as u32) as i32),
            frequency: clean(c.frequency.as_ref(), 32),
        })
        .collect();
    let mut memory: Vec<MemoryInfo> = wire
        .memory
        .iter()
        .map(|m| MemoryInfo {
            id: clean(m.id.as_ref(), 64),
            type_: clean(m.type_.as_ref(), 32),
            capacity: match &m.capacity {
                Some(serde_json::Value::String(s)) => clean(Some(s), 32),
                Some(other) => Some(other.to_string().chars().take(32).collect()),
                None => None,
            },
            speed: clean(m.speed.as_ref(), 32),
        })
        .collect();
    let mut disks: Vec<DiskInfo> = wire
        .disks
        .iter()
        .map(|d| DiskInfo {
            name: clean(d.name.as_ref(), 256),
            model: clean(d.model.as_ref(), 256),
            size_gb: d.size_gb.map(|n| n.min(i64::MAX as u64) as i64),
            type_: clean(d.type_.as_ref(), 16),
            serial_number: clean(d.serial_number.as_ref(), 128),
            wwn: clean(d.wwn.as_ref(), 128),
        })
        .collect();
    let mut dropped_macs = 0;
    let mut nics: Vec<NicInfo> = wire
        .nics
        .iter()
        .map(|n| {
            let mac = n.mac_address.as_deref().and_then(normalize_mac);
            if n.mac_address.is_some() && mac.is_none() {
                dropped_macs += 1;
            }
            let mut ips: Vec<String> = n
                .ip_addresses
                .iter()
                .filter_map(|ip| clean(Some(ip), 64))
                .collect();
            ips.truncate(16);
            NicInfo {
                name: clean(n.name.as_ref(), 64),
                mac_address: mac,
                driver: clean(n.driver.as_ref(), 64),
                speed: clean(n.speed.as_ref(), 32),
                ip_addresses: ips,
            }
        })
        .collect();
    if dropped_macs > 0 {
        notes.push(format!(
            "{dropped_macs} malformed NIC MAC address(es) dropped"
        ));
    }
    cap(&mut cpus, 16, "cpus", &mut notes);
    cap(&mut memory, 64, "memory", &mut notes);
    cap(&mut disks, 64, "disks", &mut notes);
    cap(&mut nics, 32, "nics", &mut notes);
    let boot_mode_detected = match wire.boot_mode_detected.as_deref() {
        Some("UEFI") => Some(BootMode::Uefi),
        Some("Legacy") => Some(BootMode::Legacy),
        Some(_) => {
            notes.push("bootModeDetected: not UEFI or Legacy, dropped".into());
            None
        }
        None => None,
    };
    let mut report = InspectionReport {
        received_at: None,
        manufacturer: clean(wire.manufacturer.as_ref(), 256),
        model: clean(wire.model.as_ref(), 256),
        serial_number: clean(wire.serial_number.as_ref(), 256),
        boot_mode_detected,
        firmware_version: clean(wire.firmware_version.as_ref(), 256),
        cpu_cores: (!wire.cpus.is_empty()).then(|| cpu_cores.min(i32::MAX as u64) as i32),
        memory_mib: (memory_ok && !wire.memory.is_empty()).then(|| memory_mib.round() as i64),
        disk_gb: (!wire.disks.is_empty()).then(|| disk_gb.min(i64::MAX as u64) as i64),
        cpus,
        memory,
        disks,
        nics,
        truncated: None,
    };
    // Still too big (long strings in long lists): drop entries from the longest list.
    let size = |r: &InspectionReport| serde_json::to_vec(r).map(|v| v.len()).unwrap_or(0);
    let mut shrunk = false;
    while size(&report) + 300 > MAX_STORED_REPORT {
        shrunk = true;
        let lens = [
            report.nics.len(),
            report.disks.len(),
            report.memory.len(),
            report.cpus.len(),
        ];
        match lens.iter().enumerate().max_by_key(|(_, n)| **n) {
            Some((_, 0)) | None => break,
            Some((0, _)) => drop(report.nics.pop()),
            Some((1, _)) => drop(report.disks.pop()),
            Some((2, _)) => drop(report.memory.pop()),
            Some(_) => drop(report.cpus.pop()),
        }
    }
    if shrunk {
        notes.push(format!(
            "lists shortened to keep the report under {} KiB",
            MAX_STORED_REPORT / 1024
        ));
    }
    if !notes.is_empty() {
        let mut note = notes.join("; ");
        note.truncate(
            (0..=256.min(note.len()))
                .rev()
                .find(|i| note.is_char_boundary(*i))
                .unwrap_or(0),
        );
        report.truncated = Some(note);
    }
    Normalized { report, errors }
}

/// One message per requirement the report does not meet ("found 8 cores, need 16"); empty when
/// it meets them all. Memory is compared in GiB (MiB / 1024), disk in GB as reported.
pub fn shortfalls(report: &InspectionReport, req: &HardwareRequirements) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(need) = req.min_cpu_cores {
        match report.cpu_cores {
            Some(found) if found >= need => {}
            Some(found) => out.push(format!("found {found} CPU cores, need {need}")),
            None => out.push(format!(
                "the report has no CPU core count, need {need} cores"
            )),
        }
    }
    if let Some(need) = req.min_memory_gb {
        match report.memory_mib {
            Some(mib) if mib / 1024 >= i64::from(need) => {}
            Some(mib) => out.push(format!("found {} GiB of memory, need {need}", mib / 1024)),
            None => out.push(format!(
                "the report has no usable memory size, need {need} GB"
            )),
        }
    }
    if let Some(need) = req.min_disk_gb {
        match report.disk_gb {
            Some(gb) if gb >= i64::from(need) => {}
            Some(gb) => out.push(format!("found {gb} GB of disk, need {need}")),
            None => out.push(format!("the report has no disks, need {need} GB")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_need_a_unit() {
        assert_eq!(capacity_mib("32GiB"), Some(32768.0));
        assert_eq!(capacity_mib("1 TiB"), Some(1048576.0));
        assert_eq!(capacity_mib("512MiB"), Some(512.0));
        assert!((capacity_mib("1GB").unwrap() - 953.674).abs() < 0.01);
        for bad in ["32768", "32 kB", "GiB", "", "-1GiB", "32gib"] {
            assert_eq!(capacity_mib(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn shortfalls_name_each_requirement() {
        let report = InspectionReport {
            cpu_cores: Some(8),
            memory_mib: Some(16384),
            disk_gb: Some(100),
            ..InspectionReport::default()
        };
        let req = HardwareRequirements {
            min_cpu_cores: Some(16),
            min_memory_gb: Some(16),
            min_disk_gb: Some(200),
        };
        assert_eq!(
            shortfalls(&report, &req),
            vec![
                "found 8 CPU cores, need 16".to_string(),
                "found 100 GB of disk, need 200".to_string()
            ]
        );
    }

    #[test]
    fn huge_reports_are_capped_with_a_note() {
        let wire = WireReport {
            disks: (0..500)
                .map(|i| WireDisk {
                    name: Some(format!("/dev/sd{i}")),
                    model: Some("m".repeat(1000)),
                    size_gb: Some(1),
                    ..WireDisk::default()
                })
                .collect(),
            ..WireReport::default()
        };
        let n = normalize(wire);
        assert!(serde_json::to_vec(&n.report).unwrap().len() <= MAX_STORED_REPORT);
        assert_eq!(
            n.report.disk_gb,
            Some(500),
            "totals count every disk received"
        );
        assert_eq!(n.report.disks.len(), 64);
        assert!(
            n.report
                .truncated
                .unwrap()
                .contains("disks: kept 64 of 500")
        );
    }
}
