//! Provisioning attempts end to end: the real manager (callback listener on 127.0.0.1 with its
//! generated CA, the plain-HTTP boot listener), the sim API server, and sim servers (a BMC and a
//! virtual host that PXE-boots through the manager's first stage and plays the agent). The test
//! plays the machine controller: it sets `spec.consumerRef` and `spec.provisioning` and creates
//! the bootstrap Secret.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beskar7::api::physical_host::{HostState, PhysicalHost};
use beskar7::tokens::{TOKEN_KEY_FIELD, TOKEN_KEY_SECRET, TokenKey, sha256_hex};
use beskar7_sim::bmc::BmcConfig;
use beskar7_sim::host::{
    self, DiskContents, Hardware, HostConfig, HostState as SimState, Misbehaviour, SimServer,
};
use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;

use super::{Cluster, GUARD, Manager, OPERATOR_NS, PASSWORD, USER, condition};

const NS: &str = "metal";
/// Distinctive bootstrap data: a leak into logs, events or status is easy to find.
const BOOTSTRAP: &str = "#cloud-config\nkubelet:\n  provider-id: BESKAR7_PROVIDER_ID\n  secret: bootstrap-Kq93-NEVER-LOGGED\n";
const AGENT: &str = "http://images.example.com/agent";

/// The manager, the API server and the boot URL the virtual hosts' DHCP points at.
struct Rig {
    cluster: Cluster,
    manager: Option<Manager>,
    boot_url: String,
}

impl Rig {
    async fn start(args: &[&str]) -> Rig {
        let cluster = Cluster::start().await;
        cluster.namespace(NS).await;
        cluster
            .secret(NS, "bmc", &[("username", USER), ("password", PASSWORD)])
            .await;
        let manager = start_manager(&cluster, args).await;
        let boot_url = manager
            .listener_url("plain-HTTP boot listener")
            .expect("the manager logged its boot URL");
        Rig {
            cluster,
            manager: Some(manager),
            boot_url,
        }
    }

    fn manager(&self) -> &Manager {
        self.manager.as_ref().expect("manager")
    }

    /// A sim server (BMC + virtual host) whose first stage is the manager's boot listener.
    async fn server(
        &self,
        name: &str,
        hw: Hardware,
        tweak: impl FnOnce(&mut HostConfig),
    ) -> SimServer {
        let mut config = HostConfig::new(&self.boot_url);
        config.timing.poll_interval = Duration::from_millis(100);
        config.timing.work = Duration::from_millis(100);
        tweak(&mut config);
        let bmc = BmcConfig {
            username: USER.into(),
            password: PASSWORD.into(),
            power_delay: Duration::from_millis(50),
            ..BmcConfig::default()
        };
        SimServer::start(name, hw, bmc, config)
            .await
            .expect("sim server")
    }

    /// A PhysicalHost for `server`, waited for until Available.
    async fn host(&self, name: &str, server: &SimServer, extra: serde_json::Value) -> PhysicalHost {
        let base = &server.redfish_url[..server.redfish_url.find("/redfish").unwrap()];
        self.cluster.host(NS, name, base, "bmc", extra).await;
        self.cluster
            .wait_host(NS, name, "Available", |h| {
                h.state() == Some(HostState::Available)
            })
            .await
    }

