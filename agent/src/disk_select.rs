//! The root device: the disk the target is written to (Image) and the one hints describe.
//!
//! Eligible disks are not removable, not read-only and not backing the running system. With
//! hints (`beskar7.disk`, `-serial`, `-wwn`, `-min-gb`) the disk must be eligible and match every
//! hint given; several matches are an error (a hint that does not pin one disk is a mistake the
//! user should see). Without hints the smallest eligible disk is chosen (ties: kernel name order),
//! which keeps large data disks free.

use std::path::{Component, Path, PathBuf};

use crate::cmdline::DiskHints;
use crate::probe::{Disk, Root};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiskSelectError {
    #[error(
        "no eligible disk (not removable, not read-only, not backing the running system) among {0} disk(s)"
    )]
    NoEligibleDisk(usize),
    #[error("no eligible disk matches the root device hints ({hints}); disks seen: {seen}")]
    NoMatch { hints: String, seen: String },
    #[error(
        "the root device hints ({hints}) match {count} disks ({names}); make them more specific"
    )]
    Ambiguous {
        hints: String,
        count: usize,
        names: String,
    },
}

/// Why a disk was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'a> {
    pub disk: &'a Disk,
    /// `true` when hints chose it, `false` for the smallest-eligible default.
    pub by_hints: bool,
}

pub fn is_eligible(disk: &Disk) -> bool {
    !disk.removable && !disk.read_only && !disk.backs_root
}

/// Chooses the root disk. `root` resolves `/dev/disk/by-*` links given as `beskar7.disk`.
pub fn select<'a>(
    disks: &'a [Disk],
    hints: &DiskHints,
    root: &Root,
) -> Result<Selection<'a>, DiskSelectError> {
    let eligible: Vec<&Disk> = disks.iter().filter(|d| is_eligible(d)).collect();
    if hints.is_empty() {
        return eligible
            .into_iter()
            .min_by_key(|d| d.size_bytes)
            .map(|disk| Selection {
                disk,
                by_hints: false,
            })
            .ok_or(DiskSelectError::NoEligibleDisk(disks.len()));
    }
    let device = hints.device.as_deref().map(|d| kernel_name(d, root));
    let matches: Vec<&Disk> = eligible
        .into_iter()
        .filter(|d| device.as_ref().is_none_or(|name| &d.name == name))
        .filter(|d| {
            hints.serial.as_ref().is_none_or(|s| {
                d.serial
                    .as_deref()
                    .is_some_and(|ds| ds.eq_ignore_ascii_case(s))
            })
        })
        .filter(|d| {
            hints.wwn.as_ref().is_none_or(|w| {
                d.wwn
                    .as_deref()
                    .is_some_and(|dw| normalize_wwn(dw) == normalize_wwn(w))
            })
        })
        .filter(|d| {
            hints
                .min_gb
                .is_none_or(|gb| d.size_bytes >= gb.saturating_mul(1_000_000_000))
        })
        .collect();
    match matches.as_slice() {
        [disk] => Ok(Selection {
            disk,
            by_hints: true,
        }),
        [] => Err(DiskSelectError::NoMatch {
            hints: describe(hints),
            seen: disks
                .iter()
                .map(|d| {
                    let mut s = format!("{} {}GB", d.path(), d.size_bytes / 1_000_000_000);
                    if let Some(serial) = &d.serial {
                        s += &format!(" serial {serial}");
                    }
                    if !is_eligible(d) {
                        s += " (not eligible)";
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", "),
        }),
        many => {
            // A minimum size alone is a filter, not a name: take the smallest that fits.
            if hints.device.is_none() && hints.serial.is_none() && hints.wwn.is_none() {
                let disk = many.iter().min_by_key(|d| d.size_bytes).copied();
                if let Some(disk) = disk {
                    return Ok(Selection {
                        disk,
                        by_hints: true,
                    });
                }
            }
            Err(DiskSelectError::Ambiguous {
                hints: describe(hints),
                count: many.len(),
                names: many.iter().map(|d| d.path()).collect::<Vec<_>>().join(", "),
            })
        }
    }
}

fn describe(hints: &DiskHints) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &hints.device {
        parts.push(format!("beskar7.disk={d}"));
    }
    if let Some(s) = &hints.serial {
        parts.push(format!("beskar7.disk-serial={s}"));
    }
    if let Some(w) = &hints.wwn {
        parts.push(format!("beskar7.disk-wwn={w}"));
    }
    if let Some(g) = hints.min_gb {
        parts.push(format!("beskar7.disk-min-gb={g}"));
    }
    parts.join(" ")
}

