//! A mock BMC on 127.0.0.1: serves a fixture tree with sessions, Basic auth, ETags, PATCH
//! merging, Reset actions and task-free power changes; personas and per-test hooks add quirks.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "password";
const BASIC: &str = "Basic YWRtaW46cGFzc3dvcmQ=";

pub fn fixtures() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/redfish")
}

/// A short-form mockup tree (`mockups/<name>`), keyed by `/redfish/v1/...` without a
/// trailing slash.
/// The HPE DL325 mockup, served with `persona`'s quirks: what most persona tests start from.
pub async fn dl325(persona: Persona) -> MockBmc {
    MockBmc::start(mockup("DL325"), persona).await
}

pub fn mockup(name: &str) -> BTreeMap<String, Value> {
    let mut tree = BTreeMap::new();
    let root = Path::new(fixtures()).join("mockups").join(name);
    walk(&root, &root, &mut tree);
    assert!(!tree.is_empty(), "no mockup at {}", root.display());
    tree
}

fn walk(root: &Path, dir: &Path, tree: &mut BTreeMap<String, Value>) {
    for entry in std::fs::read_dir(dir).expect("read mockup dir") {
        let p = entry.expect("dir entry").path();
        if p.is_dir() {
            walk(root, &p, tree);
        } else if p.file_name().is_some_and(|n| n == "index.json") {
            let rel = p
                .parent()
                .and_then(|d| d.strip_prefix(root).ok())
                .expect("rel");
            let rel = rel.to_string_lossy();
            let key = if rel.is_empty() {
                "/redfish/v1".to_owned()
            } else {
                format!("/redfish/v1/{rel}")
            };
            let v: Value = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
            tree.insert(key, v);
        }
    }
}

/// The Dell R6515 bodies (bmclib) as a tree.
pub fn dell_r6515() -> BTreeMap<String, Value> {
    let dir = Path::new(fixtures()).join("bodies/dell-r6515");
    let read = |f: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(f)).expect("read")).expect("json")
    };
    let mut tree = BTreeMap::new();
    tree.insert("/redfish/v1".into(), read("serviceroot.json"));
    tree.insert("/redfish/v1/Systems".into(), read("systems.json"));
    tree.insert(
        "/redfish/v1/Systems/System.Embedded.1".into(),
        read("system.embedded.1.json"),
    );
    tree.insert(
        "/redfish/v1/SessionService/Sessions".into(),
        json!({"Members": [], "Members@odata.count": 0}),
    );
    tree
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthSeen {
    None,
    Basic,
    BadBasic,
    Token,
    BadToken,
}

#[derive(Clone, Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub auth: AuthSeen,
    pub if_match: Option<String>,
    pub accept_encoding: Option<String>,
    pub body: Option<Value>,
}

