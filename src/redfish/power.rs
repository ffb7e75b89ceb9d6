//! Power through `ComputerSystem.Reset`: the target from the resource, allowed values inline or
//! from `@Redfish.ActionInfo`, idempotence, transient refusals, and waiting for the state.

use std::time::Duration;

use serde_json::json;

use super::error::{RedfishError, Result};
use super::model::{ActionInfo, ComputerSystem, PowerAction, PowerOutcome, PowerState};
use super::transport::{Conn, path_of};

/// Every ResetType of the schema, longest first (used to split Supermicro's malformed
/// concatenated values such as `GracefulShutdownGracefulRestart`).
const RESET_TYPES: &[&str] = &[
    "GracefulShutdown",
    "GracefulRestart",
    "PushPowerButton",
    "FullPowerCycle",
    "ForceRestart",
    "PowerCycle",
    "ForceOff",
    "ForceOn",
    "Suspend",
    "Resume",
    "Pause",
    "Nmi",
    "On",
];

/// MessageId suffixes meaning "not now, try again": iLO too soon after a power change or
/// during POST, iDRAC10 `On` right after an off, iDRAC busy.
const TRANSIENT: &[&str] = &[
    "InvalidOperationForSystemState",
    "UnableToModifyDuringSystemPOST",
    "ActionParameterValueConflict",
    "SYS518",
];

/// Splits a value into known reset types if it is a concatenation of them.
fn split_known(v: &str) -> Option<Vec<String>> {
    if v.is_empty() {
        return Some(Vec::new());
    }
    RESET_TYPES.iter().find_map(|t| {
        let rest = v.strip_prefix(t)?;
        let mut tail = split_known(rest)?;
        tail.insert(0, (*t).to_owned());
        Some(tail)
    })
}

