//! The HTTP front: authenticates, routes, decodes bodies and parameters, calls the store, and
//! records every request in the audit log.

use super::error::{ApiError, ApiResult};
use super::resources::ResourceType;
use super::routes::{ResourcePath, Route, parse};
use super::schema::{FieldValidation, strict};
use super::selector::{FieldSelector, LabelSelector};
use super::shape::Shape;
use super::watch::{self, WatchRequest};
use super::write::{DeleteOptions, DeleteOutcome, PatchBody, PatchKind, Subresource, WriteOptions};
use super::{ApiServer, AuditKey, Identity, discovery, openapi, protobuf, rbac, view};
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The real apiserver's request body limit.
const MAX_BODY: usize = 3 * 1024 * 1024;
/// Without `timeoutSeconds` the real server picks 30–60 minutes.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

pub fn router(server: Arc<ApiServer>) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(server)
}

pub fn json_response(code: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("JSON values always serialize");
    bytes_response(code, body)
}

fn bytes_response(code: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(State(server): State<Arc<ApiServer>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(identity) = server.authenticate(&parts.headers) else {
        return ApiError::unauthorized().into_response();
    };
    let query = Query::parse(parts.uri.query());
    let route = parse(parts.uri.path());
    if server.authorize
        && let Err(forbidden) = allowed_without_rbac(&identity, route.as_ref())
    {
        return forbidden.into_response();
    }
    let registry = || server.store.lock().registry.clone();
    match route {
        None => ApiError::no_such_path().into_response(),
        Some(Route::Version) => {
            json_response(StatusCode::OK, &discovery::version(server.minor_version))
        }
        Some(Route::Health) => (StatusCode::OK, "ok").into_response(),
        Some(route @ (Route::CoreVersions | Route::Groups)) => {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            let (body, content_type) = discovery::negotiated(
                &registry(),
                route == Route::CoreVersions,
                accept(&parts.headers),
                host,
            );
            let mut response = json_response(StatusCode::OK, &body);
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::VARY, HeaderValue::from_static("Accept"));
            response
        }
        Some(Route::OpenApiIndex) => json_response(StatusCode::OK, &openapi::index(&registry())),
        Some(Route::OpenApiDocument(path)) => match openapi::document(&registry(), &path) {
            Some(doc) => json_response(StatusCode::OK, &doc),
            None => ApiError::no_such_path().into_response(),
        },
        Some(Route::OpenApiV2) => {
            let mut response = Response::new(Body::empty());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(openapi::V2_PROTOBUF),
            );
            response
        }
        Some(Route::Group(g)) => match discovery::group(&registry(), &g) {
            Some(v) => json_response(StatusCode::OK, &v),
            None => ApiError::no_such_path().into_response(),
        },
        Some(Route::GroupVersion(g, v)) => match discovery::resource_list(&registry(), &g, &v) {
            Some(list) => json_response(StatusCode::OK, &list),
            None => ApiError::no_such_path().into_response(),
        },
        Some(Route::Resource(path)) => {
            let verb = verb_of(&parts.method, &path, &query);
            // As on the real server: authentication, then authorization, then the handler.
            let allowed = if server.authorize {
                let attributes = rbac::Attributes {
                    verb,
                    group: &path.group,
                    resource: &path.resource,
                    subresource: path.subresource.as_deref(),
                    namespace: path.namespace.as_deref(),
                    name: path.name.as_deref(),
                };
                rbac::authorize(&server.store.lock(), &identity, &attributes)
            } else {
                Ok(())
            };
            let outcome = match allowed {
                Ok(()) => {
                    resource(&server, &parts.method, &parts.headers, &path, &query, body).await
                }
                Err(forbidden) => Err(forbidden),
            };
            let response = match outcome {
                Ok(response) => response,
                Err(err) => err.into_response(),
            };
            audit(&server, &identity, verb, &path, response.status().as_u16());
            response
        }
    }
}

/// Discovery is for authenticated identities (`system:discovery`); `/version` and the health
/// endpoints for everyone (`system:public-info-viewer`). Resource requests go through RBAC.
fn allowed_without_rbac(identity: &Identity, route: Option<&Route>) -> ApiResult<()> {
    let anonymous = identity
        .groups
        .iter()
        .any(|g| g == "system:unauthenticated");
    match route {
        Some(Route::Version | Route::Health) | Some(Route::Resource(_)) => Ok(()),
        _ if anonymous && !rbac::is_admin(identity) => Err(ApiError::forbidden(format!(
            "forbidden: User \"{}\" cannot get path",
            identity.user
        ))),
        _ => Ok(()),
    }
}

