//! The agent's calls to the operator (contract §2): the inspection report, the bootstrap data,
//! and the outcome of the attempt, with the retry rules of issue 6.
//!
//! - Transient failures (no connection, a timeout, a broken connection or response, a 5xx) are
//!   retried with exponential backoff (doubling from [`Settings::initial_backoff`] up to
//!   [`Settings::max_backoff`], minus up to a quarter of jitter), until the agent's budget
//!   (`beskar7.timeout`, else [`DEFAULT_BUDGET`]) is spent. Every call is tried at least once,
//!   even with the budget gone, so a late `provision-failed` still gets its chance.
//! - A 4xx is final, except a 404 from `/bootstrap`, which means "not yet" (the host is not
//!   Deploying yet): the agent polls until it gets the data. 401 and 403 mean the operator refused
//!   the token (expired, or a newer attempt): the agent stops.
//! - A certificate not issued by `beskar7.ca` (or for another name) is final too.
//!
//! Nothing here logs or returns the token or the bootstrap data.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::cmdline::BootParams;
use crate::http::{HttpError, HttpsClient, Response, Timeouts};
use crate::report::InspectionReport;
use crate::{SecretBytes, Token};

/// How long the agent may spend when `beskar7.timeout` is absent (v4.2 operators do not send it;
/// the contract gives no number, so this is the agent's own).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30 * 60);

/// Timeouts and retry pacing; the defaults are for real servers, tests shrink them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub timeouts: Timeouts,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long the agent may spend in all (`beskar7.timeout`); counted from [`Callbacks::new`].
    pub budget: Duration,
    /// Connect here instead of resolving `beskar7.api`'s host (TLS still checks its name).
    pub connect_to: Option<SocketAddr>,
}

impl Settings {
    /// The defaults, with the budget of `beskar7.timeout` when given.
    pub fn for_params(params: &BootParams) -> Self {
        Self {
            budget: params.timeout.unwrap_or(DEFAULT_BUDGET),
            ..Self::default()
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            budget: DEFAULT_BUDGET,
            connect_to: None,
        }
    }
}

/// Why a callback did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// `beskar7.api` or `beskar7.ca` cannot be used.
    #[error("{0}")]
    Setup(String),
    /// 401/403: the token is not (or no longer) accepted; retrying cannot help.
    #[error("{call}: the operator refused the token (HTTP {status}); stopping")]
    Unauthorized { call: String, status: u16 },
    /// Another 4xx: the operator refused the request.
    #[error("{call}: the operator answered HTTP {status}: {message}")]
    Rejected {
        call: String,
        status: u16,
        message: String,
    },
    /// Not transient: the server's certificate was refused, or similar.
    #[error("{call}: {source}")]
    Failed { call: String, source: HttpError },
    /// The budget ran out while the failures were transient (or the data was not ready yet).
    #[error("{call}: gave up after {attempts} attempts in {elapsed:?}: {last}")]
    GaveUp {
        call: String,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
}

/// The operator's callbacks for one PhysicalHost and attempt.
#[derive(Debug)]
pub struct Callbacks {
    client: HttpsClient,
    namespace: String,
    host: String,
    token: Token,
    settings: Settings,
    deadline: Instant,
}

/// What one attempt of a call gave.
enum Outcome<T> {
    Done(T),
    /// Worth trying again (with why, for the log and the final error).
    Retry(String),
    Stop(CallbackError),
}

impl Callbacks {
    /// The callbacks of the command line's host, with `settings`. The budget starts now.
    pub fn new(params: &BootParams, settings: Settings) -> Result<Self, CallbackError> {
        let client = HttpsClient::new(&params.api, &params.ca_pem, settings.timeouts)
            .map_err(|e| CallbackError::Setup(e.to_string()))?
            .connect_to(settings.connect_to);
        Ok(Self {
            client,
            namespace: params.namespace.clone(),
            host: params.host.clone(),
            token: params.token.clone(),
            deadline: Instant::now() + settings.budget,
            settings,
        })
    }

    /// When the budget runs out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// `POST /api/v1/inspection/{ns}/{host}` with the report (expects 202).
    pub fn post_report(&self, report: &InspectionReport) -> Result<(), CallbackError> {
        let body = serde_json::to_vec(report)
            .map_err(|e| CallbackError::Setup(format!("inspection report: {e}")))?;
        self.post("inspection", &body)
    }

    /// `POST /api/v1/provisioned/{ns}/{host}` (the body is advisory: `{}`).
    pub fn provisioned(&self) -> Result<(), CallbackError> {
        self.post("provisioned", b"{}")
    }

