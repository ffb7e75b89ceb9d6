//! Claim and release: consumerRef set → InUse; cleared → Deprovisioning → Available with the
//! server off and the boot override cleared; a BMC that stops answering makes the deprovision
//! time out into Error ("power state unknown"); deleting a host whose BMC is dead completes.

use std::time::Duration;

use beskar7::api::physical_host::{HostState, PowerState};
use beskar7::redfish::{
    Bmc, BmcConfig, Credentials, PowerAction, PowerState as RfPower, RedfishClient,
};
use beskar7_sim::bmc::Fault;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Cluster, Manager, PASSWORD, Server, USER, ready};

fn claim() -> serde_json::Value {
    json!({"spec": {"consumerRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Machine", "name": "m1"}}})
}

fn release() -> serde_json::Value {
    json!({"spec": {"consumerRef": null}})
}

async fn patch(
    api: &Api<beskar7::api::physical_host::PhysicalHost>,
    name: &str,
    body: serde_json::Value,
) {
    api.patch(name, &PatchParams::default(), &Patch::Merge(body))
        .await
        .expect("patch host");
}

/// The power state as the BMC reports it over Redfish now.
async fn power_of(server: &Server) -> RfPower {
    let c = RedfishClient::new(BmcConfig::new(
        server.url.clone(),
        Credentials::new(USER, PASSWORD),
    ))
    .unwrap();
    c.check().await.expect("check").power
}

