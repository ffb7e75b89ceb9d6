//! What the server serves: one `ResourceType` per group/resource, built-in or from a CRD.

use super::error::Cause;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A group and a resource plural: the identity of a stored collection, whatever version serves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

/// How an object's `metadata.name` is validated; built-in kinds differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: most kinds.
    DnsSubdomain,
    /// RFC 1123 label: namespaces, services.
    DnsLabel,
    /// Any path segment: RBAC objects (`system:controller:...`).
    PathSegment,
}

/// The entry of a CRD's `spec.versions` named `version`.
pub fn crd_version<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
}

#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    /// Served versions; the first is the preferred one.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// With a `/status` subresource, `.status` is written only there and `.spec` only elsewhere.
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained (custom resources and spec-bearing built-ins).
    pub tracks_generation: bool,
    /// Custom resources: strategic merge patch is refused.
    pub custom: bool,
    /// PUT without `metadata.resourceVersion` is refused (422): custom resources and Leases.
    pub requires_resource_version: bool,
    /// PUT of a missing object creates it (Leases only, among the kinds served).
    pub create_on_update: bool,
    pub name_rule: NameRule,
    /// Field-selector paths beyond `metadata.name` and `metadata.namespace`.
    pub selectable_fields: Vec<String>,
    /// The defining CRD, for custom resources.
    pub crd: Option<Arc<Value>>,
    /// A second view of another type's objects (events.k8s.io Events over core Events): stored
    /// there, converted on the way in and out.
    pub view_of: Option<GroupResource>,
}

impl ResourceType {
    /// The collection the objects live in: its own, or the one it is a view of.
    pub fn group_resource(&self) -> GroupResource {
        self.view_of.clone().unwrap_or_else(|| self.served_as())
    }

    /// The group/resource clients address.
    pub fn served_as(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn preferred_version(&self) -> &str {
        &self.versions[0]
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    pub fn supports_field(&self, field: &str) -> bool {
        matches!(field, "metadata.name" | "metadata.namespace")
            || self.selectable_fields.iter().any(|f| f == field)
    }
}

struct BuiltIn {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    status: bool,
    generation: bool,
    name_rule: NameRule,
    fields: &'static [&'static str],
    categories: &'static [&'static str],
    /// `AllowUnconditionalUpdate() == false` and `AllowCreateOnUpdate() == true` in the real
    /// strategy: both true of Lease alone here.
    lease_like: bool,
    view_of: Option<(&'static str, &'static str)>,
}

const fn builtin(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
) -> BuiltIn {
    BuiltIn {
        group,
        version,
        plural,
        kind,
        short_names: &[],
        namespaced: true,
        status: false,
        generation: false,
        name_rule: NameRule::DnsSubdomain,
        fields: &[],
        categories: &[],
        lease_like: false,
        view_of: None,
    }
}

/// The built-in kinds served. Field selectors are the ones the real server supports for each.
const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        short_names: &["ns"],
        namespaced: false,
        status: true,
        name_rule: NameRule::DnsLabel,
        fields: &["status.phase"],
        ..builtin("", "v1", "namespaces", "Namespace")
    },
    BuiltIn {
        fields: &["type"],
        ..builtin("", "v1", "secrets", "Secret")
    },
    BuiltIn {
        short_names: &["cm"],
        ..builtin("", "v1", "configmaps", "ConfigMap")
    },
    BuiltIn {
        short_names: &["sa"],
        ..builtin("", "v1", "serviceaccounts", "ServiceAccount")
    },
    BuiltIn {
        short_names: &["svc"],
        status: true,
        name_rule: NameRule::DnsLabel,
        fields: &["spec.clusterIP", "spec.type"],
        categories: &["all"],
        ..builtin("", "v1", "services", "Service")
    },
    BuiltIn {
        short_names: &["no"],
        namespaced: false,
        status: true,
        fields: &["spec.unschedulable"],
        ..builtin("", "v1", "nodes", "Node")
    },
    BuiltIn {
        short_names: &["ev"],
        fields: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ..builtin("", "v1", "events", "Event")
    },
    BuiltIn {
        short_names: &["ev"],
        view_of: Some(("", "events")),
        fields: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "reason",
            "reportingComponent",
            "type",
        ],
        ..builtin("events.k8s.io", "v1", "events", "Event")
    },
    BuiltIn {
        short_names: &["deploy"],
        status: true,
        generation: true,
        categories: &["all"],
        ..builtin("apps", "v1", "deployments", "Deployment")
    },
    BuiltIn {
        lease_like: true,
        ..builtin("coordination.k8s.io", "v1", "leases", "Lease")
    },
    BuiltIn {
        name_rule: NameRule::PathSegment,
        ..builtin("rbac.authorization.k8s.io", "v1", "roles", "Role")
    },
    BuiltIn {
        name_rule: NameRule::PathSegment,
        ..builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
        )
    },
    BuiltIn {
        namespaced: false,
        name_rule: NameRule::PathSegment,
        ..builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
        )
    },
    BuiltIn {
        namespaced: false,
        name_rule: NameRule::PathSegment,
        ..builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
        )
    },
    BuiltIn {
        short_names: &["netpol"],
        generation: true,
        ..builtin(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
        )
    },
    BuiltIn {
        short_names: &["crd", "crds"],
        namespaced: false,
        status: true,
        generation: true,
        ..builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
        )
    },
];

