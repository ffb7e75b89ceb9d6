//! The watch-driven half of the stand-in: what CAPI's Machine and Cluster controllers do once
//! the objects exist. Every change of a Machine, Beskar7Machine, Cluster or Beskar7Cluster is
//! looked at once; writes are merge patches of only the fields that differ, so a repeated look
//! changes nothing.

use super::objects::*;
use super::{CapiError, CapiStandIn, Result, uid};
use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

enum Change {
    Machine(DynamicObject),
    InfraMachine(DynamicObject),
    Cluster(DynamicObject),
    InfraCluster(DynamicObject),
}

pub(super) async fn run(capi: CapiStandIn) -> Result<()> {
    let infra_machines = capi.api(&capi.infra("Beskar7Machine").await?);
    let infra_clusters = capi.api(&capi.infra("Beskar7Cluster").await?);
    let watch = |api: Api<DynamicObject>| {
        watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
    };
    let mut changes = futures::stream::select_all([
        watch(capi.machines()).map_ok(Change::Machine).boxed(),
        watch(infra_machines.clone())
            .map_ok(Change::InfraMachine)
            .boxed(),
        watch(capi.clusters()).map_ok(Change::Cluster).boxed(),
        watch(infra_clusters.clone())
            .map_ok(Change::InfraCluster)
            .boxed(),
    ]);
    let deleting: Arc<Mutex<HashSet<String>>> = Arc::default();
    while let Some(change) = changes.next().await {
        let change = match change {
            Ok(change) => change,
            // The backoff retries; a watch error is transient here.
            Err(e) => {
                tracing::warn!("CAPI stand-in watch: {e}");
                continue;
            }
        };
        let result = match change {
            Change::Machine(m) => {
                start_deletion(&capi, &infra_machines, &deleting, m);
                Ok(())
            }
            Change::InfraMachine(m) => sync_machine(&capi, &m).await,
            Change::InfraCluster(c) => sync_cluster(&capi, &c).await,
            Change::Cluster(c) => resync_cluster(&capi, &infra_machines, &infra_clusters, &c).await,
        };
        if let Err(e) = result {
            // The next change of the object looks again (no timed requeue: this is a stand-in).
            tracing::warn!("CAPI stand-in: {e}");
        }
    }
    Err(CapiError::Watch("the watches ended".into()))
}

fn owner_name<'a>(object: &'a DynamicObject, kind: &str) -> Option<&'a str> {
    // By kind and group only, not uid or version (as CAPI and CAPM3 match owners).
    object
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == kind && o.api_version.starts_with(&format!("{CAPI_GROUP}/")))
        .map(|o| o.name.as_str())
}

async fn is_paused(capi: &CapiStandIn, cluster: &str) -> Result<Option<bool>> {
    Ok(capi
        .clusters()
        .get_opt(cluster)
        .await?
        .map(|c| c.data["spec"]["paused"] == true))
}

/// `Beskar7Machine` → its Machine: provider ID, then `infrastructureProvisioned`, addresses
/// and phase (CAPI's `reconcileInfrastructure`). Waits (does nothing) until both the flag and
/// the provider ID are there; the flag never flips back.
async fn sync_machine(capi: &CapiStandIn, infra: &DynamicObject) -> Result<()> {
    let Some(machine_name) = owner_name(infra, "Machine") else {
        return Ok(());
    };
    let Some(cluster) = infra.labels().get(CLUSTER_NAME_LABEL) else {
        return Ok(());
    };
    if is_paused(capi, cluster).await? != Some(false) {
        return Ok(());
    }
    let provisioned = infra.data["status"]["initialization"]["provisioned"] == true;
    let provider_id = infra.data["spec"]["providerID"]
        .as_str()
        .filter(|p| !p.is_empty());
    let (true, Some(provider_id)) = (provisioned, provider_id) else {
        return Ok(());
    };
    let machines = capi.machines();
    let Some(machine) = machines.get_opt(machine_name).await? else {
        return Ok(());
    };
    if machine.data["spec"]["providerID"].as_str() != Some(provider_id) {
        machines
            .patch(
                machine_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"providerID": provider_id}})),
            )
            .await?;
    }
    let mut status = json!({"initialization": {"infrastructureProvisioned": true},
        "phase": if machine.metadata.deletion_timestamp.is_some() { "Deleting" } else { "Provisioned" }});
    if let Some(addresses) = infra.data["status"]["addresses"].as_array() {
        status["addresses"] = Value::Array(addresses.clone());
    }
    if !contains(&machine.data["status"], &status) {
        machines
            .patch_status(
                machine_name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
    }
    Ok(())
}

