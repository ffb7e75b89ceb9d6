//! One test per kubectl command users rely on, each run with kubectl 1.27 and 1.33.

use super::{Kubectl, PHYSICALHOSTS_CRD, column, repo_file, rows};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::{Value, json};

for_each_kubectl!(
    apply_creates_a_crd_then_its_resource_and_reapplies,
    apply_server_side,
    apply_leaves_validation_to_the_server,
    get_prints_printer_columns_and_age,
    get_evaluates_condition_filters_label_keys_and_typed_columns,
    get_outputs_yaml_json_and_jsonpath,
    get_watch_prints_an_update_as_a_new_line,
    describe_shows_fields_and_events,
    wait_for_a_condition_set_while_waiting,
    wait_for_a_jsonpath_value_set_while_waiting,
    delete_waits_for_the_last_finalizer,
    explain_prints_schema_descriptions,
    builtin_kinds_apply_and_get,
    api_resources_lists_short_names_and_get_by_short_name,
);

const HOST: &str = "physicalhost.infrastructure.cluster.x-k8s.io/server-01";

/// The example host (its Secret and the PhysicalHost), as a user applies it.
async fn apply_example_host(k: &Kubectl) -> String {
    let example = repo_file("examples/physicalhost.yaml");
    k.ok(&["apply", "-f", example.to_str().unwrap()]).await
}

async fn apply_creates_a_crd_then_its_resource_and_reapplies(k: Kubectl) {
    let crd = repo_file(PHYSICALHOSTS_CRD);
    let out = k.ok(&["apply", "-f", crd.to_str().unwrap()]).await;
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/physicalhosts.infrastructure.cluster.x-k8s.io created"
    );
    // The new kind is usable at once: kubectl rediscovers when a kind is missing from its cache.
    let out = apply_example_host(&k).await;
    assert!(out.contains(&format!("{HOST} created")), "{out}");
    assert!(out.contains("secret/bmc-credentials created"), "{out}");
    let out = apply_example_host(&k).await;
    assert!(out.contains(&format!("{HOST} unchanged")), "{out}");
    // A changed file is a patch of what changed.
    let text = std::fs::read_to_string(repo_file("examples/physicalhost.yaml")).unwrap();
    let changed = text.replace("https://192.168.1.100", "https://192.168.1.200");
    let out = k.ok_with_input(&["apply", "-f", "-"], &changed).await;
    assert!(out.contains(&format!("{HOST} configured")), "{out}");
    let host = k.hosts().get("server-01").await.unwrap();
    assert_eq!(
        host.data["spec"]["redfishConnection"]["address"],
        "https://192.168.1.200"
    );
    // Fields kubectl applied and the user did not change survive the patch.
    assert_eq!(host.data["spec"]["bootMACAddress"], "52:54:00:12:34:56");
    let last_applied = host
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/last-applied-configuration"))
        .expect("client-side apply records the last applied configuration");
    assert!(last_applied.contains("192.168.1.200"));
    let crd_again = k.ok(&["apply", "-f", crd.to_str().unwrap()]).await;
    assert!(crd_again.contains("unchanged"), "{crd_again}");
}

async fn apply_server_side(k: Kubectl) {
    k.load_repo_crds();
    let example = repo_file("examples/physicalhost.yaml");
    let out = k
        .ok(&["apply", "--server-side", "-f", example.to_str().unwrap()])
        .await;
    assert!(out.contains(&format!("{HOST} serverside-applied")), "{out}");
    let host = k.hosts().get("server-01").await.unwrap();
    assert_eq!(host.metadata.labels.unwrap()["pool"], "workers");
    let out = k
        .ok(&["apply", "--server-side", "-f", example.to_str().unwrap()])
        .await;
    assert!(out.contains(&format!("{HOST} serverside-applied")), "{out}");
}

/// kubectl's default `--validate=strict` finds `fieldValidation` in the OpenAPI v3 PATCH
/// operations and sends `fieldValidation=Strict` instead of validating client-side (which,
/// without OpenAPI, would refuse to apply at all).
async fn apply_leaves_validation_to_the_server(k: Kubectl) {
    k.load_repo_crds();
    let example = repo_file("examples/physicalhost.yaml");
    let out = k
        .run(&["apply", "-f", example.to_str().unwrap(), "-v=6"])
        .await;
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "/physicalhosts?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"
        ),
        "kubectl did not ask the server to validate:\n{}",
        out.stderr
    );
}

