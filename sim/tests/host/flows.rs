//! The well-behaved host: Image and Kexec provisioning, the two first stages, polling for
//! bootstrap data, cleaning, power-off mid-flight, and secrets kept out of every log.

use super::*;
use beskar7_sim::bmc::BmcConfig;
use beskar7_sim::host::{DiskContents, FirstStage, Handoff};
use std::io::Write;
use std::sync::Mutex;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// current_thread (the default): every task runs on this thread, so the thread-local subscriber
// sees the host's logs too.
#[tokio::test]
async fn a_pxe_booted_host_follows_the_chain_reports_and_boots_its_image() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let op = Operator::start(false).await;
    let s = server(&op, 1, |_| {}).await;
    let a = attempt(1, "tok-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    op.attempt(&mac(1), a.clone());
    assert_eq!(s.host.state(), HostState::PoweredOff);

    pxe_boot(&s.bmc, "Once").await;
    wait_state(&s, |st| *st == HostState::RunningOS).await;

    let lines = op.call_lines();
    let expected = [
        "GET /ipxe?mac=52-54-00-00-10-01 200".to_string(),
        format!(
            "GET /api/v1/boot/sim/host-1/{}?mac=52-54-00-00-10-01 200",
            a.nonce
        ),
        "POST /api/v1/inspection/sim/host-1 202".to_string(),
        "GET /api/v1/bootstrap/sim/host-1 200".to_string(),
        "POST /api/v1/provisioned/sim/host-1 202".to_string(),
    ];
    assert_eq!(lines, expected);
    let calls = op.calls();
    assert!(
        calls[2..]
            .iter()
            .all(|c| c.bearer.as_deref() == Some(a.token.as_str()))
    );
    assert_eq!(
        op.report("host-1").unwrap(),
        s.host.hardware().report(),
        "the report describes the host's hardware"
    );

    let os = s.host.os().unwrap();
    assert_eq!(os.provider_id, a.provider_id);
    assert_eq!(os.bootstrap_sha256, sha256_hex(&a.bootstrap));
    assert_eq!(os.handoff, Handoff::Image);
    assert_eq!(s.host.disk(), DiskContents::Installed(os));
    let events: Vec<String> = s.host.events().into_iter().map(|e| e.message).collect();
    assert!(
        events.iter().any(|e| e == "boot from Hdd (UEFI)"),
        "the Image handoff reboots into the disk: {events:#?}"
    );

    // Nothing secret in the event log or in tracing output.
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("virtual host state"), "logs were captured");
    let bootstrap = String::from_utf8(a.bootstrap.clone()).unwrap();
    for text in [logs, events.join("\n")] {
        for secret in [a.token.as_str(), a.nonce.as_str(), bootstrap.as_str()] {
            assert!(!text.contains(secret), "{secret:?} leaked into {text}");
        }
    }
}

#[tokio::test]
async fn kexec_via_boot_ipxe_and_a_user_script_polls_for_data_and_fetches_the_config_once() {
    let op = Operator::start(false).await;
    let s = server(&op, 2, |c| c.first_stage = FirstStage::BootIpxe).await;
    let mut a = attempt(2, "tok-kexec");
    a.kexec = true;
    a.user_script = true;
    a.bootstrap_ready = false;
    a.config_nonce = Some("cfg-nonce".into());
    op.attempt(&mac(2), a.clone());

    pxe_boot(&s.bmc, "Once").await;
    // 404 means "not yet": the agent keeps polling, in Inspecting.
    for _ in 0..2 {
        let before = op.calls().len();
        op.wait_call(|c| c.path.contains("/bootstrap/") && c.status == 404)
            .await;
        while op.calls().len() == before {
            op.changed.notified().await;
        }
    }
    assert_eq!(s.host.state(), HostState::Inspecting);
    op.set_bootstrap_ready(&mac(2));
    wait_state(&s, |st| *st == HostState::RunningOS).await;

    let lines = op.call_lines();
    assert_eq!(lines[0], "GET /boot.ipxe 200");
    assert_eq!(lines[1], "GET /ipxe?mac=52-54-00-00-10-02 200");
    assert!(lines[2].starts_with("GET /api/v1/boot/sim/host-2/"));
    assert_eq!(
        lines[3], "GET /agent.ipxe 200",
        "chained to the user's script"
    );
    let tail: Vec<&String> = lines.iter().rev().take(3).collect();
    assert_eq!(
        tail,
        [
            "GET /api/v1/config/sim/host-2/cfg-nonce 200",
            "POST /api/v1/provisioned/sim/host-2 202",
            "GET /api/v1/bootstrap/sim/host-2 200",
        ]
    );
    let os = s.host.os().unwrap();
    assert_eq!(os.handoff, Handoff::Kexec);
    assert_eq!(os.config_sha256, Some(sha256_hex(&a.bootstrap)));
    assert_eq!(
        s.host.disk(),
        DiskContents::Empty,
        "kexec runs from RAM, the disk is untouched"
    );
    let boots = s
        .host
        .events()
        .iter()
        .filter(|e| e.message.starts_with("boot from"))
        .count();
    assert_eq!(boots, 1, "no firmware boot after kexec");
}

