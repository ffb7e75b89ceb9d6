//! Field ownership (`metadata.managedFields`) and server-side apply, after structured-merge-diff
//! (`merge/update.go`) and the apiserver's `fieldmanager`.
//!
//! Every write records which manager set which fields. An update (create, PUT, merge, JSON or
//! strategic patch) gives its manager the fields it added or changed and takes them from everyone
//! else. An apply merges the applied configuration into the live object, fails with a conflict
//! when that changes a field another manager owns (unless forced, which takes the field), and
//! removes the fields its manager applied last time, omits now, and nobody else owns.

use super::error::{ApiError, ApiResult, Cause, Details};
use super::fieldpath::{Element, FieldSet, Path, path_string};
use super::merge_keys::{ListKind, Shape};
use super::time::now_rfc3339;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who writes: the request's field manager, at which version, through which subresource.
#[derive(Debug, Clone)]
pub struct Writer {
    pub manager: String,
    pub api_version: String,
    /// `"status"` for `/status` writes, empty otherwise.
    pub subresource: String,
    /// The kind has a status subresource: the main endpoint does not write `.status` then.
    pub status_subresource: bool,
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: Operation,
    api_version: String,
    time: Option<String>,
    subresource: String,
    set: FieldSet,
}

impl Entry {
    /// The apiserver keys entries by manager, operation and subresource, and updaters also by
    /// version (`BuildManagerIdentifier`): an applier keeps one entry whatever version it uses.
    fn is(&self, writer: &Writer, operation: Operation) -> bool {
        self.manager == writer.manager
            && self.operation == operation
            && self.subresource == writer.subresource
            && (operation == Operation::Apply || self.api_version == writer.api_version)
    }

    /// How conflict messages name a manager (`printManager`).
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn encode(&self) -> Value {
        let mut e = Map::new();
        if !self.manager.is_empty() {
            e.insert("manager".into(), Value::String(self.manager.clone()));
        }
        e.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        e.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(time) = &self.time {
            e.insert("time".into(), Value::String(time.clone()));
        }
        e.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        e.insert("fieldsV1".into(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            e.insert(
                "subresource".into(),
                Value::String(self.subresource.clone()),
            );
        }
        Value::Object(e)
    }

    fn decode(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
        let operation = match s("operation") {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        Some(Entry {
            manager: s("manager").to_string(),
            operation,
            api_version: s("apiVersion").to_string(),
            time: v.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: s("subresource").to_string(),
            set: FieldSet::from_fields_v1(v.get("fieldsV1")?)?,
        })
    }
}

/// Client-sent managedFields: `Some(empty)` for a reset, `Some(entries)` when every entry
/// decodes, `None` (keep the stored ones) when they are null, empty of entries or do not decode.
fn decode_sent(sent: &Value) -> Option<Vec<Entry>> {
    let list = sent.as_array()?;
    let reset = list.is_empty() || (list.len() == 1 && list[0] == Value::Object(Map::new()));
    if reset {
        return Some(Vec::new());
    }
    list.iter().map(Entry::decode).collect()
}

fn entries_of(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::decode).collect())
        .unwrap_or_default()
}

/// Stores `entries` in the apiserver's order: appliers first, then by time, manager, version,
/// subresource (`sortEncodedManagedFields`).
fn store_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let meta = obj["metadata"]
        .as_object_mut()
        .expect("objects have metadata");
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::encode).collect()),
        );
    }
}