pub const CRDS: (&str, &str) = ("apiextensions.k8s.io", "customresourcedefinitions");
pub const NAMESPACES: (&str, &str) = ("", "namespaces");

/// The served resource types, keyed by group/resource.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: HashMap<GroupResource, Arc<ResourceType>>,
}

impl Registry {
    pub fn with_built_ins() -> Self {
        let mut registry = Registry::default();
        for b in BUILT_INS {
            let rt = ResourceType {
                group: b.group.to_string(),
                versions: vec![b.version.to_string()],
                plural: b.plural.to_string(),
                singular: b.kind.to_lowercase(),
                kind: b.kind.to_string(),
                list_kind: format!("{}List", b.kind),
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories: b.categories.iter().map(|s| s.to_string()).collect(),
                namespaced: b.namespaced,
                status_subresource: b.status,
                tracks_generation: b.generation,
                custom: false,
                requires_resource_version: b.lease_like,
                create_on_update: b.lease_like,
                name_rule: b.name_rule,
                selectable_fields: b.fields.iter().map(|s| s.to_string()).collect(),
                crd: None,
                view_of: b.view_of.map(|(g, r)| GroupResource::new(g, r)),
            };
            registry.types.insert(rt.served_as(), Arc::new(rt));
        }
        registry
    }

    /// The type serving `group/version` `resource`, if any.
    pub fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&GroupResource::new(group, resource))
            .filter(|rt| rt.serves(version))
            .cloned()
    }

    pub fn get(&self, gr: &GroupResource) -> Option<Arc<ResourceType>> {
        self.types.get(gr).cloned()
    }

    pub fn insert(&mut self, rt: ResourceType) {
        self.types.insert(rt.served_as(), Arc::new(rt));
    }

    pub fn remove(&mut self, gr: &GroupResource) {
        self.types.remove(gr);
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }
}

