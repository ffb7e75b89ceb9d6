//! Virtual servers: what sits behind a simulated BMC ([`crate::bmc`]).
//!
//! A [`VirtualHost`] listens to its BMC's boots and power. When the BMC boots it with a one-time
//! PXE override, the host plays iPXE (first stage, `/boot`, chained scripts; [`ipxe`]), reads
//! the kernel parameters the operator rendered ([`cmdline`]) and then plays the agent's side of
//! the wire contract (shared/design/inspector-contract.md): report, poll for bootstrap data,
//! hand over (Kexec or Image), report `provisioned`, run "the OS"; or, in clean mode, wipe and
//! report `cleaned`. A power-off, or a new boot, stops whatever it was doing. Misbehaviours
//! ([`Misbehaviour`]) make it fail in the ways real servers do. It implements the contract from
//! its own types (no dependency on the operator crate), so drift shows up as a failing test.
//!
//! Tokens, nonces and bootstrap data never reach the event log or `tracing`.

mod agent;
pub mod client;
pub mod cmdline;
mod firmware;
pub mod hardware;
pub mod ipxe;
mod server;

pub use cmdline::Handoff;
pub use hardware::{Disk, Hardware, Nic};
pub use server::{SimServer, mac_for};

use crate::bmc::{Bmc, BootEvent};
use cmdline::Secret;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// Where the host is, as a test or the demo waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostState {
    PoweredOff,
    /// Powered on, in the firmware: iPXE running scripts, or booting the disk.
    FirstStage,
    /// The agent is up and reports (then waits for bootstrap data).
    Inspecting,
    /// The agent has the bootstrap data and hands over.
    Deploying,
    /// Running the installed or kexec'd operating system ([`VirtualHost::os`]).
    RunningOS,
    Cleaning,
    Failed(String),
}

/// What "the OS" was given: enough for tests to check the operator delivered the right data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsInfo {
    pub provider_id: String,
    /// SHA-256 (hex) of the bootstrap data the agent received.
    pub bootstrap_sha256: String,
    pub handoff: Handoff,
    /// Kexec: whether the OS fetched its config from `beskar7.config-url`, and its SHA-256.
    pub config_sha256: Option<String>,
}

/// What is on the server's disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DiskContents {
    #[default]
    Empty,
    /// An Image handoff wrote an OS (provider ID and bootstrap data kept, hashed, in its OEM
    /// partition).
    Installed(OsInfo),
}

/// A way for the host to go wrong, on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misbehaviour {
    /// The agent boots and never calls back.
    NeverReports,
    /// The report is not JSON.
    ReportsGarbage,
    /// The report describes a far smaller machine ([`Hardware::shrunk`]).
    TooLittleHardware,
    /// After getting the bootstrap data, report `provision-failed` with this reason.
    FailsDeploy(String),
    /// Reboot once while deploying (after getting the bootstrap data): the firmware boots
    /// through the override if one is still set, else from disk.
    RebootsMidDeploy,
    /// Use the token of the previous attempt (when there was one) for every callback.
    ReplaysOldToken,
}

/// How long things take, and the host's patience.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Between polls of `/bootstrap` and retries of transient failures.
    pub poll_interval: Duration,
    /// Pretend-work: writing the image, loading the kexec target, wiping disks.
    pub work: Duration,
    /// Per HTTP request.
    pub request_timeout: Duration,
    /// The agent's budget when the operator sends no `beskar7.timeout` (the agent's default).
    pub default_budget: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_interval: Duration::from_secs(1),
            work: Duration::from_millis(500),
            request_timeout: Duration::from_secs(30),
            default_budget: Duration::from_secs(30 * 60),
        }
    }
}

/// How the host's DHCP points iPXE at the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstStage {
    /// `GET <boot-base>/ipxe?mac=<hyphenated MAC>`.
    Ipxe,
    /// `GET <boot-base>/boot.ipxe`, which chains on.
    BootIpxe,
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The operator's boot URL (`--boot-url`), e.g. `http://127.0.0.1:8081`.
    pub boot_url: String,
    pub first_stage: FirstStage,
    /// The CA iPXE trusts when `boot_url` is https (iPXE's embedded trust).
    pub boot_ca_pem: Option<String>,
    pub timing: Timing,
    /// After reporting `cleaned`, power the server off through its BMC (as the OS's `poweroff`).
    /// Off: stay in [`HostState::Cleaning`] until the operator powers it off.
    pub power_off_after_clean: bool,
    /// A cleaning boot reports the hardware first (the contract allows it).
    pub report_when_cleaning: bool,
    pub misbehaviour: Option<Misbehaviour>,
}

impl HostConfig {
    pub fn new(boot_url: impl Into<String>) -> HostConfig {
        HostConfig {
            boot_url: boot_url.into(),
            first_stage: FirstStage::Ipxe,
            boot_ca_pem: None,
            timing: Timing::default(),
            power_off_after_clean: true,
            report_when_cleaning: true,
            misbehaviour: None,
        }
    }
}

/// One entry of the host's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent {
    pub at: SystemTime,
    pub message: String,
}

struct Inner {
    events: Vec<HostEvent>,
    disk: DiskContents,
    os: Option<OsInfo>,
    /// The newest token a boot carried, and the one of the attempt before:
    /// what [`Misbehaviour::ReplaysOldToken`] replays.
    last_token: Option<Secret>,
    older_token: Option<Secret>,
    misbehaviour: Option<Misbehaviour>,
    /// [`Misbehaviour::RebootsMidDeploy`] reboots once per setting.
    rebooted_mid_deploy: bool,
}

