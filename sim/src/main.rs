//! `beskar7-sim`: run pieces of the simulated datacenter from the command line.
#![forbid(unsafe_code)]

use beskar7_sim::apiserver::{ApiServer, Config, Identity};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "beskar7-sim",
    version,
    about = "The simulated datacenter Beskar7 is tested and demonstrated in"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve an in-memory Kubernetes API server until interrupted.
    Apiserver(ApiserverArgs),
    /// Benchmark the API server: create, list, and watch fan-out over loopback HTTP.
    BenchApiserver(BenchArgs),
    /// Serve one simulated Redfish BMC until interrupted.
    Bmc(BmcArgs),
    /// The end-to-end demo: N simulated servers, the real operator, a Cluster API cluster of N
    /// machines; exits 0 once every machine is provisioned.
    Demo(DemoArgs),
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Simulated servers, and Machines in the cluster.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    hosts: u32,
    /// How many of the Machines are control-plane Machines.
    #[arg(long, default_value_t = 1)]
    control_plane: u32,
    /// The `beskar7` binary (default: next to this executable).
    #[arg(long)]
    operator: Option<PathBuf>,
    /// Write an admin kubeconfig for the demo's API server here.
    #[arg(long, default_value = "/tmp/beskar7-demo.kubeconfig")]
    kubeconfig: PathBuf,
    /// The API server's address (loopback only); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// CRD directory to load (repeatable; default: crds/ and ../shared/fixtures/capi-crds/ of
    /// the checkout this binary was built from).
    #[arg(long = "crds", value_name = "DIR")]
    crds: Vec<PathBuf>,
    /// Give up (exit 1) when the machines are not all provisioned by then: 300s, 5m, 1h.
    #[arg(long, default_value = "5m", value_parser = beskar7_sim::demo::parse_duration)]
    timeout: std::time::Duration,
    /// Where the operator's log goes.
    #[arg(long, default_value = "/tmp/beskar7-demo-operator.log")]
    operator_log: PathBuf,
}

