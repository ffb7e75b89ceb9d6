//! Cleaning on release (inspector contract §6): a released host whose attempt reached
//! Deploying boots the agent in clean mode before it is offered again; a cleaning that fails or
//! times out powers the server off and keeps the host out of the pool until a person acts.
//!
//! Pure decisions, like [`super::attempt`]; the reconciler carries them out.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::attempt::{
    Annotations, CLEANING_FAILED, CLEANING_TIMED_OUT, Plan, WAITING_FOR_SLOT, attempt_of, elapsed,
    failure, has_failed, last_failure,
};
use crate::api::physical_host::{
    Attempt, AttemptMode, AutomatedCleaningMode, HostState, PhysicalHost,
};
use crate::callback::records::Records;
use crate::controllers::Settings;

/// The annotation a person sets, to the failed cleaning attempt's id, to have the host clean
/// again.
pub const RETRY_CLEANING_ANNOTATION: &str = "beskar7.io/retry-cleaning";

/// Whether a release must clean first: cleaning is on and the agent may have written disks
/// (an attempt reached Deploying), or a cleaning attempt has not finished.
pub fn needs_cleaning(host: &PhysicalHost) -> bool {
    if host.spec.automated_cleaning_mode != AutomatedCleaningMode::Metadata {
        return false;
    }
    attempt_of(host).is_some_and(|a| match a.mode {
        Some(AttemptMode::Provision) => a.deploying_at.is_some(),
        Some(AttemptMode::Clean) => !(a.records_are_current() && a.cleaned_at.is_some()),
        None => false,
    })
}

/// What a released host in Deprovisioning does about cleaning ([`Plan::Idle`]: no cleaning
/// needed or left, power off as usual).
pub fn plan_cleaning(
    host: &PhysicalHost,
    settings: &Settings,
    now: &Time,
    slot_free: impl FnOnce() -> bool,
    mint: impl FnOnce(AttemptMode, Option<String>) -> Result<Attempt, String>,
) -> Plan {
    if !needs_cleaning(host) {
        return Plan::Idle;
    }
    let Some(previous) = attempt_of(host) else {
        return Plan::Idle;
    };
    let live = previous.mode == Some(AttemptMode::Clean) && !has_failed(host, previous);
    if !live {
        if !slot_free() {
            return Plan::Wait {
                state: HostState::Deprovisioning,
                reason: WAITING_FOR_SLOT,
                message: format!(
                    "{} hosts are booting already (--max-concurrent-provisions); cleaning waits for one to finish",
                    settings.max_concurrent_provisions
                ),
            };
        }
        let image = previous
            .agent_image_url
            .clone()
            .or_else(|| settings.clean_image_url.clone());
        if image.is_none() {
            return Plan::Fail(failure(
                previous,
                CLEANING_FAILED,
                "no agent image to clean with: the last attempt recorded none and --clean-image-url is not set".into(),
                now,
            ));
        }
        return match mint(AttemptMode::Clean, image) {
            Ok(attempt) => Plan::Start {
                state: HostState::Deprovisioning,
                attempt: Box::new(attempt),
            },
            Err(message) => Plan::Fail(failure(previous, CLEANING_FAILED, message, now)),
        };
    }
    let a = previous;
    let records = Records::of(a);
    if a.booted_at.is_none() && records.nonce_consumed_at.is_none() {
        return Plan::Boot {
            attempt_id: a.id.clone().unwrap_or_default(),
        };
    }
    if let Some(reason) = &records.failure_reason {
        return Plan::Fail(failure(a, CLEANING_FAILED, reason.clone(), now));
    }
    let started = a.booted_at.as_ref().or(a.started_at.as_ref());
    let spent = started.map(|t| elapsed(t, now.0)).unwrap_or_default();
    if spent >= settings.deprovision_timeout {
        return Plan::Fail(failure(
            a,
            CLEANING_TIMED_OUT,
            format!(
                "the agent did not report cleaned within the deprovision timeout ({}s)",
                settings.deprovision_timeout.as_secs()
            ),
            now,
        ));
    }
    Plan::Progress {
        state: HostState::Deprovisioning,
        deploying_at: None,
        next_deadline: settings.deprovision_timeout - spent,
    }
}

