//! Every enrollment failure puts the host in Error with its own condition reason and a message
//! naming the cause (never the password); fixing the cause recovers the host, and a Secret
//! change wakes it at once (well before the 10 s first backoff).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beskar7::api::physical_host::HostState;
use beskar7_sim::bmc::Fault;
use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use super::{Cluster, Manager, PASSWORD, Server, USER, condition, dead_address, ready};

/// An HTTPS endpoint whose certificate no system root trusts (signed by the Redfish tests'
/// own CA, tests/redfish/certs/ca.pem), answering every request with a non-Redfish body.
fn untrusted_tls_address() -> String {
    let certs =
        vec![CertificateDer::from_pem_slice(include_bytes!("../redfish/certs/bmc.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("../redfish/certs/bmc.key")).unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                // Whoever gets through the handshake reads a body that is not Redfish (after
                // the request was read: closing on an unread request resets the connection).
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 8\r\nconnection: close\r\n\r\nnot json",
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    url
}

/// The DL325 mockup with a second ComputerSystem added: a BMC that manages two servers.
fn two_system_mockup() -> std::path::PathBuf {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/redfish/mockups/DL325");
    let dst = super::scratch_dir().join("two-systems");
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let to = dst.join(path.strip_prefix(&src).unwrap());
            if path.is_dir() {
                pending.push(path);
            } else {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(&path, &to).unwrap();
            }
        }
    }
    let read = |p: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dst.join(p)).unwrap()).unwrap()
    };
    let mut second = read("Systems/1/index.json");
    second["@odata.id"] = json!("/redfish/v1/Systems/2");
    second["Id"] = json!("2");
    std::fs::create_dir_all(dst.join("Systems/2")).unwrap();
    std::fs::write(dst.join("Systems/2/index.json"), second.to_string()).unwrap();
    let mut collection = read("Systems/index.json");
    collection["Members"] =
        json!([{"@odata.id": "/redfish/v1/Systems/1"}, {"@odata.id": "/redfish/v1/Systems/2"}]);
    collection["Members@odata.count"] = json!(2);
    std::fs::write(dst.join("Systems/index.json"), collection.to_string()).unwrap();
    dst
}

/// (host, BMC address, credentials Secret, reason, the condition it makes False, words the
/// message must contain).
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

