//! The boot endpoints, served on both listeners: `/boot.ipxe`, the first stage `/ipxe?mac=`,
//! `/api/v1/boot/{ns}/{host}/{nonce}` and the one-shot config URL (contract §2–§4).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, body::Body};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;

use super::records::{self, RecordError};
use super::render::{self, BootInputs, BootPurpose};
use super::{CallbackState, Listener};
use crate::api::{Attempt, AttemptMode, Handoff, HostState, PhysicalHost};
use crate::tokens::matches_hash;

/// The address a request came from (for rate limiting and logs); unspecified when the server
/// did not say (a router called in-process).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

#[derive(Debug, Deserialize)]
pub struct MacQuery {
    pub mac: Option<String>,
}

/// The external base URL of the listener that served a request.
fn listener_url(state: &CallbackState, listener: Listener) -> &str {
    let config = &state.inner().config;
    match listener {
        Listener::Https => &config.callback_url,
        Listener::Boot => config.boot_url.as_deref().unwrap_or(&config.callback_url),
    }
}

/// A script response: never cached (it carries a nonce or a token).
pub(crate) fn script(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// The one failure every refused `/boot` and config request gets, whatever the cause.
pub(crate) fn opaque_failure() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        "unauthorized\n",
    )
        .into_response()
}

/// The script of a MAC with nothing to boot: back to the firmware, which boots the next device.
const EXIT_SCRIPT: &str =
    "#!ipxe\necho Beskar7: nothing to provision for this network interface\nexit\n";

pub(crate) fn attempt_of(host: &PhysicalHost) -> Option<&Attempt> {
    host.status.as_ref().and_then(|s| s.attempt.as_ref())
}

pub(crate) fn ts(t: &Option<Time>) -> Option<jiff::Timestamp> {
    t.as_ref().map(|t| t.0)
}

fn elapsed(since: jiff::Timestamp, now: jiff::Timestamp) -> std::time::Duration {
    // A record from the future (clock skew between replicas) counts as just now.
    now.duration_since(since)
        .try_into()
        .unwrap_or(std::time::Duration::ZERO)
}

/// When the nonce stops being accepted: `nonceExpiresAt`, else `expiresAt`.
fn nonce_live(attempt: &Attempt, now: jiff::Timestamp) -> bool {
    ts(&attempt.nonce_expires_at)
        .or(ts(&attempt.expires_at))
        .is_some_and(|exp| now < exp)
}

/// `GET /boot.ipxe`: chains to the first stage with the booting interface's MAC.
pub async fn boot_ipxe(
    State(state): State<CallbackState>,
    Extension(listener): Extension<Listener>,
) -> Response {
    let base = listener_url(&state, listener);
    script(format!(
        "#!ipxe\nchain {base}/ipxe?mac=${{netX/mac:hexhyp}}\n"
    ))
}

/// Whether `host` owns `mac`: its boot MAC, a MAC its BMC reported, or one of its inspection.
fn owns_mac(host: &PhysicalHost, mac: &str) -> bool {
    let is = |m: &str| render::normalize_mac(m).as_deref() == Some(mac);
    if host.spec.boot_mac_address.as_deref().is_some_and(is) {
        return true;
    }
    let Some(status) = &host.status else {
        return false;
    };
    status.mac_addresses.iter().any(|m| is(m))
        || status.inspection.as_ref().is_some_and(|i| {
            i.nics
                .iter()
                .any(|n| n.mac_address.as_deref().is_some_and(is))
        })
}

/// Whether the first stage may hand out this host's nonce to `mac` now.
fn chainable(
    host: &PhysicalHost,
    mac: &str,
    now: jiff::Timestamp,
    window: std::time::Duration,
) -> bool {
    let Some(a) = attempt_of(host) else {
        return false;
    };
    if a.id.is_none() || a.nonce_hash.is_none() || !nonce_live(a, now) {
        return false;
    }
    let r = records::Records::of(a);
    match ts(&r.nonce_consumed_at) {
        None => true,
        // Keep chaining during the re-fetch window of the MAC that used the nonce.
        Some(at) => r.nonce_consumed_by.as_deref() == Some(mac) && elapsed(at, now) <= window,
    }
}

