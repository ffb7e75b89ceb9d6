//! The host↔machine binding: claim and release with preconditions, and finding the bound host
//! again after a restart or `clusterctl move`.
//!
//! The binding lives in the host's `spec.consumerRef` and in the machine's annotation
//! [`HOST_ANNOTATION`] (`<namespace>/<host>`), never only in status, which `clusterctl move`
//! does not carry. A claim is one JSON Patch: `test /spec/consumerRef == null`, then `add`
//! consumerRef and the provisioning intent. The API server applies it atomically, so of two
//! machines racing for one host exactly one wins; the loser gets 422 ("test failed") and tries
//! the next host. Never a forced apply, which would silently take the host from its owner.

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::api::physical_host::{ConsumerRef, PhysicalHost, ProvisioningIntent};
use crate::api::{Beskar7Machine, GROUP};

/// The machine annotation that names its host, `<namespace>/<host>`.
pub const HOST_ANNOTATION: &str = "infrastructure.cluster.x-k8s.io/physicalhost";
/// The consumer kind a machine claims hosts as.
pub const CONSUMER_KIND: &str = "Beskar7Machine";

pub fn consumer_ref(machine: &str) -> ConsumerRef {
    ConsumerRef {
        api_group: GROUP.into(),
        kind: CONSUMER_KIND.into(),
        name: machine.into(),
    }
}

/// Whether `host` is claimed by the machine named `machine` (same namespace by construction).
pub fn claimed_by(host: &PhysicalHost, machine: &str) -> bool {
    host.spec
        .consumer_ref
        .as_ref()
        .is_some_and(|c| c.kind == CONSUMER_KIND && c.api_group == GROUP && c.name == machine)
}

/// The host name the machine's annotation names, when it is in the machine's namespace.
pub fn annotated_host(m: &Beskar7Machine) -> Option<String> {
    let value = m.annotations().get(HOST_ANNOTATION)?;
    let (ns, name) = value.split_once('/')?;
    (Some(ns) == m.namespace().as_deref() && !name.is_empty()).then(|| name.to_owned())
}

/// Whether a write failed only because its precondition did not hold (another machine won the
/// host, or the host changed hands meanwhile).
fn lost_race(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            s.code == 409 || (s.code == 422 && s.message.contains("test failed"))
        }
        _ => false,
    }
}

fn json_patch(ops: serde_json::Value) -> Patch<()> {
    // The ops are built here from known-good shapes; a failure is a programming error.
    Patch::Json(serde_json::from_value(ops).expect("a valid JSON Patch"))
}

/// Claims `host` for `machine` with the intent. `Ok(None)`: someone else holds it (or it is
/// being deleted), try another.
pub async fn claim(
    api: &Api<PhysicalHost>,
    host: &str,
    machine: &str,
    intent: &ProvisioningIntent,
) -> kube::Result<Option<PhysicalHost>> {
    let patch = json_patch(json!([
        {"op": "test", "path": "/spec/consumerRef", "value": null},
        {"op": "test", "path": "/metadata/deletionTimestamp", "value": null},
        {"op": "add", "path": "/spec/consumerRef", "value": consumer_ref(machine)},
        {"op": "add", "path": "/spec/provisioning", "value": intent},
    ]));
    match api.patch(host, &PatchParams::default(), &patch).await {
        Ok(h) => Ok(Some(h)),
        Err(e) if lost_race(&e) => Ok(None),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Releases `host` if `machine` still holds it: consumerRef and the provisioning intent go in
/// one patch, guarded by a test that the claim is still this machine's. Returns whether this
/// call released it (false: not ours, or gone).
pub async fn release(api: &Api<PhysicalHost>, host: &str, machine: &str) -> kube::Result<bool> {
    let patch = json_patch(json!([
        {"op": "test", "path": "/spec/consumerRef/kind", "value": CONSUMER_KIND},
        {"op": "test", "path": "/spec/consumerRef/name", "value": machine},
        {"op": "remove", "path": "/spec/consumerRef"},
        // add-then-remove: removes the intent whether or not it is there.
        {"op": "add", "path": "/spec/provisioning", "value": {}},
        {"op": "remove", "path": "/spec/provisioning"},
    ]));
    match api.patch(host, &PatchParams::default(), &patch).await {
        Ok(_) => Ok(true),
        Err(e) if lost_race(&e) => Ok(false),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sets (Some) or removes (None) the host annotation on the machine.
pub async fn annotate(
    api: &Api<Beskar7Machine>,
    m: &Beskar7Machine,
    host: Option<&str>,
) -> kube::Result<()> {
    let value = host.map(|h| format!("{}/{h}", m.namespace().unwrap_or_default()));
    if m.annotations().get(HOST_ANNOTATION) == value.as_ref() {
        return Ok(());
    }
    let body = json!({"metadata": {"annotations": {HOST_ANNOTATION: value}}});
    api.patch(&m.name_any(), &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map(drop)
}
