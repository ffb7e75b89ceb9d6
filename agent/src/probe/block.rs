//! Whole disks from `/sys/block`.
//!
//! Skipped: virtual devices (loop, ram, zram, device-mapper, md, nbd; anything under
//! `/devices/virtual`), optical and floppy drives, hidden NVMe multipath paths and empty devices.
//! Size is `size` × 512 (the kernel always counts 512-byte sectors there); NVMe is told by name,
//! otherwise `queue/rotational` decides HDD or SSD. A disk "backs root" when the filesystem
//! mounted at `/` lives on it, directly or through device-mapper/md (`/proc/self/mountinfo`);
//! in the initramfs `/` is a RAM filesystem and no disk does.

use std::collections::HashMap;

use super::{Disk, DiskKind, Root, list_dir};

const SKIPPED_PREFIXES: &[&str] = &[
    "loop", "ram", "zram", "dm-", "md", "nbd", "sr", "fd", "zd", "drbd",
];

pub fn probe(root: &Root) -> Vec<Disk> {
    let backing = root_backing_disks(root);
    list_dir(&root.path("/sys/block"))
        .into_iter()
        .filter(|name| !SKIPPED_PREFIXES.iter().any(|p| name.starts_with(p)))
        .filter_map(|name| disk(root, &name, &backing))
        .collect()
}

fn disk(root: &Root, name: &str, backing: &[String]) -> Option<Disk> {
    let base = format!("/sys/block/{name}");
    let link = std::fs::read_link(root.path(&base)).unwrap_or_default();
    if link.to_string_lossy().contains("/devices/virtual/") {
        return None;
    }
    if root.read(&format!("{base}/hidden")).as_deref() == Some("1") {
        return None;
    }
    let sectors: u64 = root.read(&format!("{base}/size"))?.parse().ok()?;
    if sectors == 0 {
        return None;
    }
    let flag = |attr: &str| root.read(&format!("{base}/{attr}")).as_deref() == Some("1");
    let kind = if name.starts_with("nvme") {
        DiskKind::Nvme
    } else if root.read(&format!("{base}/queue/rotational")).as_deref() == Some("0") {
        DiskKind::Ssd
    } else {
        DiskKind::Hdd
    };
    Some(Disk {
        name: name.to_string(),
        size_bytes: sectors.saturating_mul(512),
        kind,
        model: root.read(&format!("{base}/device/model")),
        serial: root
            .read(&format!("{base}/device/serial"))
            .or_else(|| root.read(&format!("{base}/serial")))
            .or_else(|| vpd_serial(root, &base)),
        wwn: root
            .read(&format!("{base}/wwid"))
            .or_else(|| root.read(&format!("{base}/device/wwid"))),
        removable: flag("removable"),
        read_only: flag("ro"),
        backs_root: backing.iter().any(|b| b == name),
    })
}

/// SCSI/SATA disks: the unit serial number VPD page (0x80): 4 header bytes, then the serial.
fn vpd_serial(root: &Root, base: &str) -> Option<String> {
    let page = std::fs::read(root.path(&format!("{base}/device/vpd_pg80"))).ok()?;
    let len = usize::from(*page.get(3)?);
    let serial = String::from_utf8_lossy(page.get(4..4 + len)?)
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .to_string();
    (!serial.is_empty()).then_some(serial)
}

/// The whole disks holding the filesystem mounted at `/`.
fn root_backing_disks(root: &Root) -> Vec<String> {
    let Some(devnum) = root_devnum(root) else {
        return Vec::new();
    };
    // Every block device and partition by `major:minor`, with the whole device it belongs to.
    let mut by_dev: HashMap<String, (String, String)> = HashMap::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    for name in list_dir(&root.path("/sys/block")) {
        let base = format!("/sys/block/{name}");
        if let Some(dev) = root.read(&format!("{base}/dev")) {
            by_dev.insert(dev, (name.clone(), name.clone()));
        }
        owner.insert(name.clone(), name.clone());
        for part in list_dir(&root.path(&base)) {
            if root.path(&format!("{base}/{part}/partition")).exists() {
                if let Some(dev) = root.read(&format!("{base}/{part}/dev")) {
                    by_dev.insert(dev, (part.clone(), name.clone()));
                }
                owner.insert(part, name.clone());
            }
        }
    }
    let Some((_, first)) = by_dev.get(&devnum).cloned() else {
        return Vec::new();
    };
    // Follow device-mapper and md down to the disks (bounded, in case of odd cycles).
    let mut found = Vec::new();
    let mut work = vec![first];
    let mut steps = 0;
    while let Some(dev) = work.pop() {
        steps += 1;
        if steps > 64 {
            break;
        }
        let slaves = list_dir(&root.path(&format!("/sys/block/{dev}/slaves")));
        if slaves.is_empty() {
            if !found.contains(&dev) {
                found.push(dev);
            }
        } else {
            work.extend(slaves.iter().filter_map(|s| owner.get(s).cloned()));
        }
    }
    found
}

