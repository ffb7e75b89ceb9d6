//! Each misbehaviour produces the wire behaviour it promises.

use super::*;
use beskar7_sim::host::Misbehaviour;

fn failed_reason(state: HostState) -> String {
    match state {
        HostState::Failed(reason) => reason,
        other => panic!("not failed: {other:?}"),
    }
}

async fn provisioning(i: u32, misbehaviour: Misbehaviour) -> (Arc<Operator>, SimServer) {
    let op = Operator::start(false).await;
    let s = server(&op, i, |c| c.misbehaviour = Some(misbehaviour)).await;
    op.attempt(&mac(i), attempt(i, &format!("tok-{i}")));
    pxe_boot(&s.bmc, "Once").await;
    (op, s)
}

#[tokio::test]
async fn never_reports_boots_the_agent_and_stays_silent() {
    let (op, s) = provisioning(20, Misbehaviour::NeverReports).await;
    wait_state(&s, |st| *st == HostState::Inspecting).await;
    tokio::time::sleep(fast_timing().poll_interval * 10).await;
    assert_eq!(s.host.state(), HostState::Inspecting);
    let lines = op.call_lines();
    assert_eq!(lines.len(), 2, "first stage and /boot only: {lines:#?}");
}

#[tokio::test]
async fn reports_garbage_gets_a_400_and_stops() {
    let (op, s) = provisioning(21, Misbehaviour::ReportsGarbage).await;
    let reason = failed_reason(wait_state(&s, |st| matches!(st, HostState::Failed(_))).await);
    assert!(
        reason.starts_with("report: the operator answered 400"),
        "{reason}"
    );
    let report = op.wait_call(|c| c.path.contains("/inspection/")).await;
    assert!(serde_json::from_slice::<serde_json::Value>(&report.body).is_err());
    assert_eq!(report.status, 400);
}

#[tokio::test]
async fn too_little_hardware_reports_a_tiny_machine() {
    let (op, s) = provisioning(22, Misbehaviour::TooLittleHardware).await;
    op.wait_call(|c| c.path.contains("/inspection/")).await;
    let report = op.report("host-22").unwrap();
    assert_eq!(report["cpus"].as_array().unwrap().len(), 1);
    assert_eq!(report["cpus"][0]["cores"], 2);
    assert_eq!(report["memory"][0]["capacity"], "4GiB");
    assert_eq!(report["disks"][0]["sizeGB"], 16);
    assert_eq!(
        report["nics"][0]["macAddress"],
        mac(22),
        "still the same server"
    );
    // This fake operator does not check requirements: the host goes on.
    wait_state(&s, |st| *st == HostState::RunningOS).await;
}

#[tokio::test]
async fn fails_deploy_reports_provision_failed_with_the_reason() {
    let reason = "disk write failed: I/O error on /dev/nvme0n1";
    let (op, s) = provisioning(23, Misbehaviour::FailsDeploy(reason.into())).await;
    assert_eq!(
        failed_reason(wait_state(&s, |st| matches!(st, HostState::Failed(_))).await),
        reason
    );
    let call = op
        .wait_call(|c| c.path.contains("/provision-failed/"))
        .await;
    let body: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(body, serde_json::json!({"reason": reason}));
    assert!(!op.call_lines().iter().any(|l| l.contains("/provisioned/")));
    assert_eq!(s.host.os(), None);
}

#[tokio::test]
async fn rebooting_mid_deploy_boots_the_disk_once_the_override_is_consumed() {
    let (op, s) = provisioning(24, Misbehaviour::RebootsMidDeploy).await;
    wait_state(&s, |st| *st == HostState::Deploying).await;
    // The one-time override was consumed by the first boot: the reboot finds an empty disk.
    assert_eq!(
        failed_reason(wait_state(&s, |st| matches!(st, HostState::Failed(_))).await),
        "no bootable device"
    );
    assert!(!op.call_lines().iter().any(|l| l.contains("/provisioned/")));
}

#[tokio::test]
async fn rebooting_mid_deploy_restarts_from_the_first_stage_while_the_override_stays() {
    let op = Operator::start(false).await;
    let s = server(&op, 25, |c| {
        c.misbehaviour = Some(Misbehaviour::RebootsMidDeploy)
    })
    .await;
    // Kexec: the finished deploy does not boot the firmware again (with a Continuous override
    // an Image reboot would PXE once more, and this fake operator never ends its attempt).
    let mut a = attempt(25, "tok-25");
    a.kexec = true;
    op.attempt(&mac(25), a);
    pxe_boot(&s.bmc, "Continuous").await;
    wait_state(&s, |st| *st == HostState::RunningOS).await;
    let lines = op.call_lines();
    let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    // Boot 1: first stage, /boot, report, bootstrap, reboot. Boot 2: the same, provisioned.
    assert_eq!(count("GET /ipxe"), 2, "{lines:#?}");
    assert_eq!(count("/inspection/"), 2, "{lines:#?}");
    assert_eq!(count("/bootstrap/"), 2, "{lines:#?}");
    assert_eq!(count("/provisioned/"), 1, "{lines:#?}");
    let boots = s
        .host
        .events()
        .iter()
        .filter(|e| e.message == "boot from Pxe (UEFI)")
        .count();
    assert_eq!(boots, 2);
}

#[tokio::test]
async fn replaying_an_old_token_gets_401_and_stops() {
    let op = Operator::start(false).await;
    let s = server(&op, 26, |c| {
        c.misbehaviour = Some(Misbehaviour::ReplaysOldToken)
    })
    .await;
    // Attempt 1: no older token yet, so the host uses its own and succeeds.
    let mut first = attempt(26, "tok-first");
    first.kexec = true;
    op.attempt(&mac(26), first);
    pxe_boot(&s.bmc, "Once").await;
    wait_state(&s, |st| *st == HostState::RunningOS).await;

    // Attempt 2: fresh secrets; the host replays attempt 1's token.
    let mut second = attempt(26, "tok-second");
    second.kexec = true;
    second.nonce = "nonce-second".into();
    op.attempt(&mac(26), second);
    reset(&s.bmc, "ForceOff").await;
    wait_state(&s, |st| *st == HostState::PoweredOff).await;
    pxe_boot(&s.bmc, "Once").await;
    let reason = failed_reason(wait_state(&s, |st| matches!(st, HostState::Failed(_))).await);
    assert_eq!(reason, "report: the operator refused the token (401)");
    let last = op.calls().pop().unwrap();
    assert!(last.path.contains("/inspection/"));
    assert_eq!(last.bearer.as_deref(), Some("tok-first"));
    assert_eq!(last.status, 401);
}

/// Not a host misbehaviour but an operator's: the host notices a script meant for another server.
#[tokio::test]
async fn a_script_whose_bootif_names_another_server_fails_the_boot() {
    let op = Operator::start(false).await;
    let s = server(&op, 27, |_| {}).await;
    let mut a = attempt(27, "tok-27");
    a.bootif = Some("01-52-54-00-00-10-99".into());
    op.attempt(&mac(27), a);
    pxe_boot(&s.bmc, "Once").await;
    assert_eq!(
        failed_reason(wait_state(&s, |st| matches!(st, HostState::Failed(_))).await),
        "agent: BOOTIF names 52:54:00:00:10:99, not a NIC of this server"
    );
    assert_eq!(op.calls().len(), 2, "first stage and /boot, no callback");
}
