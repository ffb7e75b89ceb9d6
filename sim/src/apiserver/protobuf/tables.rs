//! Field tables for the messages the sim decodes: field number → JSON name and type.
//!
//! Numbers are those of k8s.io/api and k8s.io/apimachinery `generated.proto` (core/v1, rbac/v1,
//! apps/v1, meta/v1). Only the kinds typed clients actually send as protobuf are listed
//! (kubectl 1.33's `create` generators, Helm's Secret driver); a message of any other kind stays
//! a 415, and a field number missing here is a 400, so nothing is ever silently dropped.

/// A message: its Go name (for error messages) and its fields.
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

pub struct Field {
    pub number: u32,
    pub json: &'static str,
    pub ty: Ty,
}

/// How a field's wire value becomes JSON. Go's `omitempty` decides what the JSON form leaves
/// out; Go's protobuf marshaller writes non-pointer fields even when empty, so the wire cannot
/// tell "unset" from "zero" and the JSON form is rebuilt by type.
#[derive(Clone, Copy)]
pub enum Ty {
    /// `string` with `omitempty`: an empty one is left out.
    Str,
    /// `*bool`: present on the wire only when set, so kept even when false.
    Bool,
    /// `bool` with `omitempty`: false is left out.
    Flag,
    /// `int64` with `omitempty`: zero is left out.
    Int,
    /// `*int64`: present only when set, so kept even when zero.
    OptInt,
    /// `metav1.Time`: RFC 3339 at second precision; the zero time is left out (Go writes null).
    Time,
    /// A nested struct: always written as an object, `{}` when empty, as Go's JSON does.
    Msg(&'static Message),
    /// `[]T` of structs; left out when empty.
    Msgs(&'static Message),
    /// `[]string`; left out when empty.
    Strs,
    /// `map[string]string`, sent as repeated {key = 1, value = 2} entries.
    StrMap,
    /// `map[string][]byte`: values become base64, as in JSON.
    BytesMap,
    /// `metav1.FieldsV1`: a message whose field 1 is the JSON document itself.
    FieldsV1,
    /// `intstr.IntOrString{type = 1, intVal = 2, strVal = 3}`: a JSON number or string.
    IntOrStr,
    /// `map[string]resource.Quantity`: a Quantity is a message holding its string as field 1.
    QuantityMap,
}

const fn f(number: u32, json: &'static str, ty: Ty) -> Field {
    Field { number, json, ty }
}

// --- meta/v1 ---

pub static TIME: Message = Message {
    name: "Time",
    fields: &[f(1, "seconds", Ty::Int), f(2, "nanos", Ty::Int)],
};

static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        f(1, "kind", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "uid", Ty::Str),
        f(5, "apiVersion", Ty::Str),
        f(6, "controller", Ty::Bool),
        f(7, "blockOwnerDeletion", Ty::Bool),
    ],
};

static MANAGED_FIELDS_ENTRY: Message = Message {
    name: "ManagedFieldsEntry",
    fields: &[
        f(1, "manager", Ty::Str),
        f(2, "operation", Ty::Str),
        f(3, "apiVersion", Ty::Str),
        f(4, "time", Ty::Time),
        f(6, "fieldsType", Ty::Str),
        f(7, "fieldsV1", Ty::FieldsV1),
        f(8, "subresource", Ty::Str),
    ],
};

static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "generateName", Ty::Str),
        f(3, "namespace", Ty::Str),
        f(4, "selfLink", Ty::Str),
        f(5, "uid", Ty::Str),
        f(6, "resourceVersion", Ty::Str),
        f(7, "generation", Ty::Int),
        f(8, "creationTimestamp", Ty::Time),
        f(9, "deletionTimestamp", Ty::Time),
        f(10, "deletionGracePeriodSeconds", Ty::OptInt),
        f(11, "labels", Ty::StrMap),
        f(12, "annotations", Ty::StrMap),
        f(13, "ownerReferences", Ty::Msgs(&OWNER_REFERENCE)),
        f(14, "finalizers", Ty::Strs),
        f(17, "managedFields", Ty::Msgs(&MANAGED_FIELDS_ENTRY)),
    ],
};

