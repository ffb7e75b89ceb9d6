//! Enrollment: a host becomes Available with its inventory; a settled host causes no writes.

use std::time::Duration;

use beskar7::api::physical_host::{HostState, PowerState};
use beskar7_sim::bmc::{BmcConfig as SimConfig, Persona};
use kube::ResourceExt;
use serde_json::json;

use super::{Cluster, Manager, PASSWORD, Server, USER, condition, ready};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_enroll_to_available_with_inventory_macs_and_power() {
    let cluster = Cluster::start().await;
    let generic = Server::generic().await;
    let ilo = Server::start(SimConfig {
        persona: Persona::Ilo,
        ..SimConfig::default()
    })
    .await;
    cluster.bmc_secret("default").await;
    let manager = Manager::start(&cluster, &[]).await;

    for (name, server) in [("generic", &generic), ("ilo", &ilo)] {
        server.bmc.clear_requests();
        cluster
            .host("default", name, &server.url, "bmc", json!({}))
            .await;
        let h = cluster
            .wait_host("default", name, "Available", |h| {
                h.state() == Some(HostState::Available)
            })
            .await;
        let s = h.status.clone().unwrap();
        let hw = s.hardware_details.clone().expect("hardwareDetails");
        assert_eq!(hw.cpu_cores, Some(32), "{name}");
        assert_eq!(hw.memory_mib, Some(256 * 1024), "{name}");
        assert_eq!(hw.serial_number.as_deref(), Some("SIM0000001"), "{name}");
        assert!(
            hw.manufacturer.is_some() && hw.model.is_some(),
            "{name}: {hw:?}"
        );
        assert_eq!(s.mac_addresses, ["52:54:00:00:00:01"], "{name}");
        assert_eq!(s.observed_power_state, Some(PowerState::Off), "{name}");
        assert!(s.enrolled_at.is_some() && s.last_state_change.is_some());
        assert_eq!(s.observed_generation, h.metadata.generation);
        assert_eq!(s.error_message, None);
        for t in ["CredentialsValid", "BMCReachable", "Enrolled", "Ready"] {
            assert_eq!(
                condition(&h, t).map(|c| c.0),
                Some("True".into()),
                "{name} {t}"
            );
        }
        assert!(
            h.finalizers()
                .iter()
                .any(|f| f == "infrastructure.cluster.x-k8s.io/physicalhost")
        );
        let requests = server.bmc.requests();
        eprintln!(
            "FIGURE enroll {name}: {} Redfish requests: {:?}",
            requests.len(),
            requests
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
        assert!(
            !requests.is_empty() && requests.len() <= 20,
            "{name}: {}",
            requests.len()
        );
        assert!(
            requests.iter().all(|r| r.status < 400),
            "{name}: {requests:?}"
        );
    }

    // The reconciles that follow enrollment (its own status write, the owner reference it put
    // on the Secret) contact no BMC: each answered moments ago for the same spec and Secret.
    // (A quiet period: what is asserted is that nothing happens.)
    generic.bmc.clear_requests();
    ilo.bmc.clear_requests();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        generic.bmc.requests(),
        vec![],
        "a follow-up reconcile called the BMC"
    );
    assert_eq!(
        ilo.bmc.requests(),
        vec![],
        "a follow-up reconcile called the BMC"
    );

    // The credentials Secret is owned by both hosts (clusterctl move carries it along).
    let secret = cluster.secrets("default").get("bmc").await.unwrap();
    let owners: Vec<_> = secret
        .owner_references()
        .iter()
        .map(|o| (o.kind.as_str(), o.name.as_str()))
        .collect();
    assert!(
        owners.contains(&("PhysicalHost", "generic")) && owners.contains(&("PhysicalHost", "ilo")),
        "{owners:?}"
    );
    assert!(
        secret
            .owner_references()
            .iter()
            .all(|o| o.controller != Some(true))
    );

    let events = cluster.events_text("default").await;
    assert!(events.contains("Normal Enrolled"), "{events}");
    drop(manager);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_host_is_checked_cheaply_and_never_rewritten() {
    let cluster = Cluster::start().await;
    let server = Server::generic().await;
    cluster.bmc_secret("default").await;
    // A short resync so the quiet period holds several idle checks.
    let manager = Manager::start(&cluster, &["--resync-interval", "1s"]).await;
    cluster
        .host("default", "h", &server.url, "bmc", json!({}))
        .await;
    let settled = cluster
        .wait_host("default", "h", "Available", |h| {
            h.state() == Some(HostState::Available)
        })
        .await;
    let rv = settled.resource_version();
    let reconciles = manager
        .metric("beskar7_reconcile_total", &["result=\"success\""])
        .await;
    server.bmc.clear_requests();

    // The quiet period: nothing changes, so nothing may be written.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let now = cluster.hosts("default").get("h").await.unwrap();
    assert_eq!(
        now.resource_version(),
        rv,
        "a settled host's status was rewritten"
    );
    let after = manager
        .metric("beskar7_reconcile_total", &["result=\"success\""])
        .await;
    let checks = after - reconciles;
    assert!(
        (3.0..=8.0).contains(&checks),
        "{checks} idle reconciles in 5s at a 1s resync"
    );
    let requests = server.bmc.requests();
    let per_check = requests.len() as f64 / checks;
    eprintln!(
        "FIGURE idle: {checks} checks, {} Redfish requests ({per_check} per check): {:?}",
        requests.len(),
        requests
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.path, r.auth))
            .collect::<Vec<_>>()
    );
    // One GET per check (Basic auth, the discovery remembered), give or take the check that
    // was in flight when the log was cleared.
    assert!(per_check <= 1.5, "{per_check} requests per idle check");
    assert!(requests.iter().all(|r| r.method == "GET"), "{requests:?}");
    assert_eq!(
        server.bmc.active_sessions(),
        0,
        "no session is parked on the BMC"
    );

    // Drift is written when it happens: power the server on behind the controller's back.
    let client = beskar7::redfish::RedfishClient::new(beskar7::redfish::BmcConfig::new(
        server.url.clone(),
        beskar7::redfish::Credentials::new(USER, PASSWORD),
    ))
    .unwrap();
    use beskar7::redfish::Bmc;
    client
        .set_power(
            beskar7::redfish::PowerAction::On,
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let h = cluster
        .wait_host("default", "h", "observed On", |h| {
            h.status.as_ref().and_then(|s| s.observed_power_state) == Some(PowerState::On)
        })
        .await;
    assert_eq!(h.state(), Some(HostState::Available));
    assert_eq!(ready(&h).map(|r| r.0), Some("True".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_sharing_a_bmc_never_have_two_operations_in_flight_on_it() {
    let cluster = Cluster::start().await;
    // Slow requests make overlapping operations likely if they were allowed.
    let server = Server::start(SimConfig {
        latency: Duration::from_millis(30),
        ..SimConfig::default()
    })
    .await;
    cluster.bmc_secret("default").await;
    let _manager = Manager::start(&cluster, &[]).await;
    let names = ["a", "b", "c", "d"];
    for name in names {
        cluster
            .host("default", name, &server.url, "bmc", json!({}))
            .await;
    }
    for name in names {
        cluster
            .wait_host("default", name, "Available", |h| {
                h.state() == Some(HostState::Available)
            })
            .await;
    }
    // Each enrollment holds one session from login to logout; with one operation per BMC at a
    // time there is never a second one open.
    assert_eq!(server.bmc.max_sessions_seen(), 1);
}
