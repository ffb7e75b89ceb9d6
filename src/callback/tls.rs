//! The callback listener's TLS material: a user's Secret in cert-manager layout
//! (`--callback-tls-secret`), or an operator-generated ECDSA P-256 CA and leaf kept in the Secret
//! `beskar7-callback-tls` of the operator namespace, so restarts and replicas serve the same CA
//! (the one rendered into `beskar7.ca` of boot scripts already handed out).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tokens::base64_standard;

/// The Secret the generated CA and leaf are kept in (operator namespace).
pub const GENERATED_TLS_SECRET: &str = "beskar7-callback-tls";
/// Annotation on the generated Secret: the callback host (DNS name or IP) the leaf was issued for.
pub const HOST_ANNOTATION: &str = "beskar7.io/callback-host";
/// Key of the generated CA's private key in the generated Secret (not part of cert-manager's
/// layout; kept so the leaf can be re-issued when the callback URL changes).
pub const CA_KEY_FIELD: &str = "ca.key";

const CA_COMMON_NAME: &str = "Beskar7 callback CA";
/// Servers with slow or reset clocks must still accept a fresh leaf (contract §2).
const BACKDATE_SECONDS: i64 = 24 * 3600;
/// The leaf lives long: the listener does not reload it, and the agent pins the CA anyway.
const LEAF_YEARS: i64 = 10;
const CA_YEARS: i64 = 20;

/// Errors while loading or generating the callback's TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the callback URL {0:?} has no host to issue a certificate for")]
    NoHost(String),
    #[error("cannot generate the callback certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("Secret {namespace}/{name} has no data.{key}")]
    MissingKey {
        namespace: String,
        name: String,
        key: &'static str,
    },
    #[error("Secret {namespace}/{name}: data.{key} is not usable: {reason}")]
    BadKey {
        namespace: String,
        name: String,
        key: &'static str,
        reason: String,
    },
    #[error("cannot build the TLS server configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error(
        "cannot read or write Secret {namespace}/{name}: {}",
        crate::kube_errors::describe(source)
    )]
    Kube {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// PEM texts in cert-manager's layout.
#[derive(Clone)]
pub struct TlsMaterial {
    /// `tls.crt`: the leaf (optionally followed by intermediates).
    pub cert_pem: String,
    /// `tls.key`: the leaf's private key.
    pub key_pem: String,
    /// `ca.crt`: the CA that issued the leaf; rendered into `beskar7.ca`.
    pub ca_pem: String,
    /// The CA's private key, only for the operator-generated CA.
    pub ca_key_pem: Option<String>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_pem", &self.ca_pem)
            .finish_non_exhaustive()
    }
}

/// What the callback listener serves with, and what boot scripts render.
#[derive(Clone)]
pub struct CallbackTls {
    pub server_config: Arc<rustls::ServerConfig>,
    /// The issuing CA's PEM.
    pub ca_pem: String,
}

impl CallbackTls {
    /// From PEM material: parses the chain and key and builds a rustls server configuration on
    /// the ring provider (HTTP/1.1 only: the agents speak nothing else).
    pub fn from_material(m: &TlsMaterial) -> Result<Self, TlsError> {
        let bad = |key: &'static str, reason: String| TlsError::BadKey {
            namespace: String::new(),
            name: String::new(),
            key,
            reason,
        };
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| bad("tls.crt", e.to_string()))?;
        if chain.is_empty() {
            return Err(bad("tls.crt", "no CERTIFICATE block".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(m.key_pem.as_bytes())
            .map_err(|e| bad("tls.key", e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(CallbackTls {
            server_config: Arc::new(config),
            ca_pem: m.ca_pem.clone(),
        })
    }

    /// `beskar7.ca`: base64 of the CA's PEM.
    pub fn ca_base64(&self) -> String {
        base64_standard(self.ca_pem.as_bytes())
    }
}

/// The host of a callback URL as a certificate names it (IPv6 brackets removed).
pub fn url_host(callback_url: &str) -> Result<String, TlsError> {
    let url =
        url::Url::parse(callback_url).map_err(|_| TlsError::NoHost(callback_url.to_owned()))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| TlsError::NoHost(callback_url.to_owned()))?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned())
}

fn time_at(ts: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ts).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn ca_params(now: i64) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "Beskar7");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = time_at(now - BACKDATE_SECONDS);
    p.not_after = time_at(now + CA_YEARS * 365 * 86400);
    p
}

fn issue_leaf(
    host: &str,
    issuer: &Issuer<'_, KeyPair>,
    now: i64,
) -> Result<(String, String), TlsError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, host);
    p.distinguished_name = dn;
    p.subject_alt_names = vec![match host.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(host.try_into()?),
    }];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = time_at(now - BACKDATE_SECONDS);
    p.not_after = time_at(now + LEAF_YEARS * 365 * 86400);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = p.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A new ECDSA P-256 CA and a leaf for `host` (CA:FALSE, serverAuth, one SAN: the DNS name or
/// IP address, `notBefore` backdated 24 h), at Unix time `now`.
pub fn generate(host: &str, now: i64) -> Result<TlsMaterial, TlsError> {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = ca_params(now);
    let ca_cert = params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(params, ca_key);
    let (cert_pem, key_pem) = issue_leaf(host, &issuer, now)?;
    Ok(TlsMaterial {
        cert_pem,
        key_pem,
        ca_pem: ca_cert.pem(),
        ca_key_pem: Some(ca_key_pem),
    })
}

/// A new leaf for `host` from an existing generated CA (the callback URL changed).
pub fn reissue_leaf(material: &TlsMaterial, host: &str, now: i64) -> Result<TlsMaterial, TlsError> {
    let ca_key_pem = material.ca_key_pem.as_deref().ok_or(TlsError::BadKey {
        namespace: String::new(),
        name: String::new(),
        key: CA_KEY_FIELD,
        reason: "absent".into(),
    })?;
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    // The issuer's name and key identifier come from these parameters and the key; they are the
    // same as when the CA certificate was made (its dates do not enter the leaf).
    let issuer = Issuer::new(ca_params(now), ca_key);
    let (cert_pem, key_pem) = issue_leaf(host, &issuer, now)?;
    Ok(TlsMaterial {
        cert_pem,
        key_pem,
        ..material.clone()
    })
}

fn field(secret: &Secret, ns: &str, name: &str, key: &'static str) -> Result<String, TlsError> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| TlsError::MissingKey {
            namespace: ns.into(),
            name: name.into(),
            key,
        })?;
    String::from_utf8(bytes.0.clone()).map_err(|_| TlsError::BadKey {
        namespace: ns.into(),
        name: name.into(),
        key,
        reason: "not UTF-8 PEM text".into(),
    })
}

