//! `RedfishClient`: discovery from the service root, system selection, the choice of auth per
//! operation, and the [`Bmc`] operations.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::{Method, Url};

use super::config::{AuthMode, BmcConfig};
use super::error::{RedfishError, Result};
use super::model::{
    BootMode, BootOverride, Collection, ComputerSystem, EthernetInterface, Health, Inventory, Nic,
    PowerAction, PowerOutcome, PowerState, ServiceRoot, SystemSnapshot,
};
use super::transport::{Auth, Conn, Http, path_of};
use super::vendor::Vendor;
use super::{Bmc, BoxFuture, boot, power, session, tls};

/// What discovery learned about a BMC. Paths only, never a session: it may be kept across
/// client instances ([`RedfishClient::seed`]) so an idle check needs no discovery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    /// The ServiceRoot was read.
    pub root_read: bool,
    pub redfish_version: Option<String>,
    pub vendor: Vendor,
    /// `Links.Sessions` (else `SessionService/Sessions`), when the root has a SessionService.
    pub sessions_path: Option<String>,
    /// The systems collection from the root.
    pub systems_path: Option<String>,
    /// The chosen ComputerSystem.
    pub system_path: Option<String>,
    /// Learned in auto mode: Basic works (`Some(true)`) or was refused (`Some(false)`).
    pub basic_allowed: Option<bool>,
    /// Learned in auto mode: the session login is unavailable, use Basic.
    pub sessions_unavailable: bool,
}

/// A Redfish client for one BMC. Holds no session between operations.
pub struct RedfishClient {
    http: Arc<Http>,
    auth: AuthMode,
    discovery: Mutex<Discovery>,
}

impl std::fmt::Debug for RedfishClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedfishClient")
            .field("address", &self.http.address())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// Normalises a configured system path; empty and `/redfish/v1` mean "not set" (as metal3).
fn normalise_system_path(p: &str) -> Option<String> {
    let p = path_of(p.trim());
    let trimmed = p.trim_end_matches('/');
    (!trimmed.is_empty() && trimmed != "/redfish/v1").then(|| trimmed.to_owned())
}

impl RedfishClient {
    /// Builds the client (TLS and timeouts); no request is sent yet.
    pub fn new(config: BmcConfig) -> Result<Self> {
        // Never echo an address that may carry user info.
        let shown = if config.address.contains('@') {
            "(an address with user info)".to_owned()
        } else {
            format!("{:?}", config.address)
        };
        let url = Url::parse(config.address.trim())
            .map_err(|e| RedfishError::InvalidConfig(format!("address {shown}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(RedfishError::InvalidConfig(format!(
                "address {shown} must be http(s)://host[:port]"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedfishError::InvalidConfig(
                "the address must not carry credentials; use the credentials Secret".into(),
            ));
        }
        let mut base = url.clone();
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);
        let system_path = config
            .system_path
            .as_deref()
            .and_then(normalise_system_path)
            .or_else(|| {
                url.path()
                    .starts_with("/redfish/v1/Systems/")
                    .then(|| normalise_system_path(url.path()))
                    .flatten()
            });
        let tls = tls::client_config(&config.tls)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.policy.connect_timeout)
            .timeout(config.policy.request_timeout)
            // Some BMCs choke on long-lived keep-alive connections (sushy, gofish).
            .pool_max_idle_per_host(0)
            // sushy-emulator redirects a system name to its UUID URL (307). Redirects are
            // followed on the same origin only: X-Auth-Token is not stripped by reqwest.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if same && attempt.previous().len() <= 5 {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .build()
            .map_err(|e| RedfishError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(Self {
            http: Arc::new(Http {
                client,
                base,
                credentials: config.credentials,
                policy: config.policy,
                skip_accept_encoding: AtomicBool::new(false),
                sent: AtomicU64::new(0),
            }),
            auth: config.auth,
            discovery: Mutex::new(Discovery {
                system_path,
                ..Discovery::default()
            }),
        })
    }

    /// HTTP requests sent to this BMC so far (logins, logouts and retries included).
    pub fn requests_sent(&self) -> u64 {
        self.http.sent.load(Ordering::Relaxed)
    }

