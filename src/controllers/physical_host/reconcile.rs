//! The host state machine (this issue's part of it):
//!
//! ```text
//! (new) → Enrolling → Available ⇄ InUse (consumerRef set / cleared)
//!                         ↑          │ cleared
//!                         └── Deprovisioning (power off, clear override)
//! any BMC or credentials failure → Error → (fixed) → re-enrolled
//! Deprovisioning past --deprovision-timeout → Error (DeprovisionTimedOut, power state unknown)
//!   → retried until the BMC answers and the host is off → Available
//! ```
//!
//! Each reconcile: read the Secrets (GET), hold the BMC's operation lock, run at most one
//! operation per step, then apply the owned status when it changed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use super::bmc::BmcConn;
use super::conditions::{self, DEPROVISION_TIMED_OUT, Failure, READY, state_name};
use super::{Error, credentials, deprovision, enroll, status};
use crate::api::physical_host::{HostState, PhysicalHost, PhysicalHostStatus, PowerState};
use crate::controllers::Context;
use crate::redfish::Bmc;

/// The controller's name in metrics.
pub const CONTROLLER: &str = "physicalhost";

/// What one step decided: the next state, the failure (if any), the fields it learned.
struct Outcome {
    state: HostState,
    failure: Option<Failure>,
    /// Set by a successful enrollment.
    inventory: Option<(crate::api::physical_host::HardwareDetails, Vec<String>)>,
    power: Option<PowerState>,
    /// When to look again.
    requeue: Duration,
}

impl Outcome {
    /// Success: look again at the next resync.
    fn ok(ctx: &Context, state: HostState) -> Self {
        Self {
            state,
            failure: None,
            inventory: None,
            power: None,
            requeue: ctx.settings.resync_interval,
        }
    }

    /// A failure: retry after the host's next backoff step.
    fn failed(ctx: &Context, key: &str, state: HostState, failure: Failure) -> Self {
        Self {
            state,
            failure: Some(failure),
            inventory: None,
            power: None,
            requeue: ctx.backoff(key),
        }
    }
}

pub fn object_key(host: &PhysicalHost) -> String {
    format!(
        "{}/{}",
        host.namespace().unwrap_or_default(),
        host.name_any()
    )
}

/// Whether the Error state came from a deprovision that ran out of time.
fn deprovision_timed_out(prev: &PhysicalHostStatus) -> bool {
    prev.conditions
        .iter()
        .any(|c| c.type_ == READY && c.reason == DEPROVISION_TIMED_OUT)
}