static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[
        f(1, "key", Ty::Str),
        f(2, "operator", Ty::Str),
        f(3, "values", Ty::Strs),
    ],
};

static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[
        f(1, "matchLabels", Ty::StrMap),
        f(2, "matchExpressions", Ty::Msgs(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

static PRECONDITIONS: Message = Message {
    name: "Preconditions",
    fields: &[f(1, "uid", Ty::Str), f(2, "resourceVersion", Ty::Str)],
};

/// The body of a DELETE from a protobuf client (client-go's typed `Delete`).
pub static DELETE_OPTIONS: Message = Message {
    name: "DeleteOptions",
    fields: &[
        f(1, "gracePeriodSeconds", Ty::OptInt),
        f(2, "preconditions", Ty::Msg(&PRECONDITIONS)),
        f(3, "orphanDependents", Ty::Bool),
        f(4, "propagationPolicy", Ty::Str),
        f(5, "dryRun", Ty::Strs),
        f(
            6,
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            Ty::Bool,
        ),
    ],
};

// --- core/v1 ---

static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::BytesMap),
        f(3, "type", Ty::Str),
        f(4, "stringData", Ty::StrMap),
        f(5, "immutable", Ty::Bool),
    ],
};

static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::StrMap),
        f(3, "binaryData", Ty::BytesMap),
        f(4, "immutable", Ty::Bool),
    ],
};

static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[f(1, "finalizers", Ty::Strs)],
};

static NAMESPACE_CONDITION: Message = Message {
    name: "NamespaceCondition",
    fields: &[
        f(1, "type", Ty::Str),
        f(2, "status", Ty::Str),
        f(4, "lastTransitionTime", Ty::Time),
        f(5, "reason", Ty::Str),
        f(6, "message", Ty::Str),
    ],
};

static NAMESPACE_STATUS: Message = Message {
    name: "NamespaceStatus",
    fields: &[
        f(1, "phase", Ty::Str),
        f(2, "conditions", Ty::Msgs(&NAMESPACE_CONDITION)),
    ],
};

static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&NAMESPACE_SPEC)),
        f(3, "status", Ty::Msg(&NAMESPACE_STATUS)),
    ],
};

static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        f(1, "kind", Ty::Str),
        f(2, "namespace", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "uid", Ty::Str),
        f(5, "apiVersion", Ty::Str),
        f(6, "resourceVersion", Ty::Str),
        f(7, "fieldPath", Ty::Str),
    ],
};

static LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "LocalObjectReference",
    fields: &[f(1, "name", Ty::Str)],
};

static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "secrets", Ty::Msgs(&OBJECT_REFERENCE)),
        f(3, "imagePullSecrets", Ty::Msgs(&LOCAL_OBJECT_REFERENCE)),
        f(4, "automountServiceAccountToken", Ty::Bool),
    ],
};

// --- rbac/v1 ---

static POLICY_RULE: Message = Message {
    name: "PolicyRule",
    fields: &[
        f(1, "verbs", Ty::Strs),
        f(2, "apiGroups", Ty::Strs),
        f(3, "resources", Ty::Strs),
        f(4, "resourceNames", Ty::Strs),
        f(5, "nonResourceURLs", Ty::Strs),
    ],
};

static AGGREGATION_RULE: Message = Message {
    name: "AggregationRule",
    fields: &[f(1, "clusterRoleSelectors", Ty::Msgs(&LABEL_SELECTOR))],
};

static SUBJECT: Message = Message {
    name: "Subject",
    fields: &[
        f(1, "kind", Ty::Str),
        f(2, "apiGroup", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "namespace", Ty::Str),
    ],
};

static ROLE_REF: Message = Message {
    name: "RoleRef",
    fields: &[
        f(1, "apiGroup", Ty::Str),
        f(2, "kind", Ty::Str),
        f(3, "name", Ty::Str),
    ],
};

static ROLE: Message = Message {
    name: "Role",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "rules", Ty::Msgs(&POLICY_RULE)),
    ],
};

static CLUSTER_ROLE: Message = Message {
    name: "ClusterRole",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "rules", Ty::Msgs(&POLICY_RULE)),
        f(3, "aggregationRule", Ty::Msg(&AGGREGATION_RULE)),
    ],
};