/// `GET /ipxe?mac=<mac>`: the first stage (contract §3).
pub async fn first_stage(
    State(state): State<CallbackState>,
    Extension(listener): Extension<Listener>,
    Query(q): Query<MacQuery>,
) -> Response {
    let inner = state.inner();
    let now = state.now();
    let Some(mac) = q.mac.as_deref().and_then(render::normalize_mac) else {
        tracing::info!("first stage: no valid mac parameter; answering exit");
        return script(EXIT_SCRIPT.into());
    };
    let window = inner.config.nonce_refetch_window;
    let owners: Vec<_> = inner
        .hosts
        .all()
        .into_iter()
        .filter(|h| owns_mac(h, &mac))
        .collect();
    let live: Vec<_> = owners
        .iter()
        .filter(|h| chainable(h, &mac, now, window))
        .collect();
    let host = match live.as_slice() {
        [host] => host,
        [] => {
            tracing::info!(%mac, known = !owners.is_empty(), "first stage: no live attempt for this MAC; answering exit");
            return script(EXIT_SCRIPT.into());
        }
        _ => {
            tracing::warn!(%mac, hosts = live.len(), "first stage: several hosts with a live attempt claim this MAC; answering exit");
            return script(EXIT_SCRIPT.into());
        }
    };
    let (Some(ns), Some(name), Some(uid)) = (
        host.metadata.namespace.as_deref(),
        host.metadata.name.as_deref(),
        host.metadata.uid.as_deref(),
    ) else {
        return script(EXIT_SCRIPT.into());
    };
    let attempt_id = attempt_of(host)
        .and_then(|a| a.id.as_deref())
        .unwrap_or_default();
    let nonce = inner.key.secrets(uid, attempt_id).boot_nonce;
    tracing::info!(namespace = ns, host = name, %mac, "first stage: chaining to the boot script");
    let base = listener_url(&state, listener);
    script(format!(
        "#!ipxe\nchain {base}/api/v1/boot/{ns}/{name}/{}?mac={mac}\n",
        nonce.expose()
    ))
}

/// The boot script of `host`'s current attempt for `mac`; `Err` says why not (no secrets).
pub(crate) fn render_for(
    state: &CallbackState,
    host: &PhysicalHost,
    mac: Option<&str>,
) -> Result<String, String> {
    let inner = state.inner();
    let config = &inner.config;
    let ns = host.metadata.namespace.as_deref().unwrap_or_default();
    let name = host.metadata.name.as_deref().unwrap_or_default();
    let uid = host
        .metadata
        .uid
        .as_deref()
        .ok_or("the host has no metadata.uid")?;
    let attempt = attempt_of(host).ok_or("the host has no attempt")?;
    let attempt_id = attempt.id.as_deref().ok_or("the attempt has no id")?;
    let secrets = inner.key.secrets(uid, attempt_id);
    let intent = host.spec.provisioning.as_ref();
    let config_url;
    let purpose = match attempt.mode.unwrap_or(AttemptMode::Provision) {
        AttemptMode::Provision => {
            let intent = intent.ok_or(
                "the host has no provisioning intent (spec.provisioning) to render a boot script from",
            )?;
            config_url = match intent.handoff {
                Handoff::Kexec if attempt.config_nonce_hash.is_none() => {
                    return Err("handoff Kexec needs a configuration nonce, and the attempt has none (status.attempt.configNonceHash)".into());
                }
                Handoff::Kexec => Some(format!(
                    "{}/api/v1/config/{ns}/{name}/{}",
                    config.boot_url.as_deref().unwrap_or(&config.callback_url),
                    secrets.config_nonce.expose()
                )),
                Handoff::Image => None,
            };
            BootPurpose::Provision {
                intent,
                config_url: config_url.as_deref(),
            }
        }
        AttemptMode::Clean => BootPurpose::Clean {
            // The attempt's own record first: the machine usually removed the intent on release.
            inspection_image_url: attempt
                .agent_image_url
                .as_deref()
                .or(intent.map(|i| i.images.inspection_image_url.as_str()))
                .or(config.clean_image_url.as_deref())
                .ok_or("a cleaning boot needs the agent's image: the host has no provisioning intent and no clean image URL is configured")?,
        },
    };
    render::render(&BootInputs {
        api_url: &config.callback_url,
        namespace: ns,
        host: name,
        token: secrets.token.expose(),
        ca_base64: &inner.ca_base64,
        mac,
        timeout_secs: Some(config.agent_timeout.as_secs()),
        purpose,
    })
    .map_err(|e| e.to_string())
}

