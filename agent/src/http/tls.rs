//! TLS pinned to exactly the CA of `beskar7.ca`, with the clock rule of issue 6.
//!
//! The server's clock may have been reset (a dead CMOS battery gives 1970 or 2000), so checking
//! the callback certificate's validity dates against it would lock such a server out. The
//! verifier here delegates everything to rustls's `WebPkiServerVerifier` built from that single
//! CA (chain, signatures, key usages, the name of `beskar7.api`) and only chooses the
//! *verification time*:
//!
//! 1. It verifies at the local clock.
//! 2. If that fails only because a certificate of the chain is not valid yet or has expired, the
//!    error carries that certificate's `notBefore` / `notAfter` (rustls's
//!    `CertificateError::NotValidYetContext` / `ExpiredContext`, taken from webpki); it verifies
//!    again at that instant, which is inside that certificate's window.
//! 3. It repeats this a few times (an intermediate's window may differ from the leaf's; webpki
//!    does not check the dates of the trust anchor itself). It succeeds when it reaches an instant
//!    at which every checked certificate is valid. Any other error (unknown issuer, wrong name, bad
//!    signature) is final, and so is a date error when the windows do not overlap or the search
//!    does not settle.
//!
//! So validity *dates* are ignored against this pinned CA, as the issue allows; everything else
//! is checked as usual. No x509 parser is needed: webpki reports the bounds itself. Only the
//! ring provider is used, built explicitly; no process-wide default is installed.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

/// How many times the verification time is moved before giving up.
const MAX_TIME_ADJUSTMENTS: usize = 4;

/// The CA of `beskar7.ca` could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("beskar7.ca: {0}")]
pub struct CaError(String);

/// The ring provider, built explicitly (never installed as the process default).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses the PEM of `beskar7.ca`: exactly one certificate, accepted as a trust anchor.
pub fn root_store(ca_pem: &str) -> Result<RootCertStore, CaError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| CaError(format!("not a PEM certificate: {e}")))?;
    let [ca] = <[_; 1]>::try_from(certs).map_err(|certs: Vec<_>| {
        CaError(format!(
            "expected exactly one certificate, found {}",
            certs.len()
        ))
    })?;
    let mut roots = RootCertStore::empty();
    roots
        .add(ca)
        .map_err(|e| CaError(format!("not a usable CA certificate: {e}")))?;
    Ok(roots)
}

