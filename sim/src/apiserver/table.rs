//! `meta.k8s.io` Tables (what `kubectl get` prints) and PartialObjectMetadata (what metadata-only
//! clients such as kube's `list_metadata` ask for).
//!
//! Custom resources print as the real apiextensions server does: `Name`, then the served
//! version's `additionalPrinterColumns`, or `Age` when it declares none; `date` cells are ages.
//! Built-in kinds print the columns of the real server's printers for the cheap ones
//! (see [`builtin_columns`]); the others print `Name` and `Age`.

use super::jsonpath::JsonPath;
use super::resources::ResourceType;
use super::time::{age, format_unix, now_unix, parse_rfc3339};
use serde_json::{Map, Value, json};

/// `includeObject`: what each row carries besides its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    /// The default: PartialObjectMetadata.
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(format!(
                "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// How a column's cell is computed from an object.
enum Cell {
    /// `metadata.name`.
    Name,
    /// The age of `metadata.creationTimestamp`.
    Age,
    /// `metadata.creationTimestamp` as a timestamp (the real default printer's "Created At").
    CreatedAt,
    /// A CRD printer column: JSONPath and declared type.
    Path(Option<JsonPath>, String),
    /// A built-in printer's computed cell.
    Computed(fn(&Value, i64) -> Value),
}

struct Column {
    name: String,
    kind: &'static str,
    format: String,
    description: String,
    priority: i64,
    cell: Cell,
}

fn column(name: &str, kind: &'static str, cell: Cell) -> Column {
    let (format, description) = match cell {
        Cell::Name => ("name", NAME_DESCRIPTION),
        Cell::Age | Cell::CreatedAt => ("", AGE_DESCRIPTION),
        _ => ("", ""),
    };
    Column {
        name: name.into(),
        kind,
        format: format.into(),
        description: description.into(),
        priority: 0,
        cell,
    }
}

fn wide(mut c: Column) -> Column {
    c.priority = 1;
    c
}

fn computed(name: &str, kind: &'static str, f: fn(&Value, i64) -> Value) -> Column {
    column(name, kind, Cell::Computed(f))
}

/// The columns of `rt` at `version`.
fn columns(rt: &ResourceType, version: &str) -> Vec<Column> {
    let name = || column("Name", "string", Cell::Name);
    match &rt.crd {
        Some(crd) => std::iter::once(name())
            .chain(crd_columns(crd, version))
            .collect(),
        // `kubectl get events` leads with LAST SEEN; the name is a wide column there.
        None if rt.kind == "Event" => {
            let mut columns = builtin_columns(&rt.group, &rt.kind);
            columns.push(wide(name()));
            columns
        }
        None => std::iter::once(name())
            .chain(builtin_columns(&rt.group, &rt.kind))
            .collect(),
    }
}

fn crd_columns(crd: &Value, version: &str) -> Vec<Column> {
    let declared: Vec<Value> = super::resources::crd_version(crd, version)
        .and_then(|v| v.get("additionalPrinterColumns"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if declared.is_empty() {
        // apiextensions' serveDefaultColumnsIfEmpty.
        return vec![column("Age", "date", Cell::Age)];
    }
    declared
        .iter()
        .map(|c| {
            let text = |key: &str| c.get(key).and_then(Value::as_str).unwrap_or_default();
            let kind: &'static str = match text("type") {
                "integer" => "integer",
                "number" => "number",
                "boolean" => "boolean",
                "date" => "date",
                _ => "string",
            };
            // A path the server cannot evaluate gives empty cells, as an unmatched one does.
            let path = JsonPath::parse(text("jsonPath")).ok();
            Column {
                name: text("name").into(),
                kind,
                format: text("format").into(),
                description: text("description").into(),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                cell: Cell::Path(path, kind.into()),
            }
        })
        .collect()
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn count(obj: &Value, pointers: &[&str]) -> Value {
    // Keys, not entries per field: a Secret's stringData keys land in data on a real server.
    let mut keys: Vec<&String> = pointers
        .iter()
        .filter_map(|p| obj.pointer(p).and_then(Value::as_object))
        .flat_map(Map::keys)
        .collect();
    keys.sort();
    keys.dedup();
    json!(keys.len())
}

fn or_none(s: String) -> Value {
    Value::String(if s.is_empty() { "<none>".into() } else { s })
}

/// The columns after `Name` of the built-in kinds' printers (pkg/printers/internalversion),
/// for the kinds users `kubectl get` most; the rest print `Age`.
fn builtin_columns(group: &str, kind: &str) -> Vec<Column> {
    let age_column = || column("Age", "string", Cell::Age);
    match (group, kind) {
        ("", "Namespace") => vec![
            computed("Status", "string", |o, _| {
                json!(match str_at(o, "/status/phase") {
                    "" => "Active",
                    phase => phase,
                })
            }),
            age_column(),
        ],
        ("", "Secret") => vec![
            computed("Type", "string", |o, _| {
                json!(match str_at(o, "/type") {
                    "" => "Opaque",
                    t => t,
                })
            }),
            computed("Data", "string", |o, _| count(o, &["/data", "/stringData"])),
            age_column(),
        ],
        ("", "ConfigMap") => vec![
            computed("Data", "string", |o, _| count(o, &["/data", "/binaryData"])),
            age_column(),
        ],
        ("", "ServiceAccount") => vec![
            computed("Secrets", "string", |o, _| {
                json!(
                    o.get("secrets")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                )
            }),
            age_column(),
        ],
        ("", "Service") => vec![
            computed("Type", "string", |o, _| {
                json!(match str_at(o, "/spec/type") {
                    "" => "ClusterIP",
                    t => t,
                })
            }),
            computed("Cluster-IP", "string", |o, _| {
                or_none(str_at(o, "/spec/clusterIP").to_string())
            }),
            computed("External-IP", "string", |o, _| service_external_ip(o)),
            computed("Port(s)", "string", |o, _| {
                let ports: Vec<String> = o
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                        let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                        match p.get("nodePort").and_then(Value::as_i64) {
                            Some(node) => format!("{port}:{node}/{protocol}"),
                            None => format!("{port}/{protocol}"),
                        }
                    })
                    .collect();
                or_none(ports.join(","))
            }),
            age_column(),
            wide(computed("Selector", "string", |o, _| {
                let selector: Vec<String> = o
                    .pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                or_none(selector.join(","))
            })),
        ],
        ("", "Node") => vec![
            computed("Status", "string", |o, _| {
                let ready = o
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                    .and_then(|c| c.get("status").and_then(Value::as_str));
                let mut status = match ready {
                    Some("True") => "Ready".to_string(),
                    Some(_) => "NotReady".to_string(),
                    None => "Unknown".to_string(),
                };
                if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                    status.push_str(",SchedulingDisabled");
                }
                json!(status)
            }),
            computed("Roles", "string", |o, _| {
                let roles: Vec<&str> = o
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
                    .collect();
                or_none(roles.join(","))
            }),
            age_column(),
            computed("Version", "string", |o, _| {
                json!(str_at(o, "/status/nodeInfo/kubeletVersion"))
            }),
            wide(computed("Internal-IP", "string", |o, _| {
                node_address(o, "InternalIP")
            })),
            wide(computed("External-IP", "string", |o, _| {
                node_address(o, "ExternalIP")
            })),
            wide(computed("OS-Image", "string", |o, _| {
                json!(str_at(o, "/status/nodeInfo/osImage"))
            })),
            wide(computed("Kernel-Version", "string", |o, _| {
                json!(str_at(o, "/status/nodeInfo/kernelVersion"))
            })),
            wide(computed("Container-Runtime", "string", |o, _| {
                json!(str_at(o, "/status/nodeInfo/containerRuntimeVersion"))
            })),
        ],
        ("" | "events.k8s.io", "Event") => vec![
            computed("Last Seen", "string", |o, now| {
                let at = ["/lastTimestamp", "/deprecatedLastTimestamp", "/eventTime"]
                    .iter()
                    .map(|p| str_at(o, p))
                    .find(|t| !t.is_empty());
                json!(age(at, now))
            }),
            computed("Type", "string", |o, _| json!(str_at(o, "/type"))),
            computed("Reason", "string", |o, _| json!(str_at(o, "/reason"))),
            computed("Object", "string", |o, _| {
                let about = o.get("involvedObject").or_else(|| o.get("regarding"));
                let field = |k: &str| {
                    about
                        .and_then(|a| a.get(k))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                };
                json!(format!(
                    "{}/{}",
                    field("kind").to_lowercase(),
                    field("name")
                ))
            }),
            computed("Message", "string", |o, _| {
                let message = o.get("message").or_else(|| o.get("note"));
                json!(message.and_then(Value::as_str).unwrap_or_default().trim())
            }),
        ],
        ("apps", "Deployment") => vec![
            computed("Ready", "string", |o, _| {
                let n = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
                json!(format!(
                    "{}/{}",
                    n("/status/readyReplicas"),
                    n("/spec/replicas")
                ))
            }),
            computed("Up-to-date", "integer", |o, _| {
                json!(
                    o.pointer("/status/updatedReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                )
            }),
            computed("Available", "integer", |o, _| {
                json!(
                    o.pointer("/status/availableReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                )
            }),
            age_column(),
            wide(computed("Containers", "string", |o, _| {
                pod_template_containers(o, "name")
            })),
            wide(computed("Images", "string", |o, _| {
                pod_template_containers(o, "image")
            })),
            wide(computed("Selector", "string", |o, _| {
                let labels: Vec<String> = o
                    .pointer("/spec/selector/matchLabels")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                json!(labels.join(","))
            })),
        ],
        ("coordination.k8s.io", "Lease") => vec![
            computed("Holder", "string", |o, _| {
                json!(str_at(o, "/spec/holderIdentity"))
            }),
            age_column(),
        ],
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => vec![
            computed("Role", "string", |o, _| {
                json!(format!(
                    "{}/{}",
                    str_at(o, "/roleRef/kind"),
                    str_at(o, "/roleRef/name")
                ))
            }),
            age_column(),
        ],
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole")
        | ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            vec![column("Created At", "date", Cell::CreatedAt)]
        }
        _ => vec![age_column()],
    }
}

fn strings_at<'a>(obj: &'a Value, pointer: &str) -> impl Iterator<Item = &'a str> {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The real printer's `getServiceExternalIP`.
fn service_external_ip(o: &Value) -> Value {
    let external: Vec<&str> = strings_at(o, "/spec/externalIPs").collect();
    match str_at(o, "/spec/type") {
        "ExternalName" => json!(str_at(o, "/spec/externalName")),
        "LoadBalancer" => {
            let ingress: Vec<&str> = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i.get("ip")
                        .or_else(|| i.get("hostname"))
                        .and_then(Value::as_str)
                })
                .collect();
            let all: Vec<&str> = external.into_iter().chain(ingress).collect();
            if all.is_empty() {
                json!("<pending>")
            } else {
                json!(all.join(","))
            }
        }
        _ => or_none(external.join(",")),
    }
}

fn node_address(o: &Value, kind: &str) -> Value {
    let found = o
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a.get("type").and_then(Value::as_str) == Some(kind))
        .and_then(|a| a.get("address").and_then(Value::as_str));
    or_none(found.unwrap_or_default().to_string())
}