async fn get_prints_printer_columns_and_age(k: Kubectl) {
    k.load_repo_crds();
    apply_example_host(&k).await;
    k.set_host_status(
        "server-01",
        json!({"state": "Available", "observedPowerState": "Off"}),
    )
    .await;
    let out = k.ok(&["get", "physicalhosts"]).await;
    let table = rows(&out);
    assert_eq!(
        table[0],
        ["NAME", "STATE", "POWER", "CONSUMER", "BMC", "AGE"]
    );
    // No consumer: an empty cell, so the row has one cell fewer than the header.
    assert_eq!(
        table[1][..4],
        ["server-01", "Available", "Off", "https://192.168.1.100"]
    );
    assert!(
        table[1][4].ends_with('s'),
        "AGE is an age like 0s: {:?}",
        table[1]
    );
    // A named get is a one-row Table too.
    let one = k.ok(&["get", "ph", "server-01"]).await;
    assert_eq!(column(&one, "STATE"), ["Available"]);
    assert_eq!(column(&one, "CONSUMER"), [""]);
    let wide = k.ok(&["get", "ph", "-o", "wide", "--show-labels"]).await;
    assert!(wide.contains("pool=workers"), "{wide}");
    let none = k.run(&["get", "ph", "-n", "kube-system"]).await;
    assert!(
        none.stderr
            .contains("No resources found in kube-system namespace."),
        "{none:?}"
    );
}

/// The Beskar7Machine and Beskar7Cluster columns: condition filters
/// (`.status.conditions[?(@.type=="Ready")].status`), a dotted label key, boolean and integer
/// cells, and a priority-1 column shown only with `-o wide`.
async fn get_evaluates_condition_filters_label_keys_and_typed_columns(k: Kubectl) {
    k.load_repo_crds();
    for example in [
        "examples/beskar7machine.yaml",
        "examples/beskar7cluster.yaml",
    ] {
        let path = repo_file(example);
        k.ok(&["apply", "-f", path.to_str().unwrap()]).await;
    }
    k.ok(&[
        "label",
        "b7m",
        "worker-01",
        "cluster.x-k8s.io/cluster-name=lab",
    ])
    .await;
    let gvk = kube::api::GroupVersionKind::gvk(
        "infrastructure.cluster.x-k8s.io",
        "v1beta1",
        "Beskar7Machine",
    );
    let machines: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        k.client.clone(),
        "default",
        &kube::api::ApiResource::from_gvk(&gvk),
    );
    let conditions = json!([
        {"type": "HostClaimed", "status": "True", "reason": "Claimed", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "Ready", "status": "False", "reason": "Deploying", "message": "the agent is writing the image", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    ]);
    machines
        .patch_status(
            "worker-01",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Deploying", "conditions": conditions}})),
        )
        .await
        .unwrap();
    let out = k.ok(&["get", "b7m"]).await;
    let table = rows(&out);
    assert_eq!(
        table[0],
        ["NAME", "CLUSTER", "PHASE", "READY", "PROVIDERID", "AGE"]
    );
    assert_eq!(table[1][..4], ["worker-01", "lab", "Deploying", "False"]);
    assert!(column(&out, "PROVIDERID")[0].is_empty());
    let out = k.ok(&["get", "b7m", "-o", "wide"]).await;
    let header = &rows(&out)[0];
    assert_eq!(header[header.len() - 2..], ["REASON", "AGE"]);
    assert_eq!(column(&out, "REASON"), ["Deploying"]);

    let out = k.ok(&["get", "beskar7clusters"]).await;
    let table = rows(&out);
    assert_eq!(
        table[0],
        [
            "NAME",
            "CLUSTER",
            "ENDPOINT",
            "PORT",
            "PROVISIONED",
            "READY",
            "AGE"
        ]
    );
    // No cluster label, no status yet: empty cells; the endpoint and the integer port print.
    assert_eq!(column(&out, "CLUSTER"), [""]);
    assert_eq!(column(&out, "ENDPOINT"), ["192.168.1.10"]);
    assert_eq!(column(&out, "PORT"), ["6443"]);
    assert_eq!(column(&out, "PROVISIONED"), [""]);
    let gvk = kube::api::GroupVersionKind::gvk(
        "infrastructure.cluster.x-k8s.io",
        "v1beta1",
        "Beskar7Cluster",
    );
    let clusters: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        k.client.clone(),
        "default",
        &kube::api::ApiResource::from_gvk(&gvk),
    );
    clusters
        .patch_status(
            "my-cluster",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"initialization": {"provisioned": true}}})),
        )
        .await
        .unwrap();
    let out = k.ok(&["get", "beskar7clusters"]).await;
    assert_eq!(column(&out, "PROVISIONED"), ["true"]);
}

