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

/// The pid the demo printed for its operator child.
fn operator_pid(stdout: &str) -> u32 {
    stdout
        .lines()
        .find_map(|l| {
            l.split("(pid ")
                .nth(1)?
                .split(')')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no operator pid in:\n{stdout}"))
}

/// Whether `pid` is still a `beskar7 manager` (a reused pid would be some other program).
fn manager_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("manager"))
}

#[test]
fn demo_past_its_timeout_exits_1_naming_what_is_stuck_and_stops_the_operator() {
    let operator = operator();
    let dir = scratch("timeout");
    // Provisioning takes at least a power cycle, a report and a deployment (well over 500 ms).
    let out = Command::new(BINARY)
        .args(["demo", "--hosts", "2", "--timeout", "500ms", "--operator"])
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
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = stderr.trim();
    assert!(
        line.starts_with("beskar7-sim: timed out after 500ms; not provisioned: demo-cp-0 (")
            && line.contains("demo-md-0 (")
            && !line.contains('\n'),
        "{line}"
    );
    assert!(
        !manager_alive(operator_pid(&stdout)),
        "the operator outlived the demo"
    );
    let log = std::fs::read_to_string(dir.join("operator.log")).expect("operator log");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_interrupted_stops_the_operator_and_exits_cleanly() {
    use std::io::{BufRead, BufReader, Read};
    let operator = operator();
    let dir = scratch("sigint");
    let mut child = Command::new(BINARY)
        .args(["demo", "--hosts", "5", "--operator"])
        .arg(&operator)
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--operator-log")
        .arg(dir.join("operator.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start beskar7-sim demo");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    // Interrupt once the operator has enrolled a host (its controllers run; provisioning takes
    // over a second from there). A SIGTERM within milliseconds of the manager's start, before
    // its caches synced, hangs the manager: an operator bug, reported separately.
    while !seen.contains("host     server-") {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read stdout") == 0 {
            panic!("the demo ended before starting the operator:\n{seen}");
        }
        seen.push_str(&line);
    }
    let pid = operator_pid(&seen);
    assert!(manager_alive(pid), "the operator is not running");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    stdout.read_to_string(&mut seen).expect("read stdout");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}:\n{seen}");
    assert!(
        seen.contains("interrupted; the operator was stopped"),
        "{seen}"
    );
    assert!(!manager_alive(pid), "the operator outlived the demo");
    let log = std::fs::read_to_string(dir.join("operator.log")).expect("operator log");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
