//! CPUs without SMBIOS: `/proc/cpuinfo` for names and `/sys/devices/system/cpu` for topology.
//!
//! Topology (`topology/physical_package_id`, `topology/core_id` of each online CPU) gives one
//! entry per socket with its real core and thread counts; without it, `physical id` and
//! `core id` of `/proc/cpuinfo` are used; without those either (some VMs), every logical CPU
//! counts as one core of a single socket.

use std::collections::{BTreeMap, BTreeSet};

use super::{Cpu, Root, list_dir};

/// `GenuineIntel` / `Intel(R) Corporation` → `Intel`, `AuthenticAMD` / `Advanced Micro
/// Devices, Inc.` → `AMD`; anything else unchanged.
pub fn normalize_vendor(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("intel") {
        "Intel".to_string()
    } else if lower.contains("amd") || lower.contains("advanced micro devices") {
        "AMD".to_string()
    } else {
        raw.trim().to_string()
    }
}

/// One logical CPU as `/proc/cpuinfo` describes it.
#[derive(Default)]
struct Logical {
    processor: Option<u32>,
    package: Option<u32>,
    core: Option<u32>,
    vendor: Option<String>,
    model: Option<String>,
    mhz: Option<u32>,
}

fn cpuinfo(text: &str) -> Vec<Logical> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut l = Logical::default();
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "processor" => l.processor = value.parse().ok(),
                "physical id" => l.package = value.parse().ok(),
                "core id" => l.core = value.parse().ok(),
                "vendor_id" => l.vendor = Some(normalize_vendor(value)),
                "model name" => l.model = Some(value.to_string()),
                "cpu MHz" => l.mhz = value.parse::<f64>().ok().map(|m| m.round() as u32),
                _ => {}
            }
        }
        if l.processor.is_some() {
            out.push(l);
        }
    }
    out
}

fn topology(root: &Root, cpu: u32) -> Option<(u32, u32)> {
    let base = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
    let package = root
        .read(&format!("{base}/physical_package_id"))?
        .parse()
        .ok()?;
    let core = root.read(&format!("{base}/core_id"))?.parse().ok()?;
    Some((package, core))
}

pub fn probe(root: &Root) -> Vec<Cpu> {
    let mut logical = std::fs::read_to_string(root.path("/proc/cpuinfo"))
        .map(|t| cpuinfo(&t))
        .unwrap_or_default();
    if logical.is_empty() {
        // No cpuinfo: count the CPU directories of sysfs.
        logical = list_dir(&root.path("/sys/devices/system/cpu"))
            .iter()
            .filter_map(|n| n.strip_prefix("cpu")?.parse().ok())
            .map(|n| Logical {
                processor: Some(n),
                ..Logical::default()
            })
            .collect();
    }
    let max_mhz = root
        .read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
        .and_then(|khz| khz.parse::<u32>().ok())
        .map(|khz| khz / 1000);

    // package → (core ids, thread count, first logical CPU's description)
    let mut sockets: BTreeMap<u32, (BTreeSet<u32>, u32, usize)> = BTreeMap::new();
    for (i, l) in logical.iter().enumerate() {
        let cpu = l.processor.unwrap_or_default();
        let (package, core) = match topology(root, cpu) {
            Some(t) => t,
            None => (l.package.unwrap_or(0), l.core.unwrap_or(cpu)),
        };
        let entry = sockets.entry(package).or_insert((BTreeSet::new(), 0, i));
        entry.0.insert(core);
        entry.1 += 1;
    }
    sockets
        .into_iter()
        .map(|(package, (cores, threads, first))| {
            let l = &logical[first];
            Cpu {
                id: format!("CPU.Socket.{}", package + 1),
                vendor: l.vendor.clone(),
                model: l.model.clone(),
                cores: cores.len() as u32,
                threads,
                frequency_mhz: max_mhz.or(l.mhz),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing::TempTree;

    fn cpuinfo_block(n: u32, package: u32, core: u32) -> String {
        format!(
            "processor\t: {n}\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7313 16-Core Processor\n\
             cpu MHz\t\t: 2999.998\nphysical id\t: {package}\ncore id\t\t: {core}\n\n"
        )
    }

    #[test]
    fn sockets_cores_and_threads_from_topology() {
        let tree = TempTree::new();
        // 2 sockets × 2 cores × 2 threads; cpuinfo's ids are deliberately wrong: sysfs wins.
        let mut text = String::new();
        for n in 0..8 {
            text += &cpuinfo_block(n, 0, 0);
            let package = n / 4;
            let core = (n % 4) / 2;
            tree.file(
                &format!("sys/devices/system/cpu/cpu{n}/topology/physical_package_id"),
                format!("{package}\n"),
            );
            tree.file(
                &format!("sys/devices/system/cpu/cpu{n}/topology/core_id"),
                format!("{core}\n"),
            );
        }
        tree.file("proc/cpuinfo", text);
        tree.file(
            "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
            "3000000\n",
        );
        let cpus = probe(&tree.root());
        assert_eq!(cpus.len(), 2);
        for (i, c) in cpus.iter().enumerate() {
            assert_eq!(c.id, format!("CPU.Socket.{}", i + 1));
            assert_eq!((c.cores, c.threads), (2, 4));
            assert_eq!(c.vendor.as_deref(), Some("AMD"));
            assert_eq!(c.model.as_deref(), Some("AMD EPYC 7313 16-Core Processor"));
            assert_eq!(c.frequency_mhz, Some(3000));
        }
    }

    #[test]
    fn cpuinfo_ids_without_sysfs() {
        let tree = TempTree::new();
        let text: String = (0..4).map(|n| cpuinfo_block(n, 0, n / 2)).collect();
        tree.file("proc/cpuinfo", text);
        let cpus = probe(&tree.root());
        assert_eq!(cpus.len(), 1);
        assert_eq!((cpus[0].cores, cpus[0].threads), (2, 4));
        assert_eq!(cpus[0].frequency_mhz, Some(3000));
    }

    #[test]
    fn vm_without_ids_counts_each_cpu_as_a_core() {
        let tree = TempTree::new();
        tree.file(
            "proc/cpuinfo",
            "processor\t: 0\nvendor_id\t: GenuineIntel\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n",
        );
        let cpus = probe(&tree.root());
        assert_eq!(cpus.len(), 1);
        assert_eq!((cpus[0].cores, cpus[0].threads), (2, 2));
        assert_eq!(cpus[0].vendor.as_deref(), Some("Intel"));
    }

    #[test]
    fn nothing_to_read_gives_nothing() {
        assert!(probe(&TempTree::new().root()).is_empty());
    }
}
