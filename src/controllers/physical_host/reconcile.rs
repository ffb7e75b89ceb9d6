//! The host state machine:
//!
//! ```text
//! (new) → Enrolling → Available ⇄ InUse (consumerRef set / cleared)
//! InUse + spec.provisioning → Inspecting → Deploying → Provisioned   (attempt.rs)
//!   a failed attempt → InUse, status.lastFailure (the machine retries or releases)
//! released → Deprovisioning (cleaning.rs when needed; power off, clear override) → Available
//!   a failed cleaning → Error + CleaningFailed, out of the pool until a person acts
//! any BMC or credentials failure of a free host → Error → (fixed) → re-enrolled
//! Deprovisioning past --deprovision-timeout → Error (DeprovisionTimedOut, power state unknown)
//!   → retried until the BMC answers and the host is off → Available
//! ```
//!
//! Each reconcile: decide the attempt step from the host as read (pure, see [`attempt::plan_claimed`]
//! and [`cleaning::plan_cleaning`]); otherwise read the Secrets, hold the BMC's operation lock,
//! run at most one operation per step, then apply the owned status when it changed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::attempt::{self, Plan};
use super::bmc::BmcConn;
use super::conditions::{self, DEPROVISION_TIMED_OUT, Failure, READY, state_name};
use super::{Error, cleaning, credentials, deprovision, enroll, slots, status};
use crate::api::physical_host::{
    Attempt, AttemptFailure, AttemptMode, HostState, PhysicalHost, PhysicalHostStatus, PowerState,
};
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
    /// The attempt's new controller part (the callback's records are never written here).
    attempt: Option<Attempt>,
    /// A failed attempt to record in `status.lastFailure` (it stays until the next failure:
    /// it describes the current attempt only while its attemptID is status.attempt.id).
    last_failure: Option<AttemptFailure>,
    /// When the host was handed over to its target OS.
    provisioned_at: Option<Time>,
    /// Why no attempt can start now (a condition reason and message).
    waiting: Option<(&'static str, String)>,
    /// Write nothing: the cache lags behind the API server; the watch brings the fresh host.
    skip_write: bool,
}

impl Outcome {
    /// Success: look again at the next resync.
    fn ok(ctx: &Context, state: HostState) -> Self {
        Self::new(state, ctx.settings.resync_interval)
    }

    fn new(state: HostState, requeue: Duration) -> Self {
        Self {
            state,
            failure: None,
            inventory: None,
            power: None,
            requeue,
            attempt: None,
            last_failure: None,
            provisioned_at: None,
            waiting: None,
            skip_write: false,
        }
    }

