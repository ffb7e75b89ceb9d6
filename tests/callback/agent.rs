//! The agent's bearer-token calls over HTTPS: the report into status, bootstrap gating and its
//! window, the outcome records, the one-shot config URL, and opaque 401s.

use std::time::Duration;

use beskar7::api::{AttemptMode, BootMode, Handoff, HostState};
use reqwest::Method;

use super::support::*;

const MAC: &str = "52:54:00:12:34:56";
const GOLDEN_REPORT: &str =
    include_str!("../../../shared/fixtures/inspector-contract/golden_inspection_report.json");

#[tokio::test]
async fn the_canonical_report_round_trips_into_status() {
    let env = env().await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let r = bearer(
        &env,
        Method::POST,
        &format!("/api/v1/inspection/{NS}/host-01"),
        s.token.expose(),
        Some(GOLDEN_REPORT.as_bytes().to_vec()),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "accepted"})
    );

    let host = host(&env, "host-01").await;
    let status = host.status.unwrap();
    let report = status.inspection.expect("the report is in status");
    assert_eq!(report.manufacturer.as_deref(), Some("Dell Inc."));
    assert_eq!(report.model.as_deref(), Some("PowerEdge R650"));
    assert_eq!(report.serial_number.as_deref(), Some("ABCD123"));
    assert_eq!(report.boot_mode_detected, Some(BootMode::Uefi));
    assert_eq!(report.firmware_version.as_deref(), Some("2.10.2"));
    assert_eq!(report.cpu_cores, Some(64));
    assert_eq!(report.memory_mib, Some(4 * 32 * 1024));
    assert_eq!(report.disk_gb, Some(1920));
    assert_eq!(report.cpus.len(), 2);
    assert_eq!(report.memory[3].id.as_deref(), Some("DIMM.Socket.B2"));
    assert_eq!(
        report.disks[1].serial_number.as_deref(),
        Some("S64XNE0R305678")
    );
    assert_eq!(
        report.nics[0].mac_address.as_deref(),
        Some("aa:bb:cc:dd:ee:01")
    );
    assert_eq!(
        report.nics[0].ip_addresses,
        vec!["192.0.2.10".to_string(), "fe80::a8bb:ccff:fedd:ee01".into()]
    );
    assert!(report.received_at.is_some());
    assert_eq!(report.truncated, None);
    let a = status.attempt.unwrap();
    assert!(a.records_are_current() && a.reported_at.is_some());
    assert_eq!(a.failure_reason, None);

    // A NIC learned by inspection makes the first stage find the host by that MAC.
    let (_, stage) = get(&env, "/ipxe?mac=aa-bb-cc-dd-ee-02").await;
    settle(&env, "host-01", |h| {
        h.status.as_ref().is_some_and(|s| s.inspection.is_some())
    })
    .await;
    let (_, stage2) = get(&env, "/ipxe?mac=aa-bb-cc-dd-ee-02").await;
    assert!(stage2.contains("chain "), "{stage} / {stage2}");
}