/// Records an update by `writer` that turned `before` (`None`: a create) into `after`. `sent`:
/// the managedFields the request carried, the base instead of the stored ones when they decode
/// (`[]` or `[{}]` reset them), as the apiserver's `decodeLiveOrNew`.
pub fn record_update(
    before: Option<&Value>,
    sent: Option<&Value>,
    after: &mut Value,
    shape: &Shape,
    writer: &Writer,
) {
    let mut entries = sent
        .and_then(decode_sent)
        .unwrap_or_else(|| before.map(entries_of).unwrap_or_default());
    let empty = Value::Object(Map::new());
    let mut cmp = Comparison::default();
    compare(
        Some(before.unwrap_or(&empty)),
        Some(after),
        shape,
        &mut Vec::new(),
        &mut cmp,
    );
    cmp.strip(writer);
    let changed = cmp.added.union(&cmp.modified);
    for e in entries
        .iter_mut()
        .filter(|e| !e.is(writer, Operation::Update))
    {
        e.set = e.set.difference(&changed).difference(&cmp.removed);
    }
    let mine = match entries.iter().position(|e| e.is(writer, Operation::Update)) {
        Some(i) => entries.remove(i).set,
        None => FieldSet::new(),
    };
    entries.push(Entry {
        manager: writer.manager.clone(),
        operation: Operation::Update,
        api_version: writer.api_version.clone(),
        time: Some(now_rfc3339()),
        subresource: writer.subresource.clone(),
        set: mine.difference(&cmp.removed).union(&changed),
    });
    store_entries(after, entries);
}

