//! One reconcile of a Beskar7Machine, in the contract's order (capi-contract.md §2):
//! owner Machine → Cluster → pause → finalizer → the bound host (mirror its progress) →
//! Cluster infrastructure provisioned → bootstrap data → pick and claim a host.
//! Deletion releases the host and waits for it to leave Deprovisioning, bounded by the
//! deprovision timeout; a missing owner, Cluster or host never blocks it.
//!
//! Every step is idempotent: the claim is found again by the annotation or the host's
//! consumerRef (read fresh from the API, never from a cache, so a claim made just before a
//! crash is seen), and the claim itself is a precondition patch.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::host::{self, claimed_by};
use super::select::{self, Request};
use super::status::{self, Report, no, yes};
use super::{Error, FINALIZER, MachineContext};
use crate::api::capi::{Cluster, Machine, has_paused_annotation, machine_owner};
use crate::api::physical_host::{HostState, PhysicalHost, ProvisioningIntent};
use crate::api::{
    Beskar7Machine, CLUSTER_NAME_LABEL, Initialization, MachineAddress, MachineAddressType,
    MachinePhase, ProviderId, RejectedHost, ZONE_LABEL,
};
use crate::controllers::physical_host::conditions::state_name;

/// How much longer than the deprovision timeout a deleted machine waits for its host.
const DEPROVISION_GRACE: Duration = Duration::from_secs(30);

/// At most this many rejected hosts are remembered (the oldest is forgotten first).
const MAX_REJECTED: usize = 16;

struct Apis {
    machines: Api<Beskar7Machine>,
    hosts: Api<PhysicalHost>,
}