fn audit(server: &ApiServer, identity: &Identity, verb: &str, path: &ResourcePath, code: u16) {
    let key = AuditKey {
        user: identity.user.clone(),
        verb: verb.to_string(),
        group: path.group.clone(),
        resource: path.resource.clone(),
        subresource: path.subresource.clone().unwrap_or_default(),
        namespace: path.namespace.clone().unwrap_or_default(),
    };
    server.record(key, path.name.as_deref().unwrap_or_default(), code);
}

/// The Kubernetes verb of a request, as RBAC and the audit log name it.
fn verb_of(method: &Method, path: &ResourcePath, query: &Query) -> &'static str {
    match (method.as_str(), path.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if query.flag("watch") => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// Query parameters; the last value of a repeated parameter wins, as in Go's `Get`.
pub struct Query(HashMap<String, String>);

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn number(&self, key: &str) -> ApiResult<Option<u64>> {
        self.get(key)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value for {key}: {v:?} is not a non-negative integer"
                    ))
                })
            })
            .transpose()
    }

    fn dry_run(&self) -> ApiResult<bool> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dryRun value: {other:?}; the only supported value is \"All\""
            ))),
        }
    }

    fn write_options(&self, headers: &HeaderMap) -> ApiResult<WriteOptions> {
        let field_validation = match self.get("fieldValidation") {
            None => FieldValidation::default(),
            Some(v) => FieldValidation::parse(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "fieldValidation parameter unsupported: {v:?}; supported values are \"Ignore\", \"Warn\" and \"Strict\""
                ))
            })?,
        };
        let field_manager = self.get("fieldManager").map(str::to_string);
        if field_manager.as_ref().is_some_and(|m| m.len() > 128) {
            return Err(ApiError::bad_request(
                "fieldManager: Too long: must have at most 128 bytes",
            ));
        }
        Ok(WriteOptions {
            dry_run: self.dry_run()?,
            field_manager,
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|ua| ua.to_str().ok())
                .map(str::to_string),
            field_validation,
            ..WriteOptions::default()
        })
    }

    fn selectors(&self, rt: &ResourceType) -> ApiResult<(LabelSelector, FieldSelector)> {
        let labels = LabelSelector::parse(self.get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(self.get("fieldSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        if let Some(unsupported) = fields.fields().find(|f| !rt.supports_field(f)) {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {unsupported}"
            )));
        }
        Ok((labels, fields))
    }
}

