//! `--authorize`: the RBAC objects stored in the server decide what a non-admin identity may do.

use crate::support::*;
use beskar7_sim::apiserver::{ApiServer, Config, Identity};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::Client;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;

fn enforcing() -> (Arc<ApiServer>, Client) {
    let server = ApiServer::new(Config {
        authorize: true,
        ..Config::default()
    })
    .expect("server");
    let admin = Client::new(server.router_for(Identity::admin()), "default");
    (server, admin)
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    PolicyRule {
        api_groups: strings(groups),
        resources: strings(resources),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_narrow_role_allows_exactly_what_it_grants() {
    let (server, admin) = enforcing();
    create_namespace(&admin, "team").await;
    let roles: Api<Role> = Api::namespaced(admin.clone(), "team");
    let role = Role {
        metadata: meta("cm-reader"),
        rules: Some(vec![rule(
            &[""],
            &["configmaps"],
            &["get", "list", "watch"],
        )]),
    };
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "team");
    let binding = RoleBinding {
        metadata: meta("alice-reads"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "cm-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: "alice".into(),
            ..Default::default()
        }]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let in_team: Api<ConfigMap> = Api::namespaced(admin.clone(), "team");
    in_team
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: meta("settings"),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let alice = Client::new(server.router_for(Identity::parse("alice").unwrap()), "team");
    let readable: Api<ConfigMap> = Api::namespaced(alice.clone(), "team");
    assert_eq!(
        readable
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    readable.get("settings").await.unwrap();

    let err = api_error(
        readable
            .create(
                &PostParams::default(),
                &ConfigMap {
                    metadata: meta("mine"),
                    ..Default::default()
                },
            )
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "configmaps is forbidden: User \"alice\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"team\""
    );
    let elsewhere: Api<ConfigMap> = Api::namespaced(alice.clone(), "default");
    assert_eq!(
        api_error(elsewhere.list(&ListParams::default()).await).code,
        403,
        "the Role is bound in team only"
    );
    let everywhere: Api<ConfigMap> = Api::all(alice.clone());
    let err = api_error(everywhere.list(&ListParams::default()).await);
    assert!(
        err.message.ends_with("at the cluster scope"),
        "{}",
        err.message
    );
    let secrets: Api<Secret> = Api::namespaced(alice, "team");
    assert_eq!(
        api_error(secrets.get("anything").await).code,
        403,
        "forbidden before not-found"
    );

    let denied = server
        .audit_summary()
        .into_iter()
        .filter(|a| a.user == "alice")
        .count();
    assert!(denied >= 5, "every request of alice is audited");
}

#[tokio::test]
async fn a_service_account_bound_to_a_cluster_role_may_write_status_only() {
    let (server, admin) = enforcing();
    install_widgets(&admin).await;
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let role = ClusterRole {
        metadata: meta("widget-status"),
        rules: Some(vec![
            rule(&["example.com"], &["widgets"], &["get", "list", "watch"]),
            rule(&["example.com"], &["widgets/status"], &["patch", "update"]),
        ]),
        ..Default::default()
    };
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let binding = ClusterRoleBinding {
        metadata: meta("operator"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "widget-status".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "beskar7".into(),
            namespace: Some("beskar7-system".into()),
            ..Default::default()
        }]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let widgets: Api<Widget> = Api::default_namespaced(admin);
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();

    let sa = Identity::parse("system:serviceaccount:beskar7-system:beskar7").unwrap();
    let operator: Api<Widget> =
        Api::default_namespaced(Client::new(server.router_for(sa), "default"));
    let status = json!({"status": {"ready": true}});
    operator
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status is granted");
    let err = api_error(
        operator
            .patch(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 2}})),
            )
            .await,
    );
    assert_eq!(err.code, 403);
    assert!(
        err.message
            .contains("cannot patch resource \"widgets\" in API group \"example.com\""),
        "{}",
        err.message
    );
    assert_eq!(
        widgets_size(&widgets).await,
        1,
        "the forbidden write changed nothing"
    );
}

async fn widgets_size(widgets: &Api<Widget>) -> i64 {
    widgets.get("w").await.unwrap().spec.size
}

#[tokio::test]
async fn anonymous_requests_see_only_version_and_health() {
    let (server, _admin) = enforcing();
    let (code, _) = raw(&server, "GET", "/version", "", "").await;
    assert_eq!(code, 200);
    let (code, body) = raw(&server, "GET", "/apis", "", "").await;
    assert_eq!((code, body["reason"].as_str()), (403, Some("Forbidden")));
    let (code, body) = raw(
        &server,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "",
        "",
    )
    .await;
    assert_eq!(code, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("User \"system:anonymous\""),
        "{body}"
    );
}