pub async fn reconcile(m: Arc<Beskar7Machine>, ctx: Arc<MachineContext>) -> Result<Action, Error> {
    let ns = m.namespace().unwrap_or_default();
    let client = ctx.base.client.clone();
    let apis = Apis {
        machines: Api::namespaced(client.clone(), &ns),
        hosts: Api::namespaced(client.clone(), &ns),
    };
    let deleting = m.meta().deletion_timestamp.is_some();
    let has_finalizer = m.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !has_finalizer {
        return Ok(Action::await_change());
    }

    // The machine's own pause annotation needs no lookup: honour it before anything else.
    if has_paused_annotation(&m.metadata) {
        let why = "the Beskar7Machine has the cluster.x-k8s.io/paused annotation";
        status::apply(&apis.machines, &m, &status::paused(&m, why))
            .await
            .map_err(Error::Kube)?;
        return Ok(Action::await_change());
    }

    // 1. The owner Machine, matched by group and kind (not UID: it changes on a move).
    let owner = match machine_owner(&m.metadata) {
        Some(o) => Api::<Machine>::namespaced(client.clone(), &ns)
            .get_opt(&o.name)
            .await
            .map_err(Error::Kube)?
            .ok_or_else(|| format!("the owner Machine {} does not exist (yet)", o.name)),
        None => Err("no owner reference to a cluster.x-k8s.io Machine yet".to_owned()),
    };
    let machine = match owner {
        Ok(machine) => machine,
        Err(_) if deleting => return cleanup(&m, &ctx, &apis, None).await,
        Err(why) => {
            let r = Report::waiting(status::WAITING_FOR_MACHINE_OWNER, why);
            return report(&apis, &m, &r, |_| {}).await;
        }
    };

    // 2. The Cluster (for pause and its infrastructure).
    let cluster_name = machine
        .spec
        .cluster_name
        .clone()
        .or_else(|| m.labels().get(CLUSTER_NAME_LABEL).cloned());
    let cluster = match &cluster_name {
        Some(c) => Api::<Cluster>::namespaced(client.clone(), &ns)
            .get_opt(c)
            .await
            .map_err(Error::Kube)?,
        None => None,
    };

    // 3. Pause: change nothing but the Paused condition (clusterctl move relies on it).
    if cluster.as_ref().is_some_and(Cluster::is_paused) {
        let why = "the Cluster is paused (spec.paused or the cluster.x-k8s.io/paused annotation)";
        status::apply(&apis.machines, &m, &status::paused(&m, why))
            .await
            .map_err(Error::Kube)?;
        return Ok(Action::await_change());
    }
    if deleting {
        return cleanup(&m, &ctx, &apis, Some(&machine)).await;
    }
    let Some(cluster) = cluster else {
        let why = match cluster_name {
            Some(c) => format!("the Cluster {c} does not exist (yet)"),
            None => "the Machine names no cluster (spec.clusterName)".to_owned(),
        };
        let r = Report::waiting(status::WAITING_FOR_CLUSTER, why);
        return report(&apis, &m, &r, |_| {}).await;
    };

    // 4. The finalizer, before anything is claimed.
    if !has_finalizer {
        add_finalizer(&apis.machines, &m).await?;
    }

    // 5. A host already claimed: mirror it.
    let (bound, hosts) = find_bound(&apis, &ctx, &m).await?;
    if let Some(h) = bound {
        // A claim found by its consumerRef alone (a crash between the claim and the
        // annotation, or a move that lost it): restore the annotation first.
        host::annotate(&apis.machines, &m, Some(&h.name_any()))
            .await
            .map_err(Error::Kube)?;
        return mirror(&m, &ctx, &apis, &machine, &h).await;
    }
    if m.is_provisioned() {
        // Never flips back: the host went away under a running machine.
        let r = Report {
            phase: MachinePhase::Provisioned,
            associated: no(status::HOST_DELETED, "the claimed host no longer exists"),
            provisioned: yes(status::PROVISIONED),
            ready: Some(no(
                status::HOST_DELETED,
                "the claimed host no longer exists",
            )),
        };
        return report(&apis, &m, &r, |_| {}).await;
    }
    if host::annotated_host(&m).is_some() {
        // The annotated host is gone or no longer ours: forget it before claiming anew.
        host::annotate(&apis.machines, &m, None)
            .await
            .map_err(Error::Kube)?;
    }

    // 6. Waits before a claim.
    if !cluster.infrastructure_provisioned() {
        let r = Report::waiting(
            status::WAITING_FOR_CLUSTER_INFRASTRUCTURE,
            format!(
                "the Cluster {} infrastructure is not provisioned yet (status.initialization.infrastructureProvisioned)",
                cluster.name_any()
            ),
        );
        return report(&apis, &m, &r, |_| {}).await;
    }
    let Some(secret) = machine.bootstrap_data_secret_name() else {
        let r = Report::waiting(
            status::WAITING_FOR_BOOTSTRAP_DATA,
            format!(
                "the Machine {} has no spec.bootstrap.dataSecretName yet",
                machine.name_any()
            ),
        );
        return report(&apis, &m, &r, |_| {}).await;
    };

    // 7. Pick and claim.
    let req = Request {
        selector: m.spec.host_selector.as_ref(),
        failure_domain: machine.spec.failure_domain.as_deref(),
        requirements: m.spec.hardware_requirements.as_ref(),
        rejected: m
            .status
            .as_ref()
            .map(|s| s.rejected_hosts.as_slice())
            .unwrap_or_default(),
    };
    let name = m.name_any();
    let why_none = match select::candidates(&hosts, &req, &name) {
        Ok(candidates) => {
            for h in candidates {
                let intent = intent(&m, &h.name_any(), secret);
                if let Some(claimed) = host::claim(&apis.hosts, &h.name_any(), &name, &intent)
                    .await
                    .map_err(Error::Kube)?
                {
                    return claimed_now(&m, &ctx, &apis, &machine, &claimed).await;
                }
                tracing::debug!(host = %h.name_any(), "lost the race for a host, trying the next");
            }
            "every host that fits was claimed by another machine meanwhile".to_owned()
        }
        Err(why) => why,
    };
    let r = match m.status.as_ref().and_then(|s| {
        (s.phase == Some(MachinePhase::Failed))
            .then(|| s.rejected_hosts.last())
            .flatten()
    }) {
        // The last attempt failed and no other host fits: Failed, naming the failure.
        Some(last) => Report {
            phase: MachinePhase::Failed,
            associated: no(status::NO_HOST_AVAILABLE, why_none.clone()),
            provisioned: no(status::NOT_ASSOCIATED, "no host is claimed"),
            ready: Some((
                false,
                failure_reason(&last.reason),
                format!(
                    "the attempt on host {} failed: {}; {why_none}",
                    last.name,
                    last.message.as_deref().unwrap_or(&last.reason)
                ),
            )),
        },
        None => Report::waiting(status::NO_HOST_AVAILABLE, why_none),
    };
    report(&apis, &m, &r, |_| {}).await
}

