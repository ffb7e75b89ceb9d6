//! `beskar7-agent`: the in-RAM agent that runs on the servers Beskar7 provisions.
//!
//! Only phase 1 exists so far, and only as a dry run: read the kernel command line, probe the
//! hardware, choose the root disk, print the inspection report. See `docs/agent.md`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use beskar7_agent::cmdline::{self, Mode};
use beskar7_agent::disk_select;
use beskar7_agent::probe::{self, Root};
use beskar7_agent::report::InspectionReport;
use clap::Parser;

/// Beskar7's in-RAM agent (phase 1: dry run only).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The kernel command line to read the `beskar7.*` parameters from.
    #[arg(long, value_name = "FILE", default_value = "/proc/cmdline")]
    cmdline_file: PathBuf,
    /// Parse, probe, choose the disk and print the inspection report as JSON; touch nothing.
    #[arg(long)]
    dry_run: bool,
    /// The directory `/sys`, `/proc` and `/dev` are read below (fixture trees in tests).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.dry_run {
        eprintln!(
            "beskar7-agent {}: only --dry-run is implemented; the network phases (report, \
             bootstrap, handoff, cleaning) are not implemented yet",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::FAILURE;
    }
    match dry_run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("beskar7-agent: {message}");
            ExitCode::FAILURE
        }
    }
}

fn dry_run(args: &Args) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&args.cmdline_file)
        .map_err(|e| format!("cannot read {}: {e}", args.cmdline_file.display()))?;
    let parsed = cmdline::parse(&text);
    beskar7_agent::wipe(text);
    let params = parsed.map_err(|e| e.to_string())?;
    for name in &params.unknown {
        eprintln!("beskar7-agent: ignoring unknown parameter {name}");
    }
    eprintln!(
        "beskar7-agent: PhysicalHost {}/{}, {}",
        params.namespace,
        params.host,
        match &params.mode {
            Mode::Clean => "cleaning boot".to_string(),
            Mode::Provision(p) => format!("{:?} handoff of {}", p.handoff, p.target),
        }
    );

    let root = Root::new(&args.root);
    let hardware = probe::probe(&root);
    for warning in &hardware.warnings {
        eprintln!("beskar7-agent: warning: {warning}");
    }
    let report = InspectionReport::from_hardware(&hardware);
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    println!("{json}");

    match &params.mode {
        Mode::Clean => {
            let disks: Vec<String> = hardware
                .disks
                .iter()
                .filter(|d| disk_select::is_eligible(d))
                .map(|d| d.path())
                .collect();
            eprintln!(
                "beskar7-agent: dry run: a cleaning boot would wipe: {}",
                if disks.is_empty() {
                    "nothing".to_string()
                } else {
                    disks.join(" ")
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Mode::Provision(_) => {
            match disk_select::select(&hardware.disks, &params.disk_hints, &root) {
                Ok(selection) => {
                    eprintln!(
                        "beskar7-agent: dry run: root disk {} ({})",
                        selection.disk.path(),
                        if selection.by_hints {
                            "matches the root device hints"
                        } else {
                            "smallest eligible disk"
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(e.to_string()),
            }
        }
    }
}
