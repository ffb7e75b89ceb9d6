//! A small fake operator for the virtual-host tests: the first stage and `/boot` on plain HTTP,
//! the callbacks on HTTPS with the test CA, and a record of every call.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub const CA_PEM: &str = include_str!("certs/ca.pem");
const LEAF_PEM: &str = include_str!("certs/leaf.pem");
const LEAF_KEY: &str = include_str!("certs/leaf.key");
const OTHER_LEAF_PEM: &str = include_str!("certs/other-leaf.pem");
const OTHER_LEAF_KEY: &str = include_str!("certs/other-leaf.key");
const GOLDEN_SCRIPT: &str =
    include_str!("../../../../shared/fixtures/inspector-contract/golden_boot_cmdline.txt");

/// One provisioning (or cleaning) attempt the operator has started for a host.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub namespace: String,
    pub host: String,
    pub nonce: String,
    pub token: String,
    pub provider_id: String,
    /// `None`: Image handoff.
    pub kexec: bool,
    pub clean: bool,
    pub timeout_secs: u64,
    /// Bootstrap data, served once the report was accepted and `bootstrap_ready` is set.
    pub bootstrap: Vec<u8>,
    pub bootstrap_ready: bool,
    pub config_nonce: Option<String>,
    /// Chain to a user's `.ipxe` script with `set beskar7-args` (the `.ipxe` image URL form).
    pub user_script: bool,
    /// Render this `BOOTIF` instead of the booting MAC's (an operator bug).
    pub bootif: Option<String>,
}

impl Attempt {
    pub fn new(host: &str, token: &str, bootstrap: &[u8]) -> Attempt {
        Attempt {
            namespace: "sim".into(),
            host: host.into(),
            nonce: format!("nonce-{host}-{token}"),
            token: token.into(),
            provider_id: format!("b7://sim/{host}/machine-{host}"),
            kexec: false,
            clean: false,
            timeout_secs: 30,
            bootstrap: bootstrap.to_vec(),
            bootstrap_ready: true,
            config_nonce: None,
            user_script: false,
            bootif: None,
        }
    }
}

/// One request as the operator saw it.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub bearer: Option<String>,
    pub body: Vec<u8>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    /// By MAC (colon form, lower case).
    attempts: HashMap<String, Attempt>,
    calls: Vec<Call>,
    reports: HashMap<String, serde_json::Value>,
    config_fetched: bool,
}

pub struct Operator {
    state: Mutex<State>,
    pub boot_url: String,
    pub callback_url: String,
    pub changed: Notify,
}

impl Operator {
    /// Serves HTTP and HTTPS on 127.0.0.1; `other_ca` makes the HTTPS leaf one of another CA.
    pub async fn start(other_ca: bool) -> Arc<Operator> {
        let boot = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let op = Arc::new(Operator {
            state: Mutex::default(),
            boot_url: format!("http://{}", boot.local_addr().unwrap()),
            callback_url: format!("https://{}", tls.local_addr().unwrap()),
            changed: Notify::new(),
        });
        let router = axum::Router::new().fallback({
            let op = op.clone();
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let op = op.clone();
                async move { op.handle(method, uri, headers, body) }
            }
        });
        let (pem, key) = if other_ca {
            (OTHER_LEAF_PEM, OTHER_LEAF_KEY)
        } else {
            (LEAF_PEM, LEAF_KEY)
        };
        let listener = TlsListener {
            tcp: tls,
            acceptor: acceptor(pem, key),
        };
        tokio::spawn(axum::serve(boot, router.clone()).into_future());
        tokio::spawn(axum::serve(listener, router).into_future());
        op
    }

    pub fn attempt(&self, mac: &str, attempt: Attempt) {
        self.state
            .lock()
            .unwrap()
            .attempts
            .insert(mac.to_ascii_lowercase(), attempt);
    }

    pub fn set_bootstrap_ready(&self, mac: &str) {
        let mut state = self.state.lock().unwrap();
        state.attempts.get_mut(mac).unwrap().bootstrap_ready = true;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// `METHOD path` of every call, nonces as they were (tests compare whole paths).
    pub fn call_lines(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| format!("{} {} {}", c.method, c.path, c.status))
            .collect()
    }

    pub fn report(&self, host: &str) -> Option<serde_json::Value> {
        self.state.lock().unwrap().reports.get(host).cloned()
    }

    /// Waits until a call satisfies `pred` (woken by each call, no polling).
    pub async fn wait_call(&self, pred: impl Fn(&Call) -> bool) -> Call {
        loop {
            let notified = self.changed.notified();
            if let Some(c) = self.calls().into_iter().find(|c| pred(c)) {
                return c;
            }
            notified.await;
        }
    }

    fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let path = uri.path().to_string();
        let query: HashMap<String, String> =
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let mut state = self.state.lock().unwrap();
        let (status, answer) = route(
            &mut state,
            self,
            &method,
            &path,
            &query,
            bearer.as_deref(),
            &body,
        );
        state.calls.push(Call {
            method: method.to_string(),
            path: uri.to_string(),
            bearer,
            body: body.to_vec(),
            status: status.as_u16(),
        });
        drop(state);
        self.changed.notify_waiters();
        (status, answer).into_response()
    }
}

