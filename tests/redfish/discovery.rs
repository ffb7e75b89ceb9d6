//! Discovery, system selection and inventory against the real payloads.

use beskar7::redfish::{AuthMode, Bmc, Health, PowerState, RedfishError, Vendor};
use serde_json::json;

use super::mock::{MockBmc, Persona, dell_r6515, dl325, mockup};
use super::{DELL_SYS, DL325_SYS, INTEL_SYS, OPENBMC_SYS, client, config};

#[tokio::test]
async fn dl325_inventory_from_the_real_payloads() {
    let bmc = dl325(Persona::default()).await;
    let inv = client(&bmc, AuthMode::Auto)
        .inventory()
        .await
        .expect("inventory");
    assert_eq!(inv.vendor, Vendor::Hpe);
    assert_eq!(inv.snapshot.path, DL325_SYS);
    assert_eq!(inv.snapshot.power, PowerState::On);
    assert_eq!(inv.snapshot.health, Health::Ok);
    assert_eq!(inv.snapshot.boot.enabled.as_deref(), Some("Disabled"));
    assert_eq!(inv.model.as_deref(), Some("ProLiant DL325 Gen10 Plus"));
    assert_eq!(inv.serial_number.as_deref(), Some("MXQ019020B"));
    assert_eq!(inv.cpu_count, Some(1));
    assert_eq!(inv.cpu_cores, None, "CoreCount is absent in the payload");
    assert_eq!(inv.memory_gib, Some(64.0));
    assert_eq!(inv.redfish_version.as_deref(), Some("1.6.0"));
    assert_eq!(inv.nics.len(), 4);
    assert_eq!(inv.nics[0].mac, "94:40:c9:5c:86:bc");
    assert!(
        inv.nics.iter().all(|n| n.ipv4.is_empty()),
        "iLO's \"N/A\" is not an address"
    );
    assert!(
        inv.reset_types
            .as_ref()
            .is_some_and(|r| r.contains(&"ForceOff".to_owned()))
    );
    // One session, logged out.
    assert_eq!(bmc.sessions(), (1, 0));
}

#[tokio::test]
async fn openbmc_without_manufacturer_or_host_nics() {
    let bmc = MockBmc::start(mockup("OpenBMC-stock"), Persona::default()).await;
    let inv = client(&bmc, AuthMode::Auto)
        .inventory()
        .await
        .expect("inventory");
    assert_eq!(inv.snapshot.path, OPENBMC_SYS);
    assert_eq!(inv.manufacturer, None);
    assert_eq!(inv.model, None);
    assert!(inv.nics.is_empty());
    assert_eq!(inv.snapshot.power, PowerState::Off);
    let rt = inv.reset_types.expect("from ActionInfo");
    assert!(rt.contains(&"PowerCycle".to_owned()) && rt.contains(&"ForceOn".to_owned()));
}

#[tokio::test]
async fn intel_non_uuid_id_and_empty_nic_collection() {
    let bmc = MockBmc::start(mockup("Intel"), Persona::default()).await;
    let inv = client(&bmc, AuthMode::Auto)
        .inventory()
        .await
        .expect("inventory");
    assert_eq!(inv.snapshot.path, INTEL_SYS);
    assert_eq!(inv.vendor, Vendor::Intel);
    assert_eq!(inv.snapshot.boot.mode.as_deref(), Some("Legacy"));
    assert!(inv.nics.is_empty());
}

#[tokio::test]
async fn dell_r6515_bodies() {
    let bmc = MockBmc::start(dell_r6515(), Persona::default()).await;
    let inv = client(&bmc, AuthMode::Auto)
        .inventory()
        .await
        .expect("inventory");
    assert_eq!(inv.vendor, Vendor::Dell);
    assert_eq!(inv.snapshot.path, DELL_SYS);
    assert!(
        inv.nics.is_empty(),
        "the EthernetInterfaces collection 404s here"
    );
}