/// Builds the served type of a CRD, or the 422 causes that make the CRD invalid.
pub fn resource_type_from_crd(crd: &Value) -> Result<ResourceType, Vec<Cause>> {
    let mut causes = Vec::new();
    let required = |path: &str, causes: &mut Vec<Cause>| -> String {
        let value = pointer_str(crd, path);
        if value.is_empty() {
            causes.push(Cause {
                reason: "FieldValueRequired",
                field: path.trim_start_matches('/').replace('/', "."),
                message: "Required value".into(),
            });
        }
        value
    };
    let group = required("/spec/group", &mut causes);
    let plural = required("/spec/names/plural", &mut causes);
    let kind = required("/spec/names/kind", &mut causes);
    let scope = required("/spec/scope", &mut causes);
    if !scope.is_empty() && scope != "Namespaced" && scope != "Cluster" {
        causes.push(Cause {
            reason: "FieldValueNotSupported",
            field: "spec.scope".into(),
            message: format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        });
    }
    let name = pointer_str(crd, "/metadata/name");
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            field: "metadata.name".into(),
            message: format!(
                "Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
            ),
        });
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired",
            field: "spec.versions".into(),
            message: "Invalid value: []: must have exactly one version marked as storage version"
                .into(),
        });
    } else if versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count()
        != 1
    {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            field: "spec.versions".into(),
            message: "Invalid value: must have exactly one version marked as storage version"
                .into(),
        });
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    let served: Vec<&Value> = versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .collect();
    // The preferred version is the storage version when served, else the first served one.
    let mut served_names: Vec<String> = served
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    if let Some(storage) = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        && let Some(storage_name) = storage.get("name").and_then(Value::as_str)
        && let Some(pos) = served_names.iter().position(|n| n == storage_name)
    {
        let preferred = served_names.remove(pos);
        served_names.insert(0, preferred);
    }
    let status_subresource = served
        .iter()
        .any(|v| v.pointer("/subresources/status").is_some());
    let selectable_fields = served
        .iter()
        .flat_map(|v| {
            v.get("selectableFields")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| {
            f.get("jsonPath")
                .and_then(Value::as_str)
                .map(|p| p.trim_start_matches('.').to_string())
        })
        .collect();
    let strings = |path: &str| -> Vec<String> {
        crd.pointer(path)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let singular = pointer_str(crd, "/spec/names/singular");
    let list_kind = pointer_str(crd, "/spec/names/listKind");
    Ok(ResourceType {
        group,
        versions: served_names,
        singular: if singular.is_empty() {
            kind.to_lowercase()
        } else {
            singular
        },
        list_kind: if list_kind.is_empty() {
            format!("{kind}List")
        } else {
            list_kind
        },
        plural,
        kind,
        short_names: strings("/spec/names/shortNames"),
        categories: strings("/spec/names/categories"),
        namespaced: scope == "Namespaced",
        status_subresource,
        tracks_generation: true,
        custom: true,
        requires_resource_version: true,
        create_on_update: false,
        name_rule: NameRule::DnsSubdomain,
        selectable_fields,
        crd: Some(Arc::new(crd.clone())),
        view_of: None,
    })
}

fn pointer_str(v: &Value, path: &str) -> String {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Validates `metadata.name` by the kind's rule; the message is the real server's.
pub fn validate_name(rule: NameRule, name: &str) -> Result<(), String> {
    let ok = match rule {
        NameRule::DnsSubdomain => is_dns_subdomain(name),
        NameRule::DnsLabel => is_dns_label(name),
        NameRule::PathSegment => {
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
        }
    };
    if ok {
        return Ok(());
    }
    Err(match rule {
        NameRule::DnsSubdomain => format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ),
        NameRule::DnsLabel => format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ),
        NameRule::PathSegment => format!(
            "Invalid value: \"{name}\": may not be '.' or '..' and may not contain '/' or '%'"
        ),
    })
}

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_becomes_a_served_type_with_storage_version_preferred() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "selectableFields": [{"jsonPath": ".spec.color"}]},
                    {"name": "v0", "served": false, "storage": false}
                ]}
        });
        let rt = resource_type_from_crd(&crd).unwrap();
        assert_eq!(rt.versions, vec!["v1", "v1alpha1"]);
        assert!(rt.status_subresource && rt.namespaced && rt.custom);
        assert_eq!(rt.list_kind, "WidgetList");
        assert!(rt.supports_field("spec.color") && !rt.supports_field("spec.size"));
    }

    #[test]
    fn invalid_crd_names_each_problem() {
        let crd = json!({"metadata": {"name": "wrong"}, "spec": {"group": "example.com", "scope": "Global",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": []}});
        let fields: Vec<String> = resource_type_from_crd(&crd)
            .unwrap_err()
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, vec!["spec.scope", "metadata.name", "spec.versions"]);
    }

    #[test]
    fn name_rules() {
        assert!(validate_name(NameRule::DnsSubdomain, "server-01.rack-a").is_ok());
        assert!(validate_name(NameRule::DnsSubdomain, "Server").is_err());
        assert!(validate_name(NameRule::DnsLabel, "a.b").is_err());
        assert!(validate_name(NameRule::PathSegment, "system:controller:x").is_ok());
        assert!(validate_name(NameRule::PathSegment, "a/b").is_err());
    }
}
