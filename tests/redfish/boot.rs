//! One-time PXE: the body each vendor needs, fallbacks, and the read-back.

use std::collections::BTreeMap;

use beskar7::redfish::{AuthMode, Bmc, BootMode, RedfishError};
use serde_json::{Value, json};

use super::mock::{MockBmc, Persona, dl325, empty, mockup, redfish_error, respond};
use super::{DELL_SYS, DL325_SYS, INTEL_SYS, OPENBMC_SYS, client};

fn patches(bmc: &MockBmc) -> Vec<(String, Value)> {
    bmc.log()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.path, r.body.unwrap_or_default()))
        .collect()
}

fn boot_keys(body: &Value) -> Vec<String> {
    let mut k: Vec<String> = body["Boot"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// A DL325 tree re-branded as another vendor, with Boot fields overridden.
fn branded(vendor: &str, boot: Value) -> BTreeMap<String, Value> {
    let mut tree = mockup("DL325");
    tree.get_mut("/redfish/v1").expect("root")["Vendor"] = json!(vendor);
    if let Some(o) = tree.get_mut("/redfish/v1").and_then(Value::as_object_mut) {
        o.remove("Oem");
        o.remove("Product");
    }
    let sys = tree.get_mut(DL325_SYS).expect("sys");
    sys["Manufacturer"] = json!(vendor);
    for (k, v) in boot.as_object().cloned().unwrap_or_default() {
        sys["Boot"][k] = v;
    }
    tree
}

#[tokio::test]
async fn dl325_minimal_body_and_read_back() {
    let bmc = dl325(Persona::default()).await;
    let got = client(&bmc, AuthMode::Auto)
        .set_pxe_once(Some(BootMode::Uefi))
        .await
        .expect("pxe");
    assert_eq!(got.target.as_deref(), Some("Pxe"));
    assert_eq!(got.enabled.as_deref(), Some("Once"));
    let p = patches(&bmc);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, DL325_SYS);
    // UEFI already: no Mode in the body.
    assert_eq!(
        p[0].1,
        json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}})
    );
    // Read back after the PATCH.
    let log = bmc.log();
    let at = log.iter().position(|r| r.method == "PATCH").expect("patch");
    assert!(
        log[at + 1..].iter().any(|r| r.is("GET", DL325_SYS)),
        "verified by GET"
    );
}

#[tokio::test]
async fn mode_is_sent_when_it_must_change() {
    let bmc = MockBmc::start(mockup("Intel"), Persona::default()).await;
    let got = client(&bmc, AuthMode::Auto)
        .set_pxe_once(Some(BootMode::Uefi))
        .await
        .expect("pxe");
    assert_eq!(got.mode.as_deref(), Some("UEFI"));
    assert_eq!(patches(&bmc)[0].1["Boot"]["BootSourceOverrideMode"], "UEFI");
    // The Intel BMC hands out no ETag at all: no If-Match.
    assert!(
        bmc.log()
            .iter()
            .filter(|r| r.method == "PATCH")
            .all(|r| r.if_match.is_none())
    );
    // Without a wanted mode, the BMC's mode stays and is not sent.
    let bmc = MockBmc::start(mockup("Intel"), Persona::default()).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert!(!boot_keys(&patches(&bmc)[0].1).contains(&"BootSourceOverrideMode".to_owned()));
    assert_eq!(
        bmc.state().boot(INTEL_SYS)["BootSourceOverrideMode"],
        "Legacy"
    );
}

#[tokio::test]
async fn mode_outside_allowable_values_is_unsupported() {
    let mut tree = mockup("OpenBMC-stock");
    tree.get_mut(OPENBMC_SYS).expect("sys")["Boot"]["BootSourceOverrideMode@Redfish.AllowableValues"] =
        json!(["UEFI"]);
    tree.get_mut(OPENBMC_SYS).expect("sys")["Boot"]["BootSourceOverrideMode"] = json!("UEFI");
    let bmc = MockBmc::start(tree, Persona::default()).await;
    let err = client(&bmc, AuthMode::Auto)
        .set_pxe_once(Some(BootMode::Legacy))
        .await
        .expect_err("no Legacy");
    assert!(matches!(err, RedfishError::Unsupported(_)), "{err}");
    assert!(patches(&bmc).is_empty());
}

