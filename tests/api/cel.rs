//! Each rule accepts valid values and rejects bad ones with its message, evaluated by kube's
//! client-side CEL (the same rules the API server runs), transition rules with an old object.

use beskar7::api::rules::*;
use beskar7::api::{Beskar7Machine, PhysicalHost};
use serde_json::{Value, json};

use super::rules::expected;
use super::support::{
    apiserver_errors, full_cluster, full_host, full_machine, full_template, remove, set,
};

fn base(plural: &str) -> Value {
    match plural {
        "physicalhosts" => full_host(),
        "beskar7machines" => full_machine(),
        "beskar7machinetemplates" => full_template(),
        "beskar7clusters" => full_cluster(),
        other => panic!("no base object for {other}"),
    }
}

/// Values each single-field rule must accept and reject.
fn samples(rule: &str) -> Option<(Vec<Value>, Vec<Value>)> {
    let s = |v: &[&str]| v.iter().map(|s| json!(s)).collect::<Vec<_>>();
    Some(match rule {
        HTTP_URL => (
            s(&[
                "https://192.168.1.100",
                "http://boot-server/beskar7-inspector/boot",
                "https://bmc-01.example.com:8443/redfish/v1",
                "https://[fd00::10]:443/",
            ]),
            s(&[
                "",
                "192.168.1.100",
                "ftp://192.168.1.100/",
                "https://",
                "https://:443/",
                "https://boot server/x",
                "http://boot-server/a b",
                "/redfish/v1",
                "file:///etc/passwd",
            ]),
        ),
        DNS_SUBDOMAIN => (
            s(&["bmc-credentials", "a", "bmc.credentials-01", "0abc"]),
            s(&[
                "",
                "BMC",
                "bmc_credentials",
                "-bmc",
                "bmc-",
                "bmc..x",
                "bmc credentials",
            ]),
        ),
        SHA256_DIGEST => (
            s(&[&format!("sha256:{}", "0123456789abcdef".repeat(4))]),
            s(&[
                "",
                &"0123456789abcdef".repeat(4),
                &format!("sha256:{}", "0123456789abcdef".repeat(4).to_uppercase()),
                &format!("sha256:{}", &"0123456789abcdef".repeat(4)[1..]),
                &format!("sha512:{}", "0123456789abcdef".repeat(4)),
                &format!("sha256:{}g", &"0123456789abcdef".repeat(4)[1..]),
            ]),
        ),
        AT_LEAST_ONE => (vec![json!(1), json!(4096)], vec![json!(0), json!(-4)]),
        MAC_ADDRESS => (
            s(&["52:54:00:12:34:56", "AA:bb:CC:dd:EE:ff"]),
            s(&[
                "",
                "52-54-00-12-34-56",
                "52:54:00:12:34",
                "zz:54:00:12:34:56",
                "525400123456",
            ]),
        ),
        STATIC_IP => (
            s(&[
                "192.168.150.10::192.168.150.1:255.255.255.0",
                "10.0.0.5:::24",
                "10.0.0.5:::24:8.8.8.8",
            ]),
            s(&[
                "",
                "10.0.0.5",
                "10.0.0.5/24",
                "10.0.0.5::10.0.0.1",
                "10.0.0.5:::24 init=/bin/sh",
                "fd00::5:::64",
            ]),
        ),
        DEVICE_PATH => (
            s(&[
                "/dev/sda",
                "/dev/nvme0n1",
                "/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
            ]),
            s(&[
                "",
                "sda",
                "/dev/",
                "/dev/sd a",
                "/dev/sda;reboot",
                "/tmp/disk",
            ]),
        ),
        DISK_ID => (
            s(&["S4EWNX0R123456", "0x5000c500a0b1c2d3", "WD-WX1_2.3:4+5"]),
            s(&["", "S4E WNX", "a/b", "x\"y", "x;y"]),
        ),
        PROVIDER_ID_FORMAT => (
            s(&["b7://default/server-01/worker-01", "b7://ns/host.rack1/m.1"]),
            s(&[
                "metal3://default/server-01/worker-01",
                "b7://default/server-01",
                "b7://default/server-01/worker-01/x",
                "b7://Default/server-01/worker-01",
                "b7:///server-01/worker-01",
            ]),
        ),
        _ => return None,
    })
}

