//! kubectl's imperative `create` of built-in kinds. kubectl 1.33 sends these bodies as protobuf
//! (`application/vnd.kubernetes.protobuf`), 1.27 as JSON; both must store the same objects.

use super::{Kubectl, rows};
use base64::Engine;

for_each_kubectl!(
    create_secret_generic_from_literals,
    create_secret_docker_registry,
    create_namespace,
    create_configmap_from_file_and_literal,
    create_serviceaccount,
    create_role_and_binding,
    create_clusterrole_and_binding,
    create_deployment,
    create_services,
);

fn unbase64(text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("{text:?} is not base64: {e}"));
    String::from_utf8(bytes).expect("UTF-8")
}

/// The BMC credentials Secret the way the docs tell users to make it.
async fn create_secret_generic_from_literals(k: Kubectl) {
    let out = k
        .ok(&[
            "create",
            "secret",
            "generic",
            "bmc-credentials",
            "--from-literal=username=admin",
            "--from-literal=password=s3cr=t",
        ])
        .await;
    assert_eq!(out, "secret/bmc-credentials created\n");
    let password = k
        .ok(&[
            "get",
            "secret",
            "bmc-credentials",
            "-o",
            "jsonpath={.data.password}",
        ])
        .await;
    assert_eq!(unbase64(&password), "s3cr=t");
    let username = k
        .ok(&[
            "get",
            "secret",
            "bmc-credentials",
            "-o",
            "jsonpath={.data.username}",
        ])
        .await;
    assert_eq!(unbase64(&username), "admin");
    let table = k.ok(&["get", "secrets"]).await;
    assert_eq!(rows(&table)[1][..3], ["bmc-credentials", "Opaque", "2"]);
    // A second create is the real AlreadyExists, not a decoding error.
    let again = k
        .run(&[
            "create",
            "secret",
            "generic",
            "bmc-credentials",
            "--from-literal=a=b",
        ])
        .await;
    assert!(!again.success);
    assert!(
        again
            .stderr
            .contains("secrets \"bmc-credentials\" already exists"),
        "{}",
        again.stderr
    );
}

async fn create_secret_docker_registry(k: Kubectl) {
    k.ok(&[
        "create",
        "secret",
        "docker-registry",
        "registry",
        "--docker-server=registry.example.com",
        "--docker-username=robot",
        "--docker-password=p",
    ])
    .await;
    let kind = k
        .ok(&["get", "secret", "registry", "-o", "jsonpath={.type}"])
        .await;
    assert_eq!(kind, "kubernetes.io/dockerconfigjson");
    let config = k
        .ok(&[
            "get",
            "secret",
            "registry",
            "-o",
            "jsonpath={.data.\\.dockerconfigjson}",
        ])
        .await;
    let config: serde_json::Value = serde_json::from_str(&unbase64(&config)).expect("JSON");
    assert_eq!(config["auths"]["registry.example.com"]["username"], "robot");
}

async fn create_namespace(k: Kubectl) {
    let out = k.ok(&["create", "namespace", "metal"]).await;
    assert_eq!(out, "namespace/metal created\n");
    let phase = k
        .ok(&[
            "get",
            "namespace",
            "metal",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .await;
    assert_eq!(phase, "Active");
    // Objects can be created in it, by the same generators.
    let out = k
        .ok(&[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "metal",
            "--from-literal=a=b",
        ])
        .await;
    assert_eq!(out, "secret/s created\n");
}

async fn create_configmap_from_file_and_literal(k: Kubectl) {
    let file = k.dir.join("boot.ipxe");
    std::fs::create_dir_all(&k.dir).expect("dir");
    std::fs::write(&file, "#!ipxe\nchain http://boot/\n").expect("write file");
    let from_file = format!("--from-file={}", file.display());
    let out = k
        .ok(&[
            "create",
            "configmap",
            "boot",
            &from_file,
            "--from-literal=mode=lab",
        ])
        .await;
    assert_eq!(out, "configmap/boot created\n");
    let script = k
        .ok(&["get", "cm", "boot", "-o", "jsonpath={.data.boot\\.ipxe}"])
        .await;
    assert_eq!(script, "#!ipxe\nchain http://boot/\n");
    let mode = k
        .ok(&["get", "cm", "boot", "-o", "jsonpath={.data.mode}"])
        .await;
    assert_eq!(mode, "lab");
}

async fn create_serviceaccount(k: Kubectl) {
    let out = k.ok(&["create", "serviceaccount", "beskar7"]).await;
    assert_eq!(out, "serviceaccount/beskar7 created\n");
    let name = k
        .ok(&["get", "sa", "beskar7", "-o", "jsonpath={.metadata.name}"])
        .await;
    assert_eq!(name, "beskar7");
}

async fn create_role_and_binding(k: Kubectl) {
    let out = k
        .ok(&[
            "create",
            "role",
            "secret-reader",
            "--verb=get,list",
            "--resource=secrets",
        ])
        .await;
    assert_eq!(
        out,
        "role.rbac.authorization.k8s.io/secret-reader created\n"
    );
    let rules = k
        .ok(&["get", "role", "secret-reader", "-o", "jsonpath={.rules}"])
        .await;
    let rules: serde_json::Value = serde_json::from_str(&rules).expect("JSON");
    assert_eq!(
        rules,
        serde_json::json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}])
    );
    k.ok(&["create", "serviceaccount", "reader"]).await;
    let out = k
        .ok(&[
            "create",
            "rolebinding",
            "read-secrets",
            "--role=secret-reader",
            "--user=bob",
            "--serviceaccount=default:reader",
        ])
        .await;
    assert_eq!(
        out,
        "rolebinding.rbac.authorization.k8s.io/read-secrets created\n"
    );
    let subjects = k
        .ok(&[
            "get",
            "rolebinding",
            "read-secrets",
            "-o",
            "jsonpath={.subjects}",
        ])
        .await;
    let subjects: serde_json::Value = serde_json::from_str(&subjects).expect("JSON");
    assert_eq!(
        subjects,
        serde_json::json!([
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"},
            {"kind": "ServiceAccount", "name": "reader", "namespace": "default"},
        ])
    );
    let role = k
        .ok(&[
            "get",
            "rolebinding",
            "read-secrets",
            "-o",
            "jsonpath={.roleRef.name}",
        ])
        .await;
    assert_eq!(role, "secret-reader");
}

