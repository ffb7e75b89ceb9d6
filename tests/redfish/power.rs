//! Power: idempotence, allowed values (inline, ActionInfo, malformed), vendor refusals, waiting.

use std::time::Duration;

use beskar7::redfish::{AuthMode, Bmc, PowerAction, PowerState, RedfishError};
use serde_json::{Value, json};

use super::mock::{MockBmc, Persona, dl325, mockup, redfish_error};
use super::{DL325_SYS, OPENBMC_SYS, client};

fn resets(bmc: &MockBmc) -> Vec<(String, String)> {
    bmc.log()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("ComputerSystem.Reset"))
        .map(|r| {
            let t = r
                .body
                .as_ref()
                .and_then(|b| b["ResetType"].as_str())
                .unwrap_or_default()
                .to_owned();
            (r.path, t)
        })
        .collect()
}

#[tokio::test]
async fn already_on_is_success_without_a_request() {
    let bmc = dl325(Persona::default()).await;
    let out = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::On, None)
        .await
        .expect("on");
    assert!(out.sent.is_empty());
    assert_eq!(out.state, PowerState::On);
    assert!(resets(&bmc).is_empty());
}

#[tokio::test]
async fn off_then_on_with_waiting() {
    let persona = Persona {
        power_lag: 3,
        ..Persona::default()
    };
    let bmc = dl325(persona).await;
    let c = client(&bmc, AuthMode::Auto);
    let out = c
        .set_power(PowerAction::Off, Some(Duration::from_secs(5)))
        .await
        .expect("off");
    assert_eq!(out.sent, vec!["ForceOff".to_owned()]);
    assert_eq!(out.state, PowerState::Off);
    let out = c
        .set_power(PowerAction::On, Some(Duration::from_secs(5)))
        .await
        .expect("on");
    assert_eq!(out.sent, vec!["On".to_owned()]);
    assert_eq!(out.state, PowerState::On);
    assert_eq!(
        resets(&bmc)[0].0,
        "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
    );
    assert_eq!(
        bmc.sessions(),
        (2, 0),
        "the session is held while waiting, then closed"
    );
}

#[tokio::test]
async fn waiting_times_out() {
    let persona = Persona {
        power_lag: 1_000_000,
        ..Persona::default()
    };
    let bmc = dl325(persona).await;
    let err = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Off, Some(Duration::from_millis(100)))
        .await
        .expect_err("never off");
    assert!(matches!(err, RedfishError::PowerTimeout { .. }), "{err}");
    assert!(
        err.to_string().contains("Off") && err.to_string().contains("On"),
        "{err}"
    );
}

/// iLO: `On` when (by now) already on gets 400 InvalidOperationForSystemState: success.
#[tokio::test]
async fn ilo_400_when_already_on_is_success() {
    let mut tree = mockup("DL325");
    tree.get_mut(DL325_SYS).expect("sys")["PowerState"] = json!("Off");
    let persona = Persona::default().hook(|s, r| {
        if r.is("POST", "ComputerSystem.Reset") {
            s.system_mut(DL325_SYS)["PowerState"] = json!("On"); // someone else was faster
            return Some(redfish_error(
                400,
                "iLO.2.14.InvalidOperationForSystemState",
                "already on",
            ));
        }
        None
    });
    let bmc = MockBmc::start(tree, persona).await;
    let out = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::On, None)
        .await
        .expect("on");
    assert_eq!(out.state, PowerState::On);
    assert_eq!(resets(&bmc).len(), 1);
}

/// iLO: Reset too soon after a power change → 400 InvalidOperationForSystemState; retried.
/// iDRAC10: `On` soon after off → 409 ActionParameterValueConflict; retried.
#[tokio::test]
async fn transient_refusals_are_retried() {
    for (status, id) in [
        (400, "iLO.2.14.InvalidOperationForSystemState"),
        (409, "IDRAC.2.8.ActionParameterValueConflict"),
    ] {
        let mut tree = mockup("DL325");
        tree.get_mut(DL325_SYS).expect("sys")["PowerState"] = json!("Off");
        let persona = Persona::default().hook(move |s, r| {
            (r.is("POST", "ComputerSystem.Reset") && s.bump("post") == 1)
                .then(|| redfish_error(status, id, "not now"))
        });
        let bmc = MockBmc::start(tree, persona).await;
        let out = client(&bmc, AuthMode::Auto)
            .set_power(PowerAction::On, None)
            .await
            .expect("on");
        assert_eq!(out.state, PowerState::On, "{id}");
        assert_eq!(resets(&bmc).len(), 2, "{id}");
    }
}

/// A refusal that is neither transient nor "already there" is an error naming the MessageId.
#[tokio::test]
async fn other_refusals_fail_with_the_message_id() {
    let persona = Persona::default().hook(|_, r| {
        r.is("POST", "ComputerSystem.Reset").then(|| {
            redfish_error(
                400,
                "Base.1.8.ActionParameterNotSupported",
                "ResetType not supported",
            )
        })
    });
    let bmc = dl325(persona).await;
    let err = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Off, None)
        .await
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("Base.1.8.ActionParameterNotSupported: ResetType not supported"),
        "{err}"
    );
    assert_eq!(
        err.message_id(),
        Some("Base.1.8.ActionParameterNotSupported")
    );
}