/// A Deployment's containers' `field` (name or image), comma-separated.
fn pod_template_containers(o: &Value, field: &str) -> Value {
    let values: Vec<&str> = o
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get(field).and_then(Value::as_str))
        .collect();
    json!(values.join(","))
}

fn cell(column: &Column, obj: &Value, now: i64) -> Value {
    match &column.cell {
        Cell::Name => json!(str_at(obj, "/metadata/name")),
        Cell::Age => json!(age(
            obj.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str),
            now
        )),
        Cell::CreatedAt => obj
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            .map_or(Value::Null, |t| json!(format_unix(t))),
        Cell::Computed(f) => f(obj, now),
        Cell::Path(None, _) => Value::Null,
        Cell::Path(Some(path), kind) => {
            let Some(value) = path.find(obj).into_iter().next() else {
                return Value::Null;
            };
            // apiextensions' cellForJSONValue: a cell of the wrong type is empty.
            match (kind.as_str(), value) {
                ("string", Value::String(s)) => json!(s),
                ("string", Value::Null) => Value::Null,
                ("string", other) => json!(other.to_string()),
                ("integer", Value::Number(n)) => n
                    .as_i64()
                    .or_else(|| n.as_f64().map(|f| f as i64))
                    .map_or(Value::Null, |i| json!(i)),
                ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, |f| json!(f)),
                ("boolean", Value::Bool(b)) => json!(b),
                ("date", Value::String(s)) => match parse_rfc3339(s) {
                    Some(_) => json!(age(Some(s), now)),
                    None => json!("<invalid>"),
                },
                _ => Value::Null,
            }
        }
    }
}

