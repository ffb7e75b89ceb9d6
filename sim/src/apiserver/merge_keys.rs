//! How each list and map of an object merges: from a CRD's `openAPIV3Schema` extensions, or, for
//! the built-in kinds served, from a small hand-kept table of what their Go types declare
//! (`+listType`, `+listMapKey`, `+patchMergeKey`, `+patchStrategy`, `+mapType`).
//!
//! The table lists only the kinds [`super::resources`] serves and only the lists and maps that
//! do not follow the defaults: a list without an entry is atomic (replaced whole, by server-side
//! apply and by strategic merge patch alike), a map without an entry is granular.

use super::fieldpath::KeyField;
use super::resources::ResourceType;
use super::schema::prune::OBJECT_META_FIELDS;
use serde_json::Value;

/// How server-side apply treats a list.
#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    /// Replaced whole and owned as one field.
    Atomic,
    /// Scalars merged as a set; each value owned separately (`v:`).
    Set,
    /// Items merged by these key fields; each item owned separately (`k:`).
    Map(Vec<KeyField>),
}

/// How a built-in list or map merges.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// `+listType=map +listMapKey=<keys>` for apply, `+patchMergeKey=<merge_key>` for strategic
    /// merge (the two differ: Service ports are keyed by port and protocol, patched by port).
    Keyed {
        keys: &'static [&'static str],
        merge_key: &'static str,
    },
    /// Scalars, `+listType=set` and `+patchStrategy=merge`: finalizers.
    Set,
    /// `+mapType=atomic` / `+structType=atomic`: label selectors, node selectors.
    AtomicMap,
}

type Table = &'static [(&'static str, Rule)];

const fn keyed(keys: &'static [&'static str], merge_key: &'static str) -> Rule {
    Rule::Keyed { keys, merge_key }
}

/// Under `metadata`, for every kind (ObjectMeta).
const METADATA: Table = &[
    ("ownerReferences", keyed(&["uid"], "uid")),
    ("finalizers", Rule::Set),
];

// ObjectMeta's fields (the list pruning uses too) and OwnerReference's: `metadata` is typed for
// every kind, so an apply that sets anything else there does not type.
const OWNER_REFERENCE_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "name",
    "uid",
    "controller",
    "blockOwnerDeletion",
];

const CONDITIONS: (&str, Rule) = ("status.conditions", keyed(&["type"], "type"));

const SERVICE: Table = &[
    ("spec.ports", keyed(&["port", "protocol"], "port")),
    ("spec.selector", Rule::AtomicMap),
    CONDITIONS,
];

const DEPLOYMENT: Table = &[
    ("spec.selector", Rule::AtomicMap),
    ("spec.template.spec.nodeSelector", Rule::AtomicMap),
    ("spec.template.spec.containers", keyed(&["name"], "name")),
    (
        "spec.template.spec.containers[].ports",
        keyed(&["containerPort", "protocol"], "containerPort"),
    ),
    (
        "spec.template.spec.containers[].env",
        keyed(&["name"], "name"),
    ),
    (
        "spec.template.spec.containers[].volumeMounts",
        keyed(&["mountPath"], "mountPath"),
    ),
    (
        "spec.template.spec.containers[].volumeDevices",
        keyed(&["devicePath"], "devicePath"),
    ),
    (
        "spec.template.spec.initContainers",
        keyed(&["name"], "name"),
    ),
    (
        "spec.template.spec.initContainers[].ports",
        keyed(&["containerPort", "protocol"], "containerPort"),
    ),
    (
        "spec.template.spec.initContainers[].env",
        keyed(&["name"], "name"),
    ),
    (
        "spec.template.spec.initContainers[].volumeMounts",
        keyed(&["mountPath"], "mountPath"),
    ),
    ("spec.template.spec.volumes", keyed(&["name"], "name")),
    (
        "spec.template.spec.imagePullSecrets",
        keyed(&["name"], "name"),
    ),
    ("spec.template.spec.hostAliases", keyed(&["ip"], "ip")),
    (
        "spec.template.spec.topologySpreadConstraints",
        keyed(&["topologyKey", "whenUnsatisfiable"], "topologyKey"),
    ),
    CONDITIONS,
];

const NODE: Table = &[("spec.podCIDRs", Rule::Set), CONDITIONS];
const NAMESPACE: Table = &[CONDITIONS];
const SERVICE_ACCOUNT: Table = &[("secrets", keyed(&["name"], "name"))];
const NETWORK_POLICY: Table = &[("spec.podSelector", Rule::AtomicMap)];

