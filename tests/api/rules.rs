//! Every CEL rule is where it belongs in the generated CRDs, reads only bounded fields, and no
//! rule was written in a way kube-derive silently drops.

use std::collections::BTreeSet;

use beskar7::api::rules::*;
use serde_json::Value;

use super::support::{PLURALS, collect_rules, node, schema};

/// Where each rule must appear: (CRD plural, schema path, rule, message).
pub fn expected() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let mut e: Vec<(&'static str, String, &'static str, &'static str)> = vec![
        (
            "physicalhosts",
            "spec.bootMACAddress".into(),
            MAC_ADDRESS,
            MAC_ADDRESS_MSG,
        ),
        (
            "physicalhosts",
            "spec.consumerRef".into(),
            CONSUMER_REF_UNCHANGED,
            CONSUMER_REF_UNCHANGED_MSG,
        ),
        (
            "physicalhosts",
            "spec.redfishConnection".into(),
            TLS_EXCLUSIVE,
            TLS_EXCLUSIVE_MSG,
        ),
        (
            "physicalhosts",
            "spec.redfishConnection.address".into(),
            HTTP_URL,
            BMC_ADDRESS_MSG,
        ),
        (
            "physicalhosts",
            "spec.redfishConnection.credentialsSecretRef".into(),
            DNS_SUBDOMAIN,
            SECRET_NAME_MSG,
        ),
        (
            "physicalhosts",
            "spec.redfishConnection.caBundleSecretRef.name".into(),
            DNS_SUBDOMAIN,
            SECRET_NAME_MSG,
        ),
        (
            "physicalhosts",
            "spec.provisioning.providerID".into(),
            PROVIDER_ID_FORMAT,
            PROVIDER_ID_FORMAT_MSG,
        ),
        (
            "physicalhosts",
            "spec.provisioning.bootstrapDataSecretName".into(),
            DNS_SUBDOMAIN,
            SECRET_NAME_MSG,
        ),
        (
            "physicalhosts",
            "spec.provisioning".into(),
            IMAGE_NEEDS_DIGEST,
            IMAGE_NEEDS_DIGEST_MSG,
        ),
    ];
    // The image and hardware fields a machine and a claimed host share.
    let machine_fields = |plural: &'static str, prefix: &str| {
        vec![
            (
                plural,
                format!("{prefix}.inspectionImageURL"),
                HTTP_URL,
                IMAGE_URL_MSG,
            ),
            (
                plural,
                format!("{prefix}.targetImageURL"),
                HTTP_URL,
                IMAGE_URL_MSG,
            ),
            (
                plural,
                format!("{prefix}.configurationURL"),
                HTTP_URL,
                IMAGE_URL_MSG,
            ),
            (
                plural,
                format!("{prefix}.targetImageDigest"),
                SHA256_DIGEST,
                SHA256_DIGEST_MSG,
            ),
            (
                plural,
                format!("{prefix}.staticIP"),
                STATIC_IP,
                STATIC_IP_MSG,
            ),
            (
                plural,
                format!("{prefix}.rootDeviceHints.deviceName"),
                DEVICE_PATH,
                DEVICE_PATH_MSG,
            ),
            (
                plural,
                format!("{prefix}.rootDeviceHints.serialNumber"),
                DISK_ID,
                DISK_ID_MSG,
            ),
            (
                plural,
                format!("{prefix}.rootDeviceHints.wwn"),
                DISK_ID,
                DISK_ID_MSG,
            ),
            (
                plural,
                format!("{prefix}.rootDeviceHints.minSizeGB"),
                AT_LEAST_ONE,
                AT_LEAST_ONE_MSG,
            ),
            (
                plural,
                format!("{prefix}.hardwareRequirements.minCPUCores"),
                AT_LEAST_ONE,
                AT_LEAST_ONE_MSG,
            ),
            (
                plural,
                format!("{prefix}.hardwareRequirements.minMemoryGB"),
                AT_LEAST_ONE,
                AT_LEAST_ONE_MSG,
            ),
            (
                plural,
                format!("{prefix}.hardwareRequirements.minDiskGB"),
                AT_LEAST_ONE,
                AT_LEAST_ONE_MSG,
            ),
        ]
    };
    e.extend(machine_fields("physicalhosts", "spec.provisioning"));
    for (plural, prefix) in [
        ("beskar7machines", "spec"),
        ("beskar7machinetemplates", "spec.template.spec"),
    ] {
        e.extend(machine_fields(plural, prefix));
        e.push((
            plural,
            prefix.into(),
            IMAGE_NEEDS_DIGEST,
            IMAGE_NEEDS_DIGEST_MSG,
        ));
        e.push((
            plural,
            prefix.into(),
            PROVIDER_ID_IMMUTABLE,
            PROVIDER_ID_IMMUTABLE_MSG,
        ));
        e.push((
            plural,
            format!("{prefix}.providerID"),
            PROVIDER_ID_FORMAT,
            PROVIDER_ID_FORMAT_MSG,
        ));
    }
    e
}

