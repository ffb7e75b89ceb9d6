//! The host's HTTP: the firmware's fetches (first stage, `/boot`, chained scripts) and the
//! agent's callbacks, which trust exactly the CA of `beskar7.ca` and carry the bearer token.

use super::cmdline::{BootParams, Secret};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A client whose only trust anchors are the certificates of `ca_pem` (none: plain HTTP only).
pub fn client(ca_pem: Option<&str>, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut roots = RootCertStore::empty();
    if let Some(pem) = ca_pem {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("beskar7.ca: {e}"))?;
        if certs.len() != 1 {
            return Err(format!(
                "beskar7.ca must hold exactly one certificate, it holds {}",
                certs.len()
            ));
        }
        roots
            .add(certs.into_iter().next().expect("one"))
            .map_err(|e| format!("beskar7.ca: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Why a callback did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// 401 or 403: the token expired or a newer attempt replaced it. Not retried.
    Refused(u16),
    /// Another 4xx: not retried. The status and the start of the body (never the token).
    Rejected(u16, String),
    /// Transient failures until the budget ran out; the last one.
    GaveUp(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused(s) => write!(f, "the operator refused the token ({s})"),
            CallError::Rejected(s, body) => write!(f, "the operator answered {s}: {body}"),
            CallError::GaveUp(last) => write!(f, "gave up: {last}"),
        }
    }
}

/// The contract's calls for one host (inspector-contract.md §2).
pub struct Callbacks {
    http: reqwest::Client,
    api: String,
    namespace: String,
    host: String,
    token: Secret,
    retry: Duration,
    deadline: Instant,
}

impl Callbacks {
    pub fn new(
        params: &BootParams,
        token: Secret,
        retry: Duration,
        request_timeout: Duration,
        deadline: Instant,
    ) -> Result<Callbacks, String> {
        Ok(Callbacks {
            http: client(Some(&params.ca_pem), request_timeout)?,
            api: params.api.clone(),
            namespace: params.namespace.clone(),
            host: params.host.clone(),
            token,
            retry,
            deadline,
        })
    }

    fn url(&self, call: &str) -> String {
        format!(
            "{}/api/v1/{call}/{}/{}",
            self.api, self.namespace, self.host
        )
    }

    pub async fn post_report(&self, body: Vec<u8>) -> Result<(), CallError> {
        self.call("inspection", Some(body), false).await.map(drop)
    }

    /// Polls until the bootstrap data is there: 404 and 5xx mean "not yet".
    pub async fn bootstrap(&self) -> Result<Vec<u8>, CallError> {
        self.call("bootstrap", None, true).await
    }

    pub async fn provisioned(&self) -> Result<(), CallError> {
        self.call("provisioned", Some(b"{}".to_vec()), false)
            .await
            .map(drop)
    }

    pub async fn provision_failed(&self, reason: &str) -> Result<(), CallError> {
        let body = serde_json::to_vec(&serde_json::json!({ "reason": reason })).expect("json");
        self.call("provision-failed", Some(body), false)
            .await
            .map(drop)
    }

    pub async fn cleaned(&self) -> Result<(), CallError> {
        self.call("cleaned", Some(b"{}".to_vec()), false)
            .await
            .map(drop)
    }

    /// `beskar7.config-url`, fetched once (a Kexec target's OS fetching its own config): plain
    /// HTTP or HTTPS under the same pinned CA, no token.
    pub async fn fetch_config(&self, url: &Secret) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .get(url.expose())
            .send()
            .await
            .map_err(|e| format!("config URL: {}", without_url(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("config URL answered {}", status.as_u16()));
        }
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| format!("config URL: {}", without_url(&e)))
    }

    /// One call, retried on transient failures every `retry` until the deadline (made at least
    /// once even when the deadline has passed).
    async fn call(
        &self,
        call: &str,
        body: Option<Vec<u8>>,
        not_found_is_transient: bool,
    ) -> Result<Vec<u8>, CallError> {
        let url = self.url(call);
        loop {
            let request = match &body {
                Some(b) => self
                    .http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(b.clone()),
                None => self.http.get(&url),
            };
            let request = request.bearer_auth(self.token.expose());
            let last = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match status {
                        200..=299 => {
                            return response
                                .bytes()
                                .await
                                .map(|b| b.to_vec())
                                .map_err(|e| CallError::GaveUp(without_url(&e)));
                        }
                        401 | 403 => return Err(CallError::Refused(status)),
                        404 if not_found_is_transient => format!("{call}: 404 (not ready)"),
                        500..=599 => format!("{call}: {status}"),
                        _ => {
                            let text = response.text().await.unwrap_or_default();
                            let text = text.replace(self.token.expose(), "<redacted>");
                            let short: String = text.chars().take(200).collect();
                            return Err(CallError::Rejected(status, short));
                        }
                    }
                }
                Err(e) => format!("{call}: {}", without_url(&e)),
            };
            if Instant::now() + self.retry > self.deadline {
                return Err(CallError::GaveUp(last));
            }
            tokio::time::sleep(self.retry).await;
        }
    }
}

/// reqwest errors name the URL, which may carry a nonce: say what failed and why, without it.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "bad response body"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
