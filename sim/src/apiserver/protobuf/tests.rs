//! Decoding the bodies real clients sent, captured into sim/tests/fixtures/protobuf/ by a
//! logging proxy in front of the sim (kubectl 1.33 `create …`, Helm 4's Secret driver).

use super::*;
use base64::Engine;
use serde_json::json;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/protobuf/",
            $name
        ))
    };
}

fn decoded(body: &[u8]) -> Value {
    decode_object(body).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn secret_generic_from_kubectl_create() {
    // kubectl create secret generic bmc-credentials --from-literal=username=admin
    //   --from-literal=password=x
    assert_eq!(
        decoded(fixture!("secret-generic.pb")),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "bmc-credentials"},
            "data": {"password": "eA==", "username": "YWRtaW4="},
        })
    );
}

#[test]
fn secret_docker_registry_from_kubectl_create() {
    let secret = decoded(fixture!("secret-docker-registry.pb"));
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let config = secret["data"][".dockerconfigjson"].as_str().unwrap();
    let config = base64::engine::general_purpose::STANDARD
        .decode(config)
        .unwrap();
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["auths"]["r.io"]["username"], "u");
    assert_eq!(config["auths"]["r.io"]["password"], "p");
}

#[test]
fn helm_release_secret() {
    let secret = decoded(fixture!("helm-release-secret.pb"));
    assert_eq!(secret["metadata"]["name"], "sh.helm.release.v1.demo.v1");
    assert_eq!(secret["type"], "helm.sh/release.v1");
    assert_eq!(
        secret["metadata"]["labels"],
        json!({"createdAt": "1795566314", "name": "demo", "owner": "helm",
               "status": "pending-install", "version": "1"})
    );
    // The release is base64(gzip(JSON)) already; data holds its base64 once more.
    let release = secret["data"]["release"].as_str().unwrap();
    let inner = base64::engine::general_purpose::STANDARD
        .decode(release)
        .unwrap();
    assert!(inner.starts_with(b"H4sI"), "a gzip stream in base64");
}

#[test]
fn configmap_from_kubectl_create() {
    // kubectl create configmap cm1 --from-file=f.txt --from-literal=a=b
    assert_eq!(
        decoded(fixture!("configmap.pb")),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cm1"},
            "data": {"a": "b", "f.txt": "hello\n"},
        })
    );
}

#[test]
fn namespace_from_kubectl_create() {
    // Go writes the empty spec and status structs; JSON has them as {}.
    assert_eq!(
        decoded(fixture!("namespace.pb")),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "metal"},
            "spec": {},
            "status": {},
        })
    );
}

#[test]
fn serviceaccount_from_kubectl_create() {
    assert_eq!(
        decoded(fixture!("serviceaccount.pb")),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa1"}})
    );
}

#[test]
fn role_from_kubectl_create() {
    // kubectl create role r1 --verb=get --resource=secrets: apiGroups [""] is the core group,
    // an empty string that must survive.
    assert_eq!(
        decoded(fixture!("role.pb")),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "r1"},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}],
        })
    );
}

#[test]
fn clusterroles_from_kubectl_create() {
    // --verb=get --resource=secrets,configmaps --resource-name=x
    assert_eq!(
        decoded(fixture!("clusterrole.pb"))["rules"],
        json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets", "configmaps"],
                "resourceNames": ["x"]}])
    );
    // --aggregation-rule=a=b
    let aggregated = decoded(fixture!("clusterrole-aggregation.pb"));
    assert_eq!(
        aggregated["aggregationRule"],
        json!({"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]})
    );
    assert_eq!(aggregated.get("rules"), None);
}

#[test]
fn bindings_from_kubectl_create() {
    let binding = decoded(fixture!("rolebinding.pb"));
    assert_eq!(binding["kind"], "RoleBinding");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r1"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}])
    );
    let binding = decoded(fixture!("clusterrolebinding.pb"));
    assert_eq!(binding["kind"], "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["roleRef"]["name"], "cr1");
}

/// Builds a body the way Go's marshaller does, for the cases no client produced for us.
fn len_field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from((number << 3) | 2));
    out.extend(varint(bytes.len() as u64));
    out.extend_from_slice(bytes);
    out
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [
        len_field(1, api_version.as_bytes()),
        len_field(2, kind.as_bytes()),
    ]
    .concat();
    [
        b"k8s\x00".to_vec(),
        len_field(1, &type_meta),
        len_field(2, raw),
    ]
    .concat()
}

