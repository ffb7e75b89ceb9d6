//! `beskar7 manager`: connects to the API server, runs the controllers and the metrics/health
//! server, and shuts both down cleanly on SIGTERM or SIGINT.

mod callbacks;
pub mod config;
mod http;
mod telemetry;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::watch;

pub use config::{LogFormat, ManagerArgs};

use crate::controllers::{Context, Settings, cluster, machine, physical_host};
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig given and not in a cluster: {0}")]
    InferConfig(#[source] kube::config::InferConfigError),
    #[error("Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("signal handler: {0}")]
    Signal(#[source] std::io::Error),
    #[error(transparent)]
    Callbacks(#[from] callbacks::Error),
}

async fn client(args: &ManagerArgs) -> Result<kube::Client, Error> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let shown = path.display().to_string();
            let kc = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                path: shown.clone(),
                source,
            })?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|source| Error::Kubeconfig {
                    path: shown,
                    source,
                })?
        }
        None => kube::Config::infer().await.map_err(Error::InferConfig)?,
    };
    kube::Client::try_from(config).map_err(Error::Client)
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl Future<Output = ()>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}

/// Sets `all` once every flag is set (polled: readiness changes once per process).
fn ready_when_all(flags: Vec<Arc<AtomicBool>>, all: Arc<AtomicBool>) {
    use std::sync::atomic::Ordering;
    tokio::spawn(async move {
        while !flags.iter().all(|f| f.load(Ordering::Relaxed)) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        all.store(true, Ordering::Relaxed);
    });
}

/// Runs the manager until a signal; returns once the controllers and the server stopped.
pub async fn run(args: ManagerArgs) -> Result<(), Error> {
    telemetry::init(args.log_format);
    let signal = shutdown_signal()?;
    let client = client(&args).await?;
    // Without a callback URL no host could be provisioned: refuse to start.
    if args.callback_url.is_none() {
        return Err(callbacks::Error::NoCallbackUrl.into());
    }
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));

    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|source| Error::Listen {
            addr: args.metrics_addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: args.metrics_addr,
        source,
    })?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let server = axum::serve(
        listener,
        http::router(http::AppState {
            metrics: metrics.clone(),
            ready: ready.clone(),
        }),
    )
    .with_graceful_shutdown(stopped());

    let listeners = callbacks::bind_listeners(&args).await?;
    let token_key = callbacks::token_key(&client, &args).await?;

    let settings = Settings {
        deprovision_timeout: args.deprovision_timeout,
        resync_interval: args.resync_interval,
        inspection_timeout: args.inspection_timeout,
        deployment_timeout: args.deployment_timeout,
        max_concurrent_provisions: args.max_concurrent_provisions,
        clean_image_url: args.clean_image_url.clone(),
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings,
        metrics,
        token_key.clone(),
    ));
    let scope = physical_host::Scope {
        namespace: args.namespace.clone(),
        watch_filter: args.watch_filter.clone(),
    };
    // One PhysicalHost cache, shared by the controller and the callback servers.
    let host_controller = physical_host::controller(client.clone(), &scope);
    let callback_servers = callbacks::serve(
        listeners,
        client,
        host_controller.store(),
        token_key,
        &args,
        stopped.clone(),
    )
    .await?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        watch_filter = args.watch_filter.as_deref().unwrap_or("(none)"),
        deprovision_timeout_s = args.deprovision_timeout.as_secs(),
        resync_interval_s = args.resync_interval.as_secs(),
        inspection_timeout_s = args.inspection_timeout.as_secs(),
        deployment_timeout_s = args.deployment_timeout.as_secs(),
        max_concurrent_provisions = args.max_concurrent_provisions,
        "beskar7 manager starting"
    );
    // One readiness flag per controller; /readyz turns 200 once every cache is synced.
    let flags: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
    ready_when_all(flags.clone(), ready);
    let n = args.max_concurrent_reconciles;
    let hosts = physical_host::run(
        ctx.clone(),
        host_controller,
        scope.clone(),
        n,
        flags[0].clone(),
        stopped(),
    );
    let machines = machine::run(ctx.clone(), scope.clone(), n, flags[1].clone(), stopped());
    let clusters = cluster::run(ctx, scope, n, flags[2].clone(), stopped());
    tokio::spawn(async move {
        signal.await;
        let _ = stop_tx.send(true);
    });
    let work = async { tokio::join!(hosts, machines, clusters, server, callback_servers) };
    // Shutdown is bounded: a reconcile stuck on a silent BMC, or a controller stopped before
    // its cache ever synced (kube-runtime then never finishes), must not outlive the pod's
    // termination grace period (30 s by default).
    let grace_over = {
        let stop = stopped();
        async move {
            stop.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    };
    tokio::select! {
        (_, _, _, served, ()) = work => {
            if let Err(e) = served {
                tracing::warn!(error = %e, "metrics server ended with an error");
            }
            tracing::info!("beskar7 manager stopped");
        }
        () = grace_over => {
            tracing::warn!(
                grace_s = SHUTDOWN_GRACE.as_secs(),
                "work still running after the shutdown grace period; stopping anyway"
            );
        }
    }
    Ok(())
}

/// How long running work may take to finish after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);