async fn resource(
    server: &Arc<ApiServer>,
    method: &Method,
    headers: &HeaderMap,
    path: &ResourcePath,
    query: &Query,
    body: Body,
) -> ApiResult<Response> {
    let rt = server
        .store
        .lock()
        .registry
        .lookup(&path.group, &path.version, &path.resource)
        .ok_or_else(ApiError::no_such_path)?;
    if path.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::no_such_path());
    }
    // A named namespaced object needs its namespace in the path.
    if rt.namespaced && path.name.is_some() && path.namespace.is_none() {
        return Err(ApiError::no_such_path());
    }
    let sub = match path.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if rt.status_subresource => Subresource::Status,
        Some(_) => return Err(ApiError::no_such_path()),
    };
    let version = path.version.as_str();
    let namespace = path.namespace.as_deref();
    let key = || {
        (
            namespace.unwrap_or_default().to_string(),
            path.name.clone().unwrap_or_default(),
        )
    };

    match (method.as_str(), &path.name) {
        ("GET", Some(_)) => {
            let obj = server.store.lock().get_or_404(&rt, &key())?;
            let served = view::at_version(&obj, &rt, version);
            let Some(shape) = Shape::of(accept(headers), query.get("includeObject"))? else {
                return Ok(json_response(StatusCode::OK, &served));
            };
            Ok(json_response(
                StatusCode::OK,
                &shape.single(&rt, version, served.into_owned()),
            ))
        }
        ("GET", None) if query.flag("watch") => {
            let shape = Shape::of(accept(headers), query.get("includeObject"))?;
            watch(server, rt, version, namespace, query, shape)
        }
        ("GET", None) => {
            let (labels, fields) = query.selectors(&rt)?;
            let limit = query
                .number("limit")?
                .filter(|l| *l > 0)
                .map(|l| l as usize);
            let page = server.store.lock().list(
                &rt,
                namespace,
                &labels,
                &fields,
                limit,
                query.get("continue"),
            )?;
            if let Some(shape) = Shape::of(accept(headers), query.get("includeObject"))? {
                let body = shape.list(&rt, version, &page);
                return Ok(json_response(StatusCode::OK, &body));
            }
            let body = view::list_json(
                &rt,
                version,
                &page.items,
                page.rv,
                page.continue_token,
                page.remaining,
            );
            Ok(bytes_response(StatusCode::OK, body))
        }
        ("POST", None) => {
            let (obj, duplicate_fields) = decode_object(&rt, headers, body).await?;
            let opts = WriteOptions {
                duplicate_fields,
                ..query.write_options(headers)?
            };
            let created = server
                .store
                .lock()
                .create(&rt, version, namespace, obj, &opts)?;
            Ok(with_warnings(
                json_response(
                    StatusCode::CREATED,
                    &view::at_version(&created, &rt, version),
                ),
                &opts,
            ))
        }
        ("PUT", Some(_)) => {
            let (obj, duplicate_fields) = decode_object(&rt, headers, body).await?;
            let opts = WriteOptions {
                duplicate_fields,
                ..query.write_options(headers)?
            };
            let written = server
                .store
                .lock()
                .update(&rt, version, &key(), obj, sub, &opts)?;
            let code = if written.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(with_warnings(
                json_response(code, &view::at_version(&written.object, &rt, version)),
                &opts,
            ))
        }
        ("PATCH", Some(_)) => {
            let (patch, duplicate_fields) = decode_patch(&rt, headers, query, body).await?;
            let opts = WriteOptions {
                duplicate_fields,
                ..query.write_options(headers)?
            };
            if matches!(patch.kind, PatchKind::Apply { .. }) && opts.field_manager.is_none() {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    vec![super::error::Cause {
                        reason: "FieldValueRequired",
                        field: "fieldManager".into(),
                        message: "Required value: is required for apply patch".into(),
                    }],
                ));
            }
            let written = server
                .store
                .lock()
                .patch(&rt, version, &key(), &patch, sub, &opts)?;
            let code = if written.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(with_warnings(
                json_response(code, &view::at_version(&written.object, &rt, version)),
                &opts,
            ))
        }
        ("DELETE", Some(_)) => {
            let opts = decode_delete_options(headers, query, body).await?;
            match server.store.lock().delete(&rt, &key(), &opts)? {
                DeleteOutcome::Terminating(obj) => Ok(json_response(
                    StatusCode::OK,
                    &view::at_version(&obj, &rt, version),
                )),
                DeleteOutcome::Removed(obj) => {
                    Ok(json_response(StatusCode::OK, &deleted_status(&rt, &obj)))
                }
            }
        }
        ("DELETE", None) => {
            let (labels, fields) = query.selectors(&rt)?;
            let opts = decode_delete_options(headers, query, body).await?;
            let mut state = server.store.lock();
            let deleted = state.delete_collection(&rt, namespace, &labels, &fields, &opts)?;
            let rv = state.rv;
            drop(state);
            Ok(bytes_response(
                StatusCode::OK,
                view::list_json(&rt, version, &deleted, rv, None, None),
            ))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on this path"
        ))),
    }
}

fn watch(
    server: &Arc<ApiServer>,
    rt: Arc<ResourceType>,
    version: &str,
    namespace: Option<&str>,
    query: &Query,
    shape: Option<Shape>,
) -> ApiResult<Response> {
    let (labels, fields) = query.selectors(&rt)?;
    let resource_version = query
        .get("resourceVersion")
        .map(|rv| {
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
        })
        .transpose()?;
    let send_initial_events = query.flag("sendInitialEvents");
    if send_initial_events
        && (!query.flag("allowWatchBookmarks")
            || query.get("resourceVersionMatch") != Some("NotOlderThan"))
    {
        return Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", vec![super::error::Cause {
            reason: "FieldValueForbidden",
            field: "sendInitialEvents".into(),
            message: "Forbidden: sendInitialEvents requires setting allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan".into(),
        }]));
    }
    let timeout = query
        .number("timeoutSeconds")?
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);
    let req = WatchRequest {
        namespace: namespace.map(str::to_string),
        labels,
        fields,
        resource_version,
        send_initial_events,
        bookmarks: query.flag("allowWatchBookmarks"),
        timeout,
    };
    let stream = watch::start(server.store.clone(), rt.clone(), version, req);
    let body = match shape {
        None => Body::from_stream(stream),
        Some(shape) => Body::from_stream(shape.watch(stream, rt, version)),
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// The Status a delete answers with once the object is gone.
fn deleted_status(rt: &ResourceType, obj: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
            "group": rt.group,
            "kind": rt.plural,
            "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        },
    })
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