async fn get_outputs_yaml_json_and_jsonpath(k: Kubectl) {
    k.load_repo_crds();
    apply_example_host(&k).await;
    let yaml = k.ok(&["get", "ph", "server-01", "-o", "yaml"]).await;
    assert!(yaml.contains("kind: PhysicalHost"), "{yaml}");
    assert!(yaml.contains("address: https://192.168.1.100"), "{yaml}");
    let json: Value = serde_json::from_str(&k.ok(&["get", "ph", "-o", "json"]).await).unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"][0]["metadata"]["name"], "server-01");
    let address = k
        .ok(&[
            "get",
            "ph",
            "server-01",
            "-o",
            "jsonpath={.spec.redfishConnection.address}",
        ])
        .await;
    assert_eq!(address, "https://192.168.1.100");
    let names = k
        .ok(&[
            "get",
            "ph",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
        ])
        .await;
    assert_eq!(names, "server-01\n");
}

async fn get_watch_prints_an_update_as_a_new_line(k: Kubectl) {
    k.load_repo_crds();
    apply_example_host(&k).await;
    let mut watch = k.spawn(&["get", "ph", "-w"]);
    let header = watch.next_line().await;
    assert!(
        header.starts_with("NAME") && header.contains("STATE"),
        "{header}"
    );
    let first = watch.next_line().await;
    assert!(first.starts_with("server-01"), "{first}");
    k.until_requested("watch", "physicalhosts").await;
    // Two updates: the server sends column definitions with the first watch event only, so the
    // second row is laid out with the columns kubectl already has.
    for state in ["Enrolling", "Available"] {
        k.set_host_status("server-01", json!({"state": state}))
            .await;
        let update = watch.next_line().await;
        let cells: Vec<&str> = update.split_whitespace().collect();
        assert_eq!(cells[..2], ["server-01", state], "{update}");
    }
}

async fn describe_shows_fields_and_events(k: Kubectl) {
    k.load_repo_crds();
    apply_example_host(&k).await;
    let host = k.hosts().get("server-01").await.unwrap();
    // An event as the operator publishes it: kube's Recorder, through events.k8s.io/v1.
    let recorder = Recorder::new(
        k.client.clone(),
        Reporter {
            controller: "beskar7-physicalhost".into(),
            instance: None,
        },
    );
    let reference = ObjectReference {
        api_version: Some("infrastructure.cluster.x-k8s.io/v1beta1".into()),
        kind: Some("PhysicalHost".into()),
        name: Some("server-01".into()),
        namespace: Some("default".into()),
        uid: host.metadata.uid.clone(),
        ..Default::default()
    };
    recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Enrolled".into(),
                note: Some("BMC answered; host inventoried".into()),
                action: "Enroll".into(),
                secondary: None,
            },
            &reference,
        )
        .await
        .expect("publish event");
    // And one POSTed as core/v1, as older tools do.
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(k.client.clone(), "default");
    let core_event: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "server-01.power"},
        "involvedObject": reference,
        "reason": "PoweredOff",
        "message": "power state read from the BMC",
        "type": "Warning",
        "source": {"component": "test"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "count": 1
    }))
    .unwrap();
    events
        .create(&PostParams::default(), &core_event)
        .await
        .unwrap();

    let out = k.ok(&["describe", "ph", "server-01"]).await;
    assert!(out.contains("Name:         server-01"), "{out}");
    assert!(out.contains("pool=workers"), "{out}");
    assert!(out.contains("https://192.168.1.100"), "{out}");
    assert!(out.contains("Redfish Connection:"), "{out}");
    let events_section = out.split("Events:").nth(1).expect("an Events section");
    assert!(
        events_section.contains("Enrolled")
            && events_section.contains("BMC answered; host inventoried"),
        "{out}"
    );
    assert!(
        events_section.contains("PoweredOff") && events_section.contains("Warning"),
        "{out}"
    );
    let listed = k.ok(&["get", "events"]).await;
    assert!(
        listed.lines().next().unwrap().starts_with("LAST SEEN"),
        "{listed}"
    );
    assert!(listed.contains("physicalhost/server-01"), "{listed}");
}

