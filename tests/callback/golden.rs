//! The boot script against the inspector contract's golden files (v4.2): the same
//! `beskar7.*`/`BOOTIF` parameter set for the golden inputs, and the same kernel and initrd URLs.

use std::collections::BTreeSet;

use beskar7::api::{Handoff, Images, ProvisioningIntent, RootDeviceHints};
use beskar7::callback::render::{BootInputs, BootPurpose, render};

const GOLDEN: &str =
    include_str!("../../../shared/fixtures/inspector-contract/golden_boot_cmdline.txt");
const VERSION: &str = include_str!("../../../shared/fixtures/inspector-contract/VERSION");

/// The `beskar7.*` and `BOOTIF` words of a kernel line; what we add beyond v4.2 (`initrd=`,
/// `loglevel=`, `beskar7.timeout`, the [ext] parameters) is not compared (contract preamble).
fn contract_params(script: &str) -> BTreeSet<String> {
    const EXT: [&str; 9] = [
        "beskar7.timeout",
        "beskar7.handoff",
        "beskar7.config",
        "beskar7.disk-serial",
        "beskar7.disk-wwn",
        "beskar7.disk-min-gb",
        "beskar7.config-url",
        "beskar7.mode",
        "beskar7.ip",
    ];
    let kernel = script
        .lines()
        .find(|l| l.starts_with("kernel "))
        .expect("a kernel line");
    kernel
        .split(' ')
        .filter(|w| w.starts_with("beskar7.") || w.starts_with("BOOTIF="))
        .filter(|w| !EXT.contains(&w.split('=').next().unwrap()))
        .map(str::to_owned)
        .collect()
}

fn golden_intent() -> ProvisioningIntent {
    ProvisioningIntent {
        images: Images {
            inspection_image_url: "http://images.example.invalid".into(),
            target_image_url: "http://images.example.invalid/kairos.raw".into(),
            target_image_digest: Some(format!("sha256:{}", "a".repeat(64))),
            configuration_url: None,
        },
        handoff: Handoff::Image,
        boot_mode: None,
        root_device_hints: Some(RootDeviceHints {
            device_name: Some("/dev/vda".into()),
            ..RootDeviceHints::default()
        }),
        static_ip: None,
        hardware_requirements: None,
        // The golden provider ID value (the contract test's, two segments).
        provider_id: "b7://contract-test/host-01".into(),
        bootstrap_data_secret_name: "unused".into(),
    }
}

#[test]
fn golden_inputs_render_the_golden_parameter_set() {
    assert_eq!(VERSION.trim(), "v4.2");
    let intent = golden_intent();
    let script = render(&BootInputs {
        api_url: "https://beskar7.example.invalid:8082",
        namespace: "contract-test",
        host: "host-01",
        token: "test-token-0123456789abcdef",
        ca_base64: "dGVzdC1jYS1wZW0tcGxhY2Vob2xkZXI=",
        mac: Some("52-54-00-12-34-56"),
        timeout_secs: Some(1200),
        purpose: BootPurpose::Provision {
            intent: &intent,
            config_url: None,
        },
    })
    .expect("renders");
    assert_eq!(contract_params(&script), contract_params(GOLDEN));
    // The same kernel and initrd URLs, and the script's shape.
    let first_word = |s: &str, cmd: &str| {
        s.lines()
            .find(|l| l.starts_with(cmd))
            .and_then(|l| l.split(' ').nth(1))
            .map(str::to_owned)
    };
    assert_eq!(
        first_word(&script, "kernel "),
        first_word(GOLDEN, "kernel ")
    );
    assert_eq!(
        first_word(&script, "initrd "),
        first_word(GOLDEN, "initrd ")
    );
    assert!(script.starts_with("#!ipxe\n") && script.ends_with("boot\n"));
    // Our additions are present: UEFI's initrd=, the quiet console, the agent's budget.
    let kernel = script.lines().nth(1).unwrap();
    for w in ["initrd=initrd.img", "loglevel=4", "beskar7.timeout=1200"] {
        assert!(kernel.split(' ').any(|x| x == w), "{w} missing in {kernel}");
    }
}

#[test]
fn an_ipxe_inspection_image_gets_the_parameters_in_beskar7_args() {
    let mut intent = golden_intent();
    intent.images.inspection_image_url = "https://images.example.invalid/agent.ipxe".into();
    let script = render(&BootInputs {
        api_url: "https://beskar7.example.invalid:8082",
        namespace: "contract-test",
        host: "host-01",
        token: "tok",
        ca_base64: "Q0E=",
        mac: None,
        timeout_secs: None,
        purpose: BootPurpose::Provision {
            intent: &intent,
            config_url: None,
        },
    })
    .unwrap();
    let lines: Vec<&str> = script.lines().collect();
    assert_eq!(lines[0], "#!ipxe");
    assert!(
        lines[1].starts_with("set beskar7-args beskar7.api=https://beskar7.example.invalid:8082 ")
    );
    assert_eq!(lines[2], "chain https://images.example.invalid/agent.ipxe");
    assert_eq!(lines.len(), 3);
}