    /// What discovery has learned so far.
    pub fn discovery(&self) -> Discovery {
        self.disc(|d| d.clone())
    }

    /// Starts from an earlier client's discovery (a configured system path still wins).
    pub fn seed(&self, discovery: Discovery) {
        self.disc(|d| {
            let configured = d.system_path.take();
            *d = discovery;
            if configured.is_some() {
                d.system_path = configured;
            }
        })
    }

    fn disc<T>(&self, f: impl FnOnce(&mut Discovery) -> T) -> T {
        f(&mut self
            .discovery
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// `GET /redfish/v1/` without credentials (the only resource readable without them).
    async fn ensure_root(&self) -> Result<()> {
        if self.disc(|d| d.root_read) {
            return Ok(());
        }
        let path = "/redfish/v1/";
        let resp = self
            .http
            .send(Method::GET, path, Auth::None, None, None)
            .await?;
        if !resp.is_success() {
            return Err(resp.error());
        }
        let v = resp.value()?;
        let root: ServiceRoot =
            serde_json::from_value(v).map_err(|e| RedfishError::InvalidPayload {
                path: path.into(),
                detail: format!("not a ServiceRoot ({e})"),
            })?;
        let sessions_path = root
            .links
            .as_ref()
            .and_then(|l| l.sessions.as_ref())
            .and_then(|l| l.id.as_deref())
            .map(path_of)
            .or_else(|| {
                root.session_service.as_ref().map(|s| {
                    let base = s.id.as_deref().map(path_of);
                    let base = base.unwrap_or_else(|| "/redfish/v1/SessionService".into());
                    format!("{}/Sessions", base.trim_end_matches('/'))
                })
            });
        let oem_keys: Vec<String> = root.oem.iter().flat_map(|m| m.keys().cloned()).collect();
        let vendor = Vendor::from_hints(
            root.vendor
                .iter()
                .chain(root.product.iter())
                .map(String::as_str)
                .chain(oem_keys.iter().map(String::as_str)),
        );
        self.disc(|d| {
            d.root_read = true;
            d.redfish_version = root.redfish_version.clone();
            if d.vendor == Vendor::Other {
                d.vendor = vendor;
            }
            d.sessions_path = sessions_path;
            d.systems_path = root
                .systems
                .as_ref()
                .and_then(|l| l.id.as_deref())
                .map(path_of);
        });
        Ok(())
    }

    /// Opens an operation: a session (session and auto modes) or Basic.
    async fn open(&self) -> Result<Conn> {
        self.ensure_root().await?;
        let (sessions_path, unavailable) =
            self.disc(|d| (d.sessions_path.clone(), d.sessions_unavailable));
        match self.auth {
            AuthMode::Basic => Ok(Conn::basic(self.http.clone())),
            AuthMode::Session => {
                let path = sessions_path.ok_or_else(|| {
                    RedfishError::Unsupported("sessions (no SessionService in the root)".into())
                })?;
                let s = session::login(&self.http, &path).await?;
                Ok(Conn::session(self.http.clone(), path, s))
            }
            AuthMode::Auto => {
                let Some(path) = sessions_path.filter(|_| !unavailable) else {
                    return Ok(Conn::basic(self.http.clone()));
                };
                match session::login(&self.http, &path).await {
                    Ok(s) => Ok(Conn::session(self.http.clone(), path, s)),
                    Err(
                        e @ (RedfishError::Unreachable { .. }
                        | RedfishError::Tls { .. }
                        | RedfishError::Timeout { .. }),
                    ) => Err(e),
                    Err(e) => {
                        tracing::debug!(error = %e, "session login failed; falling back to Basic");
                        if matches!(e.status(), Some(404 | 405 | 501)) {
                            self.disc(|d| d.sessions_unavailable = true);
                        }
                        Ok(Conn::basic(self.http.clone()))
                    }
                }
            }
        }
    }

    /// The system path: configured, known, or the single member of the Systems collection.
    async fn system_path(&self, conn: &mut Conn) -> Result<String> {
        if let Some(p) = self.disc(|d| d.system_path.clone()) {
            return Ok(p);
        }
        let systems = self
            .disc(|d| d.systems_path.clone())
            .unwrap_or_else(|| "/redfish/v1/Systems".into());
        let (coll, _) = conn.get::<Collection>(&systems).await?;
        let members: Vec<String> = coll
            .members
            .iter()
            .filter_map(|m| m.id.as_deref())
            .map(path_of)
            .collect();
        let path = match members.as_slice() {
            [] => return Err(RedfishError::NoSystem),
            [one] => one.clone(),
            _ => return Err(RedfishError::SeveralSystems(members)),
        };
        self.disc(|d| d.system_path = Some(path.clone()));
        Ok(path)
    }

    pub(crate) fn vendor(&self) -> Vendor {
        self.disc(|d| d.vendor)
    }

    /// Notes the System's `Manufacturer` when the root named no vendor.
    pub(crate) fn learn_vendor(&self, sys: &ComputerSystem) {
        if let Some(m) = sys.manufacturer.as_deref() {
            self.disc(|d| {
                if d.vendor == Vendor::Other {
                    d.vendor = Vendor::detect(m);
                }
            });
        }
    }

    async fn with_conn<T>(
        &self,
        op: impl AsyncFnOnce(&Self, &mut Conn, String) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.open().await?;
        let result = match self.system_path(&mut conn).await {
            Ok(path) => op(self, &mut conn, path).await,
            Err(e) => Err(e),
        };
        conn.close().await;
        result
    }

    async fn do_inventory(&self) -> Result<Inventory> {
        self.with_conn(async |c: &Self, conn: &mut Conn, path: String| {
            let (sys, _) = conn.get::<ComputerSystem>(&path).await?;
            c.learn_vendor(&sys);
            let nics = match sys
                .ethernet_interfaces
                .as_ref()
                .and_then(|l| l.id.as_deref())
            {
                Some(link) => nics(conn, &path_of(link)).await?,
                None => Vec::new(),
            };
            let reset_types = power::allowed_reset_types(conn, &sys).await;
            let d = c.discovery();
            Ok(Inventory {
                snapshot: snapshot(&path, &sys),
                vendor: d.vendor,
                redfish_version: d.redfish_version,
                manufacturer: sys.manufacturer.clone(),
                model: sys.model.clone(),
                serial_number: sys.serial_number.clone(),
                uuid: sys.uuid.clone(),
                bios_version: sys.bios_version.clone(),
                cpu_count: sys.processor_summary.as_ref().and_then(|p| p.count),
                cpu_cores: sys.processor_summary.as_ref().and_then(|p| p.core_count),
                cpu_model: sys
                    .processor_summary
                    .as_ref()
                    .and_then(|p| p.model.as_deref())
                    .map(|m| m.trim().to_owned()),
                memory_gib: sys.memory_summary.as_ref().and_then(|m| m.total_gib),
                nics,
                reset_types,
            })
        })
        .await
    }

    /// The idle drift check: exactly one GET of the system with Basic where allowed, else
    /// login/GET/logout.
    async fn do_check(&self) -> Result<SystemSnapshot> {
        // With a known system path, a Basic check needs nothing else (not even the root).
        if self.disc(|d| d.system_path.is_none()) {
            // First check on a fresh client: discover the system within one operation.
            return self
                .with_conn(async |c: &Self, conn: &mut Conn, path: String| {
                    let (sys, _) = conn.get::<ComputerSystem>(&path).await?;
                    c.learn_vendor(&sys);
                    Ok(snapshot(&path, &sys))
                })
                .await;
        }
        let path = self.disc(|d| d.system_path.clone()).unwrap_or_default();
        let try_basic = match self.auth {
            AuthMode::Basic => true,
            AuthMode::Session => false,
            AuthMode::Auto => self.disc(|d| d.basic_allowed != Some(false)),
        };
        if try_basic {
            let mut conn = Conn::basic(self.http.clone());
            match conn.get::<ComputerSystem>(&path).await {
                Ok((sys, _)) => {
                    self.disc(|d| d.basic_allowed = Some(true));
                    return Ok(snapshot(&path, &sys));
                }
                Err(e)
                    if self.auth == AuthMode::Auto
                        && !self.disc(|d| d.sessions_unavailable)
                        && matches!(e.status(), Some(401 | 403)) =>
                {
                    tracing::debug!(error = %e, "Basic refused; trying a session");
                    let snap = self.session_check().await?;
                    // Only now is it clear that Basic (not the credentials) was refused.
                    self.disc(|d| d.basic_allowed = Some(false));
                    return Ok(snap);
                }
                Err(e) => return Err(e),
            }
        }
        self.session_check().await
    }

    async fn session_check(&self) -> Result<SystemSnapshot> {
        self.with_conn(async |_c: &Self, conn: &mut Conn, path: String| {
            let (sys, _) = conn.get::<ComputerSystem>(&path).await?;
            Ok(snapshot(&path, &sys))
        })
        .await
    }
}

pub(crate) fn snapshot(path: &str, sys: &ComputerSystem) -> SystemSnapshot {
    SystemSnapshot {
        path: path.to_owned(),
        power: PowerState::parse(sys.power_state.as_deref()),
        health: Health::parse(sys.status.as_ref().and_then(|s| s.health.as_deref())),
        boot: BootOverride::from_boot(sys.boot.as_ref()),
    }
}

/// The host NICs; a missing collection (404) is an empty list.
async fn nics(conn: &mut Conn, coll_path: &str) -> Result<Vec<Nic>> {
    let coll = match conn.get::<Collection>(coll_path).await {
        Ok((c, _)) => c,
        Err(e) if e.status() == Some(404) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for m in coll.members.iter().filter_map(|m| m.id.as_deref()) {
        let (nic, _) = conn.get::<EthernetInterface>(&path_of(m)).await?;
        let Some(mac) = nic
            .mac
            .as_deref()
            .or(nic.permanent_mac.as_deref())
            .map(|m| m.trim().to_ascii_lowercase().replace('-', ":"))
            .filter(|m| !m.is_empty())
        else {
            continue;
        };
        let ipv4 = nic
            .ipv4
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| a.address)
            .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
            .collect();
        out.push(Nic {
            id: nic
                .id
                .unwrap_or_else(|| m.rsplit('/').next().unwrap_or(m).to_owned()),
            name: nic.name,
            mac,
            link_up: nic.link_status.as_deref().map(|s| s == "LinkUp"),
            ipv4,
        });
    }
    Ok(out)
}

impl Bmc for RedfishClient {
    fn inventory(&self) -> BoxFuture<'_, Result<Inventory>> {
        Box::pin(self.do_inventory())
    }

    fn check(&self) -> BoxFuture<'_, Result<SystemSnapshot>> {
        Box::pin(self.do_check())
    }

