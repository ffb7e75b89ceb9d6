//! Create, update, patch and delete with the real apiserver's semantics: preconditions,
//! status-subresource rules, generation, no-op writes and the finalizer deletion flow.

use super::error::{ApiError, ApiResult, Cause};
use super::event_views;
use super::kinds;
use super::merge_keys::Shape;
use super::patch::{json_patch, merge_patch};
use super::resources::{ResourceType, validate_name};
use super::schema;
use super::selector::{FieldSelector, LabelSelector};
use super::smp::strategic_merge;
use super::ssa;
use super::store::{ChangeKind, ObjectKey, State, matches};
use super::time::now_rfc3339;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    /// The request's User-Agent: without `fieldManager`, its program name is the manager.
    pub user_agent: Option<String>,
    /// What unknown and duplicate fields do (`fieldValidation`).
    pub field_validation: schema::FieldValidation,
    /// Keys the request body repeats (`spec.size`), found before decoding kept the last one.
    pub duplicate_fields: Vec<String>,
    /// Filled by the write: the response's `Warning` headers.
    pub warnings: schema::Warnings,
}

impl WriteOptions {
    /// The manager a write is recorded under: `fieldManager`, else the User-Agent up to its
    /// first `/` (`kubectl/v1.32.0 (linux/amd64) ...` gives `kubectl`), as the real server does.
    pub fn manager(&self) -> String {
        match (&self.field_manager, &self.user_agent) {
            (Some(m), _) => m.clone(),
            (None, Some(ua)) => ua.split('/').next().unwrap_or_default().to_string(),
            (None, None) => String::new(),
        }
    }