/// Server-side apply of `config` by `writer` to `live` (`None`: the object does not exist yet):
/// the merged object, carrying its new `managedFields`, or a 409 naming every conflict.
///
/// `object` names the object in errors as the apiserver does: `ns/name; group/version, Kind=K`.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    shape: &Shape,
    writer: &Writer,
    force: bool,
    object: &str,
) -> ApiResult<Value> {
    let config = applied_part(config, writer);
    let mut errors = Vec::new();
    check_config(&config, shape, &mut Vec::new(), &mut errors);
    if !errors.is_empty() {
        return Err(typed_patch_error(object, &errors));
    }
    let empty = Value::Object(Map::new());
    let live = live.unwrap_or(&empty);
    let mut entries = entries_of(live);
    let last = entries
        .iter()
        .position(|e| e.is(writer, Operation::Apply))
        .map(|i| entries.remove(i).set)
        .unwrap_or_default();
    let mut applied = FieldSet::new();
    to_field_set(&config, shape, &mut Vec::new(), &mut applied);
    strip_set(&mut applied, writer);

    let mut merged = merge(Some(live), &config, shape);
    // Fields applied last time and omitted now go, unless someone (the applier included) still
    // owns them or something below them.
    let owned = entries
        .iter()
        .fold(applied.clone(), |acc, e| acc.union(&e.set));
    // Shallowest first: removing a list item by its key before its key field goes.
    for path in last.difference(&owned).iter() {
        if !owned.has_descendant(path) && !is_key_field(path) {
            remove_path(&mut merged, path);
        }
    }

    let mut cmp = Comparison::default();
    compare(Some(live), Some(&merged), shape, &mut Vec::new(), &mut cmp);
    cmp.strip(writer);
    let changed = cmp.added.union(&cmp.modified);
    let conflicts: Vec<(String, Path)> = entries
        .iter()
        .flat_map(|e| {
            e.set
                .intersection(&changed)
                .iter()
                .map(|p| (e.describe(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(conflicts));
    }
    for e in &mut entries {
        e.set = e.set.difference(&changed).difference(&cmp.removed);
    }
    entries.push(Entry {
        manager: writer.manager.clone(),
        operation: Operation::Apply,
        api_version: writer.api_version.clone(),
        time: Some(now_rfc3339()),
        subresource: writer.subresource.clone(),
        set: applied,
    });
    store_entries(&mut merged, entries);
    Ok(merged)
}

/// When a write changed nothing but managedFields times, keeps the stored managedFields, so the
/// write stays a no-op (the apiserver's `IgnoreManagedFieldsTimestampsTransformer`).
pub fn keep_times_if_unchanged(current: &Value, next: &mut Value) {
    let without_times = |v: &Value| {
        let mut entries = entries_of(v);
        for e in &mut entries {
            e.time = None;
        }
        entries
    };
    if without_times(current) != without_times(next) {
        return;
    }
    if same_but_managed_fields(current, next) {
        match current.pointer("/metadata/managedFields").cloned() {
            Some(m) => next["metadata"]["managedFields"] = m,
            None => {
                if let Some(meta) = next["metadata"].as_object_mut() {
                    meta.remove("managedFields");
                }
            }
        }
    }
}

/// Whether two objects are equal once their managedFields are left out (without copying them).
fn same_but_managed_fields(a: &Value, b: &Value) -> bool {
    fn same_except<'a>(
        a: &'a Map<String, Value>,
        b: &'a Map<String, Value>,
        skip: &str,
        inner: impl Fn(&str, &'a Value, &'a Value) -> bool,
    ) -> bool {
        let keys = |m: &'a Map<String, Value>| m.keys().filter(|k| *k != skip).count();
        keys(a) == keys(b)
            && a.iter()
                .filter(|(k, _)| *k != skip)
                .all(|(k, v)| b.get(k).is_some_and(|w| inner(k, v, w)))
    }
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => same_except(a, b, "", |k, v, w| match (k, v, w) {
            ("metadata", Value::Object(v), Value::Object(w)) => {
                same_except(v, w, "managedFields", |_, x, y| x == y)
            }
            (_, v, w) => v == w,
        }),
        _ => a == b,
    }
}

fn conflict_error(mut conflicts: Vec<(String, Path)>) -> ApiError {
    conflicts.sort();
    let causes = conflicts
        .iter()
        .map(|(who, path)| Cause {
            reason: "FieldManagerConflict",
            field: path_string(path),
            message: format!("conflict with {who}"),
        })
        .collect();
    let message = if let [(who, path)] = conflicts.as_slice() {
        format!(
            "Apply failed with 1 conflict: conflict with {who}: {}",
            path_string(path)
        )
    } else {
        let mut lines = Vec::new();
        let mut last: Option<&str> = None;
        for (who, path) in &conflicts {
            if last != Some(who) {
                lines.push(format!("conflicts with {who}:"));
                last = Some(who);
            }
            lines.push(format!("- {}", path_string(path)));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut err = ApiError::conflict("", "", "", "");
    err.message = message;
    err.details = Some(Box::new(Details {
        causes,
        ..Details::default()
    }));
    err
}

/// Checks an applied configuration as structured-merge-diff types it (`ObjectToTyped`, no
/// duplicates allowed): list-map items carry their keys, no item appears twice, and a custom
/// resource sets only declared fields. Messages are SMD's, each led by its path.
fn check_config(v: &Value, shape: &Shape, at: &mut Path, errors: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(Element::Field(k.clone()));
                if shape.accepts(k) {
                    check_config(child, &shape.field(k), at, errors);
                } else {
                    errors.push(format!("{}: field not declared in schema", path_string(at)));
                }
                at.pop();
            }
        }
        Value::Array(items) => {
            let kind = shape.list_kind();
            let item_shape = shape.items();
            let mut seen: Vec<Element> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let element = match &kind {
                    ListKind::Atomic => Element::Index(i),
                    ListKind::Set => Element::value_of(item),
                    ListKind::Map(keys) => {
                        let missing = keys
                            .iter()
                            .find(|k| k.default.is_none() && item.get(&k.name).is_none());
                        if let Some(k) = missing {
                            errors.push(format!(
                                "{}: element {i}: associative list with keys has an element that omits key field {:?} (and doesn't have default value)",
                                path_string(at),
                                k.name
                            ));
                            continue;
                        }
                        Element::key_of(item, keys)
                    }
                };
                if kind != ListKind::Atomic {
                    if seen.contains(&element) {
                        errors.push(format!(
                            "{}: duplicate entries for key {element}",
                            path_string(at)
                        ));
                        continue;
                    }
                    seen.push(element.clone());
                }
                at.push(element);
                check_config(item, &item_shape, at, errors);
                at.pop();
            }
        }
        _ => {}
    }
}

