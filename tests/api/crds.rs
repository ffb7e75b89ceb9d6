//! The CRDs as installed: names, labels, columns, and `crds/` in step with the code.

use std::collections::BTreeMap;

use beskar7::api;
use serde_json::Value;

use super::support::{PLURALS, crd};

#[test]
fn names_short_names_categories_and_scope() {
    let expected = [
        ("physicalhosts", "PhysicalHost", "ph"),
        ("beskar7machines", "Beskar7Machine", "b7m"),
        ("beskar7machinetemplates", "Beskar7MachineTemplate", "b7mt"),
        ("beskar7clusters", "Beskar7Cluster", "b7c"),
    ];
    for (plural, kind, short) in expected {
        let crd = crd(plural);
        assert_eq!(
            crd["metadata"]["name"],
            format!("{plural}.infrastructure.cluster.x-k8s.io")
        );
        assert_eq!(crd["spec"]["group"], "infrastructure.cluster.x-k8s.io");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let names = &crd["spec"]["names"];
        assert_eq!(names["kind"], kind);
        assert_eq!(names["singular"], kind.to_lowercase());
        assert_eq!(names["shortNames"], serde_json::json!([short]));
        assert_eq!(
            names["categories"],
            serde_json::json!(["cluster-api", "beskar7"])
        );
        let versions = crd["spec"]["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1, "{plural}: one version");
        assert_eq!(versions[0]["name"], "v1beta1");
        assert_eq!(versions[0]["served"], true);
        assert_eq!(versions[0]["storage"], true);
        let description = versions[0]["schema"]["openAPIV3Schema"]["description"]
            .as_str()
            .unwrap();
        assert!(
            description.len() > 80 && !description.contains("Auto-generated"),
            "{plural}: the kind needs a description for kubectl explain"
        );
    }
}

#[test]
fn cluster_api_finds_our_contract_version_and_clusterctl_moves_the_inventory() {
    for plural in PLURALS {
        let labels: BTreeMap<String, String> =
            serde_json::from_value(crd(plural)["metadata"]["labels"].clone()).unwrap();
        assert_eq!(
            labels.get("cluster.x-k8s.io/v1beta2").map(String::as_str),
            Some("v1beta1")
        );
        assert!(
            !labels.contains_key("cluster.x-k8s.io/v1beta1"),
            "contract v1beta2 only"
        );
        let clusterctl = labels.contains_key("clusterctl.cluster.x-k8s.io");
        let hierarchy = labels.get("clusterctl.cluster.x-k8s.io/move-hierarchy");
        if plural == "physicalhosts" {
            assert_eq!(labels["clusterctl.cluster.x-k8s.io"], "");
            assert_eq!(hierarchy.map(String::as_str), Some(""));
        } else {
            assert!(
                !clusterctl && hierarchy.is_none(),
                "{plural}: move labels only on hosts"
            );
        }
    }
    // Objects built in code do not carry the CRD labels.
    let spec: api::PhysicalHost = serde_json::from_value(super::support::full_host()).unwrap();
    let host = api::PhysicalHost::new("h", spec.spec);
    assert!(host.metadata.labels.is_none());
}

#[test]
fn status_subresource_and_contract_fields() {
    for plural in ["physicalhosts", "beskar7machines", "beskar7clusters"] {
        let crd = crd(plural);
        let v = &crd["spec"]["versions"][0];
        assert!(
            v["subresources"]["status"].is_object(),
            "{plural}: status subresource"
        );
        let status = &v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
        assert!(
            status["ready"].is_null(),
            "{plural}: contract v1beta2 has no status.ready"
        );
        assert_eq!(status["observedGeneration"]["type"], "integer");
        let conditions = &status["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{plural}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"])
        );
        assert_eq!(
            conditions["items"]["required"].as_array().unwrap().len(),
            5,
            "metav1 Condition"
        );
    }
    let machine = crd("beskar7machines");
    let status = &machine["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        ["properties"];
    assert_eq!(
        status["initialization"]["properties"]["provisioned"]["type"],
        "boolean"
    );
    assert_eq!(
        status["phase"]["enum"],
        serde_json::json!([
            "Pending",
            "Associated",
            "Inspecting",
            "Deploying",
            "Provisioned",
            "Deprovisioning",
            "Failed"
        ])
    );
    let cluster = crd("beskar7clusters");
    let status = &cluster["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        ["properties"];
    assert_eq!(
        status["initialization"]["properties"]["provisioned"]["type"],
        "boolean"
    );
    assert_eq!(
        status["failureDomains"]["type"], "array",
        "a list at contract v1beta2"
    );
    assert_eq!(
        status["failureDomains"]["x-kubernetes-list-map-keys"],
        serde_json::json!(["name"])
    );
    let host = crd("physicalhosts");
    let consumer_ref = &host["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["consumerRef"];
    assert_eq!(
        consumer_ref["x-kubernetes-map-type"], "atomic",
        "a claim is written whole by one manager"
    );
    let state = &host["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        ["state"];
    assert_eq!(
        state["enum"],
        serde_json::json!([
            "Enrolling",
            "Available",
            "InUse",
            "Inspecting",
            "Deploying",
            "Provisioned",
            "Deprovisioning",
            "Error"
        ])
    );
}

#[test]
fn printer_columns_show_what_a_person_reads_first() {
    let columns = |plural: &str| -> Vec<(String, String)> {
        crd(plural)["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["priority"].as_i64().unwrap_or(0) == 0)
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["jsonPath"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let names = |plural: &str| columns(plural).into_iter().map(|c| c.0).collect::<Vec<_>>();
    assert_eq!(
        names("physicalhosts"),
        ["State", "Power", "Consumer", "BMC", "Age"]
    );
    assert_eq!(
        names("beskar7machines"),
        ["Cluster", "Phase", "Ready", "ProviderID", "Age"]
    );
    assert_eq!(
        names("beskar7machinetemplates"),
        ["Cluster", "Target Image", "Age"]
    );
    assert_eq!(
        names("beskar7clusters"),
        ["Cluster", "Endpoint", "Port", "Provisioned", "Ready", "Age"]
    );
    // Every column points at a field that exists (or metadata).
    for plural in PLURALS {
        let schema = super::support::schema(plural);
        for (name, path) in columns(plural) {
            if path.starts_with(".metadata") {
                continue;
            }
            // `.a.b[?(@.type=="Ready")].c` is `.a.b`, its items, then `.c`.
            let (head, tail) = match path.split_once("[?(") {
                Some((head, rest)) => (head, rest.split_once(")]").map(|r| r.1)),
                None => (path.as_str(), None),
            };
            let mut n = &schema;
            for step in head.trim_start_matches('.').split('.') {
                n = &n["properties"][step];
            }
            if let Some(tail) = tail {
                n = &n["items"];
                for step in tail.trim_start_matches('.').split('.') {
                    n = &n["properties"][step];
                }
            }
            assert!(
                !n.is_null(),
                "{plural} column {name}: {path} is not in the schema"
            );
        }
    }
    let host = crd("physicalhosts");
    let selectable: Vec<&str> = host["spec"]["versions"][0]["selectableFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["jsonPath"].as_str().unwrap())
        .collect();
    assert_eq!(
        selectable,
        [".spec.redfishConnection.address", ".spec.consumerRef.name"]
    );
}

fn regenerate_hint(file: &str) -> String {
    format!(
        "crds/{file} is out of date with src/api: regenerate it with `make crds` \
         (or `cargo run -p beskar7 -- crds --out-dir crds`) and commit the result"
    )
}

#[test]
fn crds_directory_matches_the_code() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut expected_files = Vec::new();
    for crd in api::crds() {
        let file = api::crd_file_name(&crd);
        let text = std::fs::read_to_string(dir.join(&file))
            .unwrap_or_else(|e| panic!("{}: {e}", regenerate_hint(&file)));
        let on_disk: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "crds/{file} is not valid YAML ({e}): {}",
                regenerate_hint(&file)
            )
        });
        assert!(
            on_disk == serde_json::to_value(&crd).unwrap(),
            "{}",
            regenerate_hint(&file)
        );
        expected_files.push(file);
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present, expected_files,
        "crds/ holds exactly one file per CRD"
    );
}

#[test]
fn the_yaml_stream_holds_all_four_crds() {
    let docs: Vec<Value> = serde_saphyr::from_multiple(&api::crds_yaml().unwrap()).unwrap();
    let expected: Vec<Value> = api::crds()
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    assert_eq!(docs, expected);
}

#[test]
fn beskar7_crds_prints_them_and_the_manager_names_a_missing_kubeconfig() {
    let bin = env!("CARGO_BIN_EXE_beskar7");
    let out = std::process::Command::new(bin)
        .arg("crds")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "physicalhosts.infrastructure.cluster.x-k8s.io",
            "beskar7machines.infrastructure.cluster.x-k8s.io",
            "beskar7machinetemplates.infrastructure.cluster.x-k8s.io",
            "beskar7clusters.infrastructure.cluster.x-k8s.io",
        ]
    );
    // `beskar7` alone is the manager; without a reachable API server it says why and exits 1.
    let missing = "/nonexistent/beskar7-kubeconfig";
    for args in [
        &[][..],
        &["manager"][..],
        &["manager", "--kubeconfig", missing][..],
    ] {
        let out = std::process::Command::new(bin)
            .args(args)
            .env("KUBECONFIG", missing)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "beskar7 {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("beskar7 manager:") && err.contains(missing),
            "beskar7 {args:?}: {err}"
        );
    }
}