#[tokio::test]
async fn malformed_and_oversized_reports_are_refused_and_unitless_memory_is_recorded() {
    let env = env().await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let path = format!("/api/v1/inspection/{NS}/host-01");
    let post = |body: Vec<u8>| bearer(&env, Method::POST, &path, s.token.expose(), Some(body));

    let r = post(br#"{"cpus": [{"cores": "many"}]}"#.to_vec()).await;
    assert_eq!(r.status(), 400);
    let msg = r.json::<serde_json::Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("invalid type") && msg.contains("line 1 column"),
        "{msg}"
    );
    let r = post(br#"{"model": "R650""#.to_vec()).await;
    assert_eq!(r.status(), 400);
    let msg = r.json::<serde_json::Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("EOF"), "{msg}");

    // Over 1 MiB: 413 before parsing.
    let mut big = br#"{"model": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    big.extend(br#""}"#);
    assert_eq!(post(big).await.status(), 413);
    assert_eq!(
        attempt(&env, "host-01").await.reported_at,
        None,
        "nothing recorded yet"
    );

    // Memory without a unit: accepted, but recorded on the host as the attempt's failure.
    let r = post(
        br#"{"memory": [{"id": "DIMM0", "capacity": "32GiB"}, {"id": "DIMM1", "capacity": "32768"}]}"#
            .to_vec(),
    )
    .await;
    assert_eq!(r.status(), 202);
    let host = host(&env, "host-01").await;
    let status = host.status.unwrap();
    assert_eq!(
        status.inspection.unwrap().memory_mib,
        None,
        "no silent partial total"
    );
    let reason = status.attempt.unwrap().failure_reason.unwrap();
    assert!(
        reason.starts_with("inspection: ")
            && reason.contains("DIMM1")
            && reason.contains("no unit"),
        "{reason}"
    );
}