static ROLE_BINDING: Message = Message {
    name: "RoleBinding",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "subjects", Ty::Msgs(&SUBJECT)),
        f(3, "roleRef", Ty::Msg(&ROLE_REF)),
    ],
};

static CLUSTER_ROLE_BINDING: Message = Message {
    name: "ClusterRoleBinding",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "subjects", Ty::Msgs(&SUBJECT)),
        f(3, "roleRef", Ty::Msg(&ROLE_REF)),
    ],
};

// --- apps/v1 Deployment and core/v1 Service: what `kubectl create deployment|service` fills in,
// plus the scalar fields around it. Go writes every non-pointer field, so PodSpec and Container
// carry the zero-valued ones whether set or not; nested messages beyond these (probes, volumes,
// affinity, security contexts, ...) are not described and make a 400.

static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "hostPort", Ty::Int),
        f(3, "containerPort", Ty::OptInt),
        f(4, "protocol", Ty::Str),
        f(5, "hostIP", Ty::Str),
    ],
};

static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)],
};

static RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[
        f(1, "limits", Ty::QuantityMap),
        f(2, "requests", Ty::QuantityMap),
    ],
};

static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "image", Ty::Str),
        f(3, "command", Ty::Strs),
        f(4, "args", Ty::Strs),
        f(5, "workingDir", Ty::Str),
        f(6, "ports", Ty::Msgs(&CONTAINER_PORT)),
        f(7, "env", Ty::Msgs(&ENV_VAR)),
        f(8, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
        f(13, "terminationMessagePath", Ty::Str),
        f(14, "imagePullPolicy", Ty::Str),
        f(16, "stdin", Ty::Flag),
        f(17, "stdinOnce", Ty::Flag),
        f(18, "tty", Ty::Flag),
        f(20, "terminationMessagePolicy", Ty::Str),
        f(24, "restartPolicy", Ty::Str),
    ],
};

static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        f(2, "containers", Ty::Msgs(&CONTAINER)),
        f(3, "restartPolicy", Ty::Str),
        f(4, "terminationGracePeriodSeconds", Ty::OptInt),
        f(5, "activeDeadlineSeconds", Ty::OptInt),
        f(6, "dnsPolicy", Ty::Str),
        f(7, "nodeSelector", Ty::StrMap),
        f(8, "serviceAccountName", Ty::Str),
        f(9, "serviceAccount", Ty::Str),
        f(10, "nodeName", Ty::Str),
        f(11, "hostNetwork", Ty::Flag),
        f(12, "hostPID", Ty::Flag),
        f(13, "hostIPC", Ty::Flag),
        f(15, "imagePullSecrets", Ty::Msgs(&LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", Ty::Str),
        f(17, "subdomain", Ty::Str),
        f(19, "schedulerName", Ty::Str),
        f(20, "initContainers", Ty::Msgs(&CONTAINER)),
        f(21, "automountServiceAccountToken", Ty::Bool),
        f(24, "priorityClassName", Ty::Str),
        f(25, "priority", Ty::OptInt),
        f(27, "shareProcessNamespace", Ty::Bool),
        f(29, "runtimeClassName", Ty::Str),
        f(30, "enableServiceLinks", Ty::Bool),
        f(31, "preemptionPolicy", Ty::Str),
        f(35, "setHostnameAsFQDN", Ty::Bool),
        f(37, "hostUsers", Ty::Bool),
    ],
};

static POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&POD_SPEC)),
    ],
};

static ROLLING_UPDATE_DEPLOYMENT: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[
        f(1, "maxUnavailable", Ty::IntOrStr),
        f(2, "maxSurge", Ty::IntOrStr),
    ],
};

static DEPLOYMENT_STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[
        f(1, "type", Ty::Str),
        f(2, "rollingUpdate", Ty::Msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ],
};

static DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        f(1, "replicas", Ty::OptInt),
        f(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(3, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", Ty::Msg(&DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", Ty::Int),
        f(6, "revisionHistoryLimit", Ty::OptInt),
        f(7, "paused", Ty::Flag),
        f(9, "progressDeadlineSeconds", Ty::OptInt),
    ],
};