#[test]
fn the_full_objects_are_valid() {
    for (plural, obj) in [
        ("physicalhosts", full_host()),
        ("beskar7machines", full_machine()),
        ("beskar7machinetemplates", full_template()),
        ("beskar7clusters", full_cluster()),
    ] {
        assert_eq!(
            apiserver_errors(plural, &obj, None),
            Vec::<String>::new(),
            "{plural}"
        );
    }
    // They are also what the Rust types read and write.
    let host: PhysicalHost = serde_json::from_value(full_host()).unwrap();
    assert_eq!(
        serde_json::to_value(&host).unwrap()["spec"],
        full_host()["spec"]
    );
    let machine: Beskar7Machine = serde_json::from_value(full_machine()).unwrap();
    assert_eq!(
        serde_json::to_value(&machine).unwrap()["spec"],
        full_machine()["spec"]
    );
}

#[test]
fn every_field_rule_accepts_good_values_and_rejects_bad_ones_with_its_message() {
    let mut tested = 0;
    for (plural, path, rule, message) in expected() {
        let Some((goods, bads)) = samples(rule) else {
            continue; // rules over several fields have their own tests below
        };
        for good in goods {
            let mut obj = base(plural);
            set(&mut obj, &path, good.clone());
            assert_eq!(
                apiserver_errors(plural, &obj, None),
                Vec::<String>::new(),
                "{plural} {path} = {good} should be accepted"
            );
        }
        for bad in bads {
            let mut obj = base(plural);
            set(&mut obj, &path, bad.clone());
            assert_eq!(
                apiserver_errors(plural, &obj, None),
                vec![format!("{path}: {message}")],
                "{plural} {path} = {bad} should be rejected with the rule's message"
            );
        }
        tested += 1;
    }
    assert!(tested >= 40, "only {tested} field rules tested");
}

#[test]
fn insecure_skip_verify_and_a_ca_bundle_are_mutually_exclusive() {
    let path = "spec.redfishConnection";
    let mut both = full_host();
    set(
        &mut both,
        "spec.redfishConnection.insecureSkipVerify",
        json!(true),
    );
    assert_eq!(
        apiserver_errors("physicalhosts", &both, None),
        vec![format!("{path}: {TLS_EXCLUSIVE_MSG}")]
    );

    let mut insecure_only = both.clone();
    remove(
        &mut insecure_only,
        "spec.redfishConnection.caBundleSecretRef",
    );
    assert!(apiserver_errors("physicalhosts", &insecure_only, None).is_empty());

    let mut bundle_and_false = both.clone();
    set(
        &mut bundle_and_false,
        "spec.redfishConnection.insecureSkipVerify",
        json!(false),
    );
    assert!(apiserver_errors("physicalhosts", &bundle_and_false, None).is_empty());
}

#[test]
fn image_handoff_needs_a_digest() {
    for (plural, prefix) in [
        ("beskar7machines", "spec"),
        ("beskar7machinetemplates", "spec.template.spec"),
        ("physicalhosts", "spec.provisioning"),
    ] {
        let mut obj = base(plural);
        remove(&mut obj, &format!("{prefix}.targetImageDigest"));
        assert_eq!(
            apiserver_errors(plural, &obj, None),
            vec![format!("{prefix}: {IMAGE_NEEDS_DIGEST_MSG}")],
            "{plural}"
        );
        set(&mut obj, &format!("{prefix}.handoff"), json!("Kexec"));
        assert!(
            apiserver_errors(plural, &obj, None).is_empty(),
            "{plural}: Kexec without a digest"
        );
    }
    // Without a handoff, no digest is needed (the default is then Kexec).
    let mut machine = full_machine();
    remove(&mut machine, "spec.handoff");
    remove(&mut machine, "spec.targetImageDigest");
    assert!(apiserver_errors("beskar7machines", &machine, None).is_empty());
}

#[test]
fn consumer_ref_may_be_set_or_cleared_but_not_changed() {
    let claimed = full_host();
    let mut free = full_host();
    remove(&mut free, "spec.consumerRef");
    let mut other = full_host();
    set(&mut other, "spec.consumerRef.name", json!("worker-02"));

    let update = |new: &Value, old: &Value| apiserver_errors("physicalhosts", new, Some(old));
    assert!(update(&claimed, &free).is_empty(), "claiming a free host");
    assert!(update(&free, &claimed).is_empty(), "releasing a host");
    assert!(update(&claimed, &claimed).is_empty(), "an unrelated update");
    assert!(
        update(&other, &free).is_empty(),
        "claiming for another machine after release"
    );
    assert_eq!(
        update(&other, &claimed),
        vec![format!("spec.consumerRef: {CONSUMER_REF_UNCHANGED_MSG}")],
        "moving a claim from worker-01 to worker-02"
    );
    let mut other_kind = full_host();
    set(
        &mut other_kind,
        "spec.consumerRef.kind",
        json!("Metal3Machine"),
    );
    assert_eq!(
        update(&other_kind, &claimed),
        vec![format!("spec.consumerRef: {CONSUMER_REF_UNCHANGED_MSG}")]
    );
    // On creation the transition rule does not apply.
    assert!(apiserver_errors("physicalhosts", &claimed, None).is_empty());
}

