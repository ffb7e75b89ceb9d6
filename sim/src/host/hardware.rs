//! What a virtual server is made of, and the inspection report an agent would send about it
//! (inspector-contract.md §5), built from the sim's own types so drift from the operator's
//! parser shows up as a failing test.

use crate::bmc::ServerSpec;
use serde_json::{Value, json};

/// One NIC: the MAC is how the operator's first stage recognises the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub name: String,
    /// Lower-case, colon-separated (`52:54:00:00:00:01`).
    pub mac: String,
    pub speed: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub name: String,
    pub size_gb: u64,
    /// `HDD`, `SSD` or `NVMe`.
    pub kind: String,
    pub serial: String,
}

/// The hardware of one virtual server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardware {
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub uuid: String,
    pub sockets: u32,
    pub cores_per_socket: u32,
    pub dimms: u32,
    pub dimm_gib: u32,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    /// `UEFI` or `Legacy`.
    pub boot_mode: String,
    pub firmware_version: String,
}

impl Hardware {
    /// A typical two-socket server: 2 × 16 cores, 8 × 32 GiB, one 960 GB NVMe disk and
    /// one NIC with `mac`. `index` makes serials and UUIDs unique.
    pub fn standard(index: u32, mac: &str) -> Hardware {
        Hardware {
            manufacturer: "Beskar7 Sim".into(),
            model: "Virtual Server V1".into(),
            serial: format!("SIM{index:07}"),
            uuid: format!("2d1f7a4e-6c3b-4f0a-9d51-{index:012x}"),
            sockets: 2,
            cores_per_socket: 16,
            dimms: 8,
            dimm_gib: 32,
            disks: vec![Disk {
                name: "/dev/nvme0n1".into(),
                size_gb: 960,
                kind: "NVMe".into(),
                serial: format!("SIMNVME{index:07}"),
            }],
            nics: vec![Nic {
                name: "eno1".into(),
                mac: mac.to_ascii_lowercase(),
                speed: "10Gbps".into(),
            }],
            boot_mode: "UEFI".into(),
            firmware_version: "1.0.0".into(),
        }
    }

    /// A server too small for most requirements: [`Hardware::standard`], shrunk.
    pub fn tiny(index: u32, mac: &str) -> Hardware {
        Hardware::standard(index, mac).shrunk()
    }

    /// The same server (identity, NICs) with 1 socket × 2 cores, 1 × 4 GiB and one 16 GB disk.
    pub fn shrunk(&self) -> Hardware {
        let mut hw = self.clone();
        hw.sockets = 1;
        hw.cores_per_socket = 2;
        hw.dimms = 1;
        hw.dimm_gib = 4;
        hw.disks = vec![Disk {
            name: "/dev/sda".into(),
            size_gb: 16,
            kind: "SSD".into(),
            serial: format!("{}-SDA", self.serial),
        }];
        hw
    }

    pub fn total_cores(&self) -> u32 {
        self.sockets * self.cores_per_socket
    }

    pub fn memory_gib(&self) -> u32 {
        self.dimms * self.dimm_gib
    }

    /// The MAC iPXE boots from: the first NIC's.
    pub fn boot_mac(&self) -> Option<&str> {
        self.nics.first().map(|n| n.mac.as_str())
    }

    /// What the server's BMC describes (the generated Redfish tree).
    pub fn server_spec(&self) -> ServerSpec {
        ServerSpec {
            serial: self.serial.clone(),
            uuid: self.uuid.clone(),
            macs: self.nics.iter().map(|n| n.mac.clone()).collect(),
            cpu_sockets: self.sockets,
            cpu_cores: self.total_cores(),
            memory_gib: self.memory_gib(),
            powered_on: false,
            boot_mode: self.boot_mode.clone(),
        }
    }

    /// The inspection report in the contract's JSON form (one CPU entry per socket, one memory
    /// entry per DIMM with a unit, sizes in GB).
    pub fn report(&self) -> Value {
        let cpus: Vec<Value> = (1..=self.sockets)
            .map(|s| {
                json!({"id": format!("CPU.Socket.{s}"), "vendor": "Intel",
                    "model": "Intel(R) Xeon(R) Sim CPU @ 2.00GHz",
                    "cores": self.cores_per_socket, "threads": self.cores_per_socket * 2,
                    "frequency": "2.0GHz"})
            })
            .collect();
        let memory: Vec<Value> = (1..=self.dimms)
            .map(|d| {
                json!({"id": format!("DIMM.{d}"), "type": "DDR4",
                    "capacity": format!("{}GiB", self.dimm_gib), "speed": "3200MHz"})
            })
            .collect();
        let disks: Vec<Value> = self
            .disks
            .iter()
            .map(|d| {
                json!({"name": d.name, "model": "Sim Disk", "sizeGB": d.size_gb,
                    "type": d.kind, "serialNumber": d.serial})
            })
            .collect();
        let nics: Vec<Value> = self
            .nics
            .iter()
            .map(|n| {
                json!({"name": n.name, "macAddress": n.mac, "driver": "virtio_net",
                    "speed": n.speed, "ipAddresses": []})
            })
            .collect();
        json!({
            "manufacturer": self.manufacturer, "model": self.model,
            "serialNumber": self.serial, "bootModeDetected": self.boot_mode,
            "firmwareVersion": self.firmware_version,
            "cpus": cpus, "memory": memory, "disks": disks, "nics": nics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_sums_to_the_hardware() {
        let hw = Hardware::standard(3, "52:54:00:AA:00:03");
        let r = hw.report();
        let cores: u64 = r["cpus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cores"].as_u64().unwrap())
            .sum();
        assert_eq!(cores, 32);
        assert_eq!(r["memory"].as_array().unwrap().len(), 8);
        assert_eq!(r["memory"][0]["capacity"], "32GiB");
        assert_eq!(r["disks"][0]["sizeGB"], 960);
        assert_eq!(r["nics"][0]["macAddress"], "52:54:00:aa:00:03");
        assert_eq!(hw.server_spec().cpu_cores, 32);
    }

    /// Every field the report sends is one the golden report has, with the same JSON type, so
    /// a rename on either side fails here.
    #[test]
    fn the_report_uses_the_golden_reports_fields_and_types() {
        let golden: Value = serde_json::from_str(include_str!(
            "../../../../shared/fixtures/inspector-contract/golden_inspection_report.json"
        ))
        .unwrap();
        fn same_shape(ours: &Value, golden: &Value, path: &str) {
            match (ours, golden) {
                (Value::Object(o), Value::Object(g)) => {
                    for (k, v) in o {
                        let gv = g
                            .get(k)
                            .unwrap_or_else(|| panic!("{path}.{k} is not in the golden report"));
                        same_shape(v, gv, &format!("{path}.{k}"));
                    }
                }
                (Value::Array(o), Value::Array(g)) => {
                    if let (Some(first), Some(gfirst)) = (o.first(), g.first()) {
                        same_shape(first, gfirst, &format!("{path}[]"));
                    }
                }
                (Value::String(_), Value::String(_)) | (Value::Number(_), Value::Number(_)) => {}
                (o, g) => panic!("{path}: {o} where the golden report has {g}"),
            }
        }
        let ours = Hardware::standard(1, "52:54:00:00:00:01").report();
        same_shape(&ours, &golden, "report");
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ours), keys(&golden), "the same top-level fields");
    }
}