static DEPLOYMENT_CONDITION: Message = Message {
    name: "DeploymentCondition",
    fields: &[
        f(1, "type", Ty::Str),
        f(2, "status", Ty::Str),
        f(4, "reason", Ty::Str),
        f(5, "message", Ty::Str),
        f(6, "lastUpdateTime", Ty::Time),
        f(7, "lastTransitionTime", Ty::Time),
    ],
};

static DEPLOYMENT_STATUS: Message = Message {
    name: "DeploymentStatus",
    fields: &[
        f(1, "observedGeneration", Ty::Int),
        f(2, "replicas", Ty::Int),
        f(3, "updatedReplicas", Ty::Int),
        f(4, "availableReplicas", Ty::Int),
        f(5, "unavailableReplicas", Ty::Int),
        f(6, "conditions", Ty::Msgs(&DEPLOYMENT_CONDITION)),
        f(7, "readyReplicas", Ty::Int),
        f(8, "collisionCount", Ty::OptInt),
        f(9, "terminatingReplicas", Ty::OptInt),
    ],
};

static DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&DEPLOYMENT_SPEC)),
        f(3, "status", Ty::Msg(&DEPLOYMENT_STATUS)),
    ],
};

static SERVICE_PORT: Message = Message {
    name: "ServicePort",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "protocol", Ty::Str),
        f(3, "port", Ty::OptInt),
        f(4, "targetPort", Ty::IntOrStr),
        f(5, "nodePort", Ty::Int),
        f(6, "appProtocol", Ty::Str),
    ],
};

static SERVICE_SPEC: Message = Message {
    name: "ServiceSpec",
    fields: &[
        f(1, "ports", Ty::Msgs(&SERVICE_PORT)),
        f(2, "selector", Ty::StrMap),
        f(3, "clusterIP", Ty::Str),
        f(4, "type", Ty::Str),
        f(5, "externalIPs", Ty::Strs),
        f(7, "sessionAffinity", Ty::Str),
        f(8, "loadBalancerIP", Ty::Str),
        f(9, "loadBalancerSourceRanges", Ty::Strs),
        f(10, "externalName", Ty::Str),
        f(11, "externalTrafficPolicy", Ty::Str),
        f(12, "healthCheckNodePort", Ty::Int),
        f(13, "publishNotReadyAddresses", Ty::Flag),
        f(17, "ipFamilyPolicy", Ty::Str),
        f(18, "clusterIPs", Ty::Strs),
        f(19, "ipFamilies", Ty::Strs),
        f(20, "allocateLoadBalancerNodePorts", Ty::Bool),
        f(21, "loadBalancerClass", Ty::Str),
        f(22, "internalTrafficPolicy", Ty::Str),
        f(23, "trafficDistribution", Ty::Str),
    ],
};

static LOAD_BALANCER_INGRESS: Message = Message {
    name: "LoadBalancerIngress",
    fields: &[
        f(1, "ip", Ty::Str),
        f(2, "hostname", Ty::Str),
        f(3, "ipMode", Ty::Str),
    ],
};

static LOAD_BALANCER_STATUS: Message = Message {
    name: "LoadBalancerStatus",
    fields: &[f(1, "ingress", Ty::Msgs(&LOAD_BALANCER_INGRESS))],
};

static SERVICE_STATUS: Message = Message {
    name: "ServiceStatus",
    fields: &[f(1, "loadBalancer", Ty::Msg(&LOAD_BALANCER_STATUS))],
};

static SERVICE: Message = Message {
    name: "Service",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&SERVICE_SPEC)),
        f(3, "status", Ty::Msg(&SERVICE_STATUS)),
    ],
};

/// The message of a kind, by the `apiVersion` and `kind` of the envelope's TypeMeta.
pub fn kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    let message = match (api_version, kind) {
        ("v1", "Secret") => &SECRET,
        ("v1", "ConfigMap") => &CONFIG_MAP,
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("v1", "Service") => &SERVICE,
        ("apps/v1", "Deployment") => &DEPLOYMENT,
        ("rbac.authorization.k8s.io/v1", "Role") => &ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => &CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => &ROLE_BINDING,
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => &CLUSTER_ROLE_BINDING,
        _ => return None,
    };
    Some(message)
}
