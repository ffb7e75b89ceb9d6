//! What particular kinds do on write, beyond the generic rules: Secret `stringData`, Namespace and
//! CRD lifecycles (Terminating until their contents are gone), Service cluster IPs, and CRDs
//! becoming served resource types.

use super::error::{ApiError, ApiResult};
use super::resources::{CRDS, GroupResource, NAMESPACES, ResourceType, resource_type_from_crd};
use super::store::{ChangeKind, ObjectKey, State};
use super::time::now_rfc3339;
use super::write::{DeleteOptions, DeleteOutcome, finalizers, str_at};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn is(rt: &ResourceType, (group, resource): (&str, &str)) -> bool {
    rt.group == group && rt.plural == resource
}

/// Fills in and checks what the real kind's strategy does before storing.
pub fn prepare(
    state: &mut State,
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    if is(rt, ("", "secrets")) {
        prepare_secret(obj)?;
    } else if is(rt, NAMESPACES) {
        if old.is_none() {
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            obj["status"] = json!({"phase": "Active"});
        }
        let name = str_at(obj, "/metadata/name")
            .unwrap_or_default()
            .to_string();
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = Value::String(name);
    } else if is(rt, ("", "services")) {
        prepare_service(state, obj, old);
    } else if is(rt, CRDS) {
        let mut causes = resource_type_from_crd(obj).err().unwrap_or_default();
        causes.extend(super::schema::crd_schema_causes(obj));
        if !causes.is_empty() {
            let name = str_at(obj, "/metadata/name").unwrap_or_default();
            return Err(ApiError::invalid(&rt.group, &rt.kind, name, causes));
        }
    }
    Ok(())
}

/// The real server folds `stringData` into base64 `data` and never stores it.
fn prepare_secret(obj: &mut Value) -> ApiResult<()> {
    let engine = base64::engine::general_purpose::STANDARD;
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            let ok = value.as_str().is_some_and(|s| engine.decode(s).is_ok());
            if !ok {
                return Err(ApiError::bad_request(format!(
                    "Secret in version \"v1\" cannot be handled as a Secret: data[{key}]: illegal base64 data"
                )));
            }
        }
    }
    if let Some(Value::Object(string_data)) =
        obj.as_object_mut().and_then(|o| o.remove("stringData"))
    {
        for (key, value) in string_data {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            obj["data"][key] = Value::String(engine.encode(text));
        }
    }
    if obj.get("type").is_none() {
        obj["type"] = Value::String("Opaque".into());
    }
    Ok(())
}

fn prepare_service(state: &mut State, obj: &mut Value, old: Option<&Value>) {
    if obj.pointer("/spec/type").is_none() {
        obj["spec"]["type"] = Value::String("ClusterIP".into());
    }
    if obj.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return;
    }
    if obj.pointer("/spec/clusterIP").is_none() {
        let ip = match old.and_then(|o| o.pointer("/spec/clusterIP")) {
            Some(existing) => existing.clone(),
            None => {
                // Addresses from the default service CIDR; they are only data here, never dialled.
                let n = state.next_cluster_ip;
                state.next_cluster_ip += 1;
                Value::String(format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff))
            }
        };
        obj["spec"]["clusterIPs"] = json!([ip.clone()]);
        obj["spec"]["clusterIP"] = ip;
    }
}

/// The real server's namespace lifecycle admission refuses to delete these.
pub fn check_deletable(rt: &ResourceType, name: &str) -> ApiResult<()> {
    if is(rt, NAMESPACES) && matches!(name, "default" | "kube-system" | "kube-public") {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        )));
    }
    Ok(())
}

/// Whether deleting this object must go through a Terminating phase even with no finalizers in
/// `metadata.finalizers`: a namespace always does, a CRD while it has instances.
pub fn has_lifecycle_finalizer(rt: &ResourceType, _obj: &Value) -> bool {
    is(rt, NAMESPACES) || is(rt, CRDS)
}

/// Marks the start of a lifecycle deletion on the object about to be stored.
pub fn start_deletion(rt: &ResourceType, obj: &mut Value) {
    if is(rt, NAMESPACES) {
        obj["status"]["phase"] = Value::String("Terminating".into());
    } else if is(rt, CRDS) {
        let mut list = finalizers(obj);
        if !list.iter().any(|f| f == CRD_CLEANUP_FINALIZER) {
            list.push(CRD_CLEANUP_FINALIZER.to_string());
        }
        obj["metadata"]["finalizers"] = json!(list);
    }
}

/// After a deletion started: namespaces and CRDs delete their contents, and go once empty.
pub fn after_deletion_started(
    state: &mut State,
    rt: &ResourceType,
    obj: &Arc<Value>,
) -> Option<DeleteOutcome> {
    let name = str_at(obj, "/metadata/name")
        .unwrap_or_default()
        .to_string();
    if is(rt, NAMESPACES) {
        // Views (events.k8s.io Events) hold no objects of their own: sweep each collection once.
        let types: Vec<Arc<ResourceType>> = state
            .registry
            .all()
            .filter(|t| t.namespaced && t.view_of.is_none())
            .cloned()
            .collect();
        for t in types {
            delete_all(state, &t, Some(&name));
        }
        finish_namespace(state, &name)
    } else if is(rt, CRDS) {
        if let Some(t) = served_type_of_crd(state, obj) {
            delete_all(state, &t, None);
        }
        finish_crd(state, &name)
    } else {
        None
    }
}

