//! The generated callback certificate, parsed: what the agent's pinned-CA client relies on.

use beskar7::callback::tls::{self, GENERATED_TLS_SECRET, HOST_ANNOTATION};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::prelude::*;

use super::support::*;

/// rustls's WebPKI verifier with `ca_pem` as the only root: chain, signature, serverAuth, name.
fn verify(ca_pem: &str, leaf_der: &[u8], name: &str) -> Result<(), rustls::Error> {
    use rustls::client::danger::ServerCertVerifier;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(parse_pem(ca_pem))).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    verifier
        .verify_server_cert(
            &CertificateDer::from(leaf_der.to_vec()),
            &[],
            &rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap(),
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .map(|_| ())
}

fn parse_pem(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

async fn secret_pems(env: &Env) -> (String, String, Secret) {
    let s = Api::<Secret>::namespaced(env.client.clone(), OPERATOR_NS)
        .get(GENERATED_TLS_SECRET)
        .await
        .unwrap();
    let data = s.data.clone().unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    (text("tls.crt"), text("ca.crt"), s)
}

#[tokio::test]
async fn the_generated_leaf_is_a_backdated_server_cert_for_the_callback_ip_from_a_p256_ca() {
    let env = env().await;
    let (leaf_pem, ca_pem, secret) = secret_pems(&env).await;
    assert_eq!(
        ca_pem, env.tls.ca_pem,
        "beskar7.ca is the CA kept in the Secret"
    );
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.unwrap();
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(data.contains_key(key), "cert-manager layout: {key}");
    }

    let leaf_der = parse_pem(&leaf_pem);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    let bc = leaf.basic_constraints().unwrap().map(|b| b.value.ca);
    assert_ne!(bc, Some(true), "CA:FALSE");
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth);
    let sans = &leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert_eq!(sans.len(), 1);
    assert!(
        matches!(sans[0], GeneralName::IPAddress(ip) if *ip == [127u8, 0, 0, 1]),
        "{sans:?}"
    );
    let now = jiff::Timestamp::now().as_second();
    let not_before = leaf.validity().not_before.timestamp();
    assert!(
        (now - 24 * 3600 - 120..=now - 24 * 3600 + 120).contains(&not_before),
        "notBefore is backdated 24 h: {not_before} vs now {now}"
    );

    let ca_der = parse_pem(&ca_pem);
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    assert!(ca.basic_constraints().unwrap().unwrap().value.ca, "CA:TRUE");
    assert_eq!(leaf.issuer(), ca.subject());
    assert_eq!(
        ca.public_key()
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok()),
        Some(x509_parser::oid_registry::OID_EC_P256),
        "ECDSA P-256"
    );
    verify(&env.tls.ca_pem, &leaf_der, "127.0.0.1").expect("signed by the CA, for the callback IP");
}

#[tokio::test]
async fn restarts_and_replicas_reuse_the_ca_and_a_new_callback_host_gets_a_new_leaf() {
    let env = env().await;
    let now = jiff::Timestamp::now().as_second();
    let again = tls::load_or_create_generated(&env.client, OPERATOR_NS, &env.callback_url, now)
        .await
        .unwrap();
    assert_eq!(again.ca_pem, env.tls.ca_pem);
    let (leaf_before, _, _) = secret_pems(&env).await;

    let moved = tls::load_or_create_generated(
        &env.client,
        OPERATOR_NS,
        "https://beskar7.example.test:8082",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        moved.ca_pem, env.tls.ca_pem,
        "the CA handed out in boot scripts stays"
    );
    let (leaf_after, _, secret) = secret_pems(&env).await;
    assert_ne!(leaf_after, leaf_before);
    assert_eq!(
        secret.metadata.annotations.unwrap()[HOST_ANNOTATION],
        "beskar7.example.test"
    );
    let der = parse_pem(&leaf_after);
    let (_, leaf) = X509Certificate::from_der(&der).unwrap();
    let sans = &leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert!(matches!(
        sans[0],
        GeneralName::DNSName("beskar7.example.test")
    ));
    verify(&env.tls.ca_pem, &der, "beskar7.example.test")
        .expect("the new leaf is signed by the same CA");
    assert!(
        verify(&env.tls.ca_pem, &der, "127.0.0.1").is_err(),
        "and names only the new host"
    );
}

#[tokio::test]
async fn a_client_trusting_another_ca_is_refused() {
    let env = env().await;
    let other = tls::generate("127.0.0.1", jiff::Timestamp::now().as_second()).unwrap();
    let stranger = https_client(&other.ca_pem);
    assert!(
        stranger
            .get(format!("{}/boot.ipxe", env.callback_url))
            .send()
            .await
            .is_err()
    );
    assert_eq!(get(&env, "/boot.ipxe").await.0, 200);
}
