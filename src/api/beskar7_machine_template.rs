//! `Beskar7MachineTemplate`: Cluster API's InfraMachineTemplate, from which CAPI clones
//! Beskar7Machines.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::beskar7_machine::Beskar7MachineSpec;

/// The desired state of a Beskar7MachineTemplate: the Beskar7Machine to clone.
// Each typed `printcolumn(..)` repeats `name`/`type_`, which clippy mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "Beskar7MachineTemplate",
    plural = "beskar7machinetemplates",
    namespaced,
    derive = "PartialEq",
    shortname = "b7mt",
    category = "cluster-api",
    category = "beskar7",
    doc = "A template from which Cluster API (a MachineDeployment, MachineSet or control plane) creates Beskar7Machines: each new Beskar7Machine gets spec.template.spec as its spec.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".metadata.labels.cluster\\.x-k8s\\.io/cluster-name",
        description = "The Cluster API cluster this template belongs to"
    ),
    printcolumn(
        name = "Target Image",
        type_ = "string",
        json_path = ".spec.template.spec.targetImageURL",
        description = "The OS the machines get"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct Beskar7MachineTemplateSpec {
    /// The Beskar7Machine to create.
    pub template: Beskar7MachineTemplateResource,
}

/// A Beskar7Machine as a template: labels, annotations and spec.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Beskar7MachineTemplateResource {
    /// Labels and annotations for the Beskar7Machines created from this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,

    /// The spec of the Beskar7Machines created from this template.
    pub spec: Beskar7MachineSpec,
}

/// Labels and annotations to put on objects created from a template.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}
