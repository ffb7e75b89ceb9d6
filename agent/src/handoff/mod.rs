//! The pieces of the handoffs (contract §6) and of cleaning, as functions over readers, files
//! and directories, so they can be tested without a kernel: the target's digest ([`digest`]),
//! Kexec targets ([`tar`], [`cpio`], [`kexec`]), writing an image ([`image`]), the Kairos
//! `COS_OEM` files ([`oem`]) and wiping disks ([`wipe`]). The run loop (`crate::run`) strings
//! them together; the syscalls they lead to live in `crate::sys`.

pub mod cpio;
pub mod digest;
pub mod image;
pub mod kexec;
pub mod oem;
pub mod tar;
pub mod wipe;