/// `Beskar7Cluster` → its Cluster: `infrastructureProvisioned`, and the control-plane endpoint
/// when the Cluster has none.
async fn sync_cluster(capi: &CapiStandIn, infra: &DynamicObject) -> Result<()> {
    let Some(cluster_name) = owner_name(infra, "Cluster") else {
        return Ok(());
    };
    let clusters = capi.clusters();
    let Some(cluster) = clusters.get_opt(cluster_name).await? else {
        return Ok(());
    };
    if cluster.data["spec"]["paused"] == true
        || infra.data["status"]["initialization"]["provisioned"] != true
    {
        return Ok(());
    }
    let endpoint = &infra.data["spec"]["controlPlaneEndpoint"];
    if cluster.data["spec"]["controlPlaneEndpoint"]["host"].is_null()
        && endpoint["host"].is_string()
    {
        clusters
            .patch(
                cluster_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"controlPlaneEndpoint": endpoint}})),
            )
            .await?;
    }
    let status =
        json!({"initialization": {"infrastructureProvisioned": true}, "phase": "Provisioned"});
    if !contains(&cluster.data["status"], &status) {
        clusters
            .patch_status(
                cluster_name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
    }
    Ok(())
}

/// A Cluster changed (e.g. unpaused): look again at everything of it.
async fn resync_cluster(
    capi: &CapiStandIn,
    infra_machines: &Api<DynamicObject>,
    infra_clusters: &Api<DynamicObject>,
    cluster: &DynamicObject,
) -> Result<()> {
    if cluster.data["spec"]["paused"] == true {
        return Ok(());
    }
    let name = cluster.name_any();
    let selector = ListParams::default().labels(&format!("{CLUSTER_NAME_LABEL}={name}"));
    for infra in infra_machines.list(&selector).await? {
        sync_machine(capi, &infra).await?;
    }
    if let Some(infra) = infra_clusters.get_opt(&name).await? {
        sync_cluster(capi, &infra).await?;
    }
    Ok(())
}

/// A Machine being deleted: the Machine controller's order (capi-contract.md §2), in a task
/// of its own so the wait for the provider's finalizer holds up nothing else.
fn start_deletion(
    capi: &CapiStandIn,
    infra_machines: &Api<DynamicObject>,
    deleting: &Arc<Mutex<HashSet<String>>>,
    machine: DynamicObject,
) {
    let has_finalizer = machine.finalizers().iter().any(|f| f == MACHINE_FINALIZER);
    if machine.metadata.deletion_timestamp.is_none() || !has_finalizer {
        return;
    }
    let name = machine.name_any();
    if !deleting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.clone())
    {
        return;
    }
    let (capi, infra_machines, deleting) = (capi.clone(), infra_machines.clone(), deleting.clone());
    tokio::spawn(async move {
        if let Err(e) = delete_machine(&capi, &infra_machines, &machine).await {
            tracing::warn!("CAPI stand-in: deleting machine {name}: {e}");
        }
        deleting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
    });
}

async fn delete_machine(
    capi: &CapiStandIn,
    infra_machines: &Api<DynamicObject>,
    machine: &DynamicObject,
) -> Result<()> {
    let name = machine.name_any();
    capi.machines()
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Deleting"}})),
        )
        .await?;
    if let Some(infra_name) = machine.data["spec"]["infrastructureRef"]["name"].as_str()
        && let Some(infra) = infra_machines.get_opt(infra_name).await?
    {
        ignore_not_found(
            infra_machines
                .delete(infra_name, &DeleteParams::default())
                .await,
        )?;
        // Gone only once the provider removed its finalizer (it deprovisions first).
        await_condition(
            infra_machines.clone(),
            infra_name,
            conditions::is_deleted(&uid(&infra)),
        )
        .await
        .map_err(|e| CapiError::Watch(e.to_string()))?;
    }
    if let Some(secret) = machine.data["spec"]["bootstrap"]["dataSecretName"].as_str() {
        ignore_not_found(
            capi.secrets()
                .delete(secret, &DeleteParams::default())
                .await,
        )?;
    }
    let finalizers: Vec<&String> = machine
        .finalizers()
        .iter()
        .filter(|f| *f != MACHINE_FINALIZER)
        .collect();
    ignore_not_found(
        capi.machines()
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
            )
            .await,
    )?;
    Ok(())
}

fn ignore_not_found<T>(result: kube::Result<T>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether every field of `want` is already in `have` (objects recursively, the rest equal).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (h, w) => h == w,
    }
}
