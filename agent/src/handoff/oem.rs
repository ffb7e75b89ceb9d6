//! The Image handoff's last step: the bootstrap data and the provider ID on the image's Kairos
//! `COS_OEM` partition, where Kairos reads cloud-configs at boot (`/oem`).
//!
//! The partition is found by its ext4 label, read straight from each partition's superblock
//! (no `blkid` in the initramfs), then mounted with `mount(2)` (`crate::sys`) and written with
//! std; the kernel's ext4 driver does the filesystem work. This needs root and a kernel with
//! ext4, so the tests cover finding the label (in files made by hand and by `mkfs.ext4`) and the
//! files written into a directory; the mount itself runs only on a machine.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::probe::{Root, list_dir};

/// The label Kairos gives its OEM partition.
pub const OEM_LABEL: &str = "COS_OEM";
/// The cloud-config file written at the root of `COS_OEM`.
pub const CONFIG_FILE: &str = "99_beskar7.yaml";

/// The ext4 (ext2/3) volume label of the filesystem at the start of `dev`, if it has one.
pub fn ext4_label(dev: &mut impl ReadSeek) -> io::Result<Option<String>> {
    let mut sb = [0u8; 1024];
    dev.seek(SeekFrom::Start(1024))?;
    if dev.read_exact(&mut sb).is_err() {
        return Ok(None); // too small to hold a filesystem
    }
    if u16::from_le_bytes([sb[0x38], sb[0x39]]) != 0xef53 {
        return Ok(None);
    }
    let name = &sb[0x78..0x88];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok((end > 0).then(|| String::from_utf8_lossy(&name[..end]).into_owned()))
}

pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// The partitions of `disk` (e.g. `sda1`, `nvme0n1p3`) as sysfs lists them.
pub fn partitions(root: &Root, disk: &str) -> Vec<String> {
    list_dir(&root.path(&format!("/sys/block/{disk}")))
        .into_iter()
        .filter(|p| {
            root.path(&format!("/sys/block/{disk}/{p}/partition"))
                .exists()
        })
        .collect()
}

/// The partition of `disk` whose filesystem is labelled `COS_OEM`, opened from `/dev`.
pub fn find_oem(root: &Root, disk: &str) -> Result<String, String> {
    let parts = partitions(root, disk);
    for part in &parts {
        let Ok(mut dev) = File::open(root.path(&format!("/dev/{part}"))) else {
            continue;
        };
        if ext4_label(&mut dev).ok().flatten().as_deref() == Some(OEM_LABEL) {
            return Ok(part.clone());
        }
    }
    Err(format!(
        "the image on /dev/{disk} has no ext4 partition labelled {OEM_LABEL} (partitions: {}); \
         is it a Kairos image?",
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(" ")
        }
    ))
}

/// The content of `99_beskar7.yaml`: the bootstrap data byte for byte, behind a
/// `#cloud-config` line when it does not start with one (Kairos ignores files without it).
pub fn cloud_config(bootstrap: &[u8]) -> Vec<u8> {
    if bootstrap.starts_with(b"#cloud-config") {
        bootstrap.to_vec()
    } else {
        let mut out = b"#cloud-config\n".to_vec();
        out.extend_from_slice(bootstrap);
        out
    }
}

