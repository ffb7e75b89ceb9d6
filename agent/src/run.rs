//! The run loop: report, wait for the bootstrap data, hand over (Kexec or Image) or clean, and
//! tell the operator. Everything that would end or change the machine in a way a test cannot
//! watch (loading a kernel, mounting, rebooting) goes through an [`Executor`]; tests use one
//! that records, the initramfs uses [`SystemExecutor`].
//!
//! Errors are returned as one console line. Once the bootstrap data has been asked for, a
//! failure of the handoff is reported with `provision-failed` first. The caller then parks (as
//! PID 1 it must never exit); the operator's timeout powers the server off and retries.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::callbacks::{CallbackError, Callbacks, Settings};
use crate::cmdline::{BootParams, Handoff, Mode, Provision};
use crate::handoff::{image, kexec, oem, wipe};
use crate::http::download::{self, Url};
use crate::probe::{self, Root};
use crate::report::InspectionReport;
use crate::{SecretBytes, disk_select, sys};

/// How the agent leaves the machine at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Execute the loaded Kexec target.
    Kexec,
    /// Reboot into the written image.
    Reboot,
    /// Power off (after cleaning).
    PowerOff,
}

/// The effects the run loop cannot perform in a test.
pub trait Executor {
    /// Loads the Kexec target (`kexec_file_load`). The error says why (Secure Boot lockdown
    /// refusing an unsigned kernel is the common one).
    fn load_kexec(&mut self, kernel: &Path, initrd: &Path, cmdline: &str) -> Result<(), String>;
    /// Asks the kernel to re-read the partition table of `disk` (best effort).
    fn reread_partitions(&mut self, disk: &File);
    /// Finds the `COS_OEM` partition of `disk` (a name under `/sys/block`), makes it available
    /// as a directory and calls `write` with it.
    fn with_oem(
        &mut self,
        root: &Root,
        disk: &str,
        write: &mut dyn FnMut(&Path) -> io::Result<()>,
    ) -> Result<(), String>;
    /// Kexec, reboot or power off. On a machine this does not return unless it failed.
    fn finish(&mut self, how: Finish) -> Result<(), String>;
}

/// Where and how the loop runs.
#[derive(Debug, Clone)]
pub struct Env {
    /// `/sys`, `/proc` and `/dev` are read below this (a fixture tree in tests).
    pub root: Root,
    /// Scratch space for an unpacked Kexec target (`/run/beskar7` in the initramfs).
    pub work_dir: PathBuf,
    pub settings: Settings,
    /// Bounds connecting to the target's server and each read of the download.
    pub download_timeout: Duration,
    /// Where to connect for the target instead of its host (tests).
    pub target_connect_to: Option<SocketAddr>,
}

impl Env {
    pub fn new(root: Root, params: &BootParams) -> Self {
        Self {
            root,
            work_dir: PathBuf::from("/run/beskar7"),
            settings: Settings::for_params(params),
            download_timeout: Duration::from_secs(60),
            target_connect_to: None,
        }
    }
}

fn log(message: &str) {
    eprintln!("beskar7-agent: {message}");
}

/// Runs the whole agent for `params`: returns how it finished (tests; on a machine `finish`
/// does not return), or the reason it stopped.
pub fn run(params: &BootParams, env: &Env, exec: &mut dyn Executor) -> Result<Finish, String> {
    // The budget (`beskar7.timeout`) counts from here.
    let callbacks = Callbacks::new(params, env.settings.clone()).map_err(|e| e.to_string())?;
    let hardware = probe::probe(&env.root);
    for warning in &hardware.warnings {
        log(&format!("warning: {warning}"));
    }
    let report = InspectionReport::from_hardware(&hardware);
    match &params.mode {
        Mode::Clean => {
            // Reporting is optional when cleaning; only a refused token stops it.
            match callbacks.post_report(&report) {
                Ok(()) => log("the operator accepted the inspection report"),
                Err(e @ CallbackError::Unauthorized { .. }) => return Err(e.to_string()),
                Err(e) => log(&format!("warning: the report was not accepted: {e}")),
            }
            clean(env, &hardware.disks, exec)?;
            callbacks.cleaned().map_err(|e| e.to_string())?;
            log("cleaned; powering off");
            exec.finish(Finish::PowerOff)?;
            Ok(Finish::PowerOff)
        }
        Mode::Provision(p) => {
            callbacks.post_report(&report).map_err(|e| e.to_string())?;
            log("the operator accepted the inspection report");
            let finish = match provision(params, p, env, &hardware.disks, &callbacks, exec) {
                Ok(finish) => finish,
                Err(Failure::Callback(e)) => return Err(e.to_string()),
                Err(Failure::Handoff(reason)) => {
                    log(&format!("provisioning failed: {reason}"));
                    return match callbacks.provision_failed(&reason) {
                        Ok(()) => Err(format!("provisioning failed (reported): {reason}")),
                        Err(e) => Err(format!(
                            "provisioning failed: {reason}; reporting it failed too: {e}"
                        )),
                    };
                }
            };
            exec.finish(finish)?;
            Ok(finish)
        }
    }
}