#[derive(clap::Args)]
struct BmcArgs {
    /// Address to listen on; port 0 picks a free port (the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Vendor persona: generic, ilo, idrac, supermicro, xcc, ami, openbmc, no-once.
    #[arg(long, default_value = "generic")]
    persona: beskar7_sim::bmc::Persona,
    /// Serve this short-form Redfish mockup tree (e.g. ../shared/fixtures/redfish/mockups/DL325).
    #[arg(long)]
    mockup: Option<PathBuf>,
    #[arg(long, default_value = "admin")]
    username: String,
    /// The BMC account's password (a simulated credential).
    #[arg(long, default_value = "password")]
    password: String,
    /// MAC address of a host NIC (repeatable; default one generated MAC).
    #[arg(long = "mac")]
    macs: Vec<String>,
    /// Whether the server starts powered on.
    #[arg(long)]
    powered_on: bool,
    /// How long a power transition takes, in milliseconds.
    #[arg(long, default_value_t = 200)]
    power_delay_ms: u64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fail the first requests: KIND[:COUNT] with KIND server-error, garbage, hang or unavailable.
    #[arg(long = "fault")]
    faults: Vec<String>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Objects to create, list and update.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Concurrent watchers that each receive every update.
    #[arg(long, default_value_t = 20)]
    watchers: usize,
    /// Requests in flight at once while creating and updating.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ApiserverArgs {
    /// Address to listen on; port 0 picks a free port (the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Write an admin kubeconfig for this server here.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Also write a kubeconfig for another identity: USER[:GROUP,...]=FILE (repeatable).
    #[arg(long = "identity", value_name = "USER[:GROUPS]=FILE")]
    identities: Vec<String>,
    /// Load every CustomResourceDefinition in the YAML files of this directory (repeatable).
    #[arg(long = "crds", value_name = "DIR")]
    crds: Vec<PathBuf>,
    /// Append one JSON line per request (identity, verb, group, resource, ...) to this file.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// The Kubernetes minor version /version reports (kubectl's dispatcher picks its binary by it).
    #[arg(long, default_value_t = 33, value_parser = clap::value_parser!(u32).range(27..=40))]
    kubernetes_minor: u32,
    /// Enforce the RBAC objects stored in the server for every identity but the admin.
    #[arg(long)]
    authorize: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's output is its progress lines; the sim's own logs are for when things go wrong.
    let default_filter = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    // One crypto provider for every TLS client in the process (kube's, reqwest's): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let result = match cli.command {
        Command::Apiserver(args) => runtime.block_on(apiserver(args)),
        Command::BenchApiserver(args) => runtime.block_on(bench_apiserver(args)),
        Command::Bmc(args) => runtime.block_on(bmc(args)),
        Command::Demo(args) => runtime.block_on(demo(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message),
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!("beskar7-sim: {message}");
    ExitCode::FAILURE
}

async fn apiserver(args: ApiserverArgs) -> Result<(), String> {
    let identities = args
        .identities
        .iter()
        .map(|spec| {
            let (who, file) = spec
                .rsplit_once('=')
                .ok_or_else(|| format!("--identity {spec:?}: expected USER[:GROUP,...]=FILE"))?;
            Ok((
                Identity::parse(who).map_err(|e| format!("--identity: {e}"))?,
                PathBuf::from(file),
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let config = Config {
        audit_log: args.audit_log.clone(),
        minor_version: Some(args.kubernetes_minor),
        authorize: args.authorize,
        ..Config::default()
    };
    let server = ApiServer::new(config).map_err(|e| {
        format!(
            "cannot open the audit log {}: {e}",
            args.audit_log
                .as_deref()
                .unwrap_or_else(|| "".as_ref())
                .display()
        )
    })?;
    for dir in &args.crds {
        let n = server.load_crds(dir)?;
        tracing::info!(dir = %dir.display(), crds = n, "loaded CRDs");
    }
    let (listener, address) = bind(args.listen).await?;
    let url = format!("http://{address}");
    if let Some(path) = &args.kubeconfig {
        server
            .write_kubeconfig(path, &url, Identity::admin())
            .map_err(|e| format!("cannot write the kubeconfig {}: {e}", path.display()))?;
    }
    for (identity, path) in identities {
        server
            .write_kubeconfig(&path, &url, identity)
            .map_err(|e| format!("cannot write the kubeconfig {}: {e}", path.display()))?;
    }
    // Scripts wait for this line: everything above (kubeconfigs, CRDs) is ready when it appears.
    let mut stdout = std::io::stdout();
    let _ =
        writeln!(stdout, "beskar7-sim apiserver listening on {url}").and_then(|_| stdout.flush());
    server
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| format!("serving failed: {e}"))
}

async fn bench_apiserver(args: BenchArgs) -> Result<(), String> {
    let config = beskar7_sim::bench::BenchConfig {
        objects: args.objects,
        watchers: args.watchers,
        concurrency: args.concurrency,
    };
    let report = beskar7_sim::bench::run(config).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!("{report}");
    }
    Ok(())
}

async fn bmc(args: BmcArgs) -> Result<(), String> {
    use beskar7_sim::bmc::{Bmc, BmcConfig, Fault, ServerSpec};
    let mut server = ServerSpec {
        powered_on: args.powered_on,
        ..ServerSpec::default()
    };
    if !args.macs.is_empty() {
        server.macs = args.macs.clone();
    }
    let config = BmcConfig {
        persona: args.persona,
        username: args.username,
        password: args.password,
        server,
        mockup: args.mockup,
        power_delay: std::time::Duration::from_millis(args.power_delay_ms),
        latency: std::time::Duration::from_millis(args.latency_ms),
    };
    let bmc = Bmc::new(config)?;
    for spec in &args.faults {
        let (kind, count) = match spec.split_once(':') {
            Some((kind, count)) => (
                kind,
                count
                    .parse::<usize>()
                    .map_err(|_| format!("--fault {spec:?}: COUNT must be a number"))?,
            ),
            None => (spec.as_str(), 1),
        };
        bmc.inject(
            kind.parse::<Fault>().map_err(|e| format!("--fault: {e}"))?,
            count,
        );
    }
    let (listener, address) = bind(args.listen).await?;
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "beskar7-sim bmc ({}) listening on http://{address}/redfish/v1",
        args.persona
    )
    .and_then(|_| stdout.flush());
    bmc.serve(listener, shutdown_signal())
        .await
        .map_err(|e| format!("serving failed: {e}"))
}

async fn demo(args: DemoArgs) -> Result<(), String> {
    if !args.listen.ip().is_loopback() {
        return Err(format!(
            "--listen {}: the demo listens on loopback only",
            args.listen
        ));
    }
    beskar7_sim::demo::run(beskar7_sim::demo::Options {
        hosts: args.hosts,
        control_plane: args.control_plane,
        operator: args.operator,
        kubeconfig: args.kubeconfig,
        listen: args.listen,
        crds: if args.crds.is_empty() {
            beskar7_sim::demo::default_crds()
        } else {
            args.crds
        },
        timeout: args.timeout,
        operator_log: args.operator_log,
    })
    .await
}

/// Binds `address` (port 0 picks a free one) and returns the address actually bound.
async fn bind(address: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), String> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    Ok((listener, bound))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
