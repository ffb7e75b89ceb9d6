//! `/version` and legacy discovery (`/api`, `/apis`, `/api/v1`, `/apis/{g}/{v}`), generated from
//! the served types so new CRDs appear at once.

use super::resources::{Registry, ResourceType};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn version(minor: u32) -> Value {
    json!({
        "major": "1",
        "minor": minor.to_string(),
        "gitVersion": format!("v1.{minor}.0"),
        "gitCommit": "beskar7-sim",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Group name → its served versions, preferred first.
fn groups(registry: &Registry) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rt in registry.all().filter(|rt| !rt.group.is_empty()) {
        let versions = groups.entry(rt.group.clone()).or_default();
        for v in &rt.versions {
            if !versions.contains(v) {
                versions.push(v.clone());
            }
        }
    }
    groups
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": entries, "preferredVersion": entries[0]})
}

pub fn group_list(registry: &Registry) -> Value {
    let list: Vec<Value> = groups(registry)
        .iter()
        .map(|(name, versions)| group_json(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list})
}

pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let groups = groups(registry);
    let versions = groups.get(name)?;
    let mut g = group_json(name, versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut types: Vec<&std::sync::Arc<ResourceType>> = registry
        .all()
        .filter(|rt| rt.group == group && rt.serves(version))
        .collect();
    if types.is_empty() {
        return None;
    }
    types.sort_by(|a, b| a.plural.cmp(&b.plural));
    let mut resources = Vec::new();
    for rt in types {
        let mut entry = json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        });
        if !rt.short_names.is_empty() {
            entry["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            entry["categories"] = json!(rt.categories);
        }
        resources.push(entry);
        if rt.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// Which discovery document a client asked for with its Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryFormat {
    /// `APIVersions` / `APIGroupList`: plain `application/json` (and no Accept at all).
    Legacy,
    /// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
    AggregatedV2,
    /// `apidiscovery.k8s.io/v2beta1`: the only aggregated form kubectl 1.27 understands; answering
    /// it with v2 makes it fail to find resources, so the version must match exactly.
    AggregatedV2Beta1,
}

impl DiscoveryFormat {
    /// The first acceptable format in the client's order of preference, as the real server
    /// negotiates; `None` when nothing in the Accept header can be served (406).
    pub fn negotiate(accept: Option<&str>) -> Option<Self> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Some(DiscoveryFormat::Legacy);
        };
        super::media::ranges(accept).find_map(|range| {
            if range.param("as") == Some("APIGroupDiscoveryList")
                && range.param("g") == Some("apidiscovery.k8s.io")
                && range.is_json()
            {
                return match range.param("v") {
                    Some("v2") => Some(DiscoveryFormat::AggregatedV2),
                    Some("v2beta1") => Some(DiscoveryFormat::AggregatedV2Beta1),
                    _ => None,
                };
            }
            (range.param("as").is_none() && range.accepts_json()).then_some(DiscoveryFormat::Legacy)
        })
    }

    /// The Content-Type of an aggregated answer, which clients check before decoding it.
    pub fn content_type(self) -> &'static str {
        match self {
            DiscoveryFormat::Legacy => "application/json",
            DiscoveryFormat::AggregatedV2 => {
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            }
            DiscoveryFormat::AggregatedV2Beta1 => {
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            }
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            DiscoveryFormat::AggregatedV2Beta1 => "apidiscovery.k8s.io/v2beta1",
            _ => "apidiscovery.k8s.io/v2",
        }
    }
}

/// The discovery document of `/api` (`core`) or `/apis` in the form the Accept header asks for,
/// and its Content-Type. Clients that list no form the server produces get the legacy one,
/// which every client also decodes, rather than a 406.
pub fn negotiated(
    registry: &Registry,
    core: bool,
    accept: Option<&str>,
    host: &str,
) -> (Value, &'static str) {
    let format = DiscoveryFormat::negotiate(accept).unwrap_or(DiscoveryFormat::Legacy);
    let body = match (format, core) {
        (DiscoveryFormat::Legacy, true) => core_versions(host),
        (DiscoveryFormat::Legacy, false) => group_list(registry),
        (aggregated, core) => self::aggregated(registry, core, aggregated),
    };
    (body, format.content_type())
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One `APIResourceDiscovery`: everything kubectl needs to map a name or short name to a
/// resource, without per-group-version requests.
fn resource_discovery(rt: &ResourceType, version: &str) -> Value {
    let response_kind = json!({"group": rt.group, "version": version, "kind": rt.kind});
    let mut entry = json!({
        "resource": rt.plural,
        "responseKind": response_kind,
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": VERBS,
    });
    if !rt.short_names.is_empty() {
        entry["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        entry["categories"] = json!(rt.categories);
    }
    if rt.status_subresource {
        entry["subresources"] = json!([{
            "subresource": "status",
            "responseKind": response_kind,
            "verbs": ["get", "patch", "update"],
        }]);
    }
    entry
}

/// The `APIGroupDiscoveryList` of `/api` (`core == true`, the legacy group) or `/apis`.
pub fn aggregated(registry: &Registry, core: bool, format: DiscoveryFormat) -> Value {
    // group → version → resources; versions kept in preference order.
    let mut groups: BTreeMap<&str, Vec<(&str, Vec<Value>)>> = BTreeMap::new();
    let mut types: Vec<&std::sync::Arc<ResourceType>> = registry
        .all()
        .filter(|rt| rt.group.is_empty() == core)
        .collect();
    types.sort_by(|a, b| a.plural.cmp(&b.plural));
    for rt in types {
        let versions = groups.entry(rt.group.as_str()).or_default();
        for version in &rt.versions {
            let at = match versions.iter().position(|(v, _)| v == version) {
                Some(at) => at,
                None => {
                    versions.push((version.as_str(), Vec::new()));
                    versions.len() - 1
                }
            };
            versions[at].1.push(resource_discovery(rt, version));
        }
    }
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|(version, resources)| {
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if core {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": group, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format.api_version(),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_follows_the_clients_order() {
        let v2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
        let v2beta1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
        // kubectl 1.33
        let both = format!("{v2},{v2beta1},application/json");
        assert_eq!(
            DiscoveryFormat::negotiate(Some(&both)),
            Some(DiscoveryFormat::AggregatedV2)
        );
        // kubectl 1.27 asks for v2beta1 only and must not get v2.
        let old = format!("{v2beta1},application/json");
        assert_eq!(
            DiscoveryFormat::negotiate(Some(&old)),
            Some(DiscoveryFormat::AggregatedV2Beta1)
        );
        for legacy in [None, Some("application/json, */*"), Some("*/*")] {
            assert_eq!(
                DiscoveryFormat::negotiate(legacy),
                Some(DiscoveryFormat::Legacy)
            );
        }
        assert_eq!(
            DiscoveryFormat::negotiate(Some("application/vnd.kubernetes.protobuf")),
            None
        );
    }

    #[test]
    fn aggregated_lists_resources_with_short_names_and_status() {
        let registry = Registry::with_built_ins();
        let core = aggregated(&registry, true, DiscoveryFormat::AggregatedV2);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        let resources = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap();
        let ns = resources
            .iter()
            .find(|r| r["resource"] == "namespaces")
            .unwrap();
        assert_eq!(ns["scope"], "Cluster");
        assert_eq!(ns["shortNames"], json!(["ns"]));
        assert_eq!(ns["subresources"][0]["subresource"], "status");
        let groups = aggregated(&registry, false, DiscoveryFormat::AggregatedV2Beta1);
        assert_eq!(groups["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert!(
            groups["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["metadata"]["name"] == "apps")
        );
    }
}