async fn wait_for_a_condition_set_while_waiting(k: Kubectl) {
    k.load_repo_crds();
    apply_example_host(&k).await;
    let waiting = k.spawn(&[
        "wait",
        "--for=condition=Ready",
        "ph/server-01",
        "--timeout=25s",
    ]);
    k.until_requested("watch", "physicalhosts").await;
    k.set_host_status(
        "server-01",
        json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Enrolled",
            "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
    )
    .await;
    let out = waiting.finish().await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.stdout.trim(), format!("{HOST} condition met"));
}

async fn wait_for_a_jsonpath_value_set_while_waiting(k: Kubectl) {
    k.load_repo_crds();
    apply_example_host(&k).await;
    let waiting = k.spawn(&[
        "wait",
        "--for=jsonpath={.status.state}=Available",
        "ph/server-01",
        "--timeout=25s",
    ]);
    k.until_requested("watch", "physicalhosts").await;
    k.set_host_status("server-01", json!({"state": "Available"}))
        .await;
    let out = waiting.finish().await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.stdout.trim(), format!("{HOST} condition met"));
}

async fn delete_waits_for_the_last_finalizer(k: Kubectl) {
    k.load_repo_crds();
    apply_example_host(&k).await;
    let hosts = k.hosts();
    hosts
        .patch(
            "server-01",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["infrastructure.cluster.x-k8s.io/physicalhost"]}})),
        )
        .await
        .unwrap();
    let mut deleting = k.spawn(&["delete", "ph", "server-01", "--timeout=25s"]);
    // kubectl reports the deletion request at once, then waits for the object to be gone.
    let line = deleting.next_line().await;
    assert_eq!(
        line,
        "physicalhost.infrastructure.cluster.x-k8s.io \"server-01\" deleted"
    );
    let host = hosts.get("server-01").await.unwrap();
    assert!(host.metadata.deletion_timestamp.is_some());
    hosts
        .patch(
            "server-01",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    let out = deleting.finish().await;
    assert!(out.success, "{out:?}");
    assert!(hosts.get_opt("server-01").await.unwrap().is_none());
    // Without finalizers it is immediate, and a second delete names what is missing.
    let out = k.ok(&["delete", "secret", "bmc-credentials"]).await;
    assert_eq!(out.trim(), "secret \"bmc-credentials\" deleted");
    let again = k.run(&["delete", "secret", "bmc-credentials"]).await;
    assert!(!again.success);
    assert!(
        again
            .stderr
            .contains("secrets \"bmc-credentials\" not found"),
        "{again:?}"
    );
}

async fn explain_prints_schema_descriptions(k: Kubectl) {
    k.load_repo_crds();
    let out = k.ok(&["explain", "physicalhosts.spec"]).await;
    assert!(out.contains("KIND:       PhysicalHost"), "{out}");
    assert!(out.contains("FIELD: spec <Object>"), "{out}");
    assert!(out.contains("redfishConnection"), "{out}");
    let out = k
        .ok(&["explain", "ph.spec.redfishConnection.address"])
        .await;
    assert!(out.contains("FIELD: address <string>"), "{out}");
    // Built-in kinds are explained from k8s-openapi's schemas.
    let out = k.ok(&["explain", "configmap.data"]).await;
    assert!(
        out.contains("Data contains the configuration data"),
        "{out}"
    );
    let out = k.ok(&["explain", "ph.metadata.labels"]).await;
    assert!(out.contains("Map of string keys and values"), "{out}");
}

