//! HTTP 202 task monitors.

use beskar7::redfish::{AuthMode, Bmc, PowerAction, RedfishError};
use serde_json::json;

use super::mock::{Persona, dl325, empty, respond};
use super::{DL325_SYS, client};

const MONITOR: &str = "/redfish/v1/TaskService/TaskMonitors/42";

fn accepted() -> axum::response::Response {
    let mut r = empty(202);
    r.headers_mut()
        .insert("location", MONITOR.parse().expect("hv"));
    r.headers_mut()
        .insert("retry-after", "0".parse().expect("hv"));
    r
}

/// 202 + Location + Retry-After: polled while 202; the monitor is not read after it finished
/// (on XCC that GET deletes the finished task).
#[tokio::test]
async fn reset_through_a_task_monitor() {
    let persona = Persona::default().hook(|s, r| {
        if r.is("POST", "ComputerSystem.Reset") {
            return Some(accepted());
        }
        if r.path == MONITOR {
            if s.bump("polls") < 3 {
                return Some(accepted());
            }
            if s.n["polls"] == 3 {
                s.system_mut(DL325_SYS)["PowerState"] = json!("Off");
                return Some(respond(
                    200,
                    json!({"TaskState": "Completed", "TaskStatus": "OK"}),
                ));
            }
            return Some(respond(404, json!({}))); // XCC: deleted once read
        }
        None
    });
    let bmc = dl325(persona).await;
    let out = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Off, None)
        .await
        .expect("off");
    assert!(out.state.is_off());
    assert_eq!(bmc.log().iter().filter(|r| r.path == MONITOR).count(), 3);
}

#[tokio::test]
async fn failed_task_names_its_message() {
    let persona = Persona::default().hook(|s, r| {
        if r.is("POST", "ComputerSystem.Reset") {
            return Some(accepted());
        }
        if r.path == MONITOR {
            return Some(if s.bump("polls") < 2 {
                accepted()
            } else {
                respond(200, json!({"TaskState": "Exception", "Messages": [{"MessageId": "Base.1.8.InternalError", "Message": "the reset failed"}]}))
            });
        }
        None
    });
    let bmc = dl325(persona).await;
    let err = client(&bmc, AuthMode::Auto)
        .set_power(PowerAction::Off, None)
        .await
        .expect_err("failed");
    assert!(matches!(err, RedfishError::TaskFailed { .. }), "{err}");
    let s = err.to_string();
    assert!(
        s.contains("Base.1.8.InternalError") && s.contains(MONITOR),
        "{s}"
    );
}

#[tokio::test]
async fn task_that_never_finishes_times_out() {
    let persona = Persona::default()
        .hook(|_, r| (r.is("POST", "ComputerSystem.Reset") || r.path == MONITOR).then(accepted));
    let bmc = dl325(persona).await;
    let mut cfg = super::config(&bmc.url(), AuthMode::Auto);
    cfg.policy.task_timeout = std::time::Duration::from_millis(200);
    let c = beskar7::redfish::RedfishClient::new(cfg).expect("client");
    let err = c
        .set_power(PowerAction::Off, None)
        .await
        .expect_err("timeout");
    assert!(matches!(err, RedfishError::Timeout { .. }), "{err}");
    assert_eq!(bmc.sessions().1, 0);
}
