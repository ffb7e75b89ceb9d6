//! The in-memory object store: one global resourceVersion, one collection per group/resource,
//! and a bounded change log per collection that watches replay from.
//!
//! Everything happens under one mutex. Operations are short (no I/O under the lock), and a single
//! lock is what makes "one global monotonic resourceVersion" and "a watch resumed from RV N sees
//! every change after N exactly once" trivially true.

use super::error::{ApiError, ApiResult};
use super::resources::{GroupResource, Registry, ResourceType};
use super::selector::{FieldSelector, LabelSelector, field_path_value};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects. Ordered like etcd keys.
pub type ObjectKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One committed write, as watches see it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub kind: ChangeKind,
    /// The object after the change; for deletions, its last state carrying the deletion's RV.
    pub object: Arc<Value>,
    /// The object before the change, so a watch can tell an object entering or leaving its
    /// selector.
    pub previous: Option<Arc<Value>>,
    /// `object` as JSON, encoded once by the first watch that sends it at the stored version and
    /// reused by every other: fan-out to many watches costs one serialization per change.
    pub encoded: std::sync::OnceLock<bytes::Bytes>,
}

pub struct Collection {
    pub objects: BTreeMap<ObjectKey, Arc<Value>>,
    pub log: VecDeque<Arc<Change>>,
    /// The RV of the newest change dropped from `log`: a watch from an older RV gets 410.
    pub compacted_through: u64,
    /// Carries the newest RV written; watches wait on it.
    pub notify: watch::Sender<u64>,
}

impl Collection {
    fn new() -> Self {
        Collection {
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            compacted_through: 0,
            notify: watch::channel(0).0,
        }
    }

    pub fn in_namespace<'a>(
        &'a self,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        self.objects
            .iter()
            .filter(move |((n, _), _)| ns.is_none_or(|ns| n == ns))
            .map(|(_, v)| v)
    }
}

/// Tunables; the defaults are what a real apiserver roughly does.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Changes kept per collection for watch resumption (the real watch cache keeps ~75 s).
    pub watch_history: usize,
    /// How often an idle watch with bookmarks enabled gets a BOOKMARK (the real server: ~1 min).
    pub bookmark_interval: Duration,
    /// How long a paginated list's snapshot stays valid for `continue` (the real server: until
    /// etcd compaction, 5 minutes by default).
    pub continue_ttl: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(60),
            continue_ttl: Duration::from_secs(300),
        }
    }
}

/// Paginated lists in progress at once; an evicted one answers its next page with 410.
const MAX_SNAPSHOTS: usize = 256;

/// A consistent list taken for pagination; `continue` tokens page through it.
struct Snapshot {
    rv: u64,
    items: Vec<Arc<Value>>,
    taken: Instant,
}

pub struct State {
    pub rv: u64,
    pub registry: Registry,
    pub collections: HashMap<GroupResource, Collection>,
    snapshots: HashMap<u64, Snapshot>,
    next_snapshot: u64,
    pub next_cluster_ip: u32,
    pub config: StoreConfig,
}

pub struct Store {
    state: Mutex<State>,
}

/// One page of a list.
pub struct ListPage {
    pub items: Vec<Arc<Value>>,
    pub rv: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

impl Store {
    pub fn new(config: StoreConfig) -> Self {
        let state = State {
            rv: 0,
            registry: Registry::with_built_ins(),
            collections: HashMap::new(),
            snapshots: HashMap::new(),
            next_snapshot: 1,
            next_cluster_ip: 1,
            config,
        };
        Store {
            state: Mutex::new(state),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as consistent as any single write
        // (writes commit at the end), so keep serving rather than poisoning every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    pub fn collection(&self, gr: &GroupResource) -> Option<&Collection> {
        self.collections.get(gr)
    }

    pub fn collection_mut(&mut self, gr: &GroupResource) -> &mut Collection {
        self.collections
            .entry(gr.clone())
            .or_insert_with(Collection::new)
    }

    pub fn get(&self, rt: &ResourceType, key: &ObjectKey) -> Option<Arc<Value>> {
        self.collection(&rt.group_resource())
            .and_then(|c| c.objects.get(key))
            .cloned()
    }

    pub fn get_or_404(&self, rt: &ResourceType, key: &ObjectKey) -> ApiResult<Arc<Value>> {
        self.get(rt, key)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, &key.1))
    }

