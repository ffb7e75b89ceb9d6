//! Provisioning attempts of a claimed host: when one starts, what the callback's records mean
//! for it, and how it ends (docs/api.md, "Attempt outcomes").
//!
//! [`plan_claimed`] is a pure decision from the host as read (spec, the controller's status, the
//! callback's records) and the time: it never talks to the BMC or the API server, so every
//! step can be recomputed after an interruption and comes out the same. The reconciler carries
//! out what it returns.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions;
use crate::api::physical_host::{Attempt, AttemptFailure, AttemptMode, HostState, PhysicalHost};
use crate::callback::inspection::shortfalls;
use crate::callback::records::Records;
use crate::controllers::Settings;

/// The annotation the machine controller sets, to the failed attempt's id
/// (`status.lastFailure.attemptID`), to have the host try again with fresh secrets.
pub const RETRY_ANNOTATION: &str = "beskar7.io/retry-attempt";

// Attempt failure reasons (CamelCase: condition reasons, event reasons, metric labels).
pub const REQUIREMENTS_NOT_MET: &str = "RequirementsNotMet";
pub const INSPECTION_TIMED_OUT: &str = "InspectionTimedOut";
pub const INSPECTION_FAILED: &str = "InspectionFailed";
pub const DEPLOYMENT_TIMED_OUT: &str = "DeploymentTimedOut";
pub const PROVISION_FAILED: &str = "ProvisionFailed";
pub const BOOT_FAILED: &str = "BootFailed";
pub const BMC_ERROR: &str = "BMCError";
pub const CLEANING_FAILED: &str = "CleaningFailed";
pub const CLEANING_TIMED_OUT: &str = "CleaningTimedOut";

// Reasons of the Provisioned condition while no attempt runs.
pub const NO_BOOT_MAC: &str = "NoBootMAC";
pub const WAITING_FOR_SLOT: &str = "WaitingForProvisionSlot";

/// What the reconciler does next for the host's attempt.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// No attempt business: the ordinary idle or release path.
    Idle,
    /// Wait: no attempt can start now (Provisioned condition reason and message).
    Wait {
        state: HostState,
        reason: &'static str,
        message: String,
    },
    /// Write a new attempt (controller part) in `state`; the host takes a provisioning slot.
    Start {
        state: HostState,
        attempt: Box<Attempt>,
    },
    /// One-time PXE and power on (reset when on) for the attempt `attempt_id`.
    Boot { attempt_id: String },
    /// The attempt goes on: write `state` (and `deploying_at` when it just reached Deploying),
    /// look again at the deadline.
    Progress {
        state: HostState,
        deploying_at: Option<Time>,
        next_deadline: Duration,
    },
    /// The agent handed over: clear the override, become Provisioned.
    Provisioned,
    /// The attempt failed: power off, clear the override, record the failure.
    Fail(AttemptFailure),
    /// A failed cleaning that nobody cleared yet: stay out of the pool.
    CleaningFailedHold(AttemptFailure),
    /// Leave the CleaningFailed hold: a person asked (annotation, or cleaning disabled).
    Redeprovision,
}

/// The host's full attempt (the controller's fields and the callback's records).
pub fn attempt_of(host: &PhysicalHost) -> Option<&Attempt> {
    host.status.as_ref().and_then(|s| s.attempt.as_ref())
}

pub(super) fn last_failure(host: &PhysicalHost) -> Option<&AttemptFailure> {
    host.status.as_ref().and_then(|s| s.last_failure.as_ref())
}

/// Whether `attempt` is the one `status.lastFailure` names.
pub fn has_failed(host: &PhysicalHost, attempt: &Attempt) -> bool {
    attempt.id.is_some() && last_failure(host).is_some_and(|f| f.attempt_id == attempt.id)
}

/// The MAC the server PXE-boots from: `spec.bootMACAddress`, else one learned from the BMC or
/// an inspection (what the first stage matches on).
pub fn boot_mac(host: &PhysicalHost) -> Option<String> {
    if let Some(m) = &host.spec.boot_mac_address {
        return Some(m.clone());
    }
    let status = host.status.as_ref()?;
    status.mac_addresses.first().cloned().or_else(|| {
        status
            .inspection
            .as_ref()?
            .nics
            .iter()
            .find_map(|n| n.mac_address.clone())
    })
}

pub(super) fn elapsed(since: &Time, now: jiff::Timestamp) -> Duration {
    now.duration_since(since.0)
        .try_into()
        .unwrap_or(Duration::ZERO)
}

pub(super) fn failure(
    attempt: &Attempt,
    reason: &'static str,
    message: String,
    now: &Time,
) -> AttemptFailure {
    AttemptFailure {
        attempt_id: attempt.id.clone(),
        provider_id: None, // set from the claim when the failure is recorded (fail_attempt)
        mode: attempt.mode,
        reason: reason.to_owned(),
        message: Some(conditions::truncate(&message, 1024)),
        at: Some(now.clone()),
    }
}