fn in_error_with(
    reason: &'static str,
) -> impl Fn(&beskar7::api::physical_host::PhysicalHost) -> bool {
    move |h| h.state() == Some(HostState::Error) && ready(h).is_some_and(|r| r.1 == reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_its_reason_and_fixing_it_recovers_the_host() {
    let cluster = Cluster::start().await;
    let good = Server::generic().await;
    let garbage = Server::generic().await;
    let mockup = two_system_mockup();
    let two = Server::start(beskar7_sim::bmc::BmcConfig {
        persona: beskar7_sim::bmc::Persona::Ilo,
        mockup: Some(mockup.clone()),
        ..Default::default()
    })
    .await;
    // The tree is loaded at start: the copy is no longer needed.
    let _ = std::fs::remove_dir_all(mockup.parent().unwrap());
    garbage.bmc.inject(Fault::Garbage, 100_000);
    let tls = untrusted_tls_address();
    let dead = dead_address();
    cluster
        .secret(
            "default",
            "good",
            &[("username", USER), ("password", PASSWORD)],
        )
        .await;
    cluster
        .secret("default", "nokey", &[("username", USER)])
        .await;
    cluster
        .secret(
            "default",
            "wrong",
            &[("username", USER), ("password", "not-the-password")],
        )
        .await;
    let manager = Manager::start(&cluster, &[]).await;

    let cases: [Case; 8] = [
        (
            "missing-secret",
            &good.url,
            "absent",
            "CredentialsSecretNotFound",
            "CredentialsValid",
            &["\"absent\"", "not found"],
        ),
        (
            "missing-key",
            &good.url,
            "nokey",
            "CredentialsKeyMissing",
            "CredentialsValid",
            &["\"nokey\"", "\"password\""],
        ),
        (
            "unreachable",
            &dead,
            "good",
            "BMCUnreachable",
            "BMCReachable",
            &["unreachable", "127.0.0.1"],
        ),
        ("tls", &tls, "good", "TLSError", "BMCReachable", &["TLS"]),
        (
            "auth",
            &good.url,
            "wrong",
            "AuthenticationFailed",
            "CredentialsValid",
            &["rejected the credentials"],
        ),
        (
            "garbage",
            &garbage.url,
            "good",
            "InvalidBMCResponse",
            "Enrolled",
            &["invalid payload"],
        ),
        (
            "several-systems",
            &two.url,
            "good",
            "MultipleSystems",
            "Enrolled",
            &["2 ComputerSystems", "/redfish/v1/Systems/2", "systemPath"],
        ),
        (
            "no-system",
            &good.url,
            "good",
            "SystemNotFound",
            "Enrolled",
            &["404", "/redfish/v1/Systems/nope"],
        ),
    ];
    for (name, address, secret, ..) in cases {
        let extra = if name == "no-system" {
            json!({"redfishConnection": {"systemPath": "/redfish/v1/Systems/nope"}})
        } else {
            json!({})
        };
        cluster.host("default", name, address, secret, extra).await;
    }
    for (name, _, _, reason, false_condition, words) in cases {
        let h = cluster
            .wait_host("default", name, reason, in_error_with(reason))
            .await;
        let (status, r, message) = condition(&h, false_condition).expect("condition");
        assert_eq!((status.as_str(), r.as_str()), ("False", reason), "{name}");
        let error = h
            .status
            .as_ref()
            .unwrap()
            .error_message
            .clone()
            .unwrap_or_default();
        assert_eq!(
            error, message,
            "{name}: errorMessage is the condition's message"
        );
        for w in words {
            assert!(message.contains(w), "{name}: {message:?} lacks {w:?}");
        }
        assert!(
            !message.contains(PASSWORD) && !message.contains("not-the-password"),
            "{name}: {message}"
        );
    }

    // Fix each credentials problem: the Secret change wakes the host at once (the first
    // backoff is 10 s, the resync 10 min).
    let secrets = cluster.secrets("default");
    let started = Instant::now();
    cluster
        .secret(
            "default",
            "absent",
            &[("username", USER), ("password", PASSWORD)],
        )
        .await;
    let data = |p: &str| json!({"data": {"password": ByteString(p.as_bytes().to_vec())}});
    secrets
        .patch(
            "nokey",
            &PatchParams::default(),
            &Patch::Merge(data(PASSWORD)),
        )
        .await
        .unwrap();
    secrets
        .patch(
            "wrong",
            &PatchParams::default(),
            &Patch::Merge(data(PASSWORD)),
        )
        .await
        .unwrap();
    for name in ["missing-secret", "missing-key", "auth"] {
        let h = cluster
            // The stale errorMessage must go too (the sim's apply still merges; the
            // controller removes it explicitly, a second write there).
            .wait_host("default", name, "Available without errorMessage", |h| {
                h.state() == Some(HostState::Available)
                    && h.status.as_ref().is_some_and(|s| s.error_message.is_none())
            })
            .await;
        assert_eq!(ready(&h).map(|r| r.0), Some("True".into()), "{name}");
        assert!(
            h.status.as_ref().unwrap().hardware_details.is_some(),
            "{name}"
        );
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "recovery took {took:?}: not woken by the Secret change"
    );

    // Reconciles and Redfish requests are counted, by bounded labels only.
    let (code, metrics) = manager.get("/metrics").await;
    assert_eq!(code, 200);
    for needle in [
        "beskar7_reconcile_total{controller=\"physicalhost\",result=\"success\"}",
        "beskar7_reconcile_errors_total{controller=\"physicalhost\",reason=\"CredentialsSecretNotFound\"}",
        "beskar7_redfish_requests_total{operation=\"inventory\",outcome=\"success\"}",
        "beskar7_redfish_requests_total{operation=\"inventory\",outcome=\"AuthenticationFailed\"}",
        "beskar7_redfish_operations_total{operation=\"inventory\",outcome=\"TLSError\"}",
        "beskar7_reconcile_duration_seconds_bucket",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from /metrics:\n{metrics}"
        );
    }
    assert!(
        !metrics.contains("missing-secret") && !metrics.contains("garbage\""),
        "per-object label"
    );

    // The password is nowhere: statuses, events, logs.
    let hosts = cluster
        .hosts("default")
        .list(&Default::default())
        .await
        .unwrap();
    let statuses =
        serde_json::to_string(&hosts.items.iter().map(|h| &h.status).collect::<Vec<_>>()).unwrap();
    let events = cluster.events_text("default").await;
    assert!(events.contains("Warning AuthenticationFailed"), "{events}");
    assert!(events.contains("Normal Recovered"), "{events}");
    let log = manager.log();
    for (what, text) in [("status", &statuses), ("events", &events), ("log", &log)] {
        assert!(
            !text.contains(PASSWORD) && !text.contains("not-the-password"),
            "the password leaked into the {what}"
        );
    }
    assert!(
        log.contains("physicalhost") || log.contains("reconcil"),
        "the log has the controller's lines"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_bundle_secret_is_trusted_owned_and_watched() {
    let cluster = Cluster::start().await;
    let tls = untrusted_tls_address();
    let ca = std::str::from_utf8(include_bytes!("../redfish/certs/ca.pem")).unwrap();
    cluster.bmc_secret("default").await;
    cluster.secret("default", "bmc-ca", &[("ca.crt", ca)]).await;
    let _manager = Manager::start(&cluster, &[]).await;
    let with_ca = |name: &str| json!({"redfishConnection": {"caBundleSecretRef": {"name": name}}});
    cluster
        .host("default", "trusted", &tls, "bmc", with_ca("bmc-ca"))
        .await;
    cluster
        .host("default", "ca-missing", &tls, "bmc", with_ca("late-ca"))
        .await;

    // With the CA the handshake succeeds: what fails now is the (non-Redfish) payload.
    cluster
        .wait_host(
            "default",
            "trusted",
            "past TLS",
            in_error_with("InvalidBMCResponse"),
        )
        .await;
    let h = cluster
        .wait_host(
            "default",
            "ca-missing",
            "CABundleSecretNotFound",
            in_error_with("CABundleSecretNotFound"),
        )
        .await;
    assert!(ready(&h).unwrap().2.contains("\"late-ca\""));

    // Both Secrets of the trusted host are owned by it.
    for secret in ["bmc", "bmc-ca"] {
        let s = cluster.secrets("default").get(secret).await.unwrap();
        assert!(
            s.metadata
                .owner_references
                .unwrap_or_default()
                .iter()
                .any(|o| o.kind == "PhysicalHost" && o.name == "trusted"),
            "{secret} is not owned by the host"
        );
    }

    // Creating the missing CA Secret wakes the host at once.
    cluster
        .secret("default", "late-ca", &[("ca.crt", ca)])
        .await;
    cluster
        .wait_host(
            "default",
            "ca-missing",
            "past TLS",
            in_error_with("InvalidBMCResponse"),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bmc_that_comes_up_later_is_enrolled_after_backoff_without_a_hot_loop() {
    let cluster = Cluster::start().await;
    let dead = dead_address();
    cluster.bmc_secret("default").await;
    let manager = Manager::start(&cluster, &[]).await;
    cluster
        .host("default", "late", &dead, "bmc", json!({}))
        .await;
    cluster
        .wait_host(
            "default",
            "late",
            "BMCUnreachable",
            in_error_with("BMCUnreachable"),
        )
        .await;

    // Let the retry that the Error write triggers fail too (the metrics say when), so what
    // brings the host back below is the backoff timer alone.
    let failed_attempts = || async {
        manager
            .metric(
                "beskar7_redfish_operations_total",
                &["operation=\"inventory\"", "outcome=\"BMCUnreachable\""],
            )
            .await
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while failed_attempts().await < 2.0 {
        assert!(Instant::now() < deadline, "no second attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The BMC comes up on that address; nothing tells the controller, its backoff timer must.
    let since = Instant::now();
    let server = Server::start_at(Default::default(), dead.trim_start_matches("http://")).await;
    cluster
        .wait_host("default", "late", "Available", |h| {
            h.state() == Some(HostState::Available)
        })
        .await;
    let took = since.elapsed();
    // The second failure's backoff is 20 s: recovered by the timer, not by a hot loop.
    assert!(
        took > Duration::from_secs(5) && took < Duration::from_secs(40),
        "took {took:?}"
    );
    let failed = failed_attempts().await;
    assert!((2.0..=3.0).contains(&failed), "{failed} failed attempts");
    assert!(!server.bmc.requests().is_empty());
}