    /// Claims the host as the machine controller would: consumerRef, the intent and the
    /// bootstrap Secret.
    async fn claim(&self, name: &str, requirements: Option<serde_json::Value>) {
        let secret = format!("{name}-bootstrap");
        self.cluster
            .secret(NS, &secret, &[("value", BOOTSTRAP)])
            .await;
        let mut intent = json!({
            "inspectionImageURL": AGENT,
            "targetImageURL": "http://images.example.com/os.raw",
            "targetImageDigest": format!("sha256:{}", "ab".repeat(32)),
            "handoff": "Image",
            "providerID": provider_id(name),
            "bootstrapDataSecretName": secret,
        });
        if let Some(r) = requirements {
            intent["hardwareRequirements"] = r;
        }
        let patch = json!({"spec": {
            "consumerRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Machine", "name": format!("m-{name}")},
            "provisioning": intent,
        }});
        self.cluster
            .hosts(NS)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("claim");
    }

    /// Releases the host as the machine controller would.
    async fn release(&self, name: &str) {
        let patch = json!({"spec": {"consumerRef": null, "provisioning": null}});
        self.cluster
            .hosts(NS)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("release");
    }

    async fn wait(
        &self,
        name: &str,
        what: &str,
        cond: impl Fn(&PhysicalHost) -> bool + Send + 'static,
    ) -> PhysicalHost {
        self.cluster.wait_host(NS, name, what, cond).await
    }

    /// The attempt's secrets, derived as the manager derives them (from its token key Secret).
    async fn secrets_of(&self, h: &PhysicalHost) -> Vec<String> {
        let key = self
            .cluster
            .secrets(OPERATOR_NS)
            .get(TOKEN_KEY_SECRET)
            .await
            .expect("token key");
        let bytes = key.data.unwrap()[TOKEN_KEY_FIELD].0.clone();
        let key = TokenKey::from_bytes(&bytes).unwrap();
        let id = attempt(h).id.clone().unwrap();
        let s = key.secrets(h.metadata.uid.as_deref().unwrap(), &id);
        vec![
            s.token.expose().to_owned(),
            s.boot_nonce.expose().to_owned(),
            s.config_nonce.expose().to_owned(),
        ]
    }

    /// No attempt secret nor the bootstrap data in the manager's log, the events or the status.
    async fn assert_no_secrets(&self, h: &PhysicalHost) {
        let mut secrets = self.secrets_of(h).await;
        secrets.push("bootstrap-Kq93-NEVER-LOGGED".into());
        let status = serde_json::to_string(
            &self
                .cluster
                .hosts(NS)
                .get(&h.metadata.name.clone().unwrap())
                .await
                .unwrap()
                .status,
        )
        .unwrap();
        let events = self.cluster.events_text(NS).await;
        let log = self.manager().log();
        for s in &secrets {
            assert!(
                !log.contains(s.as_str()),
                "a secret is in the manager's log"
            );
            assert!(!events.contains(s.as_str()), "a secret is in an event");
            assert!(!status.contains(s.as_str()), "a secret is in the status");
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(m) = &self.manager
        {
            eprintln!("the manager's log:\n{}", m.log());
        }
    }
}

async fn start_manager(cluster: &Cluster, args: &[&str]) -> Manager {
    let mut all = vec![
        "--boot-addr",
        "127.0.0.1:0",
        "--boot-url",
        "http://127.0.0.1:0",
    ];
    all.extend(args);
    Manager::start(cluster, &all).await
}

fn provider_id(name: &str) -> String {
    format!("b7://{NS}/{name}/m-{name}")
}

fn attempt(h: &PhysicalHost) -> &beskar7::api::Attempt {
    h.status
        .as_ref()
        .unwrap()
        .attempt
        .as_ref()
        .expect("an attempt")
}

fn state_is(s: HostState) -> impl Fn(&PhysicalHost) -> bool + Send + 'static {
    move |h| h.state() == Some(s)
}

