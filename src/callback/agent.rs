//! The agent's bearer-token endpoints, HTTPS listener only: inspection, bootstrap, provisioned,
//! provision-failed, cleaned (contract §2, §5, §6).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use serde::Deserialize;
use serde_json::json;

use super::boot::{attempt_of, ts};
use super::records::{self, RecordError, Records};
use super::{CallbackState, inspection};
use crate::api::{AttemptMode, HostState, PhysicalHost, ProvisioningIntent};
use crate::tokens::matches_hash;

/// The largest inspection report read (contract §5).
pub const MAX_REPORT_BODY: usize = 1024 * 1024;
/// The largest provisioned / provision-failed / cleaned body read.
pub const MAX_SMALL_BODY: usize = 64 * 1024;
/// The token in bootstrap data replaced by the machine's provider ID.
pub const PROVIDER_ID_TOKEN: &[u8] = b"BESKAR7_PROVIDER_ID";
/// `failureReason` of a provision-failed report: at most this many characters of the agent's text.
pub const MAX_REASON_CHARS: usize = 256;

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(json!({"error": "unauthorized"})),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(json!({"error": "not found"})),
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response()
}

/// Bootstrap data as served: opaque bytes, never cached.
pub(crate) fn octet_stream(body: impl Into<Body>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body.into(),
    )
        .into_response()
}

/// A caller that presented the host's current token.
struct Authed {
    host: Arc<PhysicalHost>,
    attempt_id: String,
    mode: AttemptMode,
}

/// Checks `Authorization: Bearer <token>` against the host's attempt; `Err` is the reason to log
/// (the caller only ever sees [`unauthorized`]).
fn authenticate(
    state: &CallbackState,
    headers: &HeaderMap,
    ns: &str,
    name: &str,
) -> Result<Authed, &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("no Authorization header")?
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII")?;
    let token = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .map(|_| value[7..].trim())
        .ok_or("the Authorization header is not a Bearer token")?;
    let host = state.inner().hosts.get(ns, name).ok_or("no such host")?;
    let attempt = attempt_of(&host).ok_or("the host has no attempt")?;
    let (Some(id), Some(hash)) = (attempt.id.clone(), attempt.token_hash.as_deref()) else {
        return Err("the attempt has no id or token");
    };
    if !matches_hash(token, hash) {
        return Err("the token does not match the host's attempt");
    }
    if ts(&attempt.expires_at).is_none_or(|e| state.now() >= e) {
        return Err("the attempt's token expired");
    }
    let mode = attempt.mode.unwrap_or(AttemptMode::Provision);
    Ok(Authed {
        host,
        attempt_id: id,
        mode,
    })
}

macro_rules! authed {
    ($state:expr, $headers:expr, $ns:expr, $name:expr, $what:literal) => {
        match authenticate(&$state, &$headers, &$ns, &$name) {
            Ok(a) => a,
            Err(reason) => {
                tracing::info!(namespace = %$ns, host = %$name, reason, concat!($what, " refused"));
                return unauthorized();
            }
        }
    };
}

/// Reads a body of at most `limit` bytes; `Err` is the 413 response.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Response> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

fn record_failed(e: RecordError, ns: &str, name: &str, what: &str) -> Response {
    match e {
        // The attempt this token belonged to was replaced while the request ran.
        RecordError::AttemptChanged | RecordError::NoHost => {
            tracing::info!(namespace = %ns, host = %name, reason = %e, "{what} refused");
            unauthorized()
        }
        e => {
            tracing::warn!(namespace = %ns, host = %name, error = %e, "{what}: cannot record");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot record the request now; retry",
            )
        }
    }
}