/// `{"kind":"PartialObjectMetadata","apiVersion":…,"metadata":…}` of an object.
pub fn partial_metadata(obj: &Value, api_version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": api_version,
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The list form of [`partial_metadata`].
pub fn partial_metadata_list(objects: &[Value], api_version: &str, list_metadata: Value) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": api_version,
        "metadata": list_metadata,
        "items": objects.iter().map(|o| partial_metadata(o, api_version)).collect::<Vec<_>>(),
    })
}

/// A Table of `objects` (already at `version`, as served): one row each.
pub fn table(
    rt: &ResourceType,
    version: &str,
    objects: &[Value],
    include: IncludeObject,
    api_version: &str,
    list_metadata: Value,
) -> Value {
    let columns = columns(rt, version);
    let now = now_unix();
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.kind, "format": c.format,
                   "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| cell(c, obj, now)).collect();
            let mut row = json!({"cells": cells});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(obj, api_version),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": list_metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::{Registry, resource_type_from_crd};
    use crate::apiserver::time::format_unix;

    fn host_type(columns: Value) -> ResourceType {
        resource_type_from_crd(&json!({
            "metadata": {"name": "hosts.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "hosts", "kind": "Host"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "additionalPrinterColumns": columns}]}
        }))
        .unwrap()
    }

    fn names(table: &Value) -> Vec<&str> {
        table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn crd_columns_with_filters_types_and_ages() {
        let rt = host_type(json!([
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Address", "type": "string", "jsonPath": ".spec.address", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
        ]));
        let created = format_unix(now_unix() - 185);
        let obj = json!({"metadata": {"name": "h1", "creationTimestamp": created},
                         "spec": {"replicas": 2.0},
                         "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let t = table(
            &rt,
            "v1",
            &[obj],
            IncludeObject::Metadata,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(names(&t), ["Name", "Ready", "Replicas", "Address", "Age"]);
        assert_eq!(t["columnDefinitions"][3]["priority"], 1);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "h1");
        assert_eq!(cells[1], "True");
        assert_eq!(cells[2], 2);
        assert_eq!(cells[3], Value::Null);
        assert!(cells[4] == "3m5s" || cells[4] == "3m6s", "{}", cells[4]);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn crd_without_columns_gets_age_and_include_object_is_respected() {
        let rt = host_type(json!([]));
        let obj = json!({"metadata": {"name": "h1"}, "spec": {}});
        let t = table(
            &rt,
            "v1",
            std::slice::from_ref(&obj),
            IncludeObject::None,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(names(&t), ["Name", "Age"]);
        assert_eq!(t["rows"][0]["cells"][1], "<unknown>");
        assert!(t["rows"][0].get("object").is_none());
        let t = table(
            &rt,
            "v1",
            std::slice::from_ref(&obj),
            IncludeObject::Object,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(t["rows"][0]["object"], obj);
        assert!(
            IncludeObject::parse(Some("Everything"))
                .unwrap_err()
                .contains("Everything")
        );
    }

    #[test]
    fn builtin_printers_compute_what_kubectl_users_expect() {
        let registry = Registry::with_built_ins();
        let rt = |g: &str, r: &str| registry.lookup(g, "v1", r).unwrap();
        let secret = json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"a": "x", "b": "y"}});
        let t = table(
            &rt("", "secrets"),
            "v1",
            &[secret],
            IncludeObject::None,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(names(&t), ["Name", "Type", "Data", "Age"]);
        assert_eq!(t["rows"][0]["cells"][1], "Opaque");
        assert_eq!(t["rows"][0]["cells"][2], 2);
        let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "pod-1"}});
        let t = table(
            &rt("coordination.k8s.io", "leases"),
            "v1",
            &[lease],
            IncludeObject::None,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(t["rows"][0]["cells"][1], "pod-1");
        let deploy = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 2, "updatedReplicas": 3}});
        let t = table(
            &rt("apps", "deployments"),
            "v1",
            &[deploy],
            IncludeObject::None,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(
            names(&t),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(t["rows"][0]["cells"][1], "2/3");
        let deploy = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "b7"}},
            "template": {"spec": {"containers": [{"name": "manager", "image": "beskar7:1"}]}}}});
        let t = table(
            &rt("apps", "deployments"),
            "v1",
            &[deploy],
            IncludeObject::None,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(names(&t)[5..], ["Containers", "Images", "Selector"]);
        assert_eq!(
            t["rows"][0]["cells"].as_array().unwrap()[5..],
            [json!("manager"), json!("beskar7:1"), json!("app=b7")]
        );
        let lb = json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "nodePort": 30443}]}});
        let t = table(
            &rt("", "services"),
            "v1",
            &[lb],
            IncludeObject::None,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(t["rows"][0]["cells"][3], "<pending>");
        assert_eq!(t["rows"][0]["cells"][4], "443:30443/TCP");
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}});
        let t = table(
            &rt("", "nodes"),
            "v1",
            &[node],
            IncludeObject::None,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(t["rows"][0]["cells"][1], "Ready");
        assert_eq!(t["rows"][0]["cells"][2], "control-plane");
        assert_eq!(t["rows"][0]["cells"][5], "10.0.0.5");
        assert_eq!(t["rows"][0]["cells"][6], "<none>");
        let event = json!({"metadata": {"name": "e"}, "type": "Normal", "reason": "Powered",
            "regarding": {"kind": "PhysicalHost", "name": "h1"}, "note": "on "});
        let t = table(
            &rt("events.k8s.io", "events"),
            "v1",
            &[event],
            IncludeObject::None,
            "meta.k8s.io/v1",
            json!({}),
        );
        assert_eq!(
            names(&t),
            ["Last Seen", "Type", "Reason", "Object", "Message", "Name"]
        );
        assert_eq!(t["rows"][0]["cells"][3], "physicalhost/h1");
        assert_eq!(t["rows"][0]["cells"][4], "on");
    }
}