/// What the apiserver answers when an applied configuration does not type: 500 with no reason
/// (the error is not a Status), as clients see it: `failed to create typed patch object (...)`.
fn typed_patch_error(object: &str, errors: &[String]) -> ApiError {
    let detail = match errors {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    let mut err = ApiError::internal(format!(
        "failed to create typed patch object ({object}): {detail}"
    ));
    err.reason = "";
    err
}

/// The part of an applied configuration the endpoint writes: `.status` only on `/status`, all
/// but `.status` on the main endpoint of a kind with a status subresource (the strategies'
/// reset fields). Nulls mean "not applied" here; `managedFields` is never applied.
fn applied_part(config: &Value, writer: &Writer) -> Value {
    let mut config = drop_nulls(config);
    let obj = config.as_object_mut().expect("apply bodies are objects");
    if writer.subresource == "status" {
        obj.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace"));
        }
    } else if writer.status_subresource {
        obj.remove("status");
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    config
}

fn drop_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), drop_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(drop_nulls).collect()),
        other => other.clone(),
    }
}

/// Fields nobody owns (`stripMetaManager`) and, per endpoint, the fields it does not write.
fn strip_set(set: &mut FieldSet, writer: &Writer) {
    fn field(p: &Path, i: usize) -> Option<&str> {
        match p.get(i) {
            Some(Element::Field(f)) => Some(f.as_str()),
            _ => None,
        }
    }
    set.retain(|p| {
        let top = field(p, 0);
        if matches!(top, Some("apiVersion" | "kind")) || p.len() == 1 && top == Some("metadata") {
            return false;
        }
        if top == Some("metadata")
            && matches!(
                field(p, 1),
                Some(
                    "name"
                        | "namespace"
                        | "creationTimestamp"
                        | "selfLink"
                        | "uid"
                        | "generation"
                        | "managedFields"
                        | "resourceVersion"
                        | "deletionTimestamp"
                        | "deletionGracePeriodSeconds"
                )
            )
        {
            return false;
        }
        if writer.subresource == "status" {
            top == Some("status")
        } else {
            !(writer.status_subresource && top == Some("status"))
        }
    });
}

/// The fields an applied configuration sets (structured-merge-diff `ToFieldSet`): every scalar
/// and atomic value, every item of a granular list and every entry of a free-keyed map; a
/// struct only through its fields.
fn to_field_set(v: &Value, shape: &Shape, at: &mut Path, set: &mut FieldSet) {
    match v {
        Value::Object(m) if !shape.map_is_atomic() => {
            for (k, child) in m {
                at.push(Element::Field(k.clone()));
                to_field_set(child, &shape.field(k), at, set);
                if !shape.declares(k) {
                    set.insert(at.clone());
                }
                at.pop();
            }
        }
        Value::Array(items) => match shape.list_kind() {
            ListKind::Atomic => set.insert(at.clone()),
            ListKind::Set => {
                for item in items {
                    at.push(Element::value_of(item));
                    set.insert(at.clone());
                    at.pop();
                }
            }
            ListKind::Map(keys) => {
                let item_shape = shape.items();
                for item in items {
                    at.push(Element::key_of(item, &keys));
                    set.insert(at.clone());
                    to_field_set(item, &item_shape, at, set);
                    at.pop();
                }
            }
        },
        _ => set.insert(at.clone()),
    }
}

/// What changed between two versions of an object (structured-merge-diff `Compare`).
#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    fn strip(&mut self, writer: &Writer) {
        strip_set(&mut self.added, writer);
        strip_set(&mut self.modified, writer);
        strip_set(&mut self.removed, writer);
    }
}

