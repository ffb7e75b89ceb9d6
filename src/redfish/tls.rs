//! The rustls configuration for one BMC: ring provider, chosen explicitly (no process-wide
//! default provider), verification by default.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::config::TlsOptions;
use super::error::{RedfishError, Result};

/// Where distributions keep their CA bundle (as rustls-native-certs and Go look).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

pub(crate) fn client_config(opts: &TlsOptions) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RedfishError::InvalidConfig(format!("TLS: {e}")))?;
    let config = match opts {
        TlsOptions::InsecureSkipVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        TlsOptions::CaBundle(pem) => {
            let roots = roots_from_pem(pem)?;
            if roots.is_empty() {
                return Err(RedfishError::InvalidConfig(
                    "the CA bundle contains no PEM certificate".into(),
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsOptions::SystemRoots => builder
            .with_root_certificates(system_roots())
            .with_no_client_auth(),
    };
    Ok(config)
}

fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| RedfishError::InvalidConfig(format!("CA bundle: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| RedfishError::InvalidConfig(format!("CA bundle: {e}")))?;
    }
    Ok(roots)
}

/// The system roots, read once per process.
fn system_roots() -> RootCertStore {
    static ROOTS: std::sync::OnceLock<RootCertStore> = std::sync::OnceLock::new();
    ROOTS.get_or_init(read_system_roots).clone()
}

fn read_system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let paths = env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from));
    for path in paths {
        if let Ok(pem) = std::fs::read(&path) {
            let certs = CertificateDer::pem_slice_iter(&pem).filter_map(|c| c.ok());
            let (added, _) = roots.add_parsable_certificates(certs);
            if added > 0 {
                break;
            }
        }
    }
    roots
}

/// `insecureSkipVerify`: any certificate chain is accepted, but the handshake signature is
/// still checked so the peer holds the key of the certificate it presented.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