/// Why `/boot` refused; logged, never shown to the caller.
enum Refusal {
    /// Not recorded on the host.
    Quiet(String),
    /// Also recorded on the host as the attempt's failure.
    Recorded(String),
}

/// `GET /api/v1/boot/{ns}/{host}/{nonce}[?mac=]` (contract §4).
pub async fn boot(
    State(state): State<CallbackState>,
    Peer(peer): Peer,
    Path((ns, name, nonce)): Path<(String, String, String)>,
    query: Result<Query<MacQuery>, QueryRejection>,
) -> Response {
    let inner = state.inner();
    let now = state.now();
    let key = format!("{ns}/{name}");
    // A query that does not even parse is one more opaque failure, not axum's own 400.
    let mac = match &query {
        Ok(Query(q)) => q.mac.as_deref(),
        Err(_) => Some("malformed query"),
    };
    if inner.limiter.is_blocked(peer, &key, now) {
        tracing::info!(namespace = %ns, host = %name, %peer, reason = "too many failed requests from this address for this host", "boot refused");
        return opaque_failure();
    }
    match boot_script(&state, &ns, &name, &nonce, mac, now).await {
        Ok(body) => script(body),
        Err(refusal) => {
            inner.limiter.record_failure(peer, &key, now);
            let (reason, recorded) = match refusal {
                Refusal::Quiet(r) => (r, false),
                Refusal::Recorded(r) => (r, true),
            };
            tracing::info!(namespace = %ns, host = %name, %peer, %reason, recorded, "boot refused");
            opaque_failure()
        }
    }
}