fn served_type_of_crd(state: &State, crd: &Value) -> Option<Arc<ResourceType>> {
    let group = str_at(crd, "/spec/group")?;
    let plural = str_at(crd, "/spec/names/plural")?;
    state.registry.get(&GroupResource::new(group, plural))
}

fn delete_all(state: &mut State, rt: &Arc<ResourceType>, namespace: Option<&str>) {
    let keys: Vec<ObjectKey> = state
        .collection(&rt.group_resource())
        .map(|c| {
            c.objects
                .keys()
                .filter(|(ns, _)| namespace.is_none_or(|n| n == ns))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for key in keys {
        // Objects with finalizers start terminating; the rest go now.
        let _ = state.delete(rt, &key, &DeleteOptions::default());
    }
}

/// Removes a Terminating namespace once nothing is left in it.
fn finish_namespace(state: &mut State, namespace: &str) -> Option<DeleteOutcome> {
    let ns_gr = GroupResource::new(NAMESPACES.0, NAMESPACES.1);
    let key = (String::new(), namespace.to_string());
    let ns = state.collection(&ns_gr)?.objects.get(&key)?.clone();
    if ns.pointer("/metadata/deletionTimestamp").is_none() || !finalizers(&ns).is_empty() {
        return None;
    }
    let occupied = state
        .collections
        .iter()
        .any(|(gr, c)| *gr != ns_gr && c.objects.keys().any(|(n, _)| n == namespace));
    if occupied {
        return None;
    }
    let mut last = (*ns).clone();
    last["spec"]["finalizers"] = json!([]);
    let removed = state.commit(&ns_gr, key, ChangeKind::Deleted, last, Some(ns));
    Some(DeleteOutcome::Removed(removed))
}

/// Removes a deleting CRD once its instances are gone, and stops serving its resource.
fn finish_crd(state: &mut State, name: &str) -> Option<DeleteOutcome> {
    let crd_gr = GroupResource::new(CRDS.0, CRDS.1);
    let key = (String::new(), name.to_string());
    let crd = state.collection(&crd_gr)?.objects.get(&key)?.clone();
    crd.pointer("/metadata/deletionTimestamp")?;
    if let Some(t) = served_type_of_crd(state, &crd)
        && state
            .collection(&t.group_resource())
            .is_some_and(|c| !c.objects.is_empty())
    {
        return None;
    }
    let remaining: Vec<String> = finalizers(&crd)
        .into_iter()
        .filter(|f| f != CRD_CLEANUP_FINALIZER)
        .collect();
    let mut next = (*crd).clone();
    next["metadata"]["finalizers"] = json!(remaining);
    if !remaining.is_empty() {
        state.commit(&crd_gr, key, ChangeKind::Modified, next, Some(crd));
        return None;
    }
    if let Some(t) = served_type_of_crd(state, &crd) {
        unregister(state, &t.group_resource());
    }
    let removed = state.commit(&crd_gr, key, ChangeKind::Deleted, next, Some(crd));
    Some(DeleteOutcome::Removed(removed))
}

fn unregister(state: &mut State, gr: &GroupResource) {
    state.registry.remove(gr);
    // Dropping the collection drops its notifier, which ends every open watch on it.
    state.collections.remove(gr);
}

/// After an object was created or updated: CRDs (re)register their resource and get their
/// `NamesAccepted`/`Established` status, as the real server's controllers set it just after.
pub fn after_commit(
    state: &mut State,
    rt: &ResourceType,
    obj: &Arc<Value>,
    _old: Option<&Arc<Value>>,
) {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        // A user finalizer removed from a Terminating namespace or CRD may let it go now.
        let name = str_at(obj, "/metadata/name")
            .unwrap_or_default()
            .to_string();
        if is(rt, NAMESPACES) {
            finish_namespace(state, &name);
        } else if is(rt, CRDS) {
            finish_crd(state, &name);
        }
        return;
    }
    if !is(rt, CRDS) {
        return;
    }
    let Ok(served) = resource_type_from_crd(obj) else {
        return;
    };
    let stored_versions: Vec<String> = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    state.registry.insert(served);
    let mut next = (**obj).clone();
    let previous_stored: Vec<String> = obj
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut all_stored = previous_stored;
    for v in stored_versions {
        if !all_stored.contains(&v) {
            all_stored.push(v);
        }
    }
    let established = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Established"))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| Value::String(now_rfc3339()));
    next["status"] = json!({
        "acceptedNames": obj["spec"]["names"],
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": established},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": established}
        ],
        "storedVersions": all_stored,
    });
    next["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"].clone();
    if next != **obj {
        let key = (
            String::new(),
            str_at(obj, "/metadata/name")
                .unwrap_or_default()
                .to_string(),
        );
        state.commit(
            &GroupResource::new(CRDS.0, CRDS.1),
            key,
            ChangeKind::Modified,
            next,
            Some(obj.clone()),
        );
    }
}

/// After an object is gone: a Terminating namespace or CRD may now be empty.
pub fn after_removal(state: &mut State, rt: &ResourceType, removed: &Arc<Value>) {
    if is(rt, CRDS) {
        if let Some(t) = served_type_of_crd(state, removed) {
            unregister(state, &t.group_resource());
        }
        return;
    }
    if rt.namespaced {
        let namespace = str_at(removed, "/metadata/namespace")
            .unwrap_or_default()
            .to_string();
        if state.namespace_phase(&namespace).as_deref() == Some("Terminating") {
            finish_namespace(state, &namespace);
        }
    }
    if rt.custom
        && let Some(crd) = &rt.crd
        && let Some(name) = str_at(crd, "/metadata/name")
    {
        let name = name.to_string();
        finish_crd(state, &name);
    }
}
