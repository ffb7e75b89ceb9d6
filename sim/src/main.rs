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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
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
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
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
