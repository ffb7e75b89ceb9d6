//! `beskar7`: the Cluster API infrastructure provider for bare-metal servers.
//!
//! CLI wiring only. `beskar7 crds` prints (or writes) the CustomResourceDefinitions. The
//! controller-manager (`beskar7 manager`, the default) arrives with the operator-foundation issue;
//! until then it says so and exits 1, so nothing can mistake this binary for a working manager.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Beskar7: a Cluster API infrastructure provider for bare-metal servers with Redfish BMCs.
#[derive(Parser, Debug)]
#[command(name = "beskar7", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller-manager (the default; not implemented yet).
    Manager,
    /// Print Beskar7's CustomResourceDefinitions as one multi-document YAML stream.
    Crds {
        /// Write one file per CRD (`<group>_<plural>.yaml`) into this directory instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider for every TLS connection in the process (kube's, the Redfish
    // client's): ring, installed before anything can build a TLS client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command.unwrap_or(Command::Manager) {
        Command::Manager => {
            eprintln!(
                "beskar7 {}: the controller-manager is not implemented yet",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::FAILURE
        }
        Command::Crds { out_dir } => match crds(out_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("beskar7 crds: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn crds(out_dir: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    match out_dir {
        None => {
            let yaml = beskar7::api::crds_yaml()?;
            match std::io::stdout().lock().write_all(yaml.as_bytes()) {
                // `beskar7 crds | head` is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for crd in beskar7::api::crds() {
                let path = dir.join(beskar7::api::crd_file_name(&crd));
                std::fs::write(&path, beskar7::api::crd_yaml(&crd)?)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
