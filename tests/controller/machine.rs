//! The Beskar7Machine controller in the real manager: waits with a reason per missing
//! prerequisite, claims a fitting host with a precondition (never twice, never double), mirrors
//! the host's progress, releases a host whose attempt failed and tries another, honours pause,
//! releases on deletion, and survives a restart mid-claim.

use std::collections::{BTreeMap, BTreeSet};

use beskar7::api::physical_host::PhysicalHost;
use beskar7::api::{Beskar7Machine, HostState, MachinePhase};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::capi_env::{ClaimLog, Env, NS, cond, consumer, owner_ref, reason};
use super::{GUARD, Manager};

const HOST_ANNOTATION: &str = "infrastructure.cluster.x-k8s.io/physicalhost";
const FINALIZER: &str = "beskar7machine.infrastructure.cluster.x-k8s.io";

fn bound_to(m: &Beskar7Machine) -> Option<String> {
    m.annotations().get(HOST_ANNOTATION).cloned()
}

fn phase(m: &Beskar7Machine) -> Option<MachinePhase> {
    m.status.as_ref().and_then(|s| s.phase)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_waits_for_each_prerequisite_with_a_reason_then_claims_a_host() {
    let mut env = Env::start().await;
    env.add_host("h1", json!({}), 32).await;

    // No owner Machine yet.
    env.b7m(
        "m1",
        "c1",
        None,
        json!({"hardwareRequirements": {"minCPUCores": 8}, "staticIP": "10.0.0.7::10.0.0.1:24"}),
    )
    .await;
    let m = env
        .wait_b7m("m1", "WaitingForMachineOwner", |m| {
            reason(m, "Ready") == "WaitingForMachineOwner"
        })
        .await;
    assert_eq!(phase(&m), Some(MachinePhase::Pending));
    assert!(
        m.finalizers().is_empty(),
        "no finalizer before an owner exists"
    );

    // The owner appears, but its Cluster does not exist yet.
    let uid = env.capi_machine("m1", "c1", None, None).await;
    env.b7ms()
        .patch(
            "m1",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"ownerReferences": owner_ref("Machine", "m1", &uid)}}),
            ),
        )
        .await
        .unwrap();
    env.wait_b7m("m1", "WaitingForCluster", |m| {
        reason(m, "Ready") == "WaitingForCluster"
    })
    .await;

    // The Cluster exists, its infrastructure is not provisioned.
    env.capi_cluster("c1", json!({}), false).await;
    let m = env
        .wait_b7m("m1", "WaitingForClusterInfrastructure", |m| {
            reason(m, "Ready") == "WaitingForClusterInfrastructure"
        })
        .await;
    assert!(
        m.finalizers().iter().any(|f| f == FINALIZER),
        "{:?}",
        m.finalizers()
    );
    assert_eq!(
        cond(&m, "HostAssociated").map(|c| (c.0, c.1)),
        Some(("False".into(), "WaitingForClusterInfrastructure".into()))
    );

    // Provisioned infrastructure; no bootstrap data yet.
    env.set_cluster_provisioned("c1").await;
    env.wait_b7m("m1", "WaitingForBootstrapData", |m| {
        reason(m, "Ready") == "WaitingForBootstrapData"
    })
    .await;
    assert_eq!(
        env.hosts().get("h1").await.unwrap().spec.consumer_ref,
        None,
        "nothing is claimed before the bootstrap data exists"
    );

    // The bootstrap data: the machine claims h1.
    env.bootstrap_secret("m1-bootstrap").await;
    env.machines()
        .patch(
            "m1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"bootstrap": {"dataSecretName": "m1-bootstrap"}}})),
        )
        .await
        .unwrap();
    let m = env
        .wait_b7m("m1", "Associated", |m| {
            // Associated, or already Inspecting: the host starts its attempt at once.
            matches!(
                phase(m),
                Some(MachinePhase::Associated | MachinePhase::Inspecting)
            ) && bound_to(m).is_some()
        })
        .await;
    assert_eq!(bound_to(&m).as_deref(), Some("default/h1"));
    assert_eq!(reason(&m, "HostAssociated"), "Associated");
    assert_eq!(cond(&m, "Paused").map(|c| c.1), Some("NotPaused".into()));
    let h = env.hosts().get("h1").await.unwrap();
    let c = h.spec.consumer_ref.clone().expect("claimed");
    assert_eq!(
        (c.api_group.as_str(), c.kind.as_str(), c.name.as_str()),
        ("infrastructure.cluster.x-k8s.io", "Beskar7Machine", "m1")
    );
    let p = h.spec.provisioning.clone().expect("intent");
    assert_eq!(p.provider_id, "b7://default/h1/m1");
    assert_eq!(p.bootstrap_data_secret_name, "m1-bootstrap");
    assert_eq!(p.images.inspection_image_url, "http://boot.example/agent/");
    assert_eq!(p.images.target_image_url, "http://boot.example/os.tar.gz");
    assert_eq!(p.static_ip.as_deref(), Some("10.0.0.7::10.0.0.1:24"));
    assert_eq!(
        p.hardware_requirements.and_then(|r| r.min_cpu_cores),
        Some(8)
    );
    assert_eq!(p.handoff, beskar7::api::Handoff::Kexec);
    // The host controller sees the claim.
    env.cluster
        .wait_host(NS, "h1", "InUse", |h| h.state() == Some(HostState::InUse))
        .await;
    // providerID waits for the host to be provisioned (an attempt may still move the machine
    // to another host, and providerID is immutable).
    assert_eq!(env.b7ms().get("m1").await.unwrap().spec.provider_id, None);
    // No secret in the machine's status or events.
    let text = format!(
        "{:?}{}",
        env.b7ms().get("m1").await.unwrap(),
        env.cluster.events_text(NS).await
    );
    assert!(!text.contains("SECRET-BOOTSTRAP-DATA"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_chosen_by_selector_zone_and_hardware_and_a_small_host_is_skipped() {
    let mut env = Env::start().await;
    let zone = "topology.kubernetes.io/zone";
    env.add_host("small", json!({"role": "worker", zone: "a"}), 4)
        .await;
    env.add_host("other-zone", json!({"role": "worker", zone: "b"}), 32)
        .await;
    env.add_host("not-worker", json!({"role": "storage", zone: "a"}), 32)
        .await;
    env.add_host("good", json!({"role": "worker", zone: "a"}), 32)
        .await;
    env.capi_cluster("c1", json!({}), true).await;
    env.bootstrap_secret("boot").await;
    let selector = json!({"matchLabels": {"role": "worker"}, "matchExpressions": [{"key": zone, "operator": "Exists"}]});
    let uid = env.capi_machine("m1", "c1", Some("boot"), Some("a")).await;
    env.b7m(
        "m1",
        "c1",
        Some(("m1", &uid)),
        json!({"hostSelector": selector, "hardwareRequirements": {"minCPUCores": 16}}),
    )
    .await;
    let m = env.wait_b7m("m1", "bound", |m| bound_to(m).is_some()).await;
    assert_eq!(bound_to(&m).as_deref(), Some("default/good"));
    let m = env
        .wait_b7m("m1", "with its failure domain", |m| {
            m.status
                .as_ref()
                .and_then(|s| s.failure_domain.clone())
                .is_some()
        })
        .await;
    assert_eq!(m.status.unwrap().failure_domain.as_deref(), Some("a"));

    // A machine that needs more than any free host has waits, saying why.
    let uid = env.capi_machine("m2", "c1", Some("boot"), Some("a")).await;
    env.b7m(
        "m2",
        "c1",
        Some(("m2", &uid)),
        json!({"hostSelector": selector, "hardwareRequirements": {"minCPUCores": 16}}),
    )
    .await;
    let m2 = env
        .wait_b7m("m2", "NoHostAvailable", |m| {
            reason(m, "Ready") == "NoHostAvailable"
        })
        .await;
    let msg = cond(&m2, "Ready").unwrap().2;
    assert!(msg.contains("small: 4 CPU cores < 16"), "{msg}");
    assert!(msg.contains("other-zone (zone b)"), "{msg}");
    assert!(
        msg.contains("not matching hostSelector (not-worker)"),
        "{msg}"
    );
    assert!(msg.contains("claimed (good)"), "{msg}");
    for h in ["small", "other-zone", "not-worker"] {
        assert_eq!(
            env.hosts().get(h).await.unwrap().spec.consumer_ref,
            None,
            "{h}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_machines_racing_for_four_hosts_claim_each_host_once() {
    let mut env = Env::start().await;
    for i in 0..4 {
        env.add_host(&format!("h{i}"), json!({}), 32).await;
    }
    let log = ClaimLog::start(env.hosts());
    env.capi_cluster("c1", json!({}), true).await;
    for i in 0..12 {
        env.full_machine(&format!("m{i:02}"), "c1", json!({})).await;
    }
    let settled = |ms: &[std::sync::Arc<Beskar7Machine>]| {
        ms.len() == 12
            && ms.iter().filter(|m| bound_to(m).is_some()).count() == 4
            && ms
                .iter()
                .filter(|m| reason(m, "HostAssociated") == "NoHostAvailable")
                .count()
                == 8
    };
    let ms = env
        .wait_all(env.b7ms(), "4 bound and 8 waiting", settled)
        .await;
    let hosts = env.hosts().list(&Default::default()).await.unwrap().items;
    let by_host: BTreeMap<String, String> = hosts
        .iter()
        .map(|h| (h.name_any(), consumer(h).expect("every host claimed")))
        .collect();
    let machines: BTreeSet<&String> = by_host.values().collect();
    assert_eq!(
        machines.len(),
        4,
        "each host claimed by a different machine: {by_host:?}"
    );
    for m in &ms {
        if let Some(b) = bound_to(m) {
            let host = b.trim_start_matches("default/");
            assert_eq!(
                by_host.get(host),
                Some(&m.name_any()),
                "annotation and consumerRef agree"
            );
        }
    }
    let claims = log.check();
    assert_eq!(claims.len(), 4, "exactly four claims ever: {claims:?}");
    // Losing a race is expected, not an error: the precondition turns it into "try the next
    // host" (without it, the API server's CEL rule would refuse the change as an error).
    let errors = env
        .manager
        .as_ref()
        .unwrap()
        .metric(
            "beskar7_reconcile_errors_total",
            &["controller=\"beskar7machine\""],
        )
        .await;
    assert_eq!(errors, 0.0, "no reconcile failed");
    let warnings: Vec<String> = env
        .manager
        .as_ref()
        .unwrap()
        .log()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(str::to_owned)
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");

    // A fifth host: exactly one waiting machine gets it.
    env.add_host_nowait("h4", json!({}), 32, 64).await;
    env.wait_all(env.b7ms(), "5 bound and 7 waiting", |ms| {
        ms.iter().filter(|m| bound_to(m).is_some()).count() == 5
            && ms
                .iter()
                .filter(|m| reason(m, "HostAssociated") == "NoHostAvailable")
                .count()
                == 7
    })
    .await;
    let claims = log.check();
    assert_eq!(claims.len(), 5, "{claims:?}");
    let claimers: BTreeSet<&String> = claims.iter().map(|c| &c.1).collect();
    assert_eq!(claimers.len(), 5, "no machine holds two hosts: {claims:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_host_makes_the_machine_provisioned_with_provider_id_and_addresses() {
    let mut env = Env::start().await;
    env.add_host("h1", json!({"topology.kubernetes.io/zone": "z1"}), 32)
        .await;
    env.capi_cluster("c1", json!({}), true).await;
    env.full_machine("m1", "c1", json!({})).await;
    env.wait_b7m("m1", "bound", |m| bound_to(m).is_some()).await;
    // The real host controller boots an attempt; the test plays the agent's callbacks.
    env.cluster
        .wait_host(NS, "h1", "Inspecting", |h| {
            h.state() == Some(HostState::Inspecting)
        })
        .await;
    env.wait_b7m("m1", "Inspecting", |m| {
        phase(m) == Some(MachinePhase::Inspecting)
    })
    .await;
    env.agent_provisions(
        "h1",
        json!([{"name": "eno1", "ipAddresses": ["192.168.150.21/24"]}]),
    )
    .await;
    let m = env
        .wait_b7m("m1", "Provisioned", |m| m.is_provisioned())
        .await;
    assert_eq!(m.spec.provider_id.as_deref(), Some("b7://default/h1/m1"));
    let s = m.status.clone().unwrap();
    assert_eq!(s.phase, Some(MachinePhase::Provisioned));
    assert_eq!(s.failure_domain.as_deref(), Some("z1"));
    let addrs: Vec<(String, String)> = s
        .addresses
        .iter()
        .map(|a| (format!("{:?}", a.type_), a.address.clone()))
        .collect();
    assert!(
        addrs.contains(&("InternalIp".into(), "192.168.150.21".into())),
        "{addrs:?}"
    );
    assert_eq!(
        cond(&m, "Ready").map(|c| (c.0, c.1)),
        Some(("True".into(), "Provisioned".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_releases_the_host_and_the_machine_claims_another_never_the_small_one() {
    let mut env = Env::start().await;
    env.add_host("small", json!({}), 32).await;
    env.capi_cluster("c1", json!({}), true).await;
    env.full_machine(
        "m1",
        "c1",
        json!({"hardwareRequirements": {"minCPUCores": 16}}),
    )
    .await;
    env.wait_b7m("m1", "bound to small", |m| {
        bound_to(m).as_deref() == Some("default/small")
    })
    .await;
    let log = ClaimLog::start(env.hosts());

    // Watch the machine's Ready reasons from here on.
    let reasons = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = reasons.clone();
    let api = env.b7ms();
    let watch = tokio::spawn(async move {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let mut s = Box::pin(
            watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects(),
        );
        while let Some(Ok(m)) = s.next().await {
            sink.lock().unwrap().push(reason(&m, "Ready"));
        }
    });

    // The agent's report (authoritative over the BMC's 32) falls short: the real host
    // controller fails the attempt and records it for the machine.
    env.agent_reports("small", json!({"cpuCores": 8, "memoryMiB": 65536}))
        .await;
    let m = env
        .wait_b7m("m1", "released and Failed", |m| {
            bound_to(m).is_none() && phase(m) == Some(MachinePhase::Failed)
        })
        .await;
    let (status, r, msg) = cond(&m, "Ready").unwrap();
    assert_eq!(
        (status.as_str(), r.as_str()),
        ("False", "RequirementsNotMet")
    );
    assert!(msg.contains("found 8 CPU cores, need 16"), "{msg}");
    let rejected = m.status.clone().unwrap().rejected_hosts;
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (rejected[0].name.as_str(), rejected[0].reason.as_str()),
        ("small", "RequirementsNotMet")
    );
    // The host is released and deprovisioned by the host controller.
    env.cluster
        .wait_host(NS, "small", "released and Available", |h| {
            h.spec.consumer_ref.is_none()
                && h.spec.provisioning.is_none()
                && h.state() == Some(HostState::Available)
        })
        .await;

    // Another host appears: the machine claims it.
    env.add_host_nowait("big", json!({}), 64, 64).await;
    env.wait_b7m("m1", "bound to big", |m| {
        bound_to(m).as_deref() == Some("default/big")
    })
    .await;
    // The small host was never claimed again.
    let claims = log.check();
    assert_eq!(
        claims,
        vec![
            ("big".to_owned(), "m1".to_owned()),
            ("small".to_owned(), "m1".to_owned())
        ]
    );
    let small: PhysicalHost = env.hosts().get("small").await.unwrap();
    assert_eq!(small.spec.consumer_ref, None);
    watch.abort();
    assert!(
        reasons
            .lock()
            .unwrap()
            .iter()
            .any(|r| r == "RequirementsNotMet"),
        "Ready named the cause: {:?}",
        reasons.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_cluster_or_machine_changes_nothing_until_unpaused() {
    let mut env = Env::start().await;
    env.add_host("h1", json!({}), 32).await;
    env.capi_cluster("c1", json!({"paused": true}), true).await;
    env.full_machine("m1", "c1", json!({})).await;
    let m = env
        .wait_b7m("m1", "Paused", |m| {
            cond(m, "Paused").is_some_and(|c| c.0 == "True" && c.1 == "Paused")
        })
        .await;
    assert!(
        m.finalizers().is_empty(),
        "nothing but the Paused condition changes"
    );
    assert_eq!(bound_to(&m), None);
    assert_eq!(phase(&m), None);
    assert_eq!(env.hosts().get("h1").await.unwrap().spec.consumer_ref, None);

    env.patch_cluster("c1", json!({"spec": {"paused": false}}))
        .await;
    let m = env
        .wait_b7m("m1", "unpaused and bound", |m| {
            cond(m, "Paused").is_some_and(|c| c.1 == "NotPaused") && bound_to(m).is_some()
        })
        .await;
    assert!(bound_to(&m).is_some());

    // The paused annotation on the machine: the host's progress is not mirrored meanwhile.
    env.b7ms()
        .patch(
            "m1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": ""}}})),
        )
        .await
        .unwrap();
    env.wait_b7m("m1", "Paused by annotation", |m| {
        cond(m, "Paused").is_some_and(|c| c.0 == "True")
    })
    .await;
    let before = phase(&env.b7ms().get("m1").await.unwrap());
    env.agent_provisions("h1", json!([])).await;
    // Wait for a later event the controller must also see (the host controller's status), then
    // check the machine did not follow the host while paused.
    env.cluster
        .wait_host(NS, "h1", "Provisioned", |h| {
            h.state() == Some(HostState::Provisioned)
        })
        .await;
    let m = env.b7ms().get("m1").await.unwrap();
    assert!(!m.is_provisioned());
    assert_eq!(phase(&m), before);
    env.b7ms()
        .patch(
            "m1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": null}}})),
        )
        .await
        .unwrap();
    env.wait_b7m("m1", "provisioned after unpause", |m| m.is_provisioned())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_machine_releases_its_host_and_waits_for_the_deprovision() {
    let mut env = Env::start().await;
    env.add_host("h1", json!({}), 32).await;
    env.capi_cluster("c1", json!({}), true).await;
    env.full_machine("m1", "c1", json!({})).await;
    env.wait_b7m("m1", "bound", |m| bound_to(m).is_some()).await;
    env.cluster
        .wait_host(NS, "h1", "InUse", |h| h.state() == Some(HostState::InUse))
        .await;
    let log = ClaimLog::start(env.hosts());
    // Record the host's states from here on.
    let states = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Option<HostState>>::new()));
    let sink = states.clone();
    let api = env.hosts();
    let watch = tokio::spawn(async move {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let mut s = Box::pin(
            watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects(),
        );
        while let Some(Ok(h)) = s.next().await {
            let mut v = sink.lock().unwrap();
            if v.last() != Some(&h.state()) {
                v.push(h.state());
            }
        }
    });

    env.b7ms()
        .delete("m1", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_b7m_deleted("m1").await;
    let h = env.hosts().get("h1").await.unwrap();
    assert_eq!(h.spec.consumer_ref, None);
    assert_eq!(h.spec.provisioning, None);
    assert_eq!(
        h.state(),
        Some(HostState::Available),
        "the finalizer went only after the deprovision"
    );
    watch.abort();
    let seen = states.lock().unwrap().clone();
    assert!(seen.contains(&Some(HostState::Deprovisioning)), "{seen:?}");
    assert_eq!(
        log.check(),
        vec![("h1".to_owned(), "m1".to_owned())],
        "released once, never claimed again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_machine_whose_host_was_deleted_completes() {
    let mut env = Env::start().await;
    env.add_host("h1", json!({}), 32).await;
    env.capi_cluster("c1", json!({}), true).await;
    env.full_machine("m1", "c1", json!({})).await;
    env.wait_b7m("m1", "bound", |m| bound_to(m).is_some()).await;
    env.hosts()
        .delete("h1", &DeleteParams::default())
        .await
        .unwrap();
    env.cluster.wait_deleted(NS, "h1").await;
    env.b7ms()
        .delete("m1", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_b7m_deleted("m1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_made_before_a_crash_is_adopted_and_a_restart_mid_race_never_double_claims() {
    let mut env = Env::start().await;
    // Stop the manager: the claims below happen while none runs.
    drop(env.manager.take());
    for i in 0..3 {
        env.add_host_nowait(&format!("h{i}"), json!({}), 32, 64)
            .await;
    }
    env.capi_cluster("c1", json!({}), true).await;
    // A claim without the annotation, as a crash between the two writes leaves it.
    env.full_machine("m00", "c1", json!({})).await;
    let hosts: Api<PhysicalHost> = env.hosts();
    hosts
        .patch(
            "h2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"consumerRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Machine", "name": "m00"}}})),
        )
        .await
        .unwrap();
    let log = ClaimLog::start(env.hosts());
    env.manager = Some(Manager::start(&env.cluster, &[]).await);
    for i in 1..6 {
        env.full_machine(&format!("m{i:02}"), "c1", json!({})).await;
    }
    let m = env
        .wait_b7m("m00", "bound to h2", |m| bound_to(m).is_some())
        .await;
    assert_eq!(
        bound_to(&m).as_deref(),
        Some("default/h2"),
        "adopted, not a second claim"
    );
    // Kill the manager as soon as one more claim exists, mid-race.
    env.wait_all(env.hosts(), "a second claim", |hs| {
        hs.iter().filter(|h| h.spec.consumer_ref.is_some()).count() >= 2
    })
    .await;
    drop(env.manager.take());
    env.manager = Some(Manager::start(&env.cluster, &[]).await);
    env.wait_all(env.b7ms(), "3 bound and 3 waiting", |ms| {
        ms.iter().filter(|m| bound_to(m).is_some()).count() == 3
            && ms
                .iter()
                .filter(|m| reason(m, "HostAssociated") == "NoHostAvailable")
                .count()
                == 3
    })
    .await;
    let claims = log.check();
    let claimers: BTreeSet<&String> = claims.iter().map(|c| &c.1).collect();
    assert_eq!(
        claimers.len(),
        claims.len(),
        "no machine claimed two hosts: {claims:?}"
    );
    let held: Vec<(String, Option<String>)> = hosts
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|h| (h.name_any(), consumer(h)))
        .collect();
    assert!(held.iter().all(|(_, c)| c.is_some()), "{held:?}");
    assert!(
        held.contains(&("h2".into(), Some("m00".into()))),
        "{held:?}"
    );
    let _ = GUARD;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_with_the_paused_annotation_only_reports_paused_even_without_an_owner() {
    let env = Env::start().await;
    let obj: Beskar7Machine = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "Beskar7Machine",
        "metadata": {"name": "m1", "annotations": {"cluster.x-k8s.io/paused": ""}},
        "spec": {"inspectionImageURL": "http://boot.example/agent/", "targetImageURL": "http://boot.example/os.tar.gz"},
    }))
    .unwrap();
    env.b7ms().create(&Default::default(), &obj).await.unwrap();
    let m = env
        .wait_b7m("m1", "Paused", |m| {
            cond(m, "Paused").is_some_and(|c| c.0 == "True")
        })
        .await;
    assert_eq!(cond(&m, "Ready"), None, "no wait reason while paused");
    assert_eq!(phase(&m), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_whose_host_cannot_deprovision_ends_with_the_deprovision_timeout() {
    let mut env = Env::start_with(&["--deprovision-timeout", "3s"]).await;
    env.add_host("h1", json!({}), 32).await;
    env.capi_cluster("c1", json!({}), true).await;
    env.full_machine("m1", "c1", json!({})).await;
    env.wait_b7m("m1", "bound", |m| bound_to(m).is_some()).await;
    env.cluster
        .wait_host(NS, "h1", "InUse", |h| h.state() == Some(HostState::InUse))
        .await;
    // The BMC dies: the released host cannot be powered off.
    env.stop_bmc(0).await;
    let started = std::time::Instant::now();
    env.b7ms()
        .delete("m1", &DeleteParams::default())
        .await
        .unwrap();
    let m = env
        .wait_b7m("m1", "Deprovisioning", |m| {
            phase(m) == Some(MachinePhase::Deprovisioning)
        })
        .await;
    assert_eq!(reason(&m, "Ready"), "Deleting");
    env.wait_b7m_deleted("m1").await;
    let h = env.hosts().get("h1").await.unwrap();
    assert_eq!(
        h.state(),
        Some(HostState::Error),
        "the host timed out into Error"
    );
    assert_eq!(h.spec.consumer_ref, None);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "the machine waited for the deprovision ({:?})",
        started.elapsed()
    );
}
