//! Being PID 1 of the initramfs: mount the kernel's filesystems, give the process a console,
//! load the drivers, bring up the network. `main` then runs [`crate::run`] and parks on any
//! failure: PID 1 must never exit (the kernel would panic and the operator would see silence
//! instead of a reason).

use std::ffi::CString;
use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

use crate::cmdline::BootParams;
use crate::probe::Root;
use crate::{modules, netup, sys};

fn log(message: &str) {
    eprintln!("beskar7-agent: {message}");
}

/// Whether this process is the initramfs's `/init`.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Mounts `/proc`, `/sys`, `/dev` (devtmpfs: the kernel creates the device nodes, no udev)
/// and `/run`, then points stdin/stdout/stderr at `/dev/console`.
pub fn mount_filesystems() -> Result<(), String> {
    use sys::mount_flags::{NODEV, NOEXEC, NOSUID};
    for (fstype, target, flags) in [
        ("proc", "/proc", NOSUID | NODEV | NOEXEC),
        ("sysfs", "/sys", NOSUID | NODEV | NOEXEC),
        ("devtmpfs", "/dev", NOSUID),
        ("tmpfs", "/run", NOSUID | NODEV),
    ] {
        std::fs::create_dir_all(target).map_err(|e| format!("mkdir {target}: {e}"))?;
        let c = |s: &str| CString::new(s).unwrap_or_default();
        match sys::mount(&c(fstype), &c(target), &c(fstype), flags) {
            Ok(()) => {}
            // EBUSY: already mounted (a kernel with devtmpfs.mount=1, a second start).
            Err(e) if e.raw_os_error() == Some(16) => {}
            Err(e) => return Err(format!("mounting {fstype} on {target}: {e}")),
        }
    }
    if let Ok(console) = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        let _ = sys::console_to_stdio(&console);
    }
    Ok(())
}

/// Loads the drivers for the hardware (and ext4), saying what was loaded.
pub fn load_drivers(root: &Root) {
    let result = modules::load_needed(root, 5, Duration::from_millis(300), &mut |path| {
        let file = std::fs::File::open(path)?;
        let compressed = path
            .extension()
            .is_some_and(|e| e == "xz" || e == "zst" || e == "gz");
        sys::finit_module(&file, c"", compressed)
    });
    match result {
        Ok(loaded) => {
            log(&format!(
                "loaded {} modules: {}",
                loaded.loaded.len(),
                loaded.loaded.join(" ")
            ));
            for failure in loaded.failed {
                log(&format!("warning: module {failure}"));
            }
        }
        Err(e) => log(&format!("warning: no modules loaded: {e}")),
    }
}

/// Brings up the network for `params` (`BOOTIF`, `beskar7.ip`), within two minutes.
pub fn network(root: &Root, params: &BootParams) -> Result<(), String> {
    let line = netup::bring_up(
        root,
        params.boot_mac.as_ref(),
        params.ip.as_ref(),
        Duration::from_secs(120),
    )?;
    log(&format!("network: {line}"));
    Ok(())
}

/// The scratch directory of the Kexec handoff exists (on `/run`'s tmpfs).
pub fn work_dir() -> &'static Path {
    Path::new("/run/beskar7")
}