/// The event log keeps this many entries.
const EVENT_LIMIT: usize = 1000;

/// One virtual server behind one BMC. Cheap to share; stops with [`VirtualHost::stop`] or when
/// the last `Arc` goes.
pub struct VirtualHost {
    name: String,
    hardware: Hardware,
    config: HostConfig,
    bmc: Arc<Bmc>,
    inner: Mutex<Inner>,
    state: watch::Sender<HostState>,
    driver: Mutex<Option<JoinHandle<()>>>,
    /// What the current boot runs (firmware, agent, OS): replaced by the next boot, stopped by
    /// a power-off.
    running: Mutex<Option<JoinHandle<()>>>,
}

impl VirtualHost {
    /// Puts `hardware` behind `bmc` and starts following its boots and power. Must be called
    /// inside a tokio runtime.
    pub fn start(
        name: impl Into<String>,
        hardware: Hardware,
        config: HostConfig,
        bmc: Arc<Bmc>,
    ) -> Arc<VirtualHost> {
        let boots = bmc.subscribe_boots();
        let power = bmc.subscribe_power();
        let initial = if *power.borrow() {
            // Already on at start: it is running whatever the disk holds (nothing yet).
            HostState::Failed("no bootable device".into())
        } else {
            HostState::PoweredOff
        };
        let host = Arc::new(VirtualHost {
            name: name.into(),
            hardware,
            config: config.clone(),
            bmc,
            inner: Mutex::new(Inner {
                events: Vec::new(),
                disk: DiskContents::Empty,
                os: None,
                last_token: None,
                older_token: None,
                misbehaviour: config.misbehaviour.clone(),
                rebooted_mid_deploy: false,
            }),
            state: watch::channel(initial).0,
            driver: Mutex::new(None),
            running: Mutex::new(None),
        });
        let driver = tokio::spawn(drive(Arc::downgrade(&host), boots, power));
        *host.driver.lock().unwrap_or_else(|e| e.into_inner()) = Some(driver);
        host
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn hardware(&self) -> &Hardware {
        &self.hardware
    }

    pub fn bmc(&self) -> &Arc<Bmc> {
        &self.bmc
    }

    pub fn state(&self) -> HostState {
        self.state.borrow().clone()
    }

    /// Every state change, for awaiting transitions without polling.
    pub fn watch(&self) -> watch::Receiver<HostState> {
        self.state.subscribe()
    }

    /// Waits until `pred` holds for the state (checked at once, then on every change).
    pub async fn wait_for(&self, pred: impl Fn(&HostState) -> bool) -> HostState {
        let mut rx = self.watch();
        let state = rx
            .wait_for(|s| pred(s))
            .await
            .expect("the host's sender lives as long as the host");
        state.clone()
    }

    /// The OS the host runs or last ran, with what it was given.
    pub fn os(&self) -> Option<OsInfo> {
        self.lock().os.clone()
    }

    pub fn disk(&self) -> DiskContents {
        self.lock().disk.clone()
    }

    /// The host's log: boots, fetches (nonces redacted), callbacks and their answers, states.
    pub fn events(&self) -> Vec<HostEvent> {
        self.lock().events.clone()
    }

    /// Changes the misbehaviour from the next boot on (`None`: behave).
    pub fn set_misbehaviour(&self, misbehaviour: Option<Misbehaviour>) {
        let mut inner = self.lock();
        inner.misbehaviour = misbehaviour;
        inner.rebooted_mid_deploy = false;
    }

    /// Stops following the BMC; whatever the host was doing stops too.
    pub fn stop(&self) {
        if let Some(driver) = self.driver.lock().unwrap_or_else(|e| e.into_inner()).take() {
            driver.abort();
        }
        self.replace_running(None);
    }

    /// Stops what the previous boot started and runs `next` instead.
    fn replace_running(&self, next: Option<JoinHandle<()>>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = std::mem::replace(&mut *running, next) {
            previous.abort();
        }
    }

    fn log(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::debug!(host = %self.name, "{message}");
        let mut inner = self.lock();
        if inner.events.len() >= EVENT_LIMIT {
            inner.events.remove(0);
        }
        inner.events.push(HostEvent {
            at: SystemTime::now(),
            message,
        });
    }

    fn set_state(&self, state: HostState) {
        self.log(format!("state {state:?}"));
        tracing::info!(host = %self.name, state = ?state, "virtual host state");
        self.state.send_replace(state);
    }
}

impl Drop for VirtualHost {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Follows the BMC: each boot replaces whatever ran before; a power-off stops it. Holds the host
/// weakly, so dropping every `Arc` of an idle host ends it.
async fn drive(
    host: Weak<VirtualHost>,
    mut boots: broadcast::Receiver<BootEvent>,
    mut power: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            boot = boots.recv() => {
                let boot = match boot {
                    Ok(boot) => boot,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                let Some(host) = host.upgrade() else { break };
                host.replace_running(None);
                if !*power.borrow() {
                    // Powered off again before this boot was looked at: nothing runs.
                    continue;
                }
                host.log(format!("boot from {} ({})", boot.target, boot.mode));
                let task = tokio::spawn(firmware::boot(host.clone(), boot));
                host.replace_running(Some(task));
            }
            changed = power.changed() => {
                if changed.is_err() {
                    break;
                }
                if *power.borrow_and_update() {
                    continue;
                }
                let Some(host) = host.upgrade() else { break };
                host.replace_running(None);
                host.log("powered off");
                host.set_state(HostState::PoweredOff);
            }
        }
    }
}