impl Req {
    pub fn is(&self, method: &str, path_suffix: &str) -> bool {
        self.method.as_str() == method && self.path.ends_with(path_suffix)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Relative,
    Absolute,
    Missing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Etag {
    /// Whatever `@odata.etag` the fixture body has; no header.
    Fixture,
    /// No ETag anywhere.
    Stripped,
    /// A strong ETag per resource version, in the `ETag` header.
    StrongHeader,
    /// A weak ETag per resource version, in the header and in `@odata.etag`.
    Weak,
}

pub type Hook = Arc<dyn Fn(&mut MockState, &Req) -> Option<Response> + Send + Sync>;

#[derive(Clone)]
pub struct Persona {
    pub basic: bool,
    pub sessions: bool,
    pub session_limit: usize,
    pub location: Location,
    pub etag: Etag,
    /// 428 on a PATCH without If-Match.
    pub require_if_match: bool,
    /// 412 on a weak `W/` If-Match (only the strong form matches).
    pub weak_if_match_rejected: bool,
    /// 400 on a session POST that carries Authorization (iDRAC9).
    pub reject_auth_on_login: bool,
    /// 412 on an action POST with If-Match (iDRAC10).
    pub reject_if_match_on_action: bool,
    /// Status of a successful Reset: 204, or 200 with a Success body (iLO).
    pub reset_status: u16,
    /// System GETs that still show the old power state after a reset.
    pub power_lag: u32,
    pub delay: Option<Duration>,
    /// Delay only requests to this path.
    pub slow: Option<(&'static str, Duration)>,
    pub hook: Option<Hook>,
}

impl Default for Persona {
    fn default() -> Self {
        Self {
            basic: true,
            sessions: true,
            session_limit: 16,
            location: Location::Relative,
            etag: Etag::Fixture,
            require_if_match: false,
            weak_if_match_rejected: false,
            reject_auth_on_login: false,
            reject_if_match_on_action: false,
            reset_status: 204,
            power_lag: 0,
            delay: None,
            slow: None,
            hook: None,
        }
    }
}

impl Persona {
    pub fn hook(
        mut self,
        f: impl Fn(&mut MockState, &Req) -> Option<Response> + Send + Sync + 'static,
    ) -> Self {
        self.hook = Some(Arc::new(f));
        self
    }
}

pub struct MockState {
    pub tree: BTreeMap<String, Value>,
    pub versions: HashMap<String, u64>,
    pub sessions: HashMap<String, String>,
    pub sessions_created: usize,
    pub log: Vec<Req>,
    pub persona: Persona,
    /// Free counters for hooks.
    pub n: HashMap<&'static str, i64>,
    next_session: u64,
    pending_power: Option<(String, String, u32)>,
}

impl MockState {
    pub fn bump(&mut self, key: &'static str) -> i64 {
        let v = self.n.entry(key).or_insert(0);
        *v += 1;
        *v
    }

    /// The ETag the mock currently holds for a resource (strong form).
    pub fn strong_etag(&self, path: &str) -> String {
        format!(
            "\"{:08X}\"",
            0x1C21_0900 + self.versions.get(path).copied().unwrap_or(0)
        )
    }

    fn current_etag(&self, path: &str) -> Option<String> {
        match self.persona.etag {
            Etag::Fixture => self
                .tree
                .get(path)
                .and_then(|v| v.get("@odata.etag"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            Etag::Stripped => None,
            Etag::StrongHeader => Some(self.strong_etag(path)),
            Etag::Weak => Some(format!("W/{}", self.strong_etag(path))),
        }
    }

    pub fn system_mut(&mut self, path: &str) -> &mut Value {
        self.tree.get_mut(path).expect("system in tree")
    }

    pub fn boot(&self, path: &str) -> Value {
        self.tree
            .get(path)
            .and_then(|s| s.get("Boot"))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

pub fn error_body(id: &str, msg: &str) -> Value {
    json!({"error": {"code": "Base.1.8.GeneralError", "message": "A general error has occurred.",
        "@Message.ExtendedInfo": [{"MessageId": id, "Message": msg, "Severity": "Warning"}]}})
}

pub fn respond(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).expect("status");
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub fn redfish_error(status: u16, id: &str, msg: &str) -> Response {
    respond(status, error_body(id, msg))
}

pub fn empty(status: u16) -> Response {
    StatusCode::from_u16(status)
        .expect("status")
        .into_response()
}

#[derive(Clone)]
pub struct MockBmc {
    pub addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
}

impl MockBmc {
    pub async fn start(tree: BTreeMap<String, Value>, persona: Persona) -> Self {
        let state = Arc::new(Mutex::new(MockState {
            tree,
            versions: HashMap::new(),
            sessions: HashMap::new(),
            sessions_created: 0,
            log: Vec::new(),
            persona,
            n: HashMap::new(),
            next_session: 0,
            pending_power: None,
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, MockState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn log(&self) -> Vec<Req> {
        self.state().log.clone()
    }

    pub fn clear_log(&self) {
        self.state().log.clear();
    }

    /// (created, still open) sessions.
    pub fn sessions(&self) -> (usize, usize) {
        let s = self.state();
        (s.sessions_created, s.sessions.len())
    }
}

fn normalise(path: &str) -> String {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        "/".into()
    } else {
        p.to_owned()
    }
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<MockState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = state
        .lock()
        .map(|s| match s.persona.slow {
            Some((p, d)) if uri.path() == p => Some(d),
            _ => s.persona.delay,
        })
        .unwrap_or(None);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let mut s = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let auth = match (h("authorization"), h("x-auth-token")) {
        (_, Some(t)) if s.sessions.contains_key(&t) => AuthSeen::Token,
        (_, Some(_)) => AuthSeen::BadToken,
        (Some(b), None) if b == BASIC => AuthSeen::Basic,
        (Some(_), None) => AuthSeen::BadBasic,
        (None, None) => AuthSeen::None,
    };
    let req = Req {
        method: method.clone(),
        path: uri.path().to_owned(),
        auth,
        if_match: h("if-match"),
        accept_encoding: h("accept-encoding"),
        body: serde_json::from_slice(&body).ok(),
    };
    s.log.push(req.clone());
    if let Some(hook) = s.persona.hook.clone()
        && let Some(r) = hook(&mut s, &req)
    {
        return r;
    }
    let path = normalise(uri.path());
    let raw_auth = h("authorization").is_some();
    serve(&mut s, &req, &path, raw_auth)
}

fn sessions_path(s: &MockState) -> String {
    s.tree
        .get("/redfish/v1")
        .and_then(|r| r.pointer("/Links/Sessions/@odata.id"))
        .and_then(Value::as_str)
        .map(normalise)
        .unwrap_or_else(|| "/redfish/v1/SessionService/Sessions".into())
}

fn serve(s: &mut MockState, req: &Req, path: &str, raw_auth: bool) -> Response {
    // The service root needs no credentials.
    if req.method == Method::GET && (path == "/redfish/v1" || path == "/redfish") {
        return respond(200, s.tree.get("/redfish/v1").cloned().unwrap_or(json!({})));
    }
    let sessions = sessions_path(s);
    if req.method == Method::POST && path == sessions {
        return login(s, req, raw_auth, &sessions);
    }
    let authed = match req.auth {
        AuthSeen::Token => true,
        AuthSeen::Basic => s.persona.basic,
        _ => false,
    };
    if !authed {
        let id = if req.auth == AuthSeen::Basic {
            "Base.1.18.AccessDenied"
        } else {
            "Base.1.8.NoValidSession"
        };
        return redfish_error(
            401,
            id,
            "There is no valid session established with the implementation.",
        );
    }
    if req.method == Method::DELETE && s.sessions.values().any(|p| p == path) {
        s.sessions.retain(|_, p| p != path);
        return empty(204);
    }
    match req.method {
        Method::GET => get(s, path),
        Method::PATCH => patch(s, req, path),
        Method::POST => post(s, req, path),
        _ => redfish_error(405, "Base.1.8.OperationNotAllowed", "not allowed"),
    }
}

fn login(s: &mut MockState, req: &Req, raw_auth: bool, sessions: &str) -> Response {
    if !s.persona.sessions {
        return redfish_error(404, "Base.1.8.ResourceNotFound", "no SessionService");
    }
    if s.persona.reject_auth_on_login && raw_auth {
        return redfish_error(
            400,
            "Base.1.8.GeneralError",
            "login with Authorization header",
        );
    }
    let body = req.body.clone().unwrap_or(Value::Null);
    if body.get("UserName").and_then(Value::as_str) != Some(USER)
        || body.get("Password").and_then(Value::as_str) != Some(PASSWORD)
    {
        return redfish_error(
            401,
            "Base.1.8.NoValidSession",
            "Invalid username or password",
        );
    }
    if s.sessions.len() >= s.persona.session_limit {
        return redfish_error(
            503,
            "Base.1.8.SessionLimitExceeded",
            "The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.",
        );
    }
    s.next_session += 1;
    s.sessions_created += 1;
    let id = format!("sess{:04}", s.next_session);
    let token = format!("token-{:016x}", 0x5eed_0000_u64 + s.next_session);
    let spath = format!("{sessions}/{id}");
    s.sessions.insert(token.clone(), spath.clone());
    let mut headers = HeaderMap::new();
    headers.insert("x-auth-token", HeaderValue::from_str(&token).expect("hv"));
    match s.persona.location {
        Location::Relative => {
            headers.insert("location", HeaderValue::from_str(&spath).expect("hv"));
        }
        Location::Absolute => {
            let abs = format!("https://bmc.example.invalid{spath}");
            headers.insert("location", HeaderValue::from_str(&abs).expect("hv"));
        }
        Location::Missing => {}
    }
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let body = json!({"@odata.id": spath, "Id": id, "UserName": USER});
    (StatusCode::CREATED, headers, body.to_string()).into_response()
}

fn get(s: &mut MockState, path: &str) -> Response {
    // Power transitions that lag behind the reset.
    if let Some((p, target, left)) = s.pending_power.clone()
        && p == path
    {
        if left == 0 {
            s.system_mut(path)["PowerState"] = json!(target);
            s.pending_power = None;
        } else {
            s.pending_power = Some((p, target, left - 1));
        }
    }
    let Some(mut v) = s.tree.get(path).cloned() else {
        return redfish_error(
            404,
            "Base.1.8.ResourceMissingAtURI",
            &format!("{path} not found"),
        );
    };
    let etag = s.current_etag(path);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    match s.persona.etag {
        Etag::Fixture => {}
        Etag::Stripped => {
            if let Some(o) = v.as_object_mut() {
                o.remove("@odata.etag");
            }
        }
        Etag::StrongHeader => {
            if let Some(o) = v.as_object_mut() {
                o.remove("@odata.etag");
            }
            headers.insert(
                "etag",
                HeaderValue::from_str(etag.as_deref().unwrap_or("")).expect("hv"),
            );
        }
        Etag::Weak => {
            v["@odata.etag"] = json!(etag);
            headers.insert(
                "etag",
                HeaderValue::from_str(etag.as_deref().unwrap_or("")).expect("hv"),
            );
        }
    }
    (StatusCode::OK, headers, v.to_string()).into_response()
}

fn merge(dst: &mut Value, src: &Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                merge(d.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (d, s) => *d = s.clone(),
    }
}

/// If-Match as the persona enforces it; `None` means it passes.
pub fn if_match_check(s: &MockState, req: &Req, path: &str) -> Option<Response> {
    match req.if_match.as_deref() {
        None if s.persona.require_if_match => Some(redfish_error(
            428,
            "Base.1.8.PreconditionRequired",
            "If-Match required",
        )),
        None | Some("*") => None,
        Some(tag) => {
            let strong = s.strong_etag(path);
            let current = s.current_etag(path).unwrap_or_default();
            let ok = if tag.starts_with("W/") {
                !s.persona.weak_if_match_rejected && tag == current
            } else {
                tag == strong || tag == current.trim_start_matches("W/")
            };
            (!ok).then(|| redfish_error(412, "Base.1.8.PreconditionFailed", "ETag mismatch"))
        }
    }
}

fn patch(s: &mut MockState, req: &Req, path: &str) -> Response {
    if !s.tree.contains_key(path) {
        return redfish_error(404, "Base.1.8.ResourceMissingAtURI", "not found");
    }
    if let Some(r) = if_match_check(s, req, path) {
        return r;
    }
    let body = req.body.clone().unwrap_or(Value::Null);
    merge(s.system_mut(path), &body);
    *s.versions.entry(path.to_owned()).or_insert(0) += 1;
    empty(204)
}

fn post(s: &mut MockState, req: &Req, path: &str) -> Response {
    if s.persona.reject_if_match_on_action && req.if_match.is_some() {
        return redfish_error(412, "Base.1.8.PreconditionFailed", "If-Match on an action");
    }
    let system = s.tree.iter().find_map(|(k, v)| {
        let t = v
            .pointer("/Actions/#ComputerSystem.Reset/target")?
            .as_str()?;
        (req.path == t || normalise(t) == path).then(|| k.clone())
    });
    let Some(system) = system else {
        return redfish_error(404, "Base.1.8.ResourceMissingAtURI", "not found");
    };
    let rt = req
        .body
        .as_ref()
        .and_then(|b| b.get("ResetType"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let sys = s.tree.get(&system).cloned().unwrap_or_default();
    let action = &sys["Actions"]["#ComputerSystem.Reset"];
    let allowed: Option<Vec<String>> = action
        .get("ResetType@Redfish.AllowableValues")
        .cloned()
        .or_else(|| {
            let info = action.get("@Redfish.ActionInfo")?.as_str()?;
            s.tree
                .get(&normalise(info))?
                .pointer("/Parameters/0/AllowableValues")
                .cloned()
        })
        .and_then(|v| serde_json::from_value(v).ok());
    if let Some(a) = allowed
        && !a.contains(&rt)
    {
        return redfish_error(
            400,
            "Base.1.8.ActionParameterNotSupported",
            &format!("ResetType {rt} not supported"),
        );
    }
    let new = match rt.as_str() {
        "On" | "ForceOn" | "ForceRestart" | "PowerCycle" | "GracefulRestart" => "On",
        "ForceOff" | "GracefulShutdown" => "Off",
        _ => {
            return redfish_error(
                400,
                "Base.1.8.ActionParameterValueNotInList",
                "bad ResetType",
            );
        }
    };
    if s.persona.power_lag > 0 {
        s.pending_power = Some((system, new.to_owned(), s.persona.power_lag));
    } else {
        s.system_mut(&system)["PowerState"] = json!(new);
    }
    if s.persona.reset_status == 200 {
        respond(
            200,
            json!({"error": {"code": "iLO.0.10.ExtendedInfo", "message": "See @Message.ExtendedInfo for more information.",
            "@Message.ExtendedInfo": [{"MessageId": "Base.1.4.Success"}]}}),
        )
    } else {
        empty(s.persona.reset_status)
    }
}
