//! `beskar7-sim apiserver` as a user runs it: flags, errors, kubeconfigs, identities, audit log.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_beskar7-sim");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// Runs the binary to completion and returns (exit success, stderr).
fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BINARY)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run beskar7-sim");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running server, killed when dropped.
struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Running {
    let mut child = Command::new(BINARY)
        .args(["apiserver", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start beskar7-sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read stdout");
    let url = line
        .trim()
        .strip_prefix("beskar7-sim apiserver listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Running {
        url: url.to_string(),
        child,
    }
}

async fn client_from(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads");
    Client::try_from(config).expect("client")
}

#[test]
fn bad_flags_are_one_clear_line_and_a_failure() {
    let (ok, stderr) = run(&["apiserver", "--listen", "not-an-address"]);
    assert!(!ok);
    assert!(
        stderr.contains("invalid value 'not-an-address' for '--listen"),
        "{stderr}"
    );
    let (ok, stderr) = run(&["apiserver", "--identity", "alice"]);
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        "beskar7-sim: --identity \"alice\": expected USER[:GROUP,...]=FILE"
    );
}

#[test]
fn a_port_in_use_is_one_clear_line_and_a_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (ok, stderr) = run(&["apiserver", "--listen", &address]);
    assert!(!ok);
    assert!(
        stderr.starts_with(&format!("beskar7-sim: cannot listen on {address}:")),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn unreadable_or_invalid_crds_name_the_file_and_fail() {
    let (ok, stderr) = run(&[
        "apiserver",
        "--listen",
        "127.0.0.1:0",
        "--crds",
        "/nonexistent/crds",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot read CRD directory /nonexistent/crds"),
        "{stderr}"
    );

    let dir = std::env::temp_dir().join(format!("beskar7-sim-bad-crds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("broken.yaml"),
        "kind: CustomResourceDefinition\nspec: [unclosed\n",
    )
    .unwrap();
    let (ok, stderr) = run(&[
        "apiserver",
        "--listen",
        "127.0.0.1:0",
        "--crds",
        dir.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("broken.yaml is not valid YAML"), "{stderr}");

    std::fs::write(
        dir.join("broken.yaml"),
        "kind: CustomResourceDefinition\nmetadata: {name: x}\nspec: {group: g.io}\n",
    )
    .unwrap();
    let (ok, stderr) = run(&[
        "apiserver",
        "--listen",
        "127.0.0.1:0",
        "--crds",
        dir.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("broken.yaml") && stderr.contains("spec.names.plural"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn serves_capi_and_cert_manager_crds_over_http_with_kubeconfigs_and_an_audit_log() {
    let dir = std::env::temp_dir().join(format!("beskar7-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (admin, operator, audit) = (
        dir.join("admin.kubeconfig"),
        dir.join("operator.kubeconfig"),
        dir.join("audit.jsonl"),
    );
    let capi = fixtures().join("capi-crds");
    let cert_manager = fixtures().join("cert-manager-crds");
    let sa = format!(
        "system:serviceaccount:beskar7-system:beskar7={}",
        operator.display()
    );
    let server = start(&[
        "--kubeconfig",
        admin.to_str().unwrap(),
        "--identity",
        &sa,
        "--crds",
        capi.to_str().unwrap(),
        "--crds",
        cert_manager.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    assert!(server.url.starts_with("http://127.0.0.1:"));

    // CAPI's CRDs are served at their storage version, v1beta2.
    let client = client_from(&admin).await;
    let machine_gvk = GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Machine");
    let machines: Api<DynamicObject> =
        Api::default_namespaced_with(client.clone(), &ApiResource::from_gvk(&machine_gvk));
    let machine: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
        "metadata": {"name": "m1"},
        "spec": {"clusterName": "c1", "bootstrap": {"dataSecretName": "m1-bootstrap"},
                 "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Beskar7Machine", "name": "m1"}}
    }))
    .unwrap();
    machines
        .create(&PostParams::default(), &machine)
        .await
        .unwrap();
    let issuer_gvk = GroupVersionKind::gvk("cert-manager.io", "v1", "Issuer");
    let issuers: Api<DynamicObject> =
        Api::default_namespaced_with(client, &ApiResource::from_gvk(&issuer_gvk));
    assert!(
        issuers
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // The ServiceAccount's own kubeconfig authenticates as that ServiceAccount.
    let as_operator = client_from(&operator).await;
    let machines: Api<DynamicObject> =
        Api::default_namespaced_with(as_operator, &ApiResource::from_gvk(&machine_gvk));
    assert_eq!(
        machines
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let log = std::fs::read_to_string(&audit).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let operator_list = entries
        .iter()
        .find(|e| e["user"] == "system:serviceaccount:beskar7-system:beskar7")
        .expect("operator request audited");
    assert_eq!(
        (
            &operator_list["verb"],
            &operator_list["group"],
            &operator_list["resource"],
            &operator_list["namespace"]
        ),
        (
            &json!("list"),
            &json!("cluster.x-k8s.io"),
            &json!("machines"),
            &json!("default")
        )
    );
    assert!(entries.iter().any(|e| e["user"] == "admin"
        && e["verb"] == "create"
        && e["resource"] == "machines"
        && e["code"] == 201));

    // A wrong token is refused.
    let wrong = std::fs::read_to_string(&admin)
        .unwrap()
        .replace("token: ", "token: x");
    std::fs::write(dir.join("wrong.kubeconfig"), wrong).unwrap();
    let intruder = client_from(&dir.join("wrong.kubeconfig")).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(intruder);
    match namespaces.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bmc_rejects_an_unknown_persona_with_the_known_ones() {
    let (ok, stderr) = run(&["bmc", "--persona", "hpe"]);
    assert!(!ok);
    assert!(
        stderr.contains("unknown persona \"hpe\"") && stderr.contains("idrac"),
        "{stderr}"
    );
    let (ok, stderr) = run(&["bmc", "--listen", "127.0.0.1:0", "--fault", "lightning"]);
    assert!(!ok);
    assert!(stderr.contains("unknown fault \"lightning\""), "{stderr}");
}

#[tokio::test]
async fn bmc_serves_a_mockup_and_plays_its_faults() {
    let dl325 = fixtures().join("redfish/mockups/DL325");
    let mut child = Command::new(BINARY)
        .args([
            "bmc",
            "--listen",
            "127.0.0.1:0",
            "--persona",
            "ilo",
            "--mockup",
            dl325.to_str().unwrap(),
            "--fault",
            "server-error:1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start beskar7-sim bmc");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("beskar7-sim bmc (ilo) listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    let http = crate::support::http_client(std::time::Duration::from_secs(5));
    let get = |path: &str| {
        http.get(format!("{url}{path}"))
            .basic_auth("admin", Some("password"))
            .send()
    };
    assert_eq!(
        get("/Systems/1").await.unwrap().status(),
        500,
        "the injected fault comes first"
    );
    let system: serde_json::Value = get("/Systems/1").await.unwrap().json().await.unwrap();
    assert_eq!(system["Model"], "ProLiant DL325 Gen10 Plus");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn authorize_enforces_rbac_for_kubeconfig_identities() {
    let dir = std::env::temp_dir().join(format!("beskar7-sim-authz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (admin, bob) = (dir.join("admin.kubeconfig"), dir.join("bob.kubeconfig"));
    let identity = format!("bob:ops={}", bob.display());
    let _server = start(&[
        "--kubeconfig",
        admin.to_str().unwrap(),
        "--identity",
        &identity,
        "--authorize",
    ]);
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> =
        Api::all(client_from(&admin).await);
    assert!(
        !namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "the admin may do anything"
    );
    let as_bob: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client_from(&bob).await);
    match as_bob.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403);
            assert!(
                s.message
                    .contains("User \"bob\" cannot list resource \"namespaces\""),
                "{}",
                s.message
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
