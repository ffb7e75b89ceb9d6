//! The agent's side of the contract, played by a virtual host: report, bootstrap data,
//! handoff, `provisioned` (or `provision-failed`), or a cleaning run.

use super::client::Callbacks;
use super::cmdline::{BootParams, Handoff, Secret};
use super::{DiskContents, HostState, Misbehaviour, OsInfo, VirtualHost};
use std::sync::Arc;
use tokio::time::Instant;

/// Runs the agent booted with `cmdline` until it hands over, fails or is stopped.
pub(super) async fn run(host: Arc<VirtualHost>, cmdline: String) {
    let params = match BootParams::parse(&cmdline) {
        Ok(params) => params,
        Err(e) => {
            host.set_state(HostState::Failed(format!("agent: {e}")));
            return;
        }
    };
    drop(cmdline);
    // The agent brings up the interface BOOTIF names: a MAC of another server is the
    // operator rendering the wrong host's script.
    if let Some(mac) = params.bootif_mac()
        && !host.hardware.nics.iter().any(|n| n.mac == mac)
    {
        host.set_state(HostState::Failed(format!(
            "agent: BOOTIF names {mac}, not a NIC of this server"
        )));
        return;
    }
    let (misbehaviour, token) = {
        let mut inner = host.lock();
        // Remember the tokens of the last two attempts (a re-boot of the same attempt carries
        // the same token); the replaying misbehaviour uses the older one.
        if inner.last_token.as_ref() != Some(&params.token) {
            inner.older_token = inner.last_token.replace(params.token.clone());
        }
        let misbehaviour = inner.misbehaviour.clone();
        let token = match (&misbehaviour, &inner.older_token) {
            (Some(Misbehaviour::ReplaysOldToken), Some(old)) => old.clone(),
            _ => params.token.clone(),
        };
        (misbehaviour, token)
    };
    if token != params.token {
        host.log("uses the previous attempt's token (misbehaviour)");
    }
    let timing = host.config.timing.clone();
    let budget = params.timeout.unwrap_or(timing.default_budget);
    let deadline = Instant::now() + budget;
    let callbacks = match Callbacks::new(
        &params,
        token,
        timing.poll_interval,
        timing.request_timeout,
        deadline,
    ) {
        Ok(c) => c,
        Err(e) => {
            host.set_state(HostState::Failed(format!("agent: {e}")));
            return;
        }
    };
    host.set_state(if params.clean {
        HostState::Cleaning
    } else {
        HostState::Inspecting
    });
    if misbehaviour == Some(Misbehaviour::NeverReports) {
        host.log("agent up; it never calls back (misbehaviour)");
        return std::future::pending().await;
    }
    let work = async {
        if params.clean {
            clean(&host, &callbacks).await
        } else {
            provision(&host, &params, &callbacks, misbehaviour).await
        }
    };
    // The calls themselves stop retrying at the deadline and say why (the last failure); this
    // backstop, one request later, only ends a run that hangs.
    let backstop = deadline + timing.request_timeout;
    match tokio::time::timeout_at(backstop, work).await {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => host.set_state(HostState::Failed(reason)),
        Err(_) => host.set_state(HostState::Failed(format!(
            "agent: gave up after {} s (beskar7.timeout)",
            budget.as_secs()
        ))),
    }
}

