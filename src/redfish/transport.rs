//! HTTP plumbing: the reqwest client, headers, auth on each request, the retries every
//! request shares (401 → one re-login, iDRAC `SYS518`, iLO-Gen10-Plus 406), ETag/If-Match
//! with the weak → strong → none fallback, and mapping transport failures to errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use reqwest::header::{ACCEPT, ACCEPT_ENCODING, HeaderMap, HeaderValue, IF_MATCH};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::config::{Credentials, Policy};
use super::error::{RedfishError, Result};
use super::session::{self, Session};
use super::task;

/// One BMC's HTTP endpoint; shared by all operations (and background logouts).
pub(crate) struct Http {
    pub client: reqwest::Client,
    pub base: Url,
    pub credentials: Credentials,
    pub policy: Policy,
    /// Learned: the BMC answers 406 to `Accept-Encoding: identity` (HPE Gen10 Plus).
    pub skip_accept_encoding: AtomicBool,
    /// Requests sent so far (for metrics and request-budget tests).
    pub sent: AtomicU64,
}

/// How a request authenticates.
pub(crate) enum Auth<'a> {
    None,
    Basic,
    Token(&'a Session),
}

/// A complete response.
pub(crate) struct Resp {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    pub fn error(&self) -> RedfishError {
        RedfishError::from_response(self.method.as_str(), &self.path, self.status, &self.body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON; a garbage payload is an `InvalidPayload` naming the resource.
    pub fn value(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).map_err(|e| RedfishError::InvalidPayload {
            path: self.path.clone(),
            detail: if self.body.is_empty() {
                "empty body where JSON was expected".to_owned()
            } else {
                format!("not JSON ({e})")
            },
        })
    }

    /// The `ETag` header, else `@odata.etag` from the body.
    pub fn etag(&self, body: Option<&Value>) -> Option<String> {
        self.header("etag").and_then(sanitize_etag).or_else(|| {
            body.and_then(|b| b.get("@odata.etag"))
                .and_then(Value::as_str)
                .and_then(sanitize_etag)
        })
    }
}

/// Drops empty ETags and the `-gzip` suffix iDRAC adds to gzipped responses.
pub(crate) fn sanitize_etag(tag: &str) -> Option<String> {
    let t = tag.trim();
    let t = if let Some(inner) = t.strip_suffix("-gzip\"") {
        format!("{inner}\"")
    } else if let Some(inner) = t.strip_suffix("-gzip") {
        inner.to_owned()
    } else {
        t.to_owned()
    };
    let bare = t.trim_start_matches("W/").trim_matches('"');
    (!bare.is_empty()).then_some(t)
}

/// Keeps only the path (and query) of an `@odata.id` or `Location` that may be absolute.
pub(crate) fn path_of(uri: &str) -> String {
    if (uri.starts_with("http://") || uri.starts_with("https://"))
        && let Ok(u) = Url::parse(uri)
    {
        return match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        };
    }
    if uri.starts_with('/') {
        uri.to_owned()
    } else {
        format!("/{uri}")
    }
}

impl Http {
    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| RedfishError::InvalidPayload {
                path: path.to_owned(),
                detail: format!("not a usable URI ({e})"),
            })
    }

    pub fn address(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// Sends one request and reads the whole answer, whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Resp> {
        let url = self.url(path)?;
        loop {
            let mut req = self
                .client
                .request(method.clone(), url.clone())
                .header(ACCEPT, "application/json")
                .header("OData-Version", "4.0");
            let identity = !self.skip_accept_encoding.load(Ordering::Relaxed);
            if identity {
                req = req.header(ACCEPT_ENCODING, "identity");
            }
            match auth {
                Auth::None => {}
                Auth::Basic => {
                    req = req.basic_auth(
                        self.credentials.username(),
                        Some(self.credentials.password()),
                    )
                }
                Auth::Token(s) => {
                    let mut v = HeaderValue::from_str(s.token()).map_err(|_| {
                        RedfishError::InvalidPayload {
                            path: path.to_owned(),
                            detail: "session token is not a valid header value".into(),
                        }
                    })?;
                    v.set_sensitive(true);
                    req = req.header("X-Auth-Token", v);
                }
            }
            if let Some(tag) = if_match {
                req = req.header(IF_MATCH, tag);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            self.sent.fetch_add(1, Ordering::Relaxed);
            let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
            tracing::debug!(%method, path, status = status.as_u16(), "redfish request");
            if status == StatusCode::NOT_ACCEPTABLE && identity {
                // HPE Gen10 Plus: 406 with Accept-Encoding: identity; retry without it.
                self.skip_accept_encoding.store(true, Ordering::Relaxed);
                continue;
            }
            return Ok(Resp {
                method,
                path: path.to_owned(),
                status,
                headers,
                body: bytes.to_vec(),
            });
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> RedfishError {
        let address = self.address();
        let detail = error_chain(e);
        if is_tls(e) {
            RedfishError::Tls { address, detail }
        } else if e.is_timeout() {
            RedfishError::Timeout {
                what: format!("request to {address}: {detail}"),
            }
        } else if e.is_decode() || e.is_body() {
            RedfishError::InvalidPayload {
                path: e.url().map(|u| u.path().to_owned()).unwrap_or_default(),
                detail,
            }
        } else {
            RedfishError::Unreachable { address, detail }
        }
    }
}

/// The error and its causes, joined; reqwest errors carry the URL but never headers.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && inner.downcast_ref::<rustls::Error>().is_some()
        {
            return true;
        }
        cur = c.source();
    }
    let text = error_chain(e).to_ascii_lowercase();
    text.contains("certificate") || text.contains("tls handshake")
}