fn failed_with(reason: &'static str) -> impl Fn(&PhysicalHost) -> bool + Send + 'static {
    move |h| {
        h.status
            .as_ref()
            .and_then(|s| s.last_failure.as_ref())
            .is_some_and(|f| f.reason == reason)
    }
}

/// Whether the server is powered, and its boot override, as its BMC has them.
fn power_and_override(server: &SimServer) -> (String, String) {
    let sys = server.bmc.system();
    let on = *server.bmc.subscribe_power().borrow();
    (
        if on { "On" } else { "Off" }.to_owned(),
        sys["Boot"]["BootSourceOverrideEnabled"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Records every state each host of `NS` passes through, in order (a watch, no polling).
fn record_states(cluster: &Cluster) -> Arc<Mutex<HashMap<String, Vec<HostState>>>> {
    let seen: Arc<Mutex<HashMap<String, Vec<HostState>>>> = Arc::default();
    let sink = seen.clone();
    let api = cluster.hosts(NS);
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = stream.next().await {
            let hosts: Vec<PhysicalHost> = match ev {
                watcher::Event::Apply(h) | watcher::Event::InitApply(h) => vec![h],
                _ => vec![],
            };
            for h in hosts {
                if let Some(s) = h.state() {
                    let mut seen = sink.lock().unwrap();
                    let v = seen.entry(h.metadata.name.clone().unwrap()).or_default();
                    if v.last() != Some(&s) {
                        v.push(s);
                    }
                }
            }
        }
    });
    seen
}

async fn wait_sim(server: &SimServer, what: &str, pred: impl Fn(&SimState) -> bool) -> SimState {
    match tokio::time::timeout(GUARD, server.host.wait_for(pred)).await {
        Ok(s) => s,
        Err(_) => panic!(
            "the virtual host never became {what}; it is {:?}; its log: {:#?}",
            server.host.state(),
            server.host.events()
        ),
    }
}

#[tokio::test]
async fn a_claimed_host_is_inspected_deployed_and_provisioned() {
    let rig = Rig::start(&[]).await;
    let states = record_states(&rig.cluster);
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |_| {})
        .await;
    rig.host("h1", &server, json!({})).await;
    rig.claim("h1", Some(json!({"minCPUCores": 16, "minMemoryGB": 64})))
        .await;

    let h = rig
        .wait("h1", "Provisioned", state_is(HostState::Provisioned))
        .await;
    let os = wait_sim(&server, "RunningOS", |s| *s == SimState::RunningOS).await;
    assert_eq!(os, SimState::RunningOS);
    let info = server.host.os().expect("an OS");
    assert_eq!(info.provider_id, provider_id("h1"));
    let delivered = BOOTSTRAP.replace("BESKAR7_PROVIDER_ID", &provider_id("h1"));
    assert_eq!(info.bootstrap_sha256, sha256_hex(delivered.as_bytes()));
    assert!(matches!(server.host.disk(), DiskContents::Installed(_)));

    let seen = states
        .lock()
        .unwrap()
        .get("h1")
        .cloned()
        .unwrap_or_default();
    let tail: Vec<_> = seen
        .iter()
        .skip_while(|s| **s != HostState::InUse)
        .cloned()
        .collect();
    assert_eq!(
        tail,
        [
            HostState::InUse,
            HostState::Inspecting,
            HostState::Deploying,
            HostState::Provisioned
        ],
        "all states: {seen:?}"
    );
    let status = h.status.as_ref().unwrap();
    assert_eq!(condition(&h, "Provisioned").unwrap().0, "True");
    assert!(status.provisioned_at.is_some());
    assert!(status.last_failure.is_none());
    // Both writers' fields are there: the controller's (id, bootedAt, deployingAt) and the
    // callback's records, which the controller's later applies did not remove.
    let a = attempt(&h);
    assert!(a.records_are_current());
    assert!(a.booted_at.is_some() && a.deploying_at.is_some());
    assert!(a.reported_at.is_some() && a.provisioned_at.is_some());
    assert!(a.nonce_consumed_at.is_some() && a.bootstrap_fetched_at.is_some());
    assert_eq!(a.agent_image_url.as_deref(), Some(AGENT));
    let owners: BTreeMap<String, String> = h
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                serde_json::to_string(&m.fields_v1).unwrap(),
            )
        })
        .collect();
    let controller = &owners["beskar7-physicalhost"];
    let callback = &owners["beskar7-callback"];
    assert!(controller.contains("f:deployingAt") && !controller.contains("f:reportedAt"));
    assert!(callback.contains("f:reportedAt") && !callback.contains("f:deployingAt"));
    // One-time override used up and cleared; the server runs its OS.
    assert_eq!(
        power_and_override(&server),
        ("On".into(), "Disabled".into())
    );
    rig.assert_no_secrets(&h).await;
}