async fn provision(
    host: &VirtualHost,
    params: &BootParams,
    callbacks: &Callbacks,
    misbehaviour: Option<Misbehaviour>,
) -> Result<(), String> {
    let report = match misbehaviour {
        Some(Misbehaviour::ReportsGarbage) => b"{\"cpus\": [ this is not json".to_vec(),
        Some(Misbehaviour::TooLittleHardware) => {
            serde_json::to_vec(&host.hardware.shrunk().report()).expect("json")
        }
        _ => serde_json::to_vec(&host.hardware.report()).expect("json"),
    };
    post_report(host, callbacks, report).await?;
    let data = callbacks
        .bootstrap()
        .await
        .map_err(|e| format!("bootstrap: {e}"))?;
    let data_sha256 = sha256_hex(&data);
    host.log(format!("bootstrap data received ({} bytes)", data.len()));
    drop(data);
    host.set_state(HostState::Deploying);

    if misbehaviour == Some(Misbehaviour::RebootsMidDeploy) {
        let first = !std::mem::replace(&mut host.lock().rebooted_mid_deploy, true);
        if first {
            tokio::time::sleep(host.config.timing.work / 2).await;
            host.log("reboots mid-deploy (misbehaviour)");
            host.bmc.os_reboot();
            // The reboot's boot event stops this task.
            return std::future::pending().await;
        }
    }
    if let Some(Misbehaviour::FailsDeploy(reason)) = &misbehaviour {
        tokio::time::sleep(host.config.timing.work / 2).await;
        host.log("POST provision-failed");
        callbacks
            .provision_failed(reason)
            .await
            .map_err(|e| format!("provision-failed: {e}"))?;
        return Err(reason.clone());
    }

    let os = OsInfo {
        provider_id: params.provider_id.clone().unwrap_or_default(),
        bootstrap_sha256: data_sha256,
        handoff: params.handoff,
        config_sha256: None,
    };
    tokio::time::sleep(host.config.timing.work).await;
    match params.handoff {
        Handoff::Image => {
            // The image and its OEM files (cloud-config with the bootstrap data, provider ID)
            // are on disk; the firmware boots them after the reboot.
            host.log("image written to disk");
            host.lock().disk = DiskContents::Installed(os);
            host.log("POST provisioned");
            callbacks
                .provisioned()
                .await
                .map_err(|e| format!("provisioned: {e}"))?;
            host.log("reboots into the installed OS");
            host.bmc.os_reboot();
            std::future::pending().await
        }
        Handoff::Kexec => {
            host.log("POST provisioned");
            callbacks
                .provisioned()
                .await
                .map_err(|e| format!("provisioned: {e}"))?;
            host.log("kexec into the target");
            let os = match &params.config_url {
                Some(url) => fetch_config(host, callbacks, url, os).await?,
                None => os,
            };
            host.lock().os = Some(os);
            host.set_state(HostState::RunningOS);
            Ok(())
        }
    }
}

/// The kexec'd OS takes its config from `beskar7.config-url`, once.
async fn fetch_config(
    host: &VirtualHost,
    callbacks: &Callbacks,
    url: &Secret,
    mut os: OsInfo,
) -> Result<OsInfo, String> {
    host.log("the OS fetches its config URL");
    let config = callbacks
        .fetch_config(url)
        .await
        .map_err(|e| format!("OS: {e}"))?;
    os.config_sha256 = Some(sha256_hex(&config));
    Ok(os)
}

async fn clean(host: &VirtualHost, callbacks: &Callbacks) -> Result<(), String> {
    if host.config.report_when_cleaning {
        let report = serde_json::to_vec(&host.hardware.report()).expect("json");
        post_report(host, callbacks, report).await?;
    }
    tokio::time::sleep(host.config.timing.work).await;
    {
        let mut inner = host.lock();
        inner.disk = DiskContents::Empty;
        inner.os = None;
    }
    host.log("disks wiped");
    host.log("POST cleaned");
    callbacks
        .cleaned()
        .await
        .map_err(|e| format!("cleaned: {e}"))?;
    if host.config.power_off_after_clean {
        host.log("powers itself off");
        host.bmc.os_power_off();
    }
    Ok(())
}

async fn post_report(
    host: &VirtualHost,
    callbacks: &Callbacks,
    report: Vec<u8>,
) -> Result<(), String> {
    host.log(format!("POST inspection report ({} bytes)", report.len()));
    callbacks
        .post_report(report)
        .await
        .map_err(|e| format!("report: {e}"))?;
    host.log("report accepted");
    Ok(())
}

pub(super) fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
