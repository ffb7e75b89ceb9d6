//! Virtual hosts against a fake operator: the chain from the first stage to the OS, both
//! handoffs, cleaning, power-off, each misbehaviour, and secrets kept out of logs.

mod flows;
mod misbehaviours;
mod operator;

use beskar7_sim::bmc::{Bmc, BmcConfig};
use beskar7_sim::host::{Hardware, HostConfig, HostState, SimServer, Timing};
use operator::{Attempt, Operator};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Generous for a loaded 2-core machine; every wait ends as soon as its event happens.
const WAIT: Duration = Duration::from_secs(20);

pub fn fast_timing() -> Timing {
    Timing {
        poll_interval: Duration::from_millis(25),
        work: Duration::from_millis(20),
        request_timeout: Duration::from_secs(5),
        default_budget: Duration::from_secs(60),
    }
}

pub fn mac(i: u32) -> String {
    format!("52:54:00:00:10:{i:02x}")
}

/// One simulated server (BMC + host) pointed at `op`.
pub async fn server(op: &Operator, i: u32, tweak: impl FnOnce(&mut HostConfig)) -> SimServer {
    let mut config = HostConfig::new(&op.boot_url);
    config.timing = fast_timing();
    tweak(&mut config);
    let bmc = BmcConfig {
        power_delay: Duration::from_millis(10),
        ..BmcConfig::default()
    };
    SimServer::start(
        &format!("host-{i}"),
        Hardware::standard(i, &mac(i)),
        bmc,
        config,
    )
    .await
    .expect("sim server")
}

/// A Redfish request as the operator's BMC client would send it (Basic auth, Generic persona).
pub async fn redfish(bmc: &Arc<Bmc>, method: &str, path: &str, body: serde_json::Value) -> u16 {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", "Basic YWRtaW46cGFzc3dvcmQ=")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    bmc.router()
        .oneshot(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// What the operator does to start an attempt: a PXE override (`Once` or `Continuous`), then
/// power on.
pub async fn pxe_boot(bmc: &Arc<Bmc>, enabled: &str) {
    let system = bmc.system_path();
    let boot = serde_json::json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": enabled}});
    assert!(redfish(bmc, "PATCH", &system, boot).await < 300);
    reset(bmc, "On").await;
}

pub async fn reset(bmc: &Arc<Bmc>, kind: &str) {
    let target = format!("{}/Actions/ComputerSystem.Reset", bmc.system_path());
    let status = redfish(bmc, "POST", &target, serde_json::json!({"ResetType": kind})).await;
    assert!(status < 300, "reset {kind}: {status}");
}

pub async fn wait_state(server: &SimServer, pred: impl Fn(&HostState) -> bool) -> HostState {
    tokio::time::timeout(WAIT, server.host.wait_for(pred))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "host stuck in {:?}; events: {:#?}",
                server.host.state(),
                server.host.events()
            )
        })
}

pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Kubeadm-like bootstrap data with the provider ID already substituted, as `/bootstrap` serves it.
pub fn bootstrap_for(provider_id: &str) -> Vec<u8> {
    format!(
        "#cloud-config\njoinConfiguration:\n  nodeRegistration:\n    kubeletExtraArgs:\n    - name: provider-id\n      value: {provider_id}\n"
    )
    .into_bytes()
}

pub fn attempt(i: u32, token: &str) -> Attempt {
    let host = format!("host-{i}");
    let provider_id = format!("b7://sim/{host}/machine-{host}");
    let mut a = Attempt::new(&host, token, &bootstrap_for(&provider_id));
    a.provider_id = provider_id;
    a
}