fn name_errors(e: TlsError, ns: &str, name: &str) -> TlsError {
    match e {
        TlsError::BadKey { key, reason, .. } => TlsError::BadKey {
            namespace: ns.into(),
            name: name.into(),
            key,
            reason,
        },
        other => other,
    }
}

/// Loads a user-provided Secret in cert-manager layout (`tls.crt`, `tls.key`, `ca.crt`).
pub async fn load_tls_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<CallbackTls, TlsError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api.get(name).await.map_err(|source| TlsError::Kube {
        namespace: namespace.into(),
        name: name.into(),
        source,
    })?;
    let material = TlsMaterial {
        cert_pem: field(&secret, namespace, name, "tls.crt")?,
        key_pem: field(&secret, namespace, name, "tls.key")?,
        ca_pem: field(&secret, namespace, name, "ca.crt")?,
        ca_key_pem: None,
    };
    CallbackTls::from_material(&material).map_err(|e| name_errors(e, namespace, name))
}

fn to_secret(m: &TlsMaterial, namespace: &str, host: &str, rv: Option<String>) -> Secret {
    let mut data = BTreeMap::new();
    data.insert("tls.crt".to_string(), ByteString(m.cert_pem.clone().into()));
    data.insert("tls.key".to_string(), ByteString(m.key_pem.clone().into()));
    data.insert("ca.crt".to_string(), ByteString(m.ca_pem.clone().into()));
    if let Some(k) = &m.ca_key_pem {
        data.insert(CA_KEY_FIELD.to_string(), ByteString(k.clone().into()));
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(GENERATED_TLS_SECRET.into()),
            namespace: Some(namespace.into()),
            resource_version: rv,
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    "beskar7".to_string(),
                )]
                .into(),
            ),
            annotations: Some([(HOST_ANNOTATION.to_string(), host.to_string())].into()),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The operator-generated material for `callback_url`: read from Secret
/// [`GENERATED_TLS_SECRET`] in `namespace`, created when absent (create-if-absent; a replica that
/// loses the race reads the winner's), and its leaf re-issued from the same CA when the callback
/// URL's host changed. `now` is the Unix time.
pub async fn load_or_create_generated(
    client: &kube::Client,
    namespace: &str,
    callback_url: &str,
    now: i64,
) -> Result<CallbackTls, TlsError> {
    let host = url_host(callback_url)?;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let kube_err = |source| TlsError::Kube {
        namespace: namespace.into(),
        name: GENERATED_TLS_SECRET.into(),
        source,
    };
    // A few rounds: each loses only to another replica's successful write.
    for _ in 0..5 {
        let Some(secret) = api.get_opt(GENERATED_TLS_SECRET).await.map_err(kube_err)? else {
            let m = generate(&host, now)?;
            match api
                .create(
                    &PostParams::default(),
                    &to_secret(&m, namespace, &host, None),
                )
                .await
            {
                Ok(_) => return CallbackTls::from_material(&m),
                Err(kube::Error::Api(s)) if s.is_already_exists() => continue,
                Err(e) => return Err(kube_err(e)),
            }
        };
        let m = TlsMaterial {
            cert_pem: field(&secret, namespace, GENERATED_TLS_SECRET, "tls.crt")?,
            key_pem: field(&secret, namespace, GENERATED_TLS_SECRET, "tls.key")?,
            ca_pem: field(&secret, namespace, GENERATED_TLS_SECRET, "ca.crt")?,
            ca_key_pem: field(&secret, namespace, GENERATED_TLS_SECRET, CA_KEY_FIELD).ok(),
        };
        let issued_for = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(HOST_ANNOTATION));
        if issued_for == Some(&host) {
            return CallbackTls::from_material(&m)
                .map_err(|e| name_errors(e, namespace, GENERATED_TLS_SECRET));
        }
        let m = reissue_leaf(&m, &host, now)
            .map_err(|e| name_errors(e, namespace, GENERATED_TLS_SECRET))?;
        let updated = to_secret(
            &m,
            namespace,
            &host,
            secret.metadata.resource_version.clone(),
        );
        match api
            .replace(GENERATED_TLS_SECRET, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => return CallbackTls::from_material(&m),
            Err(kube::Error::Api(s)) if s.is_conflict() => continue,
            Err(e) => return Err(kube_err(e)),
        }
    }
    Err(kube_err(kube::Error::Api(Box::new(kube::core::Status {
        message: "the Secret kept changing while it was being read".into(),
        reason: "Conflict".into(),
        code: 409,
        ..kube::core::Status::default()
    }))))
}
