//! Zeroing the first and last MiB of a disk or partition: the protective MBR and both GPT copies
//! of a disk, the superblocks and signatures at the start and end of a filesystem.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

pub const MIB: u64 = 1 << 20;

/// Zeroes `[start, start+MiB)` and `[end-MiB, end)` of the range `start..start+len` of `dev`
/// (the whole range when it is shorter than 2 MiB), then syncs.
pub fn zero_ends(dev: &mut File, start: u64, len: u64) -> io::Result<()> {
    let zeros = vec![0u8; MIB as usize];
    let head = len.min(MIB);
    dev.seek(SeekFrom::Start(start))?;
    dev.write_all(&zeros[..head as usize])?;
    let tail_start = start + len.saturating_sub(MIB).max(head);
    let tail = start + len - tail_start;
    dev.seek(SeekFrom::Start(tail_start))?;
    dev.write_all(&zeros[..tail as usize])?;
    dev.sync_all()
}

/// The size of a block device or file (block devices report 0 as their metadata length).
pub fn size_of(dev: &mut File) -> io::Result<u64> {
    let size = dev.seek(SeekFrom::End(0))?;
    dev.seek(SeekFrom::Start(0))?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::tar::tests::scratch;
    use std::io::Read;

    fn filled(len: usize) -> (std::path::PathBuf, File) {
        let dir = scratch("wipe");
        let path = dir.join("disk");
        std::fs::write(&path, vec![0xa5u8; len]).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (dir, f)
    }

    #[test]
    fn zeroes_exactly_the_first_and_last_mib() {
        let len = 5 * MIB as usize + 123;
        let (dir, mut f) = filled(len);
        assert_eq!(size_of(&mut f).unwrap(), len as u64);
        zero_ends(&mut f, 0, len as u64).unwrap();
        let mut data = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut data).unwrap();
        assert_eq!(data.len(), len, "the file did not grow");
        let m = MIB as usize;
        assert!(data[..m].iter().all(|&b| b == 0));
        assert!(data[m..len - m].iter().all(|&b| b == 0xa5));
        assert!(data[len - m..].iter().all(|&b| b == 0));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_range_inside_the_device_and_a_tiny_one() {
        let (dir, mut f) = filled(4 * MIB as usize);
        // A "partition" of 1.5 MiB starting at 2 MiB: all of it is zeroed, nothing else.
        zero_ends(&mut f, 2 * MIB, 3 * MIB / 2).unwrap();
        let mut data = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut data).unwrap();
        let m = MIB as usize;
        assert_eq!(data.len(), 4 * m);
        assert!(data[..2 * m].iter().all(|&b| b == 0xa5));
        assert!(data[2 * m..2 * m + 3 * m / 2].iter().all(|&b| b == 0));
        assert!(data[2 * m + 3 * m / 2..].iter().all(|&b| b == 0xa5));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