/// A host whose cleaning failed stays in Error, out of the pool, until a person sets
/// [`RETRY_CLEANING_ANNOTATION`] to the failed attempt's id or disables cleaning.
pub fn plan_cleaning_failed(host: &PhysicalHost) -> Option<Plan> {
    let current = attempt_of(host).filter(|a| has_failed(host, a))?;
    let f = last_failure(host)
        .filter(|f| f.mode == Some(AttemptMode::Clean) && f.attempt_id == current.id)?;
    if host.spec.automated_cleaning_mode == AutomatedCleaningMode::Disabled
        || (f.attempt_id.is_some()
            && host.annotations_get(RETRY_CLEANING_ANNOTATION) == f.attempt_id.as_deref())
    {
        return Some(Plan::Redeprovision);
    }
    Some(Plan::CleaningFailedHold(f.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host(mode: &str, attempt: serde_json::Value, status: serde_json::Value) -> PhysicalHost {
        let mut st = json!({"state": "Deprovisioning", "attempt": attempt});
        for (k, v) in status.as_object().unwrap() {
            st[k] = v.clone();
        }
        serde_json::from_value(json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "PhysicalHost",
            "metadata": {"name": "h", "namespace": "ns", "uid": "u"},
            "spec": {
                "redfishConnection": {"address": "http://bmc", "credentialsSecretRef": "c"},
                "automatedCleaningMode": mode,
            },
            "status": st,
        }))
        .unwrap()
    }

    #[test]
    fn only_an_attempt_that_reached_deploying_is_cleaned_up_after() {
        let inspected = json!({"id": "a1", "mode": "provision", "agentImageURL": "http://i/a"});
        assert!(!needs_cleaning(&host(
            "metadata",
            inspected.clone(),
            json!({})
        )));
        let mut deployed = inspected;
        deployed["deployingAt"] = json!("1970-01-01T00:16:40Z");
        assert!(needs_cleaning(&host(
            "metadata",
            deployed.clone(),
            json!({})
        )));
        assert!(!needs_cleaning(&host("disabled", deployed, json!({}))));
        let cleaned = json!({"id": "c1", "mode": "clean", "recordsAttemptID": "c1",
            "cleanedAt": "1970-01-01T00:16:41Z"});
        assert!(!needs_cleaning(&host("metadata", cleaned, json!({}))));
    }

    #[test]
    fn a_failed_cleaning_holds_until_a_person_asks_again() {
        let a = json!({"id": "c1", "mode": "clean"});
        let failed = json!({"state": "Error",
            "lastFailure": {"attemptID": "c1", "mode": "clean", "reason": "CleaningTimedOut"}});
        let mut h = host("metadata", a, failed);
        assert!(matches!(
            plan_cleaning_failed(&h),
            Some(Plan::CleaningFailedHold(_))
        ));
        h.metadata.annotations = Some([(RETRY_CLEANING_ANNOTATION.into(), "c0".into())].into());
        assert!(matches!(
            plan_cleaning_failed(&h),
            Some(Plan::CleaningFailedHold(_))
        ));
        h.metadata.annotations = Some([(RETRY_CLEANING_ANNOTATION.into(), "c1".into())].into());
        assert_eq!(plan_cleaning_failed(&h), Some(Plan::Redeprovision));
        // Asked again: a new cleaning attempt starts (the failed one is not live).
        let settings = Settings::default();
        let mut deprov = h.clone();
        deprov.status.as_mut().unwrap().state = Some(HostState::Deprovisioning);
        deprov
            .status
            .as_mut()
            .unwrap()
            .attempt
            .as_mut()
            .unwrap()
            .agent_image_url = Some("http://i/a".into());
        let p = plan_cleaning(
            &deprov,
            &settings,
            &Time(jiff::Timestamp::from_second(2000).unwrap()),
            || true,
            |mode, image| {
                Ok(Attempt {
                    id: Some("c2".into()),
                    mode: Some(mode),
                    agent_image_url: image,
                    ..Attempt::default()
                })
            },
        );
        match p {
            Plan::Start { attempt, .. } => {
                assert_eq!(attempt.mode, Some(AttemptMode::Clean));
                assert_eq!(attempt.agent_image_url.as_deref(), Some("http://i/a"));
            }
            other => panic!("{other:?}"),
        }
    }
}
