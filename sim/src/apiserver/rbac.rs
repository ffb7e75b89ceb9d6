//! RBAC as the real authorizer applies it, for `--authorize`: an identity may do what some
//! (Cluster)RoleBinding that names it grants, nothing more. Admins (`system:masters`) may do
//! everything; every identity may read discovery, `/version` and the health endpoints, as the
//! default `system:discovery` and `system:public-info-viewer` roles allow.

use super::Identity;
use super::error::ApiError;
use super::resources::GroupResource;
use super::store::State;
use serde_json::Value;

/// What a request asks to do, as RBAC sees it.
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

pub fn is_admin(identity: &Identity) -> bool {
    identity.groups.iter().any(|g| g == "system:masters")
}

/// Allows the request or answers the real apiserver's 403.
pub fn authorize(state: &State, identity: &Identity, request: &Attributes) -> Result<(), ApiError> {
    if is_admin(identity)
        || rules_for(state, identity, request.namespace)
            .iter()
            .any(|rule| grants(rule, request))
    {
        return Ok(());
    }
    Err(forbidden(identity, request))
}

/// The rules bound to `identity` cluster-wide, plus those bound in `namespace`.
fn rules_for(state: &State, identity: &Identity, namespace: Option<&str>) -> Vec<Value> {
    let objects = |resource: &str| -> Vec<std::sync::Arc<Value>> {
        state
            .collection(&GroupResource::new("rbac.authorization.k8s.io", resource))
            .map(|c| c.objects.values().cloned().collect())
            .unwrap_or_default()
    };
    let find = |resource: &str, ns: &str, name: &str| -> Option<std::sync::Arc<Value>> {
        state
            .collection(&GroupResource::new("rbac.authorization.k8s.io", resource))
            .and_then(|c| c.objects.get(&(ns.to_string(), name.to_string())).cloned())
    };
    let mut rules = Vec::new();
    let mut collect = |role: Option<std::sync::Arc<Value>>| {
        if let Some(role) = role {
            rules.extend(role["rules"].as_array().cloned().unwrap_or_default());
        }
    };
    for binding in objects("clusterrolebindings")
        .iter()
        .filter(|b| binds(b, identity))
    {
        if binding["roleRef"]["kind"] == "ClusterRole" {
            collect(find(
                "clusterroles",
                "",
                binding["roleRef"]["name"].as_str().unwrap_or_default(),
            ));
        }
    }
    if let Some(ns) = namespace {
        let in_namespace = objects("rolebindings");
        for binding in in_namespace
            .iter()
            .filter(|b| b["metadata"]["namespace"] == ns && binds(b, identity))
        {
            let role = binding["roleRef"]["name"].as_str().unwrap_or_default();
            match binding["roleRef"]["kind"].as_str() {
                Some("Role") => collect(find("roles", ns, role)),
                Some("ClusterRole") => collect(find("clusterroles", "", role)),
                _ => {}
            }
        }
    }
    rules
}

/// Whether a binding's subjects include the identity.
fn binds(binding: &Value, identity: &Identity) -> bool {
    let subjects = binding["subjects"].as_array().cloned().unwrap_or_default();
    subjects.iter().any(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str() {
            Some("User") => identity.user == name,
            Some("Group") => identity.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let ns = s["namespace"].as_str().unwrap_or_default();
                identity.user == format!("system:serviceaccount:{ns}:{name}")
            }
            _ => false,
        }
    })
}