    fn writer(&self, rt: &ResourceType, version: &str, sub: Subresource) -> ssa::Writer {
        ssa::Writer {
            manager: self.manager(),
            api_version: rt.api_version(version),
            subresource: match sub {
                Subresource::Main => String::new(),
                Subresource::Status => "status".into(),
            },
            status_subresource: rt.status_subresource,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PatchKind {
    Merge,
    Json,
    /// Strategic merge, only for built-in kinds (custom resources get 415 before this point).
    Strategic,
    Apply {
        force: bool,
    },
}

/// A decoded PATCH request body and how to apply it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchBody {
    pub kind: PatchKind,
    pub body: Value,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

/// What a delete did: removed the object, or started (or found) a finalizer-held deletion.
#[derive(Debug)]
pub enum DeleteOutcome {
    Removed(Arc<Value>),
    Terminating(Arc<Value>),
}

/// Whose fields a write records (ssa.rs).
enum Ownership {
    /// An update: the request's manager gets what it changed. Filled in on the way: the
    /// managedFields the request itself carried, which replace the stored ones when set (a
    /// client may rewrite or reset them, as kubectl does moving from client-side apply).
    Update(Option<Value>),
    /// An apply, with the managedFields `ssa::apply` computed (`None`: nobody owns anything).
    Applied(Option<Value>),
}

/// What an update-like write produced.
pub struct Written {
    pub object: Arc<Value>,
    pub created: bool,
}

impl State {
    pub fn create(
        &mut self,
        rt: &Arc<ResourceType>,
        version: &str,
        namespace: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Arc<Value>> {
        self.create_owned(rt, version, namespace, body, opts, Ownership::Update(None))
    }

    fn create_owned(
        &mut self,
        rt: &Arc<ResourceType>,
        version: &str,
        namespace: Option<&str>,
        body: Value,
        opts: &WriteOptions,
        ownership: Ownership,
    ) -> ApiResult<Arc<Value>> {
        let mut obj = expect_object(body)?;
        check_type(rt, version, &obj)?;
        stamp_type(rt, &mut obj);
        let namespace = scope_namespace(rt, namespace, &mut obj)?;
        let name = match str_at(&obj, "/metadata/name") {
            Some(name) => name.to_string(),
            None => match str_at(&obj, "/metadata/generateName") {
                Some(prefix) => generate_name(prefix),
                None => {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        "",
                        vec![Cause {
                            reason: "FieldValueRequired",
                            field: "metadata.name".into(),
                            message: "Required value: name or generateName is required".into(),
                        }],
                    ));
                }
            },
        };
        obj["metadata"]["name"] = Value::String(name.clone());
        if str_at(&obj, "/metadata/resourceVersion").is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        validate_metadata(rt, &obj)?;
        if let Some(ns) = &namespace {
            self.check_namespace_accepts(rt, ns, &name)?;
        }
        let key: ObjectKey = (namespace.unwrap_or_default(), name.clone());
        if self.get(rt, &key).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        let ownership = match ownership {
            Ownership::Update(_) => {
                Ownership::Update(obj.pointer("/metadata/managedFields").cloned())
            }
            applied => applied,
        };
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        for system_field in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ] {
            meta.remove(system_field);
        }
        meta.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
        if rt.tracks_generation {
            meta.insert("generation".into(), Value::from(1));
        } else {
            meta.remove("generation");
        }
        if rt.status_subresource {
            // Status is written only through /status; on create the real server drops it.
            obj.as_object_mut().expect("object").remove("status");
        }
        schema::admit(rt, version, &mut obj, None, opts)?;
        kinds::prepare(self, rt, &mut obj, None)?;
        record_ownership(
            rt,
            version,
            None,
            &mut obj,
            Subresource::Main,
            opts,
            ownership,
        );
        if opts.dry_run {
            return Ok(Arc::new(obj));
        }
        let created = self.commit(&rt.group_resource(), key, ChangeKind::Added, obj, None);
        kinds::after_commit(self, rt, &created, None);
        Ok(created)
    }

    /// PUT: `body` is the whole desired object (or, on `/status`, the object carrying the status).
    pub fn update(
        &mut self,
        rt: &Arc<ResourceType>,
        version: &str,
        key: &ObjectKey,
        body: Value,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let mut obj = expect_object(body)?;
        check_type(rt, version, &obj)?;
        let current = match self.get(rt, key) {
            Some(current) => current,
            None if rt.create_on_update && sub == Subresource::Main => {
                let ns = rt.namespaced.then_some(key.0.as_str());
                if let Some(name) = str_at(&obj, "/metadata/name").filter(|n| *n != key.1) {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({name}) does not match the name on the URL ({})",
                        key.1
                    )));
                }
                obj["metadata"]["name"] = Value::String(key.1.clone());
                if let Some(meta) = obj["metadata"].as_object_mut() {
                    meta.remove("resourceVersion");
                }
                let created = self.create(rt, version, ns, obj, opts)?;
                return Ok(Written {
                    object: created,
                    created: true,
                });
            }
            None => return Err(ApiError::not_found(&rt.group, &rt.plural, &key.1)),
        };
        stamp_type(rt, &mut obj);
        let rv = str_at(&obj, "/metadata/resourceVersion")
            .unwrap_or_default()
            .to_string();
        if rv.is_empty() && rt.requires_resource_version {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                &key.1,
                vec![Cause {
                    reason: "FieldValueInvalid",
                    field: "metadata.resourceVersion".into(),
                    message: "Invalid value: 0x0: must be specified for an update".into(),
                }],
            ));
        }
        self.write_update(
            rt,
            version,
            key,
            current,
            obj,
            sub,
            opts,
            Ownership::Update(None),
        )
    }

    pub fn patch(
        &mut self,
        rt: &Arc<ResourceType>,
        version: &str,
        key: &ObjectKey,
        patch: &PatchBody,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let (kind, patch) = (&patch.kind, &patch.body);
        let current = match self.get(rt, key) {
            Some(current) => current,
            None if matches!(kind, PatchKind::Apply { .. }) && sub == Subresource::Main => {
                // Server-side apply creates what does not exist yet.
                check_apply_body(rt, version, key, patch)?;
                let writer = opts.writer(rt, version, sub);
                let mut body = ssa::apply(
                    None,
                    patch,
                    &Shape::of(rt, version),
                    &writer,
                    false,
                    &typed_name(rt, version, key),
                )?;
                if rt.namespaced {
                    body["metadata"]["namespace"] = Value::String(key.0.clone());
                }
                let managed = body.pointer("/metadata/managedFields").cloned();
                let ns = rt.namespaced.then_some(key.0.as_str());
                let created =
                    self.create_owned(rt, version, ns, body, opts, Ownership::Applied(managed))?;
                return Ok(Written {
                    object: created,
                    created: true,
                });
            }
            None => return Err(ApiError::not_found(&rt.group, &rt.plural, &key.1)),
        };
        // Patches address the form the client sees (a view converts), then go back to storage.
        let mut patched: Value = super::view::at_version(&current, rt, version).into_owned();
        let mut ownership = Ownership::Update(None);
        match kind {
            PatchKind::Merge => {
                require_object_patch(patch)?;
                merge_patch(&mut patched, patch);
            }
            PatchKind::Strategic => {
                require_object_patch(patch)?;
                strategic_merge(&mut patched, patch, &Shape::of(rt, version))
                    .map_err(ApiError::bad_request)?;
            }
            PatchKind::Json => {
                // The real server's message stops at "...in our request"; the cause is kept here
                // because it is what a person needs to fix the patch.
                patched = json_patch(&patched, patch).map_err(|e| {
                    ApiError::unprocessable_patch(format!(
                        "the server rejected our request due to an error in our request: {}",
                        e.0
                    ))
                })?;
            }
            PatchKind::Apply { force } => {
                check_apply_body(rt, version, key, patch)?;
                let writer = opts.writer(rt, version, sub);
                patched = ssa::apply(
                    Some(&patched),
                    patch,
                    &Shape::of(rt, version),
                    &writer,
                    *force,
                    &typed_name(rt, version, key),
                )?;
                ownership = Ownership::Applied(patched.pointer("/metadata/managedFields").cloned());
            }
        }
        let patched = expect_object(patched)?;
        check_type(rt, version, &patched)?;
        // A patch that names no resourceVersion is unconditional: it applies to the current one.
        let mut patched = patched;
        if str_at(&patched, "/metadata/resourceVersion").is_none_or(str::is_empty) {
            patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        }
        stamp_type(rt, &mut patched);
        self.write_update(rt, version, key, current, patched, sub, opts, ownership)
    }

    // `version` is the one the request addressed: custom resources validate against its schema.
    #[allow(clippy::too_many_arguments)]
    fn write_update(
        &mut self,
        rt: &Arc<ResourceType>,
        version: &str,
        key: &ObjectKey,
        current: Arc<Value>,
        mut new: Value,
        sub: Subresource,
        opts: &WriteOptions,
        ownership: Ownership,
    ) -> ApiResult<Written> {
        let (namespace, name) = key;
        // Through /status the request's managedFields are ignored, as the real server does.
        let ownership = match ownership {
            Ownership::Update(_) if sub == Subresource::Main => {
                Ownership::Update(new.pointer("/metadata/managedFields").cloned())
            }
            Ownership::Update(_) => Ownership::Update(None),
            applied => applied,
        };
        if str_at(&new, "/metadata/name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                str_at(&new, "/metadata/name").unwrap_or_default()
            )));
        }
        if rt.namespaced
            && str_at(&new, "/metadata/namespace").is_some_and(|n| !n.is_empty() && n != namespace)
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let rv = str_at(&new, "/metadata/resourceVersion")
            .unwrap_or_default()
            .to_string();
        let current_rv = str_at(&current, "/metadata/resourceVersion")
            .unwrap_or_default()
            .to_string();
        if !rv.is_empty() && rv != current_rv {
            return Err(ApiError::stale_resource_version(
                &rt.group, &rt.plural, name,
            ));
        }
        let current_uid = str_at(&current, "/metadata/uid")
            .unwrap_or_default()
            .to_string();
        if let Some(uid) =
            str_at(&new, "/metadata/uid").filter(|u| !u.is_empty() && *u != current_uid)
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"
                ),
            ));
        }

        let mut next = match sub {
            Subresource::Status => {
                // Unknown fields anywhere in the body count, though only .status is used.
                schema::prune_request(rt, version, &mut new, opts)?;
                // Only .status is taken from the request; metadata and spec stay as they are.
                let mut next = (*current).clone();
                match new.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => {
                        next.as_object_mut().expect("object").remove("status");
                    }
                }
                next
            }
            Subresource::Main => {
                let meta = new["metadata"]
                    .as_object_mut()
                    .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
                for system_field in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "managedFields",
                ] {
                    match current["metadata"].get(system_field) {
                        Some(v) => meta.insert(system_field.into(), v.clone()),
                        None => meta.remove(system_field),
                    };
                }
                meta.remove("selfLink");
                if rt.namespaced {
                    meta.insert("namespace".into(), Value::String(namespace.clone()));
                } else {
                    meta.remove("namespace");
                }
                if rt.status_subresource {
                    // ...and on the main endpoint .status is the stored one.
                    match current.get("status") {
                        Some(status) => new["status"] = status.clone(),
                        None => {
                            new.as_object_mut().expect("object").remove("status");
                        }
                    }
                }
                new
            }
        };
        validate_metadata(rt, &next)?;
        check_finalizers_while_deleting(rt, &current, &next)?;
        schema::admit(rt, version, &mut next, Some(&current), opts)?;
        kinds::prepare(self, rt, &mut next, Some(&current))?;

        next["metadata"]["resourceVersion"] = Value::String(current_rv);
        record_ownership(rt, version, Some(&current), &mut next, sub, opts, ownership);
        if next == *current {
            // A no-op write changes nothing: same RV, no watch event.
            return Ok(Written {
                object: current,
                created: false,
            });
        }
        if rt.tracks_generation && !same_outside_metadata(&current, &next, rt.status_subresource) {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            next["metadata"]["generation"] = Value::from(generation + 1);
        }
        if opts.dry_run {
            return Ok(Written {
                object: Arc::new(next),
                created: false,
            });
        }
        let deleting = next.pointer("/metadata/deletionTimestamp").is_some();
        let gr = rt.group_resource();
        if deleting && finalizers(&next).is_empty() && !kinds::has_lifecycle_finalizer(rt, &next) {
            // The last finalizer is gone: the object goes.
            let removed = self.commit(
                &gr,
                key.clone(),
                ChangeKind::Deleted,
                next,
                Some(current.clone()),
            );
            kinds::after_removal(self, rt, &removed);
            return Ok(Written {
                object: removed,
                created: false,
            });
        }
        let written = self.commit(
            &gr,
            key.clone(),
            ChangeKind::Modified,
            next,
            Some(current.clone()),
        );
        kinds::after_commit(self, rt, &written, Some(&current));
        Ok(Written {
            object: written,
            created: false,
        })
    }

    pub fn delete(
        &mut self,
        rt: &Arc<ResourceType>,
        key: &ObjectKey,
        opts: &DeleteOptions,
    ) -> ApiResult<DeleteOutcome> {
        let current = self.get_or_404(rt, key)?;
        kinds::check_deletable(rt, &key.1)?;
        let name = &key.1;
        // The real server names the kind, not the resource, in precondition conflicts.
        if let Some(uid) = &opts.uid {
            let actual = str_at(&current, "/metadata/uid").unwrap_or_default();
            if uid != actual {
                return Err(ApiError::conflict(
                    &rt.group,
                    &rt.kind,
                    name,
                    &format!(
                        "the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated"
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            let actual = str_at(&current, "/metadata/resourceVersion").unwrap_or_default();
            if rv != actual {
                return Err(ApiError::conflict(
                    &rt.group,
                    &rt.kind,
                    name,
                    &format!(
                        "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified"
                    ),
                ));
            }
        }
        let held = !finalizers(&current).is_empty() || kinds::has_lifecycle_finalizer(rt, &current);
        if !held {
            if opts.dry_run {
                return Ok(DeleteOutcome::Removed(current));
            }
            let object = (*current).clone();
            let removed = self.commit(
                &rt.group_resource(),
                key.clone(),
                ChangeKind::Deleted,
                object,
                Some(current),
            );
            kinds::after_removal(self, rt, &removed);
            return Ok(DeleteOutcome::Removed(removed));
        }
        if current.pointer("/metadata/deletionTimestamp").is_some() || opts.dry_run {
            // Already being deleted: nothing changes.
            return Ok(DeleteOutcome::Terminating(current));
        }
        let mut next = (*current).clone();
        next["metadata"]["deletionTimestamp"] = Value::String(now_rfc3339());
        next["metadata"]["deletionGracePeriodSeconds"] = Value::from(0);
        if rt.tracks_generation {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            next["metadata"]["generation"] = Value::from(generation + 1);
        }
        kinds::start_deletion(rt, &mut next);
        let written = self.commit(
            &rt.group_resource(),
            key.clone(),
            ChangeKind::Modified,
            next,
            Some(current),
        );
        let outcome = kinds::after_deletion_started(self, rt, &written);
        Ok(outcome.unwrap_or(DeleteOutcome::Terminating(written)))
    }

    /// Deletes every matching object; returns them as they were listed before deletion, as the
    /// real server does.
    pub fn delete_collection(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        opts: &DeleteOptions,
    ) -> ApiResult<Vec<Arc<Value>>> {
        let keys: Vec<ObjectKey> = self
            .collection(&rt.group_resource())
            .map(|c| {
                c.objects
                    .iter()
                    .filter(|((ns, _), o)| {
                        namespace.is_none_or(|n| n == ns) && matches(o, labels, fields)
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut deleted = Vec::new();
        for key in keys {
            let before = self.get(rt, &key);
            match self.delete(rt, &key, opts) {
                Ok(_) => deleted.extend(before),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    fn check_namespace_accepts(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> ApiResult<()> {
        match self.namespace_phase(namespace).as_deref() {
            None => Err(ApiError::not_found("", "namespaces", namespace)),
            Some("Terminating") => {
                let mut err = ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    super::error::qualified(&rt.group, &rt.plural)
                ));
                err.details = Some(Box::new(super::error::Details {
                    name: name.to_string(),
                    group: rt.group.clone(),
                    kind: rt.plural.clone(),
                    causes: vec![Cause {
                        reason: "NamespaceTerminating",
                        field: "metadata.namespace".into(),
                        message: format!("namespace {namespace} is being terminated"),
                    }],
                }));
                Err(err)
            }
            Some(_) => Ok(()),
        }
    }
}

/// Field ownership (ssa.rs): an update gives the request's manager what it changed; an apply
/// brings its managedFields along. Only timestamps changing leaves the stored ones, so a no-op
/// stays a no-op.
fn record_ownership(
    rt: &ResourceType,
    version: &str,
    current: Option<&Value>,
    next: &mut Value,
    sub: Subresource,
    opts: &WriteOptions,
    ownership: Ownership,
) {
    match ownership {
        Ownership::Applied(Some(managed)) => next["metadata"]["managedFields"] = managed,
        Ownership::Applied(None) => {
            if let Some(meta) = next["metadata"].as_object_mut() {
                meta.remove("managedFields");
            }
        }
        Ownership::Update(sent) => ssa::record_update(
            current,
            sent.as_ref(),
            next,
            &Shape::of(rt, version),
            &opts.writer(rt, version, sub),
        ),
    }
    if let Some(current) = current {
        ssa::keep_times_if_unchanged(current, next);
    }
}

/// How the apiserver names an object in apply errors: `ns/name; group/version, Kind=Kind`.
fn typed_name(rt: &ResourceType, version: &str, key: &ObjectKey) -> String {
    format!(
        "{}/{}; {}/{version}, Kind={}",
        key.0, key.1, rt.group, rt.kind
    )
}

fn expect_object(body: Value) -> ApiResult<Value> {
    let mut body = match body {
        Value::Object(_) => body,
        other => {
            return Err(ApiError::bad_request(format!(
                "the body of the request must be a JSON object, got {}",
                json_type(&other)
            )));
        }
    };
    match body.get("metadata") {
        None | Some(Value::Null) => body["metadata"] = Value::Object(Map::new()),
        Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "metadata must be an object, got {}",
                json_type(other)
            )));
        }
    }
    Ok(body)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A body may omit `apiVersion` and `kind`; when it names them they must match the endpoint.
fn check_type(rt: &ResourceType, version: &str, obj: &Value) -> ApiResult<()> {
    let expected = rt.api_version(version);
    if let Some(api_version) = str_at(obj, "/apiVersion").filter(|v| !v.is_empty())
        && api_version != expected
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if let Some(kind) = str_at(obj, "/kind").filter(|k| !k.is_empty())
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({}) for {}",
            rt.kind,
            super::error::qualified(&rt.group, &rt.plural)
        )));
    }
    Ok(())
}

fn check_apply_body(
    rt: &ResourceType,
    version: &str,
    key: &ObjectKey,
    body: &Value,
) -> ApiResult<()> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the apply patch must be a YAML or JSON object",
        ));
    }
    if str_at(body, "/apiVersion").is_none_or(str::is_empty)
        || str_at(body, "/kind").is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(
            "invalid object type: apply patches must set apiVersion and kind",
        ));
    }
    check_type(rt, version, body)?;
    if let Some(name) = str_at(body, "/metadata/name")
        && name != key.1
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            key.1
        )));
    }
    Ok(())
}

