//! What the callback records on a host: status writes by server-side apply on `/status` under
//! the field manager [`FIELD_MANAGER`], touching only the fields the callback owns
//! (`status.inspection` and the callback's fields of `status.attempt`, see
//! [`crate::api::Attempt`]).
//!
//! Every write carries the `metadata.resourceVersion` it was computed from, so two replicas
//! deciding at once (the first use of a nonce, the one fetch of a config URL) cannot both win:
//! the loser gets 409 Conflict, reads the host again and decides again on what the winner wrote.
//! Each apply sends the callback's *complete* set of fields for the current attempt, so fields it
//! wrote for an earlier attempt are removed by the API server (server-side apply drops fields a
//! manager no longer sends).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::api::{Attempt, InspectionReport, PhysicalHost};

/// The field manager of every write of the callback servers.
pub const FIELD_MANAGER: &str = "beskar7-callback";

/// Rounds of read–decide–write before giving up (each lost round means another writer won).
const MAX_ROUNDS: usize = 5;

/// The callback's records for the current attempt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Records {
    pub nonce_consumed_at: Option<Time>,
    pub nonce_consumed_by: Option<String>,
    pub config_consumed_at: Option<Time>,
    pub reported_at: Option<Time>,
    pub bootstrap_fetched_at: Option<Time>,
    pub provisioned_at: Option<Time>,
    pub failed_at: Option<Time>,
    pub failure_reason: Option<String>,
    pub cleaned_at: Option<Time>,
}

impl Records {
    /// The records of `attempt`, empty when they belong to an earlier attempt.
    pub fn of(attempt: &Attempt) -> Self {
        if !attempt.records_are_current() {
            return Records::default();
        }
        Records {
            nonce_consumed_at: attempt.nonce_consumed_at.clone(),
            nonce_consumed_by: attempt.nonce_consumed_by.clone(),
            config_consumed_at: attempt.config_consumed_at.clone(),
            reported_at: attempt.reported_at.clone(),
            bootstrap_fetched_at: attempt.bootstrap_fetched_at.clone(),
            provisioned_at: attempt.provisioned_at.clone(),
            failed_at: attempt.failed_at.clone(),
            failure_reason: attempt.failure_reason.clone(),
            cleaned_at: attempt.cleaned_at.clone(),
        }
    }

    /// Records a failure unless one is recorded already (the first cause is the useful one).
    pub fn fail(&mut self, now: &Time, reason: String) {
        if self.failure_reason.is_none() {
            self.failed_at = Some(now.clone());
            self.failure_reason = Some(reason);
        }
    }

    fn into_attempt(self, attempt_id: &str) -> Attempt {
        Attempt {
            records_attempt_id: Some(attempt_id.to_owned()),
            nonce_consumed_at: self.nonce_consumed_at,
            nonce_consumed_by: self.nonce_consumed_by,
            config_consumed_at: self.config_consumed_at,
            reported_at: self.reported_at,
            bootstrap_fetched_at: self.bootstrap_fetched_at,
            provisioned_at: self.provisioned_at,
            failed_at: self.failed_at,
            failure_reason: self.failure_reason,
            cleaned_at: self.cleaned_at,
            ..Attempt::default()
        }
    }
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the host no longer exists")]
    NoHost,
    #[error("the host's attempt changed (a new attempt started, or it was cleared)")]
    AttemptChanged,
    #[error("other writers kept changing the host; gave up after {MAX_ROUNDS} rounds")]
    TooManyConflicts,
    #[error("cannot read or write the host: {0}")]
    Kube(#[source] kube::Error),
}

/// Reads the host, lets `decide` change the callback's records (and the inspection report) for
/// the attempt `attempt_id`, and writes them when they changed, with the resourceVersion read as
/// the precondition; on a conflict it starts over. Returns what `decide` returned in the round
/// that was written (or needed no write).
pub async fn update<T, E>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    attempt_id: &str,
    mut decide: impl FnMut(&PhysicalHost, &mut Records, &mut Option<InspectionReport>) -> Result<T, E>,
) -> Result<Result<T, E>, RecordError> {
    let api: Api<PhysicalHost> = Api::namespaced(client.clone(), namespace);
    for _ in 0..MAX_ROUNDS {
        let host = api
            .get_opt(name)
            .await
            .map_err(RecordError::Kube)?
            .ok_or(RecordError::NoHost)?;
        let attempt = host
            .status
            .as_ref()
            .and_then(|s| s.attempt.as_ref())
            .filter(|a| a.id.as_deref() == Some(attempt_id))
            .ok_or(RecordError::AttemptChanged)?;
        let before = Records::of(attempt);
        let report_before = host.status.as_ref().and_then(|s| s.inspection.clone());
        let mut records = before.clone();
        let mut report = report_before.clone();
        let outcome = decide(&host, &mut records, &mut report);
        if records == before && report == report_before {
            return Ok(outcome);
        }
        let mut status = json!({ "attempt": records.into_attempt(attempt_id) });
        if let Some(report) = report {
            status["inspection"] = serde_json::to_value(report).expect("a report serializes");
        }
        let body = json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "PhysicalHost",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": host.metadata.resource_version,
            },
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch_status(name, &params, &Patch::Apply(&body)).await {
            Ok(_) => return Ok(outcome),
            Err(kube::Error::Api(s)) if s.is_conflict() => continue,
            Err(e) => return Err(RecordError::Kube(e)),
        }
    }
    Err(RecordError::TooManyConflicts)
}
