//! The seed project's README YAML, and everything under examples/, applies unchanged.

use beskar7::api::{
    AutomatedCleaningMode, Beskar7Cluster, Beskar7Machine, Beskar7MachineTemplate, Handoff,
    PhysicalHost,
};
use serde_json::Value;

use super::support::{apiserver_errors, yaml};

const SEED_HOST: &str = include_str!("fixtures/seed-physicalhost.yaml");
const SEED_MACHINE: &str = include_str!("fixtures/seed-beskar7machine.yaml");

#[test]
fn the_seed_physical_host_applies_and_reads_back() {
    let obj = yaml(SEED_HOST);
    assert_eq!(
        apiserver_errors("physicalhosts", &obj, None),
        Vec::<String>::new()
    );

    let host: PhysicalHost = serde_json::from_value(obj).unwrap();
    assert_eq!(host.metadata.name.as_deref(), Some("server-01"));
    let rf = &host.spec.redfish_connection;
    assert_eq!(rf.address, "https://192.168.1.100");
    assert_eq!(rf.credentials_secret_ref, "bmc-credentials");
    assert!(
        !rf.insecure_skip_verify,
        "TLS is verified unless asked otherwise"
    );
    assert!(rf.ca_bundle_secret_ref.is_none() && rf.system_path.is_none());
    assert_eq!(
        host.spec.automated_cleaning_mode,
        AutomatedCleaningMode::Metadata
    );
    assert!(host.spec.consumer_ref.is_none() && host.status.is_none());
}

#[test]
fn the_seed_machine_applies_and_reads_back() {
    let obj = yaml(SEED_MACHINE);
    assert_eq!(
        apiserver_errors("beskar7machines", &obj, None),
        Vec::<String>::new()
    );

    let machine: Beskar7Machine = serde_json::from_value(obj).unwrap();
    let spec = &machine.spec;
    assert_eq!(
        spec.images.inspection_image_url,
        "http://boot-server/beskar7-inspector/boot"
    );
    assert_eq!(
        spec.images.target_image_url,
        "http://boot-server/kairos/v2.8.1.tar.gz"
    );
    let hw = spec.hardware_requirements.as_ref().unwrap();
    assert_eq!(
        (hw.min_cpu_cores, hw.min_memory_gb, hw.min_disk_gb),
        (Some(4), Some(16), None)
    );
    assert_eq!(
        spec.effective_handoff(),
        Handoff::Kexec,
        "no digest: the seed's kexec flow"
    );
    assert!(spec.provider_id.is_none() && !machine.is_provisioned());
}

#[test]
fn the_seed_objects_round_trip_without_adding_surprises() {
    // What Beskar7 writes back for the seed host adds only the two defaults the API server would.
    let host: PhysicalHost = serde_json::from_value(yaml(SEED_HOST)).unwrap();
    let mut expected = yaml(SEED_HOST)["spec"].clone();
    expected["redfishConnection"]["insecureSkipVerify"] = false.into();
    expected["automatedCleaningMode"] = "metadata".into();
    assert_eq!(serde_json::to_value(&host).unwrap()["spec"], expected);

    let machine: Beskar7Machine = serde_json::from_value(yaml(SEED_MACHINE)).unwrap();
    assert_eq!(
        serde_json::to_value(&machine).unwrap()["spec"],
        yaml(SEED_MACHINE)["spec"]
    );
}

fn plural_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "PhysicalHost" => "physicalhosts",
        "Beskar7Machine" => "beskar7machines",
        "Beskar7MachineTemplate" => "beskar7machinetemplates",
        "Beskar7Cluster" => "beskar7clusters",
        _ => return None,
    })
}

#[test]
fn every_example_applies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut kinds = std::collections::BTreeSet::new();
    let mut secrets = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let name = format!("{} {kind} {}", path.display(), doc["metadata"]["name"]);
            if kind == "Secret" {
                secrets.push(doc["metadata"]["name"].as_str().unwrap().to_owned());
                let data = &doc["stringData"];
                assert!(
                    data["username"].is_string() && data["password"].is_string(),
                    "{name}"
                );
                continue;
            }
            let plural = plural_of(&kind).unwrap_or_else(|| panic!("{name}: unexpected kind"));
            assert_eq!(
                doc["apiVersion"], "infrastructure.cluster.x-k8s.io/v1beta1",
                "{name}"
            );
            assert_eq!(
                apiserver_errors(plural, &doc, None),
                Vec::<String>::new(),
                "{name}"
            );
            match plural {
                "physicalhosts" => {
                    let h: PhysicalHost = serde_json::from_value(doc).unwrap();
                    assert!(
                        secrets.contains(&h.spec.redfish_connection.credentials_secret_ref),
                        "{name}: its Secret comes first"
                    );
                }
                "beskar7machines" => drop(serde_json::from_value::<Beskar7Machine>(doc).unwrap()),
                "beskar7machinetemplates" => {
                    drop(serde_json::from_value::<Beskar7MachineTemplate>(doc).unwrap())
                }
                _ => drop(serde_json::from_value::<Beskar7Cluster>(doc).unwrap()),
            }
            kinds.insert(kind);
        }
    }
    assert_eq!(kinds.len(), 4, "examples/ shows all four kinds: {kinds:?}");
}