/// OpenBMC (and Gigabyte): reset types only via `@Redfish.ActionInfo`. With a restart type
/// missing there, Restart must pick PowerCycle.
#[tokio::test]
async fn reset_types_from_action_info() {
    let mut tree = mockup("OpenBMC-stock");
    tree.get_mut(OPENBMC_SYS).expect("sys")["PowerState"] = json!("On");
    let info = "/redfish/v1/Systems/system/ResetActionInfo";
    tree.get_mut(info).expect("info")["Parameters"][0]["AllowableValues"] =
        json!(["On", "ForceOff", "PowerCycle"]);
    let bmc = MockBmc::start(tree, Persona::default()).await;
    let out = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Restart, None)
        .await
        .expect("restart");
    assert_eq!(out.sent, vec!["PowerCycle".to_owned()]);
    assert!(bmc.log().iter().any(|r| r.is("GET", "ResetActionInfo")));
}

/// No restart type at all: ForceOff, wait, On.
#[tokio::test]
async fn restart_without_a_restart_type() {
    let mut tree = mockup("OpenBMC-stock");
    tree.get_mut(OPENBMC_SYS).expect("sys")["PowerState"] = json!("On");
    let info = "/redfish/v1/Systems/system/ResetActionInfo";
    tree.get_mut(info).expect("info")["Parameters"][0]["AllowableValues"] =
        json!(["On", "ForceOff"]);
    let bmc = MockBmc::start(tree, Persona::default()).await;
    let out = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Restart, Some(Duration::from_secs(2)))
        .await
        .expect("restart");
    assert_eq!(out.sent, vec!["ForceOff".to_owned(), "On".to_owned()]);
}

/// Supermicro: malformed AllowableValues `"GracefulShutdownGracefulRestart"`.
#[tokio::test]
async fn supermicro_malformed_allowable_values() {
    let mut tree = mockup("DL325");
    tree.get_mut(DL325_SYS).expect("sys")["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"] =
        json!([
            "On",
            "ForceOff",
            "GracefulShutdownGracefulRestart",
            "ForceRestart",
            "Nmi",
            "ForceOn"
        ]);
    let persona = Persona::default().hook(|s, r| {
        if r.is("POST", "ComputerSystem.Reset")
            && r.body
                .as_ref()
                .is_some_and(|b| b["ResetType"] == "GracefulShutdown")
        {
            s.system_mut(DL325_SYS)["PowerState"] = json!("Off");
            return Some(super::mock::empty(204));
        }
        None
    });
    let bmc = MockBmc::start(tree, persona).await;
    let c = client(&bmc, AuthMode::Auto);
    let inv = c.inventory().await.expect("inventory");
    assert!(
        inv.reset_types
            .expect("types")
            .contains(&"GracefulRestart".to_owned())
    );
    let out = c
        .set_power(PowerAction::GracefulOff, None)
        .await
        .expect("graceful off");
    assert_eq!(out.sent, vec!["GracefulShutdown".to_owned()]);
}

/// iLO: Reset success is 200 with a Base Success body, not 204.
#[tokio::test]
async fn ilo_reset_answers_200() {
    let bmc = dl325(Persona {
        reset_status: 200,
        ..Persona::default()
    })
    .await;
    let out = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Off, None)
        .await
        .expect("off");
    assert_eq!(out.state, PowerState::Off);
}

/// Apollo XL675d (iLO 5): reset targets end in `/`; the target is used verbatim.
#[tokio::test]
async fn trailing_slash_target_is_used_verbatim() {
    let mut tree = mockup("DL325");
    tree.get_mut(DL325_SYS).expect("sys")["Actions"]["#ComputerSystem.Reset"]["target"] =
        json!("/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/");
    let bmc = MockBmc::start(tree, Persona::default()).await;
    client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Off, None)
        .await
        .expect("off");
    assert_eq!(
        resets(&bmc)[0].0,
        "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/"
    );
}

/// iDRAC10: If-Match on an action POST gives 412; actions are posted without it.
#[tokio::test]
async fn actions_carry_no_if_match() {
    let bmc = dl325(Persona {
        reject_if_match_on_action: true,
        ..Persona::default()
    })
    .await;
    client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Off, None)
        .await
        .expect("off");
    assert!(
        bmc.log()
            .iter()
            .filter(|r| r.method == "POST")
            .all(|r| r.if_match.is_none())
    );
}

/// iDRAC: 500 SYS518 while busy is retried.
#[tokio::test]
async fn idrac_busy_is_retried() {
    let persona = Persona::default().hook(|s, r| {
        (r.is("GET", DL325_SYS) && s.bump("get") == 1)
            .then(|| redfish_error(500, "IDRAC.2.8.SYS518", "iDRAC is not ready"))
    });
    let bmc = dl325(persona).await;
    client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Off, None)
        .await
        .expect("off");
    let gets: Vec<Value> = bmc
        .log()
        .iter()
        .filter(|r| r.is("GET", DL325_SYS))
        .map(|_| Value::Null)
        .collect();
    assert!(gets.len() >= 2);
}

/// One-time PXE then power: a host that is on is restarted, in one session.
#[tokio::test]
async fn pxe_boot_restarts_a_running_host() {
    let bmc = dl325(Persona::default()).await;
    let (ov, out) = client(&bmc, AuthMode::Auto)
        .pxe_boot(None, None)
        .await
        .expect("pxe boot");
    assert_eq!(ov.target.as_deref(), Some("Pxe"));
    assert_eq!(out.sent, vec!["ForceRestart".to_owned()]);
    assert_eq!(bmc.sessions(), (1, 0));
}

/// `PoweringOn` counts as on and `PoweringOff` as off (ironic's mapping).
#[tokio::test]
async fn transitional_states_count_as_reached() {
    let mut tree = mockup("DL325");
    tree.get_mut(DL325_SYS).expect("sys")["PowerState"] = json!("PoweringOn");
    let bmc = MockBmc::start(tree, Persona::default()).await;
    let out = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::On, None)
        .await
        .expect("on");
    assert!(out.sent.is_empty());
    assert_eq!(out.state, PowerState::PoweringOn);
}
