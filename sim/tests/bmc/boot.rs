//! The one-time boot override: ETags, validation, persona quirks, and consumption by a boot.

use super::*;
use serde_json::json;

fn pxe_once(mode: Option<&str>) -> Value {
    let mut boot = json!({"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"});
    if let Some(mode) = mode {
        boot["BootSourceOverrideMode"] = json!(mode);
    }
    json!({"Boot": boot})
}

async fn patch(t: &Target, body: Value, if_match: Option<&str>) -> Answer {
    let path = t.bmc.system_path();
    let headers: Vec<(&str, &str)> = if_match.map(|m| vec![("If-Match", m)]).unwrap_or_default();
    t.send(Method::PATCH, &path, Some(body), &headers).await
}

#[tokio::test]
async fn a_one_time_pxe_override_is_consumed_by_the_next_boot() {
    let t = persona(Persona::Generic).await;
    let mut boots = t.bmc.subscribe_boots();
    let etag = t.get(&t.bmc.system_path()).await.etag.unwrap();
    assert_eq!(
        patch(&t, pxe_once(None), Some(&etag)).await.status,
        StatusCode::NO_CONTENT
    );
    let system = t.system().await;
    assert_eq!(
        (
            system["Boot"]["BootSourceOverrideTarget"].as_str(),
            system["Boot"]["BootSourceOverrideEnabled"].as_str()
        ),
        (Some("Pxe"), Some("Once"))
    );
    assert_ne!(
        system["@odata.etag"].as_str(),
        Some(etag.as_str()),
        "a change moves the ETag"
    );

    let target = system["Actions"]["#ComputerSystem.Reset"]["target"]
        .as_str()
        .unwrap()
        .to_string();
    t.send(Method::POST, &target, Some(json!({"ResetType": "On"})), &[])
        .await;
    let boot = boots.recv().await.unwrap();
    assert_eq!((boot.target.as_str(), boot.mode.as_str()), ("Pxe", "UEFI"));
    assert_eq!(boot.macs, ["52:54:00:00:00:01"]);
    let system = t.system().await;
    assert_eq!(
        system["Boot"]["BootSourceOverrideEnabled"], "Disabled",
        "Once is consumed"
    );

    t.send(
        Method::POST,
        &target,
        Some(json!({"ResetType": "ForceRestart"})),
        &[],
    )
    .await;
    assert_eq!(
        boots.recv().await.unwrap().target,
        "Hdd",
        "the next boot is from disk"
    );
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let t = persona(Persona::Generic).await;
    let etag = t.get(&t.bmc.system_path()).await.etag.unwrap();
    patch(
        &t,
        json!({"Boot": {"BootSourceOverrideTarget": "Hdd"}}),
        Some(&etag),
    )
    .await;
    let stale = patch(&t, pxe_once(None), Some(&etag)).await;
    assert_eq!(
        (stale.status, stale.message_id()),
        (
            StatusCode::PRECONDITION_FAILED,
            "Base.1.8.PreconditionFailed"
        )
    );
    assert_eq!(t.system().await["Boot"]["BootSourceOverrideTarget"], "Hdd");
}

#[tokio::test]
async fn bad_boot_patches_name_the_property() {
    let t = persona(Persona::Generic).await;
    let bad_value = patch(
        &t,
        json!({"Boot": {"BootSourceOverrideTarget": "Floppy"}}),
        None,
    )
    .await;
    assert_eq!(
        (bad_value.status, bad_value.message_id()),
        (StatusCode::BAD_REQUEST, "Base.1.8.PropertyValueNotInList")
    );
    assert!(
        bad_value.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Floppy")
    );
    let read_only = patch(&t, json!({"SerialNumber": "x"}), None).await;
    assert_eq!(
        (read_only.status, read_only.message_id()),
        (StatusCode::BAD_REQUEST, "Base.1.8.PropertyNotWritable")
    );
    assert_eq!(
        t.system().await["Boot"]["BootSourceOverrideTarget"],
        "None",
        "nothing half-applied"
    );
}