/// The table of a built-in kind; kinds without special lists have an empty one.
fn table(group: &str, kind: &str) -> Table {
    match (group, kind) {
        ("", "Service") => SERVICE,
        ("apps", "Deployment") => DEPLOYMENT,
        ("", "Node") => NODE,
        ("", "Namespace") => NAMESPACE,
        ("", "ServiceAccount") => SERVICE_ACCOUNT,
        ("networking.k8s.io", "NetworkPolicy") => NETWORK_POLICY,
        // Secret, ConfigMap, Event, Lease, RBAC (rules and subjects are atomic), CRDs.
        _ => &[],
    }
}

/// A position in an object's type, walked alongside the object.
#[derive(Debug, Clone)]
pub enum Shape<'a> {
    /// The object root: `metadata` is ObjectMeta, the rest is the kind's.
    Root {
        crd: Option<&'a Value>,
        table: Table,
    },
    /// A node of a CRD's structural schema; `None` where the schema says nothing (preserved
    /// unknown fields), which merges like structured-merge-diff's deduced type.
    Crd(Option<&'a Value>),
    /// A dotted path into a built-in table, list items written `[]`.
    Table(Table, String),
}

impl<'a> Shape<'a> {
    /// The root shape of `rt`'s objects at `version`.
    pub fn of(rt: &'a ResourceType, version: &str) -> Shape<'a> {
        let crd = rt.crd.as_deref().map(|crd| {
            super::resources::crd_version(crd, version)
                .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
        });
        match crd {
            Some(schema) => Shape::Root {
                crd: schema,
                table: &[],
            },
            None => Shape::Root {
                crd: None,
                table: table(&rt.group, &rt.kind),
            },
        }
    }

    pub fn field(&self, name: &str) -> Shape<'a> {
        match self {
            Shape::Root { .. } if name == "metadata" => Shape::Table(METADATA, String::new()),
            Shape::Root { crd: Some(s), .. } => Shape::Crd(Some(s)).field(name),
            Shape::Root { table, .. } => Shape::Table(table, name.to_string()),
            Shape::Crd(node) => Shape::Crd(node.and_then(|n| {
                n.get("properties")
                    .and_then(|p| p.get(name))
                    .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
            })),
            Shape::Table(table, path) if path.is_empty() => Shape::Table(table, name.to_string()),
            Shape::Table(table, path) => Shape::Table(table, format!("{path}.{name}")),
        }
    }

    /// Whether `name` is a declared field (a struct field) rather than a key of a map whose
    /// keys are free (`additionalProperties`, preserved unknown fields). Built-in tables do not
    /// say; their free-keyed maps (labels, data) hold scalars, where it makes no difference.
    pub fn declares(&self, name: &str) -> bool {
        match self {
            Shape::Root { crd: Some(s), .. } => {
                matches!(name, "apiVersion" | "kind" | "metadata")
                    || Shape::Crd(Some(s)).declares(name)
            }
            Shape::Crd(node) => node
                .and_then(|n| n.get("properties"))
                .and_then(|p| p.get(name))
                .is_some(),
            _ => true,
        }
    }

    /// Whether an applied configuration may set `name` here: a CRD object with declared
    /// properties takes only those (plus free keys under `additionalProperties` or preserved
    /// unknown fields); elsewhere anything goes.
    pub fn accepts(&self, name: &str) -> bool {
        match self {
            Shape::Root { crd: Some(s), .. } => {
                matches!(name, "apiVersion" | "kind" | "metadata")
                    || Shape::Crd(Some(s)).accepts(name)
            }
            Shape::Crd(Some(node)) => {
                let flag = |k: &str| node.get(k).and_then(Value::as_bool) == Some(true);
                let embedded = flag("x-kubernetes-embedded-resource")
                    && matches!(name, "apiVersion" | "kind" | "metadata");
                match node.get("properties").and_then(Value::as_object) {
                    Some(properties) => {
                        properties.contains_key(name)
                            || embedded
                            || flag("x-kubernetes-preserve-unknown-fields")
                            || node.get("additionalProperties").is_some_and(|a| a != false)
                    }
                    None => true,
                }
            }
            Shape::Table(table, path) if std::ptr::eq(*table, METADATA) => match path.as_str() {
                "" => OBJECT_META_FIELDS.contains(&name),
                "ownerReferences[]" => OWNER_REFERENCE_FIELDS.contains(&name),
                _ => true,
            },
            _ => true,
        }
    }

