//! Watch streams: replay from a resourceVersion, then follow the collection's change log.
//!
//! A watch keeps only a cursor (the last RV it delivered) and reads the shared log on each wake-up,
//! so a slow client costs no memory beyond the log itself; if its cursor falls out of the log it
//! gets a 410 `Expired` ERROR event, exactly as the real watch cache does, and relists.

use super::error::ApiError;
use super::resources::{GroupResource, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Change, ChangeKind, Store, matches};
use super::view::{at_version, bookmark_line, change_line, event_line};
use bytes::Bytes;
use futures::Stream;
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

pub struct WatchRequest {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `None` or `Some(0)`: start with synthetic ADDED events for the current state.
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
}

struct Watch {
    store: Arc<Store>,
    rt: Arc<ResourceType>,
    gr: GroupResource,
    version: String,
    req: WatchRequest,
    cursor: u64,
    notify: watch::Receiver<u64>,
    pending: VecDeque<Bytes>,
    deadline: Instant,
    bookmark_interval: Duration,
    next_bookmark: Instant,
    done: bool,
}

/// Starts a watch; the stream yields newline-delimited events until `timeoutSeconds`, a 410, or
/// the resource stops being served.
pub fn start(
    store: Arc<Store>,
    rt: Arc<ResourceType>,
    version: &str,
    req: WatchRequest,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let gr = rt.group_resource();
    let mut pending = VecDeque::new();
    let (cursor, notify, bookmark_interval, done) = {
        let mut state = store.lock();
        let bookmark_interval = state.config.bookmark_interval;
        let global_rv = state.rv;
        let collection = state.collection_mut(&gr);
        let notify = collection.notify.subscribe();
        let start_from_state =
            req.send_initial_events || req.resource_version.is_none_or(|rv| rv == 0);
        if start_from_state {
            for obj in collection.in_namespace(req.namespace.as_deref()) {
                if matches(obj, &req.labels, &req.fields) {
                    pending.push_back(event_line("ADDED", &at_version(obj, &rt, version)));
                }
            }
            if req.send_initial_events {
                pending.push_back(bookmark_line(&rt, version, global_rv, true));
            }
            (global_rv, notify, bookmark_interval, false)
        } else {
            let rv = req.resource_version.unwrap_or(0);
            if rv < collection.compacted_through {
                pending.push_back(expired_line(rv, collection.compacted_through));
                (rv, notify, bookmark_interval, true)
            } else {
                (rv, notify, bookmark_interval, false)
            }
        }
    };
    let now = Instant::now();
    let watch = Watch {
        store,
        rt,
        gr,
        version: version.to_string(),
        deadline: now + req.timeout,
        req,
        cursor,
        notify,
        pending,
        bookmark_interval,
        next_bookmark: now + bookmark_interval,
        done,
    };
    futures::stream::unfold(watch, |mut w| async move {
        loop {
            if let Some(line) = w.pending.pop_front() {
                return Some((Ok(line), w));
            }
            if w.done {
                return None;
            }
            w.drain(None);
            if !w.pending.is_empty() {
                continue;
            }
            tokio::select! {
                changed = w.notify.changed() => {
                    if changed.is_err() {
                        // The collection is gone (its CRD was deleted): the real server closes too.
                        w.done = true;
                    }
                }
                _ = tokio::time::sleep_until(w.next_bookmark), if w.req.bookmarks => {
                    w.drain(Some(false));
                    w.next_bookmark = Instant::now() + w.bookmark_interval;
                }
                _ = tokio::time::sleep_until(w.deadline) => {
                    // A last bookmark lets the client resume exactly where this watch ended.
                    if w.req.bookmarks {
                        w.drain(Some(false));
                    }
                    w.done = true;
                }
            }
        }
    })
}

fn expired_line(rv: u64, compacted_through: u64) -> Bytes {
    let err = ApiError::expired(format!(
        "too old resource version: {rv} ({compacted_through})"
    ));
    event_line("ERROR", &err.to_status())
}

impl Watch {
    /// Moves every change after the cursor into `pending`; with `bookmark`, ends with a BOOKMARK
    /// at the current global RV (everything up to it has been delivered).
    fn drain(&mut self, bookmark: Option<bool>) {
        let state = self.store.lock();
        let Some(collection) = state.collection(&self.gr) else {
            self.done = true;
            return;
        };
        if self.cursor < collection.compacted_through {
            self.pending
                .push_back(expired_line(self.cursor, collection.compacted_through));
            self.done = true;
            return;
        }
        let start = collection.log.partition_point(|c| c.rv <= self.cursor);
        for change in collection.log.range(start..) {
            if let Some(kind) = self.event_kind(change) {
                self.pending
                    .push_back(change_line(kind, change, &self.rt, &self.version));
            }
            self.cursor = change.rv;
        }
        if let Some(initial_events_end) = bookmark {
            self.cursor = self.cursor.max(state.rv);
            self.pending.push_back(bookmark_line(
                &self.rt,
                &self.version,
                self.cursor,
                initial_events_end,
            ));
        }
    }

    /// How a change looks through this watch's namespace and selectors: an object that starts
    /// matching is ADDED, one that stops matching is DELETED.
    fn event_kind(&self, change: &Change) -> Option<&'static str> {
        let visible = |o: &Value| {
            self.req.namespace.as_deref().is_none_or(|ns| {
                o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
            }) && matches(o, &self.req.labels, &self.req.fields)
        };
        let now = visible(&change.object);
        let before = change.previous.as_deref().is_some_and(visible);
        match change.kind {
            ChangeKind::Added => now.then_some("ADDED"),
            ChangeKind::Deleted => (now || before).then_some("DELETED"),
            ChangeKind::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }
    }
}