fn require_object_patch(patch: &Value) -> ApiResult<()> {
    if patch.is_object() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "the patch must be a JSON object, got {}",
            json_type(patch)
        )))
    }
}

/// Sets `apiVersion` and `kind` to the stored ones (objects are stored at the preferred version
/// whichever version wrote them, and served at the version asked for), and brings a view's form
/// (events.k8s.io Events) to the stored one.
fn stamp_type(rt: &ResourceType, obj: &mut Value) {
    obj["apiVersion"] = Value::String(rt.api_version(rt.preferred_version()));
    obj["kind"] = Value::String(rt.kind.clone());
    event_views::to_storage(rt, obj);
}

fn scope_namespace(
    rt: &ResourceType,
    url_namespace: Option<&str>,
    obj: &mut Value,
) -> ApiResult<Option<String>> {
    if !rt.namespaced {
        obj["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("namespace");
        return Ok(None);
    }
    let url_namespace = url_namespace.unwrap_or_default();
    match str_at(obj, "/metadata/namespace").filter(|n| !n.is_empty()) {
        Some(ns) if ns != url_namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            obj["metadata"]["namespace"] = Value::String(url_namespace.to_string());
            Ok(Some(url_namespace.to_string()))
        }
    }
}

fn validate_metadata(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    let name = str_at(obj, "/metadata/name").unwrap_or_default();
    let mut causes = Vec::new();
    if let Err(message) = validate_name(rt.name_rule, name) {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            field: "metadata.name".into(),
            message,
        });
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            let selector = match v.as_str() {
                Some(v) => format!("{k}={v}"),
                None => {
                    causes.push(Cause {
                        reason: "FieldValueInvalid",
                        field: format!("metadata.labels.{k}"),
                        message: format!("Invalid value: {v}: label values must be strings"),
                    });
                    continue;
                }
            };
            if let Err(message) = LabelSelector::parse(&selector) {
                causes.push(Cause {
                    reason: "FieldValueInvalid",
                    field: "metadata.labels".into(),
                    message,
                });
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.group, &rt.kind, name, causes))
    }
}

