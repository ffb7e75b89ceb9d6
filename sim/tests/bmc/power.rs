//! Power: asynchronous transitions, allowed reset types, persona answers, task monitors, faults.

use super::*;
use beskar7_sim::bmc::Fault;
use serde_json::json;

async fn reset(t: &Target, reset_type: &str, headers: &[(&str, &str)]) -> Answer {
    let target = t.system().await["Actions"]["#ComputerSystem.Reset"]["target"]
        .as_str()
        .unwrap()
        .to_string();
    t.send(
        Method::POST,
        &target,
        Some(json!({"ResetType": reset_type})),
        headers,
    )
    .await
}

/// Transitions take long enough that the next request surely sees them in progress, even on a
/// loaded machine; the end state is then awaited, not slept for.
const SLOW_POWER: Duration = Duration::from_secs(2);

async fn until_power(t: &Target, state: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while t.system().await["PowerState"] != state {
        assert!(
            std::time::Instant::now() < deadline,
            "PowerState never became {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn power_transitions_take_time_and_are_reported_on_the_way() {
    let t = start(BmcConfig {
        power_delay: SLOW_POWER,
        ..BmcConfig::default()
    })
    .await;
    assert_eq!(t.system().await["PowerState"], "Off");
    assert_eq!(reset(&t, "On", &[]).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.system().await["PowerState"], "PoweringOn");
    until_power(&t, "On").await;
    assert_eq!(
        reset(&t, "On", &[]).await.status,
        StatusCode::NO_CONTENT,
        "already on is not an error here"
    );
    reset(&t, "GracefulShutdown", &[]).await;
    assert_eq!(t.system().await["PowerState"], "PoweringOff");
    until_power(&t, "Off").await;
}

#[tokio::test]
async fn unknown_or_missing_reset_types_are_400() {
    let t = persona(Persona::Generic).await;
    let unknown = reset(&t, "Explode", &[]).await;
    assert_eq!(
        (unknown.status, unknown.message_id()),
        (
            StatusCode::BAD_REQUEST,
            "Base.1.8.ActionParameterValueNotInList"
        )
    );
    let target = t.system().await["Actions"]["#ComputerSystem.Reset"]["target"]
        .as_str()
        .unwrap()
        .to_string();
    let missing = t.send(Method::POST, &target, Some(json!({})), &[]).await;
    assert_eq!(missing.message_id(), "Base.1.8.ActionParameterMissing");
}

#[tokio::test]
async fn ilo_refuses_on_when_on_and_answers_success_with_a_body() {
    let t = persona(Persona::Ilo).await;
    let on = reset(&t, "On", &[]).await;
    assert_eq!(on.status, StatusCode::OK);
    assert_eq!(
        on.body["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "Base.1.4.Success"
    );
    let again = reset(&t, "On", &[]).await;
    assert_eq!(
        (again.status, again.message_id()),
        (
            StatusCode::BAD_REQUEST,
            "iLO.2.14.InvalidOperationForSystemState"
        )
    );
    assert_eq!(t.system().await["PowerState"], "On");
}

#[tokio::test]
async fn idrac_rejects_if_match_on_actions() {
    let t = persona(Persona::Idrac).await;
    let token = answer(
        t.http
            .post(format!("{}/redfish/v1/SessionService/Sessions", t.base))
            .json(&json!({"UserName": "admin", "Password": "password"}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .token
    .unwrap();
    let system = t.bmc.system_path();
    let get = |path: String| {
        t.http
            .get(format!("{}{path}", t.base))
            .header("X-Auth-Token", token.clone())
    };
    let body = answer(get(system.clone()).send().await.unwrap()).await.body;
    let target = body["Actions"]["#ComputerSystem.Reset"]["target"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |if_match: Option<&str>| {
        let mut r = t
            .http
            .post(format!("{}{target}", t.base))
            .header("X-Auth-Token", token.clone())
            .json(&json!({"ResetType": "On"}));
        if let Some(m) = if_match {
            r = r.header("If-Match", m);
        }
        r
    };
    assert_eq!(
        post(Some("\"x\"")).send().await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        post(None).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn openbmc_lists_reset_types_only_through_action_info_and_has_no_host_nics() {
    let t = persona(Persona::Openbmc).await;
    let system = t.system().await;
    let action = &system["Actions"]["#ComputerSystem.Reset"];
    assert!(action.get("ResetType@Redfish.AllowableValues").is_none());
    let info = t.get(action["@Redfish.ActionInfo"].as_str().unwrap()).await;
    assert_eq!(info.body["Parameters"][0]["Name"], "ResetType");
    assert!(system.get("EthernetInterfaces").is_none() && system.get("Manufacturer").is_none());
    assert!(t.system().await.get("@odata.etag").is_none(), "no ETags");
    assert_eq!(
        reset(&t, "Explode", &[]).await.status,
        StatusCode::BAD_REQUEST,
        "ActionInfo values are enforced"
    );
    assert_eq!(reset(&t, "On", &[]).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn ami_runs_resets_as_tasks_until_the_power_is_on() {
    let t = start(BmcConfig {
        persona: Persona::Ami,
        power_delay: SLOW_POWER,
        ..BmcConfig::default()
    })
    .await;
    let accepted = reset(&t, "On", &[]).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let monitor = accepted.location.unwrap();
    assert_eq!(
        t.get(&monitor).await.status,
        StatusCode::ACCEPTED,
        "still running"
    );
    until_power(&t, "On").await;
    assert_eq!(t.get(&monitor).await.status, StatusCode::NO_CONTENT, "done");
}

#[tokio::test]
async fn faults_play_on_the_next_requests_then_stop() {
    let t = persona(Persona::Generic).await;
    t.bmc.inject(Fault::ServerError, 1);
    t.bmc.inject(Fault::Garbage, 1);
    t.bmc.inject(Fault::Unavailable, 1);
    let error = t.get("/redfish/v1/Systems").await;
    assert_eq!(
        (error.status, error.message_id()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Base.1.8.InternalError")
    );
    let garbage = t.get("/redfish/v1/Systems").await;
    assert_eq!(
        (garbage.status, garbage.body.clone()),
        (StatusCode::OK, Value::Null),
        "200 with a body that is not JSON"
    );
    assert_eq!(
        t.get("/redfish/v1/Systems").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(t.get("/redfish/v1/Systems").await.status, StatusCode::OK);

    t.bmc.inject(Fault::Hang, 1);
    let quick = crate::support::http_client(Duration::from_millis(300));
    let hung = quick
        .get(format!("{}/redfish/v1/Systems", t.base))
        .basic_auth("admin", Some("password"))
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());
}

#[tokio::test]
async fn latency_slows_every_request() {
    let t = start(BmcConfig {
        latency: Duration::from_millis(150),
        power_delay: Duration::ZERO,
        ..BmcConfig::default()
    })
    .await;
    let started = std::time::Instant::now();
    t.get("/redfish/v1/").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}
