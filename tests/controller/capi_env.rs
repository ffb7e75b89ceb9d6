//! What the machine and cluster tests share: an API server with Beskar7's and Cluster API's
//! CRDs, hosts made Available by the real host controller against sim BMCs, CAPI objects
//! created as CAPI would (v1beta2, through the dynamic API), and waits that watch.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use beskar7::api::physical_host::PhysicalHost;
use beskar7::api::{Beskar7Cluster, Beskar7Machine, HostState};
use beskar7_sim::apiserver::{ApiServer, Identity};
use beskar7_sim::bmc::{BmcConfig as SimConfig, ServerSpec};
use futures::StreamExt;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use super::{Cluster, GUARD, Manager, PASSWORD, Server, USER};

pub const NS: &str = "default";
pub const BMC_SECRET: &str = "bmc";

/// The API server with crds/ and the CAPI CRDs (v1beta2 storage) loaded.
pub async fn start_cluster() -> Cluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = ApiServer::in_memory();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    api.load_crds(&root.join("crds")).expect("CRDs load");
    api.load_crds(&root.join("../shared/fixtures/capi-crds"))
        .expect("CAPI CRDs load");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(api.clone().serve(listener, std::future::pending()));
    let dir = super::scratch_dir();
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig, &url, Identity::admin())
        .expect("kubeconfig");
    Cluster {
        client: Client::new(api.router(), "default"),
        kubeconfig,
        dir,
    }
}

/// A test datacenter: the API server, the sim BMCs behind the hosts, and the manager.
pub struct Env {
    pub cluster: Cluster,
    pub manager: Option<Manager>,
    servers: Vec<Server>,
}

