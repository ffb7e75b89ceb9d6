//! The real kubectl against the in-memory apiserver over loopback HTTP: every test runs once
//! with kubectl 1.27 and once with 1.33 (the oldest and newest the project supports; 1.27 is
//! the one that only understands aggregated discovery v2beta1).
//!
//! The binaries are found as a user's shell finds them: `kubectl` on PATH, resolved through
//! symlinks; the versioned `kubectl.1.NN` binaries live beside it (the gcloud SDK layout).
//! Each test gets its own server, kubeconfig and `--cache-dir`, so discovery caches never leak
//! between tests.

use beskar7_sim::apiserver::{ApiServer, Config, Identity};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one kubectl step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(30);

/// `sim/../crds`, `sim/../examples`: the files users apply.
pub fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

pub const PHYSICALHOSTS_CRD: &str = "crds/infrastructure.cluster.x-k8s.io_physicalhosts.yaml";

/// The directory of the versioned kubectl binaries: that of `kubectl` on PATH, symlinks resolved.
fn kubectl_dir() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("kubectl is not on PATH: these tests need the gcloud SDK's kubectl with kubectl.1.27 and kubectl.1.33 beside it")
        });
    let resolved = std::fs::canonicalize(&found)
        .unwrap_or_else(|e| panic!("cannot resolve {}: {e}", found.display()));
    resolved
        .parent()
        .expect("a file has a directory")
        .to_path_buf()
}

fn kubectl_binary(version: &str) -> PathBuf {
    let dir = kubectl_dir();
    let binary = dir.join(format!("kubectl.{version}"));
    assert!(
        binary.is_file(),
        "kubectl {version} is missing: expected {} beside the kubectl on PATH",
        binary.display()
    );
    binary
}

/// One kubectl run's outcome.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// A server on 127.0.0.1, a kubeconfig for it, and one kubectl version to run against it.
pub struct Kubectl {
    pub version: &'static str,
    binary: PathBuf,
    pub server: Arc<ApiServer>,
    /// An in-process client of the same server, for the writes a controller would make.
    pub client: Client,
    dir: PathBuf,
    kubeconfig: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

impl Kubectl {
    pub async fn start(version: &'static str) -> Self {
        let binary = kubectl_binary(version);
        let minor = version.trim_start_matches("1.").parse().expect("1.NN");
        let server = ApiServer::new(Config {
            minor_version: Some(minor),
            ..Config::default()
        })
        .expect("server");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        let dir = std::env::temp_dir().join(format!(
            "beskar7-kubectl-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let kubeconfig = dir.join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, &url, Identity::admin())
            .expect("kubeconfig");
        let client = Client::new(server.router(), "default");
        Kubectl {
            version,
            binary,
            server,
            client,
            dir,
            kubeconfig,
            shutdown: Some(shutdown),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        command
    }

    /// Runs kubectl to completion with `stdin` (e.g. YAML for `apply -f -`).
    pub async fn run_with_input(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = self.command(args);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = stdin.to_string();
        let what = format!("kubectl {} {}", self.version, args.join(" "));
        let run = tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("start kubectl");
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(stdin.as_bytes())
                .expect("write stdin");
            child.wait_with_output().expect("kubectl output")
        });
        let out = tokio::time::timeout(STEP, run)
            .await
            .unwrap_or_else(|_| panic!("timed out: {what}"))
            .expect("kubectl task");
        Output {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, "").await
    }

    /// Runs kubectl and returns its stdout, failing the test with stderr if it fails.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.success,
            "kubectl {} {} failed:\n{}{}",
            self.version,
            args.join(" "),
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    pub async fn ok_with_input(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_with_input(args, stdin).await;
        assert!(
            out.success,
            "kubectl {} {} failed:\n{}{}",
            self.version,
            args.join(" "),
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// Starts a long-running kubectl (`get -w`, `wait`, `delete`) whose stdout lines arrive on a
    /// channel; it is killed when the returned value is dropped.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubectl");
        let (lines, receiver) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: receiver,
            what: format!("kubectl {} {}", self.version, args.join(" ")),
        }
    }

    /// Installs the repo's CRDs as an admin would before using kubectl.
    pub fn load_repo_crds(&self) {
        self.server
            .load_crds(&repo_file("crds"))
            .expect("load crds/");
    }

    /// `PhysicalHost`s through the in-process client.
    pub fn hosts(&self) -> Api<DynamicObject> {
        let gvk =
            GroupVersionKind::gvk("infrastructure.cluster.x-k8s.io", "v1beta1", "PhysicalHost");
        Api::namespaced_with(self.client.clone(), "default", &ApiResource::from_gvk(&gvk))
    }

    /// Writes a PhysicalHost's status as the controller would (merge patch on `/status`).
    pub async fn set_host_status(&self, name: &str, status: Value) {
        self.hosts()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "status": status })),
            )
            .await
            .expect("status write");
    }

    /// Waits until the server has seen a `verb` request on `resource` (from kubectl): the point
    /// after which a change must reach kubectl through its watch rather than its first read.
    pub async fn until_requested(&self, verb: &str, resource: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            if self
                .server
                .audit_summary()
                .iter()
                .any(|k| k.verb == verb && k.resource == resource)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kubectl {} never sent a {verb} on {resource}",
                self.version
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A kubectl still running; killed on drop.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    what: String,
}

