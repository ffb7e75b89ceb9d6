//! The run loop end to end as a normal process: a scripted HTTPS operator (which also serves
//! the target) on 127.0.0.1, a fixture machine tree whose "disk" is a temp file, and an executor
//! that records what would be loaded, mounted and rebooted instead of doing it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use beskar7_agent::callbacks::Settings;
use beskar7_agent::cmdline::{self, BootParams};
use beskar7_agent::handoff::digest::sha256;
use beskar7_agent::http::Timeouts;
use beskar7_agent::probe::Root;
use beskar7_agent::run::{self, Env, Executor, Finish};

use crate::https_server::{Recorded, TestServer, read_cert, response};
use crate::testing::TempTree;

const TOKEN: &str = "tOkEn_0123456789abcdefghijklmnopqrstuvwxyzAB";
const BOOTSTRAP: &[u8] = b"#cloud-config\nkubeadm: {join: secret-join-token}\n";
const MIB: usize = 1 << 20;

/// What the fake operator answers, by path.
struct Operator {
    target: Vec<u8>,
    /// `/bootstrap` answers 404 this many times first.
    not_ready: usize,
    /// Status of `/bootstrap` once ready (200, or 401 to refuse).
    bootstrap_status: u16,
}

fn serve(op: Operator) -> TestServer {
    let mut polls = 0;
    TestServer::start(
        "leaf",
        Box::new(move |r: &Recorded| match r.path.as_str() {
            "/target" => response(200, &op.target),
            "/api/v1/bootstrap/ns/h1" => {
                polls += 1;
                if polls <= op.not_ready {
                    response(404, b"")
                } else {
                    response(op.bootstrap_status, BOOTSTRAP)
                }
            }
            // inspection, provisioned, provision-failed, cleaned
            p if p.starts_with("/api/v1/") => response(202, br#"{"status":"accepted"}"#),
            _ => response(404, b"no such path"),
        }),
    )
}

fn params(server: &TestServer, extra: &str) -> BootParams {
    let ca = base64::engine::general_purpose::STANDARD.encode(read_cert("ca.pem"));
    let api = format!("https://{}", server.addr);
    cmdline::parse(&format!(
        "BOOT_IMAGE=vmlinuz beskar7.api={api} beskar7.namespace=ns beskar7.host=h1 \
         beskar7.token={TOKEN} beskar7.ca={ca} beskar7.timeout=600 {extra}"
    ))
    .unwrap()
}

/// A machine with one 8 MiB virtio disk `vda`, backed by the file `dev/vda`.
fn machine(fill: u8) -> TempTree {
    let tree = TempTree::new();
    tree.file("sys/block/vda/size", format!("{}\n", 8 * MIB / 512));
    tree.file("sys/block/vda/queue/rotational", "1\n");
    tree.file("dev/vda", vec![fill; 8 * MIB]);
    tree.file(
        "proc/cpuinfo",
        "processor\t: 0\nvendor_id\t: GenuineIntel\n",
    );
    tree
}

fn env(tree: &TempTree, params: &BootParams) -> Env {
    let mut env = Env::new(Root::new(tree.path("")), params);
    env.work_dir = tree.path("run/beskar7");
    env.settings = Settings {
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            io: Duration::from_secs(2),
            request: Duration::from_secs(5),
        },
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        budget: Duration::from_secs(20),
        connect_to: None,
    };
    env.download_timeout = Duration::from_secs(5);
    env
}

/// Records instead of acting.
#[derive(Default)]
struct Recorder {
    /// (kernel bytes, initrd bytes, cmdline) of the load.
    kexec: Option<(Vec<u8>, Vec<u8>, String)>,
    refuse_kexec: bool,
    oem_dir: Option<PathBuf>,
    rereads: usize,
    finished: Vec<Finish>,
}

impl Executor for Recorder {
    fn load_kexec(&mut self, kernel: &Path, initrd: &Path, cmdline: &str) -> Result<(), String> {
        if self.refuse_kexec {
            return Err("Operation not permitted (os error 1) (is Secure Boot lockdown …)".into());
        }
        self.kexec = Some((
            std::fs::read(kernel).unwrap(),
            std::fs::read(initrd).unwrap(),
            cmdline.to_string(),
        ));
        Ok(())
    }

    fn reread_partitions(&mut self, _disk: &std::fs::File) {
        self.rereads += 1;
    }

    fn with_oem(
        &mut self,
        _root: &Root,
        _disk: &str,
        write: &mut dyn FnMut(&Path) -> std::io::Result<()>,
    ) -> Result<(), String> {
        let dir = self.oem_dir.clone().expect("an OEM directory");
        write(&dir).map_err(|e| e.to_string())
    }