pub(crate) fn normalise_allowed(values: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for v in values {
        let parts = if RESET_TYPES.contains(&v.as_str()) {
            vec![v.clone()]
        } else {
            split_known(v).unwrap_or_else(|| vec![v.clone()])
        };
        for p in parts {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The allowed reset types: inline AllowableValues, else the ActionInfo's `ResetType`
/// parameter; `None` when neither is published (then anything is tried, as sushy and gofish).
pub(crate) async fn allowed_reset_types(
    conn: &mut Conn,
    sys: &ComputerSystem,
) -> Option<Vec<String>> {
    let action = sys.actions.as_ref()?.reset.as_ref()?;
    if let Some(values) = &action.allowed {
        return Some(normalise_allowed(values));
    }
    let info = action.action_info.as_deref()?;
    match conn.get::<ActionInfo>(&path_of(info)).await {
        Ok((info, _)) => info
            .parameters
            .iter()
            .find(|p| p.name.as_deref() == Some("ResetType"))
            .and_then(|p| p.allowed.as_deref())
            .map(normalise_allowed),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the reset ActionInfo; trying any reset type");
            None
        }
    }
}

fn reached(action: PowerAction, state: &PowerState) -> bool {
    match action {
        PowerAction::On => state.is_on(),
        PowerAction::Off | PowerAction::GracefulOff => state.is_off(),
        PowerAction::Restart => false,
    }
}

async fn read_system(conn: &mut Conn, path: &str) -> Result<ComputerSystem> {
    Ok(conn.get::<ComputerSystem>(path).await?.0)
}

pub(crate) async fn set_power(
    conn: &mut Conn,
    path: &str,
    action: PowerAction,
    wait: Option<Duration>,
) -> Result<PowerOutcome> {
    let sys = read_system(conn, path).await?;
    let state = PowerState::parse(sys.power_state.as_deref());
    // Idempotence: already there is success, and nothing is sent.
    if reached(action, &state) {
        return Ok(PowerOutcome {
            sent: Vec::new(),
            state,
        });
    }
    // Restart of a host that is off is a plain power-on.
    let action = if action == PowerAction::Restart && state.is_off() {
        PowerAction::On
    } else {
        action
    };
    let target = sys
        .actions
        .as_ref()
        .and_then(|a| a.reset.as_ref())
        .and_then(|r| r.target.as_deref())
        .map(path_of)
        .ok_or_else(|| {
            RedfishError::Unsupported("ComputerSystem.Reset (no action target)".into())
        })?;
    let allowed = allowed_reset_types(conn, &sys).await;
    let ok = |t: &str| allowed.as_ref().is_none_or(|a| a.iter().any(|v| v == t));
    let candidates: &[&str] = match action {
        PowerAction::On => &["On", "ForceOn"],
        PowerAction::Off => &["ForceOff"],
        PowerAction::GracefulOff => &["GracefulShutdown"],
        PowerAction::Restart => &["ForceRestart", "PowerCycle"],
    };
    let mut sent = Vec::new();
    match candidates.iter().find(|t| ok(t)) {
        Some(t) => {
            if let Some(done) = reset(conn, path, &target, t, action, &mut sent).await? {
                return Ok(done);
            }
        }
        None if action == PowerAction::Restart && ok("ForceOff") && (ok("On") || ok("ForceOn")) => {
            // No restart type: off, wait, on.
            let on = if ok("On") { "On" } else { "ForceOn" };
            reset(conn, path, &target, "ForceOff", PowerAction::Off, &mut sent).await?;
            let off_wait = wait.unwrap_or(Duration::from_secs(120));
            wait_for(conn, path, PowerAction::Off, off_wait).await?;
            reset(conn, path, &target, on, PowerAction::On, &mut sent).await?;
        }
        None => {
            return Err(RedfishError::Unsupported(format!(
                "{} (allowed reset types: {})",
                candidates.join(" or "),
                allowed.unwrap_or_default().join(", ")
            )));
        }
    }
    let state = match wait {
        Some(d) if action != PowerAction::Restart => wait_for(conn, path, action, d).await?,
        _ => PowerState::parse(read_system(conn, path).await?.power_state.as_deref()),
    };
    Ok(PowerOutcome { sent, state })
}

/// POSTs one reset, retrying transient refusals. A refusal (400/409) while a fresh GET shows
/// the wanted state is success (iLO answers 400 to `On` when already on).
async fn reset(
    conn: &mut Conn,
    path: &str,
    target: &str,
    reset_type: &str,
    action: PowerAction,
    sent: &mut Vec<String>,
) -> Result<Option<PowerOutcome>> {
    let body = json!({ "ResetType": reset_type });
    let mut attempt = 0;
    loop {
        attempt += 1;
        sent.push(reset_type.to_owned());
        let err = match conn.post_action(target, &body).await {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        if matches!(err.status(), Some(400 | 409 | 500 | 503)) {
            let state = PowerState::parse(read_system(conn, path).await?.power_state.as_deref());
            if reached(action, &state) {
                tracing::debug!(error = %err, "reset refused but the system is already {state}");
                return Ok(Some(PowerOutcome {
                    sent: sent.clone(),
                    state,
                }));
            }
            if err.id_ends_with(TRANSIENT) && attempt <= conn.policy().retries {
                tokio::time::sleep(conn.policy().retry_delay).await;
                continue;
            }
        }
        return Err(err);
    }
}

/// Polls `PowerState` until the action's state is reached.
async fn wait_for(
    conn: &mut Conn,
    path: &str,
    action: PowerAction,
    limit: Duration,
) -> Result<PowerState> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let state = PowerState::parse(read_system(conn, path).await?.power_state.as_deref());
        if reached(action, &state) {
            return Ok(state);
        }
        if tokio::time::Instant::now() >= deadline {
            let wanted = if action == PowerAction::On {
                "On"
            } else {
                "Off"
            };
            return Err(RedfishError::PowerTimeout {
                wanted: wanted.into(),
                last: state.to_string(),
            });
        }
        tokio::time::sleep(conn.policy().power_poll_interval).await;
    }
}