    /// Records a write: assigns the next RV, stores (or removes) the object, logs the change and
    /// wakes the collection's watches.
    pub fn commit(
        &mut self,
        gr: &GroupResource,
        key: ObjectKey,
        kind: ChangeKind,
        mut object: Value,
        previous: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let object = Arc::new(object);
        let history = self.config.watch_history.max(1);
        let collection = self.collection_mut(gr);
        if kind == ChangeKind::Deleted {
            collection.objects.remove(&key);
        } else {
            collection.objects.insert(key, object.clone());
        }
        collection.log.push_back(Arc::new(Change {
            rv,
            kind,
            object: object.clone(),
            previous,
            encoded: std::sync::OnceLock::new(),
        }));
        while collection.log.len() > history {
            if let Some(dropped) = collection.log.pop_front() {
                collection.compacted_through = dropped.rv;
            }
        }
        collection.notify.send_replace(rv);
        object
    }

    /// Lists matching objects, one page at a time when `limit` is set.
    pub fn list(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> ApiResult<ListPage> {
        let ttl = self.config.continue_ttl;
        self.snapshots.retain(|_, s| s.taken.elapsed() < ttl);
        if let Some(token) = continue_token {
            let (id, offset) = decode_continue(token)?;
            let snapshot = self.snapshots.get(&id).ok_or_else(|| {
                ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
            })?;
            let (items, rv) = (snapshot.items.clone(), snapshot.rv);
            return Ok(self.page(items, rv, offset, limit, id));
        }
        let items: Vec<Arc<Value>> = self
            .collection(&rt.group_resource())
            .map(|c| {
                c.in_namespace(namespace)
                    .filter(|o| matches(o, labels, fields))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let rv = self.rv;
        match limit {
            Some(limit) if items.len() > limit => {
                let id = self.next_snapshot;
                self.next_snapshot += 1;
                // Clients may abandon a paginated list: keep the newest snapshots only.
                if self.snapshots.len() >= MAX_SNAPSHOTS
                    && let Some(oldest) = self.snapshots.keys().min().copied()
                {
                    self.snapshots.remove(&oldest);
                }
                self.snapshots.insert(
                    id,
                    Snapshot {
                        rv,
                        items: items.clone(),
                        taken: Instant::now(),
                    },
                );
                Ok(self.page(items, rv, 0, Some(limit), id))
            }
            _ => Ok(ListPage {
                items,
                rv,
                continue_token: None,
                remaining: None,
            }),
        }
    }

    fn page(
        &mut self,
        items: Vec<Arc<Value>>,
        rv: u64,
        offset: usize,
        limit: Option<usize>,
        id: u64,
    ) -> ListPage {
        let end = limit.map_or(items.len(), |l| (offset + l).min(items.len()));
        let page: Vec<Arc<Value>> = items
            .get(offset..end)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        if end < items.len() {
            ListPage {
                items: page,
                rv,
                continue_token: Some(encode_continue(id, end, rv)),
                remaining: Some(items.len() - end),
            }
        } else {
            self.snapshots.remove(&id);
            ListPage {
                items: page,
                rv,
                continue_token: None,
                remaining: None,
            }
        }
    }

    pub fn namespace_phase(&self, namespace: &str) -> Option<String> {
        let gr = GroupResource::new(
            super::resources::NAMESPACES.0,
            super::resources::NAMESPACES.1,
        );
        self.collections
            .get(&gr)
            .and_then(|c| c.objects.get(&(String::new(), namespace.to_string())))
            .map(|ns| {
                ns.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("Active")
                    .to_string()
            })
    }
}

/// Whether an object matches a label and a field selector.
pub fn matches(object: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    (labels.is_empty() || labels.matches(&labels_of(object)))
        && (fields.is_empty() || fields.matches(object, field_path_value))
}

pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn encode_continue(id: u64, offset: usize, rv: u64) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "id": id, "offset": offset});
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(u64, usize)> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let id = value
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    let offset = value
        .get("offset")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)? as usize;
    Ok((id, offset))
}

/// `metadata.resourceVersion` as a number (0 when unset or not a number).
pub fn resource_version_of(object: &Value) -> u64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