const NAMESPACE_AND_CONFIGMAP: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: tier1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: tier1
data:
  mode: lab
  region: rack-1
";

async fn builtin_kinds_apply_and_get(k: Kubectl) {
    let out = k
        .ok_with_input(&["apply", "-f", "-"], NAMESPACE_AND_CONFIGMAP)
        .await;
    assert_eq!(out, "namespace/tier1 created\nconfigmap/settings created\n");
    let out = k
        .ok_with_input(&["apply", "-f", "-"], NAMESPACE_AND_CONFIGMAP)
        .await;
    assert_eq!(
        out,
        "namespace/tier1 unchanged\nconfigmap/settings unchanged\n"
    );
    let changed = NAMESPACE_AND_CONFIGMAP.replace("mode: lab", "mode: prod");
    let out = k.ok_with_input(&["apply", "-f", "-"], &changed).await;
    assert!(out.contains("configmap/settings configured"), "{out}");

    let out = k.ok(&["get", "namespaces"]).await;
    let namespaces = rows(&out);
    assert_eq!(namespaces[0], ["NAME", "STATUS", "AGE"]);
    assert!(
        namespaces.iter().any(|r| r[..2] == ["tier1", "Active"]),
        "{namespaces:?}"
    );
    assert!(
        namespaces.iter().any(|r| r[0] == "kube-system"),
        "{namespaces:?}"
    );

    let out = k.ok(&["get", "cm", "-n", "tier1"]).await;
    let table = rows(&out);
    assert_eq!(table[0], ["NAME", "DATA", "AGE"]);
    assert_eq!(table[1][..2], ["settings", "2"]);
    let mode = k
        .ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "tier1",
            "-o",
            "jsonpath={.data.mode}",
        ])
        .await;
    assert_eq!(mode, "prod");

    apply_secret(&k).await;
    let out = k.ok(&["get", "secrets"]).await;
    let table = rows(&out);
    assert_eq!(table[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(table[1][..3], ["bmc-credentials", "Opaque", "2"]);
}

async fn apply_secret(k: &Kubectl) {
    let secret = "apiVersion: v1
kind: Secret
metadata:
  name: bmc-credentials
type: Opaque
data:
  username: YWRtaW4=
  password: Y2hhbmdlbWU=
";
    let out = k.ok_with_input(&["apply", "-f", "-"], secret).await;
    assert_eq!(out, "secret/bmc-credentials created\n");
}

async fn api_resources_lists_short_names_and_get_by_short_name(k: Kubectl) {
    k.load_repo_crds();
    let out = k.ok(&["api-resources"]).await;
    let find = |name: &str| {
        rows(&out)
            .into_iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("{name} not listed:\n{out}"))
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        find("physicalhosts"),
        [
            "physicalhosts",
            "ph",
            "infrastructure.cluster.x-k8s.io/v1beta1",
            "true",
            "PhysicalHost"
        ]
    );
    assert_eq!(find("beskar7machines")[1], "b7m");
    assert_eq!(find("namespaces")[..2], ["namespaces", "ns"]);
    let out = k
        .ok(&[
            "api-resources",
            "--api-group=infrastructure.cluster.x-k8s.io",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(
        out,
        "beskar7clusters.infrastructure.cluster.x-k8s.io\nbeskar7machines.infrastructure.cluster.x-k8s.io\nbeskar7machinetemplates.infrastructure.cluster.x-k8s.io\nphysicalhosts.infrastructure.cluster.x-k8s.io\n"
    );
    apply_example_host(&k).await;
    let out = k.ok(&["get", "ph"]).await;
    assert_eq!(rows(&out)[1][0], "server-01");
    let out = k.ok(&["get", "b7m"]).await;
    assert_eq!(out, "");
    // The category lists every kind in it.
    let out = k.ok(&["get", "beskar7", "-o", "name"]).await;
    assert!(
        out.contains("physicalhost.infrastructure.cluster.x-k8s.io/server-01"),
        "{out}"
    );
}
