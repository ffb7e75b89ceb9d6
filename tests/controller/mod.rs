//! The real `beskar7 manager` binary against the sim's API server and simulated BMCs: each test
//! starts an in-memory API server on 127.0.0.1 (with crds/ loaded), sim BMCs on 127.0.0.1, and
//! the manager as a child process, then observes through a kube client (watches, no polling
//! sleeps; timeouts only guard against hangs).

mod attempt;
mod capi_env;
mod cluster;
mod deprovision;
mod enroll;
mod failures;
mod machine;
mod manager;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beskar7::api::physical_host::PhysicalHost;
use beskar7_sim::apiserver::{ApiServer, Identity};
use beskar7_sim::bmc::{Bmc as SimBmc, BmcConfig as SimConfig};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Event, Namespace, Secret};
use kube::api::{ListParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::oneshot;

pub const USER: &str = "root";
/// Distinctive, so a leak into status, events or logs is easy to find.
pub const PASSWORD: &str = "pw-Zq7x-NEVER-LOGGED";
/// A generous guard: the machine is shared and slow; progress itself is watched, not slept on.
pub const GUARD: Duration = Duration::from_secs(60);
/// The manager's `--operator-namespace` in these tests.
pub const OPERATOR_NS: &str = "beskar7-system";

/// The API server and an admin client for it.
pub struct Cluster {
    pub client: Client,
    pub kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn scratch_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "beskar7-controller-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

impl Cluster {
    pub async fn start() -> Cluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = ApiServer::in_memory();
        api.load_crds(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds"))
            .expect("CRDs load");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(api.clone().serve(listener, std::future::pending()));
        let dir = scratch_dir();
        let kubeconfig = dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig, &url, Identity::admin())
            .expect("kubeconfig");
        Cluster {
            client: Client::new(api.router(), "default"),
            kubeconfig,
            dir,
        }
    }

    pub fn hosts(&self, ns: &str) -> Api<PhysicalHost> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub fn secrets(&self, ns: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub async fn namespace(&self, name: &str) {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }

    /// The BMC credentials Secret `bmc` in `ns`, with the sim BMCs' username and password.
    pub async fn bmc_secret(&self, ns: &str) {
        self.secret(ns, "bmc", &[("username", USER), ("password", PASSWORD)])
            .await;
    }

    /// A credentials Secret with the given keys.
    pub async fn secret(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<String, ByteString> = data
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect();
        let s = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        self.secrets(ns)
            .create(&PostParams::default(), &s)
            .await
            .expect("secret");
    }

    /// A PhysicalHost pointing at `address` with the credentials Secret `secret`.
    pub async fn host(
        &self,
        ns: &str,
        name: &str,
        address: &str,
        secret: &str,
        extra: serde_json::Value,
    ) {
        let mut spec = json!({
            "redfishConnection": {"address": address, "credentialsSecretRef": secret},
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                if k == "redfishConnection" {
                    for (ck, cv) in v.as_object().expect("object") {
                        s["redfishConnection"][ck] = cv.clone();
                    }
                } else if k != "labels" {
                    s.insert(k.clone(), v.clone());
                }
            }
        }
        let host: PhysicalHost = serde_json::from_value(json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "PhysicalHost",
            "metadata": {"name": name, "labels": extra.get("labels").cloned().unwrap_or(json!({}))},
            "spec": spec,
        }))
        .expect("host");
        self.hosts(ns)
            .create(&PostParams::default(), &host)
            .await
            .expect("create host");
    }

    /// Waits (watching) until `cond` holds for the host, and returns it.
    pub async fn wait_host(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        cond: impl Fn(&PhysicalHost) -> bool + Send + 'static,
    ) -> PhysicalHost {
        let api = self.hosts(ns);
        let found = tokio::time::timeout(
            GUARD,
            await_condition(api.clone(), name, move |h: Option<&PhysicalHost>| {
                h.is_some_and(&cond)
            }),
        )
        .await;
        match found {
            Ok(Ok(Some(h))) => h,
            other => {
                let now = api.get_opt(name).await.ok().flatten();
                panic!(
                    "host {ns}/{name} never became {what} ({other:?}); now: {:#?}",
                    now.and_then(|h| h.status)
                )
            }
        }
    }

    /// Waits until the host is gone.
    pub async fn wait_deleted(&self, ns: &str, name: &str) {
        let api = self.hosts(ns);
        tokio::time::timeout(
            GUARD,
            await_condition(api, name, |h: Option<&PhysicalHost>| h.is_none()),
        )
        .await
        .expect("host deleted in time")
        .expect("watch");
    }

    /// Every event's reason and note in `ns`, as one text.
    pub async fn events_text(&self, ns: &str) -> String {
        Api::<Event>::namespaced(self.client.clone(), ns)
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}\n",
                    e.type_.as_deref().unwrap_or_default(),
                    e.reason.as_deref().unwrap_or_default(),
                    e.message.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// A simulated BMC on 127.0.0.1, shut down (port closed) with [`Server::stop`].
pub struct Server {
    pub bmc: Arc<SimBmc>,
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(config: SimConfig) -> Server {
        let bmc = SimBmc::new(SimConfig {
            username: USER.into(),
            password: PASSWORD.into(),
            power_delay: Duration::from_millis(50),
            ..config
        })
        .expect("sim BMC");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(bmc.clone().serve(listener, async {
            let _ = rx.await;
        }));
        Server {
            bmc,
            url,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Serves on `addr` (e.g. the address of a BMC that was down until now).
    pub async fn start_at(config: SimConfig, addr: &str) -> Server {
        let bmc = SimBmc::new(SimConfig {
            username: USER.into(),
            password: PASSWORD.into(),
            power_delay: Duration::from_millis(50),
            ..config
        })
        .expect("sim BMC");
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let url = format!("http://{addr}");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(bmc.clone().serve(listener, async {
            let _ = rx.await;
        }));
        Server {
            bmc,
            url,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn generic() -> Server {
        Self::start(SimConfig::default()).await
    }

    /// Closes the port: the BMC is dead from now on.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// An address where nothing listens.
pub fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("http://{}", l.local_addr().expect("addr"))
}

/// The real `beskar7 manager` as a child process; its stderr is captured.
pub struct Manager {
    child: Child,
    pub metrics: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Manager {
    pub async fn start(cluster: &Cluster, args: &[&str]) -> Manager {
        // The operator keeps its token key and callback TLS Secrets here.
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": OPERATOR_NS}})).unwrap();
        match Api::<Namespace>::all(cluster.client.clone())
            .create(&PostParams::default(), &ns)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_already_exists() => {}
            Err(e) => panic!("operator namespace: {e}"),
        }
        let mut defaults = vec!["--operator-namespace", OPERATOR_NS];
        // The callback listener always runs; tests bind a free port and name it in the URL.
        if !args.contains(&"--callback-url") {
            defaults.extend([
                "--callback-addr",
                "127.0.0.1:0",
                "--callback-url",
                "https://127.0.0.1:0",
            ]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_beskar7"))
            .arg("manager")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(defaults)
            .args(args)
            .env("RUST_LOG", "debug,hyper=info,tower=info,h2=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn beskar7 manager");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving /metrics")
                    && let Some(addr) = find_addr(&line)
                {
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let metrics = tokio::task::spawn_blocking(move || rx.recv_timeout(GUARD))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("the manager printed no metrics address"));
        let m = Manager {
            child,
            metrics,
            log,
        };
        // Ready = the host cache is synced: from here on, every change is seen.
        let last = Arc::new(Mutex::new(String::new()));
        let seen = last.clone();
        let ready = tokio::time::timeout(GUARD, async {
            loop {
                let (code, body) = m.get("/readyz").await;
                if code == 200 {
                    break;
                }
                *seen.lock().unwrap() = format!("{code} {body}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            ready.is_ok(),
            "the manager never became ready (last /readyz: {}); its log:\n{}",
            last.lock().unwrap(),
            m.log()
        );
        m
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The external URL a listener logged at startup (`url=...` of its "serving the ..." line).
    pub fn listener_url(&self, listener: &str) -> Option<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|l| l.contains(&format!("serving the {listener}")))
            .find_map(|l| {
                let rest = &l[l.find("url=")? + 4..];
                Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
            })
    }

    /// GET on the metrics server: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.metrics);
        match reqwest::Client::new().get(url).send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, format!("{e:?}")),
        }
    }

    /// A counter's value from /metrics (summed over series matching every `labels` part).
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let (_, text) = self.get("/metrics").await;
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .filter(|l| labels.iter().all(|p| l.contains(p)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// SIGTERM, then the exit status (bounded).
    pub async fn terminate(mut self) -> (ExitStatus, Duration) {
        let started = std::time::Instant::now();
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let status = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + GUARD;
            loop {
                if let Some(s) = self.child.try_wait().expect("wait") {
                    return s;
                }
                if std::time::Instant::now() > deadline {
                    let _ = self.child.kill();
                    panic!("the manager did not exit after SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
        .unwrap();
        (status, started.elapsed())
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `addr=127.0.0.1:port` (text) or `"addr":"127.0.0.1:port"` (JSON) of a log line.
fn find_addr(line: &str) -> Option<SocketAddr> {
    let start = line.find("127.0.0.1:")?;
    let rest = &line[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The Ready condition's (status, reason, message).
pub fn ready(h: &PhysicalHost) -> Option<(String, String, String)> {
    condition(h, "Ready")
}

pub fn condition(h: &PhysicalHost, t: &str) -> Option<(String, String, String)> {
    h.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}
