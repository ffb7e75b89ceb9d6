//! Host selection, pure: which hosts of the namespace this machine may claim, in which order,
//! and (when none) a message saying why each host was passed over.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::api::physical_host::{HostState, PhysicalHost};
use crate::api::{HardwareRequirements, RejectedHost, ZONE_LABEL};

/// What the machine asks of a host.
pub struct Request<'a> {
    pub selector: Option<&'a LabelSelector>,
    /// `Machine.spec.failureDomain`: the host's zone label must equal it.
    pub failure_domain: Option<&'a str>,
    pub requirements: Option<&'a HardwareRequirements>,
    /// Hosts an attempt for this machine already failed on.
    pub rejected: &'a [RejectedHost],
}

/// Why a host was passed over: a category (counted in the message) and a detail.
#[derive(Debug, PartialEq, Eq)]
pub struct Skip {
    pub category: &'static str,
    pub detail: String,
}

fn skip(category: &'static str, detail: impl Into<String>) -> Skip {
    Skip {
        category,
        detail: detail.into(),
    }
}

/// An invalid hostSelector (an unknown operator, In without values): nothing can match.
pub fn parse_selector(s: Option<&LabelSelector>) -> Result<Option<Selector>, String> {
    s.cloned()
        .map(Selector::try_from)
        .transpose()
        .map_err(|e| format!("invalid hostSelector: {e}"))
}

/// Whether `host` may be claimed for `req`; the selector is parsed once by the caller.
pub fn judge(host: &PhysicalHost, req: &Request, selector: Option<&Selector>) -> Result<(), Skip> {
    let name = host.name_any();
    if host.spec.consumer_ref.is_some() {
        return Err(skip("claimed", name));
    }
    if host.metadata.deletion_timestamp.is_some() {
        return Err(skip("being deleted", name));
    }
    if req.rejected.iter().any(|r| r.name == name) {
        return Err(skip("failed an earlier attempt for this machine", name));
    }
    let labels = host.labels();
    if let Some(sel) = selector
        && !sel.matches(labels)
    {
        return Err(skip("not matching hostSelector", name));
    }
    if let Some(fd) = req.failure_domain
        && labels.get(ZONE_LABEL).map(String::as_str) != Some(fd)
    {
        return Err(skip(
            "not in the Machine's failure domain",
            format!("{name} (zone {})", zone_of(labels)),
        ));
    }
    match host.state() {
        Some(HostState::Available) => {}
        other => {
            let state = other
                .map(crate::controllers::physical_host::conditions::state_name)
                .unwrap_or("new");
            return Err(skip("not Available", format!("{name} ({state})")));
        }
    }
    let macs_known = host.spec.boot_mac_address.is_some()
        || host
            .status
            .as_ref()
            .is_some_and(|s| !s.mac_addresses.is_empty());
    if !macs_known {
        return Err(skip("without a known boot MAC", name));
    }
    let short = shortfalls(host, req.requirements);
    if !short.is_empty() {
        return Err(skip(
            "below hardwareRequirements",
            format!("{name}: {}", short.join(", ")),
        ));
    }
    Ok(())
}

fn zone_of(labels: &BTreeMap<String, String>) -> &str {
    labels.get(ZONE_LABEL).map(String::as_str).unwrap_or("none")
}

/// What the host is known to lack. Unknown figures never disqualify (the agent's report
/// decides); the inspection report, when there is one, is preferred over the BMC's inventory.
pub fn shortfalls(host: &PhysicalHost, req: Option<&HardwareRequirements>) -> Vec<String> {
    let Some(req) = req else {
        return Vec::new();
    };
    let status = host.status.as_ref();
    let inspection = status.and_then(|s| s.inspection.as_ref());
    let details = status.and_then(|s| s.hardware_details.as_ref());
    let cores = inspection
        .and_then(|i| i.cpu_cores)
        .or(details.and_then(|d| d.cpu_cores));
    let memory_mib = inspection
        .and_then(|i| i.memory_mib)
        .or(details.and_then(|d| d.memory_mib));
    let disk_gb = inspection.and_then(|i| i.disk_gb);
    let mut out = Vec::new();
    if let (Some(min), Some(have)) = (req.min_cpu_cores, cores)
        && have < min
    {
        out.push(format!("{have} CPU cores < {min}"));
    }
    if let (Some(min), Some(mib)) = (req.min_memory_gb, memory_mib)
        && mib / 1024 < i64::from(min)
    {
        out.push(format!("{} GB memory < {min}", mib / 1024));
    }
    if let (Some(min), Some(have)) = (req.min_disk_gb, disk_gb)
        && have < i64::from(min)
    {
        out.push(format!("{have} GB disk < {min}"));
    }
    out
}