#[tokio::test]
async fn ami_requires_if_match_and_the_full_boot_triple() {
    let t = persona(Persona::Ami).await;
    let missing = patch(&t, pxe_once(Some("UEFI")), None).await;
    assert_eq!(
        (missing.status, missing.message_id()),
        (
            StatusCode::PRECONDITION_REQUIRED,
            "Base.1.8.PreconditionRequired"
        )
    );
    let etag = t.get(&t.bmc.system_path()).await.etag.unwrap();
    let partial = patch(&t, pxe_once(None), Some(&etag)).await;
    assert_eq!(
        (partial.status, partial.message_id()),
        (StatusCode::BAD_REQUEST, "Base.1.8.PropertyMissing")
    );
    assert_eq!(
        patch(&t, pxe_once(Some("UEFI")), Some(&etag)).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn ilo_hands_out_weak_etags_and_accepts_them_only_without_w_slash() {
    let t = persona(Persona::Ilo).await;
    let weak = t.get(&t.bmc.system_path()).await.etag.unwrap();
    assert!(weak.starts_with("W/\""), "{weak}");
    assert_eq!(
        patch(&t, pxe_once(None), Some(&weak)).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    let strong = weak.trim_start_matches("W/");
    assert_eq!(
        patch(&t, pxe_once(None), Some(strong)).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn supermicro_silently_reverts_what_is_not_resent() {
    let t = persona(Persona::Supermicro).await;
    let answer = patch(
        &t,
        json!({"Boot": {"BootSourceOverrideTarget": "Pxe"}}),
        None,
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "the PATCH still claims success"
    );
    let boot = &t.system().await["Boot"];
    assert_eq!(
        (
            boot["BootSourceOverrideMode"].as_str(),
            boot["BootSourceOverrideEnabled"].as_str()
        ),
        (Some("Legacy"), Some("Once"))
    );
    patch(&t, pxe_once(Some("UEFI")), None).await;
    assert_eq!(
        t.system().await["Boot"]["BootSourceOverrideMode"],
        "UEFI",
        "sending all of it sticks"
    );
}

#[tokio::test]
async fn xcc_rejects_continuous_and_no_once_rejects_once() {
    let xcc = persona(Persona::Xcc).await;
    let continuous = json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous"}});
    assert_eq!(
        patch(&xcc, continuous.clone(), None).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        patch(&xcc, pxe_once(None), None).await.status,
        StatusCode::OK,
        "XCC answers PATCH with the resource"
    );
    let old = persona(Persona::NoOnce).await;
    let once = patch(&old, pxe_once(None), None).await;
    assert_eq!(
        (once.status, once.message_id()),
        (StatusCode::BAD_REQUEST, "Base.1.8.PropertyValueNotInList")
    );
    assert_eq!(
        patch(&old, continuous, None).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn the_servers_own_reboot_and_poweroff_go_through_the_same_transitions() {
    // Zero delay: transitions complete before the call returns.
    let t = persona(Persona::Generic).await;
    let mut boots = t.bmc.subscribe_boots();
    let mut power = t.bmc.subscribe_power();
    assert!(!*power.borrow_and_update());
    t.bmc.os_reboot();
    t.bmc.os_power_off();
    assert!(
        boots.try_recv().is_err(),
        "an off server neither reboots nor powers off"
    );
    assert!(!power.has_changed().unwrap());

    let system = t.bmc.system_path();
    let continuous = json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous"}});
    assert!(patch(&t, continuous, None).await.status.is_success());
    let target = format!("{system}/Actions/ComputerSystem.Reset");
    t.send(Method::POST, &target, Some(json!({"ResetType": "On"})), &[])
        .await;
    assert_eq!(boots.recv().await.unwrap().target, "Pxe");
    assert!(power.has_changed().unwrap() && *power.borrow_and_update());

    // A reboot from inside keeps the power on (no power change) and boots through the override.
    t.bmc.os_reboot();
    assert_eq!(
        boots.recv().await.unwrap().target,
        "Pxe",
        "Continuous stays"
    );
    assert!(!power.has_changed().unwrap());
    let disabled = json!({"Boot": {"BootSourceOverrideEnabled": "Disabled"}});
    assert!(patch(&t, disabled, None).await.status.is_success());
    t.bmc.os_reboot();
    assert_eq!(boots.recv().await.unwrap().target, "Hdd");

    t.bmc.os_power_off();
    assert!(power.has_changed().unwrap() && !*power.borrow_and_update());
    assert_eq!(t.system().await["PowerState"], "Off");
}
