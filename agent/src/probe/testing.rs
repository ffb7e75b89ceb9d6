//! Test helpers: fixture trees in a fresh temporary directory, and SMBIOS tables built byte by
//! byte. Shared by the unit tests and (through `#[path]`) the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::Root;

/// A directory under the system temp dir, removed on drop.
pub struct TempTree {
    dir: PathBuf,
}

impl TempTree {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "beskar7-agent-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self { dir }
    }

    pub fn root(&self) -> Root {
        Root::new(&self.dir)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn dir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).expect("create fixture dir");
        p
    }

    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create fixture dir");
        }
        std::fs::write(p, contents).expect("write fixture file");
    }

    /// A symlink at `rel` pointing to `target` (which need not exist, as in sysfs fixtures).
    pub fn symlink(&self, rel: &str, target: impl AsRef<Path>) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create fixture dir");
        }
        std::os::unix::fs::symlink(target, p).expect("create fixture symlink");
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An SMBIOS structure table (the bytes of `/sys/firmware/dmi/tables/DMI`).
#[derive(Default)]
pub struct Smbios {
    bytes: Vec<u8>,
    handle: u16,
}

impl Smbios {
    pub fn new() -> Self {
        Self::default()
    }

    /// One structure: `formatted` is the formatted area after the 4-byte header.
    pub fn structure(mut self, kind: u8, formatted: &[u8], strings: &[&str]) -> Self {
        self.bytes.push(kind);
        self.bytes
            .push(u8::try_from(formatted.len() + 4).expect("short structure"));
        self.bytes.extend_from_slice(&self.handle.to_le_bytes());
        self.handle += 1;
        self.bytes.extend_from_slice(formatted);
        if strings.is_empty() {
            self.bytes.extend_from_slice(&[0, 0]);
        } else {
            for s in strings {
                self.bytes.extend_from_slice(s.as_bytes());
                self.bytes.push(0);
            }
            self.bytes.push(0);
        }
        self
    }

    /// Type 0: vendor (string 1), version (string 2), release date (string 3).
    pub fn bios(self, version: &str) -> Self {
        let mut f = vec![0u8; 0x18 - 4];
        put(&mut f, 0x04, &[1]); // vendor
        put(&mut f, 0x05, &[2]); // version
        put(&mut f, 0x08, &[3]); // release date
        self.structure(0, &f, &["Fixture BIOS Inc.", version, "01/02/2025"])
    }

    /// Type 1: manufacturer, product, version, serial, UUID (SMBIOS 2.6+ byte order).
    pub fn system(self, manufacturer: &str, product: &str, serial: &str, uuid: [u8; 16]) -> Self {
        let mut f = vec![0u8; 0x1B - 4];
        put(&mut f, 0x04, &[1]);
        put(&mut f, 0x05, &[2]);
        put(&mut f, 0x07, &[3]); // no version (0x06)
        put(&mut f, 0x08, &uuid);
        self.structure(1, &f, &[manufacturer, product, serial])
    }

    /// Type 4 (SMBIOS 3.0 length), a populated socket. Counts above 255 use the 16-bit fields.
    pub fn processor(
        self,
        socket: &str,
        manufacturer: &str,
        version: &str,
        cores: u16,
        threads: u16,
        current_mhz: u16,
    ) -> Self {
        let mut f = processor_area(cores, threads, current_mhz, 0x41);
        put(&mut f, 0x07, &[2]); // manufacturer
        put(&mut f, 0x10, &[3]); // version
        self.structure(4, &f, &[socket, manufacturer, version])
    }

    /// Type 4 for an empty socket (status bit 6 clear).
    pub fn empty_socket(self, socket: &str) -> Self {
        let f = processor_area(0, 0, 0, 0x00);
        self.structure(4, &f, &[socket])
    }

    /// Type 17 (SMBIOS 3.2 length); `size_mib` 0 is an empty slot. Sizes of 32 GiB and more use
    /// the extended size field, as real firmware does.
    pub fn dimm(self, locator: &str, size_mib: u32, memory_type: u8, speed_mts: u16) -> Self {
        let mut f = vec![0u8; 0x28 - 4];
        put(&mut f, 0x08, &72u16.to_le_bytes());
        put(&mut f, 0x0A, &64u16.to_le_bytes());
        if size_mib >= 0x7FFF {
            put(&mut f, 0x0C, &0x7FFFu16.to_le_bytes());
            put(&mut f, 0x1C, &size_mib.to_le_bytes());
        } else {
            put(
                &mut f,
                0x0C,
                &u16::try_from(size_mib).unwrap_or(0).to_le_bytes(),
            );
        }
        put(&mut f, 0x0E, &[0x09]); // DIMM
        put(&mut f, 0x10, &[1]); // device locator
        put(&mut f, 0x11, &[2]); // bank locator
        put(&mut f, 0x12, &[memory_type]);
        put(&mut f, 0x15, &speed_mts.to_le_bytes());
        put(&mut f, 0x20, &speed_mts.to_le_bytes());
        self.structure(17, &f, &[locator, "Bank"])
    }

    /// The table, terminated by an end-of-table structure.
    pub fn finish(self) -> Vec<u8> {
        self.structure(127, &[], &[]).bytes
    }
}

/// Writes `bytes` at a structure offset (counted from the start of the header) into a formatted
/// area that starts after the 4-byte header.
fn put(area: &mut [u8], offset: usize, bytes: &[u8]) {
    let at = offset - 4;
    area[at..at + bytes.len()].copy_from_slice(bytes);
}

fn processor_area(cores: u16, threads: u16, current_mhz: u16, status: u8) -> Vec<u8> {
    let mut f = vec![0u8; 0x30 - 4];
    put(&mut f, 0x04, &[1]); // socket designation
    put(&mut f, 0x05, &[3]); // central processor
    put(&mut f, 0x14, &4000u16.to_le_bytes()); // max speed
    put(&mut f, 0x16, &current_mhz.to_le_bytes());
    put(&mut f, 0x18, &[status]);
    put(&mut f, 0x23, &[u8::try_from(cores).unwrap_or(0xFF)]);
    put(&mut f, 0x24, &[u8::try_from(cores).unwrap_or(0xFF)]);
    put(&mut f, 0x25, &[u8::try_from(threads).unwrap_or(0xFF)]);
    put(&mut f, 0x2A, &cores.to_le_bytes());
    put(&mut f, 0x2C, &cores.to_le_bytes());
    put(&mut f, 0x2E, &threads.to_le_bytes());
    f
}
