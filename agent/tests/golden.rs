//! The golden files of the contract (`shared/fixtures/inspector-contract/`): the boot command
//! line parses, the report type round-trips the golden report, and probing a fixture tree that
//! describes the golden machine produces exactly the golden report.

use std::path::PathBuf;

use beskar7_agent::cmdline::{self, Handoff, Mode};
use beskar7_agent::probe;
use beskar7_agent::report::InspectionReport;
use serde_json::Value;

use crate::testing::{Smbios, TempTree};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/inspector-contract")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The `kernel` line of the golden iPXE script, as the kernel would see it: without the
/// `kernel` command and with the image name iPXE puts first under UEFI.
pub fn golden_cmdline() -> String {
    let script = read("golden_boot_cmdline.txt");
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("kernel "))
        .expect("the golden script has a kernel line");
    let (_image_url, params) = line.split_once(' ').expect("kernel line has parameters");
    format!("vmlinuz initrd=initrd.img {params}\n")
}

#[test]
fn contract_version_is_the_one_implemented() {
    assert_eq!(read("VERSION").trim(), "v4.2");
}

#[test]
fn golden_boot_cmdline_parses() {
    let p = cmdline::parse(&golden_cmdline()).unwrap();
    assert_eq!(p.api, "https://beskar7.example.invalid:8082");
    assert_eq!(p.namespace, "contract-test");
    assert_eq!(p.host, "host-01");
    assert_eq!(p.token.expose(), "test-token-0123456789abcdef");
    assert_eq!(p.ca_pem, "test-ca-pem-placeholder");
    assert_eq!(p.disk_hints.device.as_deref(), Some("/dev/vda"));
    assert_eq!(p.boot_mac.unwrap().to_string(), "52:54:00:12:34:56");
    assert_eq!(p.timeout, None, "v4.2 renders no timeout");
    assert!(p.unknown.is_empty());
    let Mode::Provision(prov) = &p.mode else {
        panic!("a provisioning boot")
    };
    assert_eq!(prov.handoff, Handoff::Image);
    assert_eq!(prov.target, "http://images.example.invalid/kairos.raw");
    assert_eq!(
        prov.target_digest.unwrap().to_string(),
        format!("sha256:{}", "a".repeat(64))
    );
    assert!(
        !format!("{p:?}").contains("test-token"),
        "the token stays out of Debug"
    );

    // The provider-ID artifact the handoff writes carries the same identity.
    let artifact: Value = serde_json::from_str(&read("golden_provider_id_artifact.json")).unwrap();
    assert_eq!(artifact["content"], prov.provider_id.as_str());
    assert_eq!(artifact["namespace"], p.namespace.as_str());
    assert_eq!(artifact["host"], p.host.as_str());
}

#[test]
fn golden_script_parses_whole_too() {
    // Words without `=` (`#!ipxe`, `kernel`, URLs, `boot`) are ignored.
    let whole = cmdline::parse(&read("golden_boot_cmdline.txt")).unwrap();
    assert_eq!(whole, cmdline::parse(&golden_cmdline()).unwrap());
}

#[test]
fn golden_report_round_trips() {
    let golden: Value = serde_json::from_str(&read("golden_inspection_report.json")).unwrap();
    let report: InspectionReport = serde_json::from_value(golden.clone()).unwrap();
    assert_eq!(report.cpus.len(), 2);
    assert_eq!(serde_json::to_value(&report).unwrap(), golden);
}

