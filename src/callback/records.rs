//! What the callback records on a host: status writes on `/status` under the field manager
//! [`FIELD_MANAGER`], touching only the fields the callback owns (`status.inspection` and the
//! callback's fields of `status.attempt`, see [`crate::api::Attempt`]).
//!
//! Every write carries the `metadata.resourceVersion` it was computed from, so two replicas
//! deciding at once (the first use of a nonce, the one fetch of a config URL) cannot both win:
//! the loser gets 409 Conflict, reads the host again and decides again on what the winner wrote.
//!
//! The writes are JSON merge patches, not server-side apply: each sends the callback's complete
//! set of attempt fields, with `null` for those it has not set, so records left by an earlier
//! attempt are removed the first time the callback writes for a new one. Server-side apply would
//! remove them only on a server that tracks field ownership (an explicit `null` in an apply body
//! is not a removal), and the merge patch needs no schema knowledge to do the same everywhere.

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

    /// The attempt fields as a merge patch: every callback field present, `null` when unset.
    fn into_patch(self, attempt_id: &str) -> serde_json::Value {
        let t = |t: Option<Time>| serde_json::to_value(t).expect("a time serializes");
        json!({
            "recordsAttemptID": attempt_id,
            "nonceConsumedAt": t(self.nonce_consumed_at),
            "nonceConsumedBy": self.nonce_consumed_by,
            "configConsumedAt": t(self.config_consumed_at),
            "reportedAt": t(self.reported_at),
            "bootstrapFetchedAt": t(self.bootstrap_fetched_at),
            "provisionedAt": t(self.provisioned_at),
            "failedAt": t(self.failed_at),
            "failureReason": self.failure_reason,
            "cleanedAt": t(self.cleaned_at),
        })
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
        let mut status = json!({ "attempt": records.into_patch(attempt_id) });
        if let Some(report) = report {
            status["inspection"] = serde_json::to_value(report).expect("a report serializes");
        }
        let body = json!({
            "metadata": { "resourceVersion": host.metadata.resource_version },
            "status": status,
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match api.patch_status(name, &params, &Patch::Merge(&body)).await {
            Ok(_) => return Ok(outcome),
            Err(kube::Error::Api(s)) if s.is_conflict() => continue,
            Err(e) => return Err(RecordError::Kube(e)),
        }
    }
    Err(RecordError::TooManyConflicts)
}