/// `major:minor` of the last mount at `/` in `/proc/self/mountinfo`; `None` for RAM filesystems
/// (major 0).
fn root_devnum(root: &Root) -> Option<String> {
    let text = std::fs::read_to_string(root.path("/proc/self/mountinfo")).ok()?;
    let devnum = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(4) == Some(&"/")).then(|| fields.get(2).map(|d| d.to_string()))?
        })
        .next_back()?;
    (!devnum.starts_with("0:")).then_some(devnum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing::TempTree;

    fn add_disk(tree: &TempTree, name: &str, sectors: u64, dev: &str) {
        tree.file(&format!("sys/block/{name}/size"), format!("{sectors}\n"));
        tree.file(&format!("sys/block/{name}/dev"), format!("{dev}\n"));
        tree.file(&format!("sys/block/{name}/removable"), "0\n");
        tree.file(&format!("sys/block/{name}/ro"), "0\n");
    }

    #[test]
    fn multi_disk_machine() {
        let tree = TempTree::new();
        add_disk(&tree, "nvme0n1", 1_875_000_000, "259:0");
        tree.file("sys/block/nvme0n1/device/model", "Dell Ent NVMe  \n");
        tree.file("sys/block/nvme0n1/device/serial", "  S64XNE0R301234\n");
        tree.file(
            "sys/block/nvme0n1/wwid",
            "eui.36344730526001230025384500000001\n",
        );
        add_disk(&tree, "sda", 3_907_029_168, "8:0");
        tree.file("sys/block/sda/queue/rotational", "1\n");
        tree.file("sys/block/sda/device/model", "ST2000NM0055\n");
        let mut pg80 = vec![0u8, 0x80, 0, 8];
        pg80.extend_from_slice(b"ZC20ABCD");
        tree.file("sys/block/sda/device/vpd_pg80", pg80);
        tree.file("sys/block/sda/device/wwid", "naa.5000c500a1b2c3d4\n");
        add_disk(&tree, "sdb", 937_703_088, "8:16");
        tree.file("sys/block/sdb/queue/rotational", "0\n");
        add_disk(&tree, "sdc", 60_000_000, "8:32");
        tree.file("sys/block/sdc/removable", "1\n");
        add_disk(&tree, "vda", 20_971_520, "252:0");
        tree.file("sys/block/vda/serial", "virtio-serial\n");
        tree.file("sys/block/vda/ro", "1\n");
        // Not disks: loop, ram, an optical drive, an empty device and a hidden multipath path.
        add_disk(&tree, "loop0", 1000, "7:0");
        add_disk(&tree, "ram0", 1000, "1:0");
        add_disk(&tree, "sr0", 1000, "11:0");
        add_disk(&tree, "sdd", 0, "8:48");
        add_disk(&tree, "nvme0c0n1", 1000, "259:9");
        tree.file("sys/block/nvme0c0n1/hidden", "1\n");

        let disks = probe(&tree.root());
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sda", "sdb", "sdc", "vda"]);
        let nvme = &disks[0];
        assert_eq!(nvme.size_bytes, 960_000_000_000);
        assert_eq!(nvme.kind, DiskKind::Nvme);
        assert_eq!(nvme.model.as_deref(), Some("Dell Ent NVMe"));
        assert_eq!(nvme.serial.as_deref(), Some("S64XNE0R301234"));
        assert!(nvme.wwn.as_deref().unwrap().starts_with("eui."));
        assert_eq!(nvme.path(), "/dev/nvme0n1");
        assert_eq!(disks[1].kind, DiskKind::Hdd);
        assert_eq!(disks[1].serial.as_deref(), Some("ZC20ABCD"));
        assert_eq!(disks[1].wwn.as_deref(), Some("naa.5000c500a1b2c3d4"));
        assert_eq!(disks[2].kind, DiskKind::Ssd);
        assert!(disks[3].removable);
        assert!(disks[4].read_only);
        assert_eq!(disks[4].serial.as_deref(), Some("virtio-serial"));
        assert!(
            disks.iter().all(|d| !d.backs_root),
            "no mountinfo: nothing backs /"
        );
    }

    #[test]
    fn virtual_devices_are_skipped_by_their_sysfs_link() {
        let tree = TempTree::new();
        add_disk(&tree, "real", 100, "8:0");
        tree.file("devices/virtual/block/vdisk/size", "100\n");
        tree.symlink("sys/block/vdisk", "../../devices/virtual/block/vdisk");
        let names: Vec<String> = probe(&tree.root()).into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["real"]);
    }

    #[test]
    fn root_on_a_partition_and_through_lvm() {
        let tree = TempTree::new();
        add_disk(&tree, "sda", 1000, "8:0");
        tree.file("sys/block/sda/sda2/partition", "2\n");
        tree.file("sys/block/sda/sda2/dev", "8:2\n");
        add_disk(&tree, "sdb", 2000, "8:16");
        tree.file("sys/block/sdb/sdb1/partition", "1\n");
        tree.file("sys/block/sdb/sdb1/dev", "8:17\n");
        add_disk(&tree, "sdc", 3000, "8:32");
        tree.file("sys/block/dm-0/dev", "254:0\n");
        tree.dir("sys/block/dm-0/slaves/sdb1");

        let backs = |tree: &TempTree| -> Vec<String> {
            probe(&tree.root())
                .into_iter()
                .filter(|d| d.backs_root)
                .map(|d| d.name)
                .collect()
        };
        tree.file(
            "proc/self/mountinfo",
            "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n\
             23 22 0:21 / /proc rw - proc proc rw\n",
        );
        assert_eq!(backs(&tree), ["sda"]);
        tree.file(
            "proc/self/mountinfo",
            "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw\n",
        );
        assert_eq!(backs(&tree), ["sdb"]);
        tree.file("proc/self/mountinfo", "1 0 0:2 / / rw - rootfs rootfs rw\n");
        assert!(backs(&tree).is_empty(), "the initramfs is in RAM");
    }
}
