//! Every persona serves a coherent tree a client can discover from the service root.

use super::*;
use beskar7_sim::bmc::PERSONAS;

#[tokio::test]
async fn every_persona_is_discoverable_from_the_service_root() {
    for &p in PERSONAS {
        let t = persona(p).await;
        let root = t.get("/redfish/v1").await.body;
        let systems = t
            .get(
                root["Systems"]["@odata.id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{p}: {root}")),
            )
            .await
            .body;
        let members = systems["Members"].as_array().unwrap();
        assert_eq!(members.len(), 1, "{p}");
        let system = t.get(members[0]["@odata.id"].as_str().unwrap()).await;
        assert_eq!(system.status, StatusCode::OK, "{p}");
        assert_eq!(
            system.body["Id"],
            p.quirks().system_id,
            "{p}: IDs are the vendor's, never built by clients"
        );
        assert!(
            system.body["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"].is_array(),
            "{p}"
        );
        if p.quirks().host_nics {
            let nics = t
                .get(
                    system.body["EthernetInterfaces"]["@odata.id"]
                        .as_str()
                        .unwrap(),
                )
                .await
                .body;
            let nic = t
                .get(nics["Members"][0]["@odata.id"].as_str().unwrap())
                .await
                .body;
            assert_eq!(nic["MACAddress"], "52:54:00:00:00:01", "{p}");
        }
    }
}

#[test]
fn personas_parse_by_name_and_unknown_names_list_the_known_ones() {
    for &p in PERSONAS {
        assert_eq!(p.name().parse::<Persona>().unwrap(), p);
    }
    let err = "hpe".parse::<Persona>().unwrap_err();
    assert!(
        err.contains("unknown persona \"hpe\"") && err.contains("ilo"),
        "{err}"
    );
}

#[test]
fn the_config_debug_output_hides_the_password() {
    let config = BmcConfig {
        password: "s3cret-p4ss".into(),
        ..BmcConfig::default()
    };
    assert!(!format!("{config:?}").contains("s3cret-p4ss"));
}