/// `POST /api/v1/inspection/{ns}/{host}`: the hardware report.
pub async fn inspection(
    State(state): State<CallbackState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let authed = authed!(state, headers, ns, name, "inspection");
    let bytes = match read_body(&headers, body, MAX_REPORT_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let wire = match inspection::parse(&bytes) {
        Ok(w) => w,
        Err(message) => {
            tracing::info!(namespace = %ns, host = %name, %message, "inspection report rejected");
            return error(StatusCode::BAD_REQUEST, message);
        }
    };
    let normalized = inspection::normalize(wire);
    let now = state.now();
    let stamp = Time(now);
    let provisioning = authed.mode == AttemptMode::Provision;
    let outcome = records::update(
        &state.inner().client,
        &ns,
        &name,
        &authed.attempt_id,
        |_, rec: &mut Records, report| {
            let mut r = normalized.report.clone();
            r.received_at = Some(stamp.clone());
            *report = Some(r);
            rec.reported_at.get_or_insert_with(|| stamp.clone());
            // A cleaning boot's report only refreshes the inventory.
            if provisioning && !normalized.errors.is_empty() {
                let reason = format!("inspection: {}", normalized.errors.join("; "));
                rec.fail(&stamp, reason.chars().take(300).collect());
            }
            Ok::<(), ()>(())
        },
    )
    .await;
    match outcome {
        Ok(_) => {
            tracing::info!(namespace = %ns, host = %name, problems = normalized.errors.len(), "inspection report recorded");
            accepted()
        }
        Err(e) => record_failed(e, &ns, &name, "inspection"),
    }
}

/// The Machine's bootstrap data (Secret key `value`, read now, never cached) with every
/// `BESKAR7_PROVIDER_ID` replaced by the machine's provider ID. `Err` says why (no data).
pub(crate) async fn bootstrap_data(
    client: &kube::Client,
    ns: &str,
    intent: &ProvisioningIntent,
) -> Result<Vec<u8>, String> {
    let name = &intent.bootstrap_data_secret_name;
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|e| format!("cannot read the bootstrap data Secret {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("the bootstrap data Secret {ns}/{name} does not exist"))?;
    let value = secret
        .data
        .and_then(|mut d| d.remove("value"))
        .ok_or_else(|| format!("the bootstrap data Secret {ns}/{name} has no key \"value\""))?;
    Ok(replace_all(
        &value.0,
        PROVIDER_ID_TOKEN,
        intent.provider_id.as_bytes(),
    ))
}

/// `data` with every occurrence of `from` replaced by `to` (bytes: the data need not be UTF-8).
pub fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// `GET /api/v1/bootstrap/{ns}/{host}`: only while the host is Deploying, and after the first
/// successful fetch only within the bootstrap window; an opaque 404 otherwise (the agent polls).
pub async fn bootstrap(
    State(state): State<CallbackState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let authed = authed!(state, headers, ns, name, "bootstrap");
    let refuse = |reason: &str| {
        tracing::info!(namespace = %ns, host = %name, reason, "bootstrap not served");
        not_found()
    };
    if authed.mode != AttemptMode::Provision {
        return refuse("the attempt is a cleaning attempt");
    }
    // The reflector may lag a little behind; the agent polls, and the write below re-checks.
    if authed.host.state() != Some(HostState::Deploying) {
        return refuse("the host is not Deploying");
    }
    let Some(intent) = authed.host.spec.provisioning.clone() else {
        return refuse("the host has no provisioning intent");
    };
    let data = match bootstrap_data(&state.inner().client, &ns, &intent).await {
        Ok(d) => d,
        Err(reason) => {
            tracing::warn!(namespace = %ns, host = %name, %reason, "bootstrap not served");
            return not_found();
        }
    };
    let now = state.now();
    let window = state.inner().config.bootstrap_window;
    let stamp = Time(now);
    let outcome = records::update(
        &state.inner().client,
        &ns,
        &name,
        &authed.attempt_id,
        |fresh, rec, _| {
            if fresh.state() != Some(HostState::Deploying) {
                return Err("the host is not Deploying");
            }
            match ts(&rec.bootstrap_fetched_at) {
                None => {
                    rec.bootstrap_fetched_at = Some(stamp.clone());
                    Ok(())
                }
                Some(first) if now.duration_since(first).unsigned_abs() <= window => Ok(()),
                Some(_) => Err("the bootstrap window after the first fetch is over"),
            }
        },
    )
    .await;
    match outcome {
        Ok(Ok(())) => {
            tracing::info!(namespace = %ns, host = %name, bytes = data.len(), "bootstrap data served");
            octet_stream(data)
        }
        Ok(Err(reason)) => refuse(reason),
        Err(e) => record_failed(e, &ns, &name, "bootstrap"),
    }
}

/// Records one of the agent's outcomes on the current attempt and answers 202.
async fn record_outcome(
    state: &CallbackState,
    ns: &str,
    name: &str,
    attempt_id: &str,
    what: &'static str,
    set: impl Fn(&mut records::Records, &Time),
) -> Response {
    let stamp = Time(state.now());
    let outcome = records::update(&state.inner().client, ns, name, attempt_id, |_, rec, _| {
        set(rec, &stamp);
        Ok::<(), ()>(())
    })
    .await;
    match outcome {
        Ok(_) => {
            tracing::info!(namespace = %ns, host = %name, "{what} recorded");
            accepted()
        }
        Err(e) => record_failed(e, ns, name, what),
    }
}

/// `POST /api/v1/provisioned/{ns}/{host}`: the agent handed over (the body is advisory).
pub async fn provisioned(
    State(state): State<CallbackState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let authed = authed!(state, headers, ns, name, "provisioned");
    if let Err(r) = read_body(&headers, body, MAX_SMALL_BODY).await {
        return r;
    }
    if authed.mode != AttemptMode::Provision {
        return error(
            StatusCode::CONFLICT,
            "this attempt is a cleaning attempt; report cleaned instead",
        );
    }
    record_outcome(
        &state,
        &ns,
        &name,
        &authed.attempt_id,
        "provisioned",
        |rec, at| {
            rec.provisioned_at.get_or_insert_with(|| at.clone());
        },
    )
    .await
}

#[derive(Deserialize)]
struct FailedBody {
    #[serde(default)]
    reason: Option<String>,
}

/// The agent's reason as stored: control characters removed, at most [`MAX_REASON_CHARS`]
/// characters, prefixed with its origin.
pub fn stored_reason(reason: &str) -> String {
    let cleaned: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        "agent: provision failed (no reason given)".into()
    } else {
        format!("agent: {cleaned}")
    }
}

/// `POST /api/v1/provision-failed/{ns}/{host}`: `{"reason": "..."}`.
pub async fn provision_failed(
    State(state): State<CallbackState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let authed = authed!(state, headers, ns, name, "provision-failed");
    let bytes = match read_body(&headers, body, MAX_SMALL_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let parsed: FailedBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"reason\": \"...\"}}: {e}"),
            );
        }
    };
    let reason = stored_reason(parsed.reason.as_deref().unwrap_or_default());
    record_outcome(
        &state,
        &ns,
        &name,
        &authed.attempt_id,
        "provision-failed",
        |rec, at| {
            rec.fail(at, reason.clone());
        },
    )
    .await
}

