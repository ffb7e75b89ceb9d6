//! The manager process: endpoints, scope flags, log formats, SIGTERM.

use std::time::Duration;

use beskar7::api::physical_host::HostState;
use serde_json::json;

use super::{Cluster, Manager, PASSWORD, Server, USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_answer_and_sigterm_exits_zero_promptly() {
    let cluster = Cluster::start().await;
    let server = Server::generic().await;
    cluster.bmc_secret("default").await;
    let manager = Manager::start(&cluster, &["--log-format", "json"]).await;
    assert_eq!(manager.get("/healthz").await.0, 200);
    assert_eq!(manager.get("/readyz").await.0, 200);
    cluster
        .host("default", "h", &server.url, "bmc", json!({}))
        .await;
    cluster
        .wait_host("default", "h", "Available", |h| {
            h.state() == Some(HostState::Available)
        })
        .await;
    assert!(
        manager
            .metric("beskar7_reconcile_total", &["controller=\"physicalhost\""])
            .await
            >= 1.0
    );
    assert!(
        manager
            .metric(
                "beskar7_redfish_requests_total",
                &["operation=\"inventory\"", "outcome=\"success\""]
            )
            .await
            >= 1.0
    );

    // JSON logs: every line is one JSON object.
    let log = manager.log();
    assert!(log.lines().count() > 2);
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
    }
    assert!(!log.contains(PASSWORD));

    let addr = manager.metrics;
    let (status, took) = manager.terminate().await;
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the metrics server closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_watch_filter_leave_other_hosts_alone() {
    let cluster = Cluster::start().await;
    let server = Server::generic().await;
    for ns in ["mine", "theirs"] {
        cluster.namespace(ns).await;
        cluster
            .secret(ns, "bmc", &[("username", USER), ("password", PASSWORD)])
            .await;
    }
    let labelled = json!({"labels": {"cluster.x-k8s.io/watch-filter": "team-a"}});
    let other_label = json!({"labels": {"cluster.x-k8s.io/watch-filter": "team-b"}});
    let manager = Manager::start(
        &cluster,
        &["--namespace", "mine", "--watch-filter", "team-a"],
    )
    .await;
    // The ignored hosts come first: had they been watched, they would be handled before the
    // watched host that comes last.
    cluster
        .host(
            "theirs",
            "other-namespace",
            &server.url,
            "bmc",
            labelled.clone(),
        )
        .await;
    cluster
        .host("mine", "unlabelled", &server.url, "bmc", json!({}))
        .await;
    cluster
        .host("mine", "other-filter", &server.url, "bmc", other_label)
        .await;
    cluster
        .host("mine", "watched", &server.url, "bmc", labelled)
        .await;
    cluster
        .wait_host("mine", "watched", "Available", |h| {
            h.state() == Some(HostState::Available)
        })
        .await;
    for (ns, name) in [
        ("theirs", "other-namespace"),
        ("mine", "unlabelled"),
        ("mine", "other-filter"),
    ] {
        let h = cluster.hosts(ns).get(name).await.unwrap();
        assert!(
            h.status.is_none() && h.metadata.finalizers.is_none(),
            "{ns}/{name} was touched: {h:?}"
        );
    }
    let reconciles = manager.metric("beskar7_reconcile_total", &[]).await;
    assert!(reconciles >= 1.0);
}

#[test]
fn flags_that_are_not_implemented_are_refused() {
    for args in [
        vec!["manager", "--leader-elect"],
        vec!["manager", "--boot-addr", "127.0.0.1:0"],
        vec!["manager", "--callback-url", "http://plain.example.com"],
        vec!["manager", "--resync-interval", "10"],
        vec!["manager", "--log-format", "xml"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_beskar7"))
            .args(&args)
            .output()
            .expect("run beskar7");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error:"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn the_manager_refuses_to_start_without_a_callback_url() {
    let cluster = super::Cluster::start().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beskar7"))
        .arg("manager")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .output()
        .expect("run beskar7");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--callback-url is required"), "{err}");
}

#[tokio::test]
async fn the_callback_listeners_serve_with_the_generated_ca_and_their_urls_are_logged() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let cluster = super::Cluster::start().await;
    let manager = super::Manager::start(
        &cluster,
        &[
            "--boot-addr",
            "127.0.0.1:0",
            "--boot-url",
            "http://127.0.0.1:0",
        ],
    )
    .await;
    let callback = manager.listener_url("HTTPS callback listener").unwrap();
    let boot = manager.listener_url("plain-HTTP boot listener").unwrap();
    assert!(callback.starts_with("https://127.0.0.1:") && !callback.ends_with(":0"));
    assert!(boot.starts_with("http://127.0.0.1:") && !boot.ends_with(":0"));

    // The operator's Secrets exist; the listener's certificate chains to the stored CA.
    let secrets = cluster.secrets(super::OPERATOR_NS);
    assert!(secrets.get("beskar7-token-key").await.is_ok());
    let tls = secrets.get("beskar7-callback-tls").await.unwrap();
    let ca = String::from_utf8(tls.data.unwrap()["ca.crt"].0.clone()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap();
    let script = https
        .get(format!("{callback}/boot.ipxe"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        script.starts_with("#!ipxe") && script.contains(&format!("chain {callback}/ipxe?mac=")),
        "{script}"
    );
    let script = reqwest::get(format!("{boot}/boot.ipxe"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        script.contains(&format!("chain {boot}/ipxe?mac=")),
        "{script}"
    );
    // The agent endpoints are on the HTTPS listener only.
    let status = reqwest::Client::new()
        .post(format!("{boot}/api/v1/provisioned/ns/h"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 404);
    let (exit, _) = manager.terminate().await;
    assert!(exit.success());
}
