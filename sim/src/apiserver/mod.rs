//! `beskar7-sim apiserver`: an in-memory Kubernetes API server that the real kube client and
//! `Controller`, kubectl and the Python client run against unchanged.
//!
//! Usable over HTTP ([`ApiServer::serve`]) or in-process as a tower service
//! (`kube::Client::new(server.router(), "default")`). See shared/design/kube-emulator.md for the
//! behaviours reproduced and why.

pub mod builtin_schemas;
mod discovery;
pub mod error;
mod event_views;
mod fieldpath;
pub(crate) mod http;
mod jsonpath;
mod kinds;
mod media;
mod merge_keys;
mod openapi;
mod patch;
mod protobuf;
mod rbac;
pub mod resources;
mod routes;
pub mod schema;
pub mod selector;
mod shape;
mod smp;
mod ssa;
pub mod store;
mod table;
mod time;
mod view;
mod watch;
pub mod write;

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use store::{Store, StoreConfig};

pub use store::StoreConfig as Tunables;

/// Who a request comes from: a user name and its groups, as in a Kubernetes UserInfo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    pub fn admin() -> Self {
        Identity {
            user: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    pub fn anonymous() -> Self {
        Identity {
            user: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    /// Parses `USER[:GROUP,GROUP...]`; ServiceAccount users (`system:serviceaccount:ns:name`)
    /// contain colons themselves, so groups follow the last colon only when the user is not one.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (user, groups) = if let Some(rest) = spec.strip_prefix("system:serviceaccount:") {
            let parts: Vec<&str> = rest.splitn(3, ':').collect();
            match parts.as_slice() {
                [ns, name] => (format!("system:serviceaccount:{ns}:{name}"), None),
                [ns, name, groups] => (format!("system:serviceaccount:{ns}:{name}"), Some(*groups)),
                _ => {
                    return Err(format!(
                        "invalid ServiceAccount identity {spec:?}: want system:serviceaccount:NAMESPACE:NAME"
                    ));
                }
            }
        } else {
            match spec.split_once(':') {
                Some((user, groups)) => (user.to_string(), Some(groups)),
                None => (spec.to_string(), None),
            }
        };
        if user.is_empty() {
            return Err(format!("invalid identity {spec:?}: the user name is empty"));
        }
        let mut groups: Vec<String> = groups
            .map(|g| {
                g.split(',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(sa) = user.strip_prefix("system:serviceaccount:") {
            let ns = sa.split(':').next().unwrap_or_default();
            groups.push("system:serviceaccounts".into());
            groups.push(format!("system:serviceaccounts:{ns}"));
        }
        groups.push("system:authenticated".into());
        Ok(Identity { user, groups })
    }
}

/// One request as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct AuditKey {
    pub user: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub tunables: StoreConfig,
    /// Append one JSON line per request here.
    pub audit_log: Option<PathBuf>,
    /// The Kubernetes minor version `/version` reports (kubectl's dispatcher picks its binary by it).
    pub minor_version: Option<u32>,
    /// Enforce the RBAC objects stored in the server for every identity but the admins
    /// (`system:masters`); requests without credentials are then `system:anonymous`.
    pub authorize: bool,
}

pub struct ApiServer {
    store: Arc<Store>,
    tokens: RwLock<HashMap<String, Identity>>,
    audit_file: Option<Mutex<BufWriter<File>>>,
    audit_seen: Mutex<BTreeSet<AuditKey>>,
    minor_version: u32,
    authorize: bool,
}

impl ApiServer {
    pub fn new(config: Config) -> std::io::Result<Arc<Self>> {
        let audit_file = match &config.audit_log {
            Some(path) => Some(Mutex::new(BufWriter::new(
                File::options().create(true).append(true).open(path)?,
            ))),
            None => None,
        };
        let server = Arc::new(ApiServer {
            store: Arc::new(Store::new(config.tunables)),
            tokens: RwLock::new(HashMap::new()),
            audit_file,
            audit_seen: Mutex::new(BTreeSet::new()),
            minor_version: config.minor_version.unwrap_or(33),
            authorize: config.authorize,
        });
        server.create_default_namespaces();
        Ok(server)
    }

    /// Serves with default settings: enough for in-process tests.
    pub fn in_memory() -> Arc<Self> {
        Self::new(Config::default()).expect("no audit file, so nothing can fail")
    }

    fn create_default_namespaces(&self) {
        let mut state = self.store.lock();
        let rt = state
            .registry
            .lookup("", "v1", "namespaces")
            .expect("namespaces are built in");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let ns = serde_json::json!({"metadata": {"name": name}});
            state
                .create(&rt, "v1", None, ns, &write::WriteOptions::default())
                .expect("default namespaces are valid");
        }
    }

    /// The axum router: a tower service for `kube::Client::new(router, "default")`, or to serve.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        http::router(self.clone())
    }

    /// Serves HTTP on `listener` until `shutdown` completes.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// A router whose every request carries `identity`'s credentials: an in-process client
    /// that acts as that identity (`kube::Client::new(server.router_for(sa), "default")`).
    pub fn router_for(self: &Arc<Self>, identity: Identity) -> axum::Router {
        let token = self.add_identity(identity);
        let bearer = axum::http::HeaderValue::from_str(&format!("Bearer {token}"))
            .expect("a token is ASCII");
        self.router().layer(axum::middleware::map_request(
            move |mut request: axum::extract::Request| {
                let bearer = bearer.clone();
                async move {
                    request
                        .headers_mut()
                        .insert(axum::http::header::AUTHORIZATION, bearer);
                    request
                }
            },
        ))
    }

    /// Registers a bearer token for `identity` and returns it.
    pub fn add_identity(&self, identity: Identity) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), identity);
        token
    }

    /// Writes a kubeconfig for `identity` pointing at `server_url`.
    pub fn write_kubeconfig(
        &self,
        path: &Path,
        server_url: &str,
        identity: Identity,
    ) -> std::io::Result<()> {
        let user = identity.user.clone();
        let token = self.add_identity(identity);
        std::fs::write(path, kubeconfig(server_url, &user, &token))
    }

    /// Creates every CustomResourceDefinition found in the YAML or JSON files of `dir`.
    pub fn load_crds(&self, dir: &Path) -> Result<usize, String> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read CRD directory {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
            })
            .collect();
        entries.sort();
        let mut loaded = 0;
        for path in entries {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
            for doc in docs.into_iter().filter(|d| {
                d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
            }) {
                self.create_crd(doc)
                    .map_err(|e| format!("{}: {}", path.display(), e.message))?;
                loaded += 1;
            }
        }
        Ok(loaded)
    }

    /// Creates one CRD as the admin would; it is served as soon as this returns.
    pub fn create_crd(&self, crd: Value) -> Result<(), error::ApiError> {
        let mut state = self.store.lock();
        let rt = state
            .registry
            .lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("CRDs are built in");
        state
            .create(&rt, "v1", None, crd, &write::WriteOptions::default())
            .map(drop)
    }

    /// Every distinct (identity, verb, group, resource, subresource, namespace) seen so far.
    pub fn audit_summary(&self) -> Vec<AuditKey> {
        self.audit_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn authenticate(&self, headers: &axum::http::HeaderMap) -> Option<Identity> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            // In-process clients carry no credentials; they act as the admin, unless RBAC is
            // enforced, where no credentials means anonymous, as on a real server.
            return Some(if self.authorize {
                Identity::anonymous()
            } else {
                Identity::admin()
            });
        };
        let token = value.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    fn record(&self, key: AuditKey, name: &str, code: u16) {
        if let Some(file) = &self.audit_file {
            let mut line = serde_json::to_value(&key).expect("plain strings");
            line["name"] = Value::String(name.to_string());
            line["code"] = Value::from(code);
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            // The audit log is best effort: a full disk must not fail API requests.
            let _ = writeln!(file, "{line}").and_then(|_| file.flush());
        }
        self.audit_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
    }
}

fn kubeconfig(server_url: &str, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: beskar7-sim\n  cluster:\n    server: {server_url}\nusers:\n- name: {user:?}\n  user:\n    token: {token}\ncontexts:\n- name: beskar7-sim\n  context:\n    cluster: beskar7-sim\n    user: {user:?}\n    namespace: default\ncurrent-context: beskar7-sim\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_users_groups_and_service_accounts() {
        let sa = Identity::parse("system:serviceaccount:beskar7-system:beskar7").unwrap();
        assert_eq!(sa.user, "system:serviceaccount:beskar7-system:beskar7");
        assert!(
            sa.groups
                .contains(&"system:serviceaccounts:beskar7-system".to_string())
        );
        let user = Identity::parse("alice:ops,dev").unwrap();
        assert_eq!(
            (user.user.as_str(), &user.groups[..2]),
            ("alice", &["ops".to_string(), "dev".to_string()][..])
        );
        assert!(Identity::parse(":ops").is_err());
    }
}
