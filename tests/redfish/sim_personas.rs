//! The client against every persona of the sim's BMC simulator (and the real mockups it serves):
//! the same flow the PhysicalHost controller runs, and each side checks the other.

use std::sync::Arc;
use std::time::Duration;

use beskar7::redfish::{AuthMode, Bmc, BootMode, PowerAction, RedfishClient};
use beskar7_sim::bmc::{Bmc as SimBmc, BmcConfig as SimConfig, PERSONAS, Persona};

use super::config;

/// Serves a simulated BMC on 127.0.0.1 and returns it with a client (Auto auth) for it.
async fn serve(sim: SimConfig) -> (Arc<SimBmc>, RedfishClient) {
    let bmc = SimBmc::new(SimConfig {
        username: super::mock::USER.into(),
        password: super::mock::PASSWORD.into(),
        ..sim
    })
    .expect("simulated BMC");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(bmc.clone().serve(listener, std::future::pending()));
    (
        bmc,
        RedfishClient::new(config(&url, AuthMode::Auto)).expect("client"),
    )
}

#[tokio::test]
async fn enroll_pxe_boot_and_power_off_on_every_persona() {
    for &persona in PERSONAS {
        let (sim, client) = serve(SimConfig {
            persona,
            power_delay: Duration::from_millis(20),
            ..SimConfig::default()
        })
        .await;
        let inventory = client
            .inventory()
            .await
            .unwrap_or_else(|e| panic!("{persona}: inventory: {e}"));
        assert!(inventory.snapshot.power.is_off(), "{persona}");
        if persona.quirks().host_nics {
            assert_eq!(
                inventory
                    .nics
                    .iter()
                    .map(|n| n.mac.as_str())
                    .collect::<Vec<_>>(),
                ["52:54:00:00:00:01"],
                "{persona}"
            );
        }
        assert_eq!(inventory.cpu_cores, Some(32), "{persona}");

        let mut boots = sim.subscribe_boots();
        let result = client
            .pxe_boot(Some(BootMode::Uefi), Some(Duration::from_secs(5)))
            .await;
        if persona == Persona::NoOnce {
            // No one-time override on this firmware: the client must say so, not boot from disk.
            let err = result.expect_err("no-once has no one-time override");
            assert!(!err.to_string().is_empty());
            assert!(boots.try_recv().is_err(), "{persona}: nothing booted");
            continue;
        }
        let (_override, power) = result.unwrap_or_else(|e| panic!("{persona}: pxe_boot: {e}"));
        assert!(power.state.is_on(), "{persona}");
        let boot = tokio::time::timeout(Duration::from_secs(5), boots.recv())
            .await
            .expect("a boot")
            .expect("event");
        assert_eq!(
            (boot.target.as_str(), boot.mode.as_str()),
            ("Pxe", "UEFI"),
            "{persona}: the server PXE-booted"
        );

        // Idle drift checks: the first one also learns whether Basic works (Auto mode operates
        // with sessions, so enrollment never tried it); from then on a check costs one GET with
        // Basic, or login/GET/logout where Basic is refused.
        let expected = if persona.quirks().basic_auth { 1 } else { 3 };
        let before = client.requests_sent();
        client
            .check()
            .await
            .unwrap_or_else(|e| panic!("{persona}: first check: {e}"));
        let first = client.requests_sent() - before;
        assert!(
            first <= expected + 1,
            "{persona}: the first check cost {first}"
        );
        sim.clear_requests();
        let before = client.requests_sent();
        let snapshot = client
            .check()
            .await
            .unwrap_or_else(|e| panic!("{persona}: check: {e}"));
        let idle_cost = client.requests_sent() - before;
        assert!(snapshot.power.is_on(), "{persona}");
        let seen: Vec<String> = sim
            .requests()
            .iter()
            .map(|r| format!("{} {} {} {}", r.method, r.path, r.auth, r.status))
            .collect();
        assert_eq!(idle_cost, expected, "{persona}: idle check cost: {seen:#?}");
        assert_eq!(
            seen.len() as u64,
            expected,
            "{persona}: the BMC saw the same requests: {seen:#?}"
        );

        client
            .set_power(PowerAction::Off, Some(Duration::from_secs(5)))
            .await
            .unwrap_or_else(|e| panic!("{persona}: off: {e}"));
        client
            .clear_boot_override()
            .await
            .unwrap_or_else(|e| panic!("{persona}: clear: {e}"));
        assert_eq!(
            sim.system()["Boot"]["BootSourceOverrideEnabled"],
            "Disabled",
            "{persona}"
        );
        assert_eq!(
            sim.active_sessions(),
            0,
            "{persona}: every session logged out"
        );
    }
}

#[tokio::test]
async fn the_real_mockups_served_by_the_simulator_enroll() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/redfish/mockups");
    for (dir, persona, macs) in [
        ("DL325", Persona::Ilo, 4),
        ("Intel", Persona::Generic, 0),
        ("OpenBMC-stock", Persona::Openbmc, 0),
    ] {
        let (_sim, client) = serve(SimConfig {
            persona,
            mockup: Some(root.join(dir)),
            power_delay: Duration::ZERO,
            ..SimConfig::default()
        })
        .await;
        let inventory = client
            .inventory()
            .await
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(
            inventory.nics.len() >= macs,
            "{dir}: {} NICs",
            inventory.nics.len()
        );
        client
            .set_pxe_once(None)
            .await
            .unwrap_or_else(|e| panic!("{dir}: pxe: {e}"));
    }
}