fn capi(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", kind),
        plural,
    )
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(&[]).await
    }

    /// With extra manager flags.
    pub async fn start_with(args: &[&str]) -> Env {
        let cluster = start_cluster().await;
        cluster
            .secret(
                NS,
                BMC_SECRET,
                &[("username", USER), ("password", PASSWORD)],
            )
            .await;
        let manager = Manager::start(&cluster, args).await;
        Env {
            cluster,
            manager: Some(manager),
            servers: Vec::new(),
        }
    }

    pub fn client(&self) -> Client {
        self.cluster.client.clone()
    }

    pub fn hosts(&self) -> Api<PhysicalHost> {
        self.cluster.hosts(NS)
    }

    pub fn b7ms(&self) -> Api<Beskar7Machine> {
        Api::namespaced(self.client(), NS)
    }

    pub fn b7cs(&self) -> Api<Beskar7Cluster> {
        Api::namespaced(self.client(), NS)
    }

    pub fn machines(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client(), NS, &capi("Machine", "machines"))
    }

    pub fn clusters(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client(), NS, &capi("Cluster", "clusters"))
    }

    /// A host on its own sim BMC (with `cores` CPU cores and `memory_gib`), not waited for.
    pub async fn add_host_nowait(
        &mut self,
        name: &str,
        labels: serde_json::Value,
        cores: u32,
        memory_gib: u32,
    ) {
        let server = Server::start(SimConfig {
            server: ServerSpec {
                cpu_cores: cores,
                memory_gib,
                ..ServerSpec::default()
            },
            ..SimConfig::default()
        })
        .await;
        self.cluster
            .host(NS, name, &server.url, BMC_SECRET, json!({"labels": labels}))
            .await;
        self.servers.push(server);
    }

    /// Stops the sim BMC of the `i`-th host added: it stops answering.
    pub async fn stop_bmc(&mut self, i: usize) {
        self.servers[i].stop().await;
    }

    /// A host made Available by the real host controller.
    pub async fn add_host(&mut self, name: &str, labels: serde_json::Value, cores: u32) {
        self.add_host_nowait(name, labels, cores, 64).await;
        self.cluster
            .wait_host(NS, name, "Available", |h| {
                h.state() == Some(HostState::Available)
            })
            .await;
    }

    /// A CAPI Cluster, its infrastructure provisioned or not.
    pub async fn capi_cluster(&self, name: &str, mut spec: serde_json::Value, provisioned: bool) {
        // As a cluster template has it: the Beskar7Cluster of the same name.
        spec["infrastructureRef"] = json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Cluster", "name": name});
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2",
            "kind": "Cluster",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .unwrap();
        self.clusters()
            .create(&PostParams::default(), &obj)
            .await
            .expect("create Cluster");
        if provisioned {
            self.set_cluster_provisioned(name).await;
        }
    }

    pub async fn set_cluster_provisioned(&self, name: &str) {
        self.clusters()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"initialization": {"infrastructureProvisioned": true}}}),
                ),
            )
            .await
            .expect("Cluster status");
    }

    pub async fn patch_cluster(&self, name: &str, body: serde_json::Value) {
        self.clusters()
            .patch(name, &PatchParams::default(), &Patch::Merge(body))
            .await
            .expect("patch Cluster");
    }

    /// A CAPI Machine of `cluster` pointing at the Beskar7Machine of the same name (as a
    /// MachineSet creates it); returns its uid.
    pub async fn capi_machine(
        &self,
        name: &str,
        cluster: &str,
        data_secret: Option<&str>,
        failure_domain: Option<&str>,
    ) -> String {
        let mut spec = json!({
            "clusterName": cluster,
            "bootstrap": {},
            "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Machine", "name": name},
        });
        if let Some(s) = data_secret {
            spec["bootstrap"]["dataSecretName"] = json!(s);
        }
        if let Some(fd) = failure_domain {
            spec["failureDomain"] = json!(fd);
        }
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2",
            "kind": "Machine",
            "metadata": {"name": name, "labels": {"cluster.x-k8s.io/cluster-name": cluster}},
            "spec": spec,
        }))
        .unwrap();
        self.machines()
            .create(&PostParams::default(), &obj)
            .await
            .expect("create Machine")
            .uid()
            .expect("uid")
    }

    /// The bootstrap Secret CABPK would write (key `value`).
    pub async fn bootstrap_secret(&self, name: &str) {
        self.cluster
            .secret(
                NS,
                name,
                &[("value", "#cloud-config\nSECRET-BOOTSTRAP-DATA")],
            )
            .await;
    }

    /// A Beskar7Machine, owned (controller ref) by the Machine `owner` (name, uid) when given.
    pub async fn b7m(
        &self,
        name: &str,
        cluster: &str,
        owner: Option<(&str, &str)>,
        extra_spec: serde_json::Value,
    ) {
        let mut spec = json!({
            "inspectionImageURL": "http://boot.example/agent/",
            "targetImageURL": "http://boot.example/os.tar.gz",
        });
        for (k, v) in extra_spec.as_object().cloned().unwrap_or_default() {
            spec[k] = v;
        }
        let mut meta = json!({"name": name, "labels": {"cluster.x-k8s.io/cluster-name": cluster}});
        if let Some((m, uid)) = owner {
            meta["ownerReferences"] = owner_ref("Machine", m, uid);
        }
        let obj: Beskar7Machine = serde_json::from_value(json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "Beskar7Machine",
            "metadata": meta,
            "spec": spec,
        }))
        .unwrap();
        self.b7ms()
            .create(&PostParams::default(), &obj)
            .await
            .expect("create Beskar7Machine");
    }

    /// Cluster, Machine (with bootstrap data), and its Beskar7Machine: a machine ready to claim.
    pub async fn full_machine(&self, name: &str, cluster: &str, extra_spec: serde_json::Value) {
        let secret = format!("{name}-bootstrap");
        self.bootstrap_secret(&secret).await;
        let uid = self.capi_machine(name, cluster, Some(&secret), None).await;
        self.b7m(name, cluster, Some((name, &uid)), extra_spec)
            .await;
    }

    /// Waits (watching) until `cond` holds for the Beskar7Machine.
    pub async fn wait_b7m(
        &self,
        name: &str,
        what: &str,
        cond: impl Fn(&Beskar7Machine) -> bool + Send + 'static,
    ) -> Beskar7Machine {
        let api = self.b7ms();
        let found = tokio::time::timeout(
            GUARD,
            await_condition(api.clone(), name, move |m: Option<&Beskar7Machine>| {
                m.is_some_and(&cond)
            }),
        )
        .await;
        match found {
            Ok(Ok(Some(m))) => m,
            other => {
                let now = api.get_opt(name).await.ok().flatten();
                panic!(
                    "Beskar7Machine {name} never became {what} ({other:?}); now: {now:#?}\nmanager log tail:\n{}",
                    self.log_tail()
                )
            }
        }
    }

    pub async fn wait_b7m_deleted(&self, name: &str) {
        let found = tokio::time::timeout(
            GUARD,
            await_condition(self.b7ms(), name, |m: Option<&Beskar7Machine>| m.is_none()),
        )
        .await;
        if found.is_err() {
            let now = self.b7ms().get_opt(name).await.ok().flatten();
            panic!(
                "Beskar7Machine {name} was never deleted; now: {now:#?}\n{}",
                self.log_tail()
            );
        }
    }

    /// Waits until `cond` holds for the whole set of objects of `api` (watched).
    pub async fn wait_all<K>(
        &self,
        api: Api<K>,
        what: &str,
        cond: impl Fn(&[Arc<K>]) -> bool,
    ) -> Vec<Arc<K>>
    where
        K: Resource<DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + Sync
            + 'static,
    {
        let (reader, writer) = reflector::store();
        let mut stream =
            Box::pin(reflector(writer, watcher(api, watcher::Config::default())).default_backoff());
        let result = tokio::time::timeout(GUARD, async {
            let mut listed = false;
            loop {
                match stream.next().await {
                    Some(Ok(watcher::Event::InitDone)) => listed = true,
                    Some(_) => {}
                    None => panic!("watch ended"),
                }
                if listed {
                    let state = reader.state();
                    if cond(&state) {
                        return state;
                    }
                }
            }
        })
        .await;
        match result {
            Ok(s) => s,
            Err(_) => panic!(
                "never {what}; now: {:#?}\nmanager log tail:\n{}",
                reader.state(),
                self.log_tail()
            ),
        }
    }

    pub fn log_tail(&self) -> String {
        let log = self.manager.as_ref().map(|m| m.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// The id of the host's attempt, once the real host controller has booted it (the sim BMC
    /// has no virtual host behind it: the test plays the agent).
    async fn booted_attempt(&self, name: &str) -> String {
        let h = self
            .cluster
            .wait_host(NS, name, "an attempt booted", |h| {
                h.status
                    .as_ref()
                    .and_then(|s| s.attempt.as_ref())
                    .is_some_and(|a| a.id.is_some() && a.booted_at.is_some())
            })
            .await;
        h.status.unwrap().attempt.unwrap().id.unwrap()
    }

    /// Records an agent callback as the callback servers do (a merge patch under their field
    /// manager, tied to the current attempt); the real host controller reacts to it.
    async fn callback_record(&self, name: &str, record: &str, extra: serde_json::Value) {
        let id = self.booted_attempt(name).await;
        let now = k8s_openapi::jiff::Timestamp::now();
        let now = k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
        let mut status = json!({"attempt": {"recordsAttemptID": id, record: now.to_string()}});
        if let (Some(s), serde_json::Value::Object(extra)) = (status.as_object_mut(), extra) {
            s.extend(extra);
        }
        self.hosts()
            .patch_status(
                name,
                &PatchParams {
                    field_manager: Some("beskar7-callback".into()),
                    ..PatchParams::default()
                },
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .expect("callback record");
    }

    /// The agent's hardware report (the normalized `status.inspection`) for the current attempt.
    pub async fn agent_reports(&self, name: &str, inspection: serde_json::Value) {
        self.callback_record(name, "reportedAt", json!({ "inspection": inspection }))
            .await;
    }

    /// The agent's `provisioned` for the current attempt.
    pub async fn agent_provisioned(&self, name: &str) {
        self.callback_record(name, "provisionedAt", json!({})).await;
    }

    /// Reports enough hardware, then provisioned, waiting for the host to follow each step.
    pub async fn agent_provisions(&self, name: &str, nics: serde_json::Value) {
        self.agent_reports(
            name,
            json!({"cpuCores": 64, "memoryMiB": 262144, "diskGB": 2000, "nics": nics}),
        )
        .await;
        self.cluster
            .wait_host(NS, name, "Deploying", |h| {
                h.state() == Some(HostState::Deploying)
            })
            .await;
        self.agent_provisioned(name).await;
    }
}

pub fn owner_ref(kind: &str, name: &str, uid: &str) -> serde_json::Value {
    json!([{
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// The condition `t` of a machine: (status, reason, message).
pub fn cond(m: &Beskar7Machine, t: &str) -> Option<(String, String, String)> {
    m.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub fn reason(m: &Beskar7Machine, t: &str) -> String {
    cond(m, t).map(|c| c.1).unwrap_or_default()
}

/// The name of the machine claiming `h`.
pub fn consumer(h: &PhysicalHost) -> Option<String> {
    h.spec.consumer_ref.as_ref().map(|c| c.name.clone())
}

/// Records every consumerRef each host ever had (from a watch started now), so a test can
/// assert that no claim ever moved from one machine to another.
pub struct ClaimLog {
    pub seen: Arc<Mutex<std::collections::BTreeMap<String, Vec<Option<String>>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ClaimLog {
    pub fn start(api: Api<PhysicalHost>) -> ClaimLog {
        let seen: Arc<Mutex<std::collections::BTreeMap<String, Vec<Option<String>>>>> =
            Default::default();
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut s = Box::pin(
                watcher(api, watcher::Config::default())
                    .default_backoff()
                    .applied_objects(),
            );
            while let Some(Ok(h)) = s.next().await {
                let mut seen = sink.lock().unwrap();
                let list = seen.entry(h.name_any()).or_default();
                let c = consumer(&h);
                if list.last() != Some(&c) {
                    list.push(c);
                }
            }
        });
        ClaimLog { seen, task }
    }

    /// Panics if any host went from one consumer straight to another; returns every
    /// (host, machine) claim seen.
    pub fn check(&self) -> Vec<(String, String)> {
        let seen = self.seen.lock().unwrap();
        let mut claims = Vec::new();
        for (host, list) in seen.iter() {
            let mut last: Option<&String> = None;
            for c in list {
                if let (Some(a), Some(b)) = (last, c.as_ref()) {
                    panic!("host {host}'s claim changed from {a} to {b}: {list:?}");
                }
                if let Some(b) = c {
                    claims.push((host.clone(), b.clone()));
                }
                last = c.as_ref();
            }
        }
        claims
    }
}

impl Drop for ClaimLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}