async fn read_body(body: Body) -> ApiResult<axum::body::Bytes> {
    to_bytes(body, MAX_BODY).await.map_err(|e| {
        ApiError::bad_request(format!(
            "the request body could not be read (the limit is {MAX_BODY} bytes): {e}"
        ))
    })
}

/// One `Warning: 299 - "…"` header per warning the write collected (unknown fields under
/// `fieldValidation=Warn`), as the real server sends them.
fn with_warnings(mut response: Response, opts: &WriteOptions) -> Response {
    for warning in opts.warnings.take() {
        if let Ok(value) = HeaderValue::from_str(&format!("299 - {warning:?}")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// Decodes a create or update body: JSON, or YAML as the real server also accepts; with the
/// keys a JSON body repeats. Protobuf, for the built-in kinds `protobuf` has tables for (custom
/// resources have no protobuf form, on the real server too).
async fn decode_object(
    rt: &ResourceType,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<(Value, Vec<String>)> {
    let media = media_type(headers);
    let bytes = read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty: expected a JSON or YAML object",
        ));
    }
    match media.as_str() {
        "" | "application/json" | "*/*" => serde_json::from_slice(&bytes)
            .map(|v| (v, strict::duplicate_fields(&bytes)))
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}"))),
        "application/yaml" => parse_yaml(&bytes).map(|v| (v, Vec::new())),
        protobuf::MEDIA_TYPE if !rt.custom => {
            protobuf::decode_object(&bytes).map(|v| (v, Vec::new()))
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn parse_yaml(bytes: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))
}

async fn decode_patch(
    rt: &ResourceType,
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> ApiResult<(PatchBody, Vec<String>)> {
    let media = media_type(headers);
    let kind = match media.as_str() {
        "application/merge-patch+json" => PatchKind::Merge,
        "application/json-patch+json" => PatchKind::Json,
        "application/strategic-merge-patch+json" if rt.custom => {
            return Err(ApiError::unsupported_media_type(&media));
        }
        "application/strategic-merge-patch+json" => PatchKind::Strategic,
        "application/apply-patch+yaml" => PatchKind::Apply {
            force: query.flag("force"),
        },
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if query.get("force").is_some() && !matches!(kind, PatchKind::Apply { .. }) {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![super::error::Cause {
                reason: "FieldValueForbidden",
                field: "force".into(),
                message: "Forbidden: may not be specified for non-apply patch".into(),
            }],
        ));
    }
    let bytes = read_body(body).await?;
    let patch = match kind {
        // Apply bodies are YAML; kube sends JSON, which is YAML too, but parse it as JSON first
        // for exact numbers.
        PatchKind::Apply { .. } => match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => parse_yaml(&bytes)?,
        },
        _ => serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    // Repeated keys in a merge or apply patch are the request's own; a JSON Patch is a list of
    // operations, whose keys are the operations'.
    let duplicates = if matches!(kind, PatchKind::Json) {
        Vec::new()
    } else {
        strict::duplicate_fields(&bytes)
    };
    Ok((PatchBody { kind, body: patch }, duplicates))
}

async fn decode_delete_options(
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> ApiResult<DeleteOptions> {
    let bytes = read_body(body).await?;
    let mut opts = DeleteOptions {
        dry_run: query.dry_run()?,
        ..DeleteOptions::default()
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(opts);
    }
    let body: Value = if media_type(headers) == protobuf::MEDIA_TYPE {
        protobuf::decode_delete_options(&bytes)?
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {e}"))
        })?
    };
    if let Some(pre) = body.get("preconditions") {
        opts.uid = pre.get("uid").and_then(Value::as_str).map(str::to_string);
        opts.resource_version = pre
            .get("resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    if let Some(dry) = body.get("dryRun").and_then(Value::as_array) {
        for v in dry {
            match v.as_str() {
                Some("All") => opts.dry_run = true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid dryRun value: {other:?}; the only supported value is \"All\""
                    )));
                }
            }
        }
    }
    if let Some(policy) = body.get("propagationPolicy").and_then(Value::as_str)
        && !matches!(policy, "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    Ok(opts)
}