#[tokio::test]
async fn too_little_hardware_fails_with_each_shortfall_and_powers_off() {
    let rig = Rig::start(&[]).await;
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |c| {
            c.misbehaviour = Some(Misbehaviour::TooLittleHardware)
        })
        .await;
    rig.host("h1", &server, json!({})).await;
    rig.claim("h1", Some(json!({"minCPUCores": 16, "minMemoryGB": 64})))
        .await;
    let h = rig
        .wait(
            "h1",
            "RequirementsNotMet",
            failed_with("RequirementsNotMet"),
        )
        .await;
    let s = h.status.as_ref().unwrap();
    assert_eq!(
        s.state,
        Some(HostState::InUse),
        "still claimed, back to idle"
    );
    let f = s.last_failure.as_ref().unwrap();
    let message = f.message.as_deref().unwrap();
    assert!(message.contains("found 2 CPU cores, need 16"), "{message}");
    assert!(
        message.contains("found 4 GiB of memory, need 64"),
        "{message}"
    );
    assert_eq!(f.attempt_id, attempt(&h).id);
    let (status, reason, _) = condition(&h, "Provisioned").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "RequirementsNotMet")
    );
    wait_sim(&server, "off", |s| *s == SimState::PoweredOff).await;
    assert_eq!(
        power_and_override(&server),
        ("Off".into(), "Disabled".into())
    );
    assert!(
        rig.cluster
            .events_text(NS)
            .await
            .contains("RequirementsNotMet")
    );
    // The machine controller releases it: back in the pool, still off.
    rig.release("h1").await;
    rig.wait("h1", "Available", state_is(HostState::Available))
        .await;
    assert_eq!(power_and_override(&server).0, "Off");
}

#[tokio::test]
async fn silence_times_out_the_inspection() {
    let rig = Rig::start(&["--inspection-timeout", "3s"]).await;
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |c| {
            c.misbehaviour = Some(Misbehaviour::NeverReports)
        })
        .await;
    rig.host("h1", &server, json!({})).await;
    rig.claim("h1", None).await;
    rig.wait("h1", "Inspecting", state_is(HostState::Inspecting))
        .await;
    let h = rig
        .wait(
            "h1",
            "InspectionTimedOut",
            failed_with("InspectionTimedOut"),
        )
        .await;
    assert_eq!(h.state(), Some(HostState::InUse));
    wait_sim(&server, "off", |s| *s == SimState::PoweredOff).await;
    assert_eq!(
        power_and_override(&server),
        ("Off".into(), "Disabled".into())
    );
    // No new attempt on its own: the machine controller decides.
    let id = attempt(&h).id.clone();
    rig.manager().get("/metrics").await;
    let again = rig.cluster.hosts(NS).get("h1").await.unwrap();
    assert_eq!(attempt(&again).id, id);
}

#[tokio::test]
async fn an_agent_failure_fails_the_attempt_with_its_reason_and_a_retry_starts_fresh() {
    let rig = Rig::start(&[]).await;
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |c| {
            c.misbehaviour = Some(Misbehaviour::FailsDeploy("disk sda is on fire".into()))
        })
        .await;
    rig.host("h1", &server, json!({})).await;
    rig.claim("h1", None).await;
    let h = rig
        .wait("h1", "ProvisionFailed", failed_with("ProvisionFailed"))
        .await;
    let f = h.status.as_ref().unwrap().last_failure.clone().unwrap();
    assert_eq!(f.message.as_deref(), Some("agent: disk sda is on fire"));
    rig.assert_no_secrets(&h).await;
    wait_sim(&server, "off", |s| *s == SimState::PoweredOff).await;
    assert_eq!(
        power_and_override(&server),
        ("Off".into(), "Disabled".into())
    );

    // The machine controller asks for another attempt: fresh secrets, and this time it works.
    server.host.set_misbehaviour(None);
    let failed = f.attempt_id.clone().unwrap();
    let patch = json!({"metadata": {"annotations": {"beskar7.io/retry-attempt": failed}}});
    rig.cluster
        .hosts(NS)
        .patch("h1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let h = rig
        .wait("h1", "Provisioned", state_is(HostState::Provisioned))
        .await;
    assert_ne!(attempt(&h).id.as_deref(), Some(failed.as_str()));
    // lastFailure stays as history; it no longer names the current attempt.
    let last = h.status.as_ref().unwrap().last_failure.clone().unwrap();
    assert_eq!(last.attempt_id.as_deref(), Some(failed.as_str()));
    assert_eq!(condition(&h, "Provisioned").unwrap().0, "True");
    wait_sim(&server, "RunningOS", |s| *s == SimState::RunningOS).await;
}