async fn create_clusterrole_and_binding(k: Kubectl) {
    let out = k
        .ok(&[
            "create",
            "clusterrole",
            "namespace-viewer",
            "--verb=get",
            "--resource=namespaces",
            "--resource-name=metal",
        ])
        .await;
    assert_eq!(
        out,
        "clusterrole.rbac.authorization.k8s.io/namespace-viewer created\n"
    );
    let names = k
        .ok(&[
            "get",
            "clusterrole",
            "namespace-viewer",
            "-o",
            "jsonpath={.rules[0].resourceNames}",
        ])
        .await;
    assert_eq!(names, "[\"metal\"]");
    let out = k
        .ok(&[
            "create",
            "clusterrolebinding",
            "view-namespaces",
            "--clusterrole=namespace-viewer",
            "--group=operators",
        ])
        .await;
    assert_eq!(
        out,
        "clusterrolebinding.rbac.authorization.k8s.io/view-namespaces created\n"
    );
    let group = k
        .ok(&[
            "get",
            "clusterrolebinding",
            "view-namespaces",
            "-o",
            "jsonpath={.subjects[0].name}",
        ])
        .await;
    assert_eq!(group, "operators");
}

async fn create_deployment(k: Kubectl) {
    let out = k
        .ok(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--port=80",
            "--replicas=3",
        ])
        .await;
    assert_eq!(out, "deployment.apps/web created\n");
    let spec = k
        .ok(&["get", "deployment", "web", "-o", "jsonpath={.spec}"])
        .await;
    let spec: serde_json::Value = serde_json::from_str(&spec).expect("JSON");
    assert_eq!(spec["replicas"], 3);
    assert_eq!(
        spec["selector"],
        serde_json::json!({"matchLabels": {"app": "web"}})
    );
    assert_eq!(
        spec["template"]["spec"]["containers"],
        serde_json::json!([{"name": "nginx", "image": "nginx:1.27",
                            "ports": [{"containerPort": 80}], "resources": {}}])
    );
    k.ok(&[
        "create",
        "deployment",
        "sleeper",
        "--image=busybox",
        "--",
        "sleep",
        "10",
    ])
    .await;
    let command = k
        .ok(&[
            "get",
            "deploy",
            "sleeper",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].command}",
        ])
        .await;
    assert_eq!(command, "[\"sleep\",\"10\"]");
}

async fn create_services(k: Kubectl) {
    let out = k
        .ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"])
        .await;
    assert_eq!(out, "service/web created\n");
    let ports = k
        .ok(&["get", "svc", "web", "-o", "jsonpath={.spec.ports}"])
        .await;
    let ports: serde_json::Value = serde_json::from_str(&ports).expect("JSON");
    assert_eq!(
        ports,
        serde_json::json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
    k.ok(&[
        "create",
        "service",
        "nodeport",
        "boot",
        "--tcp=80:8080",
        "--node-port=30080",
    ])
    .await;
    let node_port = k
        .ok(&[
            "get",
            "svc",
            "boot",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ])
        .await;
    assert_eq!(node_port, "30080");
    k.ok(&[
        "create",
        "service",
        "externalname",
        "bmc",
        "--external-name=bmc.example.com",
    ])
    .await;
    let external = k
        .ok(&["get", "svc", "bmc", "-o", "jsonpath={.spec.externalName}"])
        .await;
    assert_eq!(external, "bmc.example.com");
}
