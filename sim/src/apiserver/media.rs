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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_kept_per_range() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json";
        let ranges: Vec<_> = ranges(accept).collect();
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0].param("as"), Some("Table"));
        assert!(ranges[1].is_json() && ranges[1].param("as").is_none());
    }
}