/// The reason for a failure the callback recorded, from its origin prefix.
fn recorded_reason(mode: AttemptMode, recorded: &str) -> &'static str {
    match (mode, recorded) {
        (AttemptMode::Clean, _) => CLEANING_FAILED,
        (_, r) if r.starts_with("boot:") => BOOT_FAILED,
        (_, r) if r.starts_with("inspection:") => INSPECTION_FAILED,
        _ => PROVISION_FAILED,
    }
}

/// What a claimed host (state InUse, Inspecting, Deploying or Provisioned) does next.
pub fn plan_claimed(
    host: &PhysicalHost,
    settings: &Settings,
    state: HostState,
    now: &Time,
    slot_free: impl FnOnce() -> bool,
    mint: impl FnOnce(AttemptMode, Option<String>) -> Result<Attempt, String>,
) -> Plan {
    let Some(intent) = host.spec.provisioning.as_ref() else {
        return Plan::Idle;
    };
    let current = attempt_of(host)
        .filter(|a| a.mode == Some(AttemptMode::Provision) && a.id.is_some())
        .filter(|a| !has_failed(host, a));
    let Some(a) = current else {
        // No live attempt: start one, unless the last one failed and nobody asked again.
        if let Some(a) = attempt_of(host).filter(|a| has_failed(host, a))
            && host.annotations_get(RETRY_ANNOTATION) != a.id.as_deref()
        {
            return Plan::Idle;
        }
        if boot_mac(host).is_none() {
            return Plan::Wait {
                state: HostState::InUse,
                reason: NO_BOOT_MAC,
                message: "no boot MAC address is known: set spec.bootMACAddress (the BMC reported no network interface)".into(),
            };
        }
        if !slot_free() {
            return Plan::Wait {
                state: HostState::InUse,
                reason: WAITING_FOR_SLOT,
                message: format!(
                    "{} hosts are booting already (--max-concurrent-provisions); waiting for one to finish",
                    settings.max_concurrent_provisions
                ),
            };
        }
        return match mint(
            AttemptMode::Provision,
            Some(intent.images.inspection_image_url.clone()),
        ) {
            Ok(attempt) => Plan::Start {
                state: HostState::Inspecting,
                attempt: Box::new(attempt),
            },
            // Only a failing random number generator gets here; retried with the backoff.
            Err(message) => Plan::Wait {
                state: HostState::InUse,
                reason: BOOT_FAILED,
                message,
            },
        };
    };
    let records = Records::of(a);
    // A consumed nonce means the server did boot (the manager may have stopped before it wrote
    // bootedAt): never boot it twice.
    if a.booted_at.is_none()
        && records.nonce_consumed_at.is_none()
        && records.provisioned_at.is_none()
    {
        return Plan::Boot {
            attempt_id: a.id.clone().unwrap_or_default(),
        };
    }
    if records.provisioned_at.is_some() {
        return if state == HostState::Provisioned {
            Plan::Idle
        } else {
            Plan::Provisioned
        };
    }
    if let Some(reason) = &records.failure_reason {
        let r = recorded_reason(AttemptMode::Provision, reason);
        return Plan::Fail(failure(a, r, reason.clone(), now));
    }
    let now_ts = now.0;
    match &a.deploying_at {
        None => {
            if records.reported_at.is_some()
                && let Some(report) = host.status.as_ref().and_then(|s| s.inspection.as_ref())
            {
                let missing = intent
                    .hardware_requirements
                    .as_ref()
                    .map(|r| shortfalls(report, r))
                    .unwrap_or_default();
                if !missing.is_empty() {
                    return Plan::Fail(failure(a, REQUIREMENTS_NOT_MET, missing.join("; "), now));
                }
                return Plan::Progress {
                    state: HostState::Deploying,
                    deploying_at: Some(now.clone()),
                    next_deadline: settings.deployment_timeout,
                };
            }
            let started = a.booted_at.as_ref().or(a.started_at.as_ref());
            let spent = started.map(|t| elapsed(t, now_ts)).unwrap_or_default();
            if spent >= settings.inspection_timeout {
                return Plan::Fail(failure(
                    a,
                    INSPECTION_TIMED_OUT,
                    format!(
                        "the agent did not report the hardware within the inspection timeout ({}s)",
                        settings.inspection_timeout.as_secs()
                    ),
                    now,
                ));
            }
            Plan::Progress {
                state: HostState::Inspecting,
                deploying_at: None,
                next_deadline: settings.inspection_timeout - spent,
            }
        }
        Some(at) => {
            let spent = elapsed(at, now_ts);
            if spent >= settings.deployment_timeout {
                return Plan::Fail(failure(
                    a,
                    DEPLOYMENT_TIMED_OUT,
                    format!(
                        "the agent did not report provisioned within the deployment timeout ({}s)",
                        settings.deployment_timeout.as_secs()
                    ),
                    now,
                ));
            }
            Plan::Progress {
                state: HostState::Deploying,
                deploying_at: None,
                next_deadline: settings.deployment_timeout - spent,
            }
        }
    }
}