#[test]
fn every_rule_is_in_the_generated_crds_exactly_where_expected() {
    let expected: BTreeSet<(String, String, String, String)> = expected()
        .into_iter()
        .map(|(p, path, r, m)| (p.to_owned(), path, r.to_owned(), m.to_owned()))
        .collect();
    let mut found = BTreeSet::new();
    for plural in PLURALS {
        for (path, rule, message) in collect_rules(&schema(plural)) {
            assert!(
                found.insert((plural.to_owned(), path.clone(), rule.clone(), message)),
                "{plural}: rule {rule:?} appears twice at {path}"
            );
        }
    }
    let missing: Vec<_> = expected.difference(&found).collect();
    let unexpected: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty(),
        "rules missing from the generated CRDs (dropped by kube-derive?): {missing:#?}"
    );
    assert!(
        unexpected.is_empty(),
        "rules in the CRDs that no test expects; add them to tests/api/rules.rs and test them: {unexpected:#?}"
    );
}

#[test]
fn every_rule_constant_is_used_and_every_rule_has_a_message() {
    let crds = serde_json::to_string(&beskar7::api::crds()).unwrap();
    for rule in ALL {
        let quoted = serde_json::to_string(rule).unwrap();
        assert!(crds.contains(&quoted), "rule {rule:?} is in no CRD");
    }
    for plural in PLURALS {
        for (path, rule, message) in collect_rules(&schema(plural)) {
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{plural} {path}: rule {rule:?} needs a one-line message"
            );
        }
    }
}

/// The fields a rule reads: `self` itself (compared, or a method called on it), or
/// `self.<field>` / `oldSelf.<field>`.
fn fields_read(rule: &str) -> (bool, BTreeSet<String>) {
    let mut whole = false;
    let mut fields = BTreeSet::new();
    let bytes = rule.as_bytes();
    for var in ["self", "oldSelf"] {
        let mut from = 0;
        while let Some(i) = rule[from..].find(var) {
            let start = from + i;
            let end = start + var.len();
            from = end;
            let before_ok = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric());
            let after_ok = end == rule.len() || !(bytes[end].is_ascii_alphanumeric());
            if !before_ok || !after_ok {
                continue;
            }
            if bytes.get(end) == Some(&b'.') {
                let ident: String = rule[end + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let next = rule[end + 1 + ident.len()..].chars().next();
                if next == Some('(') {
                    whole = true; // a method on self, e.g. self.matches(..)
                } else {
                    fields.insert(ident);
                }
            } else {
                whole = true;
            }
        }
    }
    (whole, fields)
}

/// Whether every string and list under a schema node has a maxLength / maxItems.
fn unbounded(n: &Value, path: &str) -> Vec<String> {
    match n["type"].as_str() {
        Some("string") if n["maxLength"].is_null() => vec![format!("{path} has no maxLength")],
        Some("array") => {
            let mut v = unbounded(&n["items"], &format!("{path}[]"));
            if n["maxItems"].is_null() {
                v.push(format!("{path} has no maxItems"));
            }
            v
        }
        Some("object") => {
            let mut v: Vec<String> = n["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(k, p)| unbounded(p, &format!("{path}.{k}")))
                .collect();
            if n["additionalProperties"].is_object() {
                if n["maxProperties"].is_null() {
                    v.push(format!("{path} has no maxProperties"));
                }
                v.extend(unbounded(
                    &n["additionalProperties"],
                    &format!("{path}{{}}"),
                ));
            }
            v
        }
        _ => vec![],
    }
}

#[test]
fn every_field_a_rule_reads_is_bounded() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for plural in PLURALS {
        let schema = schema(plural);
        for (path, rule, _) in collect_rules(&schema) {
            let at = node(&schema, &path);
            let (whole, fields) = fields_read(&rule);
            if whole {
                problems.extend(unbounded(at, &path));
                checked += 1;
            }
            for f in fields {
                let field = &at["properties"][&f];
                assert!(
                    !field.is_null(),
                    "{plural} {path}: rule {rule:?} reads unknown field {f}"
                );
                problems.extend(unbounded(field, &format!("{path}.{f}")));
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "the rule parser found only {checked} reads");
    assert!(
        problems.is_empty(),
        "unbounded fields read by CEL rules: {problems:#?}"
    );
}

#[test]
fn the_rule_parser_sees_what_rules_read() {
    assert_eq!(fields_read("self >= 1"), (true, BTreeSet::new()));
    assert_eq!(fields_read("self.matches('x')"), (true, BTreeSet::new()));
    let (whole, fields) = fields_read(PROVIDER_ID_IMMUTABLE);
    assert!(!whole);
    assert_eq!(fields, BTreeSet::from(["providerID".to_owned()]));
    let (whole, fields) = fields_read(TLS_EXCLUSIVE);
    assert!(!whole);
    assert_eq!(
        fields,
        BTreeSet::from([
            "caBundleSecretRef".to_owned(),
            "insecureSkipVerify".to_owned()
        ])
    );
}

#[test]
fn no_schema_uses_pattern_so_every_format_rule_has_a_readable_message() {
    for plural in PLURALS {
        let text = serde_json::to_string(&schema(plural)).unwrap();
        assert!(
            !text.contains("\"pattern\""),
            "{plural}: use a CEL rule with a message instead of a schema pattern"
        );
    }
}

#[test]
fn no_rule_is_written_in_a_form_kube_derive_drops() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        files += 1;
        for bad in ["#[validate(", "#[schemars(pattern", "regex(pattern"] {
            assert!(
                !text.contains(bad),
                "{}: `{bad}` is silently dropped or bypasses the messages; use #[x_kube(validation = Rule::new(..).message(..))]",
                path.display()
            );
        }
    }
    assert!(files >= 6);
}
