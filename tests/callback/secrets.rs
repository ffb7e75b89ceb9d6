//! Secrets never appear in logs or in status: a whole provisioning attempt runs with every log
//! line captured.

use beskar7::api::{AttemptMode, Handoff, HostState};
use reqwest::Method;

use super::support::*;

const MAC: &str = "52:54:00:12:34:56";

#[tokio::test]
async fn no_token_nonce_or_bootstrap_data_in_logs_or_status() {
    let (logs, _guard) = capture_logs();
    let env = env().await;
    let data = b"#cloud-config\nsecret-join-token: abcdef.0123456789abcdef BESKAR7_PROVIDER_ID\n";
    create_bootstrap_secret(&env, "machine-1-bootstrap", data).await;
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

    let (_, stage) = get(&env, &format!("/ipxe?mac={MAC}")).await;
    assert!(stage.contains(s.boot_nonce.expose()));
    let path = format!("{}?mac={MAC}", boot_path("host-01", s.boot_nonce.expose()));
    assert_eq!(get(&env, &path).await.0, 200);
    assert_eq!(get(&env, &path).await.0, 200);
    assert_eq!(get(&env, &boot_path("host-01", "wrong-nonce")).await.0, 401);
    let report = br#"{"cpus":[{"cores":8}],"memory":[{"capacity":"16GiB"}]}"#.to_vec();
    let r = bearer(
        &env,
        Method::POST,
        &format!("/api/v1/inspection/{NS}/host-01"),
        s.token.expose(),
        Some(report),
    )
    .await;
    assert_eq!(r.status(), 202);
    set_state(&env, "host-01", HostState::Deploying).await;
    let r = bearer(
        &env,
        Method::GET,
        &format!("/api/v1/bootstrap/{NS}/host-01"),
        s.token.expose(),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let config = format!(
        "{}/api/v1/config/{NS}/host-01/{}",
        env.boot_url,
        s.config_nonce.expose()
    );
    assert_eq!(env.http.get(&config).send().await.unwrap().status(), 200);
    assert_eq!(env.http.get(&config).send().await.unwrap().status(), 401);
    let r = bearer(
        &env,
        Method::POST,
        &format!("/api/v1/provisioned/{NS}/host-01"),
        s.token.expose(),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(r.status(), 202);
    let r = bearer(
        &env,
        Method::POST,
        &format!("/api/v1/provisioned/{NS}/host-01"),
        "wrong-token",
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(r.status(), 401);

    let logs = logs.text();
    // The access log saw every request, with the nonce segment redacted.
    assert!(
        logs.contains(&format!("/api/v1/boot/{NS}/host-01/<redacted>")),
        "{logs}"
    );
    assert!(
        logs.contains("the nonce does not match"),
        "refusals are logged with a reason"
    );
    let status = serde_json::to_string(&host(&env, "host-01").await.status).unwrap();
    for (what, secret) in [
        ("token", s.token.expose().to_owned()),
        ("boot nonce", s.boot_nonce.expose().to_owned()),
        ("config nonce", s.config_nonce.expose().to_owned()),
        ("bootstrap data", "abcdef.0123456789abcdef".to_owned()),
    ] {
        assert!(!logs.contains(&secret), "the {what} is in the logs");
        assert!(!status.contains(&secret), "the {what} is in the status");
    }
}
