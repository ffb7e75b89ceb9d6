//! `beskar7-sim demo` as a user runs it: the real `beskar7` binary as a child process,
//! provisioning a cluster of virtual servers end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_beskar7-sim");

/// The operator binary cargo builds next to `beskar7-sim` (`cargo nextest run --workspace`
/// builds every binary of the workspace).
fn operator() -> PathBuf {
    let path = Path::new(BINARY).with_file_name("beskar7");
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo nextest run --workspace` or `cargo build -p beskar7` first",
        path.display()
    );
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("beskar7-demo-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn demo_provisions_three_machines_and_leaves_no_operator_behind() {
    let operator = operator();
    let dir = scratch("three");
    let out = Command::new(BINARY)
        .args(["demo", "--hosts", "3", "--timeout", "120s", "--operator"])
        .arg(&operator)
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--operator-log")
        .arg(dir.join("operator.log"))
        .stdin(Stdio::null())
        .output()
        .expect("run beskar7-sim demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}\noperator log:\n{}",
        out.status,
        std::fs::read_to_string(dir.join("operator.log")).unwrap_or_default()
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("3/3 machines provisioned in "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    assert!(summary.ends_with('s'), "{summary}");
    // Every host went through the real attempt: inspected, deployed, provisioned.
    for host in ["server-01", "server-02", "server-03"] {
        for step in ["Inspecting → Deploying", "Deploying → Provisioned"] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains(&format!("host     {host} ")) && l.contains(step)),
                "{host}: no {step:?} line in:\n{stdout}"
            );
        }
    }
    // The operator was a real child process and is gone (it was reaped, so its pid is not a
    // zombie of ours either).
    let pid = stdout
        .lines()
        .find_map(|l| {
            l.split("(pid ")
                .nth(1)?
                .split(')')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no operator pid in:\n{stdout}"));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || !std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .contains("manager"),
        "the operator (pid {pid}) outlived the demo"
    );
    let log = std::fs::read_to_string(dir.join("operator.log")).expect("operator log");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    // The BMC password of the demo is in no output.
    assert!(!stdout.contains("demo-password") && !stderr.contains("demo-password"));
    assert!(!log.contains("demo-password"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_without_the_operator_binary_says_to_build_it() {
    let out = Command::new(BINARY)
        .args(["demo", "--operator", "/nonexistent/beskar7"])
        .stdin(Stdio::null())
        .output()
        .expect("run beskar7-sim demo");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "beskar7-sim: the operator binary /nonexistent/beskar7 is missing: build it first (`cargo build -p beskar7 -p beskar7-sim`) or pass --operator PATH"
    );
}
