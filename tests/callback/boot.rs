//! The first stage and `/boot` over real HTTPS and plain HTTP: chaining, single use of the nonce,
//! the re-fetch window, refusals of injected values and of over-long kernel lines, and the rate
//! limit on failed requests.

use std::time::Duration;

use beskar7::api::{AttemptMode, HostState};
use beskar7::callback::render::MAX_KERNEL_LINE;

use super::support::*;

const MAC: &str = "52:54:00:12:34:56";
const MAC_HYP: &str = "52-54-00-12-34-56";

#[tokio::test]
async fn first_stage_chains_a_live_attempt_through_the_listener_that_served_it() {
    let env = env().await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    // No attempt yet: the firmware is sent on to the next boot device.
    let (status, body) = get(&env, &format!("/ipxe?mac={MAC_HYP}")).await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("#!ipxe\n") && body.trim_end().ends_with("exit"),
        "{body}"
    );

    let (_, secrets) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let nonce = secrets.boot_nonce.expose();
    // HTTPS first stage → HTTPS /boot; hyphenated MAC accepted, chained with the colon form.
    let (status, body) = get(&env, &format!("/ipxe?mac={MAC_HYP}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!(
            "#!ipxe\nchain {}/api/v1/boot/{NS}/host-01/{nonce}?mac={MAC}\n",
            env.callback_url
        )
    );
    // The plain-HTTP boot listener chains through itself.
    let r = env
        .http
        .get(format!("{}/ipxe?mac={}", env.boot_url, MAC.to_uppercase()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        format!(
            "#!ipxe\nchain {}/api/v1/boot/{NS}/host-01/{nonce}?mac={MAC}\n",
            env.boot_url
        )
    );
    // /boot.ipxe names the booting interface, on each listener.
    let (_, body) = get(&env, "/boot.ipxe").await;
    assert_eq!(
        body,
        format!(
            "#!ipxe\nchain {}/ipxe?mac=${{netX/mac:hexhyp}}\n",
            env.callback_url
        )
    );
}

