//! What the server does from power-on until an agent or an OS runs: PXE through iPXE scripts,
//! or boot whatever the disk holds.

use super::ipxe::{Interpreter, Outcome, Step, redact};
use super::{DiskContents, FirstStage, HostState, VirtualHost, agent, client};
use crate::bmc::BootEvent;
use std::sync::Arc;

pub(super) async fn boot(host: Arc<VirtualHost>, boot: BootEvent) {
    host.set_state(HostState::FirstStage);
    if boot.target != "Pxe" {
        return boot_disk(&host);
    }
    match pxe(&host).await {
        Ok(Outcome::Kernel { url, cmdline }) => {
            host.log(format!("iPXE boots kernel {}", redact(&url)));
            agent::run(host, cmdline).await;
        }
        Ok(Outcome::Exit) => {
            host.log("iPXE exits: the firmware boots the next device");
            boot_disk(&host);
        }
        Err(reason) => host.set_state(HostState::Failed(format!("iPXE: {reason}"))),
    }
}

fn boot_disk(host: &VirtualHost) {
    let disk = host.disk();
    match disk {
        DiskContents::Installed(os) => {
            host.log(format!("boots the installed OS ({})", os.provider_id));
            host.lock().os = Some(os);
            host.set_state(HostState::RunningOS);
        }
        DiskContents::Empty => host.set_state(HostState::Failed("no bootable device".into())),
    }
}

/// Runs the first stage and the scripts it chains to, until a kernel boots or iPXE exits.
async fn pxe(host: &VirtualHost) -> Result<Outcome, String> {
    let config = &host.config;
    let http = client::client(config.boot_ca_pem.as_deref(), config.timing.request_timeout)?;
    let mac = host.hardware.boot_mac().ok_or("the server has no NIC")?;
    let base = config.boot_url.trim_end_matches('/');
    let mut url = match config.first_stage {
        FirstStage::Ipxe => format!("{base}/ipxe?mac={}", mac.replace(':', "-")),
        FirstStage::BootIpxe => format!("{base}/boot.ipxe"),
    };
    let mut interpreter = Interpreter::new(mac);
    loop {
        let shown = redact(&url);
        let response = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {shown}: {}", cause(&e)))?;
        let status = response.status().as_u16();
        host.log(format!("GET {shown}: {status}"));
        if !(200..300).contains(&status) {
            return Err(format!("GET {shown} answered {status}"));
        }
        let body = response
            .text()
            .await
            .map_err(|e| format!("GET {shown}: {}", cause(&e)))?;
        match interpreter.run(&url, &body)? {
            Step::Fetch(next) => url = next,
            Step::Done(outcome) => return Ok(outcome),
        }
    }
}

fn cause(e: &reqwest::Error) -> String {
    let mut msg = if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        "request failed".to_string()
    };
    if let Some(source) = std::error::Error::source(e) {
        msg.push_str(&format!(": {source}"));
    }
    msg
}
