//! The real agent (`beskar7-agent`) against the callback servers: it parses the kernel line
//! `/boot` rendered, pins `beskar7.ca`, and makes its calls over HTTPS with `beskar7.token`.

use std::time::Duration;

use beskar7::api::{AttemptMode, HostState};
use beskar7_agent::callbacks::{Callbacks, Settings};
use beskar7_agent::cmdline::{self, Mode};
use beskar7_agent::report::InspectionReport;

use super::support::*;

const MAC: &str = "52:54:00:12:34:56";
const GOLDEN_REPORT: &str =
    include_str!("../../../shared/fixtures/inspector-contract/golden_inspection_report.json");

#[tokio::test]
async fn the_agent_parses_the_rendered_line_and_completes_its_calls() {
    let env = env().await;
    create_bootstrap_secret(&env, "machine-1-bootstrap", BOOTSTRAP).await;
    let h = create_host(&env, "host-01", MAC, Some(intent("host-01"))).await;
    start_attempt(
        &env,
        &h,
        HostState::Inspecting,
        AttemptMode::Provision,
        false,
    )
    .await;

    // iPXE's path: first stage, then the chained URL.
    let (_, stage) = get(&env, &format!("/ipxe?mac={MAC}")).await;
    let chained = stage
        .lines()
        .nth(1)
        .unwrap()
        .strip_prefix("chain ")
        .unwrap()
        .to_owned();
    let script = env
        .http
        .get(&chained)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let kernel_args = script
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("kernel "))
        .unwrap()
        .to_owned();

    let params = cmdline::parse(&kernel_args).expect("the agent accepts the rendered line");
    assert_eq!(
        (params.namespace.as_str(), params.host.as_str()),
        (NS, "host-01")
    );
    assert!(matches!(params.mode, Mode::Provision(_)));
    assert!(params.unknown.is_empty(), "{:?}", params.unknown);
    assert_eq!(params.ca_pem, env.tls.ca_pem);
    assert_eq!(params.timeout, Some(Duration::from_secs(20 * 60)));

    let settings = Settings {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        budget: Duration::from_secs(5),
        ..Settings::default()
    };
    let callbacks = Callbacks::new(&params, settings).expect("the pinned-CA client");
    let callbacks = std::sync::Arc::new(callbacks);
    let report: InspectionReport = serde_json::from_str(GOLDEN_REPORT).unwrap();
    let c = callbacks.clone();
    tokio::task::spawn_blocking(move || c.post_report(&report))
        .await
        .unwrap()
        .expect("report accepted");
    let status = host(&env, "host-01").await.status.unwrap();
    assert_eq!(status.inspection.unwrap().cpu_cores, Some(64));

    set_state(&env, "host-01", HostState::Deploying).await;
    let c = callbacks.clone();
    let data = tokio::task::spawn_blocking(move || c.fetch_bootstrap())
        .await
        .unwrap()
        .expect("bootstrap data");
    assert!(
        data.expose()
            .ends_with(b"provider-id: b7://lab/host-01/machine-1\n")
    );
    let c = callbacks.clone();
    tokio::task::spawn_blocking(move || c.provisioned())
        .await
        .unwrap()
        .expect("provisioned accepted");
    assert!(attempt(&env, "host-01").await.provisioned_at.is_some());
}
