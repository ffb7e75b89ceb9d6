//! Hardware probing from firmware and kernel truth, one file per source.
//!
//! Every probe reads below a root directory (`/` on a server; a fixture tree in tests). Probing
//! is best effort: a missing or unreadable source leaves its fields empty and adds a warning, so a
//! partial report still reaches the operator, which decides whether the machine is suitable.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub mod block;
pub mod cpu;
pub mod firmware;
pub mod memory;
pub mod net;
pub mod smbios;

/// What the agent learned about the machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hardware {
    pub system: SystemIdentity,
    pub boot_mode: Option<BootMode>,
    /// One entry per populated CPU socket.
    pub cpus: Vec<Cpu>,
    /// One entry per populated DIMM (or one for the whole memory without SMBIOS).
    pub memory: Vec<MemoryModule>,
    /// Whole disks, in kernel name order.
    pub disks: Vec<Disk>,
    /// Physical network interfaces, in name order.
    pub nics: Vec<Nic>,
    /// What could not be probed, for the console.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemIdentity {
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
    /// The SMBIOS system UUID (lowercase, hyphenated); not part of the v4.2 report.
    pub uuid: Option<String>,
    pub firmware_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    Uefi,
    Legacy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    pub id: String,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub cores: u32,
    pub threads: u32,
    pub frequency_mhz: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryModule {
    pub id: String,
    /// `DDR4`, `DDR5`, …
    pub kind: Option<String>,
    pub size_mib: u64,
    /// In MT/s (reported as MHz, as Redfish does).
    pub speed_mts: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskKind {
    Hdd,
    Ssd,
    Nvme,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Kernel name, e.g. `nvme0n1`.
    pub name: String,
    pub size_bytes: u64,
    pub kind: DiskKind,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// `wwid` as the kernel shows it (`naa.…`, `eui.…`, `t10.…`).
    pub wwn: Option<String>,
    pub removable: bool,
    pub read_only: bool,
    /// The disk holds the filesystem mounted at `/` (never the case in the initramfs).
    pub backs_root: bool,
}

impl Disk {
    pub fn path(&self) -> String {
        format!("/dev/{}", self.name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nic {
    pub name: String,
    pub mac: Option<String>,
    pub driver: Option<String>,
    pub speed_mbps: Option<u32>,
    pub carrier: Option<bool>,
    pub addresses: Vec<IpAddr>,
}

/// Where to read from.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    /// `rel` is an absolute system path such as `/sys/block`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }

    /// A sysfs/procfs attribute, trimmed; `None` when absent, unreadable or empty.
    pub fn read(&self, rel: &str) -> Option<String> {
        read_trimmed(&self.path(rel))
    }
}

pub(crate) fn read_trimmed(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The sorted names of a directory's entries (empty when it cannot be read).
pub fn list_dir(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Probes everything: SMBIOS first, kernel sources where SMBIOS has nothing.
pub fn probe(root: &Root) -> Hardware {
    let mut hw = Hardware::default();
    match smbios::probe(root) {
        Ok(Some(tables)) => {
            hw.system = tables.system;
            hw.cpus = tables.cpus;
            hw.memory = tables.memory;
        }
        Ok(None) => {}
        Err(e) => hw.warnings.push(format!("SMBIOS: {e}")),
    }
    if hw.cpus.is_empty() {
        hw.cpus = cpu::probe(root);
        if hw.cpus.is_empty() {
            hw.warnings
                .push("no CPU found in SMBIOS or /proc/cpuinfo".to_string());
        }
    }
    if hw.memory.is_empty() {
        hw.memory = memory::probe(root).into_iter().collect();
        if hw.memory.is_empty() {
            hw.warnings
                .push("no memory found in SMBIOS or /proc/meminfo".to_string());
        }
    }
    hw.boot_mode = Some(firmware::boot_mode(root));
    hw.disks = block::probe(root);
    hw.nics = net::probe(root);
    hw
}

#[cfg(test)]
pub(crate) mod testing;