    pub fn items(&self) -> Shape<'a> {
        match self {
            Shape::Root { .. } => Shape::Crd(None),
            Shape::Crd(node) => Shape::Crd(node.and_then(|n| n.get("items"))),
            Shape::Table(table, path) => Shape::Table(table, format!("{path}[]")),
        }
    }

    fn rule(&self) -> Option<Rule> {
        match self {
            Shape::Table(table, path) => table.iter().find(|(p, _)| p == path).map(|(_, r)| *r),
            _ => None,
        }
    }

    pub fn list_kind(&self) -> ListKind {
        match self {
            Shape::Crd(Some(node)) => {
                match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("set") => ListKind::Set,
                    Some("map") => {
                        let names = node
                            .get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_else(Vec::new);
                        // A key field's schema default fills it in when an item omits it.
                        let default = |name: &str| {
                            node.get("items")
                                .and_then(|i| i.get("properties"))
                                .and_then(|p| p.get(name))
                                .and_then(|f| f.get("default"))
                                .cloned()
                        };
                        ListKind::Map(
                            names
                                .into_iter()
                                .map(|name| KeyField {
                                    name: name.to_string(),
                                    default: default(name),
                                })
                                .collect(),
                        )
                    }
                    _ => ListKind::Atomic,
                }
            }
            _ => match self.rule() {
                Some(Rule::Keyed { keys, .. }) => ListKind::Map(
                    keys.iter()
                        .map(|k| KeyField {
                            name: k.to_string(),
                            // Every `protocol` key of the kinds served (ports) defaults to TCP.
                            default: (*k == "protocol").then(|| Value::String("TCP".into())),
                        })
                        .collect(),
                ),
                Some(Rule::Set) => ListKind::Set,
                _ => ListKind::Atomic,
            },
        }
    }

    pub fn map_is_atomic(&self) -> bool {
        match self {
            Shape::Crd(Some(node)) => {
                node.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
            }
            _ => matches!(self.rule(), Some(Rule::AtomicMap)),
        }
    }

    /// The strategic-merge merge key of a list of objects (`None`: the list is replaced).
    pub fn patch_merge_key(&self) -> Option<&'static str> {
        match self.rule() {
            Some(Rule::Keyed { merge_key, .. }) => Some(merge_key),
            _ => None,
        }
    }

    /// Whether a list of scalars merges by strategic merge (`patchStrategy: merge`).
    pub fn patch_merges_scalars(&self) -> bool {
        matches!(self.rule(), Some(Rule::Set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key_names(kind: ListKind) -> Vec<String> {
        match kind {
            ListKind::Map(keys) => keys.into_iter().map(|k| k.name).collect(),
            other => panic!("not a list-map: {other:?}"),
        }
    }

    #[test]
    fn table_paths_resolve_through_list_items() {
        let root = Shape::Root {
            crd: None,
            table: DEPLOYMENT,
        };
        let containers = root
            .field("spec")
            .field("template")
            .field("spec")
            .field("containers");
        assert_eq!(key_names(containers.list_kind()), ["name"]);
        let ports = containers.items().field("ports");
        assert_eq!(key_names(ports.list_kind()), ["containerPort", "protocol"]);
        assert_eq!(ports.patch_merge_key(), Some("containerPort"));
        assert_eq!(
            containers.items().field("args").list_kind(),
            ListKind::Atomic
        );
        assert_eq!(
            root.field("metadata").field("finalizers").list_kind(),
            ListKind::Set
        );
        assert!(root.field("spec").field("selector").map_is_atomic());
    }

    #[test]
    fn crd_extensions_decide_for_custom_resources() {
        let schema = json!({"type": "object", "properties": {"status": {"type": "object", "properties": {
            "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set"},
            "plain": {"type": "array"},
            "sel": {"type": "object", "x-kubernetes-map-type": "atomic"}}}}});
        let root = Shape::Root {
            crd: Some(&schema),
            table: &[],
        };
        let status = root.field("status");
        assert_eq!(key_names(status.field("conditions").list_kind()), ["type"]);
        assert_eq!(status.field("tags").list_kind(), ListKind::Set);
        assert_eq!(status.field("plain").list_kind(), ListKind::Atomic);
        assert!(status.field("sel").map_is_atomic());
        assert_eq!(
            key_names(root.field("metadata").field("ownerReferences").list_kind()),
            ["uid"]
        );
    }
}
