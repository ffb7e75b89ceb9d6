//! The audited syscall module: the only code of the agent allowed to use `unsafe`.
//!
//! Each function wraps one Linux call that no safe crate offers, takes only safe Rust types
//! (open `File`s, `CStr`s, `Ipv4Addr`s), and states next to its `unsafe` block why the call is
//! sound. Nothing here keeps a raw pointer past the call, and every buffer handed to the kernel
//! is owned by the caller for the whole call. Review this file whenever it changes.
//!
//! The crate is `deny(unsafe_code)` rather than `forbid` only because `forbid` cannot be lifted
//! for one module; this module is the single `allow`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Turns the `-1`-and-errno convention into an `io::Result`.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `kexec_file_load(2)`: loads `kernel` (and `initrd`) with `cmdline` for a later
/// [`reboot`]`(Reboot::Kexec)`. The kernel verifies the image itself (signatures under Secure
/// Boot lockdown, which then refuses unsigned kernels with `EPERM`/`EKEYREJECTED`).
pub fn kexec_file_load(kernel: &File, initrd: Option<&File>, cmdline: &CStr) -> io::Result<()> {
    let (initrd_fd, flags) = match initrd {
        Some(f) => (f.as_raw_fd(), 0),
        None => (-1, libc::KEXEC_FILE_NO_INITRAMFS as libc::c_ulong),
    };
    let bytes = cmdline.to_bytes_with_nul();
    // SAFETY: the file descriptors are open for the whole call (borrowed `File`s); the command
    // line pointer and its length (NUL included, as the call requires) come from one live `CStr`
    // that the kernel only reads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd_fd,
            bytes.len() as libc::c_ulong,
            bytes.as_ptr(),
            flags,
        )
    };
    check(ret).map(drop)
}

/// `finit_module(2)`: loads the kernel module in `module` with `params`. A compressed module
/// (`.ko.xz`, `.ko.zst`) is passed with `MODULE_INIT_COMPRESSED_FILE`, so the kernel
/// decompresses it (needs `CONFIG_MODULE_DECOMPRESS`, as Debian's kernels have).
pub fn finit_module(module: &File, params: &CStr, compressed: bool) -> io::Result<()> {
    const MODULE_INIT_COMPRESSED_FILE: libc::c_int = 4;
    let flags = if compressed {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    // SAFETY: the descriptor is open for the whole call and `params` is a live NUL-terminated
    // string the kernel only reads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            module.as_raw_fd(),
            params.as_ptr(),
            flags,
        )
    };
    check(ret).map(drop)
}

/// What [`reboot`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reboot {
    /// Boot the kernel loaded by [`kexec_file_load`].
    Kexec,
    PowerOff,
    Restart,
}

/// `reboot(2)`, after `sync(2)`. Returns only on failure.
pub fn reboot(how: Reboot) -> io::Error {
    let cmd = match how {
        Reboot::Kexec => libc::LINUX_REBOOT_CMD_KEXEC,
        Reboot::PowerOff => libc::LINUX_REBOOT_CMD_POWER_OFF,
        Reboot::Restart => libc::LINUX_REBOOT_CMD_RESTART,
    };
    // SAFETY: `sync` and `reboot` take no pointers; `cmd` is one of the documented commands.
    unsafe {
        libc::sync();
        libc::reboot(cmd);
    }
    io::Error::last_os_error()
}

/// The `BLKRRPART` ioctl: asks the kernel to re-read the partition table of the block device
/// `disk` (after an image was written or a table wiped). `EBUSY` means a partition is in use.
pub fn reread_partitions(disk: &File) -> io::Result<()> {
    // _IO(0x12, 95) from <linux/fs.h>; libc does not export it for every target.
    const BLKRRPART: libc::c_ulong = 0x125f;
    // SAFETY: BLKRRPART takes no argument; the descriptor is open for the whole call.
    let ret = unsafe { libc::ioctl(disk.as_raw_fd(), BLKRRPART as _, 0) };
    check(ret.into()).map(drop)
}

/// `mount(2)` of the filesystem `fstype` on `source` at `target` (no data options).
pub fn mount(source: &CStr, target: &CStr, fstype: &CStr, flags: libc::c_ulong) -> io::Result<()> {
    // SAFETY: all three strings are live and NUL-terminated for the whole call; the data pointer
    // is null (no options), which mount(2) allows.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    check(ret.into()).map(drop)
}

/// Makes `console` (`/dev/console`) the process's stdin, stdout and stderr (`dup2(2)`): PID 1
/// of an initramfs without a `/dev/console` node starts with none.
pub fn console_to_stdio(console: &File) -> io::Result<()> {
    for fd in 0..3 {
        // SAFETY: `console` is open for the whole call; dup2 onto 0-2 only replaces the standard
        // descriptors, which std's handles refer to by number and never own.
        let ret = unsafe { libc::dup2(console.as_raw_fd(), fd) };
        check(ret.into())?;
    }
    Ok(())
}

/// The flags of [`mount`] the agent uses.
pub mod mount_flags {
    pub const NOSUID: libc::c_ulong = libc::MS_NOSUID;
    pub const NODEV: libc::c_ulong = libc::MS_NODEV;
    pub const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;
}

/// `umount2(2)` of `target` (no flags).
pub fn umount(target: &CStr) -> io::Result<()> {
    // SAFETY: `target` is live and NUL-terminated for the whole call.
    let ret = unsafe { libc::umount2(target.as_ptr(), 0) };
    check(ret.into()).map(drop)
}