impl Running {
    /// The next stdout line, waiting at most [`STEP`].
    pub async fn next_line(&mut self) -> String {
        let what = self.what.clone();
        // The receiver is blocking; poll it without blocking the runtime's workers.
        let deadline = Instant::now() + STEP;
        loop {
            match self.lines.try_recv() {
                Ok(line) => return line,
                Err(mpsc::TryRecvError::Disconnected) => {
                    panic!("{what} ended before printing the expected line")
                }
                Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(mpsc::TryRecvError::Empty) => panic!("timed out waiting for a line of {what}"),
            }
        }
    }

    /// Waits for kubectl to exit and returns its outcome (the lines not yet read included).
    pub async fn finish(mut self) -> Output {
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("kubectl status") {
                break status;
            }
            assert!(Instant::now() < deadline, "timed out: {}", self.what);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
        }
        // The reader thread ends at EOF, which follows the exit.
        let mut stdout = String::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        Output {
            success: status.success(),
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rows of kubectl's table output, each split into its whitespace-separated cells.
pub fn rows(output: &str) -> Vec<Vec<&str>> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// The cells of column `name` in kubectl's table output, one per row, found by the header's
/// character offsets (empty cells included, which splitting on whitespace would lose).
pub fn column(output: &str, name: &str) -> Vec<String> {
    let mut lines = output.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default();
    // (offset, title) of each header cell; titles are single words in the tables tested.
    let mut titles = Vec::new();
    let mut previous_blank = true;
    for (offset, c) in header.char_indices() {
        if !c.is_whitespace() && previous_blank {
            let title: String = header[offset..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            titles.push((offset, title));
        }
        previous_blank = c.is_whitespace();
    }
    let at = titles
        .iter()
        .position(|(_, t)| t == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    let start = titles[at].0;
    let end = titles.get(at + 1).map(|(offset, _)| *offset);
    lines
        .map(|line| {
            let end = end.unwrap_or(line.len()).min(line.len());
            line.get(start.min(end)..end)
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

/// Declares each test once per kubectl version: `mod v1_27 { fn name() }`, `mod v1_33 { … }`.
macro_rules! for_each_kubectl {
    ($($name:ident),* $(,)?) => {
        mod v1_27 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::super::Kubectl::start("1.27").await).await
                }
            )*
        }
        mod v1_33 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::super::Kubectl::start("1.33").await).await
                }
            )*
        }
    };
}

mod commands;
mod create;