/// Powers the simulated server on with a one-time PXE override pending, as a provisioning
/// attempt would leave it.
async fn leave_on_with_override(server: &Server) {
    let c = RedfishClient::new(BmcConfig::new(
        server.url.clone(),
        Credentials::new(USER, PASSWORD),
    ))
    .unwrap();
    c.set_pxe_once(None).await.expect("override");
    c.set_power(PowerAction::On, Some(Duration::from_secs(10)))
        .await
        .expect("on");
    // Wait for the simulated power transition to finish (and the boot to consume the
    // one-time override), then set the override again, as an attempt in progress would.
    // (The sim's `system()` keeps the tree's PowerState; a Redfish read gives the live one.)
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !power_of(server).await.is_on() || power_of(server).await != RfPower::On {
        assert!(
            std::time::Instant::now() < deadline,
            "the sim never powered on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.set_pxe_once(None).await.expect("override while on");
    let sys = server.bmc.system();
    assert_eq!(sys["Boot"]["BootSourceOverrideEnabled"], "Once", "{sys}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_host_is_powered_off_cleared_and_available_again() {
    let cluster = Cluster::start().await;
    let server = Server::generic().await;
    cluster.bmc_secret("default").await;
    let _manager = Manager::start(&cluster, &[]).await;
    let hosts = cluster.hosts("default");
    cluster
        .host("default", "h", &server.url, "bmc", json!({}))
        .await;
    cluster
        .wait_host("default", "h", "Available", |h| {
            h.state() == Some(HostState::Available)
        })
        .await;

    patch(&hosts, "h", claim()).await;
    let h = cluster
        .wait_host("default", "h", "InUse", |h| {
            h.state() == Some(HostState::InUse)
        })
        .await;
    assert_eq!(
        ready(&h).map(|r| (r.0, r.1)),
        Some(("True".into(), "InUse".into()))
    );

    leave_on_with_override(&server).await;
    patch(&hosts, "h", release()).await;
    let h = cluster
        .wait_host("default", "h", "Available after deprovisioning", |h| {
            h.state() == Some(HostState::Available) && !h.is_claimed()
        })
        .await;
    // Off, or on its way (PowerState PoweringOff counts as off, as in ironic).
    assert!(
        power_of(&server).await.is_off(),
        "the server was powered off"
    );
    let sys = server.bmc.system();
    assert_eq!(
        sys["Boot"]["BootSourceOverrideEnabled"], "Disabled",
        "the override was cleared: {sys}"
    );
    let observed = h.status.unwrap().observed_power_state;
    assert!(
        matches!(observed, Some(PowerState::Off | PowerState::PoweringOff)),
        "{observed:?}"
    );
    let events = cluster.events_text("default").await;
    assert!(events.contains("Normal Deprovisioned"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_in_use_whose_bmc_fails_stays_in_use_and_says_why() {
    let cluster = Cluster::start().await;
    let server = Server::generic().await;
    cluster.bmc_secret("default").await;
    let _manager = Manager::start(&cluster, &["--resync-interval", "1s"]).await;
    cluster
        .host("default", "h", &server.url, "bmc", claim()["spec"].clone())
        .await;
    cluster
        .wait_host("default", "h", "InUse", |h| {
            h.state() == Some(HostState::InUse)
        })
        .await;

    // The BMC answers garbage for a while: the drift check fails, the host stays with its
    // machine, and its conditions say why.
    server.bmc.inject(Fault::Garbage, 1000);
    let h = cluster
        .wait_host("default", "h", "InUse with BMCReachable=False", |h| {
            h.state() == Some(HostState::InUse)
                && h.status.as_ref().is_some_and(|s| s.error_message.is_some())
        })
        .await;
    let s = h.status.unwrap();
    assert_eq!(s.state, Some(HostState::InUse));
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False"),
        "{:?}",
        s.conditions
    );

    // The BMC recovers; a touch of the Secret wakes the host before its backoff ends, and the
    // check clears the failure.
    server.bmc.clear_faults();
    cluster
        .secrets("default")
        .patch(
            "bmc",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"touched": "1"}}})),
        )
        .await
        .unwrap();
    let h = cluster
        .wait_host("default", "h", "InUse and Ready again", |h| {
            h.state() == Some(HostState::InUse)
                && h.status.as_ref().is_some_and(|s| s.error_message.is_none())
        })
        .await;
    assert_eq!(ready(&h).map(|r| r.0), Some("True".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deprovision_against_a_silent_bmc_times_out_to_power_state_unknown() {
    let cluster = Cluster::start().await;
    let server = Server::generic().await;
    cluster.bmc_secret("default").await;
    let manager = Manager::start(&cluster, &["--deprovision-timeout", "3s"]).await;
    let hosts = cluster.hosts("default");
    cluster
        .host("default", "h", &server.url, "bmc", claim()["spec"].clone())
        .await;
    cluster
        .wait_host("default", "h", "InUse", |h| {
            h.state() == Some(HostState::InUse)
        })
        .await;

    // The BMC stops answering: its next two requests hang past the deprovision timeout (the
    // deprovision, and the retry the Error status write triggers at once).
    server.bmc.inject(Fault::Hang, 2);
    patch(&hosts, "h", release()).await;
    let h = cluster
        .wait_host("default", "h", "Error (DeprovisionTimedOut)", |h| {
            h.state() == Some(HostState::Error)
                && ready(h).is_some_and(|r| r.1 == "DeprovisionTimedOut")
        })
        .await;
    let s = h.status.clone().unwrap();
    let message = s.error_message.unwrap();
    assert!(message.starts_with("power state unknown"), "{message}");
    assert!(message.contains("3s"), "{message}");
    assert_eq!(s.observed_power_state, Some(PowerState::Unknown));
    assert_eq!(ready(&h).map(|r| r.0), Some("False".into()));

    // While the BMC stays silent (the retry that the Error write triggers hangs too), the host
    // stays in Error: it is not offered.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let h = cluster.hosts("default").get("h").await.unwrap();
    assert_eq!(h.state(), Some(HostState::Error));

    // Offered again once its BMC answers and it is off: a touch of the credentials Secret
    // wakes it now (instead of after the 20 s backoff), and the BMC answers again.
    let touched = std::time::Instant::now();
    cluster
        .secrets("default")
        .patch(
            "bmc",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"touched": "1"}}})),
        )
        .await
        .unwrap();
    cluster
        .wait_host("default", "h", "Available", |h| {
            h.state() == Some(HostState::Available)
        })
        .await;
    // The backoff after two failures is 20 s: the Secret change, not the timer, woke it.
    assert!(
        touched.elapsed() < Duration::from_secs(12),
        "{:?}; log:
{}",
        touched.elapsed(),
        manager.log()
    );
    assert!(power_of(&server).await.is_off());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_host_whose_bmc_is_dead_completes() {
    let cluster = Cluster::start().await;
    let mut server = Server::generic().await;
    cluster.bmc_secret("default").await;
    let _manager = Manager::start(&cluster, &[]).await;
    cluster
        .host("default", "h", &server.url, "bmc", claim()["spec"].clone())
        .await;
    let h = cluster
        .wait_host("default", "h", "InUse", |h| {
            h.state() == Some(HostState::InUse)
        })
        .await;
    assert!(
        h.finalizers()
            .iter()
            .any(|f| f.starts_with("infrastructure.cluster.x-k8s.io/"))
    );

    server.stop().await;
    cluster
        .hosts("default")
        .delete("h", &DeleteParams::default())
        .await
        .unwrap();
    cluster.wait_deleted("default", "h").await;
    let events = cluster.events_text("default").await;
    assert!(events.contains("Warning PowerStateUnknown"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_available_host_touches_no_bmc() {
    let cluster = Cluster::start().await;
    let server = Server::generic().await;
    cluster.bmc_secret("default").await;
    let _manager = Manager::start(&cluster, &[]).await;
    cluster
        .host("default", "h", &server.url, "bmc", json!({}))
        .await;
    cluster
        .wait_host("default", "h", "Available", |h| {
            h.state() == Some(HostState::Available)
        })
        .await;
    server.bmc.clear_requests();
    cluster
        .hosts("default")
        .delete("h", &DeleteParams::default())
        .await
        .unwrap();
    cluster.wait_deleted("default", "h").await;
    assert_eq!(
        server.bmc.requests(),
        vec![],
        "a free host is not powered off on deletion"
    );
}
