//! Memory without SMBIOS: `MemTotal` of `/proc/meminfo`, as one entry.
//!
//! `MemTotal` is what the kernel manages, slightly less than what is installed (firmware and
//! kernel reservations); it is rounded down to whole MiB.

use super::{MemoryModule, Root};

pub fn probe(root: &Root) -> Option<MemoryModule> {
    let text = std::fs::read_to_string(root.path("/proc/meminfo")).ok()?;
    let kib: u64 = text.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        let mut words = rest.split_whitespace();
        let value = words.next()?.parse().ok()?;
        (words.next() == Some("kB")).then_some(value)
    })?;
    (kib >= 1024).then(|| MemoryModule {
        id: "System.Memory".to_string(),
        kind: None,
        size_mib: kib / 1024,
        speed_mts: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing::TempTree;

    #[test]
    fn memtotal_in_mib() {
        let tree = TempTree::new();
        assert_eq!(probe(&tree.root()), None);
        tree.file(
            "proc/meminfo",
            "MemTotal:        8138568 kB\nMemFree:         1000000 kB\n",
        );
        let m = probe(&tree.root()).unwrap();
        assert_eq!(m.size_mib, 7947);
        assert_eq!(m.kind, None);
    }
}