/// The reasons a failed attempt may name, as 'static strings (condition reasons are bounded).
fn failure_reason(reason: &str) -> &'static str {
    match reason {
        "RequirementsNotMet" => "RequirementsNotMet",
        "InspectionTimedOut" => "InspectionTimedOut",
        "DeploymentTimedOut" => "DeploymentTimedOut",
        "ProvisionFailed" => "ProvisionFailed",
        _ => "AttemptFailed",
    }
}

/// The provisioning intent the host carries for this machine.
fn intent(m: &Beskar7Machine, host: &str, secret: &str) -> ProvisioningIntent {
    let s = &m.spec;
    ProvisioningIntent {
        images: s.images.clone(),
        handoff: s.effective_handoff(),
        boot_mode: s.boot_mode,
        root_device_hints: s.root_device_hints.clone(),
        static_ip: s.static_ip.clone(),
        hardware_requirements: s.hardware_requirements.clone(),
        provider_id: ProviderId::new(m.namespace().unwrap_or_default(), host, m.name_any())
            .to_string(),
        bootstrap_data_secret_name: secret.to_owned(),
    }
}

/// The host this machine holds, read from the API (not a cache): the annotated one if it is
/// still ours, else any host whose consumerRef names this machine (a claim made just before a
/// crash, before the annotation). Also returns the namespace's hosts when it listed them.
async fn find_bound(
    apis: &Apis,
    ctx: &MachineContext,
    m: &Beskar7Machine,
) -> Result<(Option<PhysicalHost>, Vec<PhysicalHost>), Error> {
    let name = m.name_any();
    if let Some(h) = host::annotated_host(m)
        && let Some(h) = apis.hosts.get_opt(&h).await.map_err(Error::Kube)?
        && claimed_by(&h, &name)
    {
        return Ok((Some(h), Vec::new()));
    }
    let mut lp = ListParams::default();
    if let Some(v) = &ctx.watch_filter {
        lp = lp.labels(&format!(
            "{}={v}",
            crate::controllers::physical_host::WATCH_FILTER_LABEL
        ));
    }
    let hosts = apis.hosts.list(&lp).await.map_err(Error::Kube)?.items;
    let bound = hosts.iter().find(|h| claimed_by(h, &name)).cloned();
    Ok((bound, hosts))
}

/// Just claimed: annotate the machine (the binding `clusterctl move` carries), report, and say
/// so in an event.
async fn claimed_now(
    m: &Beskar7Machine,
    ctx: &MachineContext,
    apis: &Apis,
    machine: &Machine,
    h: &PhysicalHost,
) -> Result<Action, Error> {
    let host_name = h.name_any();
    tracing::info!(host = %host_name, "claimed a host");
    host::annotate(&apis.machines, m, Some(&host_name))
        .await
        .map_err(Error::Kube)?;
    publish(
        ctx,
        m,
        EventType::Normal,
        "HostClaimed",
        format!("claimed PhysicalHost {host_name}"),
    )
    .await;
    mirror(m, ctx, apis, machine, h).await
}