fn check_finalizers_while_deleting(
    rt: &ResourceType,
    current: &Value,
    next: &Value,
) -> ApiResult<()> {
    if current.pointer("/metadata/deletionTimestamp").is_none() {
        return Ok(());
    }
    let before = finalizers(current);
    let added: Vec<String> = finalizers(next)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let name = str_at(current, "/metadata/name").unwrap_or_default();
    Err(ApiError::invalid(
        &rt.group,
        &rt.kind,
        name,
        vec![Cause {
            reason: "FieldValueForbidden",
            field: "metadata.finalizers".into(),
            message: format!(
                "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                added
                    .iter()
                    .map(|f| format!("{f:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }],
    ))
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether two objects agree on everything `generation` tracks: all but metadata (and status,
/// when status has its own subresource).
fn same_outside_metadata(a: &Value, b: &Value, skip_status: bool) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let relevant = |k: &String| k != "metadata" && !(skip_status && k == "status");
    let a_keys: Vec<_> = a.keys().filter(|k| relevant(k)).collect();
    let b_keys: Vec<_> = b.keys().filter(|k| relevant(k)).collect();
    a_keys.len() == b_keys.len() && a_keys.iter().all(|k| a.get(*k) == b.get(*k))
}

pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// `generateName` plus five characters from the apiserver's alphabet (no vowels, no look-alikes).
fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let prefix = if prefix.len() > 58 {
        &prefix[..58]
    } else {
        prefix
    };
    let random = uuid::Uuid::new_v4();
    let suffix: String = random.as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{suffix}")
}