/// The request context of one operation: the auth in use and, for sessions, the session,
/// which is logged out by [`Conn::close`] (or in the background if the operation is dropped).
pub(crate) struct Conn {
    pub http: Arc<Http>,
    mode: ConnMode,
    relogged: bool,
}

enum ConnMode {
    Basic,
    Session {
        sessions_path: String,
        session: Option<Session>,
    },
}

impl Conn {
    pub fn basic(http: Arc<Http>) -> Self {
        Self {
            http,
            mode: ConnMode::Basic,
            relogged: false,
        }
    }

    pub fn session(http: Arc<Http>, sessions_path: String, session: Session) -> Self {
        Self {
            http,
            mode: ConnMode::Session {
                sessions_path,
                session: Some(session),
            },
            relogged: false,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.http.policy
    }

    /// One request with the operation's auth; a 401 on a session re-logs in once and retries
    /// once; iDRAC `SYS518` (busy) is retried after a pause.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Resp> {
        let mut busy_retries = 0;
        loop {
            let resp = {
                let auth = match &self.mode {
                    ConnMode::Basic => Auth::Basic,
                    ConnMode::Session {
                        session: Some(s), ..
                    } => Auth::Token(s),
                    ConnMode::Session { session: None, .. } => Auth::None,
                };
                self.http
                    .send(method.clone(), path, auth, body, if_match)
                    .await?
            };
            if resp.status == StatusCode::UNAUTHORIZED
                && !self.relogged
                && let ConnMode::Session {
                    sessions_path,
                    session,
                } = &mut self.mode
            {
                // The session most likely expired: log in again, once, and retry once.
                self.relogged = true;
                tracing::debug!(path, "401 on a session: logging in again");
                // Log the old one out anyway: the 401 may not have been an expiry.
                if let Some(old) = session.take() {
                    session::logout(&self.http, old).await;
                }
                *session = Some(session::login(&self.http, sessions_path).await?);
                continue;
            }
            if resp.status == StatusCode::INTERNAL_SERVER_ERROR
                && busy_retries < self.http.policy.retries
                && resp.error().id_ends_with(&["SYS518"])
            {
                busy_retries += 1;
                tokio::time::sleep(self.http.policy.retry_delay).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// GET a resource as JSON, with its ETag. Any non-2xx is an error.
    pub async fn get_value(&mut self, path: &str) -> Result<(Value, Option<String>)> {
        let resp = self.request(Method::GET, path, None, None).await?;
        if !resp.is_success() {
            return Err(resp.error());
        }
        let v = resp.value()?;
        let tag = resp.etag(Some(&v));
        Ok((v, tag))
    }

    /// GET a resource into a typed model.
    pub async fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<(T, Option<String>)> {
        let (v, tag) = self.get_value(path).await?;
        let t = serde_json::from_value(v).map_err(|e| RedfishError::InvalidPayload {
            path: path.to_owned(),
            detail: format!("unexpected shape ({e})"),
        })?;
        Ok((t, tag))
    }

    /// PATCH with `If-Match: <etag>`; on 412 a weak tag is retried strong, then without
    /// If-Match; on 428 (a precondition is required but we had no tag) a fresh tag, or `*`,
    /// is fetched and sent. 202 is followed through its task monitor.
    pub async fn patch(&mut self, path: &str, body: &Value, etag: Option<String>) -> Result<Resp> {
        let mut tag = if self.http.policy.etag_match {
            etag.as_deref().and_then(sanitize_etag)
        } else {
            None
        };
        let mut fetched_for_428 = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let resp = self
                .request(Method::PATCH, path, Some(body), tag.as_deref())
                .await?;
            match resp.status {
                StatusCode::PRECONDITION_FAILED if attempts < 4 => {
                    tag = match tag {
                        Some(t) if t.starts_with("W/") => Some(t[2..].to_owned()),
                        Some(_) => None,
                        None => return Err(resp.error()),
                    };
                    tracing::debug!(path, strong = tag.is_some(), "412 on PATCH: retrying");
                }
                StatusCode::PRECONDITION_REQUIRED if !fetched_for_428 => {
                    fetched_for_428 = true;
                    let fresh = self.get_value(path).await?.1;
                    tag = Some(fresh.unwrap_or_else(|| "*".to_owned()));
                }
                _ => return self.finish(resp).await,
            }
        }
    }

    /// POST an action (never with If-Match: iDRAC10 rejects it on actions).
    pub async fn post_action(&mut self, target: &str, body: &Value) -> Result<Resp> {
        let resp = self.request(Method::POST, target, Some(body), None).await?;
        self.finish(resp).await
    }

    /// Every 2xx is success; 202 is followed through its task monitor.
    async fn finish(&mut self, resp: Resp) -> Result<Resp> {
        if resp.status == StatusCode::ACCEPTED {
            return task::wait(self, resp).await;
        }
        if resp.is_success() {
            Ok(resp)
        } else {
            Err(resp.error())
        }
    }

    /// Ends the operation: logs the session out (a failed logout is only logged).
    pub async fn close(mut self) {
        if let ConnMode::Session { session, .. } = &mut self.mode
            && let Some(s) = session.take()
        {
            session::logout(&self.http, s).await;
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The operation was dropped (cancelled) before `close`: log out in the background.
        if let ConnMode::Session { session, .. } = &mut self.mode
            && let Some(s) = session.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let http = self.http.clone();
            rt.spawn(async move { session::logout(&http, s).await });
        }
    }
}
