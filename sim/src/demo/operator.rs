//! The real operator, `beskar7 manager`, as a child process of the demo.
//!
//! The sim crate does not link the operator: it runs the binary built next to `beskar7-sim`, so
//! the demo exercises exactly what users deploy. Its log goes to a file (never to the demo's
//! output, which stays readable); the boot listener's URL is read from that log, because the
//! virtual hosts' DHCP has to point at it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// How long the operator may take to bind its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// `--operator PATH`, else `beskar7` in the directory of the running `beskar7-sim` (cargo puts
/// both in `target/<profile>/`).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find the running executable: {e}"))?
            .parent()
            .map(|dir| dir.join("beskar7"))
            .ok_or("the running executable has no directory")?,
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the operator binary {} is missing: build it first (`cargo build -p beskar7 -p beskar7-sim`) or pass --operator PATH",
            path.display()
        ))
    }
}

pub struct Operator {
    child: Child,
    pub pid: u32,
    /// The plain-HTTP boot listener's external URL (iPXE's first stage).
    pub boot_url: String,
    pub log_path: PathBuf,
    last_line: Arc<Mutex<String>>,
}

impl Operator {
    /// Starts `binary manager` against `kubeconfig` with free loopback ports and `extra` flags,
    /// and returns once it logged its boot listener's URL.
    pub async fn start(
        binary: &Path,
        kubeconfig: &Path,
        log_path: &Path,
        extra: &[String],
    ) -> Result<Operator, String> {
        let mut log = tokio::fs::File::create(log_path)
            .await
            .map_err(|e| format!("cannot create the operator log {}: {e}", log_path.display()))?;
        let mut child = Command::new(binary)
            .arg("manager")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--callback-addr", "127.0.0.1:0"])
            .args(["--callback-url", "https://127.0.0.1:0"])
            .args(["--boot-addr", "127.0.0.1:0"])
            .args(["--boot-url", "http://127.0.0.1:0"])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("BESKAR7_DEMO_LOG").unwrap_or("info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C in the terminal reaches the demo only, which then
            // stops the operator itself (SIGTERM) rather than racing it to exit.
            .process_group(0)
            // The backstop: whatever path the demo leaves by (a panic included), no orphan.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let pid = child.id().ok_or("the operator exited at once")?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, rx) = oneshot::channel::<String>();
        let last_line = Arc::new(Mutex::new(String::new()));
        let last = last_line.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("serving the plain-HTTP boot listener")
                    && let Some(url) = field(&line, "url")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url);
                }
                let _ = log.write_all(line.as_bytes()).await;
                let _ = log.write_all(b"\n").await;
                *last.lock().unwrap_or_else(|e| e.into_inner()) = line;
            }
            let _ = log.flush().await;
        });
        let mut operator = Operator {
            child,
            pid,
            boot_url: String::new(),
            log_path: log_path.to_path_buf(),
            last_line,
        };
        let waited = tokio::select! {
            url = tokio::time::timeout(START_TIMEOUT, rx) => url,
            why = operator.exited() => return Err(format!("the operator {why} before serving")),
        };
        match waited {
            Ok(Ok(url)) => operator.boot_url = url,
            _ => {
                return Err(format!(
                    "the operator logged no boot listener URL within {}s (log: {})",
                    START_TIMEOUT.as_secs(),
                    operator.log_path.display()
                ));
            }
        }
        Ok(operator)
    }

    /// Waits until the operator exits on its own; says how, with its last log line.
    pub async fn exited(&mut self) -> String {
        let status = match self.child.wait().await {
            Ok(s) => s.to_string(),
            Err(e) => format!("cannot be waited for ({e})"),
        };
        // Let the reader task drain the pipe so the last line is the real last one.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let last = self
            .last_line
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        format!(
            "exited ({status}); last log line: {last:?}; log: {}",
            self.log_path.display()
        )
    }

    /// SIGTERM (the manager's clean shutdown), then SIGKILL if it does not exit in time.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Ok(Some(_)) = self.child.try_wait() {
            return Ok(());
        }
        // std has no SIGTERM and the crate forbids unsafe code: the `kill` utility sends it. The
        // pid cannot have been reused: the child is not reaped until `wait` below.
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if sent && let Ok(Ok(status)) = tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await
        {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("the operator exited with {status} after SIGTERM"))
            };
        }
        let _ = self.child.kill().await;
        Err(format!(
            "the operator did not stop within {}s of SIGTERM and was killed",
            STOP_TIMEOUT.as_secs()
        ))
    }
}

/// `key=value` (possibly quoted) from a log line in the text format.
fn field(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(&format!("{key}="))? + key.len() + 1..];
    Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_url_of_a_listener_line() {
        let line = "2026-01-01T00:00:00Z  INFO beskar7::manager: serving the plain-HTTP boot listener addr=127.0.0.1:4000 url=http://127.0.0.1:4000";
        assert_eq!(field(line, "url").as_deref(), Some("http://127.0.0.1:4000"));
        assert_eq!(field("no fields here", "url"), None);
    }

    #[test]
    fn a_missing_binary_says_to_build_it() {
        let err = locate(Some(Path::new("/nonexistent/beskar7"))).unwrap_err();
        assert!(err.contains("cargo build"), "{err}");
    }
}