/// Annotation lookup.
pub(super) trait Annotations {
    fn annotations_get(&self, key: &str) -> Option<&str>;
}

impl Annotations for PhysicalHost {
    fn annotations_get(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    /// A claimed host with a provisioning attempt "a1" started at 1000 s.
    fn host(attempt: serde_json::Value, extra_status: serde_json::Value) -> PhysicalHost {
        let mut status = json!({"state": "Inspecting", "macAddresses": ["52:54:00:00:00:01"],
            "attempt": attempt});
        for (k, v) in extra_status.as_object().unwrap() {
            status[k] = v.clone();
        }
        serde_json::from_value(json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "PhysicalHost",
            "metadata": {"name": "h", "namespace": "ns", "uid": "u"},
            "spec": {
                "redfishConnection": {"address": "http://bmc", "credentialsSecretRef": "c"},
                "consumerRef": {"apiGroup": "g", "kind": "Beskar7Machine", "name": "m"},
                "provisioning": {"inspectionImageURL": "http://i/a", "targetImageURL": "http://i/t",
                    "handoff": "Kexec", "providerID": "b7://ns/h/m", "bootstrapDataSecretName": "b"},
            },
            "status": status,
        }))
        .unwrap()
    }

    fn plan(h: &PhysicalHost, now: i64) -> Plan {
        let settings = Settings {
            inspection_timeout: Duration::from_secs(10),
            ..Settings::default()
        };
        plan_claimed(
            h,
            &settings,
            HostState::Inspecting,
            &at(now),
            || true,
            |_, _| Err("no new attempt expected".into()),
        )
    }

    #[test]
    fn a_consumed_nonce_means_the_server_booted_and_is_never_booted_again() {
        let unbooted =
            json!({"id": "a1", "mode": "provision", "startedAt": "1970-01-01T00:16:40Z"});
        assert_eq!(
            plan(&host(unbooted.clone(), json!({})), 1001),
            Plan::Boot {
                attempt_id: "a1".into()
            }
        );
        let mut consumed = unbooted;
        consumed["recordsAttemptID"] = json!("a1");
        consumed["nonceConsumedAt"] = json!("1970-01-01T00:16:41Z");
        assert!(matches!(
            plan(&host(consumed, json!({})), 1002),
            Plan::Progress {
                state: HostState::Inspecting,
                ..
            }
        ));
    }

    #[test]
    fn silence_waits_for_the_deadline_then_fails() {
        let a = json!({"id": "a1", "mode": "provision", "startedAt": "1970-01-01T00:16:40Z",
            "bootedAt": "1970-01-01T00:16:40Z"});
        let h = host(a, json!({}));
        assert_eq!(
            plan(&h, 1004),
            Plan::Progress {
                state: HostState::Inspecting,
                deploying_at: None,
                next_deadline: Duration::from_secs(6)
            }
        );
        match plan(&h, 1010) {
            Plan::Fail(f) => {
                assert_eq!(f.reason, INSPECTION_TIMED_OUT);
                assert_eq!(f.attempt_id.as_deref(), Some("a1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn records_of_an_earlier_attempt_mean_nothing() {
        let a = json!({"id": "a2", "mode": "provision", "bootedAt": "1970-01-01T00:16:40Z",
            "recordsAttemptID": "a1", "provisionedAt": "1970-01-01T00:16:41Z",
            "failureReason": "agent: old"});
        assert!(matches!(
            plan(&host(a, json!({})), 1001),
            Plan::Progress { .. }
        ));
    }

    #[test]
    fn a_failed_attempt_waits_for_the_machine_to_ask_again() {
        let a = json!({"id": "a1", "mode": "provision", "bootedAt": "1970-01-01T00:16:40Z"});
        let failed = json!({"lastFailure": {"attemptID": "a1", "reason": "ProvisionFailed"}});
        let h = host(a, failed);
        assert_eq!(plan(&h, 1001), Plan::Idle);
        let mut asked = h.clone();
        asked.metadata.annotations = Some([(RETRY_ANNOTATION.into(), "a1".into())].into());
        let settings = Settings::default();
        let p = plan_claimed(
            &asked,
            &settings,
            HostState::InUse,
            &at(1001),
            || true,
            |mode, image| {
                Ok(Attempt {
                    id: Some("a2".into()),
                    mode: Some(mode),
                    agent_image_url: image,
                    ..Attempt::default()
                })
            },
        );
        match p {
            Plan::Start { state, attempt } => {
                assert_eq!(state, HostState::Inspecting);
                assert_eq!(attempt.agent_image_url.as_deref(), Some("http://i/a"));
            }
            other => panic!("{other:?}"),
        }
    }
}
