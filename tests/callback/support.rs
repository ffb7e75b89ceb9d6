//! One callback environment per test: the sim API server in-process (with crds/ loaded), a
//! PhysicalHost reflector, both listeners on 127.0.0.1 (HTTPS with the generated CA, plain HTTP
//! for boot), a manual clock, and an HTTPS client that trusts only the generated CA.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beskar7::api::{
    Attempt, AttemptMode, Handoff, HostState, Images, PhysicalHost, PhysicalHostSpec,
    PhysicalHostStatus, ProvisioningIntent, RedfishConnection, RootDeviceHints,
};
use beskar7::callback::{self, CallbackConfig, CallbackState, CallbackTls, ManualClock};
use beskar7::tokens::{AttemptLifetimes, AttemptSecrets, TokenKey, mint_attempt};
use beskar7_sim::apiserver::ApiServer;
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

pub const NS: &str = "lab";
pub const OPERATOR_NS: &str = "beskar7-system";
pub const BOOTSTRAP: &[u8] =
    b"#cloud-config\nkubeletExtraArgs:\n  provider-id: BESKAR7_PROVIDER_ID\n";

pub struct Env {
    /// Kept alive for the test's duration.
    pub _api: Arc<ApiServer>,
    pub client: kube::Client,
    pub store: Store<PhysicalHost>,
    pub key: TokenKey,
    pub tls: CallbackTls,
    pub clock: ManualClock,
    /// `https://127.0.0.1:<port>`
    pub callback_url: String,
    /// `http://127.0.0.1:<port>`
    pub boot_url: String,
    pub http: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// Log lines written while a test runs (the subscriber is the test thread's default; every
/// server task runs on that thread under `#[tokio::test]`).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line at every level until the guard is dropped.
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

pub async fn env() -> Env {
    env_with(|_| {}).await
}

pub async fn env_with(tune: impl FnOnce(&mut CallbackConfig)) -> Env {
    let api = ApiServer::in_memory();
    api.load_crds(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"))
        .expect("load crds/");
    let client = kube::Client::new(api.router(), "default");
    for ns in [NS, OPERATOR_NS] {
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(ns.into()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .expect("create namespace");
    }
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(
            Api::<PhysicalHost>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });

    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let boot = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback_url = format!("https://{}", https.local_addr().unwrap());
    let boot_url = format!("http://{}", boot.local_addr().unwrap());
    let tls = callback::tls::load_or_create_generated(
        &client,
        OPERATOR_NS,
        &callback_url,
        jiff::Timestamp::now().as_second(),
    )
    .await
    .expect("generated TLS");
    let key = TokenKey::generate().unwrap();
    let clock = ManualClock::new(jiff::Timestamp::now());
    let mut config = CallbackConfig::new(&callback_url);
    config.boot_url = Some(boot_url.clone());
    tune(&mut config);
    let state = CallbackState::new(
        Arc::new(store.clone()),
        client.clone(),
        &tls.ca_pem,
        key.clone(),
        config,
    )
    .with_clock(Arc::new(clock.clone()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shared = futures::FutureExt::shared(async move {
        let _ = rx.await;
    });
    tokio::spawn(callback::serve_https(
        https,
        tls.server_config.clone(),
        callback::https_router(state.clone()),
        shared.clone(),
    ));
    tokio::spawn(callback::serve_http(
        boot,
        callback::boot_router(state),
        shared,
    ));
    store.wait_until_ready().await.expect("reflector ready");
    Env {
        http: https_client(&tls.ca_pem),
        _api: api,
        client,
        store,
        key,
        tls,
        clock,
        callback_url,
        boot_url,
        _shutdown: tx,
    }
}

/// A client that trusts exactly `ca_pem` (no system roots), on the ring provider.
pub fn https_client(ca_pem: &str) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The golden machine's intent (fixtures/inspector-contract), in this test's namespace.
pub fn intent(host: &str) -> ProvisioningIntent {
    ProvisioningIntent {
        images: Images {
            inspection_image_url: "http://images.example.invalid".into(),
            target_image_url: "http://images.example.invalid/kairos.raw".into(),
            target_image_digest: Some(format!("sha256:{}", "a".repeat(64))),
            configuration_url: None,
        },
        handoff: Handoff::Image,
        boot_mode: None,
        root_device_hints: Some(RootDeviceHints {
            device_name: Some("/dev/vda".into()),
            ..RootDeviceHints::default()
        }),
        static_ip: None,
        hardware_requirements: None,
        provider_id: format!("b7://{NS}/{host}/machine-1"),
        bootstrap_data_secret_name: "machine-1-bootstrap".into(),
    }
}

/// A host with a boot MAC, claimed with `intent`.
pub async fn create_host(
    env: &Env,
    name: &str,
    mac: &str,
    intent: Option<ProvisioningIntent>,
) -> PhysicalHost {
    let mut host = PhysicalHost::new(
        name,
        PhysicalHostSpec {
            redfish_connection: RedfishConnection {
                address: "https://192.0.2.1".into(),
                credentials_secret_ref: "bmc".into(),
                ..RedfishConnection::default()
            },
            boot_mac_address: Some(mac.into()),
            automated_cleaning_mode: Default::default(),
            consumer_ref: None,
            provisioning: intent,
        },
    );
    host.metadata.namespace = Some(NS.into());
    Api::<PhysicalHost>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &host)
        .await
        .expect("create host")
}

pub async fn create_bootstrap_secret(env: &Env, name: &str, value: &[u8]) {
    Api::<Secret>::namespaced(env.client.clone(), NS)
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(
                    "value".to_string(),
                    ByteString(value.to_vec()),
                )])),
                ..Secret::default()
            },
        )
        .await
        .expect("create bootstrap secret");
}

