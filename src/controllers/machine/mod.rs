//! The Beskar7Machine controller: waits for the owner Machine, its Cluster and bootstrap data,
//! claims a fitting PhysicalHost with a precondition, mirrors the host's progress, and releases
//! the host on failure or deletion.
//!
//! Watch-driven: a Beskar7Machine change, a CAPI Machine change (its infrastructureRef or owner
//! reference), a Cluster change (pause, infrastructure) and a PhysicalHost change wake the
//! machines concerned, found in this controller's Beskar7Machine cache:
//! - the machine a host's consumerRef or a machine's host annotation names;
//! - when a host becomes Available and unclaimed, every machine of its namespace waiting with
//!   `NoHostAvailable`.
//!
//! The PhysicalHost watch is this controller's own (not shared with the host controller's
//! reflector: sharing needs kube's `unstable-runtime` feature). Host selection and the claim
//! read hosts from the API, not from a cache, so a stale cache can never cause a double claim.

pub mod host;
mod reconcile;
pub mod select;
pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use super::Context;
use super::physical_host::Scope;
use crate::api::capi::{Cluster, Machine};
use crate::api::physical_host::{HostState, PhysicalHost};
use crate::api::{Beskar7Machine, CLUSTER_NAME_LABEL, GROUP};

/// The finalizer that holds a deleted machine until its host is released.
pub const FINALIZER: &str = "beskar7machine.infrastructure.cluster.x-k8s.io";
/// The controller's name in metrics.
pub const CONTROLLER: &str = "beskar7machine";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeAPIError",
        }
    }
}

/// What every machine reconcile gets.
pub struct MachineContext {
    pub base: Arc<Context>,
    /// Only hosts with this watch-filter label are considered.
    pub watch_filter: Option<String>,
}

async fn run_one(m: Arc<Beskar7Machine>, ctx: Arc<MachineContext>) -> Result<Action, Error> {
    let timer = ctx.base.metrics.reconcile_started(CONTROLLER);
    let k = backoff_key(&m);
    let result = reconcile::reconcile(m, ctx.clone()).await;
    if result.is_ok() {
        ctx.base.reset_backoff(&k);
    }
    ctx.base
        .metrics
        .reconcile_finished(CONTROLLER, result.is_ok());
    tracing::debug!(
        elapsed_ms = timer.elapsed().as_millis() as u64,
        ok = result.is_ok(),
        "reconciled"
    );
    result
}

fn backoff_key(m: &Beskar7Machine) -> String {
    format!(
        "{CONTROLLER}/{}/{}",
        m.namespace().unwrap_or_default(),
        m.name_any()
    )
}

fn error_policy(m: Arc<Beskar7Machine>, error: &Error, ctx: Arc<MachineContext>) -> Action {
    let k = backoff_key(&m);
    tracing::warn!(machine = %k, error = %error, "reconcile failed");
    ctx.base
        .metrics
        .reconcile_error(CONTROLLER, error.category());
    Action::requeue(ctx.base.backoff(&k))
}

fn in_ns(m: &Beskar7Machine, ns: Option<&str>) -> bool {
    m.namespace().as_deref() == ns
}

/// The machines a host event concerns.
fn machines_for_host(
    store: &Store<Beskar7Machine>,
    h: &PhysicalHost,
) -> Vec<ObjectRef<Beskar7Machine>> {
    let ns = h.namespace();
    let annotation = format!("{}/{}", ns.as_deref().unwrap_or_default(), h.name_any());
    let claimer = h
        .spec
        .consumer_ref
        .as_ref()
        .filter(|c| c.kind == host::CONSUMER_KIND && c.api_group == GROUP)
        .map(|c| c.name.clone());
    let free = h.spec.consumer_ref.is_none()
        && h.metadata.deletion_timestamp.is_none()
        && h.state() == Some(HostState::Available);
    store
        .state()
        .into_iter()
        .filter(|m| in_ns(m, ns.as_deref()))
        .filter(|m| {
            claimer.as_deref() == Some(m.name_any().as_str())
                || m.annotations().get(host::HOST_ANNOTATION) == Some(&annotation)
                || (free && waiting_for_host(m))
        })
        .map(|m| ObjectRef::from_obj(&*m))
        .collect()
}

/// A machine that found no host the last time it looked.
fn waiting_for_host(m: &Beskar7Machine) -> bool {
    m.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == status::HOST_ASSOCIATED && c.reason == status::NO_HOST_AVAILABLE)
    })
}

/// The Beskar7Machine a CAPI Machine points at (infrastructureRef), and any that it owns.
fn machines_for_machine(
    store: &Store<Beskar7Machine>,
    machine: &Machine,
) -> Vec<ObjectRef<Beskar7Machine>> {
    let ns = machine.metadata.namespace.clone().unwrap_or_default();
    let name = machine.metadata.name.clone().unwrap_or_default();
    let mut out: Vec<ObjectRef<Beskar7Machine>> = Vec::new();
    if let Some(r) = &machine.spec.infrastructure_ref
        && r.kind == "Beskar7Machine"
        && r.api_group == GROUP
    {
        out.push(ObjectRef::new(&r.name).within(&ns));
    }
    out.extend(
        store
            .state()
            .into_iter()
            .filter(|m| in_ns(m, Some(&ns)))
            .filter(|m| {
                crate::api::capi::machine_owner(&m.metadata).is_some_and(|o| o.name == name)
            })
            .map(|m| ObjectRef::from_obj(&*m)),
    );
    out
}

/// The Beskar7Machines of a Cluster (by the cluster-name label CAPI sets).
fn machines_for_cluster(
    store: &Store<Beskar7Machine>,
    cluster: &Cluster,
) -> Vec<ObjectRef<Beskar7Machine>> {
    let ns = cluster.metadata.namespace.clone();
    let name = cluster.metadata.name.clone().unwrap_or_default();
    store
        .state()
        .into_iter()
        .filter(|m| in_ns(m, ns.as_deref()))
        .filter(|m| m.labels().get(CLUSTER_NAME_LABEL) == Some(&name))
        .map(|m| ObjectRef::from_obj(&*m))
        .collect()
}

/// Runs the controller until `shutdown`; `ready` turns true once the machine cache is filled.
pub async fn run(
    base: Arc<Context>,
    scope: Scope,
    concurrency: u16,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = base.client.clone();
    let ns = scope.namespace.as_deref();
    let config = super::watch_config(scope.watch_filter.as_deref());
    let controller = Controller::new(
        super::scoped_api::<Beskar7Machine>(&client, ns),
        config.clone(),
    );
    let store = controller.store();
    super::mark_ready_when_synced(store.clone(), ready, "Beskar7Machine");
    let (s1, s2, s3) = (store.clone(), store.clone(), store);
    let ctx = Arc::new(MachineContext {
        base,
        watch_filter: scope.watch_filter.clone(),
    });
    controller
        .watches(
            super::scoped_api::<PhysicalHost>(&client, ns),
            config.clone(),
            move |h| machines_for_host(&s1, &h),
        )
        .watches(
            super::scoped_api::<Machine>(&client, ns),
            config.clone(),
            move |m| machines_for_machine(&s2, &m),
        )
        .watches(
            super::scoped_api::<Cluster>(&client, ns),
            config,
            move |c| machines_for_cluster(&s3, &c),
        )
        .with_config(
            controller::Config::default()
                .concurrency(concurrency)
                .debounce(Duration::from_millis(100)),
        )
        .graceful_shutdown_on(shutdown)
        .run(run_one, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}
