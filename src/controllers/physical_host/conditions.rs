//! Failure reasons and the host's conditions: a pure function from what the reconcile learned
//! to the metav1 Conditions, so every reason has one place that decides what it means.
//!
//! Condition types (a Metal3 user will recognise them from BareMetalHost's operational status
//! and error types, in the CAPI condition style):
//! - `CredentialsValid`: the credentials (and CA bundle) Secrets exist with their keys, and the
//!   BMC accepted the credentials.
//! - `BMCReachable`: the BMC answered over Redfish (TCP, TLS, a Redfish payload).
//! - `Enrolled`: the inventory was read (hardwareDetails, MACs, power).
//! - `Ready`: the host is usable (Available or InUse); otherwise the reason says why not.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::physical_host::{Attempt, AttemptFailure, AttemptMode, HostState};
use crate::redfish::RedfishError;

pub const CREDENTIALS_VALID: &str = "CredentialsValid";
pub const BMC_REACHABLE: &str = "BMCReachable";
pub const ENROLLED: &str = "Enrolled";
pub const READY: &str = "Ready";

// Failure reasons (CamelCase, bounded: also metric labels and event reasons).
pub const CREDENTIALS_SECRET_NOT_FOUND: &str = "CredentialsSecretNotFound";
pub const CREDENTIALS_KEY_MISSING: &str = "CredentialsKeyMissing";
pub const CA_BUNDLE_SECRET_NOT_FOUND: &str = "CABundleSecretNotFound";
pub const CA_BUNDLE_KEY_MISSING: &str = "CABundleKeyMissing";
pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
pub const BMC_UNREACHABLE: &str = "BMCUnreachable";
pub const BMC_TIMEOUT: &str = "BMCTimeout";
pub const TLS_ERROR: &str = "TLSError";
pub const INVALID_BMC_CONFIG: &str = "InvalidBMCConfig";
pub const INVALID_BMC_RESPONSE: &str = "InvalidBMCResponse";
pub const SYSTEM_NOT_FOUND: &str = "SystemNotFound";
pub const MULTIPLE_SYSTEMS: &str = "MultipleSystems";
pub const BMC_BUSY: &str = "BMCBusy";
pub const BMC_ERROR: &str = "BMCError";
pub const BMC_UNSUPPORTED: &str = "BMCUnsupported";
pub const BMC_OPERATION_FAILED: &str = "BMCOperationFailed";
pub const DEPROVISION_TIMED_OUT: &str = "DeprovisionTimedOut";

/// Why the host cannot be used: a reason from the list above and a message for people. The
/// message names Secrets, keys, addresses and BMC answers, never a password or token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
    /// Worth retrying on a timer (a BMC that may come back); the others wait for a change
    /// (the Secret watch) and are retried slowly anyway, since BMC-side fixes are invisible.
    pub retryable: bool,
}

impl Failure {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            retryable: false,
        }
    }
}

impl From<&RedfishError> for Failure {
    fn from(e: &RedfishError) -> Self {
        let reason = match e {
            RedfishError::InvalidConfig(_) => INVALID_BMC_CONFIG,
            RedfishError::Unreachable { .. } => BMC_UNREACHABLE,
            RedfishError::Tls { .. } => TLS_ERROR,
            RedfishError::Timeout { .. } => BMC_TIMEOUT,
            RedfishError::AuthRejected { .. } => AUTHENTICATION_FAILED,
            RedfishError::SessionLimit { .. } => BMC_BUSY,
            // The ComputerSystem itself is missing (a wrong systemPath), not some sub-resource.
            RedfishError::Http {
                status: 404, path, ..
            } if is_system_path(path) => SYSTEM_NOT_FOUND,
            RedfishError::Http { .. } => BMC_ERROR,
            RedfishError::InvalidPayload { .. } => INVALID_BMC_RESPONSE,
            RedfishError::NoSystem => SYSTEM_NOT_FOUND,
            RedfishError::SeveralSystems(_) => MULTIPLE_SYSTEMS,
            RedfishError::Unsupported(_) => BMC_UNSUPPORTED,
            RedfishError::BootOverrideNotApplied(_)
            | RedfishError::PowerTimeout { .. }
            | RedfishError::TaskFailed { .. } => BMC_OPERATION_FAILED,
        };
        Self {
            reason,
            // RedfishError messages never carry credentials (see redfish::error).
            message: e.to_string(),
            retryable: e.is_retryable(),
        }
    }
}