#[tokio::test]
async fn a_host_without_a_boot_mac_is_never_powered_on() {
    let rig = Rig::start(&[]).await;
    let mut hw = Hardware::standard(1, &host::mac_for(1));
    hw.nics.clear();
    let server = rig.server("s1", hw, |_| {}).await;
    rig.host("h1", &server, json!({})).await;
    rig.claim("h1", None).await;
    let h = rig
        .wait("h1", "NoBootMAC", |h| {
            condition(h, "Provisioned").is_some_and(|c| c.1 == "NoBootMAC")
        })
        .await;
    assert_eq!(condition(&h, "NoBootMAC").unwrap().0, "True");
    assert_eq!(h.state(), Some(HostState::InUse));
    assert!(h.status.as_ref().unwrap().attempt.is_none());
    assert_eq!(power_and_override(&server).0, "Off");
    assert!(
        !server
            .bmc
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.contains("Reset")),
        "no power action was sent"
    );
}

#[tokio::test]
async fn a_bmc_that_fails_at_power_on_fails_the_attempt() {
    let rig = Rig::start(&[]).await;
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |_| {})
        .await;
    rig.host("h1", &server, json!({})).await;
    server
        .bmc
        .inject(beskar7_sim::bmc::Fault::ServerError, 1000);
    rig.claim("h1", None).await;
    let h = rig.wait("h1", "BMCError", failed_with("BMCError")).await;
    assert_eq!(h.state(), Some(HostState::InUse));
    let message = h
        .status
        .as_ref()
        .unwrap()
        .last_failure
        .as_ref()
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(message.starts_with("booting the agent failed"), "{message}");
    assert!(message.contains("could not be powered off"), "{message}");
    server.bmc.clear_faults();
    assert_eq!(power_and_override(&server).0, "Off");
}

/// Every version of every host of `NS` the watch delivers, in order.
fn record_hosts(cluster: &Cluster) -> Arc<Mutex<Vec<PhysicalHost>>> {
    let seen: Arc<Mutex<Vec<PhysicalHost>>> = Arc::default();
    let sink = seen.clone();
    let api = cluster.hosts(NS);
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = stream.next().await {
            if let watcher::Event::Apply(h) | watcher::Event::InitApply(h) = ev {
                sink.lock().unwrap().push(h);
            }
        }
    });
    seen
}

