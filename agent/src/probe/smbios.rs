//! SMBIOS from `/sys/firmware/dmi/tables/DMI`: the structure table the firmware publishes.
//!
//! Each structure is a 4-byte header (type, length of the formatted area, handle), the formatted
//! area, then a set of NUL-terminated strings ending with an extra NUL; fields name strings by
//! 1-based index. A field beyond the structure's length is absent (older SMBIOS versions have
//! shorter structures). Used here: type 0 (firmware version), 1 (system identity), 4 (one per
//! socket, unpopulated sockets skipped) and 17 (one per DIMM, empty slots skipped).

use super::{Cpu, MemoryModule, Root, SystemIdentity, cpu::normalize_vendor};

const TABLE: &str = "/sys/firmware/dmi/tables/DMI";

/// What the SMBIOS tables say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tables {
    pub system: SystemIdentity,
    pub cpus: Vec<Cpu>,
    pub memory: Vec<MemoryModule>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SmbiosError {
    #[error("structure at byte {0} runs past the end of the table")]
    Truncated(usize),
    #[error("structure at byte {0} has a length below 4")]
    BadLength(usize),
}

/// `Ok(None)` when the machine publishes no SMBIOS table (many VMs, some ARM servers).
pub fn probe(root: &Root) -> Result<Option<Tables>, SmbiosError> {
    match std::fs::read(root.path(TABLE)) {
        Ok(bytes) if !bytes.is_empty() => parse(&bytes).map(Some),
        _ => Ok(None),
    }
}

/// One structure of the table.
struct Structure<'a> {
    kind: u8,
    formatted: &'a [u8],
    strings: Vec<&'a [u8]>,
}

impl Structure<'_> {
    fn byte(&self, offset: usize) -> Option<u8> {
        self.formatted.get(offset).copied()
    }

    fn word(&self, offset: usize) -> Option<u16> {
        let b = self.formatted.get(offset..offset + 2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }

    fn dword(&self, offset: usize) -> Option<u32> {
        let b = self.formatted.get(offset..offset + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The string a field points to, trimmed; `None` for index 0, a missing string, or filler
    /// text firmware puts in unset fields.
    fn string(&self, offset: usize) -> Option<String> {
        let index = usize::from(self.byte(offset)?);
        let raw = self.strings.get(index.checked_sub(1)?)?;
        let text = String::from_utf8_lossy(raw).trim().to_string();
        let filler = [
            "",
            "Not Specified",
            "Not Provided",
            "To Be Filled By O.E.M.",
            "To be filled by O.E.M.",
            "Default string",
            "Unknown",
            "None",
        ];
        (!filler.contains(&text.as_str())).then_some(text)
    }
}

fn structures(table: &[u8]) -> Result<Vec<Structure<'_>>, SmbiosError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= table.len() {
        let kind = table[pos];
        let len = usize::from(table[pos + 1]);
        if len < 4 {
            return Err(SmbiosError::BadLength(pos));
        }
        let formatted = table
            .get(pos..pos + len)
            .ok_or(SmbiosError::Truncated(pos))?;
        // The string set ends at the first double NUL after the formatted area.
        let rest = &table[pos + len..];
        let end = rest
            .windows(2)
            .position(|w| w == [0, 0])
            .ok_or(SmbiosError::Truncated(pos))?;
        let strings = if end == 0 {
            Vec::new()
        } else {
            rest[..end].split(|&b| b == 0).collect()
        };
        out.push(Structure {
            kind,
            formatted,
            strings,
        });
        pos += len + end + 2;
        if kind == 127 {
            break;
        }
    }
    Ok(out)
}

pub fn parse(table: &[u8]) -> Result<Tables, SmbiosError> {
    let mut tables = Tables::default();
    for s in structures(table)? {
        match s.kind {
            0 => tables.system.firmware_version = s.string(0x05),
            1 => {
                tables.system.manufacturer = s.string(0x04);
                tables.system.product = s.string(0x05);
                tables.system.serial = s.string(0x07);
                tables.system.uuid = s.formatted.get(0x08..0x18).and_then(uuid);
            }
            4 => tables.cpus.extend(processor(&s)),
            17 => tables.memory.extend(dimm(&s)),
            _ => {}
        }
    }
    Ok(tables)
}

