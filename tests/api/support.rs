//! Helpers for the API tests: the generated CRDs as JSON, a small structural-schema checker, and
//! kube's client-side CEL validator.

use beskar7::api;
use kube::core::cel::{ValidationError, Validator};
use serde_json::Value;

/// The four CRDs as installed, by plural.
pub const PLURALS: [&str; 4] = [
    "physicalhosts",
    "beskar7machines",
    "beskar7machinetemplates",
    "beskar7clusters",
];

/// The CRD with this plural, as JSON.
pub fn crd(plural: &str) -> Value {
    let crd = api::crds()
        .into_iter()
        .find(|c| c.spec.names.plural == plural)
        .unwrap_or_else(|| panic!("no CRD with plural {plural}"));
    serde_json::to_value(crd).expect("CRD serializes")
}

/// The openAPIV3Schema of the CRD with this plural.
pub fn schema(plural: &str) -> Value {
    crd(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// The schema node at a dotted path ("spec.redfishConnection.address"; "[]" steps into items).
pub fn node<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut n = schema;
    for step in path.split('.').filter(|s| !s.is_empty()) {
        n = if step == "[]" {
            &n["items"]
        } else {
            &n["properties"][step]
        };
        assert!(!n.is_null(), "no schema node at {path} (step {step})");
    }
    n
}

/// Every CEL rule in a schema: (path, rule, message).
pub fn collect_rules(schema: &Value) -> Vec<(String, String, String)> {
    fn walk(n: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
        if let Some(rules) = n["x-kubernetes-validations"].as_array() {
            for r in rules {
                out.push((
                    path.to_owned(),
                    r["rule"].as_str().unwrap_or_default().to_owned(),
                    r["message"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        let join = |k: &str| {
            if path.is_empty() {
                k.to_owned()
            } else {
                format!("{path}.{k}")
            }
        };
        if let Some(props) = n["properties"].as_object() {
            for (k, v) in props {
                walk(v, &join(k), out);
            }
        }
        if n["items"].is_object() {
            walk(&n["items"], &join("[]"), out);
        }
        if n["additionalProperties"].is_object() {
            walk(&n["additionalProperties"], &join("{}"), out);
        }
    }
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

/// Structural checks the API server applies before CEL: types, required and unknown fields,
/// enums, lengths, item counts and numeric ranges. Returns one line per violation.
///
/// Panics on a schema keyword it does not implement (such as `pattern`), so a schema cannot gain
/// a constraint these tests silently ignore.
pub fn structural_errors(schema: &Value, object: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check(schema, object, "", true, &mut errs);
    errs
}

const KNOWN_KEYWORDS: &[&str] = &[
    "type",
    "description",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "nullable",
    "enum",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "minimum",
    "maximum",
    "format",
    "default",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "title",
];

fn check(schema: &Value, v: &Value, path: &str, root: bool, errs: &mut Vec<String>) {
    let obj = schema.as_object().expect("schema node is an object");
    for k in obj.keys() {
        assert!(
            KNOWN_KEYWORDS.contains(&k.as_str()),
            "schema keyword {k:?} at {path:?} is not checked by these tests"
        );
    }
    if v.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            errs.push(format!("{path}: must not be null"));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true) {
        if !(v.is_i64() || v.is_string()) {
            errs.push(format!("{path}: must be an integer or a string"));
        }
        return;
    }
    let at = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match schema["type"].as_str() {
        Some("object") => {
            let Some(map) = v.as_object() else {
                errs.push(format!("{path}: must be an object"));
                return;
            };
            if let Some(req) = schema["required"].as_array() {
                for r in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        errs.push(format!("{}: Required value", at(r)));
                    }
                }
            }
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
            for (k, val) in map {
                if root && ["apiVersion", "kind", "metadata"].contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = schema["properties"].get(k) {
                    check(p, val, &at(k), false, errs);
                } else if schema["additionalProperties"].is_object() {
                    check(&schema["additionalProperties"], val, &at(k), false, errs);
                } else if !preserve {
                    errs.push(format!("{}: unknown field", at(k)));
                }
            }
        }
        Some("array") => {
            let Some(items) = v.as_array() else {
                errs.push(format!("{path}: must be an array"));
                return;
            };
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                errs.push(format!("{path}: must have at most {max} items"));
            }
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                errs.push(format!("{path}: must have at least {min} items"));
            }
            for (i, item) in items.iter().enumerate() {
                check(&schema["items"], item, &format!("{path}[{i}]"), false, errs);
            }
        }
        Some("string") => {
            let Some(s) = v.as_str() else {
                errs.push(format!("{path}: must be a string"));
                return;
            };
            let len = s.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64()
                && len > max
            {
                errs.push(format!("{path}: may not be longer than {max}"));
            }
            if let Some(min) = schema["minLength"].as_u64()
                && len < min
            {
                errs.push(format!("{path}: must be at least {min} characters"));
            }
            if let Some(allowed) = schema["enum"].as_array()
                && !allowed.contains(v)
            {
                errs.push(format!("{path}: Unsupported value {v}"));
            }
        }
        Some("integer") => {
            let Some(n) = v.as_i64() else {
                errs.push(format!("{path}: must be an integer"));
                return;
            };
            if schema["format"] == "int32" && i32::try_from(n).is_err() {
                errs.push(format!("{path}: out of int32 range"));
            }
            if let Some(min) = schema["minimum"].as_f64()
                && (n as f64) < min
            {
                errs.push(format!("{path}: should be greater than or equal to {min}"));
            }
            if let Some(max) = schema["maximum"].as_f64()
                && (n as f64) > max
            {
                errs.push(format!("{path}: should be less than or equal to {max}"));
            }
        }
        Some("number") => {
            if !v.is_number() {
                errs.push(format!("{path}: must be a number"));
            }
        }
        Some("boolean") => {
            if !v.is_boolean() {
                errs.push(format!("{path}: must be a boolean"));
            }
        }
        other => {
            if schema["x-kubernetes-preserve-unknown-fields"] != Value::Bool(true) {
                panic!("schema at {path:?} has unsupported type {other:?}");
            }
        }
    }
}

/// What the API server would say about creating (`old == None`) or updating `object`: the
/// structural errors as "path: message", then the CEL errors as "path: message".
pub fn apiserver_errors(plural: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
    let schema = schema(plural);
    let mut errs = structural_errors(&schema, object);
    errs.extend(
        cel_errors(&schema, object, old)
            .iter()
            .map(|e| e.to_string()),
    );
    errs
}

/// The CEL rules' failures on `object` (and `old`, for transition rules).
pub fn cel_errors(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<ValidationError> {
    match Validator::new().validate(schema, object, old) {
        Ok(()) => Vec::new(),
        Err(errs) => errs.into_vec(),
    }
}

/// Sets the value at a dotted path, creating objects on the way.
pub fn set(object: &mut Value, path: &str, value: Value) {
    let mut n = object;
    let steps: Vec<&str> = path.split('.').collect();
    for step in &steps[..steps.len() - 1] {
        if n.get(*step).is_none() {
            n[*step] = serde_json::json!({});
        }
        n = &mut n[*step];
    }
    n[*steps.last().expect("a path")] = value;
}

/// Removes the value at a dotted path.
pub fn remove(object: &mut Value, path: &str) {
    let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
    let mut n = object;
    for step in parent.split('.').filter(|s| !s.is_empty()) {
        n = &mut n[step];
    }
    n.as_object_mut().expect("an object").remove(last);
}

/// Parses a YAML document into JSON.
pub fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

/// A PhysicalHost using every spec field, valid.
pub fn full_host() -> Value {
    serde_json::json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "PhysicalHost",
        "metadata": {"name": "server-01", "namespace": "default"},
        "spec": {
            "redfishConnection": {
                "address": "https://192.168.1.100:8443/",
                "credentialsSecretRef": "bmc-credentials",
                "insecureSkipVerify": false,
                "caBundleSecretRef": {"name": "bmc-ca"},
                "systemPath": "/redfish/v1/Systems/1"
            },
            "bootMACAddress": "52:54:00:12:34:56",
            "automatedCleaningMode": "metadata",
            "consumerRef": {
                "apiGroup": "infrastructure.cluster.x-k8s.io",
                "kind": "Beskar7Machine",
                "name": "worker-01"
            },
            "provisioning": {
                "inspectionImageURL": "http://boot-server/beskar7-agent",
                "targetImageURL": "https://images.example.com/kairos.raw",
                "targetImageDigest": format!("sha256:{}", "ab".repeat(32)),
                "configurationURL": "http://boot-server/configs/worker.yaml",
                "handoff": "Image",
                "bootMode": "UEFI",
                "rootDeviceHints": {
                    "deviceName": "/dev/disk/by-id/wwn-0x5000c500a0b1c2d3",
                    "serialNumber": "S4EWNX0R123456",
                    "wwn": "0x5000c500a0b1c2d3",
                    "minSizeGB": 100
                },
                "staticIP": "192.168.150.10::192.168.150.1:24:192.168.150.1",
                "hardwareRequirements": {"minCPUCores": 4, "minMemoryGB": 16, "minDiskGB": 100},
                "providerID": "b7://default/server-01/worker-01",
                "bootstrapDataSecretName": "worker-01-bootstrap"
            }
        }
    })
}

/// A Beskar7Machine using every spec field, valid.
pub fn full_machine() -> Value {
    serde_json::json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "Beskar7Machine",
        "metadata": {"name": "worker-01", "namespace": "default"},
        "spec": full_machine_spec()
    })
}

