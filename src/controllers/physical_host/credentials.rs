//! The BMC credentials and CA-bundle Secrets: read with one GET each when a reconcile needs
//! them (never cached: the Secret watch is metadata-only), turned into [`Credentials`] and
//! [`TlsOptions`], and made owned by the host so `clusterctl move` carries them along.
//!
//! Errors name the Secret and the key, never a value.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::conditions::{
    CA_BUNDLE_KEY_MISSING, CA_BUNDLE_SECRET_NOT_FOUND, CREDENTIALS_KEY_MISSING,
    CREDENTIALS_SECRET_NOT_FOUND, Failure,
};
use crate::api::physical_host::PhysicalHost;
use crate::redfish::{Credentials, TlsOptions};

/// What the Secrets give one reconcile. Dropped at its end.
pub struct BmcSecrets {
    pub credentials: Credentials,
    pub tls: TlsOptions,
    /// The Secrets read, to give them owner references.
    pub secrets: Vec<Secret>,
}

/// The keys of a CA bundle Secret, in order of preference (cert-manager writes both).
const CA_KEYS: [&str; 2] = ["ca.crt", "tls.crt"];

/// A non-empty value of `key`, from `data` or `stringData` (the latter only appears when a
/// Secret was never round-tripped through a real apiserver; accepted for robustness).
fn value<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(String::as_bytes)
        })
        .filter(|v| !v.is_empty())
}

/// Reads the Secrets the host names. `Ok(Err(..))` is a user-fixable problem (the host goes to
/// Error); `Err(..)` is the API server failing (retried by the error policy).
pub async fn load(
    secrets: &Api<Secret>,
    host: &PhysicalHost,
) -> kube::Result<Result<BmcSecrets, Failure>> {
    let conn = &host.spec.redfish_connection;
    let name = conn.credentials_secret_ref.as_str();
    let Some(secret) = secrets.get_opt(name).await? else {
        return Ok(Err(Failure::new(
            CREDENTIALS_SECRET_NOT_FOUND,
            format!(
                "credentials Secret {name:?} not found in namespace {:?}",
                host.namespace().unwrap_or_default()
            ),
        )));
    };
    let mut missing = Vec::new();
    let username = value(&secret, "username");
    let password = value(&secret, "password");
    if username.is_none() {
        missing.push("\"username\"");
    }
    if password.is_none() {
        missing.push("\"password\"");
    }
    let (Some(username), Some(password)) = (username, password) else {
        return Ok(Err(Failure::new(
            CREDENTIALS_KEY_MISSING,
            format!(
                "credentials Secret {name:?} has no (or an empty) key {}",
                missing.join(" and ")
            ),
        )));
    };
    let Ok(username) = std::str::from_utf8(username) else {
        return Ok(Err(Failure::new(
            CREDENTIALS_KEY_MISSING,
            format!("credentials Secret {name:?}: key \"username\" is not UTF-8"),
        )));
    };
    let Ok(password) = std::str::from_utf8(password) else {
        return Ok(Err(Failure::new(
            CREDENTIALS_KEY_MISSING,
            format!("credentials Secret {name:?}: key \"password\" is not UTF-8"),
        )));
    };
    let credentials = Credentials::new(
        username.trim_end_matches('\n'),
        password.trim_end_matches('\n'),
    );
    let mut found = vec![secret.clone()];

    let tls = match &conn.ca_bundle_secret_ref {
        None if conn.insecure_skip_verify => TlsOptions::InsecureSkipVerify,
        None => TlsOptions::SystemRoots,
        Some(r) => {
            let Some(ca) = secrets.get_opt(&r.name).await? else {
                return Ok(Err(Failure::new(
                    CA_BUNDLE_SECRET_NOT_FOUND,
                    format!("CA bundle Secret {:?} not found", r.name),
                )));
            };
            let Some(pem) = CA_KEYS.iter().find_map(|k| value(&ca, k)) else {
                return Ok(Err(Failure::new(
                    CA_BUNDLE_KEY_MISSING,
                    format!(
                        "CA bundle Secret {:?} has no key \"ca.crt\" or \"tls.crt\"",
                        r.name
                    ),
                )));
            };
            let pem = pem.to_vec();
            found.push(ca);
            TlsOptions::CaBundle(pem)
        }
    };
    Ok(Ok(BmcSecrets {
        credentials,
        tls,
        secrets: found,
    }))
}

/// The owner reference a host puts on its Secrets: not a controller reference (a Secret may
/// serve several hosts, and the user owns its content), no blockOwnerDeletion.
pub fn owner_reference(host: &PhysicalHost) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: PhysicalHost::api_version(&()).into_owned(),
        kind: PhysicalHost::kind(&()).into_owned(),
        name: host.name_any(),
        uid: host.uid()?,
        controller: None,
        block_owner_deletion: None,
    })
}

/// Adds the host's owner reference to each Secret that lacks it. A merge patch replaces the
/// whole list, so it carries the resourceVersion it was computed from: a concurrent change
/// makes it fail (409) and the reconcile retries, instead of dropping someone's reference.
///
/// Each patched Secret in `secrets` is replaced by the patched version, so the caller sees the
/// resourceVersion its own patch produced.
pub async fn ensure_owned(
    api: &Api<Secret>,
    host: &PhysicalHost,
    secrets: &mut [Secret],
) -> kube::Result<()> {
    let Some(reference) = owner_reference(host) else {
        return Ok(());
    };
    for secret in secrets.iter_mut() {
        let mut refs = secret.metadata.owner_references.clone().unwrap_or_default();
        if refs.iter().any(|r| r.uid == reference.uid) {
            continue;
        }
        refs.push(reference.clone());
        let patch = json!({
            "metadata": {
                "resourceVersion": secret.resource_version(),
                "ownerReferences": refs,
            }
        });
        *secret = api
            .patch(
                &secret.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    Ok(())
}
