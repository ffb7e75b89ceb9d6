//! `beskar7-sim bmc`: a simulated Redfish BMC, one per simulated server, on loopback.
//!
//! It keeps what Beskar7's Redfish client depends on faithful — sessions and Basic auth with a
//! session limit, ETags and `If-Match`, asynchronous power transitions, the one-time boot
//! override being consumed by the next boot, NICs with MACs — and reproduces vendor quirks as
//! personas ([`Persona`]). It serves a generated tree or a real vendor mockup from
//! shared/fixtures/redfish/mockups/ with PATCH and POST applied in memory, and can be slowed
//! down or made to fail ([`Fault`]). Every boot is announced ([`BootEvent`]), which is how a
//! virtual host learns that it was PXE-booted.

mod http;
pub mod persona;
mod power;
mod service;
pub mod tree;

pub use persona::{ALL as PERSONAS, EtagForm, Persona, Quirks, SessionLocation};
pub use tree::ServerSpec;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tree::Tree;

/// How to build one simulated BMC.
#[derive(Clone)]
pub struct BmcConfig {
    pub persona: Persona,
    pub username: String,
    pub password: String,
    pub server: ServerSpec,
    /// Serve this short-form mockup tree instead of a generated one.
    pub mockup: Option<PathBuf>,
    /// How long a power transition takes (PoweringOn/PoweringOff are reported meanwhile).
    pub power_delay: Duration,
    /// Added to every request.
    pub latency: Duration,
}

// No Debug derive: the password must not end up in logs.
impl std::fmt::Debug for BmcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcConfig")
            .field("persona", &self.persona)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("mockup", &self.mockup)
            .field("power_delay", &self.power_delay)
            .field("latency", &self.latency)
            .finish()
    }
}

impl Default for BmcConfig {
    fn default() -> Self {
        BmcConfig {
            persona: Persona::Generic,
            username: "admin".into(),
            password: "password".into(),
            server: ServerSpec::default(),
            mockup: None,
            power_delay: Duration::from_millis(200),
            latency: Duration::ZERO,
        }
    }
}

/// A failure the BMC plays on the next requests, whatever they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 with a Redfish error body.
    ServerError,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Never answers (until the client gives up).
    Hang,
    /// 503 Service Unavailable, as a BMC that is reloading.
    Unavailable,
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "500" | "server-error" => Ok(Fault::ServerError),
            "garbage" => Ok(Fault::Garbage),
            "hang" | "timeout" => Ok(Fault::Hang),
            "503" | "unavailable" => Ok(Fault::Unavailable),
            other => Err(format!(
                "unknown fault {other:?}; known: server-error, garbage, hang, unavailable"
            )),
        }
    }
}

/// A boot the simulated server performed: what it booted from, in which mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEvent {
    /// `Pxe`, `Hdd`, ... — the override target when one was active, else `Hdd`.
    pub target: String,
    pub mode: String,
    pub macs: Vec<String>,
}

/// One request as the BMC saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// `none`, `basic` or `session`.
    pub auth: &'static str,
    pub status: u16,
}

pub(crate) struct Session {
    token: String,
}

pub(crate) struct State {
    tree: Tree,
    system: String,
    sessions: BTreeMap<String, Session>,
    next_session: u64,
    /// Bumped whenever a resource changes; the ETag derives from it.
    versions: HashMap<String, u64>,
    power: power::Power,
    tasks: HashMap<u64, u64>,
    next_task: u64,
    faults: VecDeque<Fault>,
    log: VecDeque<RequestRecord>,
    max_sessions_seen: usize,
    /// Zero-delay power transitions to complete once the current request releases the lock.
    immediate: Vec<u64>,
}

/// One simulated BMC. Cheap to share (`Arc`); serve it with [`Bmc::serve`] or mount
/// [`Bmc::router`].
pub struct Bmc {
    state: Mutex<State>,
    quirks: Quirks,
    config: BmcConfig,
    boots: broadcast::Sender<BootEvent>,
    /// Whether the server is powered (transitions complete), for virtual hosts: a power-off
    /// stops whatever the server was doing.
    powered: watch::Sender<bool>,
    this: Weak<Bmc>,
}

/// The request log keeps this many entries (tests and the benchmark read it).
const LOG_LIMIT: usize = 10_000;

impl Bmc {
    pub fn new(config: BmcConfig) -> Result<Arc<Self>, String> {
        let quirks = config.persona.quirks();
        let tree = match &config.mockup {
            Some(dir) => Tree::load_mockup(dir)?,
            None => Tree::generate(&quirks, &config.server),
        };
        let system = tree.system_path().ok_or("the tree has no ComputerSystem")?;
        let powered_on = tree.get(&system).and_then(|s| s["PowerState"].as_str()) == Some("On");
        let state = State {
            tree,
            system,
            sessions: BTreeMap::new(),
            next_session: 1,
            versions: HashMap::new(),
            power: power::Power::new(powered_on),
            tasks: HashMap::new(),
            next_task: 1,
            faults: VecDeque::new(),
            log: VecDeque::new(),
            max_sessions_seen: 0,
            immediate: Vec::new(),
        };
        let (boots, _) = broadcast::channel(64);
        let (powered, _) = watch::channel(powered_on);
        Ok(Arc::new_cyclic(|this| Bmc {
            state: Mutex::new(state),
            quirks,
            config,
            boots,
            powered,
            this: this.clone(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn persona(&self) -> Persona {
        self.config.persona
    }

    pub fn quirks(&self) -> &Quirks {
        &self.quirks
    }

    /// The System's `@odata.id`.
    pub fn system_path(&self) -> String {
        self.lock().system.clone()
    }

    /// The axum router serving `/redfish/v1/...`.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        http::router(self.clone())
    }

    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Plays `fault` on each of the next `count` requests.
    pub fn inject(&self, fault: Fault, count: usize) {
        self.lock().faults.extend(std::iter::repeat_n(fault, count));
    }

    /// Drops the faults not played yet: the BMC answers normally again.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Ends every session, as a BMC whose session timeout passed (clients must log in again).
    pub fn expire_sessions(&self) {
        self.lock().sessions.clear();
    }

    pub fn active_sessions(&self) -> usize {
        self.lock().sessions.len()
    }

    /// The most sessions that were open at once.
    pub fn max_sessions_seen(&self) -> usize {
        self.lock().max_sessions_seen
    }

    /// The requests served so far (the newest 10,000).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().log.iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// The System resource as a client would read it now.
    pub fn system(&self) -> serde_json::Value {
        let state = self.lock();
        state.tree.get(&state.system).cloned().unwrap_or_default()
    }

    /// Boots from now on.
    pub fn subscribe_boots(&self) -> broadcast::Receiver<BootEvent> {
        self.boots.subscribe()
    }

    /// Whether the server is powered, updated when a power transition completes. A restart
    /// (on → on) does not change it: it is announced as a boot instead.
    pub fn subscribe_power(&self) -> watch::Receiver<bool> {
        self.powered.subscribe()
    }
}