#[test]
fn provider_id_is_immutable_once_set() {
    for (plural, prefix) in [
        ("beskar7machines", "spec"),
        ("beskar7machinetemplates", "spec.template.spec"),
    ] {
        let id = format!("{prefix}.providerID");
        let mut unset = base(plural);
        if unset
            .pointer(&format!("/{}", id.replace('.', "/")))
            .is_some()
        {
            remove(&mut unset, &id);
        }
        let mut set_a = unset.clone();
        set(&mut set_a, &id, json!("b7://default/server-01/worker-01"));
        let mut set_b = unset.clone();
        set(&mut set_b, &id, json!("b7://default/server-02/worker-01"));
        let mut changed_other_field = set_a.clone();
        set(
            &mut changed_other_field,
            &format!("{prefix}.staticIP"),
            json!("10.0.0.6:::24"),
        );

        let update = |new: &Value, old: &Value| apiserver_errors(plural, new, Some(old));
        let msg = vec![format!("{prefix}: {PROVIDER_ID_IMMUTABLE_MSG}")];
        assert!(update(&set_a, &unset).is_empty(), "{plural}: setting it");
        assert!(update(&set_a, &set_a).is_empty(), "{plural}: keeping it");
        assert!(
            update(&changed_other_field, &set_a).is_empty(),
            "{plural}: other fields stay mutable"
        );
        assert!(update(&unset, &unset).is_empty(), "{plural}: never set");
        assert_eq!(update(&set_b, &set_a), msg, "{plural}: changing it");
        assert_eq!(update(&unset, &set_a), msg, "{plural}: removing it");
    }
}

#[test]
fn enums_and_bounds_are_enforced_by_the_schema() {
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "beskar7machines",
            full_machine(),
            "spec.handoff",
            json!("Disk"),
        ),
        (
            "beskar7machines",
            full_machine(),
            "spec.bootMode",
            json!("BIOS"),
        ),
        (
            "physicalhosts",
            full_host(),
            "spec.automatedCleaningMode",
            json!("full"),
        ),
        (
            "beskar7clusters",
            full_cluster(),
            "spec.controlPlaneEndpoint.port",
            json!(0),
        ),
        (
            "beskar7clusters",
            full_cluster(),
            "spec.controlPlaneEndpoint.port",
            json!(65536),
        ),
        (
            "beskar7clusters",
            full_cluster(),
            "spec.controlPlaneEndpoint.host",
            json!(""),
        ),
        (
            "physicalhosts",
            full_host(),
            "spec.redfishConnection.credentialsSecretRef",
            json!("a".repeat(254)),
        ),
        (
            "physicalhosts",
            full_host(),
            "spec.redfishConnection.insecureSkipVerify",
            json!("yes"),
        ),
        (
            "beskar7machines",
            full_machine(),
            "spec.unknownField",
            json!(1),
        ),
    ];
    for (plural, mut obj, path, bad) in cases {
        set(&mut obj, path, bad.clone());
        let errs = apiserver_errors(plural, &obj, None);
        assert!(
            errs.iter().any(|e| e.starts_with(path)),
            "{plural} {path} = {bad}: expected an error, got {errs:?}"
        );
    }
    let mut no_address = full_host();
    remove(&mut no_address, "spec.redfishConnection.address");
    assert_eq!(
        apiserver_errors("physicalhosts", &no_address, None),
        vec!["spec.redfishConnection.address: Required value".to_owned()]
    );
}

#[test]
fn typed_objects_validate_through_kubes_cel_helpers() {
    let old: Beskar7Machine = serde_json::from_value(full_machine()).unwrap();
    kube::core::cel::validate_cel(&old).unwrap();
    let mut new = old.clone();
    new.spec.provider_id = Some("b7://default/server-02/worker-01".into());
    kube::core::cel::validate_cel(&new).unwrap();
    let errs = kube::core::cel::validate_cel_update(&new, &old).unwrap_err();
    let got: Vec<(String, String)> = errs
        .iter()
        .map(|e| (e.field_path.clone(), e.message.clone()))
        .collect();
    assert_eq!(
        got,
        [("spec".to_owned(), PROVIDER_ID_IMMUTABLE_MSG.to_owned())]
    );

    let mut host: PhysicalHost = serde_json::from_value(full_host()).unwrap();
    host.spec.redfish_connection.insecure_skip_verify = true;
    let errs = kube::core::cel::validate_cel(&host).unwrap_err();
    assert_eq!(errs[0].message, TLS_EXCLUSIVE_MSG);
}
