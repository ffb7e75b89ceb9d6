//! Session login and logout (`X-Auth-Token`). The token never reaches logs, errors or Debug.

use std::fmt;

use reqwest::Method;
use serde_json::{Value, json};

use super::error::{RedfishError, Result};
use super::transport::{Auth, Http, path_of};

/// A live Redfish session: its token and the path to DELETE on logout.
pub(crate) struct Session {
    token: String,
    path: String,
}

impl Session {
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("path", &self.path)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `POST <sessions> {"UserName","Password"}` with no `Authorization` header (iDRAC9 rejects a
/// login that also carries Basic). The session's path comes from `Location` (an absolute URL
/// is cut to its path) or, without one (Cisco CIMC), from the body's `@odata.id`.
pub(crate) async fn login(http: &Http, sessions_path: &str) -> Result<Session> {
    let body = json!({
        "UserName": http.credentials.username(),
        "Password": http.credentials.password(),
    });
    let resp = http
        .send(Method::POST, sessions_path, Auth::None, Some(&body), None)
        .await?;
    if !resp.is_success() {
        return Err(resp.error());
    }
    let token = resp
        .header("x-auth-token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RedfishError::InvalidPayload {
            path: sessions_path.to_owned(),
            detail: "session created without an X-Auth-Token header".into(),
        })?
        .to_owned();
    let path = match resp.header("location").filter(|l| !l.is_empty()) {
        Some(loc) => path_of(loc),
        None => serde_json::from_slice::<Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("@odata.id").and_then(Value::as_str).map(path_of))
            .ok_or_else(|| RedfishError::InvalidPayload {
                path: sessions_path.to_owned(),
                detail: "session created without a Location header or @odata.id".into(),
            })?,
    };
    tracing::debug!(session = %path, "redfish session opened");
    Ok(Session { token, path })
}

/// `DELETE <session path>` with the session's token. Never fails the operation: a logout
/// that does not go through is logged (without the token).
pub(crate) async fn logout(http: &Http, session: Session) {
    let result = http
        .send(
            Method::DELETE,
            &session.path,
            Auth::Token(&session),
            None,
            None,
        )
        .await;
    match result {
        // 401/404: the session had already expired or was removed.
        Ok(r) if r.is_success() || matches!(r.status.as_u16(), 401 | 404) => {
            tracing::debug!(session = %session.path, "redfish session closed")
        }
        Ok(r) => {
            tracing::warn!(session = %session.path, error = %r.error(), "redfish logout failed")
        }
        Err(e) => tracing::warn!(session = %session.path, error = %e, "redfish logout failed"),
    }
}