#[tokio::test]
async fn pxe_outside_allowable_values_is_unsupported() {
    let mut tree = mockup("DL325");
    tree.get_mut(DL325_SYS).expect("sys")["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"] =
        json!(["None", "Hdd"]);
    let bmc = MockBmc::start(tree, Persona::default()).await;
    let err = client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect_err("no Pxe");
    assert!(
        err.to_string()
            .contains("PXE boot (allowed targets: None, Hdd)"),
        "{err}"
    );
    assert!(patches(&bmc).is_empty());
}

/// Supermicro: must resend Enabled (or it reverts) and Mode (or it reverts to Legacy).
fn supermicro_hook(
    s: &mut super::mock::MockState,
    r: &super::mock::Req,
) -> Option<axum::response::Response> {
    if r.method != "PATCH" {
        return None;
    }
    if let Some(resp) = super::mock::if_match_check(s, r, DL325_SYS) {
        return Some(resp);
    }
    let b = r.body.clone().unwrap_or_default();
    let boot = &mut s.system_mut(DL325_SYS)["Boot"];
    for (k, v) in b["Boot"].as_object().cloned().unwrap_or_default() {
        boot[k] = v;
    }
    if b["Boot"].get("BootSourceOverrideEnabled").is_none() {
        boot["BootSourceOverrideEnabled"] = json!("Disabled");
    }
    if b["Boot"].get("BootSourceOverrideMode").is_none() {
        boot["BootSourceOverrideMode"] = json!("Legacy");
    }
    Some(respond(
        200,
        json!({"@Message.ExtendedInfo": [{"MessageId": "Base.1.4.Success"}]}),
    ))
}

#[tokio::test]
async fn supermicro_gets_the_full_triple_in_one_patch() {
    let tree = branded(
        "Supermicro",
        json!({"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Hdd"}),
    );
    let bmc = MockBmc::start(tree, Persona::default().hook(supermicro_hook)).await;
    let got = client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(
        (got.enabled.as_deref(), got.mode.as_deref()),
        (Some("Once"), Some("UEFI"))
    );
    let p = patches(&bmc);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0].1,
        json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "UEFI"}})
    );
}

/// Supermicro AS-1015CS (AMI): 200 to the PATCH, but Mode→Legacy and Enabled→Disabled.
#[tokio::test]
async fn silent_revert_is_caught_by_the_read_back() {
    let persona = Persona::default().hook(|s, r| {
        if r.method != "PATCH" {
            return None;
        }
        let boot = &mut s.system_mut(DL325_SYS)["Boot"];
        boot["BootSourceOverrideTarget"] = json!("Pxe");
        boot["BootSourceOverrideEnabled"] = json!("Disabled");
        boot["BootSourceOverrideMode"] = json!("Legacy");
        Some(respond(200, json!({})))
    });
    let bmc = dl325(persona).await;
    let err = client(&bmc, AuthMode::Auto)
        .set_pxe_once(Some(BootMode::Uefi))
        .await
        .expect_err("reverted");
    assert!(
        matches!(err, RedfishError::BootOverrideNotApplied(_)),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("BootSourceOverrideEnabled=Disabled"),
        "{err}"
    );
    let p = patches(&bmc);
    assert_eq!(p.len(), 2, "one retry with the full triple");
    assert_eq!(boot_keys(&p[1].1).len(), 3);
    assert_eq!(bmc.sessions().1, 0);
}