/// Writes `99_beskar7.yaml` and `beskar7/provider-id` (no trailing newline), both 0600, into
/// `dir` (the mounted `COS_OEM`), replacing older ones, and syncs them.
pub fn write_files(dir: &Path, bootstrap: &[u8], provider_id: &str) -> io::Result<()> {
    let mut config = cloud_config(bootstrap);
    let written = write_private(&dir.join(CONFIG_FILE), &config);
    config.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&config);
    written?;
    let sub = dir.join("beskar7");
    match std::fs::DirBuilder::new().mode(0o700).create(&sub) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    write_private(&sub.join("provider-id"), provider_id.as_bytes())
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let _ = std::fs::remove_file(path); // an older file may have other permissions
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::tar::tests::scratch;
    use std::os::unix::fs::PermissionsExt;

    fn superblock(label: &str) -> Vec<u8> {
        let mut dev = vec![0u8; 4096];
        dev[1024 + 0x38..1024 + 0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
        dev[1024 + 0x78..1024 + 0x78 + label.len()].copy_from_slice(label.as_bytes());
        dev
    }

    #[test]
    fn labels_from_hand_made_superblocks() {
        let mut dev = io::Cursor::new(superblock("COS_OEM"));
        assert_eq!(ext4_label(&mut dev).unwrap().as_deref(), Some("COS_OEM"));
        let mut full = io::Cursor::new(superblock("0123456789abcdef"));
        assert_eq!(
            ext4_label(&mut full).unwrap().as_deref(),
            Some("0123456789abcdef")
        );
        let mut unlabelled = io::Cursor::new(superblock(""));
        assert_eq!(ext4_label(&mut unlabelled).unwrap(), None);
        let mut not_ext = io::Cursor::new(vec![0u8; 4096]);
        assert_eq!(ext4_label(&mut not_ext).unwrap(), None);
        let mut tiny = io::Cursor::new(vec![0u8; 100]);
        assert_eq!(ext4_label(&mut tiny).unwrap(), None);
    }

    #[test]
    fn finds_cos_oem_among_partitions_also_from_mkfs_ext4() {
        let dir = scratch("oem");
        let root = Root::new(&dir);
        for (part, label) in [("vda1", "COS_GRUB"), ("vda2", "COS_OEM")] {
            std::fs::create_dir_all(dir.join(format!("sys/block/vda/{part}"))).unwrap();
            std::fs::write(dir.join(format!("sys/block/vda/{part}/partition")), "1").unwrap();
            std::fs::create_dir_all(dir.join("dev")).unwrap();
            std::fs::write(dir.join(format!("dev/{part}")), superblock(label)).unwrap();
        }
        std::fs::create_dir_all(dir.join("sys/block/vda/queue")).unwrap();
        assert_eq!(partitions(&root, "vda"), ["vda1", "vda2"]);
        assert_eq!(find_oem(&root, "vda").unwrap(), "vda2");

        // A real ext4 filesystem (no root needed for a file; .ci/system-packages.sh installs
        // e2fsprogs where it is missing).
        let image = dir.join("dev/vda2");
        std::fs::write(&image, vec![0u8; 8 << 20]).unwrap();
        let made = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "COS_OEM"])
            .arg(&image)
            .status()
            .expect("mkfs.ext4 makes a real filesystem: install Debian's e2fsprogs");
        assert!(made.success(), "mkfs.ext4 failed: {made}");
        assert_eq!(find_oem(&root, "vda").unwrap(), "vda2");
        std::fs::write(&image, superblock("OTHER")).unwrap();
        let err = find_oem(&root, "vda").unwrap_err();
        assert!(
            err.contains("no ext4 partition labelled COS_OEM (partitions: vda1 vda2)"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn writes_the_two_files_private() {
        let dir = scratch("oem-files");
        std::fs::write(dir.join(CONFIG_FILE), "old").unwrap();
        write_files(&dir, b"install:\n  auto: true\n", "b7://ns/h1/m1").unwrap();
        let config = std::fs::read(dir.join(CONFIG_FILE)).unwrap();
        assert_eq!(config, b"#cloud-config\ninstall:\n  auto: true\n");
        assert_eq!(
            std::fs::read(dir.join("beskar7/provider-id")).unwrap(),
            b"b7://ns/h1/m1"
        );
        for f in [CONFIG_FILE, "beskar7/provider-id"] {
            let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        assert_eq!(
            cloud_config(b"#cloud-config\nk: v\n"),
            b"#cloud-config\nk: v\n"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