    fn finish(&mut self, how: Finish) -> Result<(), String> {
        self.finished.push(how);
        Ok(())
    }
}

fn paths(server: &TestServer) -> Vec<String> {
    let mut out: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    out.dedup();
    out
}

fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    // Built with tar(1)'s format by hand: ustar headers, as the unit tests check in detail.
    let mut out = Vec::new();
    for (name, content) in files {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{:011o}", content.len()).as_bytes());
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend(h);
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend([0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&out).unwrap();
    gz.finish().unwrap()
}

#[test]
fn kexec_handoff_loads_the_target_with_the_data_then_reports_then_executes() {
    let target = tar(&[
        ("vmlinuz", b"KERNEL-IMAGE"),
        ("initrd.img", &[0x1f, 0x8b, 1, 2, 3]),
        (
            "cmdline",
            b"console=ttyS0 config_url=BESKAR7_CONFIG_URL provider=BESKAR7_PROVIDER_ID\n",
        ),
    ]);
    let digest = sha256(&target);
    let server = serve(Operator {
        target,
        not_ready: 2,
        bootstrap_status: 200,
    });
    let config_url = format!("https://{}/api/v1/config/ns/h1/cfgn0nce", server.addr);
    let params = params(
        &server,
        &format!(
            "beskar7.target=https://{}/target beskar7.target-digest={digest} \
             beskar7.provider-id=b7://ns/h1/m1 beskar7.handoff=kexec beskar7.config-url={config_url}",
            server.addr
        ),
    );
    let tree = machine(0xee);
    let mut exec = Recorder::default();
    let finish = run::run(&params, &env(&tree, &params), &mut exec).unwrap();
    assert_eq!(finish, Finish::Kexec);
    assert_eq!(exec.finished, [Finish::Kexec]);

    let (kernel, initrd, cmdline) = exec.kexec.expect("the target was loaded");
    assert_eq!(kernel, b"KERNEL-IMAGE");
    assert_eq!(
        cmdline,
        format!("console=ttyS0 config_url={config_url} provider=b7://ns/h1/m1")
    );
    // The original initrd, zero padding to 512, then our newc archive.
    assert_eq!(&initrd[..5], &[0x1f, 0x8b, 1, 2, 3]);
    assert!(initrd[5..512].iter().all(|&b| b == 0));
    let ours = String::from_utf8_lossy(&initrd[512..]);
    assert!(ours.starts_with("070701"), "{ours}");
    assert!(ours.contains("beskar7/user-data"));
    assert!(ours.contains("secret-join-token"));
    assert!(ours.contains("beskar7/provider-id\0"));
    assert!(ours.contains("b7://ns/h1/m1"));
    assert!(ours.contains("TRAILER!!!"));

    assert_eq!(
        paths(&server),
        [
            "/api/v1/inspection/ns/h1",
            "/api/v1/bootstrap/ns/h1",
            "/target",
            "/api/v1/provisioned/ns/h1",
        ]
    );
    // The disk was not touched.
    assert!(
        std::fs::read(tree.path("dev/vda"))
            .unwrap()
            .iter()
            .all(|&b| b == 0xee)
    );
}

#[test]
fn kexec_refused_by_the_kernel_is_reported_as_provision_failed() {
    let target = tar(&[("vmlinuz", b"K"), ("initrd.img", b"I")]);
    let server = serve(Operator {
        target,
        not_ready: 0,
        bootstrap_status: 200,
    });
    let params = params(
        &server,
        &format!(
            "beskar7.target=https://{}/target beskar7.provider-id=b7://ns/h1/m1 \
             beskar7.handoff=kexec",
            server.addr
        ),
    );
    let tree = machine(0);
    let mut exec = Recorder {
        refuse_kexec: true,
        ..Recorder::default()
    };
    let err = run::run(&params, &env(&tree, &params), &mut exec).unwrap_err();
    assert!(
        err.contains("the kernel refused to load the Kexec target"),
        "{err}"
    );
    assert!(exec.finished.is_empty(), "nothing is executed");
    let failed = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/provision-failed/ns/h1")
        .expect("provision-failed was posted");
    let body: serde_json::Value = serde_json::from_slice(&failed.body).unwrap();
    assert!(
        body["reason"].as_str().unwrap().contains("Secure Boot"),
        "{body}"
    );
    assert!(!paths(&server).contains(&"/api/v1/provisioned/ns/h1".to_string()));
}

fn image_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8 ^ 0x5a).collect()
}

