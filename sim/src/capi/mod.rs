//! A **stand-in** for the parts of Cluster API's core (CAPI) that Beskar7's flow needs — not
//! CAPI, and not a port of it.
//!
//! It writes what CAPI's controllers write and reads back what they read (see
//! shared/design/capi-contract.md), against any API server through a kube client, with
//! dynamic objects at CAPI's storage version v1beta2:
//!
//! - [`CapiStandIn::create_cluster`]: a `Cluster` whose `spec.infrastructureRef` names a
//!   `Beskar7Cluster`, which it creates with the Cluster as controller owner;
//! - [`CapiStandIn::create_machine`]: a bootstrap Secret (kubeadm-like, with
//!   `provider-id: BESKAR7_PROVIDER_ID` in `kubeletExtraArgs` list form), a `Machine` pointing at
//!   it and at a `Beskar7Machine` cloned from a `Beskar7MachineTemplate`, owner references and
//!   cluster-name labels as CAPI sets them;
//! - [`CapiStandIn::run`]: the watch-driven part of the Machine and Cluster controllers: mirror
//!   `Beskar7Machine.spec.providerID` and `status.initialization.provisioned` into the Machine,
//!   `Beskar7Cluster` provisioning and endpoint into the Cluster, honour `Cluster.spec.paused`,
//!   and on Machine deletion delete the `Beskar7Machine`, wait until its finalizers let it go,
//!   delete the bootstrap Secret and release the Machine.
//!
//! Not here: MachineSets, MachineDeployments, KubeadmControlPlane, a bootstrap provider, a
//! workload cluster (so no Node matching and no `Running` phase), MachineHealthChecks,
//! ClusterClass.

mod controller;
pub mod objects;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use objects::*;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum CapiError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("watch ended: {0}")]
    Watch(String),
}

pub type Result<T, E = CapiError> = std::result::Result<T, E>;

/// The field manager of every write the stand-in makes.
pub const MANAGER: &str = "capi-stand-in";

/// Options of one Machine.
#[derive(Debug, Clone)]
pub struct MachineOptions {
    /// Labels the Machine `cluster.x-k8s.io/control-plane`.
    pub control_plane: bool,
    pub version: String,
    /// Bootstrap data; `None`: [`objects::kubeadm_bootstrap`].
    pub bootstrap: Option<String>,
}

impl Default for MachineOptions {
    fn default() -> Self {
        MachineOptions {
            control_plane: false,
            version: "v1.33.0".into(),
            bootstrap: None,
        }
    }
}

/// The stand-in for one namespace.
#[derive(Clone)]
pub struct CapiStandIn {
    client: Client,
    namespace: String,
}

pub(crate) fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

impl CapiStandIn {
    pub fn new(client: Client, namespace: impl Into<String>) -> CapiStandIn {
        CapiStandIn {
            client,
            namespace: namespace.into(),
        }
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn api(&self, ar: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, ar)
    }

    pub fn clusters(&self) -> Api<DynamicObject> {
        self.api(&resource(CAPI_GROUP, "v1beta2", "Cluster", "clusters"))
    }