    /// `POST /api/v1/provision-failed/{ns}/{host}` with `{"reason": ...}` (the operator keeps
    /// 256 characters; this sends at most 4 KiB).
    pub fn provision_failed(&self, reason: &str) -> Result<(), CallbackError> {
        let reason: String = reason.chars().take(4096).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "reason": reason }))
            .map_err(|e| CallbackError::Setup(format!("provision-failed body: {e}")))?;
        self.post("provision-failed", &body)
    }

    /// `POST /api/v1/cleaned/{ns}/{host}` [ext].
    pub fn cleaned(&self) -> Result<(), CallbackError> {
        self.post("cleaned", b"{}")
    }

    /// `GET /api/v1/bootstrap/{ns}/{host}`, polled until the operator has the data (404 and 5xx
    /// mean not yet) or the budget is spent. Returns the body, byte for byte.
    pub fn fetch_bootstrap(&self) -> Result<SecretBytes, CallbackError> {
        let call = "GET bootstrap";
        let path = self.path("bootstrap");
        self.with_retries(call, |client, token| {
            match client.request("GET", &path, token, None) {
                Ok(Response {
                    status: 200,
                    mut body,
                    ..
                }) => Outcome::Done(SecretBytes::new(std::mem::take(&mut body))),
                Ok(Response { status: 404, .. }) => {
                    Outcome::Retry("not ready yet (HTTP 404)".to_string())
                }
                Ok(response) => self.judge(call, response),
                Err(e) => self.judge_error(call, e),
            }
        })
    }

    fn path(&self, call: &str) -> String {
        format!("/api/v1/{call}/{}/{}", self.namespace, self.host)
    }

    fn post(&self, name: &str, body: &[u8]) -> Result<(), CallbackError> {
        let call = format!("POST {name}");
        let path = self.path(name);
        self.with_retries(&call, |client, token| {
            match client.request("POST", &path, token, Some(("application/json", body))) {
                // The contract answers 202; any 2xx counts.
                Ok(response) if (200..300).contains(&response.status) => Outcome::Done(()),
                Ok(response) => self.judge(&call, response),
                Err(e) => self.judge_error(&call, e),
            }
        })
    }

    /// A response that is not the call's success.
    fn judge<T>(&self, call: &str, response: Response) -> Outcome<T> {
        let status = response.status;
        match status {
            401 | 403 => Outcome::Stop(CallbackError::Unauthorized {
                call: call.to_string(),
                status,
            }),
            500..=599 => Outcome::Retry(format!("HTTP {status}")),
            _ => Outcome::Stop(CallbackError::Rejected {
                call: call.to_string(),
                status,
                message: self.message(&response.body),
            }),
        }
    }

    fn judge_error<T>(&self, call: &str, error: HttpError) -> Outcome<T> {
        if error.is_transient() {
            Outcome::Retry(error.to_string())
        } else {
            Outcome::Stop(CallbackError::Failed {
                call: call.to_string(),
                source: error,
            })
        }
    }

    /// The start of an error body, printable, without the token should the server echo it.
    fn message(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let token = self.token.expose();
        let text = if token.is_empty() {
            text.into_owned()
        } else {
            text.replace(token, "<redacted>")
        };
        crate::http::wire::shorten(text.trim())
    }

    fn with_retries<T>(
        &self,
        call: &str,
        mut attempt: impl FnMut(&HttpsClient, &Token) -> Outcome<T>,
    ) -> Result<T, CallbackError> {
        let started = Instant::now();
        let mut backoff = self.settings.initial_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let why = match attempt(&self.client, &self.token) {
                Outcome::Done(value) => return Ok(value),
                Outcome::Stop(error) => return Err(error),
                Outcome::Retry(why) => why,
            };
            let wait = jittered(backoff);
            let now = Instant::now();
            if now + wait >= self.deadline {
                return Err(CallbackError::GaveUp {
                    call: call.to_string(),
                    attempts,
                    elapsed: now - started,
                    last: why,
                });
            }
            eprintln!("beskar7-agent: {call}: {why}; trying again in {wait:?}");
            std::thread::sleep(wait);
            backoff = (backoff * 2).min(self.settings.max_backoff);
        }
    }
}

/// `wait` minus up to a quarter, so servers booted together do not call in lockstep.
fn jittered(wait: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let fraction = f64::from(nanos % 1000) / 4000.0;
    wait.mul_f64(1.0 - fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_takes_at_most_a_quarter() {
        for _ in 0..100 {
            let w = jittered(Duration::from_secs(4));
            assert!(
                w > Duration::from_secs(3) && w <= Duration::from_secs(4),
                "{w:?}"
            );
        }
    }
}