#[tokio::test]
async fn unknown_or_malformed_macs_get_the_exit_script() {
    let env = env().await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    for query in [
        "mac=52-54-00-99-99-99",
        "mac=52:54:00:12:34",
        "mac=52:54:00:12:34:56%0Ashell",
        "",
    ] {
        let (status, body) = get(&env, &format!("/ipxe?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert!(body.trim_end().ends_with("\nexit"), "{query}: {body}");
        assert!(!body.contains("chain"), "{query}: {body}");
    }
}

#[tokio::test]
async fn the_nonce_is_single_use_with_an_identical_refetch_for_the_same_mac_within_120s() {
    let env = env().await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let (_, secrets) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let path = format!(
        "{}?mac={MAC}",
        boot_path("host-01", secrets.boot_nonce.expose())
    );

    let (status, first) = get(&env, &path).await;
    assert_eq!(status, 200, "{first}");
    let kernel = first.lines().nth(1).unwrap();
    assert!(kernel.starts_with("kernel http://images.example.invalid/vmlinuz "));
    assert!(kernel.contains(&format!("beskar7.token={}", secrets.token.expose())));
    assert!(kernel.contains(&format!("beskar7.api={}", env.callback_url)));
    assert!(kernel.contains(&format!("beskar7.ca={}", env.tls.ca_base64())));
    assert!(kernel.ends_with(" BOOTIF=01-52-54-00-12-34-56"));
    // The use is recorded, with the MAC, for this attempt.
    let a = attempt(&env, "host-01").await;
    assert!(a.records_are_current());
    assert!(a.nonce_consumed_at.is_some());
    assert_eq!(a.nonce_consumed_by.as_deref(), Some(MAC));

    // iPXE retries: the same bytes (also with the hyphenated MAC, the same NIC).
    env.clock.advance(Duration::from_secs(119));
    assert_eq!(get(&env, &path).await, (200, first.clone()));
    let hyphen = format!(
        "{}?mac={MAC_HYP}",
        boot_path("host-01", secrets.boot_nonce.expose())
    );
    assert_eq!(get(&env, &hyphen).await, (200, first.clone()));
    // Another NIC, or no MAC, is refused with the opaque failure.
    let other = format!(
        "{}?mac=52:54:00:ab:cd:ef",
        boot_path("host-01", secrets.boot_nonce.expose())
    );
    let (status, refused) = get(&env, &other).await;
    assert_eq!(status, 401);
    assert_eq!(
        get(&env, &boot_path("host-01", secrets.boot_nonce.expose())).await,
        (401, refused.clone())
    );
    // After the window the nonce is dead, and the first stage stops chaining.
    env.clock.advance(Duration::from_secs(2));
    assert_eq!(get(&env, &path).await, (401, refused));
    let (_, stage) = get(&env, &format!("/ipxe?mac={MAC}")).await;
    assert!(stage.trim_end().ends_with("exit"), "{stage}");
}

#[tokio::test]
async fn every_boot_failure_is_the_same_opaque_answer() {
    let env = env().await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let (_, secrets) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let wrong = get(
        &env,
        &boot_path("host-01", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await;
    assert_eq!(wrong.0, 401);
    let no_host = get(&env, &boot_path("nope", secrets.boot_nonce.expose())).await;
    let token_as_nonce = get(&env, &boot_path("host-01", secrets.token.expose())).await;
    env.clock.advance(Duration::from_secs(11 * 60));
    let expired = get(&env, &boot_path("host-01", secrets.boot_nonce.expose())).await;
    for other in [no_host, token_as_nonce, expired] {
        assert_eq!(other, wrong);
    }
}

/// Changes one field of an intent.
type Tweak = Box<dyn Fn(&mut beskar7::api::ProvisioningIntent)>;

#[tokio::test]
async fn values_that_could_inject_ipxe_commands_are_refused_and_recorded() {
    let env = env().await;
    // Each passes the CRD's rules but must not reach an iPXE line.
    let cases: Vec<(&str, Tweak, &str)> = vec![
        (
            "host-a",
            Box::new(|i| i.images.target_image_url = "http://img.example/${net0/mac}".into()),
            "beskar7.target",
        ),
        (
            "host-b",
            Box::new(|i| i.images.inspection_image_url = "http://img.example/a'b".into()),
            "inspectionImageURL",
        ),
        (
            "host-c",
            Box::new(|i| {
                i.root_device_hints.as_mut().unwrap().device_name = Some("/dev/../etc".into())
            }),
            "beskar7.disk",
        ),
        (
            "host-d",
            Box::new(|i| i.images.configuration_url = Some("http://c.example/\"x".into())),
            "beskar7.config",
        ),
    ];
    for (i, (name, tweak, param)) in cases.into_iter().enumerate() {
        let mut intent = intent(name);
        tweak(&mut intent);
        let mac = format!("52:54:00:00:00:0{i}");
        let h = create_host(&env, name, &mac, Some(intent)).await;
        let (_, s) = start_attempt(
            &env,
            &h,
            HostState::Inspecting,
            AttemptMode::Provision,
            false,
        )
        .await;
        let (status, _) = get(&env, &boot_path(name, s.boot_nonce.expose())).await;
        assert_eq!(status, 401, "{name}");
        let a = attempt(&env, name).await;
        let reason = a.failure_reason.unwrap_or_default();
        assert!(
            reason.starts_with("boot: ") && reason.contains(param),
            "{name}: {reason}"
        );
        assert!(a.failed_at.is_some());
        assert_eq!(
            a.nonce_consumed_at, None,
            "a refused boot does not use the nonce"
        );
    }
    // A MAC parameter carrying a line break is refused too.
    let h = create_host(&env, "host-e", "52:54:00:00:00:0e", Some(intent("host-e"))).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let (status, _) = get(
        &env,
        &format!(
            "{}?mac=52:54:00:00:00:0e%0Ashell",
            boot_path("host-e", s.boot_nonce.expose())
        ),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_kernel_line_over_1900_bytes_is_refused_and_the_host_says_why() {
    let env = env().await;
    let mut long = intent("host-01");
    // Within the CRD's 2048 characters, but the line would pass the limit.
    long.images.target_image_url = format!("http://img.example/{}", "x".repeat(1800));
    let h = create_host(&env, "host-01", MAC, Some(long)).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let (status, _) = get(&env, &boot_path("host-01", s.boot_nonce.expose())).await;
    assert_eq!(status, 401);
    let reason = attempt(&env, "host-01").await.failure_reason.unwrap();
    assert!(
        reason.contains(&format!("{MAX_KERNEL_LINE}-byte limit")),
        "{reason}"
    );

    // Just under the limit still renders.
    let mut fits = intent("host-02");
    fits.images.target_image_url = "http://img.example/x".into();
    let h = create_host(&env, "host-02", "52:54:00:12:34:57", Some(fits.clone())).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let (status, body) = get(&env, &boot_path("host-02", s.boot_nonce.expose())).await;
    assert_eq!(status, 200);
    let len = body.lines().nth(1).unwrap().len() - "kernel ".len();
    let pad = MAX_KERNEL_LINE - 1 - len;
    let mut edge = fits;
    edge.images.target_image_url = format!("http://img.example/x{}", "y".repeat(pad));
    let h = create_host(&env, "host-03", "52:54:00:12:34:58", Some(edge)).await;
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let (status, body) = get(&env, &boot_path("host-03", s.boot_nonce.expose())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.lines().nth(1).unwrap().len() - "kernel ".len(),
        MAX_KERNEL_LINE - 1
    );
}

#[tokio::test]
async fn only_failed_boots_are_rate_limited_per_address_and_host() {
    let env = env_with(|c| {
        c.rate_limit.max_failures = 3;
        c.rate_limit.window = Duration::from_secs(60);
    })
    .await;
    let h1 = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let h2 = create_host(
        &env,
        "host-02",
        "52:54:00:12:34:57",
        Some(intent("host-02")),
    )
    .await;
    let (_, s1) = start_attempt(
        &env,
        &h1,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let (_, s2) = start_attempt(
        &env,
        &h2,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let good1 = format!("{}?mac={MAC}", boot_path("host-01", s1.boot_nonce.expose()));

    // Successful fetches (and re-fetches) never count.
    for _ in 0..6 {
        assert_eq!(get(&env, &good1).await.0, 200);
    }
    // Three failures for host-02 from this address...
    for _ in 0..3 {
        assert_eq!(get(&env, &boot_path("host-02", "wrong")).await.0, 401);
    }
    // ...and even the right nonce is refused for host-02, while host-01 is unaffected.
    let good2 = boot_path("host-02", s2.boot_nonce.expose());
    assert_eq!(get(&env, &good2).await.0, 401);
    assert_eq!(get(&env, &good1).await.0, 200);
    assert_eq!(attempt(&env, "host-02").await.nonce_consumed_at, None);
    // The window passes: host-02 boots.
    env.clock.advance(Duration::from_secs(60));
    assert_eq!(get(&env, &good2).await.0, 200);
}

#[tokio::test]
async fn two_replicas_racing_on_a_fresh_nonce_agree_on_one_winner() {
    use tower::ServiceExt;
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
    // Two replicas: separate states and routers over the same API server, key and CA.
    let replica = || {
        let state = beskar7::callback::CallbackState::new(
            std::sync::Arc::new(env.store.clone()),
            env.client.clone(),
            &env.tls.ca_pem,
            env.key.clone(),
            beskar7::callback::CallbackConfig::new(&env.callback_url),
        );
        beskar7::callback::https_router(state)
    };
    let request = |mac: &str| {
        axum::http::Request::get(format!(
            "{}?mac={mac}",
            boot_path("host-01", s.boot_nonce.expose())
        ))
        .body(axum::body::Body::empty())
        .unwrap()
    };
    let (a, b) = futures::join!(
        replica().oneshot(request(MAC)),
        replica().oneshot(request("52:54:00:ab:cd:ef"))
    );
    let statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    assert!(
        statuses == [200, 401] || statuses == [401, 200],
        "exactly one replica hands out the script: {statuses:?}"
    );
    let winner = attempt(&env, "host-01").await.nonce_consumed_by.unwrap();
    let expected = if statuses[0] == 200 {
        MAC
    } else {
        "52:54:00:ab:cd:ef"
    };
    assert_eq!(winner, expected);
}

#[tokio::test]
async fn a_query_that_does_not_parse_gets_the_same_opaque_failure() {
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
    let opaque = get(&env, &boot_path("host-01", "wrong")).await;
    let odd = get(
        &env,
        &format!("{}?mac=%FF%FE", boot_path("host-01", s.boot_nonce.expose())),
    )
    .await;
    assert_eq!(odd, opaque);
    assert_eq!(attempt(&env, "host-01").await.nonce_consumed_at, None);
}

#[tokio::test]
async fn macs_learned_from_the_bmc_are_found_and_a_cleaning_boot_renders_only_its_parameters() {
    let env = env().await;
    // No spec.bootMACAddress: the MAC comes from the BMC's inventory in status.macAddresses.
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let api = kube::Api::<beskar7::api::PhysicalHost>::namespaced(env.client.clone(), NS);
    api.patch(
        "host-01",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"bootMACAddress": null}})),
    )
    .await
    .unwrap();
    api.patch_status(
        "host-01",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(
            serde_json::json!({"status": {"macAddresses": ["52:54:00:AA:00:01", MAC]}}),
        ),
    )
    .await
    .unwrap();
    let (_, s) = start_attempt(
        &env,
        &h,
        HostState::Deprovisioning,
        AttemptMode::Clean,
        false,
    )
    .await;
    settle(&env, "host-01", |h| h.spec.boot_mac_address.is_none()).await;
    let (_, stage) = get(&env, &format!("/ipxe?mac={MAC_HYP}")).await;
    assert!(stage.contains(s.boot_nonce.expose()), "{stage}");

    let (status, script) = get(
        &env,
        &format!("{}?mac={MAC}", boot_path("host-01", s.boot_nonce.expose())),
    )
    .await;
    assert_eq!(status, 200, "{script}");
    let kernel = script.lines().nth(1).unwrap();
    let names: Vec<&str> = kernel
        .split(' ')
        .filter(|w| w.starts_with("beskar7.") || w.starts_with("BOOTIF="))
        .map(|w| w.split('=').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "beskar7.api",
            "beskar7.namespace",
            "beskar7.host",
            "beskar7.token",
            "beskar7.ca",
            "beskar7.timeout",
            "beskar7.mode",
            "BOOTIF"
        ]
    );
    assert!(kernel.contains(" beskar7.mode=clean "));
}

#[tokio::test]
async fn a_mac_claimed_by_two_hosts_with_live_attempts_is_not_chained() {
    let env = env().await;
    let a = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    let b = create_host(&env, "host-02", MAC, Some(intent("host-02"))).await;
    start_attempt(
        &env,
        &a,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    start_attempt(
        &env,
        &b,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;
    let (_, body) = get(&env, &format!("/ipxe?mac={MAC}")).await;
    assert!(
        body.trim_end().ends_with("\nexit") && !body.contains("chain"),
        "{body}"
    );
}

#[tokio::test]
async fn the_plain_http_listener_serves_no_agent_endpoint() {
    let env = env().await;
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/inspection/lab/host-01"),
        (reqwest::Method::GET, "/api/v1/bootstrap/lab/host-01"),
        (reqwest::Method::POST, "/api/v1/provisioned/lab/host-01"),
        (
            reqwest::Method::POST,
            "/api/v1/provision-failed/lab/host-01",
        ),
        (reqwest::Method::POST, "/api/v1/cleaned/lab/host-01"),
    ] {
        let r = env
            .http
            .request(method, format!("{}{path}", env.boot_url))
            .bearer_auth("anything")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} must not be served over plain HTTP");
    }
    let r = env
        .http
        .get(format!("{}/boot.ipxe", env.boot_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