fn route(
    state: &mut State,
    op: &Operator,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    bearer: Option<&str>,
    body: &[u8],
) -> (StatusCode, Vec<u8>) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let text = |s: String| (StatusCode::OK, s.into_bytes());
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["boot.ipxe"]) => text("#!ipxe\nchain /ipxe?mac=${netX/mac:hexhyp}\n".into()),
        ("GET", ["ipxe"]) => {
            let mac = query.get("mac").cloned().unwrap_or_default().replace('-', ":");
            match state.attempts.get(&mac) {
                Some(a) => text(format!(
                    "#!ipxe\nchain {}/api/v1/boot/{}/{}/{}?mac={}\n",
                    op.boot_url,
                    a.namespace,
                    a.host,
                    a.nonce,
                    mac.replace(':', "-")
                )),
                None => text("#!ipxe\necho no attempt for this MAC\nexit\n".into()),
            }
        }
        ("GET", ["api", "v1", "boot", ns, host, nonce]) => {
            let found = state
                .attempts
                .iter()
                .find(|(_, a)| a.namespace == *ns && a.host == *host && a.nonce == *nonce);
            match found {
                Some((mac, a)) => text(render(op, a, mac)),
                None => (StatusCode::NOT_FOUND, b"not found".to_vec()),
            }
        }
        ("GET", ["agent.ipxe"]) => text(
            "#!ipxe\nkernel http://images.example.invalid/vmlinuz initrd=initrd.img ${beskar7-args}\ninitrd http://images.example.invalid/initrd.img\nboot\n".into(),
        ),
        ("GET", ["api", "v1", "config", ns, host, nonce]) => {
            let data = state
                .attempts
                .values()
                .find(|a| {
                    a.namespace == *ns && a.host == *host && a.config_nonce.as_deref() == Some(nonce)
                })
                .map(|a| a.bootstrap.clone());
            match data {
                Some(d) if !state.config_fetched => {
                    state.config_fetched = true;
                    (StatusCode::OK, d)
                }
                _ => (StatusCode::NOT_FOUND, Vec::new()),
            }
        }
        (_, ["api", "v1", call, ns, host]) => {
            let Some(a) = state
                .attempts
                .values()
                .find(|a| a.namespace == *ns && a.host == *host)
                .cloned()
            else {
                return (StatusCode::NOT_FOUND, Vec::new());
            };
            if bearer != Some(a.token.as_str()) {
                return (StatusCode::UNAUTHORIZED, Vec::new());
            }
            match (method.as_str(), *call) {
                ("POST", "inspection") => match serde_json::from_slice(body) {
                    Ok(report) => {
                        state.reports.insert(host.to_string(), report);
                        (StatusCode::ACCEPTED, br#"{"status":"accepted"}"#.to_vec())
                    }
                    Err(e) => (StatusCode::BAD_REQUEST, e.to_string().into_bytes()),
                },
                ("GET", "bootstrap") => {
                    if a.bootstrap_ready && state.reports.contains_key(*host) {
                        (StatusCode::OK, a.bootstrap.clone())
                    } else {
                        (StatusCode::NOT_FOUND, Vec::new())
                    }
                }
                ("POST", "provisioned" | "provision-failed" | "cleaned") => {
                    (StatusCode::ACCEPTED, Vec::new())
                }
                _ => (StatusCode::NOT_FOUND, Vec::new()),
            }
        }
        _ => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

/// The `/boot` script: the golden one with this attempt's values, plus what v4.2 leaves out
/// (`initrd=`, `loglevel=`, `beskar7.timeout`, the [ext] parameters).
fn render(op: &Operator, a: &Attempt, mac: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(CA_PEM);
    let bootif = a
        .bootif
        .clone()
        .unwrap_or_else(|| format!("01-{}", mac.replace(':', "-")));
    let golden_kernel = GOLDEN_SCRIPT
        .lines()
        .find_map(|l| l.strip_prefix("kernel http://images.example.invalid/vmlinuz "))
        .unwrap();
    let mut params: Vec<String> = golden_kernel
        .split_whitespace()
        .map(|word| {
            let (key, _) = word.split_once('=').unwrap();
            let value = match key {
                "beskar7.api" => op.callback_url.clone(),
                "beskar7.namespace" => a.namespace.clone(),
                "beskar7.host" => a.host.clone(),
                "beskar7.token" => a.token.clone(),
                "beskar7.provider-id" => a.provider_id.clone(),
                "beskar7.ca" => ca.clone(),
                "BOOTIF" => bootif.clone(),
                _ => word.split_once('=').unwrap().1.to_string(),
            };
            format!("{key}={value}")
        })
        .filter(|p| {
            !a.clean
                || [
                    "beskar7.api=",
                    "beskar7.namespace=",
                    "beskar7.host=",
                    "beskar7.token=",
                    "beskar7.ca=",
                    "BOOTIF=",
                ]
                .iter()
                .any(|k| p.starts_with(k))
        })
        .collect();
    params.push(format!("beskar7.timeout={}", a.timeout_secs));
    if a.clean {
        params.push("beskar7.mode=clean".into());
    }
    if a.kexec {
        params.push("beskar7.handoff=kexec".into());
    }
    if let Some(n) = &a.config_nonce {
        params.push(format!(
            "beskar7.config-url={}/api/v1/config/{}/{}/{n}",
            op.boot_url, a.namespace, a.host
        ));
    }
    let params = params.join(" ");
    if a.user_script {
        format!(
            "#!ipxe\nset beskar7-args {params}\nchain {}/agent.ipxe\n",
            op.boot_url
        )
    } else {
        format!(
            "#!ipxe\nkernel http://images.example.invalid/vmlinuz initrd=initrd.img loglevel=4 {params}\ninitrd http://images.example.invalid/initrd.img\nboot\n"
        )
    }
}

fn acceptor(cert_pem: &str, key_pem: &str) -> TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// axum over TLS: the handshake happens in `accept`; a failed one is dropped (a client that
/// refused our certificate).
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