/// An interface name as the kernel's `ifreq` wants it (≤ 15 bytes, NUL-terminated).
fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    // SAFETY: `ifreq` is plain old data (integers, arrays and a union of those and a pointer
    // that stays null); all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sockaddr_in` and `sockaddr` are both 16 bytes of plain data; this is the C idiom
    // the ioctls below expect.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// An `ioctl` on a socket with an `ifreq` the caller filled in.
fn ifreq_ioctl(sock: &UdpSocket, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: `req` is a valid, exclusively borrowed `ifreq` for the whole call, the argument
    // type every SIOC[GS]IF* request takes; the socket is open.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    check(ret.into()).map(drop)
}

/// Sets `IFF_UP` on the interface `name` (the kernel then brings the link up).
pub fn link_up(sock: &UdpSocket, name: &str) -> io::Result<()> {
    let mut req = ifreq_for(name)?;
    ifreq_ioctl(sock, libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled in the `ifru_flags` member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ifreq_ioctl(sock, libc::SIOCSIFFLAGS, &mut req)
}

/// Gives the interface `name` the address `addr` with the netmask `mask`.
pub fn set_ipv4(sock: &UdpSocket, name: &str, addr: Ipv4Addr, mask: Ipv4Addr) -> io::Result<()> {
    let mut req = ifreq_for(name)?;
    req.ifr_ifru.ifru_addr = sockaddr_in(addr);
    ifreq_ioctl(sock, libc::SIOCSIFADDR, &mut req)?;
    let mut req = ifreq_for(name)?;
    req.ifr_ifru.ifru_netmask = sockaddr_in(mask);
    ifreq_ioctl(sock, libc::SIOCSIFNETMASK, &mut req)
}

/// `struct rtentry` of <linux/route.h> (x86_64 glibc; libc exports it only for musl).
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_tos: libc::c_uchar,
    rt_class: libc::c_uchar,
    rt_pad4: [libc::c_short; 3],
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

/// Adds the default route via `gateway` on the interface `name` (`SIOCADDRT`).
pub fn add_default_route(sock: &UdpSocket, name: &str, gateway: Ipv4Addr) -> io::Result<()> {
    let dev = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"))?;
    let mut route = RtEntry {
        rt_pad1: 0,
        rt_dst: sockaddr_in(Ipv4Addr::UNSPECIFIED),
        rt_gateway: sockaddr_in(gateway),
        rt_genmask: sockaddr_in(Ipv4Addr::UNSPECIFIED),
        rt_flags: libc::RTF_UP | libc::RTF_GATEWAY,
        rt_pad2: 0,
        rt_pad3: 0,
        rt_tos: 0,
        rt_class: 0,
        rt_pad4: [0; 3],
        rt_metric: 0,
        // The kernel only reads the name (it copies it in); it never writes through this.
        rt_dev: dev.as_ptr() as *mut libc::c_char,
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    // SAFETY: `route` matches the kernel's `struct rtentry` layout on this target and lives for
    // the whole call, as does the interface name `rt_dev` points to.
    let ret = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCADDRT as _,
            &mut route as *mut RtEntry,
        )
    };
    check(ret.into()).map(drop)
}

/// `setsockopt(2)` of an `int` option.
fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a live `c_int` with its exact size; the kernel copies it.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(ret.into()).map(drop)
}

/// `SO_BINDTODEVICE`: the socket sends and receives only on the interface `name` (DHCP must
/// leave through one link before it has an address).
fn bind_to_device(fd: RawFd, name: &str) -> io::Result<()> {
    let bytes = name.as_bytes();
    // SAFETY: the option value is `bytes` with its exact length, live for the whole call; the
    // kernel copies it.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            bytes.as_ptr().cast(),
            bytes.len() as libc::socklen_t,
        )
    };
    check(ret.into()).map(drop)
}

/// A UDP socket on `0.0.0.0:port` that sends and receives only on the interface `name`, may
/// broadcast, and shares its port with the sockets of other interfaces (`SO_REUSEADDR`, set
/// before binding, which std cannot do): one DHCP client per link, all on port 68 at once.
pub fn udp_socket_on_device(name: &str, port: u16) -> io::Result<UdpSocket> {
    // SAFETY: socket(2) takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd.into())?;
    // SAFETY: `fd` is a fresh descriptor nothing else owns; `OwnedFd` closes it on every path.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_BROADCAST, 1)?;
    bind_to_device(fd, name)?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    };
    // SAFETY: `addr` is a live `sockaddr_in` and the length given is its size.
    let ret = unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    check(ret.into())?;
    Ok(UdpSocket::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked_before_any_call() {
        assert!(ifreq_for("eth0").is_ok());
        assert!(ifreq_for("").is_err());
        assert!(ifreq_for("a-name-that-is-too-long").is_err());
        assert!(ifreq_for("e\0th").is_err());
    }

    #[test]
    fn rtentry_has_the_kernels_size() {
        // sizeof(struct rtentry) on x86_64 Linux.
        assert_eq!(std::mem::size_of::<RtEntry>(), 120);
    }

    #[test]
    fn sockets_on_a_device_need_the_device() {
        // Binding to an interface that does not exist fails (ENODEV) whether or not this runs
        // as root (without root: EPERM); either way no socket is leaked or returned.
        let err = udp_socket_on_device("b7-no-such-if", 0).unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENODEV | libc::EPERM)),
            "{err}"
        );
        assert!(udp_socket_on_device("a-name-that-is-much-too-long-for-linux", 0).is_err());
    }

    #[test]
    fn errors_carry_errno() {
        // Unprivileged or not, reading the partitions of a regular file is refused with ENOTTY.
        let file = tempfile_in_target();
        let err = reread_partitions(&file).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTTY));
    }

    fn tempfile_in_target() -> File {
        let path = std::env::temp_dir().join(format!("b7-sys-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