#[tokio::test]
async fn max_concurrent_provisions_caps_the_hosts_booting_at_once() {
    let rig = Rig::start(&["--max-concurrent-provisions", "2"]).await;
    let history = record_hosts(&rig.cluster);
    let mut servers = Vec::new();
    for i in 1..=5u32 {
        let server = rig
            .server(
                &format!("s{i}"),
                Hardware::standard(i, &host::mac_for(i)),
                |c| c.timing.work = Duration::from_millis(400),
            )
            .await;
        rig.host(&format!("h{i}"), &server, json!({})).await;
        servers.push(server);
    }
    for i in 1..=5 {
        rig.claim(&format!("h{i}"), None).await;
    }
    for i in 1..=5 {
        rig.wait(
            &format!("h{i}"),
            "Provisioned",
            state_is(HostState::Provisioned),
        )
        .await;
    }
    // Replay the watch: how many hosts were Inspecting or Deploying at once.
    let mut now: HashMap<String, HostState> = HashMap::new();
    let (mut most, mut waited) = (0, false);
    for h in history.lock().unwrap().iter() {
        if let Some(s) = h.state() {
            now.insert(h.metadata.name.clone().unwrap(), s);
        }
        waited |= condition(h, "Provisioned").is_some_and(|c| c.1 == "WaitingForProvisionSlot");
        let booting = now
            .values()
            .filter(|s| matches!(s, HostState::Inspecting | HostState::Deploying))
            .count();
        most = most.max(booting);
    }
    assert_eq!(
        most, 2,
        "never more than 2 hosts booting, and the cap is used"
    );
    assert!(waited, "some host waited for a slot");
    for s in &servers {
        assert_eq!(s.host.state(), SimState::RunningOS);
    }
}

/// Provisions `name` on `server` (Image), returning when the host runs its OS.
async fn provision(rig: &Rig, name: &str, server: &SimServer) {
    rig.claim(name, None).await;
    rig.wait(name, "Provisioned", state_is(HostState::Provisioned))
        .await;
    wait_sim(server, "RunningOS", |s| *s == SimState::RunningOS).await;
}

#[tokio::test]
async fn a_released_host_is_cleaned_powered_off_and_offered_again() {
    let rig = Rig::start(&[]).await;
    let history = record_hosts(&rig.cluster);
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |_| {})
        .await;
    rig.host("h1", &server, json!({})).await;
    provision(&rig, "h1", &server).await;
    assert!(matches!(server.host.disk(), DiskContents::Installed(_)));
    let provisioned_attempt = attempt(&rig.cluster.hosts(NS).get("h1").await.unwrap())
        .id
        .clone();

    rig.release("h1").await;
    let h = rig
        .wait("h1", "Available", state_is(HostState::Available))
        .await;
    // The cleaning attempt ran: a clean-mode boot whose agent reported cleaned.
    let cleaning = history
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.state() == Some(HostState::Deprovisioning))
        .filter_map(|h| h.status.as_ref()?.attempt.clone())
        .find(|a| {
            a.mode == Some(beskar7::api::AttemptMode::Clean)
                && a.records_are_current()
                && a.cleaned_at.is_some()
        })
        .expect("a finished cleaning attempt");
    assert_ne!(
        cleaning.id, provisioned_attempt,
        "cleaning has its own secrets"
    );
    assert_eq!(cleaning.agent_image_url.as_deref(), Some(AGENT));
    assert_eq!(
        server.host.disk(),
        DiskContents::Empty,
        "the disks were wiped"
    );
    wait_sim(&server, "off", |s| *s == SimState::PoweredOff).await;
    assert_eq!(
        power_and_override(&server),
        ("Off".into(), "Disabled".into())
    );
    assert!(h.spec.consumer_ref.is_none());
    assert!(
        h.status
            .as_ref()
            .unwrap()
            .attempt
            .as_ref()
            .is_none_or(|a| a.id.is_none()),
        "an Available host has no current attempt"
    );
}

#[tokio::test]
async fn a_host_that_never_deployed_is_not_cleaned() {
    let rig = Rig::start(&[]).await;
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |c| {
            c.misbehaviour = Some(Misbehaviour::TooLittleHardware)
        })
        .await;
    rig.host("h1", &server, json!({})).await;
    rig.claim("h1", Some(json!({"minCPUCores": 16}))).await;
    rig.wait(
        "h1",
        "RequirementsNotMet",
        failed_with("RequirementsNotMet"),
    )
    .await;
    server.bmc.clear_requests();
    rig.release("h1").await;
    rig.wait("h1", "Available", state_is(HostState::Available))
        .await;
    assert!(
        !server.bmc.requests().iter().any(|r| r.method == "PATCH"),
        "no one-time PXE for a cleaning: {:?}",
        server.bmc.requests()
    );
    assert_eq!(power_and_override(&server).0, "Off");
}