fn grants(rule: &Value, request: &Attributes) -> bool {
    let list = |key: &str| -> Vec<&str> {
        rule[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let verbs = list("verbs");
    let groups = list("apiGroups");
    let resources = list("resources");
    let names = list("resourceNames");
    let resource = match request.subresource {
        Some(sub) => format!("{}/{sub}", request.resource),
        None => request.resource.to_string(),
    };
    let resource_ok = resources.iter().any(|r| {
        *r == "*"
            || *r == resource
            // `*/status` grants that subresource of every resource.
            || request.subresource.is_some_and(|sub| r.strip_prefix("*/") == Some(sub))
    });
    (verbs.contains(&"*") || verbs.contains(&request.verb))
        && (groups.contains(&"*") || groups.contains(&request.group))
        && resource_ok
        && (names.is_empty() || request.name.is_some_and(|n| names.contains(&n)))
}

fn forbidden(identity: &Identity, request: &Attributes) -> ApiError {
    let resource = match request.subresource {
        Some(sub) => format!("{}/{sub}", request.resource),
        None => request.resource.to_string(),
    };
    let qualified = super::error::qualified(request.group, request.resource);
    let subject = match request.name {
        Some(name) => format!("{qualified} \"{name}\""),
        None => qualified,
    };
    let scope = match request.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let mut err = ApiError::forbidden(format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        identity.user, request.verb, request.group
    ));
    err.details = Some(Box::new(super::error::Details {
        name: request.name.unwrap_or_default().to_string(),
        group: request.group.to_string(),
        kind: request.resource.to_string(),
        causes: Vec::new(),
    }));
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ask<'a>(
        verb: &'a str,
        resource: &'a str,
        sub: Option<&'a str>,
        name: Option<&'a str>,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group: "infrastructure.cluster.x-k8s.io",
            resource,
            subresource: sub,
            namespace: Some("ns"),
            name,
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let rule = json!({"apiGroups": ["infrastructure.cluster.x-k8s.io"], "resources": ["physicalhosts", "physicalhosts/status"],
                          "verbs": ["get", "list", "watch", "patch"]});
        assert!(grants(&rule, &ask("list", "physicalhosts", None, None)));
        assert!(grants(
            &rule,
            &ask("patch", "physicalhosts", Some("status"), Some("h1"))
        ));
        assert!(!grants(
            &rule,
            &ask("delete", "physicalhosts", None, Some("h1"))
        ));
        assert!(!grants(
            &rule,
            &ask("get", "beskar7machines", None, Some("m1"))
        ));
        let status_only =
            json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["update"]});
        assert!(grants(
            &status_only,
            &ask("update", "physicalhosts", Some("status"), Some("h1"))
        ));
        assert!(!grants(
            &status_only,
            &ask("update", "physicalhosts", None, Some("h1"))
        ));
        let named = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["bmc"]});
        let secret = |name| Attributes {
            verb: "get",
            group: "",
            resource: "secrets",
            subresource: None,
            namespace: Some("ns"),
            name,
        };
        assert!(grants(&named, &secret(Some("bmc"))));
        assert!(!grants(&named, &secret(Some("other"))));
        assert!(!grants(&named, &secret(None)));
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let sa = Identity::parse("system:serviceaccount:beskar7-system:beskar7").unwrap();
        let binding = |subject: Value| json!({"subjects": [subject]});
        assert!(binds(
            &binding(
                json!({"kind": "ServiceAccount", "name": "beskar7", "namespace": "beskar7-system"})
            ),
            &sa
        ));
        assert!(!binds(
            &binding(json!({"kind": "ServiceAccount", "name": "beskar7", "namespace": "default"})),
            &sa
        ));
        assert!(binds(
            &binding(json!({"kind": "Group", "name": "system:serviceaccounts"})),
            &sa
        ));
        assert!(!binds(
            &binding(json!({"kind": "User", "name": "alice"})),
            &sa
        ));
    }

    #[test]
    fn the_403_says_who_cannot_do_what_where() {
        let alice = Identity::parse("alice").unwrap();
        let err = forbidden(
            &alice,
            &Attributes {
                verb: "list",
                group: "",
                resource: "configmaps",
                subresource: None,
                namespace: Some("default"),
                name: None,
            },
        );
        assert_eq!(
            err.message,
            "configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
        );
        let err = forbidden(
            &alice,
            &Attributes {
                verb: "patch",
                group: "g.io",
                resource: "hosts",
                subresource: Some("status"),
                namespace: None,
                name: Some("h"),
            },
        );
        assert_eq!(
            err.message,
            "hosts.g.io \"h\" is forbidden: User \"alice\" cannot patch resource \"hosts/status\" in API group \"g.io\" at the cluster scope"
        );
    }
}