/// AMI (Gigabyte, ASRock Rack): every boot PATCH needs the full triple.
#[tokio::test]
async fn ami_needs_the_full_triple() {
    let tree = branded("AMI", json!({}));
    let persona = Persona::default().hook(|_, r| {
        (r.method == "PATCH" && boot_keys(r.body.as_ref().unwrap_or(&Value::Null)).len() != 3).then(
            || {
                redfish_error(
                    400,
                    "Base.1.8.PropertyMissing",
                    "BootSourceOverrideMode is required",
                )
            },
        )
    });
    let bmc = MockBmc::start(tree, persona).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(patches(&bmc).len(), 1);
}

/// Unnamed vendors (ironic story 2007355): PATCHing an unchanged Enabled is rejected.
#[tokio::test]
async fn unchanged_enabled_is_not_sent() {
    let mut tree = mockup("DL325");
    tree.get_mut(DL325_SYS).expect("sys")["Boot"]["BootSourceOverrideEnabled"] = json!("Once");
    let persona = Persona::default().hook(|s, r| {
        let cur = s.boot(DL325_SYS)["BootSourceOverrideEnabled"].clone();
        (r.method == "PATCH"
            && r.body
                .as_ref()
                .is_some_and(|b| b["Boot"]["BootSourceOverrideEnabled"] == cur))
        .then(|| redfish_error(400, "Base.1.8.PropertyValueError", "unchanged Enabled"))
    });
    let bmc = MockBmc::start(tree, persona).await;
    let got = client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(got.enabled.as_deref(), Some("Once"));
    assert_eq!(
        patches(&bmc)[0].1,
        json!({"Boot": {"BootSourceOverrideTarget": "Pxe"}})
    );
}

/// HPE ProLiant DL160 Gen10: Mode is not writable; a body with it (even unchanged) gets 400.
#[tokio::test]
async fn mode_not_writable_falls_back_to_a_minimal_body() {
    let persona = Persona::default().hook(|_, r| {
        (r.method == "PATCH"
            && r.body
                .as_ref()
                .is_some_and(|b| b["Boot"].get("BootSourceOverrideMode").is_some()))
        .then(|| {
            redfish_error(
                400,
                "Base.1.8.PropertyNotWritable",
                "BootSourceOverrideMode is read-only",
            )
        })
    });
    // Mode unchanged: never sent.
    let bmc = dl325(persona.clone()).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(Some(BootMode::Uefi))
        .await
        .expect("pxe");
    assert_eq!(patches(&bmc).len(), 1);
    // Mode must change: the minimal body is retried, and the read-back says the mode did not.
    let bmc = dl325(persona).await;
    let err = client(&bmc, AuthMode::Auto)
        .set_pxe_once(Some(BootMode::Legacy))
        .await
        .expect_err("mode stuck");
    assert!(
        err.to_string().contains("BootSourceOverrideMode=UEFI"),
        "{err}"
    );
    let p = patches(&bmc);
    assert!(p.iter().any(|(_, b)| boot_keys(b) == ["BootSourceOverrideEnabled", "BootSourceOverrideTarget"]), "{p:?}");
}

/// iDRAC10: Boot is read-only on the System; the writable copy is `@Redfish.Settings`.
#[tokio::test]
async fn idrac10_boot_goes_to_the_settings_object() {
    let settings = format!("{DELL_SYS}/Settings");
    let mut tree = super::mock::dell_r6515();
    let sys = tree.get_mut(DELL_SYS).expect("sys");
    sys["@Redfish.Settings"] = json!({"SettingsObject": {"@odata.id": settings}});
    let boot = sys["Boot"].clone();
    tree.insert(
        settings.clone(),
        json!({"@odata.id": settings, "Boot": boot}),
    );
    let persona = Persona::default().hook(|_, r| {
        r.is("PATCH", DELL_SYS).then(|| {
            redfish_error(
                400,
                "Base.1.12.PropertyNotWritable",
                "The property Boot is a read only property",
            )
        })
    });
    let bmc = MockBmc::start(tree, persona).await;
    let got = client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(got.target.as_deref(), Some("Pxe"));
    let paths: Vec<String> = patches(&bmc).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, vec![DELL_SYS.to_owned(), settings.clone()]);
    assert_eq!(
        bmc.state().boot(&settings)["BootSourceOverrideTarget"],
        "Pxe"
    );
}