/// Why provisioning stopped: a callback that failed (nothing more can be told to the
/// operator), or the handoff (reported as `provision-failed`).
enum Failure {
    Callback(CallbackError),
    Handoff(String),
}

impl From<CallbackError> for Failure {
    fn from(e: CallbackError) -> Self {
        Self::Callback(e)
    }
}

fn provision(
    params: &BootParams,
    p: &Provision,
    env: &Env,
    disks: &[probe::Disk],
    callbacks: &Callbacks,
    exec: &mut dyn Executor,
) -> Result<Finish, Failure> {
    let url = Url::parse(&p.target).map_err(|e| Failure::Handoff(e.to_string()))?;
    // Choose the disk before waiting: a machine with no suitable disk fails at once.
    let disk = match p.handoff {
        Handoff::Image => Some(
            disk_select::select(disks, &params.disk_hints, &env.root)
                .map_err(|e| Failure::Handoff(e.to_string()))?
                .disk
                .name
                .clone(),
        ),
        Handoff::Kexec => None,
    };
    log("waiting for the bootstrap data");
    let bootstrap = callbacks.fetch_bootstrap()?;
    log(&format!(
        "got the bootstrap data ({} bytes); downloading the target",
        bootstrap.expose().len()
    ));
    let open = || {
        download::get(
            &url,
            &params.ca_pem,
            env.download_timeout,
            env.target_connect_to,
        )
        .map_err(|e| Failure::Handoff(format!("downloading {}: {e}", p.target)))
    };
    match (p.handoff, disk) {
        (Handoff::Image, Some(disk)) => {
            image_handoff(p, env, &disk, open()?, &bootstrap, exec).map_err(Failure::Handoff)?;
            drop(bootstrap);
            callbacks.provisioned()?;
            log("provisioned; rebooting into the image");
            Ok(Finish::Reboot)
        }
        _ => {
            kexec_handoff(p, env, open()?, &bootstrap, exec).map_err(Failure::Handoff)?;
            drop(bootstrap);
            callbacks.provisioned()?;
            log("provisioned; executing the target kernel");
            Ok(Finish::Kexec)
        }
    }
}

fn kexec_handoff(
    p: &Provision,
    env: &Env,
    source: download::Download,
    bootstrap: &SecretBytes,
    exec: &mut dyn Executor,
) -> Result<(), String> {
    std::fs::create_dir_all(&env.work_dir)
        .map_err(|e| format!("cannot create {}: {e}", env.work_dir.display()))?;
    let target = kexec::unpack(source, &env.work_dir, p.target_digest.as_ref())
        .map_err(|e| e.to_string())?;
    log(&format!(
        "Kexec target: {} bytes, {}{}",
        target.size,
        target.digest,
        if p.target_digest.is_some() {
            " (matches beskar7.target-digest)"
        } else {
            " (no digest given to check)"
        }
    ));
    let cmdline = kexec::substitute(&target.cmdline, &p.provider_id, p.config_url.as_deref())
        .map_err(|e| e.to_string())?;
    let mut initrd = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&target.initrd)
        .map_err(|e| format!("cannot open the unpacked initrd: {e}"))?;
    crate::handoff::cpio::append_to_initrd(&mut initrd, bootstrap.expose(), &p.provider_id)
        .map_err(|e| format!("cannot append /beskar7 to the initrd: {e}"))?;
    drop(initrd);
    let loaded = exec
        .load_kexec(&target.kernel, &target.initrd, &cmdline)
        .map_err(|e| format!("the kernel refused to load the Kexec target: {e}"));
    crate::wipe(cmdline);
    loaded
}

fn image_handoff(
    p: &Provision,
    env: &Env,
    disk: &str,
    source: download::Download,
    bootstrap: &SecretBytes,
    exec: &mut dyn Executor,
) -> Result<(), String> {
    let Some(expected) = &p.target_digest else {
        return Err("the Image handoff needs beskar7.target-digest".into());
    };
    let path = env.root.path(&format!("/dev/{disk}"));
    let mut dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open /dev/{disk} for writing: {e}"))?;
    // An image that cannot fit is refused before the disk is touched.
    let disk_size = wipe::size_of(&mut dev).map_err(|e| format!("/dev/{disk}: {e}"))?;
    if let Some(len) = source.length.filter(|&len| len > disk_size) {
        return Err(format!(
            "the image ({len} bytes) is larger than /dev/{disk} ({disk_size} bytes); the disk was \
             not touched"
        ));
    }
    log(&format!("writing the image to /dev/{disk}"));
    let result = image::write_image(source, &mut dev, expected);
    // Whatever happened, the kernel should see the table as it is now.
    exec.reread_partitions(&dev);
    let written = result.map_err(|e| format!("/dev/{disk}: {e}"))?;
    log(&format!("wrote {written} bytes, {expected}"));
    exec.with_oem(&env.root, disk, &mut |dir| {
        oem::write_files(dir, bootstrap.expose(), &p.provider_id)
    })
    .map_err(|e| format!("writing the bootstrap data to {}: {e}", oem::OEM_LABEL))
}

