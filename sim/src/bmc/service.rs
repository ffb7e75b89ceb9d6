//! What the BMC answers: authentication, sessions, reads, the Boot PATCH, the Reset action and
//! task monitors, with each persona's quirks.

use super::persona::{EtagForm, SessionLocation};
use super::tree::{ROOT, normalize};
use super::{Bmc, BootEvent, Session, State, power};
use axum::http::HeaderMap;
use base64::Engine;
use serde_json::{Value, json};
use std::time::Duration;

/// A response before it becomes HTTP.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn new(status: u16) -> Self {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
        }
    }

    fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub(crate) fn with_header(self, name: &'static str, value: impl Into<String>) -> Self {
        self.header(name, value)
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A Redfish error body: `error.code` and one `@Message.ExtendedInfo` entry with the MessageId.
pub(crate) fn error(status: u16, message_id: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {
            "code": message_id,
            "message": message,
            "@Message.ExtendedInfo": [{
                "@odata.type": "#Message.v1_1_1.Message",
                "MessageId": message_id,
                "Message": message,
                "Severity": "Critical",
                "Resolution": "None",
            }],
        }}),
    )
}

fn unauthorized() -> Reply {
    error(
        401,
        "Base.1.8.NoValidSession",
        "There is no valid session established with the implementation.",
    )
    .header("WWW-Authenticate", "Basic realm=\"Redfish\"")
}

fn not_found(path: &str) -> Reply {
    error(
        404,
        "Base.1.8.ResourceMissingAtURI",
        &format!("The resource at the URI {path} was not found."),
    )
}

/// Who a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    None,
    Basic,
    Session,
}