#[test]
fn image_handoff_writes_the_disk_and_the_oem_files_then_reboots() {
    let img = image_of(3 * MIB + 4096);
    let server = serve(Operator {
        target: img.clone(),
        not_ready: 1,
        bootstrap_status: 200,
    });
    let params = params(
        &server,
        &format!(
            "beskar7.target=https://{}/target beskar7.target-digest={} \
             beskar7.provider-id=b7://ns/h1/m1",
            server.addr,
            sha256(&img)
        ),
    );
    let tree = machine(0xee);
    let oem = tree.dir("mnt/oem");
    let mut exec = Recorder {
        oem_dir: Some(oem.clone()),
        ..Recorder::default()
    };
    let finish = run::run(&params, &env(&tree, &params), &mut exec).unwrap();
    assert_eq!(
        (finish, exec.finished.as_slice()),
        (Finish::Reboot, &[Finish::Reboot][..])
    );
    let disk = std::fs::read(tree.path("dev/vda")).unwrap();
    assert_eq!(disk.len(), 8 * MIB);
    assert_eq!(&disk[..img.len()], &img[..]);
    assert!(exec.rereads >= 1);
    assert_eq!(
        std::fs::read(oem.join("99_beskar7.yaml")).unwrap(),
        BOOTSTRAP
    );
    assert_eq!(
        std::fs::read(oem.join("beskar7/provider-id")).unwrap(),
        b"b7://ns/h1/m1"
    );
    assert_eq!(
        paths(&server),
        [
            "/api/v1/inspection/ns/h1",
            "/api/v1/bootstrap/ns/h1",
            "/target",
            "/api/v1/provisioned/ns/h1",
        ]
    );
}

#[test]
fn image_digest_mismatch_wipes_the_disk_ends_and_reports_provision_failed() {
    let img = image_of(3 * MIB);
    let server = serve(Operator {
        target: img.clone(),
        not_ready: 0,
        bootstrap_status: 200,
    });
    let params = params(
        &server,
        &format!(
            "beskar7.target=https://{}/target beskar7.target-digest={} \
             beskar7.provider-id=b7://ns/h1/m1",
            server.addr,
            sha256(b"what the operator expected")
        ),
    );
    let tree = machine(0xee);
    let mut exec = Recorder {
        oem_dir: Some(tree.dir("mnt/oem")),
        ..Recorder::default()
    };
    let err = run::run(&params, &env(&tree, &params), &mut exec).unwrap_err();
    assert!(err.contains("provisioning failed (reported)"), "{err}");
    assert!(exec.finished.is_empty());
    let disk = std::fs::read(tree.path("dev/vda")).unwrap();
    assert!(disk[..MIB].iter().all(|&b| b == 0));
    assert!(disk[8 * MIB - MIB..].iter().all(|&b| b == 0));
    assert!(!tree.path("mnt/oem/99_beskar7.yaml").exists());
    let failed = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/provision-failed/ns/h1")
        .expect("provision-failed was posted");
    let reason = String::from_utf8(failed.body).unwrap();
    assert!(reason.contains(&sha256(&img).to_string()), "{reason}");
    assert!(!reason.contains(TOKEN) && !reason.contains("secret-join-token"));
}

#[test]
fn a_refused_token_stops_before_any_handoff() {
    let server = serve(Operator {
        target: image_of(MIB),
        not_ready: 0,
        bootstrap_status: 401,
    });
    let params = params(
        &server,
        &format!(
            "beskar7.target=https://{}/target beskar7.target-digest={} \
             beskar7.provider-id=b7://ns/h1/m1",
            server.addr,
            sha256(b"x")
        ),
    );
    let tree = machine(0xee);
    let mut exec = Recorder::default();
    let err = run::run(&params, &env(&tree, &params), &mut exec).unwrap_err();
    assert!(err.contains("refused the token"), "{err}");
    assert!(!err.contains(TOKEN));
    assert_eq!(
        paths(&server),
        ["/api/v1/inspection/ns/h1", "/api/v1/bootstrap/ns/h1"]
    );
    assert!(
        std::fs::read(tree.path("dev/vda"))
            .unwrap()
            .iter()
            .all(|&b| b == 0xee)
    );
    assert!(exec.finished.is_empty());
}

