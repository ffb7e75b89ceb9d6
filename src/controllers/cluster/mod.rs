//! The Beskar7Cluster controller: Cluster API's InfraCluster for bare metal.
//!
//! - Waits for its owner Cluster (an ownerRef of group `cluster.x-k8s.io`, kind `Cluster`; not
//!   necessarily a controller ref since CAPI 1.13).
//! - Skips objects with the `cluster.x-k8s.io/managed-by` annotation (externally managed).
//! - Honours pause (`Cluster.spec.paused`, the `cluster.x-k8s.io/paused` annotation) with a
//!   `Paused` condition, changing nothing else.
//! - Endpoint: `spec.controlPlaneEndpoint` when the user set it; otherwise the Cluster's
//!   `spec.controlPlaneEndpoint` (port 6443 when it has none), written back into the
//!   Beskar7Cluster's spec as CAPT does, because CAPI reads the endpoint from the InfraCluster's
//!   spec. `status.initialization.provisioned = true` once the endpoint is known.
//! - `status.failureDomains`: one entry per distinct `topology.kubernetes.io/zone` label of the
//!   namespace's PhysicalHosts, `controlPlane: true`; a host change re-reconciles the namespace's
//!   Beskar7Clusters.
//!
//! Nothing outside Kubernetes is touched, so there is no finalizer.

mod reconcile;

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
use crate::api::Beskar7Cluster;
use crate::api::capi::Cluster;
use crate::api::physical_host::PhysicalHost;

/// The controller's name in metrics.
pub const CONTROLLER: &str = "beskar7cluster";
/// The annotation that marks an externally managed InfraCluster.
pub const MANAGED_BY_ANNOTATION: &str = "cluster.x-k8s.io/managed-by";

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

pub struct ClusterContext {
    pub base: Arc<Context>,
    pub watch_filter: Option<String>,
}

fn backoff_key(c: &Beskar7Cluster) -> String {
    format!(
        "{CONTROLLER}/{}/{}",
        c.namespace().unwrap_or_default(),
        c.name_any()
    )
}

async fn run_one(c: Arc<Beskar7Cluster>, ctx: Arc<ClusterContext>) -> Result<Action, Error> {
    let _timer = ctx.base.metrics.reconcile_started(CONTROLLER);
    let k = backoff_key(&c);
    let result = reconcile::reconcile(c, ctx.clone()).await;
    if result.is_ok() {
        ctx.base.reset_backoff(&k);
    }
    ctx.base
        .metrics
        .reconcile_finished(CONTROLLER, result.is_ok());
    result
}

fn error_policy(c: Arc<Beskar7Cluster>, error: &Error, ctx: Arc<ClusterContext>) -> Action {
    let k = backoff_key(&c);
    tracing::warn!(cluster = %k, error = %error, "reconcile failed");
    ctx.base
        .metrics
        .reconcile_error(CONTROLLER, error.category());
    Action::requeue(ctx.base.backoff(&k))
}

fn in_ns(store: &Store<Beskar7Cluster>, ns: Option<&str>) -> Vec<Arc<Beskar7Cluster>> {
    store
        .state()
        .into_iter()
        .filter(|c| c.namespace().as_deref() == ns)
        .collect()
}

/// Runs the controller until `shutdown`; `ready` turns true once its cache is filled.
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
        super::scoped_api::<Beskar7Cluster>(&client, ns),
        config.clone(),
    );
    let store = controller.store();
    super::mark_ready_when_synced(store.clone(), ready, "Beskar7Cluster");
    let (s1, s2) = (store.clone(), store);
    let ctx = Arc::new(ClusterContext {
        base,
        watch_filter: scope.watch_filter.clone(),
    });
    controller
        // Any host change may add or remove a zone: wake the namespace's clusters.
        .watches(
            super::scoped_api::<PhysicalHost>(&client, ns),
            config.clone(),
            move |h| {
                in_ns(&s1, h.namespace().as_deref())
                    .iter()
                    .map(|c| ObjectRef::from_obj(&**c))
                    .collect::<Vec<_>>()
            },
        )
        // A Cluster change (endpoint, pause) wakes the Beskar7Clusters it owns or references.
        .watches(
            super::scoped_api::<Cluster>(&client, ns),
            config,
            move |cl| {
                let name = cl.metadata.name.clone().unwrap_or_default();
                let infra = cl
                    .spec
                    .infrastructure_ref
                    .as_ref()
                    .filter(|r| r.kind == "Beskar7Cluster")
                    .map(|r| r.name.clone());
                in_ns(&s2, cl.metadata.namespace.as_deref())
                    .iter()
                    .filter(|c| {
                        Some(c.name_any()) == infra
                            || crate::api::capi::cluster_owner(&c.metadata)
                                .is_some_and(|o| o.name == name)
                    })
                    .map(|c| ObjectRef::from_obj(&**c))
                    .collect::<Vec<_>>()
            },
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
