//! UEFI or legacy BIOS: the kernel exposes `/sys/firmware/efi` only when booted by UEFI.

use super::{BootMode, Root};

pub fn boot_mode(root: &Root) -> BootMode {
    if root.path("/sys/firmware/efi").is_dir() {
        BootMode::Uefi
    } else {
        BootMode::Legacy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing::TempTree;

    #[test]
    fn efi_directory_means_uefi() {
        let tree = TempTree::new();
        assert_eq!(boot_mode(&tree.root()), BootMode::Legacy);
        tree.dir("sys/firmware/efi");
        assert_eq!(boot_mode(&tree.root()), BootMode::Uefi);
    }
}
