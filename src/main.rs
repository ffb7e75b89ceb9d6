//! `beskar7`: the Cluster API infrastructure provider for bare-metal servers.
//!
//! CLI wiring only. `beskar7 manager` (the default) runs the controller-manager; `beskar7 crds`
//! prints (or writes) the CustomResourceDefinitions.
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

// Parsed once at startup: the size of the manager's flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller-manager (the default).
    Manager(beskar7::manager::ManagerArgs),
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
    let command = match cli.command {
        Some(c) => c,
        // `beskar7` alone is `beskar7 manager` with the defaults.
        None => match Cli::try_parse_from(["beskar7", "manager"]) {
            Ok(Cli {
                command: Some(c), ..
            }) => c,
            _ => unreachable!("`beskar7 manager` parses"),
        },
    };
    match command {
        Command::Manager(args) => manager(args),
        Command::Crds { out_dir } => match crds(out_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("beskar7 crds: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn manager(args: beskar7::manager::ManagerArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("beskar7 manager: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(beskar7::manager::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("beskar7 manager: {e}");
            ExitCode::FAILURE
        }
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
