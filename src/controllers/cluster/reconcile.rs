//! One reconcile of a Beskar7Cluster; status written by server-side apply under its own field
//! manager, only when it changed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{ClusterContext, Error, MANAGED_BY_ANNOTATION};
use crate::api::capi::{Cluster, cluster_owner, has_paused_annotation};
use crate::api::physical_host::PhysicalHost;
use crate::api::{
    ApiEndpoint, Beskar7Cluster, Beskar7ClusterStatus, FailureDomain, Initialization,
    READY_CONDITION, ZONE_LABEL,
};
use crate::controllers::conditions::{self, PAUSED, condition};
use crate::controllers::physical_host::status::now;

/// The field manager of the cluster controller's status writes.
pub const FIELD_MANAGER: &str = "beskar7-cluster";
pub const WAITING_FOR_CLUSTER_OWNER: &str = "WaitingForClusterOwner";
pub const WAITING_FOR_CONTROL_PLANE_ENDPOINT: &str = "WaitingForControlPlaneEndpoint";
pub const PROVISIONED: &str = "Provisioned";
/// The API server port when the Cluster's endpoint has none.
const DEFAULT_PORT: i32 = 6443;

pub async fn reconcile(c: Arc<Beskar7Cluster>, ctx: Arc<ClusterContext>) -> Result<Action, Error> {
    if c.annotations().contains_key(MANAGED_BY_ANNOTATION) {
        // Externally managed: another system owns this object entirely.
        return Ok(Action::await_change());
    }
    if c.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = c.namespace().unwrap_or_default();
    let client = ctx.base.client.clone();
    let api: Api<Beskar7Cluster> = Api::namespaced(client.clone(), &ns);
    let prev = c.status.clone().unwrap_or_default();

    let owner = match cluster_owner(&c.metadata) {
        Some(o) => Api::<Cluster>::namespaced(client.clone(), &ns)
            .get_opt(&o.name)
            .await
            .map_err(Error::Kube)?,
        None => None,
    };
    if owner.as_ref().is_some_and(Cluster::is_paused) || has_paused_annotation(&c.metadata) {
        let mut next = prev.clone();
        let why = if has_paused_annotation(&c.metadata) {
            "the Beskar7Cluster has the cluster.x-k8s.io/paused annotation"
        } else {
            "the Cluster is paused"
        };
        conditions::set(
            &mut next.conditions,
            condition(
                &prev.conditions,
                PAUSED,
                true,
                "Paused",
                why,
                c.meta().generation,
                &now(),
            ),
        );
        apply(&api, &c, next).await?;
        return Ok(Action::await_change());
    }

    let mut next = prev.clone();
    let generation = c.meta().generation;
    let t = now();
    conditions::set(
        &mut next.conditions,
        condition(
            &prev.conditions,
            PAUSED,
            false,
            "NotPaused",
            "",
            generation,
            &t,
        ),
    );
    next.observed_generation = generation;
    next.failure_domains = failure_domains(&ctx, &ns).await?;

    let Some(cluster) = owner else {
        let why = match cluster_owner(&c.metadata) {
            Some(o) => format!("the owner Cluster {} does not exist (yet)", o.name),
            None => "no owner reference to a cluster.x-k8s.io Cluster yet".to_owned(),
        };
        conditions::set(
            &mut next.conditions,
            condition(
                &prev.conditions,
                READY_CONDITION,
                false,
                WAITING_FOR_CLUSTER_OWNER,
                &why,
                generation,
                &t,
            ),
        );
        apply(&api, &c, next).await?;
        return Ok(Action::await_change());
    };

    let endpoint = match &c.spec.control_plane_endpoint {
        Some(e) if !e.host.is_empty() => Some(e.clone()),
        _ => match cluster.spec.control_plane_endpoint.as_ref() {
            Some(e) if !e.host.is_empty() => {
                let e = ApiEndpoint {
                    host: e.host.clone(),
                    port: if e.port > 0 { e.port } else { DEFAULT_PORT },
                };
                // CAPI reads the endpoint from the InfraCluster's spec: write it back there.
                let body = json!({"spec": {"controlPlaneEndpoint": e}});
                api.patch(&c.name_any(), &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .map_err(Error::Kube)?;
                Some(e)
            }
            _ => None,
        },
    };
    match endpoint {
        Some(e) => {
            next.initialization = Some(Initialization {
                provisioned: Some(true),
            });
            conditions::set(
                &mut next.conditions,
                condition(
                    &prev.conditions,
                    READY_CONDITION,
                    true,
                    PROVISIONED,
                    &format!("control plane endpoint {}:{}", e.host, e.port),
                    generation,
                    &t,
                ),
            );
        }
        None => {
            // initialization.provisioned never flips back once true.
            let why = "no control plane endpoint: set spec.controlPlaneEndpoint on the Beskar7Cluster or the Cluster (Beskar7 creates no load balancer)";
            conditions::set(
                &mut next.conditions,
                condition(
                    &prev.conditions,
                    READY_CONDITION,
                    false,
                    WAITING_FOR_CONTROL_PLANE_ENDPOINT,
                    why,
                    generation,
                    &t,
                ),
            );
        }
    }
    apply(&api, &c, next).await?;
    Ok(Action::requeue(Duration::from_secs(600)))
}

/// One failure domain per distinct zone label of the namespace's hosts, all control-plane
/// capable, sorted by name.
async fn failure_domains(ctx: &ClusterContext, ns: &str) -> Result<Vec<FailureDomain>, Error> {
    let hosts: Api<PhysicalHost> = Api::namespaced(ctx.base.client.clone(), ns);
    let mut lp = ListParams::default();
    if let Some(v) = &ctx.watch_filter {
        lp = lp.labels(&format!(
            "{}={v}",
            crate::controllers::physical_host::WATCH_FILTER_LABEL
        ));
    }
    let zones: BTreeSet<String> = hosts
        .list(&lp)
        .await
        .map_err(Error::Kube)?
        .items
        .iter()
        .filter_map(|h| h.labels().get(ZONE_LABEL).cloned())
        .filter(|z| !z.is_empty())
        .collect();
    Ok(zones
        .into_iter()
        .take(100)
        .map(|name| FailureDomain {
            name,
            control_plane: Some(true),
            attributes: Default::default(),
        })
        .collect())
}

async fn apply(
    api: &Api<Beskar7Cluster>,
    c: &Beskar7Cluster,
    desired: Beskar7ClusterStatus,
) -> Result<(), Error> {
    if c.status.as_ref() == Some(&desired) {
        return Ok(());
    }
    let body = json!({
        "apiVersion": Beskar7Cluster::api_version(&()),
        "kind": Beskar7Cluster::kind(&()),
        "status": desired,
    });
    match api
        .patch_status(
            &c.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::Kube(e)),
    }
}