/// The hosts `req` may claim, in the order to try them (by name, rotated by the machine's name
/// so machines racing for the same pool start at different hosts), or why there are none.
pub fn candidates<'a>(
    hosts: &'a [PhysicalHost],
    req: &Request,
    machine: &str,
) -> Result<Vec<&'a PhysicalHost>, String> {
    let selector = parse_selector(req.selector)?;
    let mut fits = Vec::new();
    let mut skipped: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for h in hosts {
        match judge(h, req, selector.as_ref()) {
            Ok(()) => fits.push(h),
            Err(s) => skipped.entry(s.category).or_default().push(s.detail),
        }
    }
    if fits.is_empty() {
        return Err(no_host_message(hosts.len(), &skipped));
    }
    fits.sort_by_key(|h| h.name_any());
    let mut hasher = std::hash::DefaultHasher::new();
    machine.hash(&mut hasher);
    let start = (hasher.finish() % fits.len() as u64) as usize;
    fits.rotate_left(start);
    Ok(fits)
}

fn no_host_message(total: usize, skipped: &BTreeMap<&'static str, Vec<String>>) -> String {
    if total == 0 {
        return "no host fits: there is no PhysicalHost in the namespace".into();
    }
    let parts: Vec<String> = skipped
        .iter()
        .map(|(category, details)| {
            let shown: Vec<&str> = details.iter().take(3).map(String::as_str).collect();
            let more = if details.len() > 3 { ", ..." } else { "" };
            format!("{} {category} ({}{more})", details.len(), shown.join("; "))
        })
        .collect();
    format!(
        "no host fits: {total} PhysicalHost(s) in the namespace: {}",
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host(name: &str, labels: serde_json::Value, status: serde_json::Value) -> PhysicalHost {
        serde_json::from_value(json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "PhysicalHost",
            "metadata": {"name": name, "labels": labels},
            "spec": {"redfishConnection": {"address": "http://b", "credentialsSecretRef": "c"}},
            "status": status,
        }))
        .unwrap()
    }

    fn available(cores: i32, mib: i64) -> serde_json::Value {
        json!({"state": "Available", "macAddresses": ["52:54:00:00:00:01"],
               "hardwareDetails": {"cpuCores": cores, "memoryMiB": mib}})
    }

    fn req<'a>(r: Option<&'a HardwareRequirements>, fd: Option<&'a str>) -> Request<'a> {
        Request {
            selector: None,
            failure_domain: fd,
            requirements: r,
            rejected: &[],
        }
    }

    #[test]
    fn small_hosts_zones_and_unknown_macs_are_skipped_with_reasons() {
        let hosts = vec![
            host("small", json!({ZONE_LABEL: "a"}), available(4, 8192)),
            host(
                "nomac",
                json!({ZONE_LABEL: "a"}),
                json!({"state": "Available"}),
            ),
            host("zone-b", json!({ZONE_LABEL: "b"}), available(16, 65536)),
            host("big", json!({ZONE_LABEL: "a"}), available(16, 65536)),
            host("enrolling", json!({}), json!({"state": "Enrolling"})),
        ];
        let r = HardwareRequirements {
            min_cpu_cores: Some(8),
            min_memory_gb: Some(16),
            min_disk_gb: None,
        };
        let got = candidates(&hosts, &req(Some(&r), Some("a")), "m").unwrap();
        assert_eq!(
            got.iter().map(|h| h.name_any()).collect::<Vec<_>>(),
            ["big"]
        );
        let none = candidates(&hosts[..3], &req(Some(&r), Some("a")), "m").unwrap_err();
        assert!(none.contains("4 CPU cores < 8"), "{none}");
        assert!(none.contains("8 GB memory < 16"), "{none}");
        assert!(none.contains("without a known boot MAC (nomac)"), "{none}");
        assert!(none.contains("zone-b (zone b)"), "{none}");
    }

    #[test]
    fn unknown_hardware_does_not_disqualify() {
        let h = host(
            "h",
            json!({}),
            json!({"state": "Available", "macAddresses": ["x"]}),
        );
        let r = HardwareRequirements {
            min_cpu_cores: Some(64),
            ..Default::default()
        };
        assert!(shortfalls(&h, Some(&r)).is_empty());
    }

    #[test]
    fn selector_expressions_and_rejections_apply() {
        let hosts = vec![
            host("gpu", json!({"gpu": "yes"}), available(8, 8192)),
            host("plain", json!({}), available(8, 8192)),
        ];
        let sel: LabelSelector = serde_json::from_value(
            json!({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}),
        )
        .unwrap();
        let mut r = req(None, None);
        r.selector = Some(&sel);
        let got = candidates(&hosts, &r, "m").unwrap();
        assert_eq!(got[0].name_any(), "gpu");
        let rejected = [RejectedHost {
            name: "gpu".into(),
            reason: "RequirementsNotMet".into(),
            message: None,
        }];
        r.rejected = &rejected;
        let none = candidates(&hosts, &r, "m").unwrap_err();
        assert!(none.contains("failed an earlier attempt"), "{none}");
    }
}
