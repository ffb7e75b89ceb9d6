//! What one BMC connection is made of: address, credentials, auth mode, TLS and timing.

use std::fmt;
use std::time::Duration;

/// BMC login credentials. `Debug` shows the user name only; there is no `Display`.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Credentials from the Secret keys `username` and `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name (not secret).
    pub fn username(&self) -> &str {
        &self.username
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How the client authenticates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// A session per operation, falling back to Basic when the BMC has no usable
    /// SessionService; the idle check tries Basic first and remembers when it is refused.
    #[default]
    Auto,
    /// `Authorization: Basic` on every request.
    Basic,
    /// `X-Auth-Token` sessions only (login, work, logout).
    Session,
}

/// Server certificate verification.
#[derive(Clone, Default)]
pub enum TlsOptions {
    /// Verify against the system trust store (`SSL_CERT_FILE`, else the usual
    /// distribution bundle paths). BMC self-signed certificates fail here.
    #[default]
    SystemRoots,
    /// Verify against these PEM CA certificates only (a `caBundleSecretRef`).
    CaBundle(Vec<u8>),
    /// Accept any certificate (`insecureSkipVerify`). Handshake signatures are still checked.
    InsecureSkipVerify,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SystemRoots => f.write_str("SystemRoots"),
            Self::CaBundle(pem) => write!(f, "CaBundle({} bytes)", pem.len()),
            Self::InsecureSkipVerify => f.write_str("InsecureSkipVerify"),
        }
    }
}

/// Timing and behaviour knobs; the defaults suit real BMCs, tests shrink them.
#[derive(Clone, Debug)]
pub struct Policy {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (headers and body).
    pub request_timeout: Duration,
    /// How often a transient BMC refusal (busy, during POST, too soon after a power change,
    /// iDRAC `SYS518`) is retried, and the pause between tries.
    pub retries: u32,
    pub retry_delay: Duration,
    /// Pause between `PowerState` polls while waiting for a transition.
    pub power_poll_interval: Duration,
    /// Default pause between task-monitor polls (a `Retry-After` header overrides it, up to
    /// `task_poll_max`), and the overall limit for one task.
    pub task_poll_interval: Duration,
    pub task_poll_max: Duration,
    pub task_timeout: Duration,
    /// Send `If-Match` on PATCH (opt-out for BMCs that reject even a correct one).
    pub etag_match: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retries: 3,
            retry_delay: Duration::from_secs(10),
            power_poll_interval: Duration::from_secs(3),
            task_poll_interval: Duration::from_secs(1),
            task_poll_max: Duration::from_secs(30),
            task_timeout: Duration::from_secs(300),
            etag_match: true,
        }
    }
}

/// Everything needed to talk to one BMC.
#[derive(Clone, Debug)]
pub struct BmcConfig {
    /// `https://host[:port]` (or `http://`). A path `/redfish/v1/Systems/<id>` is taken as the
    /// system path, as metal3 does; user info in the URL is rejected.
    pub address: String,
    pub credentials: Credentials,
    pub auth: AuthMode,
    pub tls: TlsOptions,
    /// The ComputerSystem to manage, e.g. `/redfish/v1/Systems/1`; required when the
    /// Systems collection has more than one member.
    pub system_path: Option<String>,
    pub policy: Policy,
}

impl BmcConfig {
    /// A config with the defaults: auto auth, system trust roots, default timing.
    pub fn new(address: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            address: address.into(),
            credentials,
            auth: AuthMode::default(),
            tls: TlsOptions::default(),
            system_path: None,
            policy: Policy::default(),
        }
    }
}
