//! Accept headers: media ranges with their parameters (`as`, `g`, `v`), in the client's order.
//!
//! Kubernetes clients select alternative representations with parameters of
//! `application/json` (`as=Table;g=meta.k8s.io;v=v1`), so the parameters matter, not just the type.

/// One media range of an Accept header, e.g. `application/json;as=Table;v=v1;g=meta.k8s.io`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange<'a> {
    pub essence: String,
    params: Vec<(String, &'a str)>,
}

impl MediaRange<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// `application/json` exactly (parameters aside).
    pub fn is_json(&self) -> bool {
        self.essence == "application/json"
    }

    /// Whether JSON satisfies this range: `application/json`, `application/*` or `*/*`.
    pub fn accepts_json(&self) -> bool {
        matches!(
            self.essence.as_str(),
            "application/json" | "application/*" | "*/*"
        )
    }
}

/// The ranges of an Accept header in the order given. Quality values are not weighed: every
/// Kubernetes client lists its preferences in order and sends none.
pub fn ranges(accept: &str) -> impl Iterator<Item = MediaRange<'_>> {
    accept.split(',').filter_map(|range| {
        let mut parts = range.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if essence.is_empty() {
            return None;
        }
        let params = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k.trim().to_ascii_lowercase(), v.trim().trim_matches('"')))
            })
            .collect();
        Some(MediaRange { essence, params })
    })
}

/// What a resource GET, LIST or WATCH is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves (a `…List` for collections).
    Object,
    /// `meta.k8s.io` `Table`, at `v1` or `v1beta1`.
    Table { v1beta1: bool },
    /// `meta.k8s.io` `PartialObjectMetadata` (`…List` for collections), at `v1` or `v1beta1`.
    Metadata { v1beta1: bool },
}

impl Representation {
    /// The first representation the Accept header lists that the server can produce; `None` when
    /// it lists none (406), e.g. protobuf only.
    pub fn negotiate(accept: Option<&str>) -> Option<Self> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Some(Representation::Object);
        };
        ranges(accept).find_map(|range| {
            let Some(as_kind) = range.param("as") else {
                return range.accepts_json().then_some(Representation::Object);
            };
            if !range.is_json() || range.param("g") != Some("meta.k8s.io") {
                return None;
            }
            let v1beta1 = match range.param("v") {
                Some("v1") => false,
                Some("v1beta1") => true,
                _ => return None,
            };
            match as_kind {
                "Table" => Some(Representation::Table { v1beta1 }),
                "PartialObjectMetadata" | "PartialObjectMetadataList" => {
                    Some(Representation::Metadata { v1beta1 })
                }
                _ => None,
            }
        })
    }

    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`, for Table and PartialObjectMetadata.
    pub fn meta_api_version(self) -> &'static str {
        match self {
            Representation::Table { v1beta1: true }
            | Representation::Metadata { v1beta1: true } => "meta.k8s.io/v1beta1",
            _ => "meta.k8s.io/v1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_a_table_first() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            Representation::negotiate(Some(accept)),
            Some(Representation::Table { v1beta1: false })
        );
        assert_eq!(
            Representation::negotiate(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            )),
            Some(Representation::Metadata { v1beta1: false })
        );
        assert_eq!(
            Representation::negotiate(Some("application/json, */*")),
            Some(Representation::Object)
        );
        assert_eq!(
            Representation::negotiate(None),
            Some(Representation::Object)
        );
        // An unknown `as` is skipped for the next range.
        assert_eq!(
            Representation::negotiate(Some(
                "application/json;as=Nope;v=v1;g=meta.k8s.io,application/json"
            )),
            Some(Representation::Object)
        );
        assert_eq!(
            Representation::negotiate(Some("application/vnd.kubernetes.protobuf")),
            None
        );
    }
}
