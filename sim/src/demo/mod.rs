//! `beskar7-sim demo`: the first end-to-end demonstration. An in-memory API server, N simulated
//! servers (a Redfish BMC and a virtual host each), the real operator (`beskar7 manager`) as a
//! child process, and the Cluster API stand-in asking for a cluster of N machines. Progress is
//! printed as the operator makes it; the demo ends when every Machine is provisioned.
//!
//! Everything listens on 127.0.0.1; the image URLs are examples nobody downloads.

mod operator;
mod progress;

use crate::apiserver::{ApiServer, Config, Identity};
use crate::bmc::BmcConfig;
use crate::capi::CapiStandIn;
use crate::host::{Hardware, HostConfig, SimServer, mac_for};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use operator::locate as locate_operator;

/// Where the demo's objects live.
const NAMESPACE: &str = "demo";
const OPERATOR_NAMESPACE: &str = "beskar7-system";
const CLUSTER: &str = "demo";
const TEMPLATE: &str = "demo-machines";
const BMC_SECRET: &str = "bmc-credentials";
/// The sim BMCs' account (simulated credentials; never printed).
const BMC_USER: &str = "admin";
const BMC_PASSWORD: &str = "demo-password";

pub struct Options {
    pub hosts: u32,
    pub control_plane: u32,
    pub operator: Option<PathBuf>,
    pub kubeconfig: PathBuf,
    pub listen: SocketAddr,
    pub crds: Vec<PathBuf>,
    pub timeout: Duration,
    pub operator_log: PathBuf,
}

/// The CRD directories of the checkout this binary was built from: Beskar7's `crds/` and the
/// Cluster API CRDs in `../shared/fixtures/capi-crds/`.
pub fn default_crds() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    vec![root.join("crds"), root.join("../shared/fixtures/capi-crds")]
}

/// A duration like `300s`, `5m`, `1h`, `500ms`, or bare seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 300s, 5m or 1h"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?} is not a duration like 300s, 5m or 1h")),
    }
}

fn say(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// How the demo ended when it did not provision everything.
enum End {
    Interrupted,
    Failed(String),
}

/// Runs the demo. `Ok(())` when every Machine was provisioned; the operator child is stopped on
/// every path out.
pub async fn run(opts: Options) -> Result<(), String> {
    if opts.hosts == 0 {
        return Err("--hosts must be at least 1".into());
    }
    if opts.control_plane > opts.hosts {
        return Err(format!(
            "--control-plane {} is more than --hosts {}",
            opts.control_plane, opts.hosts
        ));
    }
    let binary = operator::locate(opts.operator.as_deref())?;
    let started = Instant::now();

    // The API server, with Beskar7's and Cluster API's CRDs.
    let api = ApiServer::new(Config::default()).map_err(|e| format!("API server: {e}"))?;
    for dir in &opts.crds {
        if !dir.is_dir() {
            return Err(format!(
                "CRD directory {} not found: run from a Beskar7 checkout or pass --crds DIR (crds/ and ../shared/fixtures/capi-crds/)",
                dir.display()
            ));
        }
        api.load_crds(dir)?;
    }
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api.clone().serve(listener, async {
        let _ = api_stopped.await;
    }));
    api.write_kubeconfig(&opts.kubeconfig, &url, Identity::admin())
        .map_err(|e| format!("cannot write {}: {e}", opts.kubeconfig.display()))?;
    say(format_args!("API server   {url}"));
    say(format_args!(
        "watch with   kubectl --kubeconfig {} -n {NAMESPACE} get ph,b7m -w",
        opts.kubeconfig.display()
    ));
    // The demo's own client goes through the router in-process: no socket, same server.
    let client = Client::new(api.router(), "default");
    setup_namespaces(&client).await?;

    let mut extra: Vec<String> = [
        "--operator-namespace",
        OPERATOR_NAMESPACE,
        "--namespace",
        NAMESPACE,
        // Short enough that a stuck demo says so well within --timeout.
        "--inspection-timeout",
        "60s",
        "--deployment-timeout",
        "120s",
        "--deprovision-timeout",
        "60s",
    ]
    .map(String::from)
    .to_vec();
    // Every server boots at once (the default is 20 at a time, which is right for a real
    // network's TFTP/HTTP servers but only slows a simulation down).
    extra.extend([
        "--max-concurrent-provisions".into(),
        opts.hosts.min(1000).to_string(),
    ]);
    let mut operator =
        operator::Operator::start(&binary, &opts.kubeconfig, &opts.operator_log, &extra).await?;
    say(format_args!(
        "operator     {} manager (pid {}), log {}",
        binary.display(),
        operator.pid,
        opts.operator_log.display()
    ));

    let boot_url = operator.boot_url.clone();
    let outcome = tokio::select! {
        r = provision(&client, &opts, &boot_url, started) => r.map_err(End::Failed),
        // A backstop: `provision` gives the precise timeout (what is stuck) first.
        _ = tokio::time::sleep(opts.timeout + Duration::from_secs(5)) => Err(End::Failed(format!(
            "timed out after {:?}", opts.timeout))),
        why = operator.exited() => Err(End::Failed(format!("the operator {why}"))),
        _ = interrupted() => Err(End::Interrupted),
    };
    let stopped = operator.stop().await;
    let _ = stop_api.send(());
    match outcome {
        Ok(()) => stopped,
        Err(End::Interrupted) => {
            say(format_args!("interrupted; the operator was stopped"));
            stopped
        }
        Err(End::Failed(why)) => Err(why),
    }
}

