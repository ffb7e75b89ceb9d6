//! `Beskar7Machine.status`: what each step reports, turned into the complete status and written
//! with server-side apply under this controller's own field manager (it owns all of it), only
//! when it differs from what the object has.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::api::{Beskar7Machine, Beskar7MachineStatus, MachinePhase, READY_CONDITION};
use crate::controllers::conditions::{self, PAUSED, condition};
use crate::controllers::physical_host::status::now;

/// The field manager of the machine controller's status writes.
pub const FIELD_MANAGER: &str = "beskar7-machine";

/// `HostAssociated`: a host is claimed (False: the reason says what the machine waits for).
pub const HOST_ASSOCIATED: &str = "HostAssociated";
/// `HostProvisioned`: the claimed host runs the target OS (False: where it is, or why not).
pub const HOST_PROVISIONED: &str = "HostProvisioned";

// Reasons (CamelCase, bounded).
pub const WAITING_FOR_MACHINE_OWNER: &str = "WaitingForMachineOwner";
pub const WAITING_FOR_CLUSTER: &str = "WaitingForCluster";
pub const WAITING_FOR_CLUSTER_INFRASTRUCTURE: &str = "WaitingForClusterInfrastructure";
pub const WAITING_FOR_BOOTSTRAP_DATA: &str = "WaitingForBootstrapData";
pub const NO_HOST_AVAILABLE: &str = "NoHostAvailable";
pub const ASSOCIATED: &str = "Associated";
pub const NOT_ASSOCIATED: &str = "NotAssociated";
pub const INSPECTING: &str = "Inspecting";
pub const DEPLOYING: &str = "Deploying";
pub const PROVISIONED: &str = "Provisioned";
pub const HOST_DELETED: &str = "HostDeleted";
pub const DELETING: &str = "Deleting";
pub const DEPROVISIONING: &str = "Deprovisioning";

/// One condition's verdict: (status, reason, message).
pub type Verdict = (bool, &'static str, String);

pub fn no(reason: &'static str, message: impl Into<String>) -> Verdict {
    (false, reason, message.into())
}

pub fn yes(reason: &'static str) -> Verdict {
    (true, reason, String::new())
}

/// What a step found: the phase and the verdicts; `ready` overrides the derived Ready.
pub struct Report {
    pub phase: MachinePhase,
    pub associated: Verdict,
    pub provisioned: Verdict,
    pub ready: Option<Verdict>,
}

impl Report {
    /// A wait before any host is claimed: both host conditions say why.
    pub fn waiting(reason: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Report {
            phase: MachinePhase::Pending,
            associated: no(reason, message.clone()),
            provisioned: no(NOT_ASSOCIATED, "no host is claimed"),
            ready: Some(no(reason, message)),
        }
    }
}

/// The complete status after `report`; `edit` sets the step's other fields (addresses, ...).
pub fn desired(
    m: &Beskar7Machine,
    report: &Report,
    edit: impl FnOnce(&mut Beskar7MachineStatus),
) -> Beskar7MachineStatus {
    let prev = m.status.clone().unwrap_or_default();
    let mut next = prev.clone();
    let generation = m.meta().generation;
    let t = now();
    let ready = report.ready.clone().unwrap_or_else(|| {
        if report.provisioned.0 {
            yes(PROVISIONED)
        } else if !report.associated.0 {
            report.associated.clone()
        } else {
            report.provisioned.clone()
        }
    });
    let c = |type_: &str, v: &Verdict| {
        condition(&prev.conditions, type_, v.0, v.1, &v.2, generation, &t)
    };
    conditions::set(&mut next.conditions, c(READY_CONDITION, &ready));
    conditions::set(
        &mut next.conditions,
        c(PAUSED, &(false, "NotPaused", String::new())),
    );
    conditions::set(&mut next.conditions, c(HOST_ASSOCIATED, &report.associated));
    conditions::set(
        &mut next.conditions,
        c(HOST_PROVISIONED, &report.provisioned),
    );
    // A provisioned machine stays Provisioned while it waits for something (a Cluster deleted
    // under it, say): initialization.provisioned never flips back, nor does the phase.
    if !(m.is_provisioned() && report.phase == MachinePhase::Pending) {
        next.phase = Some(report.phase);
    }
    next.observed_generation = generation;
    edit(&mut next);
    next
}

/// The status with only the Paused condition turned on: nothing else changes while paused.
pub fn paused(m: &Beskar7Machine, why: &str) -> Beskar7MachineStatus {
    let prev = m.status.clone().unwrap_or_default();
    let mut next = prev.clone();
    let c = condition(
        &prev.conditions,
        PAUSED,
        true,
        "Paused",
        why,
        m.meta().generation,
        &now(),
    );
    conditions::set(&mut next.conditions, c);
    next
}

/// Applies `desired` when it differs from the machine's status. Returns whether it wrote.
pub async fn apply(
    api: &Api<Beskar7Machine>,
    m: &Beskar7Machine,
    desired: &Beskar7MachineStatus,
) -> kube::Result<bool> {
    if m.status.as_ref() == Some(desired) {
        return Ok(false);
    }
    let body = json!({
        "apiVersion": Beskar7Machine::api_version(&()),
        "kind": Beskar7Machine::kind(&()),
        "status": desired,
    });
    match api
        .patch_status(
            &m.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => Ok(true),
        // Deleted meanwhile: nothing left to report on.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}