/// SMBIOS 2.6+ stores the first three UUID fields little-endian. All zeros means "not present",
/// all ones "not set".
fn uuid(b: &[u8]) -> Option<String> {
    if b.iter().all(|&x| x == 0) || b.iter().all(|&x| x == 0xFF) {
        return None;
    }
    let hex = |bytes: &[u8]| bytes.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let rev = |bytes: &[u8]| hex(&bytes.iter().rev().copied().collect::<Vec<_>>());
    Some(format!(
        "{}-{}-{}-{}-{}",
        rev(&b[0..4]),
        rev(&b[4..6]),
        rev(&b[6..8]),
        hex(&b[8..10]),
        hex(&b[10..16])
    ))
}

fn processor(s: &Structure<'_>) -> Option<Cpu> {
    // Status bit 6: the socket is populated.
    if s.byte(0x18)? & 0x40 == 0 {
        return None;
    }
    // Processor type 3 is a central processor (others are math, DSP, video).
    if s.byte(0x05).is_some_and(|t| t != 3) {
        return None;
    }
    let count = |byte_off: usize, word_off: usize| -> u32 {
        match s.byte(byte_off) {
            Some(0xFF) => s.word(word_off).map(u32::from).unwrap_or(0xFF),
            Some(n) => u32::from(n),
            None => 0,
        }
    };
    let cores = count(0x23, 0x2A);
    let threads = count(0x25, 0x2E);
    let mhz = [0x16, 0x14]
        .into_iter()
        .filter_map(|off| s.word(off))
        .find(|&m| m != 0 && m != 0xFFFF)
        .map(u32::from);
    let id = s
        .string(0x04)
        .unwrap_or_else(|| format!("CPU.Handle.{:#06x}", s.word(0x02).unwrap_or(0)));
    Some(Cpu {
        id,
        vendor: s.string(0x07).map(|v| normalize_vendor(&v)),
        model: s.string(0x10),
        cores,
        threads: threads.max(cores),
        frequency_mhz: mhz,
    })
}

fn dimm(s: &Structure<'_>) -> Option<MemoryModule> {
    let size = s.word(0x0C)?;
    let size_mib = match size {
        0 | 0xFFFF => return None, // empty slot, or unknown size
        0x7FFF => u64::from(s.dword(0x1C)? & 0x7FFF_FFFF),
        n if n & 0x8000 != 0 => u64::from(n & 0x7FFF) / 1024, // in KiB
        n => u64::from(n),
    };
    if size_mib == 0 {
        return None;
    }
    let speed = match s.word(0x15) {
        Some(0xFFFF) => s.dword(0x54),
        Some(0) | None => None,
        Some(n) => Some(u32::from(n)),
    };
    let id = s
        .string(0x10)
        .unwrap_or_else(|| format!("DIMM.Handle.{:#06x}", s.word(0x02).unwrap_or(0)));
    Some(MemoryModule {
        id,
        kind: s.byte(0x12).and_then(memory_type),
        size_mib,
        speed_mts: speed,
    })
}