#[tokio::test]
async fn a_cleaning_that_times_out_keeps_the_host_out_of_the_pool_until_a_person_acts() {
    let rig = Rig::start(&["--deprovision-timeout", "3s"]).await;
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |_| {})
        .await;
    rig.host("h1", &server, json!({})).await;
    provision(&rig, "h1", &server).await;
    server
        .host
        .set_misbehaviour(Some(Misbehaviour::NeverReports));
    rig.release("h1").await;
    let h = rig
        .wait("h1", "CleaningFailed", |h| {
            condition(h, "CleaningFailed").is_some_and(|c| c.0 == "True")
        })
        .await;
    assert_eq!(h.state(), Some(HostState::Error));
    let (_, reason, message) = condition(&h, "CleaningFailed").unwrap();
    assert_eq!(reason, "CleaningTimedOut");
    assert!(message.contains("did not report cleaned"), "{message}");
    assert_eq!(condition(&h, "Ready").unwrap().1, "CleaningTimedOut");
    wait_sim(&server, "off", |s| *s == SimState::PoweredOff).await;
    assert_eq!(
        power_and_override(&server),
        ("Off".into(), "Disabled".into())
    );

    // A person decides the disks need no cleaning: the host powers off and rejoins the pool.
    let patch = json!({"spec": {"automatedCleaningMode": "disabled"}});
    rig.cluster
        .hosts(NS)
        .patch("h1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let h = rig
        .wait("h1", "Available", state_is(HostState::Available))
        .await;
    assert!(condition(&h, "CleaningFailed").is_none());
}

#[tokio::test]
async fn a_manager_restart_mid_attempt_neither_boots_twice_nor_loses_a_report() {
    // Fixed ports: the agent keeps calling the URLs it booted with, across the restart.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (cb, boot) = (free(), free());
    let callback_addr = format!("127.0.0.1:{cb}");
    let callback_url = format!("https://127.0.0.1:{cb}");
    let boot_addr = format!("127.0.0.1:{boot}");
    let boot_url = format!("http://127.0.0.1:{boot}");
    let args = [
        "--callback-addr",
        callback_addr.as_str(),
        "--callback-url",
        callback_url.as_str(),
        "--boot-addr",
        boot_addr.as_str(),
        "--boot-url",
        boot_url.as_str(),
    ];
    let cluster = Cluster::start().await;
    cluster.namespace(NS).await;
    cluster
        .secret(NS, "bmc", &[("username", USER), ("password", PASSWORD)])
        .await;
    let mut rig = Rig {
        manager: Some(Manager::start(&cluster, &args).await),
        cluster,
        boot_url: boot_url.clone(),
    };
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |c| {
            c.timing.work = Duration::from_millis(1500)
        })
        .await;
    rig.host("h1", &server, json!({})).await;
    server.bmc.clear_requests();
    rig.claim("h1", None).await;
    rig.wait("h1", "Inspecting or later", |h| {
        matches!(
            h.state(),
            Some(HostState::Inspecting | HostState::Deploying)
        )
    })
    .await;
    let (status, _) = rig.manager.take().unwrap().terminate().await;
    assert!(status.success());
    rig.manager = Some(Manager::start(&rig.cluster, &args).await);
    let h = rig
        .wait("h1", "Provisioned", state_is(HostState::Provisioned))
        .await;
    wait_sim(&server, "RunningOS", |s| *s == SimState::RunningOS).await;
    assert_eq!(server.host.os().unwrap().provider_id, provider_id("h1"));
    let resets = server
        .bmc
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("ComputerSystem.Reset"))
        .count();
    assert_eq!(resets, 1, "the server was powered on once");
    assert!(attempt(&h).records_are_current());
    rig.assert_no_secrets(&h).await;
}

