//! HTTP 202 task monitors: poll the `Location` until it stops answering 202.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::error::{RedfishError, Result};
use super::transport::{Conn, Resp, path_of};

/// Follows a 202: GET the monitor while it answers 202, sleeping `Retry-After` (seconds) or
/// the default interval; the first other answer is the operation's result. The monitor is
/// never read again after that (on XCC that GET deletes the finished task). A 202 without a
/// `Location` is taken as accepted: the callers verify their effect by reading back.
pub(crate) async fn wait(conn: &mut Conn, first: Resp) -> Result<Resp> {
    let Some(monitor) = first.header("location").map(path_of) else {
        tracing::debug!(path = %first.path, "202 without a task monitor");
        return Ok(first);
    };
    let policy = conn.policy().clone();
    let deadline = tokio::time::Instant::now() + policy.task_timeout;
    let mut pause = retry_after(&first).unwrap_or(policy.task_poll_interval);
    loop {
        if tokio::time::Instant::now() + pause > deadline {
            return Err(RedfishError::Timeout {
                what: format!(
                    "task {monitor} still running after {:?}",
                    policy.task_timeout
                ),
            });
        }
        tokio::time::sleep(pause.min(policy.task_poll_max)).await;
        let resp = conn.request(Method::GET, &monitor, None, None).await?;
        if resp.status.as_u16() == 202 {
            pause = retry_after(&resp).unwrap_or(policy.task_poll_interval);
            continue;
        }
        if !resp.is_success() {
            return Err(resp.error());
        }
        // A final Task body may still report failure.
        if let Ok(v) = serde_json::from_slice::<Value>(&resp.body)
            && let Some(state) = v.get("TaskState").and_then(Value::as_str)
            && matches!(state, "Exception" | "Killed" | "Cancelled" | "Interrupted")
        {
            let (id, msg) = task_message(&v);
            let detail = [Some(format!("TaskState {state}")), id, msg]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            return Err(RedfishError::TaskFailed { monitor, detail });
        }
        return Ok(resp);
    }
}

fn retry_after(resp: &Resp) -> Option<Duration> {
    resp.header("retry-after")?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn task_message(v: &Value) -> (Option<String>, Option<String>) {
    let first = v
        .get("Messages")
        .and_then(Value::as_array)
        .and_then(|m| m.first());
    let id = first
        .and_then(|m| m.get("MessageId").or_else(|| m.get("MessageID")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let msg = first
        .and_then(|m| m.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    (id, msg)
}