    pub fn machines(&self) -> Api<DynamicObject> {
        self.api(&resource(CAPI_GROUP, "v1beta2", "Machine", "machines"))
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// An infrastructure kind at the version its CRD's contract label names, as CAPI resolves
    /// it (`cluster.x-k8s.io/v1beta2: <versions, _-separated>`; the last one is taken).
    pub async fn infra(&self, kind: &str) -> Result<ApiResource> {
        let plural = format!("{}s", kind.to_ascii_lowercase());
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let crd = crds.get(&format!("{plural}.{INFRA_GROUP}")).await?;
        let version = crd
            .labels()
            .get("cluster.x-k8s.io/v1beta2")
            .and_then(|v| v.split('_').next_back())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                CapiError::Invalid(format!(
                    "the {plural}.{INFRA_GROUP} CRD has no cluster.x-k8s.io/v1beta2 contract label"
                ))
            })?
            .to_string();
        Ok(resource(INFRA_GROUP, &version, kind, &plural))
    }

    async fn create(&self, ar: &ApiResource, object: Value) -> Result<DynamicObject> {
        let object: DynamicObject =
            serde_json::from_value(object).map_err(|e| CapiError::Invalid(e.to_string()))?;
        Ok(self.api(ar).create(&PostParams::default(), &object).await?)
    }

    /// A `Cluster` and its `Beskar7Cluster` (spec `infra_spec`), the Cluster its controller
    /// owner, as CAPI's cluster controller leaves them.
    pub async fn create_cluster(
        &self,
        name: &str,
        infra_spec: Value,
        control_plane_endpoint: Option<(&str, u16)>,
    ) -> Result<()> {
        let cluster = self
            .create(
                &resource(CAPI_GROUP, "v1beta2", "Cluster", "clusters"),
                objects::cluster(
                    &self.namespace,
                    name,
                    "Beskar7Cluster",
                    control_plane_endpoint,
                ),
            )
            .await?;
        let owner = owner_ref(CAPI_API_VERSION, "Cluster", name, &uid(&cluster), true);
        let infra = self.infra("Beskar7Cluster").await?;
        self.create(
            &infra,
            json!({"apiVersion": infra.api_version, "kind": "Beskar7Cluster",
                "metadata": {"name": name, "namespace": self.namespace,
                    "labels": {CLUSTER_NAME_LABEL: name}, "ownerReferences": [owner]},
                "spec": infra_spec}),
        )
        .await?;
        Ok(())
    }

    /// A `Beskar7MachineTemplate` whose `spec.template.spec` is `machine_spec` (what a user's
    /// cluster manifest brings; CAPI itself does not create it).
    pub async fn create_template(&self, name: &str, machine_spec: Value) -> Result<()> {
        let ar = self.infra("Beskar7MachineTemplate").await?;
        self.create(
            &ar,
            json!({"apiVersion": ar.api_version, "kind": "Beskar7MachineTemplate",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {"template": {"spec": machine_spec}}}),
        )
        .await?;
        Ok(())
    }

    /// One Machine of `cluster` with its bootstrap Secret and a `Beskar7Machine` cloned from
    /// the `Beskar7MachineTemplate` `template`.
    pub async fn create_machine(
        &self,
        cluster: &str,
        name: &str,
        template: &str,
        options: &MachineOptions,
    ) -> Result<()> {
        let cluster_obj = self.clusters().get(cluster).await?;
        let infra = self.infra("Beskar7Machine").await?;
        let template_ar = self.infra("Beskar7MachineTemplate").await?;
        let template = serde_json::to_value(self.api(&template_ar).get(template).await?)
            .map_err(|e| CapiError::Invalid(e.to_string()))?;

        let data = options
            .bootstrap
            .clone()
            .unwrap_or_else(|| kubeadm_bootstrap(cluster, name));
        let secret: Secret =
            serde_json::from_value(bootstrap_secret(&self.namespace, cluster, name, &data))
                .map_err(|e| CapiError::Invalid(e.to_string()))?;
        self.secrets()
            .create(&PostParams::default(), &secret)
            .await?;

        let shape = MachineShape {
            namespace: &self.namespace,
            cluster,
            name,
            infra_kind: "Beskar7Machine",
            control_plane: options.control_plane,
            version: &options.version,
        };
        let cluster_owner = owner_ref(
            CAPI_API_VERSION,
            "Cluster",
            cluster,
            &uid(&cluster_obj),
            false,
        );
        let machine_json = machine(&shape, cluster_owner);
        let machine = self
            .create(
                &resource(CAPI_GROUP, "v1beta2", "Machine", "machines"),
                machine_json.clone(),
            )
            .await?;
        let machine_owner = owner_ref(CAPI_API_VERSION, "Machine", name, &uid(&machine), true);
        // In CAPI the bootstrap provider's config owns the Secret; here the Machine does.
        self.secrets()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"ownerReferences": [machine_owner.clone()]}})),
            )
            .await?;
        self.create(
            &infra,
            clone_from_template(&template, &machine_json, &infra.api_version, machine_owner),
        )
        .await?;
        self.machines()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Provisioning",
                    "initialization": {"bootstrapDataSecretCreated": true}}})),
            )
            .await?;
        Ok(())
    }

    /// `count` Machines named `<cluster>-<role>-<i>`; the first `control_plane` of them are
    /// control-plane Machines (role `cp`, else `md`). Returns their names.
    pub async fn create_machines(
        &self,
        cluster: &str,
        template: &str,
        count: usize,
        control_plane: usize,
    ) -> Result<Vec<String>> {
        let mut names = Vec::with_capacity(count);
        for i in 0..count {
            let cp = i < control_plane;
            let name = if cp {
                format!("{cluster}-cp-{i}")
            } else {
                format!("{cluster}-md-{}", i - control_plane)
            };
            let options = MachineOptions {
                control_plane: cp,
                ..MachineOptions::default()
            };
            self.create_machine(cluster, &name, template, &options)
                .await?;
            names.push(name);
        }
        Ok(names)
    }

    /// `Cluster.spec.paused` (what `clusterctl move` sets).
    pub async fn set_paused(&self, cluster: &str, paused: bool) -> Result<()> {
        self.clusters()
            .patch(
                cluster,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"paused": paused}})),
            )
            .await?;
        Ok(())
    }

    /// Deletes a Machine and waits until it is gone, which needs [`CapiStandIn::run`]: the
    /// Machine's finalizer holds it until its `Beskar7Machine` is gone.
    pub async fn delete_machine(&self, name: &str) -> Result<()> {
        let machines = self.machines();
        let Some(machine) = machines.get_opt(name).await? else {
            return Ok(());
        };
        match machines.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        await_condition(machines, name, conditions::is_deleted(&uid(&machine)))
            .await
            .map_err(|e| CapiError::Watch(e.to_string()))?;
        Ok(())
    }

    /// Waits until the Machine has its provider ID and `infrastructureProvisioned`.
    pub async fn wait_machine_provisioned(&self, name: &str) -> Result<DynamicObject> {
        let done = await_condition(self.machines(), name, |m: Option<&DynamicObject>| {
            m.is_some_and(|m| {
                m.data["status"]["initialization"]["infrastructureProvisioned"] == true
                    && m.data["spec"]["providerID"].is_string()
            })
        })
        .await
        .map_err(|e| CapiError::Watch(e.to_string()))?;
        done.ok_or_else(|| CapiError::Watch(format!("machine {name} is gone")))
    }

    /// Runs the watch-driven controllers until a watch ends for good; spawn it.
    pub async fn run(self) -> Result<()> {
        controller::run(self).await
    }
}

pub(crate) fn uid(object: &DynamicObject) -> String {
    object.metadata.uid.clone().unwrap_or_default()
}
