//! The part of `PhysicalHost.status` this controller owns, written with server-side apply.
//!
//! Every write applies the complete owned part (apply semantics remove what an owner omits, so
//! nothing may rely on merging), and a write happens only when the owned part differs from what
//! the object has: a settled host causes no writes at all.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde_json::json;

use crate::api::physical_host::{PhysicalHost, PhysicalHostStatus};

/// The field manager of the PhysicalHost controller's status writes.
pub const FIELD_MANAGER: &str = "beskar7-physicalhost";

/// The fields of `status` this controller writes; the callback servers own the rest
/// (`status.inspection` and the records in `status.attempt`) under their own field manager.
/// The attempt is a granular map: applying its controller fields leaves the callback's alone.
pub fn owned(status: Option<&PhysicalHostStatus>) -> PhysicalHostStatus {
    let Some(s) = status else {
        return PhysicalHostStatus::default();
    };
    PhysicalHostStatus {
        state: s.state,
        observed_power_state: s.observed_power_state,
        error_message: s.error_message.clone(),
        hardware_details: s.hardware_details.clone(),
        mac_addresses: s.mac_addresses.clone(),
        enrolled_at: s.enrolled_at.clone(),
        last_state_change: s.last_state_change.clone(),
        observed_generation: s.observed_generation,
        conditions: s.conditions.clone(),
        // Only the controller's part of the attempt: the callback owns its records.
        attempt: s
            .attempt
            .as_ref()
            .map(crate::api::Attempt::controller_part)
            .filter(|a| *a != crate::api::Attempt::default()),
        last_failure: s.last_failure.clone(),
        provisioned_at: s.provisioned_at.clone(),
        ..PhysicalHostStatus::default()
    }
}

/// Now, to the second (metav1.Time has second precision on the wire; comparing a computed
/// status with a stored one must not differ in nanoseconds).
pub fn now() -> Time {
    let t = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(t.as_second()).unwrap_or(t))
}

/// Applies `desired` when it differs from the host's owned status. Returns whether it wrote.
pub async fn apply(
    api: &Api<PhysicalHost>,
    host: &PhysicalHost,
    desired: &PhysicalHostStatus,
) -> kube::Result<bool> {
    if owned(host.status.as_ref()) == *desired {
        return Ok(false);
    }
    let name = host.meta().name.as_deref().unwrap_or_default();
    let body = json!({
        "apiVersion": PhysicalHost::api_version(&()),
        "kind": PhysicalHost::kind(&()),
        "status": desired,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    // Apply semantics remove what this manager owned and now omits (a cleared errorMessage,
    // say); no explicit nulls, which the schema of a real API server would reject.
    Ok(true)
}