/// A fixture tree of the golden machine: a two-socket Dell R650 with four DIMMs, two NVMe disks
/// and two 10 Gb/s NICs, booted by UEFI.
pub fn golden_machine() -> TempTree {
    let tree = TempTree::new();
    let xeon = "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz";
    let mut smbios = Smbios::new()
        .bios("2.10.2")
        .system(
            "Dell Inc.",
            "PowerEdge R650",
            "ABCD123",
            *b"DELL\x42\x00\x10\x51\x80\x4a\xb2\xc0\x4f\x31\x32\x33",
        )
        .processor("CPU.Socket.1", "Intel", xeon, 32, 64, 2000)
        .processor("CPU.Socket.2", "Intel", xeon, 32, 64, 2000);
    for slot in ["A1", "A2", "A3", "B1", "B2", "B3"] {
        // A3 and B3 are empty slots.
        let size = if slot.ends_with('3') { 0 } else { 32 * 1024 };
        smbios = smbios.dimm(&format!("DIMM.Socket.{slot}"), size, 0x1A, 3200);
    }
    tree.file("sys/firmware/dmi/tables/DMI", smbios.finish());
    tree.dir("sys/firmware/efi/efivars");

    for (name, serial, dev) in [
        ("nvme0n1", "S64XNE0R301234", "259:0"),
        ("nvme1n1", "S64XNE0R305678", "259:1"),
    ] {
        let base = format!("sys/block/{name}");
        tree.file(&format!("{base}/size"), "1875000000\n");
        tree.file(&format!("{base}/dev"), format!("{dev}\n"));
        tree.file(&format!("{base}/removable"), "0\n");
        tree.file(&format!("{base}/ro"), "0\n");
        tree.file(&format!("{base}/queue/rotational"), "0\n");
        tree.file(
            &format!("{base}/device/model"),
            "Dell Ent NVMe AGN MU U.2 960GB           \n",
        );
        tree.file(
            &format!("{base}/device/serial"),
            format!("{serial}      \n"),
        );
    }
    tree.file("sys/block/loop0/size", "0\n");

    for (name, mac) in [("eno1", "aa:bb:cc:dd:ee:01"), ("eno2", "aa:bb:cc:dd:ee:02")] {
        let base = format!("sys/class/net/{name}");
        tree.file(&format!("{base}/address"), format!("{mac}\n"));
        tree.file(&format!("{base}/speed"), "10000\n");
        tree.file(&format!("{base}/carrier"), "1\n");
        tree.symlink(
            &format!("{base}/device/driver"),
            "../../../bus/pci/drivers/ixgbe",
        );
    }
    tree.file("sys/class/net/lo/address", "00:00:00:00:00:00\n");
    tree.file(
        "proc/net/if_inet6",
        "fe80000000000000a8bbccfffeddee01 02 40 20 80     eno1\n\
         00000000000000000000000000000001 01 80 10 80       lo\n",
    );
    // eno1 is on 192.0.2.0/24; eno2 carries 192.0.2.11 as a host route (/32).
    tree.file(
        "proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         eno1\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
         eno1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
         eno2\t0B0200C0\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n",
    );
    tree.file(
        "proc/net/fib_trie",
        "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
         \x20    +-- 192.0.2.0/24 2 0 2\n        |-- 192.0.2.0\n           /24 link UNICAST\n\
         \x20       |-- 192.0.2.10\n           /32 host LOCAL\n\
         \x20       |-- 192.0.2.11\n           /32 host LOCAL\n\
         Local:\n  +-- 127.0.0.0/8 2 0 2\n     |-- 127.0.0.1\n        /32 host LOCAL\n\
         \x20    |-- 192.0.2.10\n        /32 host LOCAL\n\
         \x20    |-- 192.0.2.11\n        /32 host LOCAL\n",
    );
    tree.file("proc/self/mountinfo", "1 0 0:2 / / rw - rootfs rootfs rw\n");
    tree
}

#[test]
fn probing_the_golden_machine_gives_the_golden_report() {
    let tree = golden_machine();
    let hw = probe::probe(&tree.root());
    assert!(hw.warnings.is_empty(), "{:?}", hw.warnings);
    assert_eq!(
        hw.system.uuid.as_deref(),
        Some("4c4c4544-0042-5110-804a-b2c04f313233")
    );
    let produced = serde_json::to_value(InspectionReport::from_hardware(&hw)).unwrap();
    let golden: Value = serde_json::from_str(&read("golden_inspection_report.json")).unwrap();
    assert_eq!(
        produced,
        golden,
        "produced:\n{}",
        serde_json::to_string_pretty(&produced).unwrap()
    );
}