/// Whether the host reports a failed attempt for the current claim (see docs/api.md, "Attempt
/// outcomes"): `status.lastFailure` of the current attempt (`attemptID == status.attempt.id`)
/// for the claim's `spec.provisioning.providerID`. Anything else is history.
fn failed_attempt(h: &PhysicalHost) -> Option<(String, String)> {
    let status = h.status.as_ref()?;
    let failure = status.last_failure.as_ref()?;
    let current = status.attempt.as_ref()?.id.as_deref();
    let claim = h.spec.provisioning.as_ref()?.provider_id.as_str();
    (!failure.reason.is_empty()
        && current.is_some()
        && failure.attempt_id.as_deref() == current
        && failure.provider_id.as_deref() == Some(claim))
    .then(|| {
        (
            failure.reason.clone(),
            failure.message.clone().unwrap_or_default(),
        )
    })
}

/// Mirrors the claimed host's progress into the machine.
async fn mirror(
    m: &Beskar7Machine,
    ctx: &MachineContext,
    apis: &Apis,
    _machine: &Machine,
    h: &PhysicalHost,
) -> Result<Action, Error> {
    let host_name = h.name_any();
    let zone = h.labels().get(ZONE_LABEL).cloned();
    let set_zone = |s: &mut crate::api::Beskar7MachineStatus| s.failure_domain = zone.clone();

    if !m.is_provisioned()
        && let Some((reason, message)) = failed_attempt(h)
    {
        return attempt_failed(m, ctx, apis, h, reason, message).await;
    }

    let state = h.state();
    let host_problem = h
        .status
        .as_ref()
        .and_then(|s| s.error_message.clone())
        .map(|e| format!("; host: {e}"))
        .unwrap_or_default();
    if state == Some(HostState::Provisioned) || m.is_provisioned() {
        // providerID first: CAPI stalls a provisioned machine without one.
        let pid = h
            .spec
            .provisioning
            .as_ref()
            .map(|p| p.provider_id.clone())
            .unwrap_or_else(|| {
                ProviderId::new(m.namespace().unwrap_or_default(), &host_name, m.name_any())
                    .to_string()
            });
        if m.spec.provider_id.is_none() {
            let body = json!({"spec": {"providerID": pid}});
            apis.machines
                .patch(&m.name_any(), &PatchParams::default(), &Patch::Merge(&body))
                .await
                .map_err(Error::Kube)?;
        }
        let addresses = addresses(h, m);
        let r = Report {
            phase: MachinePhase::Provisioned,
            associated: yes(status::ASSOCIATED),
            provisioned: yes(status::PROVISIONED),
            ready: None,
        };
        let wrote_before = m.is_provisioned();
        let out = report(apis, m, &r, |s| {
            s.initialization = Some(Initialization {
                provisioned: Some(true),
            });
            s.addresses = addresses;
            set_zone(s);
        })
        .await;
        if !wrote_before {
            publish(
                ctx,
                m,
                EventType::Normal,
                "Provisioned",
                format!("PhysicalHost {host_name} is provisioned"),
            )
            .await;
        }
        return out;
    }
    let (phase, provisioned) = match state {
        Some(HostState::Inspecting) => (
            MachinePhase::Inspecting,
            no(
                status::INSPECTING,
                format!("host {host_name} is inspecting{host_problem}"),
            ),
        ),
        Some(HostState::Deploying) => (
            MachinePhase::Deploying,
            no(
                status::DEPLOYING,
                format!("host {host_name} is deploying{host_problem}"),
            ),
        ),
        other => (
            MachinePhase::Associated,
            no(
                status::ASSOCIATED,
                format!(
                    "host {host_name} is {}{host_problem}",
                    other.map(state_name).unwrap_or("new")
                ),
            ),
        ),
    };
    let r = Report {
        phase,
        associated: yes(status::ASSOCIATED),
        provisioned,
        ready: None,
    };
    report(apis, m, &r, set_zone).await
}

