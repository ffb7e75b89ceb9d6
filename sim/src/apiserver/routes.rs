//! Parses request paths into what they address.

/// A resource path: `/api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]` or the same
/// under `/apis/{group}/{version}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Version,
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1`, `/apis/{group}/{version}`
    GroupVersion(String, String),
    Resource(ResourcePath),
    /// `/openapi/v3`
    OpenApiIndex,
    /// `/openapi/v3/{api/v1 | apis/G/V}`
    OpenApiDocument(String),
    /// `/openapi/v2`: an empty document (see `openapi::V2_PROTOBUF` for why).
    OpenApiV2,
}

pub fn parse(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["version"] => Some(Route::Version),
        ["healthz" | "livez" | "readyz"] => Some(Route::Health),
        ["api"] => Some(Route::CoreVersions),
        ["openapi", "v3"] => Some(Route::OpenApiIndex),
        ["openapi", "v3", rest @ ..] => Some(Route::OpenApiDocument(rest.join("/"))),
        ["openapi", "v2"] => Some(Route::OpenApiV2),
        ["apis"] => Some(Route::Groups),
        ["api", version] => Some(Route::GroupVersion(String::new(), version.to_string())),
        ["apis", group] => Some(Route::Group(group.to_string())),
        ["apis", group, version] => {
            Some(Route::GroupVersion(group.to_string(), version.to_string()))
        }
        ["api", version, rest @ ..] => resource_path("", version, rest).map(Route::Resource),
        ["apis", group, version, rest @ ..] => {
            resource_path(group, version, rest).map(Route::Resource)
        }
        _ => None,
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let path = |namespace: Option<&str>, rest: &[&str]| -> Option<ResourcePath> {
        let (resource, name, subresource) = match rest {
            [resource] => (*resource, None, None),
            [resource, name] => (*resource, Some(*name), None),
            [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
            _ => return None,
        };
        Some(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
            resource: resource.to_string(),
            name: name.map(str::to_string),
            subresource: subresource.map(str::to_string),
        })
    };
    match rest {
        // `/namespaces/{name}/status` and `/finalize` are the Namespace's own subresources.
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            path(None, &["namespaces", name, sub])
        }
        ["namespaces", namespace, tail @ ..] if !tail.is_empty() => path(Some(namespace), tail),
        _ => path(None, rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(route: Option<Route>) -> ResourcePath {
        match route {
            Some(Route::Resource(r)) => r,
            other => panic!("not a resource path: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let r = res(parse(
            "/apis/example.com/v1/namespaces/ns1/widgets/w1/status",
        ));
        assert_eq!(
            (
                r.group.as_str(),
                r.namespace.as_deref(),
                r.resource.as_str()
            ),
            ("example.com", Some("ns1"), "widgets")
        );
        assert_eq!(
            (r.name.as_deref(), r.subresource.as_deref()),
            (Some("w1"), Some("status"))
        );
        let r = res(parse("/api/v1/namespaces/ns1"));
        assert_eq!(
            (r.namespace, r.resource.as_str(), r.name.as_deref()),
            (None, "namespaces", Some("ns1"))
        );
        let r = res(parse("/api/v1/namespaces/ns1/status"));
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("ns1"), Some("status"))
        );
        let r = res(parse("/api/v1/namespaces/ns1/configmaps"));
        assert_eq!(
            (r.namespace.as_deref(), r.resource.as_str(), r.name),
            (Some("ns1"), "configmaps", None)
        );
        let r = res(parse("/api/v1/configmaps"));
        assert_eq!((r.namespace, r.resource.as_str()), (None, "configmaps"));
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(Route::GroupVersion("apps".into(), "v1".into()))
        );
        assert_eq!(parse("/nope"), None);
        assert_eq!(parse("/api/v1/a/b/c/d"), None);
    }
}