/// iDRAC 7–9: Settings is for BIOS only; the one-time override goes to the System.
#[tokio::test]
async fn idrac9_override_stays_on_the_system() {
    let settings = format!("{DELL_SYS}/Settings");
    let mut tree = super::mock::dell_r6515();
    tree.get_mut(DELL_SYS).expect("sys")["@Redfish.Settings"] =
        json!({"SettingsObject": {"@odata.id": settings}});
    tree.insert(settings.clone(), json!({"@odata.id": settings}));
    let bmc = MockBmc::start(tree, Persona::default()).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(Some(BootMode::Legacy))
        .await
        .expect("pxe");
    let p = patches(&bmc);
    let paths: Vec<String> = p.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(paths, vec![DELL_SYS.to_owned()]);
    // Dell: re-asserting an unchanged mode broke UEFI/BIOS switching; it is not sent.
    assert!(!boot_keys(&p[0].1).contains(&"BootSourceOverrideMode".to_owned()));
}

/// Lenovo XCC: Enabled allows only Once/Disabled; Continuous gets 400. Only Once is sent.
#[tokio::test]
async fn xcc_never_gets_continuous() {
    let tree = branded(
        "Lenovo",
        json!({"BootSourceOverrideEnabled@Redfish.AllowableValues": ["Once", "Disabled"]}),
    );
    let persona = Persona::default().hook(|_, r| {
        (r.method == "PATCH"
            && r.body
                .as_ref()
                .is_some_and(|b| b["Boot"]["BootSourceOverrideEnabled"] == "Continuous"))
        .then(|| redfish_error(400, "Base.1.8.PropertyValueNotInList", "Continuous"))
    });
    let bmc = MockBmc::start(tree, persona).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    // A BMC that does not allow Once at all is refused up front.
    let tree = branded(
        "Lenovo",
        json!({"BootSourceOverrideEnabled@Redfish.AllowableValues": ["Continuous", "Disabled"]}),
    );
    let bmc = MockBmc::start(tree, Persona::default()).await;
    let err = client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect_err("no Once");
    assert!(matches!(err, RedfishError::Unsupported(_)), "{err}");
}

/// iLO: a boot PATCH during POST gets 400 UnableToModifyDuringSystemPOST; retried.
#[tokio::test]
async fn ilo_during_post_is_retried() {
    let persona = Persona::default().hook(|s, r| {
        (r.method == "PATCH" && s.bump("patch") <= 2).then(|| {
            redfish_error(
                400,
                "iLO.2.14.UnableToModifyDuringSystemPOST",
                "The system is in POST",
            )
        })
    });
    let bmc = dl325(persona).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(patches(&bmc).len(), 3);
}

#[tokio::test]
async fn clear_override_is_verified_and_idempotent() {
    let bmc = dl325(Persona::default()).await;
    let c = client(&bmc, AuthMode::Auto);
    c.set_pxe_once(None).await.expect("pxe");
    bmc.clear_log();
    let got = c.clear_boot_override().await.expect("clear");
    assert_eq!(got.enabled.as_deref(), Some("Disabled"));
    assert_eq!(
        patches(&bmc)[0].1,
        json!({"Boot": {"BootSourceOverrideTarget": "None", "BootSourceOverrideEnabled": "Disabled"}})
    );
    bmc.clear_log();
    c.clear_boot_override().await.expect("clear again");
    assert!(patches(&bmc).is_empty(), "already clear: nothing sent");
}