impl Auth {
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Basic => "basic",
            Auth::Session => "session",
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Bmc {
    pub(crate) fn handle(
        &self,
        method: &str,
        raw_path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Reply, Auth) {
        let mut state = self.lock();
        let result = self.dispatch(&mut state, method, raw_path, headers, body);
        let due = std::mem::take(&mut state.immediate);
        drop(state);
        // Instant transitions complete before the reply, so a zero-delay BMC is deterministic.
        for generation in due {
            self.complete(generation);
        }
        result
    }

    fn dispatch(
        &self,
        state: &mut State,
        method: &str,
        raw_path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Reply, Auth) {
        let path = normalize(raw_path);
        let sessions_path = state.tree.sessions_path();
        // The service root is readable without credentials; so is the login itself.
        if method == "GET" && (path == ROOT || path == "/redfish") {
            return (
                self.read(state, ROOT).unwrap_or_else(|| not_found(&path)),
                Auth::None,
            );
        }
        if method == "POST" && path == sessions_path {
            return (self.login(state, headers, body), Auth::None);
        }
        let auth = match self.authenticate(state, headers) {
            Ok(auth) => auth,
            Err(reply) => return (reply, Auth::None),
        };
        let reply = match method {
            "GET" if path == sessions_path => self.session_list(state, &sessions_path),
            "GET" if path.starts_with(&format!("{sessions_path}/")) => {
                self.session(state, &sessions_path, &path)
            }
            "GET" if path.starts_with(&format!("{ROOT}/TaskService/TaskMonitors/")) => {
                self.task_monitor(state, &path)
            }
            "GET" => self.read(state, &path).unwrap_or_else(|| not_found(&path)),
            "DELETE" if path.starts_with(&format!("{sessions_path}/")) => {
                self.logout(state, &sessions_path, &path)
            }
            "PATCH" if path == state.system => self.patch_system(state, headers, body),
            "POST" if Some(path.as_str()) == self.reset_target(state).as_deref() => {
                self.reset(state, headers, body)
            }
            "PATCH" | "POST" | "DELETE" if state.tree.get(&path).is_some() => error(
                405,
                "Base.1.8.OperationNotAllowed",
                "The HTTP method is not allowed on this resource.",
            ),
            _ => not_found(&path),
        };
        (reply, auth)
    }

    fn authenticate(&self, state: &State, headers: &HeaderMap) -> Result<Auth, Reply> {
        if let Some(token) = header(headers, "x-auth-token") {
            return if state.sessions.values().any(|s| s.token == token) {
                Ok(Auth::Session)
            } else {
                Err(unauthorized())
            };
        }
        let Some(basic) = header(headers, "authorization").and_then(|v| v.strip_prefix("Basic "))
        else {
            return Err(unauthorized());
        };
        if !self.quirks.basic_auth {
            // iDRAC10 with Basic "Unadvertised".
            return Err(error(
                401,
                "Base.1.18.AccessDenied",
                "While attempting to establish a connection to the resource, the authentication was denied.",
            ));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok();
        let expected = format!("{}:{}", self.config.username, self.config.password);
        if decoded.as_deref() == Some(expected.as_bytes()) {
            Ok(Auth::Basic)
        } else {
            Err(unauthorized())
        }
    }

    fn login(&self, state: &mut State, headers: &HeaderMap, body: &[u8]) -> Reply {
        if self.quirks.rejects_basic_on_login && header(headers, "authorization").is_some() {
            return error(
                400,
                "Base.1.8.GeneralError",
                "A session login must not carry an Authorization header.",
            );
        }
        let Ok(credentials) = serde_json::from_slice::<Value>(body) else {
            return error(
                400,
                "Base.1.8.MalformedJSON",
                "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
            );
        };
        let (user, password) = (
            credentials["UserName"].as_str(),
            credentials["Password"].as_str(),
        );
        if user != Some(self.config.username.as_str())
            || password != Some(self.config.password.as_str())
        {
            return error(
                401,
                "Base.1.8.InvalidCredentials",
                "The credentials provided were not valid.",
            );
        }
        if state.sessions.len() >= self.quirks.session_limit {
            return error(
                self.quirks.session_limit_status,
                "Base.1.8.SessionLimitExceeded",
                "The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.",
            );
        }
        let id = state.next_session.to_string();
        state.next_session += 1;
        let token = uuid::Uuid::new_v4().simple().to_string();
        state.sessions.insert(
            id.clone(),
            Session {
                token: token.clone(),
            },
        );
        state.max_sessions_seen = state.max_sessions_seen.max(state.sessions.len());
        let sessions_path = state.tree.sessions_path();
        let member = format!("{sessions_path}/{id}");
        let body = json!({"@odata.id": member, "@odata.type": "#Session.v1_3_0.Session", "Id": id, "Name": "User Session",
                          "UserName": self.config.username});
        let reply = Reply::json(201, body).header("X-Auth-Token", token);
        match self.quirks.session_location {
            SessionLocation::Path => reply.header("Location", member),
            SessionLocation::Absolute => {
                reply.header("Location", format!("https://bmc.invalid{member}"))
            }
            SessionLocation::Missing => reply,
        }
    }

    fn session_list(&self, state: &State, sessions_path: &str) -> Reply {
        let members: Vec<Value> = state
            .sessions
            .keys()
            .map(|id| json!({"@odata.id": format!("{sessions_path}/{id}")}))
            .collect();
        Reply::json(
            200,
            json!({"@odata.id": sessions_path, "@odata.type": "#SessionCollection.SessionCollection",
            "Name": "Session Collection", "Members@odata.count": members.len(), "Members": members}),
        )
    }

    fn session(&self, state: &State, sessions_path: &str, path: &str) -> Reply {
        let id = &path[sessions_path.len() + 1..];
        if !state.sessions.contains_key(id) {
            return not_found(path);
        }
        Reply::json(
            200,
            json!({"@odata.id": path, "@odata.type": "#Session.v1_3_0.Session", "Id": id,
            "Name": "User Session", "UserName": self.config.username}),
        )
    }

    fn logout(&self, state: &mut State, sessions_path: &str, path: &str) -> Reply {
        let id = &path[sessions_path.len() + 1..];
        match state.sessions.remove(id) {
            Some(_) => Reply::new(204),
            None => not_found(path),
        }
    }

    /// The ETag of a resource in this persona's form, if it has ETags at all.
    fn etag(&self, state: &State, path: &str) -> Option<String> {
        let version = state.versions.get(path).copied().unwrap_or(0);
        let tag = format!("{:08X}", fnv(path) ^ version.wrapping_mul(0x9E37_79B9));
        match self.quirks.etag {
            EtagForm::None => None,
            EtagForm::Strong => Some(format!("\"{tag}\"")),
            EtagForm::Weak => Some(format!("W/\"{tag}\"")),
        }
    }

    fn read(&self, state: &mut State, path: &str) -> Option<Reply> {
        let mut body = state.tree.get(path)?.clone();
        if path == state.system {
            body["PowerState"] = json!(state.power.reported());
        }
        match self.etag(state, path) {
            Some(tag) => {
                body["@odata.etag"] = json!(tag);
                Some(Reply::json(200, body).header("ETag", tag))
            }
            None => {
                if let Some(o) = body.as_object_mut() {
                    o.remove("@odata.etag");
                }
                Some(Reply::json(200, body))
            }
        }
    }

    /// Checks `If-Match` against the resource's current ETag, per persona.
    fn precondition(&self, state: &State, path: &str, headers: &HeaderMap) -> Result<(), Reply> {
        let Some(current) = self.etag(state, path) else {
            return Ok(());
        };
        let failed = || {
            error(
                412,
                "Base.1.8.PreconditionFailed",
                "The ETag supplied did not match the ETag required to change this resource.",
            )
        };
        match header(headers, "if-match") {
            None if self.quirks.require_if_match => Err(error(
                428,
                "Base.1.8.PreconditionRequired",
                "A precondition header or annotation is required to change this resource.",
            )),
            None | Some("*") => Ok(()),
            Some(sent) if sent == current => {
                if self.quirks.weak_if_match_rejected && sent.starts_with("W/") {
                    Err(failed())
                } else {
                    Ok(())
                }
            }
            // A BMC that hands out weak tags accepts the same tag in strong form.
            Some(sent) if current.starts_with("W/") && current.trim_start_matches("W/") == sent => {
                Ok(())
            }
            Some(_) => Err(failed()),
        }
    }

    fn changed(&self, state: &mut State, path: &str) {
        *state.versions.entry(path.to_string()).or_insert(0) += 1;
    }

    fn patch_system(&self, state: &mut State, headers: &HeaderMap, body: &[u8]) -> Reply {
        let system = state.system.clone();
        if let Err(reply) = self.precondition(state, &system, headers) {
            return reply;
        }
        let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(body) else {
            return error(
                400,
                "Base.1.8.MalformedJSON",
                "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
            );
        };
        if let Some(other) = patch.keys().find(|k| *k != "Boot") {
            return error(
                400,
                "Base.1.8.PropertyNotWritable",
                &format!(
                    "The property {other} is a read only property and cannot be assigned a value."
                ),
            );
        }
        let Some(Value::Object(boot)) = patch.get("Boot") else {
            return error(
                400,
                "Base.1.8.PropertyValueTypeError",
                "The value for the property Boot is of a different type than the property can accept.",
            );
        };
        const TARGET: &str = "BootSourceOverrideTarget";
        const ENABLED: &str = "BootSourceOverrideEnabled";
        const MODE: &str = "BootSourceOverrideMode";
        if let Some(other) = boot
            .keys()
            .find(|k| ![TARGET, ENABLED, MODE].contains(&k.as_str()))
        {
            return error(
                400,
                "Base.1.8.PropertyNotWritable",
                &format!(
                    "The property {other} is a read only property and cannot be assigned a value."
                ),
            );
        }
        if self.quirks.full_boot_triple_required
            && let Some(missing) = [TARGET, ENABLED, MODE]
                .into_iter()
                .find(|k| !boot.contains_key(*k))
        {
            return error(
                400,
                "Base.1.8.PropertyMissing",
                &format!(
                    "The property {missing} is a required property and must be included in the request."
                ),
            );
        }
        if boot.contains_key(MODE) && !self.quirks.mode_writable {
            return error(
                400,
                "Base.1.8.PropertyNotWritable",
                "The property BootSourceOverrideMode is a read only property and cannot be assigned a value.",
            );
        }
        let current = state
            .tree
            .get(&system)
            .map(|s| s["Boot"].clone())
            .unwrap_or_default();
        for (key, value) in boot {
            let allowed: Vec<String> = match key.as_str() {
                ENABLED => self
                    .quirks
                    .override_enabled_values
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                _ => current[format!("{key}@Redfish.AllowableValues")]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            let Some(text) = value.as_str() else {
                return error(
                    400,
                    "Base.1.8.PropertyValueTypeError",
                    &format!(
                        "The value for the property {key} is of a different type than the property can accept."
                    ),
                );
            };
            if !allowed.is_empty() && !allowed.iter().any(|a| a == text) {
                return error(
                    400,
                    "Base.1.8.PropertyValueNotInList",
                    &format!(
                        "The value {text} for the property {key} is not in the list of acceptable values."
                    ),
                );
            }
        }
        let Some(stored) = state.tree.get_mut(&system) else {
            return not_found(&system);
        };
        for (key, value) in boot {
            stored["Boot"][key] = value.clone();
        }
        if self.quirks.reverts_unsent_boot_fields {
            // Supermicro: what was not resent silently goes back to a default, yet the PATCH "succeeds".
            if !boot.contains_key(MODE) {
                stored["Boot"][MODE] = json!("Legacy");
            }
            if !boot.contains_key(ENABLED) {
                stored["Boot"][ENABLED] = json!("Once");
            }
        }
        self.changed(state, &system);
        if self.quirks.patch_returns_body || self.quirks.reverts_unsent_boot_fields {
            return self.read(state, &system).unwrap_or_else(|| Reply::new(204));
        }
        Reply::new(204)
    }

    fn reset_target(&self, state: &State) -> Option<String> {
        let system = state.tree.get(&state.system)?;
        system
            .pointer("/Actions/#ComputerSystem.Reset/target")?
            .as_str()
            .map(normalize)
    }

    fn allowed_reset_types(&self, state: &State) -> Vec<String> {
        let Some(action) = state
            .tree
            .get(&state.system)
            .and_then(|s| s.pointer("/Actions/#ComputerSystem.Reset"))
        else {
            return Vec::new();
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(inline) = action.get("ResetType@Redfish.AllowableValues") {
            return strings(inline);
        }
        let info = action
            .get("@Redfish.ActionInfo")
            .and_then(Value::as_str)
            .and_then(|p| state.tree.get(p));
        info.and_then(|i| i["Parameters"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .find(|p| p["Name"] == "ResetType")
            .map(|p| strings(&p["AllowableValues"]))
            .unwrap_or_default()
    }

    fn reset(&self, state: &mut State, headers: &HeaderMap, body: &[u8]) -> Reply {
        if self.quirks.if_match_on_actions_rejected && headers.contains_key("if-match") {
            return error(
                412,
                "Base.1.8.PreconditionFailed",
                "The ETag supplied did not match the ETag required to change this resource.",
            );
        }
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return error(
                400,
                "Base.1.8.MalformedJSON",
                "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
            );
        };
        let Some(reset_type) = request["ResetType"].as_str() else {
            return error(
                400,
                "Base.1.8.ActionParameterMissing",
                "The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.",
            );
        };
        let allowed = self.allowed_reset_types(state);
        if !allowed.is_empty() && !allowed.iter().any(|a| a == reset_type) {
            return error(
                400,
                "Base.1.8.ActionParameterValueNotInList",
                &format!(
                    "The value {reset_type} for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values."
                ),
            );
        }
        let heading_on = state.power.heading_on();
        let plan = power::plan(reset_type, heading_on);
        if plan.is_none() && self.quirks.already_in_state_error && reset_type != "Nmi" {
            return error(
                400,
                "iLO.2.14.InvalidOperationForSystemState",
                "The operation was not successful due to the current power state (for example, attempting to turn the power off when it is already off).",
            );
        }
        let mut task = None;
        if let Some((target_on, boots)) = plan {
            let generation = state.power.start(target_on, boots);
            let system = state.system.clone();
            self.changed(state, &system);
            self.schedule(state, generation);
            if self.quirks.reset_task_monitor {
                let id = state.next_task;
                state.next_task += 1;
                state.tasks.insert(id, generation);
                task = Some(id);
            }
        }
        if let Some(id) = task {
            return Reply::json(202, json!({"@odata.id": format!("{ROOT}/TaskService/Tasks/{id}"), "TaskState": "Running"}))
                .header("Location", format!("{ROOT}/TaskService/TaskMonitors/{id}"))
                .header("Retry-After", "1");
        }
        if self.quirks.reset_success_body {
            return Reply::json(
                200,
                json!({"error": {"code": "iLO.0.10.ExtendedInfo", "message": "See @Message.ExtendedInfo for more information.",
                "@Message.ExtendedInfo": [{"MessageId": "Base.1.4.Success"}]}}),
            );
        }
        Reply::new(204)
    }

    fn task_monitor(&self, state: &State, path: &str) -> Reply {
        let id = path.rsplit('/').next().and_then(|s| s.parse::<u64>().ok());
        let Some(generation) = id.and_then(|id| state.tasks.get(&id).copied()) else {
            return not_found(path);
        };
        let running = state
            .power
            .pending
            .is_some_and(|p| p.generation == generation);
        if running {
            Reply::json(202, json!({"TaskState": "Running"})).header("Retry-After", "1")
        } else {
            Reply::new(204)
        }
    }

    /// Completes power transition `generation` after the configured delay.
    fn schedule(&self, state: &mut State, generation: u64) {
        let delay = self.config.power_delay;
        if delay == Duration::ZERO {
            state.immediate.push(generation);
            return;
        }
        let this = self.this.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(bmc) = this.upgrade() {
                bmc.complete(generation);
            }
        });
    }

    fn complete(&self, generation: u64) {
        let event = {
            let mut state = self.lock();
            let Some(done) = state.power.complete(generation) else {
                return;
            };
            let system = state.system.clone();
            let mut event = None;
            if done.boots
                && let Some(stored) = state.tree.get_mut(&system)
            {
                let boot = &mut stored["Boot"];
                let enabled = boot["BootSourceOverrideEnabled"]
                    .as_str()
                    .unwrap_or("Disabled")
                    .to_string();
                let target = boot["BootSourceOverrideTarget"]
                    .as_str()
                    .unwrap_or("None")
                    .to_string();
                let boots_from = if enabled != "Disabled" && target != "None" {
                    target
                } else {
                    "Hdd".to_string()
                };
                if enabled == "Once" {
                    // A one-time override is consumed by the boot it applied to.
                    boot["BootSourceOverrideEnabled"] = json!("Disabled");
                    boot["BootSourceOverrideTarget"] = json!("None");
                }
                let mode = boot["BootSourceOverrideMode"]
                    .as_str()
                    .unwrap_or("UEFI")
                    .to_string();
                event = Some(BootEvent {
                    target: boots_from,
                    mode,
                    macs: macs(&state.tree, &system),
                });
            }
            self.changed(&mut state, &system);
            self.powered.send_if_modified(|on| {
                let changed = *on != done.target_on;
                *on = done.target_on;
                changed
            });
            event
        };
        if let Some(event) = event {
            // Nobody listening is fine: a BMC without a virtual host behind it.
            let _ = self.boots.send(event);
        }
    }
}

/// What the server's own operating system (or a virtual host playing it) does to its power,
/// as opposed to a Redfish client: it takes the same transitions, so a reboot boots through the
/// same override logic and is announced to [`Bmc::subscribe_boots`].
impl Bmc {
    /// A warm reboot from inside the server (`reboot`, a panic, an agent restarting the
    /// machine). Nothing happens when the server is off or heading off.
    pub fn os_reboot(&self) {
        self.os_power(true);
    }

    /// The server powers itself off (`poweroff`). Nothing happens when it is already off.
    pub fn os_power_off(&self) {
        self.os_power(false);
    }

    fn os_power(&self, restart: bool) {
        let due = {
            let mut state = self.lock();
            if !state.power.heading_on() {
                return;
            }
            let generation = state.power.start(restart, restart);
            let system = state.system.clone();
            self.changed(&mut state, &system);
            self.schedule(&mut state, generation);
            std::mem::take(&mut state.immediate)
        };
        for generation in due {
            self.complete(generation);
        }
    }
}

fn macs(tree: &super::tree::Tree, system: &str) -> Vec<String> {
    let prefix = format!("{system}/EthernetInterfaces/");
    tree.resources
        .iter()
        .filter(|(path, _)| path.starts_with(&prefix))
        .filter_map(|(_, nic)| nic["MACAddress"].as_str().map(str::to_lowercase))
        .collect()
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
