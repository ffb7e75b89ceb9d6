//! `beskar7-agent`: the in-RAM agent that runs on the servers Beskar7 provisions.
//!
//! As PID 1 of the initramfs: mount the kernel's filesystems, load the drivers, bring up the
//! network, then the whole run (report, bootstrap, handoff or cleaning); it never exits, it
//! parks on a failure. As a normal process: a dry run of phase 1 (`--dry-run`), posting the
//! report (`--report-only`), or the whole run on an already configured machine (`--run`).
//! See `docs/agent.md`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use beskar7_agent::callbacks::{Callbacks, Settings};
use beskar7_agent::cmdline::{self, BootParams, Mode};
use beskar7_agent::probe::{self, Root};
use beskar7_agent::report::InspectionReport;
use beskar7_agent::run::{self, Env, SystemExecutor};
use beskar7_agent::{disk_select, init};
use clap::Parser;

/// Beskar7's in-RAM agent. As PID 1 it runs the whole flow and takes no options.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The kernel command line to read the `beskar7.*` parameters from.
    #[arg(long, value_name = "FILE", default_value = "/proc/cmdline")]
    cmdline_file: PathBuf,
    /// Parse, probe, choose the disk and print the inspection report as JSON; touch nothing.
    #[arg(long, conflicts_with_all = ["report_only", "run"])]
    dry_run: bool,
    /// Parse and probe, POST the inspection report to `beskar7.api` (TLS pinned to `beskar7.ca`,
    /// retried within `beskar7.timeout`), then exit; no disk is touched.
    #[arg(long, conflicts_with = "run")]
    report_only: bool,
    /// Run the whole flow on this machine (report, bootstrap, handoff or cleaning, then kexec,
    /// reboot or power off) as PID 1 does, but without mounting, loading drivers or configuring
    /// the network. It WRITES THE CHOSEN DISK (Image), WIPES DISKS (clean) and reboots.
    #[arg(long)]
    run: bool,
    /// The directory `/sys`, `/proc` and `/dev` are read below (fixture trees in tests).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

fn main() -> ExitCode {
    if init::is_pid1() {
        pid1();
    }
    let args = Args::parse();
    let result = if args.dry_run {
        dry_run(&args)
    } else if args.report_only {
        report_only(&args)
    } else if args.run {
        read_params(&args).and_then(|params| {
            let env = Env::new(Root::new(&args.root), &params);
            run::run(&params, &env, &mut SystemExecutor).map(|_| ExitCode::SUCCESS)
        })
    } else {
        Err(
            "say --dry-run, --report-only or --run (as PID 1 of the initramfs the agent runs \
             on its own)"
                .to_string(),
        )
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("beskar7-agent: {message}");
            ExitCode::FAILURE
        }
    }
}

/// PID 1: set up the machine, run, and park on anything that goes wrong (a panic included);
/// never returns.
fn pid1() -> ! {
    let outcome = std::panic::catch_unwind(|| -> Result<(), String> {
        // Mounting first: the console may only exist once devtmpfs is on /dev.
        init::mount_filesystems()?;
        eprintln!(
            "beskar7-agent {} starting as init",
            env!("CARGO_PKG_VERSION")
        );
        let args = Args {
            cmdline_file: PathBuf::from("/proc/cmdline"),
            dry_run: false,
            report_only: false,
            run: true,
            root: PathBuf::from("/"),
        };
        let params = read_params(&args)?;
        let root = Root::new("/");
        init::load_drivers(&root);
        init::network(&root, &params)?;
        let mut env = Env::new(root, &params);
        env.work_dir = init::work_dir().to_path_buf();
        run::run(&params, &env, &mut SystemExecutor).map(drop)
    });
    let reason = match outcome {
        Ok(Ok(())) => "the run ended without leaving the agent".to_string(),
        Ok(Err(reason)) => reason,
        Err(_) => "the agent panicked (see above)".to_string(),
    };
    run::park(&reason)
}

/// Reads and parses the command line file, wiping the text, and says what it describes.
fn read_params(args: &Args) -> Result<BootParams, String> {
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
    Ok(params)
}

/// Probes below `--root`, printing the warnings, and builds the report.
fn probe_report(args: &Args) -> (probe::Hardware, InspectionReport) {
    let hardware = probe::probe(&Root::new(&args.root));
    for warning in &hardware.warnings {
        eprintln!("beskar7-agent: warning: {warning}");
    }
    let report = InspectionReport::from_hardware(&hardware);
    (hardware, report)
}

fn report_only(args: &Args) -> Result<ExitCode, String> {
    let params = read_params(args)?;
    // The budget (`beskar7.timeout`) counts from here.
    let callbacks =
        Callbacks::new(&params, Settings::for_params(&params)).map_err(|e| e.to_string())?;
    let (_, report) = probe_report(args);
    callbacks.post_report(&report).map_err(|e| e.to_string())?;
    eprintln!(
        "beskar7-agent: the operator accepted the inspection report of {}/{}",
        params.namespace, params.host
    );
    Ok(ExitCode::SUCCESS)
}

fn dry_run(args: &Args) -> Result<ExitCode, String> {
    let params = read_params(args)?;
    let root = Root::new(&args.root);
    let (hardware, report) = probe_report(args);
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