/// SMBIOS memory type codes (DSP0134 7.18.2).
fn memory_type(code: u8) -> Option<String> {
    let name = match code {
        0x07 => "RAM",
        0x0F => "SDRAM",
        0x12 => "DDR",
        0x13 => "DDR2",
        0x18 => "DDR3",
        0x1A => "DDR4",
        0x1B => "LPDDR",
        0x1C => "LPDDR2",
        0x1D => "LPDDR3",
        0x1E => "LPDDR4",
        0x1F => "Logical non-volatile device",
        0x20 => "HBM",
        0x21 => "HBM2",
        0x22 => "DDR5",
        0x23 => "LPDDR5",
        0x24 => "HBM3",
        _ => return None,
    };
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing::{Smbios, TempTree};

    const UUID: [u8; 16] = [
        0x44, 0x45, 0x4c, 0x4c, 0x42, 0x00, 0x10, 0x51, 0x80, 0x4a, 0xb2, 0xc0, 0x4f, 0x31, 0x32,
        0x33,
    ];

    #[test]
    fn two_socket_server() {
        let table = Smbios::new()
            .bios("2.10.2")
            .system("Dell Inc.", "PowerEdge R650", "ABCD123", UUID)
            .processor("CPU.Socket.1", "Intel", "Xeon Gold", 32, 64, 2000)
            .processor(
                "CPU.Socket.2",
                "Intel(R) Corporation",
                "Xeon Gold",
                32,
                64,
                2000,
            )
            .empty_socket("CPU.Socket.3")
            .dimm("A1", 32 * 1024, 0x1A, 3200)
            .dimm("A2", 0, 0x02, 0)
            .dimm("B1", 16 * 1024, 0x22, 4800)
            .finish();
        let t = parse(&table).unwrap();
        assert_eq!(t.system.manufacturer.as_deref(), Some("Dell Inc."));
        assert_eq!(t.system.product.as_deref(), Some("PowerEdge R650"));
        assert_eq!(t.system.serial.as_deref(), Some("ABCD123"));
        assert_eq!(t.system.firmware_version.as_deref(), Some("2.10.2"));
        assert_eq!(
            t.system.uuid.as_deref(),
            Some("4c4c4544-0042-5110-804a-b2c04f313233")
        );
        assert_eq!(t.cpus.len(), 2, "the empty socket is skipped");
        assert_eq!((t.cpus[0].cores, t.cpus[0].threads), (32, 64));
        assert_eq!(t.cpus[1].vendor.as_deref(), Some("Intel"));
        assert_eq!(t.cpus[0].frequency_mhz, Some(2000));
        assert_eq!(t.memory.len(), 2, "the empty slot is skipped");
        assert_eq!(t.memory[0].size_mib, 32768);
        assert_eq!(t.memory[0].kind.as_deref(), Some("DDR4"));
        assert_eq!(t.memory[1].kind.as_deref(), Some("DDR5"));
        assert_eq!(t.memory[1].speed_mts, Some(4800));
    }

    #[test]
    fn many_cores_use_the_wide_fields() {
        let table = Smbios::new()
            .processor("P0", "AMD", "EPYC", 256, 512, 2250)
            .finish();
        let t = parse(&table).unwrap();
        assert_eq!((t.cpus[0].cores, t.cpus[0].threads), (256, 512));
        assert_eq!(t.cpus[0].vendor.as_deref(), Some("AMD"));
    }

    #[test]
    fn small_dimm_sizes_in_kib_and_mib() {
        let t = parse(&Smbios::new().dimm("X", 8192, 0x18, 1600).finish()).unwrap();
        assert_eq!(t.memory[0].size_mib, 8192);
        // Bit 15 set: the size is in KiB (here 16 MiB).
        let mut f = vec![0u8; 0x28 - 4];
        f[0x0C - 4..0x0E - 4].copy_from_slice(&(0x8000u16 | 16384).to_le_bytes());
        let t = parse(&Smbios::new().structure(17, &f, &[]).finish()).unwrap();
        assert_eq!(t.memory[0].size_mib, 16);
        assert!(t.memory[0].id.starts_with("DIMM.Handle."));
    }

    #[test]
    fn filler_strings_are_absent() {
        let t = parse(
            &Smbios::new()
                .system("To Be Filled By O.E.M.", "Box", "Not Specified", [0; 16])
                .finish(),
        )
        .unwrap();
        assert_eq!(t.system.manufacturer, None);
        assert_eq!(t.system.product.as_deref(), Some("Box"));
        assert_eq!(t.system.serial, None);
        assert_eq!(t.system.uuid, None);
    }

    #[test]
    fn truncated_tables_are_errors_not_panics() {
        let table = Smbios::new().bios("1.0").finish();
        for cut in 1..table.len() - 6 {
            // Any prefix either parses or fails cleanly.
            let _ = parse(&table[..cut]);
        }
        // Any single corrupted byte either parses or fails cleanly.
        let full = Smbios::new()
            .system("M", "P", "S", [1; 16])
            .processor("P0", "Intel", "X", 300, 600, 2000)
            .dimm("A1", 65536, 0x22, 0xFFFF)
            .finish();
        for i in 0..full.len() {
            for value in [0x00, 0x01, 0x7F, 0xFF] {
                let mut bad = full.clone();
                bad[i] = value;
                let _ = parse(&bad);
            }
        }
        assert_eq!(parse(&[0, 2, 0, 0, 0, 0]), Err(SmbiosError::BadLength(0)));
        assert_eq!(parse(&[0, 24, 0, 0]), Err(SmbiosError::Truncated(0)));
    }

    #[test]
    fn no_table_is_not_an_error() {
        let tree = TempTree::new();
        assert_eq!(probe(&tree.root()), Ok(None));
        tree.file(
            "sys/firmware/dmi/tables/DMI",
            Smbios::new().bios("9.9").finish(),
        );
        let t = probe(&tree.root()).unwrap().unwrap();
        assert_eq!(t.system.firmware_version.as_deref(), Some("9.9"));
    }
}
