//! Real vendor payloads served with PATCH and POST applied in memory.

use super::*;
use serde_json::json;
use std::path::PathBuf;

fn mockup(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/redfish/mockups")
        .join(name)
}

async fn serve(name: &str, persona: Persona) -> Target {
    start(BmcConfig {
        persona,
        mockup: Some(mockup(name)),
        power_delay: Duration::ZERO,
        ..BmcConfig::default()
    })
    .await
}

#[tokio::test]
async fn hpe_dl325_mockup_boots_pxe_once_and_powers_off() {
    let t = serve("DL325", Persona::Ilo).await;
    assert_eq!(t.bmc.system_path(), "/redfish/v1/Systems/1");
    let system = t.system().await;
    assert_eq!(
        (
            system["Manufacturer"].as_str(),
            system["PowerState"].as_str()
        ),
        (Some("HPE"), Some("On"))
    );
    let nics = t.get("/redfish/v1/Systems/1/EthernetInterfaces").await.body;
    assert_eq!(nics["Members"].as_array().unwrap().len(), 4);

    let mut boots = t.bmc.subscribe_boots();
    let strong = t
        .get("/redfish/v1/Systems/1")
        .await
        .etag
        .unwrap()
        .trim_start_matches("W/")
        .to_string();
    let body =
        json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}});
    assert_eq!(
        t.send(
            Method::PATCH,
            "/redfish/v1/Systems/1",
            Some(body),
            &[("If-Match", &strong)]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let restart = json!({"ResetType": "ForceRestart"});
    // The DL325's reset target is taken from the payload, as clients must.
    assert_eq!(
        t.send(
            Method::POST,
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            Some(restart),
            &[]
        )
        .await
        .status,
        StatusCode::OK
    );
    let boot = boots.recv().await.unwrap();
    assert_eq!(boot.target, "Pxe");
    assert_eq!(boot.macs.len(), 4);
    let off = json!({"ResetType": "ForceOff"});
    t.send(
        Method::POST,
        "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
        Some(off),
        &[],
    )
    .await;
    assert_eq!(t.system().await["PowerState"], "Off");
}

#[tokio::test]
async fn openbmc_mockup_enforces_its_action_info() {
    let t = serve("OpenBMC-stock", Persona::Openbmc).await;
    assert_eq!(t.bmc.system_path(), "/redfish/v1/Systems/system");
    let pc = json!({"ResetType": "PowerCycle"});
    assert_eq!(
        t.send(
            Method::POST,
            "/redfish/v1/Systems/system/Actions/ComputerSystem.Reset",
            Some(pc),
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let nmi_like = json!({"ResetType": "Explode"});
    assert_eq!(
        t.send(
            Method::POST,
            "/redfish/v1/Systems/system/Actions/ComputerSystem.Reset",
            Some(nmi_like),
            &[]
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn intel_mockup_serves_its_system_at_a_vendor_id() {
    let t = serve("Intel", Persona::Generic).await;
    let path = t.bmc.system_path();
    assert!(path.starts_with("/redfish/v1/Systems/"));
    let answer = t.get(&path).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body["Boot"].is_object());
}

#[test]
fn a_directory_that_is_not_a_mockup_is_a_clear_error() {
    let err = Bmc::new(BmcConfig {
        mockup: Some(mockup("no-such-vendor")),
        ..BmcConfig::default()
    })
    .err()
    .unwrap();
    assert!(
        err.contains("cannot read mockup") && err.contains("no-such-vendor"),
        "{err}"
    );
}