/// A failed attempt: remember the host (first, so a crash cannot forget it), say why, release
/// the host, and look for another at once.
async fn attempt_failed(
    m: &Beskar7Machine,
    ctx: &MachineContext,
    apis: &Apis,
    h: &PhysicalHost,
    reason: String,
    message: String,
) -> Result<Action, Error> {
    let host_name = h.name_any();
    let rejected = RejectedHost {
        name: host_name.clone(),
        reason: crate::controllers::conditions::truncate(&reason, 64),
        message: (!message.is_empty())
            .then(|| crate::controllers::conditions::truncate(&message, 1024)),
    };
    let text = format!(
        "the attempt on host {host_name} failed ({reason}){}; releasing it and looking for another host",
        if message.is_empty() {
            String::new()
        } else {
            format!(": {message}")
        }
    );
    let r = Report {
        phase: MachinePhase::Failed,
        associated: no(failure_reason(&reason), text.clone()),
        provisioned: no(failure_reason(&reason), text.clone()),
        ready: Some((false, failure_reason(&reason), text.clone())),
    };
    let desired = status::desired(m, &r, |s| {
        s.rejected_hosts.retain(|x| x.name != host_name);
        s.rejected_hosts.push(rejected);
        let over = s.rejected_hosts.len().saturating_sub(MAX_REJECTED);
        s.rejected_hosts.drain(..over);
        s.failure_domain = None;
        s.addresses.clear();
    });
    status::apply(&apis.machines, m, &desired)
        .await
        .map_err(Error::Kube)?;
    publish(ctx, m, EventType::Warning, failure_reason(&reason), text).await;
    host::release(&apis.hosts, &host_name, &m.name_any())
        .await
        .map_err(Error::Kube)?;
    // The machine's own status write above wakes the next reconcile, which picks another host;
    // the short requeue only covers a write that changed nothing.
    Ok(Action::requeue(Duration::from_secs(1)))
}

/// The host's addresses: the agent-reported NIC addresses (InternalIP) and the static IP.
fn addresses(h: &PhysicalHost, m: &Beskar7Machine) -> Vec<MachineAddress> {
    let mut out: Vec<String> = Vec::new();
    if let Some(ip) = m
        .spec
        .static_ip
        .as_deref()
        .and_then(|s| s.split(':').next())
    {
        out.push(ip.to_owned());
    }
    let nics = h
        .status
        .as_ref()
        .and_then(|s| s.inspection.as_ref())
        .map(|i| i.nics.as_slice())
        .unwrap_or_default();
    for ip in nics.iter().flat_map(|n| n.ip_addresses.iter()) {
        let ip = ip.split('/').next().unwrap_or(ip);
        if !ip.is_empty() && !out.iter().any(|o| o == ip) {
            out.push(ip.to_owned());
        }
    }
    let mut addrs: Vec<MachineAddress> = out
        .into_iter()
        .take(31)
        .map(|address| MachineAddress {
            type_: MachineAddressType::InternalIp,
            address,
        })
        .collect();
    addrs.push(MachineAddress {
        type_: MachineAddressType::Hostname,
        address: m.name_any(),
    });
    addrs
}

