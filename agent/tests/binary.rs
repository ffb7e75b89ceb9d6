//! `beskar7-agent --cmdline-file F --dry-run|--report-only --root DIR`, run as a process.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::golden::{fixture, golden_cmdline, golden_machine};
use crate::https_server::{TestServer, read_cert, response, script};
use crate::testing::TempTree;

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_beskar7-agent"))
        .args(args)
        .output()
        .expect("run beskar7-agent")
}

/// Runs the agent in `mode` on a machine tree holding its kernel command line at `cmdline`.
fn run_on(machine: &TempTree, mode: &str) -> Output {
    let cmdline = machine.path("cmdline");
    let root = machine.path("");
    agent(&[
        "--cmdline-file",
        cmdline.to_str().unwrap(),
        mode,
        "--root",
        root.to_str().unwrap(),
    ])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file and link under `dir` with its contents, to show a run changed nothing.
fn snapshot(dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        let key = path.to_string_lossy().into_owned();
        if kind.is_symlink() {
            out.insert(
                key,
                std::fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            );
        } else if kind.is_dir() {
            out.insert(key, Vec::new());
            snapshot(&path, out);
        } else {
            out.insert(key, std::fs::read(&path).unwrap());
        }
    }
}

#[test]
fn dry_run_prints_the_golden_report_and_chooses_a_disk() {
    let machine = golden_machine();
    // The golden line's `beskar7.disk=/dev/vda` names no disk of this machine: drop it here.
    let cmdline = golden_cmdline().replace("beskar7.disk=/dev/vda ", "");
    machine.file("cmdline", &cmdline);
    let mut before = BTreeMap::new();
    snapshot(&machine.path(""), &mut before);

    let out = run_on(&machine, "--dry-run");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let printed: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("golden_inspection_report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, golden);
    assert!(
        stderr.contains("root disk /dev/nvme0n1 (smallest eligible disk)"),
        "{stderr}"
    );
    assert!(!stderr.contains("test-token") && !text(&out.stdout).contains("test-token"));

    let mut after = BTreeMap::new();
    snapshot(&machine.path(""), &mut after);
    assert_eq!(before, after, "a dry run writes nothing");
}

#[test]
fn dry_run_reports_then_fails_when_the_hint_matches_no_disk() {
    let machine = golden_machine();
    machine.file("cmdline", golden_cmdline());
    let out = run_on(&machine, "--dry-run");
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is still printed");
    assert_eq!(report["disks"].as_array().map(Vec::len), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("beskar7.disk=/dev/vda"), "{stderr}");
    assert!(
        stderr.contains("/dev/nvme0n1 960GB serial S64XNE0R301234"),
        "{stderr}"
    );
}

#[test]
fn a_bad_cmdline_names_the_parameter_and_hides_the_token() {
    let tree = TempTree::new();
    let cmdline = golden_cmdline().replace("beskar7.host=host-01 ", "");
    tree.file("cmdline", cmdline);
    let out = agent(&[
        "--cmdline-file",
        tree.path("cmdline").to_str().unwrap(),
        "--dry-run",
        "--root",
        tree.path("").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("missing parameter beskar7.host"),
        "{stderr}"
    );
    assert!(!stderr.contains("test-token"), "{stderr}");
}

#[test]
fn cleaning_dry_run_lists_the_disks_it_would_wipe() {
    let machine = golden_machine();
    machine.file(
        "cmdline",
        "beskar7.api=https://b7:8082 beskar7.namespace=ns beskar7.host=h beskar7.token=t \
         beskar7.ca=eA== beskar7.timeout=600 beskar7.mode=clean\n",
    );
    let out = run_on(&machine, "--dry-run");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("a cleaning boot would wipe: /dev/nvme0n1 /dev/nvme1n1"),
        "{stderr}"
    );
}

#[test]
fn without_a_mode_a_normal_process_does_nothing() {
    let tree = TempTree::new();
    tree.file("cmdline", golden_cmdline());
    let out = agent(&["--cmdline-file", tree.path("cmdline").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("say --dry-run, --report-only or --run"),
        "{stderr}"
    );
    assert!(!stderr.contains("test-token"));
}

/// The golden command line, calling back to `addr` with the test CA.
fn golden_cmdline_calling(addr: std::net::SocketAddr) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(read_cert("ca.pem"));
    golden_cmdline()
        .replace(
            "beskar7.api=https://beskar7.example.invalid:8082",
            &format!("beskar7.api=https://{addr}"),
        )
        .replace(
            "beskar7.ca=dGVzdC1jYS1wZW0tcGxhY2Vob2xkZXI=",
            &format!("beskar7.ca={ca}"),
        )
}

#[test]
fn report_only_posts_the_golden_report() {
    let server = TestServer::start(
        "leaf",
        script(vec![response(202, b"{\"status\":\"accepted\"}")]),
    );
    let machine = golden_machine();
    machine.file("cmdline", golden_cmdline_calling(server.addr));
    let out = run_on(&machine, "--report-only");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("accepted the inspection report"),
        "{stderr}"
    );
    assert!(!stderr.contains("test-token"), "{stderr}");
    let [request] = <[_; 1]>::try_from(server.requests()).unwrap();
    assert_eq!(request.path, "/api/v1/inspection/contract-test/host-01");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer test-token-0123456789abcdef")
    );
    let posted: Value = serde_json::from_slice(&request.body).unwrap();
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("golden_inspection_report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(posted, golden);
}

#[test]
fn report_only_stops_on_a_refused_token_and_on_a_dns_name() {
    let server = TestServer::start("leaf", script(vec![response(401, b"")]));
    let machine = golden_machine();
    machine.file("cmdline", golden_cmdline_calling(server.addr));
    let out = run_on(&machine, "--report-only");
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("refused the token (HTTP 401)"), "{stderr}");
    assert!(!stderr.contains("test-token"), "{stderr}");
    assert_eq!(server.requests().len(), 1);

    // The golden line's API is a DNS name: refused at once, not retried for the whole budget.
    let dns = golden_cmdline_calling(server.addr).replace(
        &format!("beskar7.api=https://{}", server.addr),
        "beskar7.api=https://beskar7.example.invalid:8082",
    );
    machine.file("cmdline", dns);
    let out = run_on(&machine, "--report-only");
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("resolving DNS names is not implemented yet"),
        "{stderr}"
    );
}