/// A client configuration trusting only `ca_pem`, with the clock rule.
pub fn client_config(ca_pem: &str) -> Result<Arc<ClientConfig>, CaError> {
    let provider = provider();
    let verifier = PinnedCaVerifier::new(ca_pem, provider.clone())?;
    let config = ClientConfig::builder_with_details(provider, Arc::new(LocalClock))
        .with_safe_default_protocol_versions()
        .map_err(|e| CaError(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The local clock, without rustls's panic for a clock before 1970 (it says 1970 then).
#[derive(Debug)]
struct LocalClock;

impl TimeProvider for LocalClock {
    fn current_time(&self) -> Option<UnixTime> {
        let since = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Some(UnixTime::since_unix_epoch(since))
    }
}

/// Verifies against exactly one CA, choosing a verification time inside the chain's validity
/// windows (module documentation).
pub struct PinnedCaVerifier {
    inner: Arc<WebPkiServerVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for PinnedCaVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinnedCaVerifier")
    }
}

impl PinnedCaVerifier {
    pub fn new(ca_pem: &str, provider: Arc<CryptoProvider>) -> Result<Self, CaError> {
        let algorithms = provider.signature_verification_algorithms;
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(root_store(ca_pem)?), provider)
                .build()
                .map_err(|e| CaError(format!("TLS verifier: {e}")))?;
        Ok(Self { inner, algorithms })
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let mut tried = vec![now];
        let mut time = now;
        loop {
            let error = match self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                time,
            ) {
                Ok(verified) => return Ok(verified),
                Err(error) => error,
            };
            let next = match &error {
                Error::InvalidCertificate(CertificateError::NotValidYetContext {
                    not_before,
                    ..
                }) => *not_before,
                Error::InvalidCertificate(CertificateError::ExpiredContext {
                    not_after, ..
                }) => *not_after,
                // Not a date problem: that is the answer (an unknown issuer, a wrong name, …).
                _ => return Err(error),
            };
            if tried.contains(&next) || tried.len() > MAX_TIME_ADJUSTMENTS {
                // The windows do not overlap, or the search does not settle.
                return Err(error);
            }
            tried.push(next);
            time = next;
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = include_str!("../../tests/certs/ca.pem");
    const OTHER_CA: &str = include_str!("../../tests/certs/other-ca.pem");
    const LEAF: &str = include_str!("../../tests/certs/leaf.pem");
    const EXPIRED: &str = include_str!("../../tests/certs/expired.pem");
    const FUTURE: &str = include_str!("../../tests/certs/future.pem");
    const OTHER_LEAF: &str = include_str!("../../tests/certs/other-leaf.pem");

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    fn verify(ca: &str, leaf: &str, name: &str, time: UnixTime) -> Result<(), Error> {
        verify_chain(ca, leaf, &[], name, time)
    }

    fn verify_chain(
        ca: &str,
        leaf: &str,
        intermediates: &[&str],
        name: &str,
        time: UnixTime,
    ) -> Result<(), Error> {
        let verifier = PinnedCaVerifier::new(ca, provider()).unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        let intermediates: Vec<_> = intermediates.iter().map(|pem| der(pem)).collect();
        verifier
            .verify_server_cert(&der(leaf), &intermediates, &name, &[], time)
            .map(|_| ())
    }

    /// 2026-11-24, 1970-01-01, 2000-06-01 and 2500-01-01 as the server's clock.
    const CLOCKS: [u64; 4] = [1_795_564_800, 0, 959_817_600, 16_725_225_600];

    #[test]
    fn any_clock_accepts_a_certificate_of_the_pinned_ca() {
        for clock in CLOCKS {
            for leaf in [LEAF, EXPIRED, FUTURE] {
                verify(CA, leaf, "127.0.0.1", at(clock)).unwrap();
            }
            verify(CA, LEAF, "callback.beskar7.test", at(clock)).unwrap();
        }
    }

    #[test]
    fn without_the_rule_these_dates_are_refused() {
        // The fixtures mean something: rustls's own verifier refuses them at today's clock.
        let plain = WebPkiServerVerifier::builder_with_provider(
            Arc::new(root_store(CA).unwrap()),
            provider(),
        )
        .build()
        .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        for (leaf, clock) in [(EXPIRED, CLOCKS[0]), (FUTURE, CLOCKS[0]), (LEAF, 0)] {
            let err = plain
                .verify_server_cert(&der(leaf), &[], &name, &[], at(clock))
                .unwrap_err();
            assert!(is_date_error(&err), "{err:?}");
        }
    }

    /// The errors the verifier re-verifies on: a certificate outside its validity window.
    fn is_date_error(err: &Error) -> bool {
        matches!(
            err,
            Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
                    | CertificateError::NotValidYetContext { .. }
            )
        )
    }

    #[test]
    fn dates_on_the_bounds_are_inside() {
        // expired.pem: 2000-01-01 .. 2001-01-01.
        verify(CA, EXPIRED, "127.0.0.1", at(946_684_800)).unwrap();
        verify(CA, EXPIRED, "127.0.0.1", at(978_307_200)).unwrap();
    }

    #[test]
    fn a_chain_without_a_common_instant_is_refused() {
        // mid.pem is valid in 2000 only, its leaf orphan.pem from 2100 only.
        const MID: &str = include_str!("../../tests/certs/mid.pem");
        const ORPHAN: &str = include_str!("../../tests/certs/orphan.pem");
        for clock in CLOCKS {
            let err = verify_chain(CA, ORPHAN, &[MID], "127.0.0.1", at(clock)).unwrap_err();
            assert!(is_date_error(&err), "{err:?}");
        }
    }

    #[test]
    fn dates_are_the_only_thing_ignored() {
        for clock in CLOCKS {
            let err = verify(CA, OTHER_LEAF, "127.0.0.1", at(clock)).unwrap_err();
            assert_eq!(
                err,
                Error::InvalidCertificate(CertificateError::UnknownIssuer)
            );
            let err = verify(OTHER_CA, LEAF, "127.0.0.1", at(clock)).unwrap_err();
            assert_eq!(
                err,
                Error::InvalidCertificate(CertificateError::UnknownIssuer)
            );
            let err = verify(CA, LEAF, "other.beskar7.test", at(clock)).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn the_pem_must_hold_exactly_one_certificate() {
        assert!(root_store(CA).is_ok());
        let two = format!("{CA}{OTHER_CA}");
        assert!(root_store(&two).unwrap_err().0.contains("found 2"));
        assert!(root_store("-----BEGIN").unwrap_err().0.contains("found 0"));
        assert!(client_config("garbage").is_err());
    }
}