#[test]
fn metadata_fields_beyond_what_kubectl_sends() {
    let time = [vec![0x08], varint(1_765_000_000)].concat(); // Time.seconds
    let owner = [
        len_field(1, b"Deployment"),
        len_field(3, b"d"),
        len_field(4, b"u-1"),
        len_field(5, b"apps/v1"),
        vec![0x30, 0x01], // controller: true
    ]
    .concat();
    let managed = [
        len_field(1, b"kubectl"),
        len_field(2, b"Update"),
        len_field(4, &time),
        len_field(6, b"FieldsV1"),
        len_field(7, &len_field(1, br#"{"f:data":{}}"#)),
    ]
    .concat();
    let meta = [
        len_field(2, b"gen-"),
        len_field(3, b"ns"),
        len_field(6, b"42"),
        vec![0x38, 0x03], // generation 3
        len_field(8, &time),
        len_field(12, &[len_field(1, b"k"), len_field(2, b"v")].concat()),
        len_field(13, &owner),
        len_field(14, b"example.com/f"),
        len_field(17, &managed),
    ]
    .concat();
    let raw = [len_field(1, &meta), vec![0x20, 0x00]].concat(); // immutable: false
    assert_eq!(
        decoded(&envelope("v1", "ConfigMap", &raw)),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "immutable": false,
            "metadata": {
                "generateName": "gen-",
                "namespace": "ns",
                "resourceVersion": "42",
                "generation": 3,
                "creationTimestamp": "2025-12-06T05:46:40Z",
                "annotations": {"k": "v"},
                "ownerReferences": [{"kind": "Deployment", "name": "d", "uid": "u-1",
                                     "apiVersion": "apps/v1", "controller": true}],
                "finalizers": ["example.com/f"],
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                                   "time": "2025-12-06T05:46:40Z", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:data": {}}}],
            },
        })
    );
}

#[test]
fn delete_options() {
    let pre = len_field(1, b"u-1");
    let raw = [
        vec![0x08, 0x00], // gracePeriodSeconds: 0, kept (a pointer in Go)
        len_field(2, &pre),
        len_field(4, b"Foreground"),
        len_field(5, b"All"),
    ]
    .concat();
    assert_eq!(
        decode_delete_options(&envelope("v1", "DeleteOptions", &raw)).unwrap(),
        json!({"gracePeriodSeconds": 0, "preconditions": {"uid": "u-1"},
               "propagationPolicy": "Foreground", "dryRun": ["All"]})
    );
    let err = decode_delete_options(&envelope("v1", "Secret", b"")).unwrap_err();
    assert_eq!(err.code, 400);
}

#[test]
fn a_kind_without_a_table_stays_415() {
    let err = decode_object(&envelope("coordination.k8s.io/v1", "Lease", b"")).unwrap_err();
    assert_eq!(err.code, 415);
    assert!(err.message.contains(MEDIA_TYPE), "{}", err.message);
}

#[test]
fn an_unknown_field_is_400_naming_kind_message_and_number() {
    let meta = [len_field(1, b"x"), len_field(15, b"?")].concat();
    let err = decode_object(&envelope("v1", "Secret", &len_field(1, &meta))).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message
            .contains("Secret (v1) has field 15 of ObjectMeta (at metadata)"),
        "{}",
        err.message
    );
    let err = decode_object(&envelope("v1", "Secret", &[0x48, 0x01])).unwrap_err();
    assert!(
        err.message.contains("field 9 of Secret,"),
        "{}",
        err.message
    );
}

#[test]
fn malformed_bodies_are_400_naming_the_problem() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"{\"kind\":\"Secret\"}",
            "does not start with the Kubernetes protobuf prefix",
        ),
        (b"k8s\x00\x0a\x7f", "claims 127 bytes"),
        (b"k8s\x00\x12\x00", "names no apiVersion and kind"),
        (
            &[&b"k8s\x00"[..], &len_field(3, b"gzip")].concat(),
            "contentEncoding \"gzip\"",
        ),
        (
            // metadata sent as a varint
            &envelope("v1", "Secret", &[0x08, 0x01]),
            "metadata (field 1 of Secret) has wire type 0, expected 2",
        ),
    ];
    for (body, why) in cases {
        let err = decode_object(body).unwrap_err();
        assert_eq!(err.code, 400, "{why}");
        assert!(err.message.contains(why), "{} lacks {why}", err.message);
    }
    let truncated = fixture!("secret-generic.pb");
    let err = decode_object(&truncated[..truncated.len() - 5]).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(err.message.contains("malformed"), "{}", err.message);
}