#[tokio::test]
async fn a_deployment_past_its_timeout_fails_and_powers_off() {
    let rig = Rig::start(&["--deployment-timeout", "2s"]).await;
    // Writing the image takes far longer than the deployment may.
    let server = rig
        .server("s1", Hardware::standard(1, &host::mac_for(1)), |c| {
            c.timing.work = Duration::from_secs(30)
        })
        .await;
    rig.host("h1", &server, json!({})).await;
    rig.claim("h1", None).await;
    rig.wait("h1", "Deploying", state_is(HostState::Deploying))
        .await;
    let h = rig
        .wait(
            "h1",
            "DeploymentTimedOut",
            failed_with("DeploymentTimedOut"),
        )
        .await;
    assert_eq!(h.state(), Some(HostState::InUse));
    let message = h
        .status
        .as_ref()
        .unwrap()
        .last_failure
        .as_ref()
        .unwrap()
        .message
        .clone();
    assert_eq!(
        message.as_deref(),
        Some("the agent did not report provisioned within the deployment timeout (2s)")
    );
    wait_sim(&server, "off", |s| *s == SimState::PoweredOff).await;
    assert_eq!(
        power_and_override(&server),
        ("Off".into(), "Disabled".into())
    );
}

/// The real `beskar7-agent` binary (built beside this test binary by `cargo nextest run
/// --workspace`), reporting this machine's own hardware.
fn agent_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let agent = dir.join("beskar7-agent");
    assert!(
        agent.exists(),
        "{} is missing: build the workspace (cargo build --workspace) first",
        agent.display()
    );
    agent
}

#[tokio::test]
async fn the_real_agent_reports_this_machines_hardware_and_the_host_goes_deploying() {
    let rig = Rig::start(&[]).await;
    // The virtual host boots the agent but stays silent: the real agent speaks instead.
    let mac = host::mac_for(1);
    let server = rig
        .server("s1", Hardware::standard(1, &mac), |c| {
            c.misbehaviour = Some(Misbehaviour::NeverReports);
        })
        .await;
    rig.host("h1", &server, json!({})).await;
    rig.claim("h1", None).await;
    wait_sim(&server, "the agent booted", |s| *s == SimState::Inspecting).await;

    // As iPXE does within the nonce's re-fetch window: the first stage chains to /boot, which
    // answers the same script again for the same MAC.
    let http = reqwest::Client::new();
    let first = http
        .get(format!("{}/ipxe?mac={mac}", rig.boot_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let chain = first
        .lines()
        .find_map(|l| l.strip_prefix("chain "))
        .unwrap_or_else(|| panic!("no chain in the first stage: {first}"))
        .trim()
        .to_owned();
    let script = http.get(&chain).send().await.unwrap().text().await.unwrap();
    let kernel_line = script
        .lines()
        .find_map(|l| l.strip_prefix("kernel "))
        .expect("a kernel line");
    let cmdline = kernel_line.split_once(' ').expect("parameters").1;
    let dir = std::env::temp_dir().join(format!("b7-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cmdline");
    std::fs::write(&file, cmdline).unwrap();

    let out = tokio::process::Command::new(agent_binary())
        .arg("--cmdline-file")
        .arg(&file)
        .arg("--report-only")
        .output()
        .await
        .expect("run beskar7-agent");
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the agent failed: {stderr}");

    let h = rig
        .wait("h1", "Deploying", state_is(HostState::Deploying))
        .await;
    let report = h.status.clone().unwrap().inspection.expect("the report");
    // This machine's own hardware, as the agent probed it.
    let cores = std::thread::available_parallelism().unwrap().get() as i32;
    assert!(
        report.cpu_cores.is_some_and(|c| c >= 1 && c >= cores / 2),
        "cores {:?} (this machine runs {cores} threads)",
        report.cpu_cores
    );
    assert!(report.memory_mib.is_some_and(|m| m > 0), "{report:?}");
    // The token never reaches the agent's own output.
    let token = rig.secrets_of(&h).await[0].clone();
    assert!(!stderr.contains(&token) && !String::from_utf8_lossy(&out.stdout).contains(&token));
}