fn compare(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    shape: &Shape,
    at: &mut Path,
    cmp: &mut Comparison,
) {
    let is_empty = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    // Two empty (or absent) containers compare as leaves, keeping `{}` apart from `null`.
    let granular_container = !(is_empty(lhs) && is_empty(rhs));
    let both = |pred: fn(&Value) -> bool| lhs.is_none_or(pred) && rhs.is_none_or(pred);
    if granular_container && both(Value::is_object) && !shape.map_is_atomic() {
        mark_presence(lhs, rhs, at, cmp);
        let empty = Map::new();
        let l = lhs.and_then(Value::as_object).unwrap_or(&empty);
        let r = rhs.and_then(Value::as_object).unwrap_or(&empty);
        let mut keys: Vec<&String> = l.keys().chain(r.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            // managedFields describe the object; they are not part of it.
            if at.len() == 1 && at[0] == Element::Field("metadata".into()) && k == "managedFields" {
                continue;
            }
            at.push(Element::Field(k.clone()));
            compare(l.get(k), r.get(k), &shape.field(k), at, cmp);
            at.pop();
        }
        return;
    }
    let kind = shape.list_kind();
    if granular_container && both(Value::is_array) && kind != ListKind::Atomic {
        mark_presence(lhs, rhs, at, cmp);
        let l = index_items(lhs, &kind);
        let r = index_items(rhs, &kind);
        let item_shape = shape.items();
        let mut elements: Vec<&Element> = l.iter().chain(r.iter()).map(|(e, _)| e).collect();
        elements.sort();
        elements.dedup();
        for element in elements {
            let find = |items: &[(Element, Value)]| {
                items
                    .iter()
                    .find(|(e, _)| e == element)
                    .map(|(_, v)| v.clone())
            };
            let (lv, rv) = (find(&l), find(&r));
            at.push(element.clone());
            compare(lv.as_ref(), rv.as_ref(), &item_shape, at, cmp);
            at.pop();
        }
        return;
    }
    match (lhs, rhs) {
        (None, Some(_)) => cmp.added.insert(at.clone()),
        (Some(_), None) => cmp.removed.insert(at.clone()),
        (Some(a), Some(b)) if a != b => cmp.modified.insert(at.clone()),
        _ => {}
    }
}

fn mark_presence(lhs: Option<&Value>, rhs: Option<&Value>, at: &Path, cmp: &mut Comparison) {
    match (lhs, rhs) {
        (None, Some(_)) => cmp.added.insert(at.clone()),
        (Some(_), None) => cmp.removed.insert(at.clone()),
        _ => {}
    }
}

