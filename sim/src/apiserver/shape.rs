//! Answers in another shape than the objects themselves, as the Accept header asks: a
//! `meta.k8s.io` Table (what `kubectl get` prints) or PartialObjectMetadata (what metadata-only
//! clients read), for get, list and watch.

use super::error::{ApiError, ApiResult};
use super::media::Representation;
use super::resources::ResourceType;
use super::store::ListPage;
use super::table::{self, IncludeObject};
use super::view;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;

/// A Table or PartialObjectMetadata answer (`as=Table` / `as=PartialObjectMetadata[List]`,
/// `g=meta.k8s.io`) and what Table rows carry (`includeObject`).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    representation: Representation,
    include: IncludeObject,
}

impl Shape {
    /// `None` for plain objects. Accept headers naming nothing the server produces (protobuf
    /// only) get JSON objects too: every Kubernetes client lists JSON as its fallback.
    pub fn of(accept: Option<&str>, include_object: Option<&str>) -> ApiResult<Option<Shape>> {
        let representation = Representation::negotiate(accept).unwrap_or(Representation::Object);
        if representation == Representation::Object {
            return Ok(None);
        }
        let include = IncludeObject::parse(include_object).map_err(ApiError::bad_request)?;
        Ok(Some(Shape {
            representation,
            include,
        }))
    }

    fn api_version(&self) -> &'static str {
        self.representation.meta_api_version()
    }

    /// One object, as served at `version` (GET of a name, or a watch event's object).
    pub fn single(&self, rt: &ResourceType, version: &str, obj: Value) -> Value {
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or_default();
        match self.representation {
            Representation::Table { .. } => table::table(
                rt,
                version,
                &[obj],
                self.include,
                self.api_version(),
                json!({"resourceVersion": rv}),
            ),
            _ => table::partial_metadata(&obj, self.api_version()),
        }
    }

    /// A page of a list, with its resourceVersion and continuation.
    pub fn list(&self, rt: &ResourceType, version: &str, page: &ListPage) -> Value {
        let served: Vec<Value> = page
            .items
            .iter()
            .map(|o| view::at_version(o, rt, version).into_owned())
            .collect();
        let mut metadata = json!({"resourceVersion": page.rv.to_string()});
        if let Some(token) = &page.continue_token {
            metadata["continue"] = json!(token);
        }
        if let Some(remaining) = page.remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
        match self.representation {
            Representation::Table { .. } => table::table(
                rt,
                version,
                &served,
                self.include,
                self.api_version(),
                metadata,
            ),
            _ => table::partial_metadata_list(&served, self.api_version(), metadata),
        }
    }

    /// A watch stream with every event's object in this shape.
    pub fn watch(
        self,
        lines: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
        rt: Arc<ResourceType>,
        version: &str,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        let version = version.to_string();
        let mut headers_sent = false;
        lines.map(move |line| {
            line.map(|line| self.event_line(&rt, &version, &line, &mut headers_sent))
        })
    }

    /// A watch event line re-encoded with its object in this shape. ERROR events keep their
    /// Status; BOOKMARKs become metadata-only, which is what they carry anyway. As on the real
    /// server, only the first Table carries the column definitions (`headers_sent` tracks
    /// it); kubectl lays out later rows with the columns it already has.
    fn event_line(
        &self,
        rt: &ResourceType,
        version: &str,
        line: &[u8],
        headers_sent: &mut bool,
    ) -> Bytes {
        let Ok(mut event) = serde_json::from_slice::<Value>(line) else {
            return Bytes::copy_from_slice(line);
        };
        let kind = event["type"].as_str().unwrap_or_default().to_string();
        if kind != "ERROR" {
            let object = event["object"].take();
            event["object"] = if kind == "BOOKMARK" {
                table::partial_metadata(&object, self.api_version())
            } else {
                let mut single = self.single(rt, version, object);
                if matches!(self.representation, Representation::Table { .. }) {
                    if *headers_sent {
                        // Go's encoding of the nil slice NoHeaders leaves.
                        single["columnDefinitions"] = Value::Null;
                    }
                    *headers_sent = true;
                }
                single
            };
        }
        view::event_line(&kind, &event["object"])
    }
}