/// The `Event::Apply` half of the finalizer: one step of the state machine.
pub async fn apply(host: Arc<PhysicalHost>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = host.namespace().unwrap_or_default();
    let hosts: Api<PhysicalHost> = Api::namespaced(ctx.client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let key = object_key(&host);
    let prev = status::owned(host.status.as_ref());
    let state = prev.state.unwrap_or(HostState::Enrolling);

    let outcome = step(&host, &ctx, &secrets, &prev, state).await?;

    match &outcome.failure {
        Some(f) => ctx.metrics.reconcile_error(CONTROLLER, f.reason),
        None => ctx.reset_backoff(&key),
    }
    let desired = next_status(&host, &prev, &outcome);
    let wrote = status::apply(&hosts, &host, &desired)
        .await
        .map_err(Error::Kube)?;
    if wrote {
        publish_events(&ctx, &host, &prev, &desired, outcome.failure.as_ref()).await;
    }
    Ok(Action::requeue(outcome.requeue))
}

/// Reads the Secrets, opens the BMC connection and runs the state's step.
async fn step(
    host: &PhysicalHost,
    ctx: &Context,
    secrets: &Api<Secret>,
    prev: &PhysicalHostStatus,
    state: HostState,
) -> Result<Outcome, Error> {
    let key = object_key(host);
    let claimed = host.is_claimed();
    let fail = |state, f| Outcome::failed(ctx, &key, state, f);
    let ok = |state| Outcome::ok(ctx, state);

    // An Available host that gets claimed needs no BMC call.
    if state == HostState::Available && claimed {
        return Ok(ok(HostState::InUse));
    }
    // A released host: record Deprovisioning first (its start time bounds the deprovision),
    // the write wakes the next step at once.
    if matches!(
        state,
        HostState::InUse | HostState::Inspecting | HostState::Deploying | HostState::Provisioned
    ) && !claimed
    {
        // The status write's watch event runs the next step at once.
        return Ok(ok(HostState::Deprovisioning));
    }

    // A deprovision is bounded from the moment it started, whatever fails meanwhile.
    let deprovisioning = state == HostState::Deprovisioning;
    if deprovisioning && deprovision_left(ctx, prev).is_zero() {
        let cause = prev.error_message.clone().unwrap_or_default();
        return Ok(fail(HostState::Error, timed_out(ctx, &cause)));
    }
    let bounded = |mut o: Outcome| {
        if deprovisioning {
            o.requeue = o.requeue.min(deprovision_left(ctx, prev));
        }
        o
    };
    let mut loaded = match credentials::load(secrets, host)
        .await
        .map_err(Error::Kube)?
    {
        Ok(s) => s,
        Err(f) => return Ok(bounded(fail(failed_state(state), f))),
    };
    credentials::ensure_owned(secrets, host, &mut loaded.secrets)
        .await
        .map_err(Error::Kube)?;
    // An idle host whose BMC answered recently for the same spec and Secrets needs no BMC
    // call: this reconcile follows our own status write or a Secret event that changed
    // nothing the BMC sees. The resync timer still checks it every interval.
    let fingerprint = format!(
        "{}|{}",
        host.metadata.generation.unwrap_or_default(),
        ctx.secrets_digest(&loaded.secrets)
    );
    let idle = matches!(state, HostState::Available | HostState::InUse);
    if idle
        && let Some(ago) = ctx.checked_ago(&key, &fingerprint)
        && ago < ctx.settings.resync_interval
    {
        let mut o = ok(state);
        o.requeue = ctx.settings.resync_interval - ago;
        return Ok(o);
    }
    let conn = match BmcConn::open(ctx, host, loaded) {
        Ok(c) => c,
        Err(f) => return Ok(bounded(fail(failed_state(state), f))),
    };
    let outcome = bmc_step(host, ctx, &conn, prev, state).await;
    if outcome.failure.is_none() {
        ctx.mark_checked(&key, fingerprint);
    } else {
        ctx.forget_checked(&key);
    }
    Ok(outcome)
}

/// The state's BMC operation, holding the BMC's lock.
async fn bmc_step(
    host: &PhysicalHost,
    ctx: &Context,
    conn: &BmcConn<'_>,
    prev: &PhysicalHostStatus,
    state: HostState,
) -> Outcome {
    let key = object_key(host);
    let claimed = host.is_claimed();
    let fail = |state, f| Outcome::failed(ctx, &key, state, f);
    let ok = |state| Outcome::ok(ctx, state);
    let lock = ctx.bmc_lock(&host.spec.redfish_connection.address);
    let _one_operation_per_bmc = lock.lock().await;

    match state {
        HostState::Deprovisioning => {
            match deprovision::power_off_and_clear(conn, deprovision_left(ctx, prev)).await {
                Ok(power) => {
                    let mut o = ok(HostState::Available);
                    o.power = Some(enroll::power_state(&power));
                    // Claimed again meanwhile: the status write's event runs Available → InUse.
                    o
                }
                Err(f) => {
                    let left = deprovision_left(ctx, prev);
                    if left.is_zero() {
                        return fail(HostState::Error, timed_out(ctx, &f.message));
                    }
                    let mut o = fail(HostState::Deprovisioning, f);
                    o.requeue = o.requeue.min(left);
                    o
                }
            }
        }
        // Not offered again until the BMC answers and the host is known to be off.
        HostState::Error if deprovision_timed_out(prev) => {
            match deprovision::power_off_and_clear(conn, ctx.settings.deprovision_timeout).await {
                Ok(power) => {
                    let mut o = ok(HostState::Available);
                    o.power = Some(enroll::power_state(&power));
                    o
                }
                Err(f) => fail(HostState::Error, timed_out(ctx, &f.message)),
            }
        }
        HostState::Enrolling | HostState::Error => {
            match conn.run("inventory", conn.client.inventory()).await {
                Ok(inv) => {
                    let mut o = ok(if claimed {
                        HostState::InUse
                    } else {
                        HostState::Available
                    });
                    o.power = Some(enroll::power_state(&inv.snapshot.power));
                    o.inventory =
                        Some((enroll::hardware_details(&inv), enroll::mac_addresses(&inv)));
                    o
                }
                Err(e) => fail(HostState::Error, Failure::from(&e)),
            }
        }
        // Idle (Available, or claimed and in use): one cheap drift check.
        _ => match conn.run("check", conn.client.check()).await {
            Ok(snapshot) => {
                let mut o = ok(state);
                o.power = Some(enroll::power_state(&snapshot.power));
                o
            }
            Err(e) => fail(failed_state(state), Failure::from(&e)),
        },
    }
}

/// What is left of the deprovision timeout, counted from when the host became Deprovisioning.
fn deprovision_left(ctx: &Context, prev: &PhysicalHostStatus) -> Duration {
    let Some(started) = prev.last_state_change.as_ref().map(|t| t.0) else {
        return ctx.settings.deprovision_timeout;
    };
    let elapsed = k8s_openapi::jiff::Timestamp::now()
        .duration_since(started)
        .unsigned_abs();
    ctx.settings.deprovision_timeout.saturating_sub(elapsed)
}

/// Where a credentials or BMC problem leaves the host: a deprovision keeps running (its timeout
/// decides); a claimed host in use stays InUse, its conditions and errorMessage saying what
/// failed (a BMC blip must not take a server away from its machine, as Metal3 keeps a
/// provisioned host provisioned while its BMC is in error); everything else is Error.
fn failed_state(state: HostState) -> HostState {
    match state {
        HostState::Deprovisioning => HostState::Deprovisioning,
        HostState::InUse => HostState::InUse,
        _ => HostState::Error,
    }
}

fn timed_out(ctx: &Context, cause: &str) -> Failure {
    let mut message = format!(
        "power state unknown: the host was not powered off within the deprovision timeout ({}s)",
        ctx.settings.deprovision_timeout.as_secs()
    );
    if !cause.is_empty() {
        message.push_str(": ");
        message.push_str(cause);
    }
    Failure {
        reason: DEPROVISION_TIMED_OUT,
        message,
        retryable: true,
    }
}

/// The complete owned status after `outcome`.
fn next_status(
    host: &PhysicalHost,
    prev: &PhysicalHostStatus,
    outcome: &Outcome,
) -> PhysicalHostStatus {
    let now = status::now();
    let mut next = prev.clone();
    if next.state != Some(outcome.state) {
        next.last_state_change = Some(now.clone());
    }
    next.state = Some(outcome.state);
    next.error_message = outcome
        .failure
        .as_ref()
        .map(|f| conditions::truncate(&f.message, 1024));
    if let Some((details, macs)) = &outcome.inventory {
        let first = next.hardware_details.is_none() || prev.state != Some(outcome.state);
        next.hardware_details = Some(details.clone());
        next.mac_addresses = macs.clone();
        if first || next.enrolled_at.is_none() {
            next.enrolled_at = Some(now.clone());
        }
    }
    if let Some(p) = outcome.power {
        next.observed_power_state = Some(p);
    } else if outcome.state == HostState::Error
        && outcome
            .failure
            .as_ref()
            .is_some_and(|f| f.reason == DEPROVISION_TIMED_OUT)
    {
        next.observed_power_state = Some(PowerState::Unknown);
    }
    next.observed_generation = host.meta().generation;
    let enrolled = next.hardware_details.is_some();
    next.conditions = conditions::desired(
        outcome.state,
        outcome.failure.as_ref(),
        enrolled,
        &prev.conditions,
        next.observed_generation,
        &now,
    );
    next
}

/// Events for what changed: a new state, or a new failure reason. Reasons and messages only
/// (they never carry secrets); a failed publish is logged, never fatal.
async fn publish_events(
    ctx: &Context,
    host: &PhysicalHost,
    prev: &PhysicalHostStatus,
    next: &PhysicalHostStatus,
    failure: Option<&Failure>,
) {
    let prev_reason = prev
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| c.reason.as_str());
    let event = match failure {
        Some(f) if prev_reason != Some(f.reason) => Some(Event {
            type_: EventType::Warning,
            reason: f.reason.to_owned(),
            note: Some(conditions::truncate(&f.message, 1000)),
            action: "Reconcile".into(),
            secondary: None,
        }),
        None if prev.state != next.state => {
            let state = next.state.map(state_name).unwrap_or("Enrolling");
            let reason = match (prev.state, next.state) {
                (Some(HostState::Deprovisioning), Some(HostState::Available)) => "Deprovisioned",
                (Some(HostState::Error), Some(HostState::Available | HostState::InUse)) => {
                    "Recovered"
                }
                (_, Some(HostState::Available)) if prev.hardware_details.is_none() => "Enrolled",
                _ => state,
            };
            Some(Event {
                type_: EventType::Normal,
                reason: reason.to_owned(),
                note: Some(format!("host is {state}")),
                action: "Reconcile".into(),
                secondary: None,
            })
        }
        _ => None,
    };
    if let Some(ev) = event
        && let Err(e) = ctx.recorder.publish(&ev, &host.object_ref(&())).await
    {
        tracing::warn!(error = %e, "could not publish an event");
    }
}