/// A PATCH answered 202 is followed through its task monitor before the read-back.
#[tokio::test]
async fn boot_patch_with_a_task_monitor() {
    let persona = Persona::default().hook(|s, r| {
        if r.method == "PATCH" {
            let b = r.body.clone().unwrap_or_default();
            for (k, v) in b["Boot"].as_object().cloned().unwrap_or_default() {
                s.system_mut(DL325_SYS)["Boot"][k] = v;
            }
            let mut resp = empty(202);
            resp.headers_mut().insert(
                "location",
                "/redfish/v1/TaskService/TaskMonitors/7"
                    .parse()
                    .expect("hv"),
            );
            return Some(resp);
        }
        if r.path == "/redfish/v1/TaskService/TaskMonitors/7" {
            return Some(if s.bump("mon") < 2 {
                empty(202)
            } else {
                empty(204)
            });
        }
        None
    });
    let bmc = dl325(persona).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(
        bmc.log()
            .iter()
            .filter(|r| r.path.ends_with("TaskMonitors/7"))
            .count(),
        2
    );
}

/// iDRAC10: clearing goes to the Settings object too.
#[tokio::test]
async fn idrac10_clear_goes_to_the_settings_object() {
    let settings = format!("{DELL_SYS}/Settings");
    let mut tree = super::mock::dell_r6515();
    let sys = tree.get_mut(DELL_SYS).expect("sys");
    sys["@Redfish.Settings"] = json!({"SettingsObject": {"@odata.id": settings}});
    sys["Boot"]["BootSourceOverrideEnabled"] = json!("Once");
    sys["Boot"]["BootSourceOverrideTarget"] = json!("Pxe");
    let boot = sys["Boot"].clone();
    tree.insert(
        settings.clone(),
        json!({"@odata.id": settings, "Boot": boot}),
    );
    let persona = Persona::default().hook(|_, r| {
        r.is("PATCH", DELL_SYS).then(|| {
            redfish_error(
                400,
                "Base.1.12.PropertyNotWritable",
                "The property Boot is a read only property",
            )
        })
    });
    let bmc = MockBmc::start(tree, persona).await;
    let got = client(&bmc, AuthMode::Auto)
        .clear_boot_override()
        .await
        .expect("clear");
    assert_eq!(got.enabled.as_deref(), Some("Disabled"));
    assert_eq!(
        bmc.state().boot(&settings)["BootSourceOverrideEnabled"],
        "Disabled"
    );
}

/// sushy-emulator: no `None` among the targets, `Enabled` ignored (always `Continuous`), and a
/// body without a target is a plain-text 400. Clearing sets `Hdd`.
#[tokio::test]
async fn clear_without_a_none_target() {
    let mut tree = mockup("DL325");
    let boot = &mut tree.get_mut(DL325_SYS).expect("sys")["Boot"];
    boot["BootSourceOverrideTarget@Redfish.AllowableValues"] =
        json!(["Pxe", "Cd", "Hdd", "UefiHttp"]);
    boot["BootSourceOverrideTarget"] = json!("Pxe");
    boot["BootSourceOverrideEnabled"] = json!("Continuous");
    let persona = Persona::default().hook(|s, r| {
        if r.method != "PATCH" {
            return None;
        }
        let b = r.body.clone().unwrap_or_default();
        let Some(t) = b["Boot"].get("BootSourceOverrideTarget").cloned() else {
            return Some(axum::response::IntoResponse::into_response((
                axum::http::StatusCode::BAD_REQUEST,
                [("content-type", "application/json")],
                "Missing the BootSourceOverrideTarget and/or BootSourceOverrideMode element",
            )));
        };
        s.system_mut(DL325_SYS)["Boot"]["BootSourceOverrideTarget"] = t;
        Some(empty(204))
    });
    let bmc = MockBmc::start(tree, persona).await;
    let got = client(&bmc, AuthMode::Auto)
        .clear_boot_override()
        .await
        .expect("clear");
    assert_eq!(got.target.as_deref(), Some("Hdd"));
    assert_eq!(got.enabled.as_deref(), Some("Continuous"));
}