#[test]
fn map_values_and_strings_must_be_utf8() {
    let entry = [len_field(1, b"k"), len_field(2, &[0xff])].concat();
    let err = decode_object(&envelope("v1", "ConfigMap", &len_field(2, &entry))).unwrap_err();
    assert!(
        err.message.contains("data[k] is not valid UTF-8"),
        "{}",
        err.message
    );
    // binaryData takes any bytes.
    let cm = decoded(&envelope("v1", "ConfigMap", &len_field(3, &entry)));
    assert_eq!(cm["binaryData"], json!({"k": "/w=="}));
}

#[test]
fn helm_release_secret_update_and_delete_options() {
    let secret = decoded(fixture!("helm-release-secret-update.pb"));
    assert_eq!(secret["metadata"]["labels"]["status"], "deployed");
    assert_eq!(secret["metadata"].get("resourceVersion"), None);
    // client-go's typed Delete with DeleteOptions{}: every field empty.
    assert_eq!(
        decode_delete_options(fixture!("delete-options-helm.pb")).unwrap(),
        json!({})
    );
}

#[test]
fn deployment_from_kubectl_create() {
    // kubectl create deployment dep2 --image=nginx:1.27 --port=80 --replicas=3: Go writes every
    // zero-valued PodSpec and Container field, which JSON leaves out.
    assert_eq!(
        decoded(fixture!("deployment-port-replicas.pb")),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "dep2", "labels": {"app": "dep2"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "dep2"}},
                "template": {
                    "metadata": {"labels": {"app": "dep2"}},
                    "spec": {"containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "resources": {},
                    }]},
                },
                "strategy": {},
            },
            "status": {},
        })
    );
    // kubectl create deployment dep3 --image=busybox -- sleep 10
    let deployment = decoded(fixture!("deployment-command.pb"));
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["sleep", "10"])
    );
    assert_eq!(deployment["spec"]["replicas"], 1);
}

#[test]
fn services_from_kubectl_create() {
    // kubectl create service clusterip s1 --tcp=80:8080
    assert_eq!(
        decoded(fixture!("service-clusterip.pb")),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s1", "labels": {"app": "s1"}},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "s1"},
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        })
    );
    let nodeport = decoded(fixture!("service-nodeport.pb"));
    assert_eq!(nodeport["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(nodeport["spec"]["type"], "NodePort");
    let external = decoded(fixture!("service-externalname.pb"));
    assert_eq!(external["spec"]["externalName"], "bmc.example.com");
    assert_eq!(external["spec"]["type"], "ExternalName");
}

#[test]
fn int_or_string_quantities_and_flags() {
    // RollingUpdateDeployment{maxUnavailable: "25%", maxSurge: 1}; a container with a CPU limit
    // and tty: true; hostNetwork: false left out as Go's omitempty does.
    let rolling = [
        len_field(1, &[vec![0x08, 0x01], len_field(3, b"25%")].concat()),
        len_field(2, &[0x08, 0x00, 0x10, 0x01]),
    ]
    .concat();
    let strategy = [len_field(1, b"RollingUpdate"), len_field(2, &rolling)].concat();
    let limits = [len_field(1, b"cpu"), len_field(2, &len_field(1, b"500m"))].concat();
    let container = [
        len_field(1, b"c"),
        len_field(8, &len_field(1, &limits)),
        vec![0x90, 0x01, 0x01], // tty (18): true
    ]
    .concat();
    let pod = [len_field(2, &container), vec![0x58, 0x00]].concat(); // hostNetwork (11): false
    let spec = [len_field(3, &len_field(2, &pod)), len_field(4, &strategy)].concat();
    let deployment = decoded(&envelope("apps/v1", "Deployment", &len_field(2, &spec)));
    assert_eq!(
        deployment["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}})
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"],
        json!({"containers": [{"name": "c", "resources": {"limits": {"cpu": "500m"}}, "tty": true}]})
    );
}

#[test]
fn a_pod_field_without_a_table_entry_is_named() {
    // PodSpec.volumes (1) is not described: 400, naming where it was found.
    let spec = len_field(3, &len_field(2, &len_field(1, b"")));
    let err = decode_object(&envelope("apps/v1", "Deployment", &len_field(2, &spec))).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message
            .contains("Deployment (apps/v1) has field 1 of PodSpec (at spec.template.spec)"),
        "{}",
        err.message
    );
}