    fn set_power(
        &self,
        action: PowerAction,
        wait: Option<Duration>,
    ) -> BoxFuture<'_, Result<PowerOutcome>> {
        Box::pin(
            self.with_conn(async move |_c: &Self, conn: &mut Conn, path: String| {
                power::set_power(conn, &path, action, wait).await
            }),
        )
    }

    fn set_pxe_once(&self, mode: Option<BootMode>) -> BoxFuture<'_, Result<BootOverride>> {
        Box::pin(
            self.with_conn(async move |c: &Self, conn: &mut Conn, path: String| {
                boot::set_pxe_once(conn, &path, c, mode).await
            }),
        )
    }

    fn pxe_boot(
        &self,
        mode: Option<BootMode>,
        wait: Option<Duration>,
    ) -> BoxFuture<'_, Result<(BootOverride, PowerOutcome)>> {
        Box::pin(
            self.with_conn(async move |c: &Self, conn: &mut Conn, path: String| {
                let ov = boot::set_pxe_once(conn, &path, c, mode).await?;
                let out = power::set_power(conn, &path, PowerAction::Restart, wait).await?;
                Ok((ov, out))
            }),
        )
    }

    fn clear_boot_override(&self) -> BoxFuture<'_, Result<BootOverride>> {
        Box::pin(
            self.with_conn(async move |c: &Self, conn: &mut Conn, path: String| {
                boot::clear(conn, &path, c).await
            }),
        )
    }
}