/// Deletion: release the host, wait until it has left Deprovisioning (Available or Error,
/// claimed by someone else, or gone), bounded by the deprovision timeout; then drop the
/// finalizer.
async fn cleanup(
    m: &Beskar7Machine,
    ctx: &MachineContext,
    apis: &Apis,
    _machine: Option<&Machine>,
) -> Result<Action, Error> {
    let name = m.name_any();
    let (bound, _) = find_bound(apis, ctx, m).await?;
    let deadline_left = {
        let since = m
            .meta()
            .deletion_timestamp
            .as_ref()
            .map(|t| {
                k8s_openapi::jiff::Timestamp::now()
                    .duration_since(t.0)
                    .unsigned_abs()
            })
            .unwrap_or_default();
        // The host controller times the deprovision out into Error after the same timeout,
        // counted from when the host entered Deprovisioning (a little after this deletion);
        // the grace lets that happen first, so this bound is only a backstop.
        (ctx.base.settings.deprovision_timeout + DEPROVISION_GRACE).saturating_sub(since)
    };
    let deprovisioning = |msg: String| Report {
        phase: MachinePhase::Deprovisioning,
        associated: no(status::DEPROVISIONING, msg.clone()),
        provisioned: no(status::DEPROVISIONING, msg.clone()),
        ready: Some(no(status::DELETING, msg)),
    };
    if let Some(h) = bound {
        let host_name = h.name_any();
        host::release(&apis.hosts, &host_name, &name)
            .await
            .map_err(Error::Kube)?;
        publish(
            ctx,
            m,
            EventType::Normal,
            "HostReleased",
            format!("released PhysicalHost {host_name}"),
        )
        .await;
        let r = deprovisioning(format!(
            "released host {host_name}; waiting for it to deprovision"
        ));
        report(apis, m, &r, |_| {}).await?;
        return Ok(Action::requeue(deadline_left.max(Duration::from_secs(1))));
    }
    // Released: wait while the annotated host is still on its way back.
    if let Some(host_name) = host::annotated_host(m)
        && let Some(h) = apis.hosts.get_opt(&host_name).await.map_err(Error::Kube)?
        && h.spec.consumer_ref.is_none()
        && h.meta().deletion_timestamp.is_none()
        && matches!(
            h.state(),
            Some(
                HostState::Deprovisioning
                    | HostState::InUse
                    | HostState::Inspecting
                    | HostState::Deploying
                    | HostState::Provisioned
            )
        )
    {
        if !deadline_left.is_zero() {
            let r = deprovisioning(format!(
                "waiting for host {host_name} to deprovision (it is {})",
                h.state().map(state_name).unwrap_or("new")
            ));
            report(apis, m, &r, |_| {}).await?;
            return Ok(Action::requeue(deadline_left));
        }
        publish(
            ctx,
            m,
            EventType::Warning,
            "DeprovisionTimedOut",
            format!(
                "host {host_name} did not finish deprovisioning within the deprovision timeout; deleting anyway"
            ),
        )
        .await;
    }
    remove_finalizer(&apis.machines, m).await?;
    Ok(Action::await_change())
}

/// Writes the status for `r` (plus `edit`) and returns the requeue for a settled step: the
/// watches wake the machine on every change that matters; the resync is only a backstop.
async fn report(
    apis: &Apis,
    m: &Beskar7Machine,
    r: &Report,
    edit: impl FnOnce(&mut crate::api::Beskar7MachineStatus),
) -> Result<Action, Error> {
    let desired = status::desired(m, r, edit);
    status::apply(&apis.machines, m, &desired)
        .await
        .map_err(Error::Kube)?;
    Ok(Action::requeue(Duration::from_secs(600)))
}

async fn add_finalizer(api: &Api<Beskar7Machine>, m: &Beskar7Machine) -> Result<(), Error> {
    let ops = match &m.meta().finalizers {
        None => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ]),
        Some(list) => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": list},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ]),
    };
    let patch: Patch<()> = Patch::Json(serde_json::from_value(ops).expect("a valid JSON Patch"));
    api.patch(&m.name_any(), &PatchParams::default(), &patch)
        .await
        .map_err(Error::Kube)?;
    Ok(())
}

async fn remove_finalizer(api: &Api<Beskar7Machine>, m: &Beskar7Machine) -> Result<(), Error> {
    let Some(i) = m.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let ops = json!([
        {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": FINALIZER},
        {"op": "remove", "path": format!("/metadata/finalizers/{i}")},
    ]);
    let patch: Patch<()> = Patch::Json(serde_json::from_value(ops).expect("a valid JSON Patch"));
    match api
        .patch(&m.name_any(), &PatchParams::default(), &patch)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// An event on the machine: reasons and messages only, never bootstrap data. A failed publish
/// is logged, never fatal.
async fn publish(
    ctx: &MachineContext,
    m: &Beskar7Machine,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(crate::controllers::conditions::truncate(&note, 1000)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.base.recorder.publish(&ev, &m.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish an event");
    }
}
