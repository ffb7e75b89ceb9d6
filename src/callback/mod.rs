//! The callback servers the PXE-booted agent talks to (shared/design/inspector-contract.md):
//!
//! - the **HTTPS callback listener** ([`https_router`], served by [`serve_https`]): every
//!   endpoint of contract §2;
//! - the opt-in **plain-HTTP boot listener** ([`boot_router`], served by [`serve_http`]): the
//!   first stage, `/boot` and the config URL only, for iPXE builds without HTTPS.
//!
//! Handlers authenticate, validate and **record** (status writes under the field manager
//! `beskar7-callback`, see [`records`]); the host controller makes the state transitions. Hosts
//! are looked up in the PhysicalHost reflector the manager shares ([`HostSource`]), so requests
//! that fail authentication cost the API server nothing; every decision that writes is made again
//! on a fresh read. See docs/callbacks.md for the wiring.

pub mod agent;
pub mod boot;
pub mod inspection;
pub mod ratelimit;
pub mod records;
pub mod render;
pub mod serve;
pub mod tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::PhysicalHost;
use crate::tokens::TokenKey;

pub use ratelimit::RateLimit;
pub use serve::{serve_http, serve_https};
pub use tls::CallbackTls;

/// Settings of the callback servers (from the manager's flags).
#[derive(Clone, Debug)]
pub struct CallbackConfig {
    /// `--callback-url`: the external https base URL of the callback listener (`beskar7.api`).
    pub callback_url: String,
    /// `--boot-url`: the external http base URL of the boot listener, when it runs.
    pub boot_url: Option<String>,
    /// `beskar7.timeout`: seconds the agent may spend (the deployment timeout).
    pub agent_timeout: Duration,
    /// The agent image for cleaning boots of hosts that no longer carry a provisioning intent.
    pub clean_image_url: Option<String>,
    /// After the first `/boot`, how long the same MAC may fetch the same script again.
    pub nonce_refetch_window: Duration,
    /// After the first bootstrap fetch, how long the agent may fetch it again.
    pub bootstrap_window: Duration,
    pub rate_limit: RateLimit,
}

impl CallbackConfig {
    /// The contract's defaults for `callback_url`.
    pub fn new(callback_url: impl Into<String>) -> Self {
        CallbackConfig {
            callback_url: callback_url.into().trim_end_matches('/').to_owned(),
            boot_url: None,
            agent_timeout: Duration::from_secs(20 * 60),
            clean_image_url: None,
            nonce_refetch_window: Duration::from_secs(120),
            bootstrap_window: Duration::from_secs(60),
            rate_limit: RateLimit::default(),
        }
    }
}

/// Where the callback finds hosts: the manager's PhysicalHost reflector, or anything like it.
pub trait HostSource: Send + Sync {
    /// The host `namespace/name`.
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<PhysicalHost>>;
    /// Every host (the first stage scans them for a MAC address).
    fn all(&self) -> Vec<Arc<PhysicalHost>>;
}

impl HostSource for Store<PhysicalHost> {
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<PhysicalHost>> {
        Store::get(self, &ObjectRef::new(name).within(namespace))
    }
    fn all(&self) -> Vec<Arc<PhysicalHost>> {
        self.state()
    }
}

/// The time, injectable so tests can cross the 60 s and 120 s windows without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> jiff::Timestamp;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<jiff::Timestamp>>);

impl ManualClock {
    pub fn new(now: jiff::Timestamp) -> Self {
        ManualClock(Arc::new(Mutex::new(now)))
    }
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("clock lock");
        *t += jiff::SignedDuration::try_from(by).expect("a test duration fits");
    }
    pub fn set(&self, to: jiff::Timestamp) {
        *self.0.lock().expect("clock lock") = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> jiff::Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct CallbackState(Arc<Inner>);

pub(crate) struct Inner {
    pub hosts: Arc<dyn HostSource>,
    pub client: kube::Client,
    pub ca_base64: String,
    pub config: CallbackConfig,
    pub key: TokenKey,
    pub limiter: ratelimit::FailureLimiter,
    pub clock: Arc<dyn Clock>,
}

impl CallbackState {
    /// The state of both listeners. `ca_pem` is the issuing CA rendered into `beskar7.ca`
    /// ([`CallbackTls::ca_pem`]); `key` is the installation's token key
    /// ([`crate::tokens::load_or_create_token_key`]).
    pub fn new(
        hosts: Arc<dyn HostSource>,
        client: kube::Client,
        ca_pem: &str,
        key: TokenKey,
        config: CallbackConfig,
    ) -> Self {
        CallbackState(Arc::new(Inner {
            hosts,
            client,
            ca_base64: crate::tokens::base64_standard(ca_pem.as_bytes()),
            limiter: ratelimit::FailureLimiter::new(config.rate_limit),
            config,
            key,
            clock: Arc::new(SystemClock),
        }))
    }

    /// The same state with another clock (tests).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        let inner = Arc::try_unwrap(self.0).unwrap_or_else(|arc| Inner {
            hosts: arc.hosts.clone(),
            client: arc.client.clone(),
            ca_base64: arc.ca_base64.clone(),
            config: arc.config.clone(),
            key: arc.key.clone(),
            limiter: ratelimit::FailureLimiter::new(arc.config.rate_limit),
            clock: arc.clock.clone(),
        });
        CallbackState(Arc::new(Inner { clock, ..inner }))
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.0
    }

    pub(crate) fn now(&self) -> jiff::Timestamp {
        self.0.clock.now()
    }
}

/// Which listener served a request: the first stage chains through the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Https,
    Boot,
}

fn boot_routes(state: CallbackState, listener: Listener) -> Router {
    Router::new()
        .route("/boot.ipxe", get(boot::boot_ipxe))
        .route("/ipxe", get(boot::first_stage))
        .route("/api/v1/boot/{ns}/{host}/{nonce}", get(boot::boot))
        .route("/api/v1/config/{ns}/{host}/{nonce}", get(boot::config))
        .layer(axum::Extension(listener))
        .with_state(state)
}

/// The HTTPS callback listener's routes: all of contract §2. Serve with [`serve_https`].
pub fn https_router(state: CallbackState) -> Router {
    let agent = Router::new()
        .route("/api/v1/inspection/{ns}/{host}", post(agent::inspection))
        .route("/api/v1/bootstrap/{ns}/{host}", get(agent::bootstrap))
        .route("/api/v1/provisioned/{ns}/{host}", post(agent::provisioned))
        .route(
            "/api/v1/provision-failed/{ns}/{host}",
            post(agent::provision_failed),
        )
        .route("/api/v1/cleaned/{ns}/{host}", post(agent::cleaned))
        // The handlers read bodies themselves, with their own limits (413 beyond).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state.clone());
    boot_routes(state, Listener::Https)
        .merge(agent)
        .layer(axum::middleware::from_fn(serve::access_log))
}

/// The plain-HTTP boot listener's routes: the first stage, `/boot` and the config URL only.
/// Serve with [`serve_http`]; only on trusted L2 networks (the nonce travels in clear).
pub fn boot_router(state: CallbackState) -> Router {
    boot_routes(state, Listener::Boot).layer(axum::middleware::from_fn(serve::access_log))
}