#[tokio::test]
async fn a_cleaning_boot_reports_wipes_reports_cleaned_and_powers_off() {
    let op = Operator::start(false).await;
    let s = server(&op, 3, |_| {}).await;
    // Provision first, so there is something to wipe.
    op.attempt(&mac(3), attempt(3, "tok-one"));
    pxe_boot(&s.bmc, "Once").await;
    wait_state(&s, |st| *st == HostState::RunningOS).await;
    assert!(matches!(s.host.disk(), DiskContents::Installed(_)));

    let mut clean = attempt(3, "tok-clean");
    clean.clean = true;
    clean.nonce = "nonce-clean".into();
    op.attempt(&mac(3), clean);
    reset(&s.bmc, "ForceOff").await;
    wait_state(&s, |st| *st == HostState::PoweredOff).await;
    pxe_boot(&s.bmc, "Once").await;
    wait_state(&s, |st| *st == HostState::Cleaning).await;
    wait_state(&s, |st| *st == HostState::PoweredOff).await;

    let lines = op.call_lines();
    let tail: Vec<&str> = lines.iter().rev().take(2).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "POST /api/v1/cleaned/sim/host-3 202",
            "POST /api/v1/inspection/sim/host-3 202"
        ]
    );
    assert_eq!(s.host.disk(), DiskContents::Empty);
    assert_eq!(s.bmc.system()["PowerState"], "Off");
}

#[tokio::test]
async fn a_power_off_mid_flight_stops_the_agent() {
    let op = Operator::start(false).await;
    let s = server(&op, 4, |_| {}).await;
    let mut a = attempt(4, "tok-off");
    a.bootstrap_ready = false;
    op.attempt(&mac(4), a);
    pxe_boot(&s.bmc, "Once").await;
    op.wait_call(|c| c.path.contains("/bootstrap/")).await;

    reset(&s.bmc, "ForceOff").await;
    wait_state(&s, |st| *st == HostState::PoweredOff).await;
    // A request already on the wire when the power went may still be recorded; after that,
    // nothing more comes.
    tokio::time::sleep(fast_timing().poll_interval * 2).await;
    let calls = op.calls().len();
    // Ten poll intervals of silence: nothing is still running.
    tokio::time::sleep(fast_timing().poll_interval * 10).await;
    assert_eq!(op.calls().len(), calls, "{:#?}", op.call_lines());
    assert_eq!(s.host.os(), None);
}

#[tokio::test]
async fn an_unknown_mac_exits_ipxe_and_boots_the_empty_disk() {
    let op = Operator::start(false).await;
    let s = server(&op, 5, |_| {}).await;
    pxe_boot(&s.bmc, "Once").await;
    let state = wait_state(&s, |st| matches!(st, HostState::Failed(_))).await;
    assert_eq!(state, HostState::Failed("no bootable device".into()));
    assert_eq!(op.call_lines(), ["GET /ipxe?mac=52-54-00-00-10-05 200"]);
}