async fn boot_script(
    state: &CallbackState,
    ns: &str,
    name: &str,
    nonce: &str,
    mac: Option<&str>,
    now: jiff::Timestamp,
) -> Result<String, Refusal> {
    let inner = state.inner();
    let quiet = |s: &str| Refusal::Quiet(s.to_owned());
    let mac = match mac {
        None => None,
        Some(m) => Some(render::normalize_mac(m).ok_or_else(|| quiet("malformed mac parameter"))?),
    };
    let host = inner
        .hosts
        .get(ns, name)
        .ok_or_else(|| quiet("no such host"))?;
    let attempt = attempt_of(&host).ok_or_else(|| quiet("the host has no attempt"))?;
    let (Some(attempt_id), Some(nonce_hash)) = (attempt.id.clone(), attempt.nonce_hash.clone())
    else {
        return Err(quiet("the attempt has no id or nonce"));
    };
    if !matches_hash(nonce, &nonce_hash) {
        return Err(quiet("the nonce does not match the host's attempt"));
    }
    if !nonce_live(attempt, now) {
        return Err(quiet("the nonce expired"));
    }
    let window = inner.config.nonce_refetch_window;
    let stamp = Time(now);
    let outcome = records::update(&inner.client, ns, name, &attempt_id, |fresh, rec, _| {
        if attempt_of(fresh).and_then(|a| a.nonce_hash.as_deref()) != Some(nonce_hash.as_str()) {
            return Err(quiet("the attempt's nonce changed"));
        }
        if let Some(at) = ts(&rec.nonce_consumed_at) {
            if rec.nonce_consumed_by.as_deref() != mac.as_deref() {
                return Err(quiet("the nonce was already used with another MAC address"));
            }
            if elapsed(at, now) > window {
                return Err(quiet("the nonce was used, and its re-fetch window is over"));
            }
            // A retry (iPXE, the NIC) within the window: the same bytes again.
            return render_for(state, fresh, mac.as_deref())
                .map_err(|e| Refusal::Quiet(format!("cannot render the boot script again: {e}")));
        }
        match render_for(state, fresh, mac.as_deref()) {
            Ok(body) => {
                rec.nonce_consumed_at = Some(stamp.clone());
                rec.nonce_consumed_by = mac.clone();
                Ok(body)
            }
            Err(e) => {
                let reason = format!("boot: {e}");
                rec.fail(&stamp, reason.chars().take(300).collect());
                Err(Refusal::Recorded(reason))
            }
        }
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(RecordError::AttemptChanged) => Err(quiet("the host's attempt changed")),
        Err(e) => Err(Refusal::Quiet(format!(
            "cannot record the nonce's use: {e}"
        ))),
    }
}

/// `GET /api/v1/config/{ns}/{host}/{config-nonce}`: the bootstrap data, once per attempt, for
/// Kexec targets that fetch their configuration by URL (contract §6).
pub async fn config(
    State(state): State<CallbackState>,
    Peer(peer): Peer,
    Path((ns, name, nonce)): Path<(String, String, String)>,
) -> Response {
    let inner = state.inner();
    let now = state.now();
    let key = format!("{ns}/{name}");
    if inner.limiter.is_blocked(peer, &key, now) {
        tracing::info!(namespace = %ns, host = %name, %peer, reason = "too many failed requests from this address for this host", "config refused");
        return opaque_failure();
    }
    match config_data(&state, &ns, &name, &nonce, now).await {
        Ok(body) => super::agent::octet_stream(body),
        Err(reason) => {
            inner.limiter.record_failure(peer, &key, now);
            tracing::info!(namespace = %ns, host = %name, %peer, %reason, "config refused");
            opaque_failure()
        }
    }
}

async fn config_data(
    state: &CallbackState,
    ns: &str,
    name: &str,
    nonce: &str,
    now: jiff::Timestamp,
) -> Result<Body, String> {
    let inner = state.inner();
    let host = inner.hosts.get(ns, name).ok_or("no such host")?;
    let attempt = attempt_of(&host).ok_or("the host has no attempt")?;
    let (Some(attempt_id), Some(hash)) = (attempt.id.clone(), attempt.config_nonce_hash.clone())
    else {
        return Err("the attempt has no configuration nonce".into());
    };
    if !matches_hash(nonce, &hash) {
        return Err("the configuration nonce does not match the host's attempt".into());
    }
    if ts(&attempt.expires_at).is_none_or(|e| now >= e) {
        return Err("the attempt expired".into());
    }
    let intent = host
        .spec
        .provisioning
        .as_ref()
        .ok_or("the host has no provisioning intent")?;
    let data = super::agent::bootstrap_data(&inner.client, ns, intent).await?;
    let stamp = Time(now);
    let outcome = records::update(&inner.client, ns, name, &attempt_id, |fresh, rec, _| {
        // The target OS fetches it after the agent reported provisioned, so both states count.
        if !matches!(
            fresh.state(),
            Some(HostState::Deploying | HostState::Provisioned)
        ) {
            return Err("the host is neither Deploying nor Provisioned".to_string());
        }
        if rec.config_consumed_at.is_some() {
            return Err("the configuration URL was already used".to_string());
        }
        rec.config_consumed_at = Some(stamp.clone());
        Ok(())
    })
    .await
    .map_err(|e| format!("cannot record the configuration URL's use: {e}"))?;
    outcome?;
    Ok(Body::from(data))
}
