//! The client against OpenStack's sushy-emulator (sushy-tools, fake driver), the BMC metal3 runs
//! its end-to-end tests on: Basic auth from an htpasswd file, plain HTTP and HTTPS, 127.0.0.1,
//! a fresh state directory per emulator. The emulator comes from the test venv
//! (`make venv`, i.e. `.ci/python-venv.sh`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use beskar7::redfish::{AuthMode, Bmc, BootMode, PowerAction, RedfishClient, TlsOptions};

use super::config;

const MAC: &str = "00:5c:52:31:3a:9c";

/// A running sushy-emulator, stopped and cleaned up when dropped.
struct Sushy {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn venv_bin(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: create the test venv with `make venv` (.ci/python-venv.sh)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

impl Sushy {
    fn start(tls: bool) -> Sushy {
        let dir = std::env::temp_dir().join(format!(
            "beskar7-sushy-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("state")).expect("state dir");
        // bcrypt is the only hash sushy-emulator's htpasswd reader accepts.
        let hash = Command::new(venv_bin("python"))
            .args([
                "-c",
                "import bcrypt; print(bcrypt.hashpw(b'password', bcrypt.gensalt(4)).decode())",
            ])
            .output()
            .expect("hash the password");
        assert!(
            hash.status.success(),
            "{}",
            String::from_utf8_lossy(&hash.stderr)
        );
        std::fs::write(
            dir.join("htpasswd"),
            format!("admin:{}", String::from_utf8_lossy(&hash.stdout).trim()),
        )
        .unwrap();
        let port = free_port();
        let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/redfish/certs");
        let mut conf = format!(
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\nSUSHY_EMULATOR_FAKE_DRIVER = True\n\
             SUSHY_EMULATOR_STATE_DIR = '{state}'\nSUSHY_EMULATOR_AUTH_FILE = '{auth}'\n\
             SUSHY_EMULATOR_FAKE_SYSTEMS = [{{'uuid': '27946b59-9e44-4fa7-8e91-f3527a1ef094', 'name': 'node-0', \
             'power_state': 'Off', 'external_notifier': False, 'nics': [{{'mac': '{MAC}', 'ip': '127.0.0.10'}}]}}]\n",
            state = dir.join("state").display(),
            auth = dir.join("htpasswd").display(),
        );
        if tls {
            conf.push_str(&format!(
                "SUSHY_EMULATOR_SSL_CERT = '{}'\nSUSHY_EMULATOR_SSL_KEY = '{}'\n",
                certs.join("bmc.pem").display(),
                certs.join("bmc.key").display()
            ));
        }
        std::fs::write(dir.join("emulator.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.join("emulator.log")).unwrap();
        let child = Command::new(venv_bin("sushy-emulator"))
            .arg("--config")
            .arg(dir.join("emulator.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start sushy-emulator");
        let scheme = if tls { "https" } else { "http" };
        let sushy = Sushy {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(sushy.dir.join("emulator.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "sushy-emulator did not listen within 20 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sushy
    }
}

fn client(url: &str, tls: TlsOptions) -> RedfishClient {
    let mut cfg = config(url, AuthMode::Auto);
    cfg.credentials = beskar7::redfish::Credentials::new("admin", "password");
    cfg.tls = tls;
    // The fake driver takes 1-11 s to change power; poll often, wait long enough.
    cfg.policy.power_poll_interval = Duration::from_millis(250);
    cfg.policy.request_timeout = Duration::from_secs(10);
    RedfishClient::new(cfg).expect("client")
}

#[tokio::test]
async fn sushy_emulator_enrolls_boots_pxe_once_and_powers_on_and_off() {
    let sushy = Sushy::start(false);
    let bmc = client(&sushy.url, TlsOptions::SystemRoots);
    // No SessionService on sushy-emulator: Auto falls back to Basic.
    let inventory = bmc.inventory().await.expect("inventory");
    assert_eq!(inventory.manufacturer.as_deref(), Some("Sushy Emulator"));
    assert!(inventory.snapshot.power.is_off());
    assert_eq!(
        inventory
            .nics
            .iter()
            .map(|n| n.mac.as_str())
            .collect::<Vec<_>>(),
        [MAC]
    );

    let set = bmc
        .set_pxe_once(Some(BootMode::Uefi))
        .await
        .expect("one-time PXE");
    assert_eq!(
        (set.target.as_deref(), set.mode.as_deref()),
        (Some("Pxe"), Some("UEFI"))
    );
    let on = bmc
        .set_power(PowerAction::On, Some(Duration::from_secs(30)))
        .await
        .expect("power on");
    assert!(on.state.is_on());
    assert_eq!(on.sent, ["On"]);
    let again = bmc
        .set_power(PowerAction::On, None)
        .await
        .expect("already on");
    assert!(again.sent.is_empty(), "already on: nothing sent");

    let before = bmc.requests_sent();
    assert!(bmc.check().await.expect("idle check").power.is_on());
    assert_eq!(
        bmc.requests_sent() - before,
        1,
        "an idle check with Basic is one GET"
    );

    let off = bmc
        .set_power(PowerAction::Off, Some(Duration::from_secs(30)))
        .await
        .expect("power off");
    assert!(off.state.is_off());
    let cleared = bmc.clear_boot_override().await.expect("clear");
    assert_ne!(cleared.target.as_deref(), Some("Pxe"));
}

#[tokio::test]
async fn sushy_emulator_refuses_a_wrong_password() {
    let sushy = Sushy::start(false);
    let mut cfg = config(&sushy.url, AuthMode::Auto);
    cfg.credentials = beskar7::redfish::Credentials::new("admin", "not-the-password");
    let err = RedfishClient::new(cfg)
        .expect("client")
        .inventory()
        .await
        .expect_err("wrong password");
    assert_eq!(err.reason(), "AuthRejected");
    assert!(
        !err.to_string().contains("not-the-password"),
        "the password stays out of errors: {err}"
    );
}

#[tokio::test]
async fn sushy_emulator_over_https_needs_its_ca() {
    let sushy = Sushy::start(true);
    let err = client(&sushy.url, TlsOptions::SystemRoots)
        .inventory()
        .await
        .expect_err("self-signed is refused");
    assert_eq!(err.reason(), "TLSFailure");
    let ca =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/redfish/certs/ca.pem"))
            .unwrap();
    let inventory = client(&sushy.url, TlsOptions::CaBundle(ca))
        .inventory()
        .await
        .expect("trusted with the CA bundle");
    assert_eq!(inventory.nics.len(), 1);
    client(&sushy.url, TlsOptions::InsecureSkipVerify)
        .inventory()
        .await
        .expect("insecure-skip-verify");
}