#[tokio::test]
async fn callbacks_trust_only_the_ca_of_the_kernel_line() {
    // The HTTPS listener presents a leaf of another CA than the one `beskar7.ca` carries.
    let op = Operator::start(true).await;
    let s = server(&op, 6, |_| {}).await;
    let mut a = attempt(6, "tok-ca");
    a.timeout_secs = 1;
    op.attempt(&mac(6), a);
    pxe_boot(&s.bmc, "Once").await;
    let state = wait_state(&s, |st| matches!(st, HostState::Failed(_))).await;
    let HostState::Failed(reason) = state else {
        unreachable!()
    };
    assert!(
        reason.contains("gave up") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    assert!(
        !op.calls().iter().any(|c| c.path.contains("/inspection/")),
        "no request got through the handshake"
    );
}

#[tokio::test]
async fn many_servers_each_with_a_bmc_describing_its_host() {
    let op = Operator::start(false).await;
    let mut config = HostConfig::new(&op.boot_url);
    config.timing = fast_timing();
    let servers = SimServer::start_many("rack", 3, BmcConfig::default(), config)
        .await
        .unwrap();
    let http = crate::support::http_client(Duration::from_secs(5));
    let mut urls = std::collections::HashSet::new();
    for (i, s) in servers.iter().enumerate() {
        assert_eq!(s.host.name(), format!("rack-{}", i + 1));
        assert!(urls.insert(s.redfish_url.clone()));
        let get = |url: String| {
            let http = http.clone();
            async move {
                http.get(url)
                    .basic_auth("admin", Some("password"))
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
        let base = s.redfish_url.split("/redfish/").next().unwrap().to_string();
        let nics = get(format!("{}/EthernetInterfaces", s.redfish_url)).await;
        let nic = get(format!(
            "{base}{}",
            nics["Members"][0]["@odata.id"].as_str().unwrap()
        ))
        .await;
        assert_eq!(
            nic["MACAddress"].as_str().unwrap().to_ascii_lowercase(),
            s.host.hardware().boot_mac().unwrap(),
            "the BMC describes the host's NIC"
        );
        let system: serde_json::Value = http
            .get(&s.redfish_url)
            .basic_auth("admin", Some("password"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(system["SerialNumber"], s.host.hardware().serial);
        let macs: Vec<String> = s
            .host
            .hardware()
            .nics
            .iter()
            .map(|n| n.mac.clone())
            .collect();
        assert_eq!(macs, [beskar7_sim::host::mac_for(i as u32 + 1)]);
    }
}

#[tokio::test]
async fn the_first_stage_over_https_trusts_the_configured_ca() {
    let op = Operator::start(false).await;
    let callback_url = op.callback_url.clone();
    let s = server(&op, 7, |c| {
        c.boot_url = callback_url;
        c.boot_ca_pem = Some(operator::CA_PEM.to_string());
    })
    .await;
    op.attempt(&mac(7), attempt(7, "tok-https"));
    pxe_boot(&s.bmc, "Once").await;
    wait_state(&s, |st| *st == HostState::RunningOS).await;
    assert_eq!(op.call_lines()[0], "GET /ipxe?mac=52-54-00-00-10-07 200");
}

#[tokio::test]
async fn the_agent_gives_up_after_beskar7_timeout() {
    let op = Operator::start(false).await;
    let s = server(&op, 8, |_| {}).await;
    let mut a = attempt(8, "tok-timeout");
    a.timeout_secs = 1;
    a.bootstrap_ready = false;
    op.attempt(&mac(8), a);
    pxe_boot(&s.bmc, "Once").await;
    let state = wait_state(&s, |st| matches!(st, HostState::Failed(_))).await;
    let HostState::Failed(reason) = state else {
        unreachable!()
    };
    assert!(reason.contains("gave up"), "{reason}");
    let polls = op
        .calls()
        .iter()
        .filter(|c| c.path.contains("/bootstrap/"))
        .count();
    assert!(polls > 3, "it polled meanwhile: {polls}");
}