/// `/dev/sda` → `sda`; `/dev/disk/by-id/...` → the kernel name its link points to.
fn kernel_name(device: &str, root: &Root) -> String {
    let mut path = PathBuf::from(device);
    // Follow a few levels of links under `root` (udev's by-id/by-path links are relative).
    for _ in 0..8 {
        let Ok(target) = std::fs::read_link(root.path(&path.to_string_lossy())) else {
            break;
        };
        let joined = path.parent().unwrap_or(Path::new("/")).join(target);
        path = normalize(&joined);
    }
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// `0x5000C500A1B2C3D4`, `naa.5000c500a1b2c3d4`, `wwn-0x5000c500a1b2c3d4` → one form.
pub fn normalize_wwn(wwn: &str) -> String {
    let lower = wwn.trim().to_ascii_lowercase();
    let mut s = lower.as_str();
    for prefix in ["wwn-", "naa.", "eui.", "0x"] {
        s = s.strip_prefix(prefix).unwrap_or(s);
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::DiskKind;
    use crate::probe::testing::TempTree;

    fn disk(name: &str, gb: u64) -> Disk {
        Disk {
            name: name.to_string(),
            size_bytes: gb * 1_000_000_000,
            kind: DiskKind::Ssd,
            model: None,
            serial: Some(format!("SN-{name}")),
            wwn: Some(format!("naa.5000c500{:08x}", gb)),
            removable: false,
            read_only: false,
            backs_root: false,
        }
    }

    fn machine() -> Vec<Disk> {
        let mut usb = disk("sda", 16);
        usb.removable = true;
        let mut ro = disk("sdb", 100);
        ro.read_only = true;
        let mut os = disk("sdc", 120);
        os.backs_root = true;
        vec![
            usb,
            ro,
            os,
            disk("sdd", 4000),
            disk("sde", 480),
            disk("sdf", 960),
        ]
    }

    fn pick(disks: &[Disk], hints: DiskHints) -> Result<String, DiskSelectError> {
        let tree = TempTree::new();
        select(disks, &hints, &tree.root()).map(|s| s.disk.name.clone())
    }

    #[test]
    fn smallest_eligible_disk_by_default() {
        assert_eq!(pick(&machine(), DiskHints::default()).unwrap(), "sde");
    }

    #[test]
    fn each_hint_selects() {
        let d = machine();
        let h = |f: fn(&mut DiskHints)| {
            let mut hints = DiskHints::default();
            f(&mut hints);
            hints
        };
        assert_eq!(
            pick(&d, h(|h| h.device = Some("/dev/sdf".into()))).unwrap(),
            "sdf"
        );
        assert_eq!(
            pick(&d, h(|h| h.serial = Some("sn-sdd".into()))).unwrap(),
            "sdd"
        );
        assert_eq!(
            pick(&d, h(|h| h.wwn = Some(format!("0x5000C500{:08X}", 960)))).unwrap(),
            "sdf"
        );
        assert_eq!(
            pick(&d, h(|h| h.min_gb = Some(500))).unwrap(),
            "sdf",
            "smallest that fits"
        );
        assert_eq!(
            pick(
                &d,
                h(|h| {
                    h.serial = Some("SN-sdd".into());
                    h.min_gb = Some(1000);
                })
            )
            .unwrap(),
            "sdd"
        );
    }

    #[test]
    fn hints_never_pick_an_ineligible_disk() {
        let d = machine();
        for name in ["/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/nvme9n1"] {
            let hints = DiskHints {
                device: Some(name.into()),
                ..DiskHints::default()
            };
            let err = pick(&d, hints).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("beskar7.disk={name}")), "{text}");
            assert!(
                text.contains("/dev/sda 16GB serial SN-sda (not eligible)"),
                "{text}"
            );
        }
        let hints = DiskHints {
            min_gb: Some(5000),
            ..DiskHints::default()
        };
        assert!(matches!(
            pick(&d, hints),
            Err(DiskSelectError::NoMatch { .. })
        ));
    }

    #[test]
    fn nothing_eligible_is_an_error() {
        let mut d = machine();
        d.retain(|d| !is_eligible(d));
        assert_eq!(
            pick(&d, DiskHints::default()),
            Err(DiskSelectError::NoEligibleDisk(3))
        );
        assert_eq!(
            pick(&[], DiskHints::default()),
            Err(DiskSelectError::NoEligibleDisk(0))
        );
    }

    #[test]
    fn ambiguous_hints_are_an_error() {
        let mut d = machine();
        d[4].serial = Some("SAME".into());
        d[5].serial = Some("SAME".into());
        let hints = DiskHints {
            serial: Some("SAME".into()),
            ..DiskHints::default()
        };
        let err = pick(&d, hints).unwrap_err();
        assert!(
            matches!(err, DiskSelectError::Ambiguous { count: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn by_id_links_resolve_to_the_kernel_name() {
        let tree = TempTree::new();
        tree.symlink("dev/disk/by-id/wwn-0x5000c500000003c0", "../../sdf");
        let hints = DiskHints {
            device: Some("/dev/disk/by-id/wwn-0x5000c500000003c0".into()),
            ..DiskHints::default()
        };
        let d = machine();
        let s = select(&d, &hints, &tree.root()).unwrap();
        assert_eq!(s.disk.name, "sdf");
        assert!(s.by_hints);
    }
}