#[tokio::test]
async fn auth_failures_are_an_opaque_401() {
    let env = env().await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Deploying,
        AttemptMode::Provision,
        false,
    )
    .await;
    let path = format!("/api/v1/bootstrap/{NS}/host-01");
    let answer = |r: reqwest::Response| async move {
        (
            r.status().as_u16(),
            r.headers().get("www-authenticate").cloned(),
            r.text().await.unwrap(),
        )
    };
    let wrong = answer(bearer(&env, Method::GET, &path, "not-the-token", None).await).await;
    assert_eq!(wrong.0, 401);
    let nonce_as_token =
        answer(bearer(&env, Method::GET, &path, s.boot_nonce.expose(), None).await).await;
    let unknown_host = answer(
        bearer(
            &env,
            Method::GET,
            &format!("/api/v1/bootstrap/{NS}/nope"),
            s.token.expose(),
            None,
        )
        .await,
    )
    .await;
    let no_header = answer(
        env.http
            .get(format!("{}{path}", env.callback_url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let report_wrong = answer(
        bearer(
            &env,
            Method::POST,
            &format!("/api/v1/inspection/{NS}/host-01"),
            "x",
            Some(b"{}".to_vec()),
        )
        .await,
    )
    .await;
    env.clock.advance(Duration::from_secs(61 * 60));
    let expired = answer(bearer(&env, Method::GET, &path, s.token.expose(), None).await).await;
    for other in [
        nonce_as_token,
        unknown_host,
        no_header,
        report_wrong,
        expired,
    ] {
        assert_eq!(other, wrong);
    }
}

#[tokio::test]
async fn bootstrap_is_served_only_while_deploying_and_for_60s_after_the_first_fetch() {
    let env = env().await;
    create_bootstrap_secret(&env, "machine-1-bootstrap", BOOTSTRAP).await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let path = format!("/api/v1/bootstrap/{NS}/host-01");
    let fetch = || bearer(&env, Method::GET, &path, s.token.expose(), None);

    let r = fetch().await;
    assert_eq!(r.status(), 404, "not Deploying yet: the agent polls");
    assert_eq!(r.headers()["cache-control"], "no-store");

    set_state(&env, "host-01", HostState::Deploying).await;
    let r = fetch().await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = r.bytes().await.unwrap();
    assert_eq!(
        &body[..],
        format!("#cloud-config\nkubeletExtraArgs:\n  provider-id: b7://{NS}/host-01/machine-1\n")
            .as_bytes()
    );
    assert!(
        attempt(&env, "host-01")
            .await
            .bootstrap_fetched_at
            .is_some()
    );

    // The agent's retries within 60 s get it again; after that it is gone.
    env.clock.advance(Duration::from_secs(59));
    assert_eq!(fetch().await.status(), 200);
    env.clock.advance(Duration::from_secs(3));
    assert_eq!(fetch().await.status(), 404);
}

#[tokio::test]
async fn outcomes_are_recorded_for_the_current_attempt_only() {
    let env = env().await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Deploying,
        AttemptMode::Provision,
        false,
    )
    .await;
    let post = |what: &'static str, body: &'static [u8]| {
        let path = format!("/api/v1/{what}/{NS}/host-01");
        let token = s.token.expose().to_owned();
        let env = &env;
        async move { bearer(env, Method::POST, &path, &token, Some(body.to_vec())).await }
    };
    assert_eq!(post("provisioned", b"{}").await.status(), 202);
    let r = post(
        "provision-failed",
        b"{\"reason\": \"digest mismatch\\n\\u001b[1m on /dev/vda\"}",
    )
    .await;
    assert_eq!(r.status(), 202);
    let a = attempt(&env, "host-01").await;
    assert!(a.provisioned_at.is_some());
    assert_eq!(
        a.failure_reason.as_deref(),
        Some("agent: digest mismatch[1m on /dev/vda")
    );
    assert_eq!(
        post("cleaned", b"{}").await.status(),
        409,
        "not a cleaning attempt"
    );
    assert_eq!(post("provision-failed", b"not json").await.status(), 400);
    let mut huge = b"{\"reason\": \"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 70 * 1024));
    huge.extend(b"\"}");
    let r = bearer(
        &env,
        Method::POST,
        &format!("/api/v1/provision-failed/{NS}/host-01"),
        s.token.expose(),
        Some(huge),
    )
    .await;
    assert_eq!(r.status(), 413);

    // A new (cleaning) attempt: the old records no longer count, the old token is dead.
    let host_now = host(&env, "host-01").await;
    let (_, c) = start_attempt(
        &env,
        &host_now,
        HostState::Deprovisioning,
        AttemptMode::Clean,
        false,
    )
    .await;
    let a = attempt(&env, "host-01").await;
    assert!(
        !a.records_are_current(),
        "records of the previous attempt are stale"
    );
    assert_eq!(post("provisioned", b"{}").await.status(), 401);
    let r = bearer(
        &env,
        Method::POST,
        &format!("/api/v1/cleaned/{NS}/host-01"),
        c.token.expose(),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(r.status(), 202);
    let a = attempt(&env, "host-01").await;
    assert!(a.records_are_current() && a.cleaned_at.is_some());
    assert_eq!(
        a.failure_reason, None,
        "the earlier attempt's failure is not carried over"
    );
    assert_eq!(a.provisioned_at, None);
}

#[tokio::test]
async fn the_kexec_config_url_serves_the_bootstrap_data_once() {
    let env = env().await;
    create_bootstrap_secret(&env, "machine-1-bootstrap", BOOTSTRAP).await;
    let mut kexec = intent("host-01");
    kexec.handoff = Handoff::Kexec;
    let h = create_host(&env, "host-01", MAC, Some(kexec)).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        true,
    )
    .await;
    let (status, script) = get(&env, &boot_path("host-01", s.boot_nonce.expose())).await;
    assert_eq!(status, 200, "{script}");
    let config_url = format!(
        "{}/api/v1/config/{NS}/host-01/{}",
        env.boot_url,
        s.config_nonce.expose()
    );
    let kernel: Vec<&str> = script.lines().nth(1).unwrap().split(' ').collect();
    let expected = format!("beskar7.config-url={config_url}");
    assert!(kernel.contains(&expected.as_str()), "{script}");
    assert!(kernel.contains(&"beskar7.handoff=kexec"));

    set_state(&env, "host-01", HostState::Provisioned).await;
    let r = env.http.get(&config_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.bytes()
            .await
            .unwrap()
            .ends_with(b"provider-id: b7://lab/host-01/machine-1\n")
    );
    assert!(attempt(&env, "host-01").await.config_consumed_at.is_some());
    assert_eq!(
        env.http.get(&config_url).send().await.unwrap().status(),
        401,
        "one fetch per attempt"
    );
}