/// `POST /api/v1/cleaned/{ns}/{host}`: cleaning finished.
pub async fn cleaned(
    State(state): State<CallbackState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let authed = authed!(state, headers, ns, name, "cleaned");
    if let Err(r) = read_body(&headers, body, MAX_SMALL_BODY).await {
        return r;
    }
    if authed.mode != AttemptMode::Clean {
        return error(
            StatusCode::CONFLICT,
            "this attempt is a provisioning attempt, not a cleaning attempt",
        );
    }
    record_outcome(
        &state,
        &ns,
        &name,
        &authed.attempt_id,
        "cleaned",
        |rec, at| {
            rec.cleaned_at.get_or_insert_with(|| at.clone());
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_id_is_substituted_everywhere_bytewise() {
        let data = b"a: BESKAR7_PROVIDER_ID\n\xff b: BESKAR7_PROVIDER_IDBESKAR7_PROVIDER_ID";
        assert_eq!(
            replace_all(data, PROVIDER_ID_TOKEN, b"b7://ns/h/m"),
            b"a: b7://ns/h/m\n\xff b: b7://ns/h/mb7://ns/h/m".to_vec()
        );
    }

    #[test]
    fn reasons_are_cleaned_bounded_and_prefixed() {
        assert_eq!(stored_reason("disk\n full\x1b[31m"), "agent: disk full[31m");
        assert_eq!(stored_reason(&"x".repeat(1000)).len(), 7 + 256);
        assert_eq!(
            stored_reason(" \n"),
            "agent: provision failed (no reason given)"
        );
    }
}