/// Wipes every eligible disk: the first and last MiB of each partition, then of the disk.
fn clean(env: &Env, disks: &[probe::Disk], exec: &mut dyn Executor) -> Result<(), String> {
    let mut failures = Vec::new();
    let eligible: Vec<&probe::Disk> = disks
        .iter()
        .filter(|d| disk_select::is_eligible(d))
        .collect();
    if eligible.is_empty() {
        log("no eligible disk to wipe");
    }
    for disk in eligible {
        match wipe_disk(&env.root, &disk.name, exec) {
            Ok(n) => log(&format!(
                "wiped /dev/{} ({n} partitions and the disk's first and last MiB)",
                disk.name
            )),
            Err(e) => failures.push(format!("/dev/{}: {e}", disk.name)),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("cleaning failed: {}", failures.join("; ")))
    }
}

fn wipe_disk(root: &Root, name: &str, exec: &mut dyn Executor) -> io::Result<usize> {
    let mut dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(root.path(&format!("/dev/{name}")))?;
    let size = wipe::size_of(&mut dev)?;
    let parts = oem::partitions(root, name);
    for part in &parts {
        let sectors = |attr: &str| -> io::Result<u64> {
            root.read(&format!("/sys/block/{name}/{part}/{attr}"))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| io::Error::other(format!("{part} has no readable {attr}")))
        };
        let (start, len) = (sectors("start")? * 512, sectors("size")? * 512);
        if start + len > size {
            return Err(io::Error::other(format!("{part} lies beyond the disk")));
        }
        wipe::zero_ends(&mut dev, start, len)?;
    }
    wipe::zero_ends(&mut dev, 0, size)?;
    exec.reread_partitions(&dev);
    Ok(parts.len())
}

/// The executor of a real machine: the syscalls of [`sys`].
#[derive(Debug, Default)]
pub struct SystemExecutor;

impl Executor for SystemExecutor {
    fn load_kexec(&mut self, kernel: &Path, initrd: &Path, cmdline: &str) -> Result<(), String> {
        let kernel = File::open(kernel).map_err(|e| e.to_string())?;
        let initrd = File::open(initrd).map_err(|e| e.to_string())?;
        let line = CString::new(cmdline).map_err(|_| "the cmdline holds a NUL byte".to_string())?;
        let loaded = sys::kexec_file_load(&kernel, Some(&initrd), &line);
        crate::wipe(line.into_string().unwrap_or_default());
        // EPERM, or EKEYREJECTED from the signature check.
        loaded.map_err(|e| match e.raw_os_error() {
            Some(1 | 129) => format!(
                "{e} (is Secure Boot lockdown refusing an unsigned kernel? the target's kernel \
                 must be signed by a key the firmware or the machine's kernel trusts)"
            ),
            _ => e.to_string(),
        })
    }

    fn reread_partitions(&mut self, disk: &File) {
        // A regular file (or an old kernel) answers ENOTTY; a busy disk EBUSY. Neither matters
        // for what follows, which reads the disk itself.
        let _ = sys::reread_partitions(disk);
    }

    fn with_oem(
        &mut self,
        root: &Root,
        disk: &str,
        write: &mut dyn FnMut(&Path) -> io::Result<()>,
    ) -> Result<(), String> {
        // devtmpfs creates the partitions' nodes shortly after the table is re-read.
        let mut found = oem::find_oem(root, disk);
        for _ in 0..20 {
            if found.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
            found = oem::find_oem(root, disk);
        }
        let part = found?;
        let mountpoint = Path::new("/run/beskar7/oem");
        std::fs::create_dir_all(mountpoint).map_err(|e| e.to_string())?;
        let c = |s: &str| CString::new(s).map_err(|_| format!("bad path {s:?}"));
        let (source, target) = (c(&format!("/dev/{part}"))?, c("/run/beskar7/oem")?);
        sys::mount(
            &source,
            &target,
            &c("ext4")?,
            sys::mount_flags::NOSUID | sys::mount_flags::NODEV | sys::mount_flags::NOEXEC,
        )
        .map_err(|e| format!("mounting /dev/{part} (ext4): {e}"))?;
        let written = write(mountpoint).map_err(|e| e.to_string());
        let unmounted = sys::umount(&target).map_err(|e| format!("unmounting /dev/{part}: {e}"));
        written.and(unmounted)
    }

    fn finish(&mut self, how: Finish) -> Result<(), String> {
        let e = sys::reboot(match how {
            Finish::Kexec => sys::Reboot::Kexec,
            Finish::Reboot => sys::Reboot::Restart,
            Finish::PowerOff => sys::Reboot::PowerOff,
        });
        Err(format!("reboot(2) ({how:?}) failed: {e}"))
    }
}

/// Parks the process forever: PID 1 must not exit (the kernel would panic), and a server left
/// waiting is what the operator's timeout expects. Says why once on the console.
pub fn park(reason: &str) -> ! {
    log(&format!("stopped: {reason}"));
    log("parked; the operator's timeout will power this server off and retry");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