/// The `Event::Cleanup` half: a host being deleted. A host that may be powered on for a
/// consumer is powered off and its override cleared, bounded by the deprovision timeout; a dead
/// BMC or a missing Secret never blocks the deletion (a Warning event says the power state is
/// unknown).
pub async fn cleanup(host: Arc<PhysicalHost>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(&host);
    ctx.reset_backoff(&key);
    ctx.forget_checked(&key);
    let state = host.state();
    let active = host.is_claimed()
        || matches!(
            state,
            Some(
                HostState::InUse
                    | HostState::Inspecting
                    | HostState::Deploying
                    | HostState::Provisioned
                    | HostState::Deprovisioning
            )
        )
        || status::owned(host.status.as_ref()).state == Some(HostState::Error)
            && deprovision_timed_out(&status::owned(host.status.as_ref()));
    if !active {
        if let Some(uid) = host.uid() {
            ctx.forget_discoveries(&format!("{uid}|"));
        }
        return Ok(Action::await_change());
    }
    let ns = host.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let result = async {
        let loaded = match credentials::load(&secrets, &host).await {
            Ok(Ok(s)) => s,
            Ok(Err(f)) => return Err(f),
            Err(e) => {
                return Err(Failure::new(
                    "APIError",
                    format!("reading the credentials: {e}"),
                ));
            }
        };
        let conn = BmcConn::open(&ctx, &host, loaded)?;
        let lock = ctx.bmc_lock(&host.spec.redfish_connection.address);
        let _guard = lock.lock().await;
        deprovision::power_off_and_clear(&conn, ctx.settings.deprovision_timeout).await
    }
    .await;
    let event = match result {
        Ok(_) => Event {
            type_: EventType::Normal,
            reason: "PoweredOff".into(),
            note: Some("host deleted: powered off and boot override cleared".into()),
            action: "Delete".into(),
            secondary: None,
        },
        Err(f) => {
            tracing::warn!(reason = f.reason, error = %f.message, "deleting the host without powering it off");
            Event {
                type_: EventType::Warning,
                reason: "PowerStateUnknown".into(),
                note: Some(conditions::truncate(
                    &format!("host deleted; power state unknown: {}", f.message),
                    1000,
                )),
                action: "Delete".into(),
                secondary: None,
            }
        }
    };
    if let Err(e) = ctx.recorder.publish(&event, &host.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish an event");
    }
    if let Some(uid) = host.uid() {
        ctx.forget_discoveries(&format!("{uid}|"));
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::physical_host::PhysicalHostSpec;

    fn host() -> PhysicalHost {
        let mut h = PhysicalHost::new(
            "h1",
            serde_json::from_value::<PhysicalHostSpec>(serde_json::json!({
                "redfishConnection": {"address": "http://127.0.0.1:1", "credentialsSecretRef": "c"}
            }))
            .unwrap(),
        );
        h.metadata.generation = Some(2);
        h
    }

    fn outcome(state: HostState, failure: Option<Failure>, power: Option<PowerState>) -> Outcome {
        Outcome {
            state,
            failure,
            inventory: None,
            power,
            requeue: Duration::ZERO,
        }
    }

    #[test]
    fn a_settled_host_computes_the_status_it_has() {
        let h = host();
        let first = next_status(
            &h,
            &PhysicalHostStatus::default(),
            &outcome(HostState::Available, None, Some(PowerState::Off)),
        );
        let again = next_status(
            &h,
            &first,
            &outcome(HostState::Available, None, Some(PowerState::Off)),
        );
        assert_eq!(first, again);
        let drifted = next_status(
            &h,
            &first,
            &outcome(HostState::Available, None, Some(PowerState::On)),
        );
        assert_ne!(first, drifted);
        assert_eq!(drifted.last_state_change, first.last_state_change);
    }

    #[test]
    fn a_deprovision_timeout_leaves_the_power_state_unknown() {
        let h = host();
        let s = crate::controllers::Settings::default();
        let f = Failure {
            reason: DEPROVISION_TIMED_OUT,
            message: format!("power state unknown ({}s)", s.deprovision_timeout.as_secs()),
            retryable: true,
        };
        let prev = next_status(
            &h,
            &PhysicalHostStatus::default(),
            &outcome(HostState::Deprovisioning, None, Some(PowerState::On)),
        );
        let next = next_status(&h, &prev, &outcome(HostState::Error, Some(f), None));
        assert_eq!(next.observed_power_state, Some(PowerState::Unknown));
        assert!(deprovision_timed_out(&next));
        assert!(
            next.error_message
                .unwrap()
                .starts_with("power state unknown")
        );
    }
}