async fn setup_namespaces(client: &Client) -> Result<(), String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [NAMESPACE, OPERATOR_NAMESPACE] {
        let object: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).map_err(|e| e.to_string())?;
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .map_err(|e| format!("cannot create namespace {ns}: {e}"))?;
    }
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": BMC_SECRET},
        "stringData": {"username": BMC_USER, "password": BMC_PASSWORD},
    }))
    .map_err(|e| e.to_string())?;
    Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| format!("cannot create the BMC Secret: {e}"))?;
    Ok(())
}

/// Servers, hosts, the cluster and its machines; returns once every Machine is provisioned.
async fn provision(
    client: &Client,
    opts: &Options,
    boot_url: &str,
    started: Instant,
) -> Result<(), String> {
    // Virtual hosts whose DHCP points iPXE at the operator's boot listener; quick, but each
    // step still takes visible time.
    let mut config = HostConfig::new(boot_url);
    config.timing.poll_interval = Duration::from_millis(250);
    config.timing.work = Duration::from_millis(500);
    let bmc = BmcConfig {
        username: BMC_USER.into(),
        password: BMC_PASSWORD.into(),
        power_delay: Duration::from_millis(300),
        ..BmcConfig::default()
    };
    let width = opts.hosts.to_string().len().max(2);
    let mut servers = Vec::with_capacity(opts.hosts as usize);
    for i in 1..=opts.hosts {
        let name = format!("server-{i:0width$}");
        let server = SimServer::start(
            &name,
            Hardware::standard(i, &mac_for(i)),
            bmc.clone(),
            config.clone(),
        )
        .await?;
        servers.push((name, server));
    }

    let capi = CapiStandIn::new(client.clone(), NAMESPACE);
    let hosts = Api::namespaced_with(
        client.clone(),
        NAMESPACE,
        &progress::resource(
            "infrastructure.cluster.x-k8s.io",
            "v1beta1",
            "PhysicalHost",
            "physicalhosts",
        ),
    );
    let b7ms = Api::namespaced_with(
        client.clone(),
        NAMESPACE,
        &capi
            .infra("Beskar7Machine")
            .await
            .map_err(|e| format!("Beskar7Machine CRD: {e}"))?,
    );
    let mut tracker = progress::Progress::new(started);
    let want = opts.hosts as usize;
    let machines = capi.machines();
    // Boxed so it can be dropped (ending its borrow of the tracker) before `stuck` is asked.
    let mut watching = Box::pin(tracker.run(hosts.clone(), b7ms, machines, want));

    let setup = async {
        for (name, server) in &servers {
            // The BMC's root: the operator discovers the system from /redfish/v1.
            let address = server
                .redfish_url
                .split("/redfish")
                .next()
                .unwrap_or(&server.redfish_url);
            let host: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                "kind": "PhysicalHost",
                "metadata": {"name": name},
                "spec": {"redfishConnection": {"address": address, "credentialsSecretRef": BMC_SECRET}},
            }))
            .map_err(|e| e.to_string())?;
            hosts
                .create(&PostParams::default(), &host)
                .await
                .map_err(|e| format!("cannot create PhysicalHost {name}: {e}"))?;
        }
        tokio::spawn(capi.clone().run());
        // RFC 5737 documentation address: the workload cluster's endpoint is data here,
        // nothing connects to it.
        capi.create_cluster(CLUSTER, json!({}), Some(("192.0.2.10", 6443)))
            .await
            .map_err(|e| format!("cannot create the Cluster: {e}"))?;
        capi.create_template(
            TEMPLATE,
            json!({
                // Example URLs: the virtual hosts never download the kernel, initrd or image.
                "inspectionImageURL": "http://boot.example.com/beskar7-agent",
                "targetImageURL": "http://boot.example.com/images/ubuntu-24.04.raw",
                "targetImageDigest": format!("sha256:{}", "5e".repeat(32)),
                "handoff": "Image",
            }),
        )
        .await
        .map_err(|e| format!("cannot create the Beskar7MachineTemplate: {e}"))?;
        let names = capi
            .create_machines(
                CLUSTER,
                TEMPLATE,
                opts.hosts as usize,
                opts.control_plane as usize,
            )
            .await
            .map_err(|e| format!("cannot create the Machines: {e}"))?;
        say(format_args!(
            "{:>7.1}s  created {} PhysicalHosts, Cluster {CLUSTER}, {} Machines ({} control plane)",
            started.elapsed().as_secs_f64(),
            servers.len(),
            names.len(),
            opts.control_plane
        ));
        Ok::<_, String>(names)
    };
    // The watches run while the objects are created, so no transition is missed.
    let names = tokio::select! {
        names = setup => names?,
        _ = &mut watching => unreachable!("no Machine can be provisioned before it exists"),
    };
    let summary = match tokio::time::timeout(
        opts.timeout.saturating_sub(started.elapsed()),
        &mut watching,
    )
    .await
    {
        Ok(summary) => summary,
        Err(_) => {
            drop(watching);
            return Err(format!(
                "timed out after {:?}; not provisioned: {}",
                opts.timeout,
                tracker.stuck(&names)
            ));
        }
    };
    say(format_args!(
        "{}/{} machines provisioned in {:.1}s",
        summary.provisioned,
        want,
        summary.elapsed.as_secs_f64()
    ));
    if !summary.phases.is_empty() {
        let phases: Vec<String> = summary
            .phases
            .iter()
            .map(|(p, d)| format!("{p} {:.1}s", d.as_secs_f64()))
            .collect();
        say(format_args!(
            "mean time per host state: {}",
            phases.join(", ")
        ));
    }
    drop(servers);
    Ok(())
}

/// Ctrl-C (SIGINT), or a SIGTERM sent to the demo: stop the operator and leave cleanly.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