/// A granular list's items with the elements that name them.
fn index_items(list: Option<&Value>, kind: &ListKind) -> Vec<(Element, Value)> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| (element_of(item, kind), item.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn element_of(item: &Value, kind: &ListKind) -> Element {
    match kind {
        ListKind::Map(keys) => Element::key_of(item, keys),
        _ => Element::value_of(item),
    }
}

/// Merges an applied configuration into the live object: granular maps field by field,
/// granular lists item by item, everything else replaced by the configuration.
fn merge(live: Option<&Value>, config: &Value, shape: &Shape) -> Value {
    match (live, config) {
        (Some(Value::Object(l)), Value::Object(c)) if !shape.map_is_atomic() => {
            let mut out = l.clone();
            for (k, cv) in c {
                let merged = merge(l.get(k), cv, &shape.field(k));
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(Value::Array(l)), Value::Array(c)) => match shape.list_kind() {
            ListKind::Atomic => config.clone(),
            kind => Value::Array(merge_items(l, c, &kind, &shape.items())),
        },
        _ => config.clone(),
    }
}

/// Merges two granular lists keeping the applier's order for the items it names and the live
/// position of the items only the live list has (structured-merge-diff `visitListItems`).
fn merge_items(
    live: &[Value],
    config: &[Value],
    kind: &ListKind,
    item_shape: &Shape,
) -> Vec<Value> {
    let l: Vec<Element> = live.iter().map(|i| element_of(i, kind)).collect();
    let r: Vec<Element> = config.iter().map(|i| element_of(i, kind)).collect();
    let live_item = |e: &Element| l.iter().position(|x| x == e).map(|i| &live[i]);
    // The items both lists have, in the applier's order: the live list waits for each in turn.
    let mut shared = r.iter().filter(|e| l.contains(e)).peekable();
    let mut done: Vec<&Element> = Vec::new();
    let mut out = Vec::with_capacity(live.len().max(config.len()));
    let (mut li, mut ri) = (0, 0);
    while li < l.len() || ri < r.len() {
        if li < l.len() && ri < r.len() && l[li] == r[ri] {
            out.push(merge(Some(&live[li]), &config[ri], item_shape));
            done.push(&r[ri]);
            if shared.peek() == Some(&&r[ri]) {
                shared.next();
            }
            li += 1;
            ri += 1;
            continue;
        }
        if li < l.len() {
            let in_config = r.contains(&l[li]);
            if !in_config {
                out.push(live[li].clone());
                li += 1;
                continue;
            }
            if done.contains(&&l[li]) || shared.peek().is_some_and(|s| **s != l[li]) {
                li += 1;
                continue;
            }
        }
        if ri < r.len() {
            out.push(merge(live_item(&r[ri]), &config[ri], item_shape));
            done.push(&r[ri]);
            if shared.peek() == Some(&&r[ri]) {
                shared.next();
            }
            ri += 1;
        } else {
            li += 1;
        }
    }
    out
}

/// Whether `path` ends in a key field of the list item it is in: an item kept because someone
/// still owns part of it keeps its identity.
fn is_key_field(path: &[Element]) -> bool {
    match path {
        [.., Element::Key(json), Element::Field(f)] => {
            serde_json::from_str::<Map<String, Value>>(json).is_ok_and(|keys| keys.contains_key(f))
        }
        _ => false,
    }
}

/// Removes the value at `path`, if present.
fn remove_path(obj: &mut Value, path: &[Element]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = obj;
    for element in parents {
        let next = match (element, node) {
            (Element::Field(f), Value::Object(m)) => m.get_mut(f),
            (Element::Index(i), Value::Array(a)) => a.get_mut(*i),
            (e, Value::Array(a)) => a.iter_mut().find(|item| names(e, item)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    match (last, node) {
        (Element::Field(f), Value::Object(m)) => {
            m.remove(f);
        }
        (Element::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        (e, Value::Array(a)) => a.retain(|item| !names(e, item)),
        _ => {}
    }
}

/// Whether a list item is the one `element` names.
fn names(element: &Element, item: &Value) -> bool {
    match element {
        Element::Key(json) => serde_json::from_str::<Map<String, Value>>(json)
            .map(|keys| {
                keys.iter()
                    .all(|(k, v)| item.get(k).unwrap_or(&Value::Null) == v)
            })
            .unwrap_or(false),
        Element::Value(_) => Element::value_of(item) == *element,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"x": {"type": "string"}, "y": {"type": "string"}}},
            "status": {"type": "object", "properties": {"conditions": {"type": "array",
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                "items": {"type": "object"}}}}}})
    }

    fn writer(manager: &str) -> Writer {
        Writer {
            manager: manager.into(),
            api_version: "example.com/v1".into(),
            subresource: String::new(),
            status_subresource: false,
        }
    }

    #[test]
    fn omitted_fields_go_unless_co_owned() {
        let schema = schema();
        let shape = Shape::Root {
            crd: Some(&schema),
            table: &[],
        };
        let config = |conds: Value| json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}, "status": {"conditions": conds}});
        let live = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}});
        let a = config(
            json!([{"type": "Ready", "status": "False"}, {"type": "Stale", "status": "True"}]),
        );
        let live = apply(Some(&live), &a, &shape, &writer("a"), false, "w").unwrap();
        let b = config(json!([{"type": "Other", "status": "True"}]));
        let live = apply(Some(&live), &b, &shape, &writer("b"), false, "w").unwrap();
        let a2 = config(json!([{"type": "Ready", "status": "True"}]));
        let live = apply(Some(&live), &a2, &shape, &writer("a"), false, "w").unwrap();
        let types: Vec<&str> = live["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, vec!["Ready", "Other"]);
        assert_eq!(live["status"]["conditions"][0]["status"], "True");
    }

    #[test]
    fn list_merge_keeps_applier_order_and_live_only_positions() {
        let kind = ListKind::Set;
        let out = merge_items(
            &[json!("a"), json!("b"), json!("c")],
            &[json!("c"), json!("a"), json!("d")],
            &kind,
            &Shape::Crd(None),
        );
        assert_eq!(out, vec![json!("b"), json!("c"), json!("a"), json!("d")]);
    }
}