#[test]
fn cleaning_wipes_partitions_and_disk_ends_reports_cleaned_and_powers_off() {
    let server = serve(Operator {
        target: Vec::new(),
        not_ready: 0,
        bootstrap_status: 404,
    });
    let params = params(&server, "beskar7.mode=clean");
    let tree = machine(0xee);
    // A partition from 3 MiB to 5 MiB: its first and last MiB are wiped too.
    tree.file("sys/block/vda/vda1/partition", "1\n");
    tree.file("sys/block/vda/vda1/start", format!("{}\n", 3 * MIB / 512));
    tree.file("sys/block/vda/vda1/size", format!("{}\n", 2 * MIB / 512));
    let mut exec = Recorder::default();
    let finish = run::run(&params, &env(&tree, &params), &mut exec).unwrap();
    assert_eq!(
        (finish, exec.finished.as_slice()),
        (Finish::PowerOff, &[Finish::PowerOff][..])
    );
    let disk = std::fs::read(tree.path("dev/vda")).unwrap();
    let zero = |r: std::ops::Range<usize>| disk[r].iter().all(|&b| b == 0);
    let kept = |r: std::ops::Range<usize>| disk[r].iter().all(|&b| b == 0xee);
    assert!(zero(0..MIB) && kept(MIB..3 * MIB) && zero(3 * MIB..5 * MIB));
    assert!(kept(5 * MIB..7 * MIB) && zero(7 * MIB..8 * MIB));
    assert_eq!(
        paths(&server),
        ["/api/v1/inspection/ns/h1", "/api/v1/cleaned/ns/h1"]
    );
}

/// Runs a provisioning boot whose target is `target`, expecting a failure; returns the reason
/// posted as provision-failed and the machine.
fn failing_provision(target: Vec<u8>, extra: &str) -> (String, TempTree, Recorder) {
    let server = serve(Operator {
        target,
        not_ready: 0,
        bootstrap_status: 200,
    });
    let params = params(
        &server,
        &format!(
            "beskar7.target=https://{}/target beskar7.provider-id=b7://ns/h1/m1 {extra}",
            server.addr
        ),
    );
    let tree = machine(0xee);
    let mut exec = Recorder {
        oem_dir: Some(tree.dir("mnt/oem")),
        ..Recorder::default()
    };
    let err = run::run(&params, &env(&tree, &params), &mut exec).unwrap_err();
    assert!(err.contains("provisioning failed (reported)"), "{err}");
    assert!(exec.finished.is_empty() && exec.kexec.is_none());
    let failed = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/provision-failed/ns/h1")
        .expect("provision-failed was posted");
    assert!(!paths(&server).contains(&"/api/v1/provisioned/ns/h1".to_string()));
    let body: serde_json::Value = serde_json::from_slice(&failed.body).unwrap();
    let reason = body["reason"].as_str().unwrap().to_string();
    assert!(!reason.contains(TOKEN) && !reason.contains("secret-join-token"));
    (reason, tree, exec)
}

#[test]
fn a_kexec_target_without_an_initrd_is_named_in_provision_failed() {
    let (reason, _, _) = failing_provision(
        tar(&[("vmlinuz", b"K"), ("cmdline", b"quiet")]),
        "beskar7.handoff=kexec",
    );
    assert!(
        reason.contains("the Kexec target has no initrd"),
        "{reason}"
    );
}

#[test]
fn a_kexec_cmdline_wanting_a_config_url_the_boot_lacks_fails() {
    let (reason, _, _) = failing_provision(
        tar(&[
            ("vmlinuz", b"K"),
            ("initrd.img", b"I"),
            ("cmdline", b"talos.config=BESKAR7_CONFIG_URL"),
        ]),
        "beskar7.handoff=kexec",
    );
    assert!(reason.contains("no beskar7.config-url"), "{reason}");
}

#[test]
fn an_image_larger_than_the_disk_is_refused_before_writing() {
    let img = image_of(9 * MIB);
    let digest = sha256(&img);
    let (reason, tree, _) = failing_provision(img, &format!("beskar7.target-digest={digest}"));
    assert!(reason.contains("larger than /dev/vda"), "{reason}");
    let disk = std::fs::read(tree.path("dev/vda")).unwrap();
    assert!(disk.iter().all(|&b| b == 0xee), "the disk was not touched");
}

#[test]
fn cleaning_goes_on_when_the_report_is_not_accepted() {
    let server = TestServer::start(
        "leaf",
        Box::new(|r: &Recorded| {
            if r.path.starts_with("/api/v1/inspection/") {
                response(400, b"malformed report")
            } else {
                response(202, b"{}")
            }
        }),
    );
    let params = params(&server, "beskar7.mode=clean");
    let tree = machine(0xee);
    let mut exec = Recorder::default();
    assert_eq!(
        run::run(&params, &env(&tree, &params), &mut exec).unwrap(),
        Finish::PowerOff
    );
    assert_eq!(
        paths(&server),
        ["/api/v1/inspection/ns/h1", "/api/v1/cleaned/ns/h1"]
    );
    let disk = std::fs::read(tree.path("dev/vda")).unwrap();
    assert!(disk[..MIB].iter().all(|&b| b == 0));
}