/// A Beskar7Machine spec using every field, valid.
pub fn full_machine_spec() -> Value {
    serde_json::json!({
        "inspectionImageURL": "http://boot-server/beskar7-agent/boot.ipxe",
        "targetImageURL": "https://images.example.com:8443/kairos.raw?v=2",
        "targetImageDigest": format!("sha256:{}", "0123456789abcdef".repeat(4)),
        "configurationURL": "http://boot-server/configs/worker.yaml",
        "hardwareRequirements": {"minCPUCores": 4, "minMemoryGB": 16, "minDiskGB": 100},
        "hostSelector": {
            "matchLabels": {"pool": "workers"},
            "matchExpressions": [{"key": "rack", "operator": "In", "values": ["r1", "r2"]}]
        },
        "handoff": "Image",
        "bootMode": "Legacy",
        "rootDeviceHints": {"deviceName": "/dev/nvme0n1", "minSizeGB": 200},
        "staticIP": "10.0.0.5:::255.255.255.0",
        "providerID": "b7://default/server-01/worker-01"
    })
}

/// A Beskar7MachineTemplate using every field, valid.
pub fn full_template() -> Value {
    let mut spec = full_machine_spec();
    remove(&mut spec, "providerID");
    serde_json::json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "Beskar7MachineTemplate",
        "metadata": {"name": "workers", "namespace": "default"},
        "spec": {"template": {
            "metadata": {"labels": {"pool": "workers"}, "annotations": {"a": "b"}},
            "spec": spec
        }}
    })
}

/// A Beskar7Cluster using every spec field, valid.
pub fn full_cluster() -> Value {
    serde_json::json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "Beskar7Cluster",
        "metadata": {"name": "my-cluster", "namespace": "default"},
        "spec": {"controlPlaneEndpoint": {"host": "192.168.1.10", "port": 6443}}
    })
}