/// `/redfish/v1/Systems/<id>`, nothing below it.
fn is_system_path(path: &str) -> bool {
    path.trim_end_matches('/')
        .strip_prefix("/redfish/v1/Systems/")
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The verdict of one condition: (status, reason, message).
type Verdict = (&'static str, String, String);

fn ok(reason: &str) -> Verdict {
    ("True", reason.to_owned(), String::new())
}

fn failed(f: &Failure) -> Verdict {
    ("False", f.reason.to_owned(), f.message.clone())
}

fn unknown(reason: &str, message: &str) -> Verdict {
    ("Unknown", reason.to_owned(), message.to_owned())
}

/// Which conditions a failure makes False, and which it leaves unknown.
fn verdicts(
    state: HostState,
    failure: Option<&Failure>,
    enrolled: bool,
) -> [(&'static str, Verdict); 4] {
    let secret_problem = |r: &str| {
        matches!(
            r,
            CREDENTIALS_SECRET_NOT_FOUND
                | CREDENTIALS_KEY_MISSING
                | CA_BUNDLE_SECRET_NOT_FOUND
                | CA_BUNDLE_KEY_MISSING
        )
    };
    let connection_problem = |r: &str| {
        matches!(
            r,
            BMC_UNREACHABLE | BMC_TIMEOUT | TLS_ERROR | INVALID_BMC_CONFIG
        )
    };
    let (credentials, reachable) = match failure {
        None => (ok("Valid"), ok("Reachable")),
        Some(f) if secret_problem(f.reason) => (
            failed(f),
            unknown("NotChecked", "the BMC is not contacted without credentials"),
        ),
        Some(f) if f.reason == AUTHENTICATION_FAILED => (failed(f), ok("Reachable")),
        Some(f) if connection_problem(f.reason) => {
            (unknown("NotChecked", "the BMC did not answer"), failed(f))
        }
        // A deprovision that ran out of time: the last BMC error says why.
        Some(f) if f.reason == DEPROVISION_TIMED_OUT => (ok("Valid"), failed(f)),
        // The BMC answered, but not with something usable.
        Some(_) => (ok("Valid"), ok("Reachable")),
    };
    let enrolled_v = match (failure, enrolled) {
        (_, true) => ok("Enrolled"),
        (Some(f), false) => failed(f),
        (None, false) => ("False", "Enrolling".into(), String::new()),
    };
    let ready = match (state, failure) {
        (_, Some(f)) => failed(f),
        (HostState::Available | HostState::InUse, None) => ok(state_name(state)),
        (other, None) => ("False", state_name(other).to_owned(), String::new()),
    };
    [
        (CREDENTIALS_VALID, credentials),
        (BMC_REACHABLE, reachable),
        (ENROLLED, enrolled_v),
        (READY, ready),
    ]
}

pub fn state_name(s: HostState) -> &'static str {
    match s {
        HostState::Enrolling => "Enrolling",
        HostState::Available => "Available",
        HostState::InUse => "InUse",
        HostState::Inspecting => "Inspecting",
        HostState::Deploying => "Deploying",
        HostState::Provisioned => "Provisioned",
        HostState::Deprovisioning => "Deprovisioning",
        HostState::Error => "Error",
    }
}

/// The conditions for `state`/`failure`, keeping each previous condition's
/// `lastTransitionTime` when its status did not change (so a settled host computes exactly
/// the status it already has, and nothing is written).
pub fn desired(
    state: HostState,
    failure: Option<&Failure>,
    enrolled: bool,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    verdicts(state, failure, enrolled)
        .into_iter()
        .map(|(type_, (status, reason, message))| {
            // Cut here with an ellipsis, so the shared builder's own bound changes nothing.
            let message = truncate(&message, 1024);
            crate::controllers::conditions::with_status(
                previous, type_, status, &reason, &message, generation, now,
            )
        })
        .collect()
}

/// What the attempt conditions are computed from (the next status, and the step's waiting).
pub struct AttemptView<'a> {
    pub state: HostState,
    pub claimed_with_intent: bool,
    /// `status.lastFailure` when it names the current attempt.
    pub last_failure: Option<&'a AttemptFailure>,
    pub attempt: Option<&'a Attempt>,
    pub waiting: Option<(&'static str, &'a str)>,
    pub no_boot_mac: bool,
}

pub const PROVISIONED: &str = "Provisioned";
pub const NO_BOOT_MAC: &str = "NoBootMAC";
pub const CLEANING: &str = "Cleaning";
pub const CLEANING_FAILED: &str = "CleaningFailed";

/// The conditions of attempts, present only when they say something:
/// - `Provisioned` (a claimed host with an intent, or one with a failed provisioning attempt):
///   True once handed over; False with `Inspecting`/`Deploying` while an attempt runs, with the
///   failure's reason after a failed attempt, or with why none can start (`NoBootMAC`,
///   `WaitingForProvisionSlot`).
/// - `NoBootMAC`: True while no boot MAC is known (the first stage cannot find the host).
/// - `Cleaning`: a released host's cleaning (True while it runs, False while it waits).
/// - `CleaningFailed`: True while a failed cleaning keeps the host out of the pool.
pub fn attempt_conditions(
    v: &AttemptView<'_>,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<(&str, Verdict)> = Vec::new();
    let provision_failure = v
        .last_failure
        .filter(|f| f.mode != Some(AttemptMode::Clean));
    let provisioned = match (v.state, v.waiting, provision_failure) {
        (HostState::Provisioned, _, _) => Some(ok(PROVISIONED)),
        (HostState::Inspecting, _, _) => Some((
            "False",
            "Inspecting".into(),
            "the agent is booting and reporting the hardware".into(),
        )),
        (HostState::Deploying, _, _) => Some((
            "False",
            "Deploying".into(),
            "the agent is writing or loading the target OS".into(),
        )),
        (HostState::InUse, Some((reason, message)), _) => {
            Some(("False", reason.to_owned(), message.to_owned()))
        }
        (_, _, Some(f)) => Some((
            "False",
            f.reason.clone(),
            f.message.clone().unwrap_or_default(),
        )),
        (HostState::InUse, None, None) if v.claimed_with_intent => Some((
            "False",
            "Starting".into(),
            "a provisioning attempt is starting".into(),
        )),
        _ => None,
    };
    if let Some(p) = provisioned {
        out.push((PROVISIONED, p));
    }
    if v.no_boot_mac {
        out.push((
            NO_BOOT_MAC,
            (
                "True",
                NO_BOOT_MAC.into(),
                "no boot MAC address is known: set spec.bootMACAddress".into(),
            ),
        ));
    }
    if v.state == HostState::Deprovisioning {
        let cleaning_live = v.attempt.is_some_and(|a| {
            a.mode == Some(AttemptMode::Clean)
                && !v
                    .last_failure
                    .is_some_and(|f| f.attempt_id.is_some() && f.attempt_id == a.id)
        });
        match v.waiting {
            Some((reason, message)) => {
                out.push((CLEANING, ("False", reason.to_owned(), message.to_owned())))
            }
            None if cleaning_live => out.push((
                CLEANING,
                (
                    "True",
                    "Cleaning".into(),
                    "the agent is wiping the disks".into(),
                ),
            )),
            None => {}
        }
    }
    if v.state == HostState::Error
        && let Some(f) = v
            .last_failure
            .filter(|f| f.mode == Some(AttemptMode::Clean))
    {
        out.push((
            CLEANING_FAILED,
            (
                "True",
                f.reason.clone(),
                f.message.clone().unwrap_or_default(),
            ),
        ));
    }
    out.into_iter()
        .map(|(type_, (status, reason, message))| {
            // Cut here with an ellipsis, so the shared builder's own bound changes nothing.
            let message = truncate(&message, 1024);
            crate::controllers::conditions::with_status(
                previous, type_, status, &reason, &message, generation, now,
            )
        })
        .collect()
}

/// Shortens a message to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
    }

    fn find<'a>(c: &'a [Condition], t: &str) -> &'a Condition {
        c.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn an_available_host_is_ready_and_everything_is_true() {
        let c = desired(HostState::Available, None, true, &[], Some(3), &t(10));
        assert!(c.iter().all(|c| c.status == "True"), "{c:?}");
        assert_eq!(find(&c, READY).reason, "Available");
        assert!(c.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn each_failure_makes_its_condition_false() {
        let cases = [
            (CREDENTIALS_SECRET_NOT_FOUND, CREDENTIALS_VALID, "Unknown"),
            (AUTHENTICATION_FAILED, CREDENTIALS_VALID, "True"),
            (BMC_UNREACHABLE, BMC_REACHABLE, "Unknown"),
            (TLS_ERROR, BMC_REACHABLE, "Unknown"),
        ];
        for (reason, false_type, reachable_or_credentials) in cases {
            let f = Failure::new(reason, "why");
            let c = desired(HostState::Error, Some(&f), false, &[], None, &t(1));
            let cond = find(&c, false_type);
            assert_eq!(
                (cond.status.as_str(), cond.reason.as_str()),
                ("False", reason)
            );
            assert_eq!(find(&c, READY).reason, reason);
            assert_eq!(find(&c, READY).message, "why");
            let other = if false_type == CREDENTIALS_VALID {
                BMC_REACHABLE
            } else {
                CREDENTIALS_VALID
            };
            assert_eq!(find(&c, other).status, reachable_or_credentials, "{reason}");
        }
    }

    #[test]
    fn transition_times_survive_an_unchanged_status() {
        let first = desired(HostState::Available, None, true, &[], Some(1), &t(10));
        let again = desired(HostState::InUse, None, true, &first, Some(2), &t(20));
        assert_eq!(find(&again, READY).last_transition_time, t(10));
        let f = Failure::new(BMC_UNREACHABLE, "down");
        let broken = desired(HostState::Error, Some(&f), true, &again, Some(2), &t(30));
        assert_eq!(find(&broken, READY).last_transition_time, t(30));
        assert_eq!(find(&broken, ENROLLED).last_transition_time, t(10));
    }

    #[test]
    fn redfish_errors_map_to_distinct_reasons() {
        let e = RedfishError::SeveralSystems(vec!["/a".into(), "/b".into()]);
        assert_eq!(Failure::from(&e).reason, MULTIPLE_SYSTEMS);
        assert_eq!(
            Failure::from(&RedfishError::NoSystem).reason,
            SYSTEM_NOT_FOUND
        );
        let e = RedfishError::InvalidPayload {
            path: "/redfish/v1/".into(),
            detail: "x".into(),
        };
        assert_eq!(Failure::from(&e).reason, INVALID_BMC_RESPONSE);
        let not_found = |path: &str| RedfishError::Http {
            method: "GET".into(),
            path: path.into(),
            status: 404,
            message_id: None,
            message: None,
        };
        assert_eq!(
            Failure::from(&not_found("/redfish/v1/Systems/nope")).reason,
            SYSTEM_NOT_FOUND
        );
        assert_eq!(
            Failure::from(&not_found("/redfish/v1/Systems/1/EthernetInterfaces")).reason,
            BMC_ERROR
        );
        let e = RedfishError::Unreachable {
            address: "a".into(),
            detail: "refused".into(),
        };
        let f = Failure::from(&e);
        assert!(f.retryable && f.reason == BMC_UNREACHABLE);
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééééé", 7).len(), 7);
    }
}