#[tokio::test]
async fn several_systems_need_a_system_path() {
    let mut tree = mockup("DL325");
    let sys = tree[DL325_SYS].clone();
    tree.insert("/redfish/v1/Systems/2".into(), sys);
    tree.insert(
        "/redfish/v1/Systems".into(),
        json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}, {"@odata.id": "/redfish/v1/Systems/2"}]}),
    );
    let bmc = MockBmc::start(tree, Persona::default()).await;
    let err = client(&bmc, AuthMode::Auto)
        .inventory()
        .await
        .expect_err("ambiguous");
    assert!(
        matches!(err, RedfishError::SeveralSystems(ref m) if m.len() == 2),
        "{err}"
    );
    assert!(err.to_string().contains("systemPath"), "{err}");
    assert_eq!(bmc.sessions().1, 0, "logged out on the error path");

    let mut cfg = config(&bmc.url(), AuthMode::Auto);
    cfg.system_path = Some("/redfish/v1/Systems/2/".into());
    let c = beskar7::redfish::RedfishClient::new(cfg).expect("client");
    let inv = c.inventory().await.expect("inventory");
    assert_eq!(inv.snapshot.path, "/redfish/v1/Systems/2");

    // The metal3 form: the system path in the address.
    let c = beskar7::redfish::RedfishClient::new(config(
        &format!("{}/redfish/v1/Systems/2", bmc.url()),
        AuthMode::Auto,
    ))
    .expect("client");
    assert_eq!(
        c.inventory().await.expect("inventory").snapshot.path,
        "/redfish/v1/Systems/2"
    );
}

#[tokio::test]
async fn no_system_and_counts_members_without_odata_count() {
    let mut tree = mockup("DL325");
    tree.insert("/redfish/v1/Systems".into(), json!({"Members": []}));
    let bmc = MockBmc::start(tree, Persona::default()).await;
    let err = client(&bmc, AuthMode::Basic)
        .inventory()
        .await
        .expect_err("none");
    assert!(matches!(err, RedfishError::NoSystem), "{err}");
}

#[tokio::test]
async fn check_with_a_seeded_discovery_costs_one_get() {
    let bmc = dl325(Persona::default()).await;
    let first = client(&bmc, AuthMode::Auto);
    first.inventory().await.expect("inventory");
    first.check().await.expect("check");
    let seeded = client(&bmc, AuthMode::Auto);
    seeded.seed(first.discovery());
    bmc.clear_log();
    seeded.check().await.expect("check");
    let log = bmc.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].is("GET", DL325_SYS));
}

/// Controllers hold the client as `Arc<dyn Bmc>`; tests can substitute their own.
#[tokio::test]
async fn usable_as_dyn_bmc() {
    let bmc = MockBmc::start(mockup("Intel"), Persona::default()).await;
    let dynamic: std::sync::Arc<dyn Bmc> = std::sync::Arc::new(client(&bmc, AuthMode::Auto));
    let task = tokio::spawn({
        let dynamic = dynamic.clone();
        async move { dynamic.check().await }
    });
    let snap = task.await.expect("join").expect("check");
    assert_eq!(snap.path, INTEL_SYS);
}

#[test]
fn vendor_detection() {
    for (hint, v) in [
        ("HPE", Vendor::Hpe),
        ("Hewlett Packard Enterprise", Vendor::Hpe),
        ("Dell Inc.", Vendor::Dell),
        ("Lenovo", Vendor::Lenovo),
        ("Supermicro", Vendor::Supermicro),
        ("AMI", Vendor::Ami),
        ("American Megatrends International", Vendor::Ami),
        ("Giga Computing", Vendor::Ami),
        ("ASRockRack", Vendor::Ami),
        ("Intel Corporation", Vendor::Intel),
        ("Contoso", Vendor::Other),
    ] {
        assert_eq!(Vendor::detect(hint), v, "{hint}");
    }
}

/// A fresh client with a configured system path: the idle check is one GET, nothing else.
#[tokio::test]
async fn check_with_a_configured_system_path_costs_one_get() {
    let bmc = dl325(Persona::default()).await;
    let mut cfg = config(&bmc.url(), AuthMode::Auto);
    cfg.system_path = Some(DL325_SYS.into());
    let c = beskar7::redfish::RedfishClient::new(cfg).expect("client");
    c.check().await.expect("check");
    let log = bmc.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].is("GET", DL325_SYS));
    assert_eq!(c.requests_sent(), 1);
}

/// The enrollment budget quoted in docs/redfish.md.
#[tokio::test]
async fn enrollment_request_budget() {
    let bmc = dl325(Persona::default()).await;
    let c = client(&bmc, AuthMode::Auto);
    c.inventory().await.expect("inventory");
    assert_eq!(
        c.requests_sent(),
        10,
        "{:?}",
        bmc.log().iter().map(|r| r.path.clone()).collect::<Vec<_>>()
    );
}