    /// A failure: retry after the host's next backoff step.
    fn failed(ctx: &Context, key: &str, state: HostState, failure: Failure) -> Self {
        let mut o = Self::new(state, ctx.backoff(key));
        o.failure = Some(failure);
        o
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
    if outcome.skip_write {
        return Ok(Action::requeue(outcome.requeue));
    }
    let desired = next_status(&host, &prev, &outcome);
    let wrote = status::apply(&hosts, &host, &desired)
        .await
        .map_err(Error::Kube)?;
    // The attempt's outcome is written: its slot is free for a waiting host.
    if !slots::is_booting(&desired) {
        ctx.provisions.release(&key);
    }
    if wrote {
        publish_events(&ctx, &host, &prev, &desired, outcome.failure.as_ref()).await;
        if let Some(f) = &outcome.last_failure {
            publish_attempt_failure(&ctx, &host, f).await;
        }
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

    // Attempts: starting, booting, following the callback's records, timeouts, cleaning.
    if let Some(s) = host.status.as_ref()
        && slots::is_booting(s)
    {
        ctx.provisions.hold(&key);
    }
    let now = status::now();
    let host_ref = ObjectRef::from_obj(host);
    let slot = || ctx.provisions.try_acquire(&key, host_ref.clone());
    let mint = |mode, image| mint_attempt(ctx, host, mode, image, &now);
    let plan = match state {
        HostState::InUse
        | HostState::Inspecting
        | HostState::Deploying
        | HostState::Provisioned
            if claimed =>
        {
            attempt::plan_claimed(host, &ctx.settings, state, &now, slot, mint)
        }
        HostState::Deprovisioning => cleaning::plan_cleaning(host, &ctx.settings, &now, slot, mint),
        HostState::Error => cleaning::plan_cleaning_failed(host).unwrap_or(Plan::Idle),
        _ => Plan::Idle,
    };
    if plan != Plan::Idle {
        return run_plan(host, ctx, secrets, state, plan, &now).await;
    }

    // A deprovision is bounded from the moment it started, whatever fails meanwhile.
    let deprovisioning = state == HostState::Deprovisioning;
    if deprovisioning && deprovision_left(ctx, host, prev).is_zero() {
        let cause = prev.error_message.clone().unwrap_or_default();
        return Ok(fail(HostState::Error, timed_out(ctx, &cause)));
    }
    let bounded = |mut o: Outcome| {
        if deprovisioning {
            o.requeue = o.requeue.min(deprovision_left(ctx, host, prev));
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
    let idle = matches!(
        state,
        HostState::Available | HostState::InUse | HostState::Provisioned
    );
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
            match deprovision::power_off_and_clear(conn, deprovision_left(ctx, host, prev)).await {
                Ok(power) => {
                    let mut o = ok(HostState::Available);
                    o.power = Some(enroll::power_state(&power));
                    // Claimed again meanwhile: the status write's event runs Available → InUse.
                    o
                }
                Err(f) => {
                    let left = deprovision_left(ctx, host, prev);
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

/// Mints a new attempt (only hashes of its secrets) for `host`.
fn mint_attempt(
    ctx: &Context,
    host: &PhysicalHost,
    mode: AttemptMode,
    image: Option<String>,
    now: &Time,
) -> Result<Attempt, String> {
    let uid = host.uid().ok_or("the host has no metadata.uid")?;
    let kexec = mode == AttemptMode::Provision
        && host
            .spec
            .provisioning
            .as_ref()
            .is_some_and(|p| p.handoff == crate::api::beskar7_machine::Handoff::Kexec);
    let s = &ctx.settings;
    // The token outlives the attempt's own timeouts (the agent's last call must authenticate);
    // the nonce lives the contract's ~10 minutes.
    let token = match mode {
        AttemptMode::Provision => s.inspection_timeout + s.deployment_timeout,
        AttemptMode::Clean => s.deprovision_timeout,
    } + Duration::from_secs(300);
    let lifetimes = crate::tokens::AttemptLifetimes {
        nonce: Duration::from_secs(600),
        token,
    };
    let mut a = crate::tokens::mint_attempt(&ctx.token_key, &uid, mode, kexec, now.0, lifetimes)
        .map_err(|e| e.to_string())?;
    a.agent_image_url = image;
    Ok(a)
}

/// Reads the host from the API server (not the cache) before a step that must not run twice
/// (starting an attempt, booting, ending one): the cache may not show this controller's last
/// write yet.
async fn fresh(ctx: &Context, host: &PhysicalHost) -> Result<Option<PhysicalHost>, Error> {
    let api: Api<PhysicalHost> =
        Api::namespaced(ctx.client.clone(), &host.namespace().unwrap_or_default());
    api.get_opt(&host.name_any()).await.map_err(Error::Kube)
}

/// Whether the host as the API server has it still needs the step planned from the cache.
fn same_attempt(cached: &PhysicalHost, fresh: &PhysicalHost) -> bool {
    let part = |h: &PhysicalHost| {
        let s = h.status.as_ref();
        (
            s.and_then(|s| s.state),
            s.and_then(|s| s.attempt.as_ref())
                .map(Attempt::controller_part),
            s.and_then(|s| s.last_failure.clone()),
            attempt::attempt_of(h).map(crate::callback::records::Records::of),
        )
    };
    part(cached) == part(fresh)
}

/// Opens the BMC connection (Secrets read now); `Ok(Err)` is a credentials or config problem.
async fn open_bmc<'a>(
    ctx: &'a Context,
    host: &PhysicalHost,
    secrets: &Api<Secret>,
) -> Result<Result<BmcConn<'a>, Failure>, Error> {
    let mut loaded = match credentials::load(secrets, host)
        .await
        .map_err(Error::Kube)?
    {
        Ok(s) => s,
        Err(f) => return Ok(Err(f)),
    };
    credentials::ensure_owned(secrets, host, &mut loaded.secrets)
        .await
        .map_err(Error::Kube)?;
    Ok(BmcConn::open(ctx, host, loaded))
}

fn boot_mode(host: &PhysicalHost) -> Option<crate::redfish::BootMode> {
    use crate::api::beskar7_machine::BootMode as Api;
    let mode = match attempt::attempt_of(host).and_then(|a| a.mode) {
        Some(AttemptMode::Provision) => host.spec.provisioning.as_ref()?.boot_mode?,
        // Cleaning boots the way the server booted before.
        _ => return None,
    };
    Some(match mode {
        Api::Uefi => crate::redfish::BootMode::Uefi,
        Api::Legacy => crate::redfish::BootMode::Legacy,
    })
}

/// Carries out an attempt step.
async fn run_plan(
    host: &PhysicalHost,
    ctx: &Context,
    secrets: &Api<Secret>,
    state: HostState,
    plan: Plan,
    now: &Time,
) -> Result<Outcome, Error> {
    let resync = ctx.settings.resync_interval;
    let skip = || {
        let mut o = Outcome::new(state, Duration::from_secs(1));
        o.skip_write = true;
        o
    };
    let current = || {
        attempt::attempt_of(host)
            .map(Attempt::controller_part)
            .unwrap_or_default()
    };
    match plan {
        Plan::Idle => Ok(Outcome::ok(ctx, state)),
        Plan::Wait {
            state,
            reason,
            message,
        } => {
            // A freed slot wakes the host; the timer is only a safety net.
            let requeue = if reason == attempt::WAITING_FOR_SLOT {
                Duration::from_secs(30)
            } else {
                resync
            };
            let mut o = Outcome::new(state, requeue);
            o.waiting = Some((reason, message));
            Ok(o)
        }
        Plan::Start {
            state: next,
            attempt,
        } => {
            match fresh(ctx, host).await? {
                Some(f) if same_attempt(host, &f) => {}
                _ => return Ok(skip()),
            }
            tracing::info!(mode = ?attempt.mode, "starting an attempt");
            // The write's watch event runs the boot step at once.
            let mut o = Outcome::new(next, Duration::from_secs(10));
            o.attempt = Some(*attempt);
            Ok(o)
        }
        Plan::Progress {
            state: next,
            deploying_at,
            next_deadline,
        } => {
            // Timestamps have second precision: look again just after the deadline.
            let mut o = Outcome::new(next, next_deadline.min(resync) + Duration::from_secs(1));
            if let Some(at) = deploying_at {
                let mut a = current();
                a.deploying_at = Some(at);
                o.attempt = Some(a);
            }
            Ok(o)
        }
        Plan::CleaningFailedHold(f) => {
            let reason = if f.reason == attempt::CLEANING_TIMED_OUT {
                attempt::CLEANING_TIMED_OUT
            } else {
                attempt::CLEANING_FAILED
            };
            let mut o = Outcome::new(HostState::Error, resync);
            o.failure = Some(Failure::new(
                reason,
                format!(
                    "cleaning failed: {}; the host stays out of the pool until annotated {}={} or spec.automatedCleaningMode is disabled",
                    f.message.as_deref().unwrap_or_default(),
                    cleaning::RETRY_CLEANING_ANNOTATION,
                    f.attempt_id.as_deref().unwrap_or_default()
                ),
            ));
            Ok(o)
        }
        Plan::Redeprovision => Ok(Outcome::new(
            HostState::Deprovisioning,
            Duration::from_secs(1),
        )),
        Plan::Boot { attempt_id } => {
            match fresh(ctx, host).await? {
                Some(f) if same_attempt(host, &f) => {}
                _ => return Ok(skip()),
            }
            let a = current();
            let mode = a.mode.unwrap_or(AttemptMode::Provision);
            let conn = match open_bmc(ctx, host, secrets).await? {
                Ok(c) => c,
                Err(f) => {
                    let af = boot_failure(&a, &f, now);
                    return Ok(fail_attempt(ctx, host, Err(f), af).await);
                }
            };
            let booted = {
                let lock = ctx.bmc_lock(&host.spec.redfish_connection.address);
                let _one_operation_per_bmc = lock.lock().await;
                conn.run(
                    "pxe_boot",
                    conn.client
                        .pxe_boot(boot_mode(host), Some(Duration::from_secs(120))),
                )
                .await
            };
            match booted {
                Ok((_, power)) => {
                    tracing::info!(attempt = %attempt_id, ?mode, "one-time PXE set and the server powered on");
                    let deadline = match mode {
                        AttemptMode::Provision => ctx.settings.inspection_timeout,
                        AttemptMode::Clean => ctx.settings.deprovision_timeout,
                    };
                    let mut o = Outcome::new(state, deadline.min(resync) + Duration::from_secs(1));
                    let mut next = a;
                    next.booted_at = Some(now.clone());
                    o.attempt = Some(next);
                    o.power = Some(enroll::power_state(&power.state));
                    Ok(o)
                }
                Err(e) => {
                    let f = Failure::from(&e);
                    let af = boot_failure(&a, &f, now);
                    Ok(fail_attempt(ctx, host, Ok(&conn), af).await)
                }
            }
        }
        Plan::Provisioned => {
            match fresh(ctx, host).await? {
                Some(f) if same_attempt(host, &f) => {}
                _ => return Ok(skip()),
            }
            match open_bmc(ctx, host, secrets).await? {
                Ok(conn) => {
                    let lock = ctx.bmc_lock(&host.spec.redfish_connection.address);
                    let _one_operation_per_bmc = lock.lock().await;
                    // The override was one-time and is normally used up; a failure here does
                    // not take the server from its machine.
                    if let Err(e) = conn
                        .run("clear_boot_override", conn.client.clear_boot_override())
                        .await
                    {
                        tracing::warn!(error = %e, "provisioned, but the boot override could not be cleared");
                    }
                }
                Err(f) => {
                    tracing::warn!(reason = f.reason, error = %f.message, "provisioned, but the BMC could not be reached to clear the boot override");
                }
            }
            let mut o = Outcome::new(HostState::Provisioned, resync);
            o.provisioned_at = Some(
                attempt::attempt_of(host)
                    .and_then(|a| crate::callback::records::Records::of(a).provisioned_at)
                    .unwrap_or_else(|| now.clone()),
            );
            Ok(o)
        }
        Plan::Fail(af) => {
            // Once per failure: a cache that lags behind the failure's own write must not
            // record (and announce) it twice.
            match fresh(ctx, host).await? {
                Some(f) if same_attempt(host, &f) => {}
                _ => return Ok(skip()),
            }
            let conn = open_bmc(ctx, host, secrets).await?;
            Ok(fail_attempt(ctx, host, conn.as_ref().map_err(Clone::clone), af).await)
        }
    }
}

/// The attempt failure of a boot that did not happen: the BMC refused or failed the one-time
/// PXE or the power-on (BootFailed), or could not be used at all (BMCError).
fn boot_failure(a: &Attempt, f: &Failure, now: &Time) -> AttemptFailure {
    let reason = match f.reason {
        conditions::BMC_OPERATION_FAILED | conditions::BMC_UNSUPPORTED => attempt::BOOT_FAILED,
        _ => attempt::BMC_ERROR,
    };
    let reason = match a.mode {
        Some(AttemptMode::Clean) => attempt::CLEANING_FAILED,
        _ => reason,
    };
    AttemptFailure {
        attempt_id: a.id.clone(),
        provider_id: None, // set from the claim when the failure is recorded (fail_attempt)
        mode: a.mode,
        reason: reason.to_owned(),
        message: Some(conditions::truncate(
            &format!("booting the agent failed: {}", f.message),
            1024,
        )),
        at: Some(now.clone()),
    }
}

/// Ends a failed attempt: power off and clear the override (best effort: a dead BMC must not
/// keep the failure unrecorded), then record it. A provisioning attempt leaves the host claimed
/// and InUse for the machine controller to decide; a failed cleaning leaves it in Error, out of
/// the pool.
async fn fail_attempt(
    ctx: &Context,
    host: &PhysicalHost,
    conn: Result<&BmcConn<'_>, Failure>,
    mut af: AttemptFailure,
) -> Outcome {
    // The claim the failed attempt served: the machine controller acts only on a failure of its
    // own claim (a failure left from an earlier claim stays as history).
    af.provider_id = host
        .spec
        .provisioning
        .as_ref()
        .map(|p| p.provider_id.clone());
    let clean = af.mode == Some(AttemptMode::Clean);
    let mut o = Outcome::new(
        if clean {
            HostState::Error
        } else {
            HostState::InUse
        },
        ctx.settings.resync_interval,
    );
    let powered = match conn {
        Ok(conn) => {
            let lock = ctx.bmc_lock(&host.spec.redfish_connection.address);
            let _one_operation_per_bmc = lock.lock().await;
            deprovision::power_off_and_clear(conn, ctx.settings.deprovision_timeout).await
        }
        Err(f) => Err(f),
    };
    match powered {
        Ok(p) => o.power = Some(enroll::power_state(&p)),
        Err(f) => {
            let note = format!(
                "{}; the server could not be powered off: {}",
                af.message.as_deref().unwrap_or_default(),
                f.message
            );
            af.message = Some(conditions::truncate(&note, 1024));
            o.failure = Some(f);
        }
    }
    tracing::info!(reason = %af.reason, mode = ?af.mode, "attempt failed");
    if clean {
        let reason = if af.reason == attempt::CLEANING_TIMED_OUT {
            attempt::CLEANING_TIMED_OUT
        } else {
            attempt::CLEANING_FAILED
        };
        o.failure = Some(Failure::new(reason, af.message.clone().unwrap_or_default()));
    }
    o.last_failure = Some(af);
    o
}

/// What is left of the deprovision timeout, counted from when the host became Deprovisioning
/// or, after a cleaning, from when the agent reported `cleaned` (the cleaning had its own).
fn deprovision_left(ctx: &Context, host: &PhysicalHost, prev: &PhysicalHostStatus) -> Duration {
    let cleaned = attempt::attempt_of(host)
        .filter(|a| a.records_are_current())
        .and_then(|a| a.cleaned_at.as_ref())
        .map(|t| t.0);
    let Some(started) = prev.last_state_change.as_ref().map(|t| t.0).max(cleaned) else {
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
        // An attempt in flight keeps going (its timeouts decide); a provisioned server stays
        // its machine's.
        HostState::InUse
        | HostState::Inspecting
        | HostState::Deploying
        | HostState::Provisioned => state,
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
    if let Some(a) = &outcome.attempt {
        next.attempt = Some(a.controller_part());
    }
    if let Some(f) = &outcome.last_failure {
        next.last_failure = Some(f.clone());
    }
    if let Some(t) = &outcome.provisioned_at {
        next.provisioned_at = Some(t.clone());
    }
    // Back in the pool: the last claim's attempt means nothing any more (lastFailure stays, as
    // history: it names an attempt that is no longer current).
    if outcome.state == HostState::Available {
        next.attempt = None;
    }
    let current_failure = next.last_failure.as_ref().filter(|f| {
        f.attempt_id.is_some() && f.attempt_id == next.attempt.as_ref().and_then(|a| a.id.clone())
    });
    if outcome.failure.is_none()
        && let Some(f) = current_failure
    {
        next.error_message = f.message.clone();
    }
    let enrolled = next.hardware_details.is_some();
    next.conditions = conditions::desired(
        outcome.state,
        outcome.failure.as_ref(),
        enrolled,
        &prev.conditions,
        next.observed_generation,
        &now,
    );
    let no_boot_mac =
        enrolled && attempt::boot_mac(host).is_none() && next.mac_addresses.is_empty();
    next.conditions.extend(conditions::attempt_conditions(
        &conditions::AttemptView {
            state: outcome.state,
            claimed_with_intent: host.is_claimed() && host.spec.provisioning.is_some(),
            last_failure: current_failure,
            attempt: next.attempt.as_ref(),
            waiting: outcome.waiting.as_ref().map(|(r, m)| (*r, m.as_str())),
            no_boot_mac,
        },
        &prev.conditions,
        next.observed_generation,
        &now,
    ));
    next
}

/// A Warning event for a failed attempt (reason and message only: never a secret).
async fn publish_attempt_failure(ctx: &Context, host: &PhysicalHost, f: &AttemptFailure) {
    let ev = Event {
        type_: EventType::Warning,
        reason: f.reason.clone(),
        note: Some(conditions::truncate(
            f.message.as_deref().unwrap_or_default(),
            1000,
        )),
        action: "Provision".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &host.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish an event");
    }
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
    ctx.provisions.forget(&key, &ObjectRef::from_obj(&*host));
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
        let mut o = Outcome::new(state, Duration::ZERO);
        o.failure = failure;
        o.power = power;
        o
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
