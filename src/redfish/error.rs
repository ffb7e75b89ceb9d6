//! `RedfishError`, and turning a BMC's error body into a message naming its MessageId.

use reqwest::StatusCode;
use serde_json::Value;

pub type Result<T, E = RedfishError> = std::result::Result<T, E>;

/// Why a BMC operation failed. Messages never contain passwords or session tokens.
#[derive(Debug, thiserror::Error)]
pub enum RedfishError {
    #[error("invalid BMC configuration: {0}")]
    InvalidConfig(String),
    #[error("BMC unreachable at {address}: {detail}")]
    Unreachable { address: String, detail: String },
    #[error("TLS failure talking to {address}: {detail}")]
    Tls { address: String, detail: String },
    #[error("BMC timed out: {what}")]
    Timeout { what: String },
    #[error("BMC rejected the credentials ({status} for {method} {path}){}", fmt_id(.message_id, .message))]
    AuthRejected {
        method: String,
        path: String,
        status: u16,
        message_id: Option<String>,
        message: Option<String>,
    },
    #[error("BMC has no free session slot ({status} for {method} {path}){}", fmt_id(.message_id, .message))]
    SessionLimit {
        method: String,
        path: String,
        status: u16,
        message_id: Option<String>,
        message: Option<String>,
    },
    #[error("BMC answered {status} to {method} {path}{}", fmt_id(.message_id, .message))]
    Http {
        method: String,
        path: String,
        status: u16,
        message_id: Option<String>,
        message: Option<String>,
    },
    #[error("BMC sent an invalid payload for {path}: {detail}")]
    InvalidPayload { path: String, detail: String },
    #[error("the BMC lists no ComputerSystem")]
    NoSystem,
    #[error("the BMC lists {} ComputerSystems ({}); set systemPath to choose one", .0.len(), .0.join(", "))]
    SeveralSystems(Vec<String>),
    #[error("the BMC does not support {0}")]
    Unsupported(String),
    #[error("the BMC accepted the boot override but reads back {0}")]
    BootOverrideNotApplied(String),
    #[error("power state did not reach {wanted} in time (last seen {last})")]
    PowerTimeout { wanted: String, last: String },
    #[error("BMC task {monitor} failed: {detail}")]
    TaskFailed { monitor: String, detail: String },
}

fn fmt_id(id: &Option<String>, msg: &Option<String>) -> String {
    match (id, msg) {
        (Some(id), Some(m)) => format!(": {id}: {m}"),
        (Some(id), None) => format!(": {id}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

impl RedfishError {
    /// Worth retrying later with the same configuration (as opposed to a configuration or
    /// compatibility problem a person must fix).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. }
            | Self::Timeout { .. }
            | Self::SessionLimit { .. }
            | Self::PowerTimeout { .. }
            | Self::TaskFailed { .. }
            | Self::BootOverrideNotApplied(_) => true,
            Self::Http { status, .. } => *status >= 500 || *status == 409 || *status == 429,
            _ => false,
        }
    }

    /// A short CamelCase reason, for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidConfig(_) => "InvalidConfig",
            Self::Unreachable { .. } => "BMCUnreachable",
            Self::Tls { .. } => "TLSFailure",
            Self::Timeout { .. } => "BMCTimeout",
            Self::AuthRejected { .. } => "AuthRejected",
            Self::SessionLimit { .. } => "SessionLimit",
            Self::Http { .. } => "BMCError",
            Self::InvalidPayload { .. } => "InvalidPayload",
            Self::NoSystem => "NoSystem",
            Self::SeveralSystems(_) => "SeveralSystems",
            Self::Unsupported(_) => "Unsupported",
            Self::BootOverrideNotApplied(_) => "BootOverrideNotApplied",
            Self::PowerTimeout { .. } => "PowerTimeout",
            Self::TaskFailed { .. } => "TaskFailed",
        }
    }

    /// The BMC's MessageId, when the error came from a Redfish error body.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            Self::AuthRejected { message_id, .. }
            | Self::SessionLimit { message_id, .. }
            | Self::Http { message_id, .. } => message_id.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, when the BMC answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::AuthRejected { status, .. }
            | Self::SessionLimit { status, .. }
            | Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the MessageId ends with one of `suffixes` (registry versions vary).
    pub(crate) fn id_ends_with(&self, suffixes: &[&str]) -> bool {
        self.message_id()
            .is_some_and(|id| suffixes.iter().any(|s| id.ends_with(s)))
    }

    /// Builds the error for a non-2xx answer from its status and body.
    pub(crate) fn from_response(method: &str, path: &str, status: StatusCode, body: &[u8]) -> Self {
        let (message_id, message) = parse_error_body(body);
        let method = method.to_owned();
        let path = path.to_owned();
        let code = status.as_u16();
        let limit = message_id
            .as_deref()
            .is_some_and(|id| id.ends_with("SessionLimitExceeded"));
        if limit {
            return Self::SessionLimit {
                method,
                path,
                status: code,
                message_id,
                message,
            };
        }
        if code == 401 {
            return Self::AuthRejected {
                method,
                path,
                status: code,
                message_id,
                message,
            };
        }
        Self::Http {
            method,
            path,
            status: code,
            message_id,
            message,
        }
    }
}

/// Extracts (MessageId, message) from a Redfish error body, defensively:
/// `@Message.ExtendedInfo` as an array or a single object, `MessageId` or `MessageID`,
/// entries without `Message`, plain-text or empty bodies. The most severe extended entry wins;
/// without one, `error.code` / `error.message`.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text: String = text
            .trim()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect();
        return (None, (!text.is_empty()).then_some(text));
    };
    let err = v.get("error").unwrap_or(&v);
    let ext = err
        .get("@Message.ExtendedInfo")
        .or_else(|| v.get("@Message.ExtendedInfo"));
    let entries: Vec<&Value> = match ext {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    };
    let rank = |e: &Value| match e
        .get("Severity")
        .or_else(|| e.get("MessageSeverity"))
        .and_then(Value::as_str)
    {
        Some("Critical") => 3,
        Some("Warning") => 2,
        Some("OK") => 0,
        _ => 1,
    };
    let id_of = |e: &Value| {
        e.get("MessageId")
            .or_else(|| e.get("MessageID"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let msg_of = |e: &Value| e.get("Message").and_then(Value::as_str).map(str::to_owned);
    // The first most severe entry that carries an id.
    let best = entries
        .iter()
        .filter(|e| id_of(e).is_some() || msg_of(e).is_some())
        .fold(None::<&&Value>, |best, e| match best {
            Some(b) if rank(b) >= rank(e) => Some(b),
            _ => Some(e),
        });
    if let Some(e) = best {
        let id = id_of(e);
        let msg = msg_of(e).or_else(|| {
            err.get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        return (id, msg);
    }
    let code = err.get("code").and_then(Value::as_str).map(str::to_owned);
    let msg = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned);
    (code, msg)
}
