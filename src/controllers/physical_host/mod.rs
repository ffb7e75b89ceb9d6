//! The PhysicalHost controller: the only component that talks to a BMC.
//!
//! Watches PhysicalHosts (optionally one namespace and a watch-filter label) and, metadata
//! only, Secrets: a change to a host's credentials or CA-bundle Secret wakes that host at once.
//! Secret contents are never cached; a reconcile reads them with a GET.

pub mod attempt;
mod bmc;
pub mod cleaning;
pub mod conditions;
mod credentials;
mod deprovision;
mod enroll;
pub mod reconcile;
pub mod slots;
pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use super::Context;
use crate::api::physical_host::PhysicalHost;

/// The finalizer that lets a deleted host be powered off first.
pub const FINALIZER: &str = "infrastructure.cluster.x-k8s.io/physicalhost";

/// The label CAPI's `--watch-filter` selects on.
pub const WATCH_FILTER_LABEL: &str = "cluster.x-k8s.io/watch-filter";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    /// A bounded label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeAPIError",
            Error::Finalizer(_) => "FinalizerError",
        }
    }
}

/// Which hosts this manager handles.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// Only hosts labelled `cluster.x-k8s.io/watch-filter=<value>`.
    pub watch_filter: Option<String>,
}

async fn reconcile(host: Arc<PhysicalHost>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile_started(reconcile::CONTROLLER);
    let ns = host.namespace().unwrap_or_default();
    let hosts: Api<PhysicalHost> = Api::namespaced(ctx.client.clone(), &ns);
    let c = ctx.clone();
    let result = finalizer(&hosts, FINALIZER, host, |event| async move {
        match event {
            finalizer::Event::Apply(h) => reconcile::apply(h, c).await,
            finalizer::Event::Cleanup(h) => reconcile::cleanup(h, c).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(Box::new(other)),
    });
    ctx.metrics
        .reconcile_finished(reconcile::CONTROLLER, result.is_ok());
    tracing::debug!(
        elapsed_ms = timer.elapsed().as_millis() as u64,
        ok = result.is_ok(),
        "reconciled"
    );
    result
}

/// Kubernetes API failures: retried with the per-host backoff.
fn error_policy(host: Arc<PhysicalHost>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(host = %reconcile::object_key(&host), error = %error, "reconcile failed");
    ctx.metrics
        .reconcile_error(reconcile::CONTROLLER, error.category());
    Action::requeue(ctx.backoff(&reconcile::object_key(&host)))
}

/// The controller over the hosts in `scope`, not yet running. Its reflector store
/// (`controller.store()`) is the PhysicalHost cache the callback servers share.
pub fn controller(client: kube::Client, scope: &Scope) -> Controller<PhysicalHost> {
    Controller::new(
        super::scoped_api::<PhysicalHost>(&client, scope.namespace.as_deref()),
        super::watch_config(scope.watch_filter.as_deref()),
    )
}

/// Runs `controller` (from [`controller()`]) until `shutdown` completes; `ready` turns true once
/// the host cache is filled.
pub async fn run(
    ctx: Arc<Context>,
    controller: Controller<PhysicalHost>,
    scope: Scope,
    concurrency: u16,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let secrets: Api<PartialObjectMeta<Secret>> = match &scope.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let store = controller.store();
    ctx.provisions.use_store(store.clone());
    // Hosts waiting for a provisioning slot are woken when one frees.
    let wakeups = ctx
        .provisions
        .take_wakeups()
        .map(|rx| rx.boxed())
        .unwrap_or_else(|| futures::stream::empty().boxed());
    let readiness = store.clone();
    tokio::spawn(async move {
        // kube-runtime 5's store readiness is a oneshot behind a mutex that remembers only the
        // last poller's waker; the controller's own runner also waits on it, so a single
        // `wait_until_ready().await` here may never be woken. Re-poll it instead.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), readiness.wait_until_ready())
                .await
            {
                Ok(Ok(())) => {
                    ready.store(true, Ordering::Relaxed);
                    tracing::info!("PhysicalHost cache synced");
                    return;
                }
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
    });
    // A Secret event names the hosts that reference it (from the host cache): the Secret's
    // data is neither watched nor cached.
    let mapper = move |secret: PartialObjectMeta<Secret>| {
        let name = secret.name_any();
        let ns = secret.namespace();
        store
            .state()
            .into_iter()
            .filter(|h| {
                let c = &h.spec.redfish_connection;
                h.namespace() == ns
                    && (c.credentials_secret_ref == name
                        || c.ca_bundle_secret_ref
                            .as_ref()
                            .is_some_and(|r| r.name == name))
            })
            .map(|h| ObjectRef::from_obj(&*h))
            .collect::<Vec<_>>()
    };
    controller
        .watches(secrets, watcher::Config::default().any_semantic(), mapper)
        .reconcile_on(wakeups)
        .with_config(
            controller::Config::default()
                .concurrency(concurrency)
                .debounce(Duration::from_millis(100)),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}