/// Writes the host controller's part of the status: the state and a freshly minted attempt.
/// Returns the attempt's secrets (re-derived, as the callback does).
pub async fn start_attempt(
    env: &Env,
    host: &PhysicalHost,
    state: HostState,
    mode: AttemptMode,
    config_nonce: bool,
) -> (Attempt, AttemptSecrets) {
    let uid = host.metadata.uid.clone().expect("uid");
    let attempt = mint_attempt(
        &env.key,
        &uid,
        mode,
        config_nonce,
        env.clock.now_ts(),
        AttemptLifetimes::default(),
    )
    .unwrap();
    let secrets = env.key.secrets(&uid, attempt.id.as_deref().unwrap());
    let name = host.metadata.name.as_deref().unwrap();
    let status = PhysicalHostStatus {
        state: Some(state),
        attempt: Some(attempt.clone()),
        ..PhysicalHostStatus::default()
    };
    Api::<PhysicalHost>::namespaced(env.client.clone(), NS)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .expect("write attempt");
    let id = attempt.id.clone();
    settle(env, name, |h| {
        h.status
            .as_ref()
            .and_then(|s| s.attempt.as_ref())
            .and_then(|a| a.id.clone())
            == id
            && h.state() == Some(state)
    })
    .await;
    (attempt, secrets)
}

/// Sets the host's state (as the host controller would) and waits for the reflector.
pub async fn set_state(env: &Env, name: &str, state: HostState) {
    Api::<PhysicalHost>::namespaced(env.client.clone(), NS)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "state": state } })),
        )
        .await
        .expect("write state");
    settle(env, name, |h| h.state() == Some(state)).await;
}

/// Waits until the reflector's copy of the host satisfies `pred`.
pub async fn settle(env: &Env, name: &str, pred: impl Fn(&PhysicalHost) -> bool) {
    let key = reflector::ObjectRef::new(name).within(NS);
    for _ in 0..500 {
        if env.store.get(&key).is_some_and(|h| pred(&h)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the reflector never saw the expected state of host {name}");
}

/// The host as the API server has it now.
pub async fn host(env: &Env, name: &str) -> PhysicalHost {
    Api::<PhysicalHost>::namespaced(env.client.clone(), NS)
        .get(name)
        .await
        .expect("get host")
}

/// The host's attempt as the API server has it now.
pub async fn attempt(env: &Env, name: &str) -> Attempt {
    host(env, name)
        .await
        .status
        .and_then(|s| s.attempt)
        .expect("an attempt")
}

pub fn boot_path(name: &str, nonce: &str) -> String {
    format!("/api/v1/boot/{NS}/{name}/{nonce}")
}

/// GET over HTTPS; (status, body).
pub async fn get(env: &Env, path: &str) -> (u16, String) {
    let r = env
        .http
        .get(format!("{}{path}", env.callback_url))
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A request with a bearer token over HTTPS.
pub async fn bearer(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Vec<u8>>,
) -> reqwest::Response {
    let mut req = env
        .http
        .request(method, format!("{}{path}", env.callback_url))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    req.send().await.expect("request")
}

pub trait ClockExt {
    fn now_ts(&self) -> jiff::Timestamp;
}

impl ClockExt for ManualClock {
    fn now_ts(&self) -> jiff::Timestamp {
        beskar7::callback::Clock::now(self)
    }
}
