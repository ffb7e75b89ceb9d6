//! HTTPS with a self-signed CA (PEMs under tests/redfish/certs/, made once with openssl,
//! valid for 100 years): rejected by default, accepted with the CA bundle or insecure-skip.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use beskar7::redfish::{AuthMode, Bmc, RedfishClient, RedfishError, TlsOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use super::mock::mockup;
use super::{DL325_SYS, config};

const CA: &[u8] = include_bytes!("certs/ca.pem");
const CERT: &[u8] = include_bytes!("certs/bmc.pem");
const KEY: &[u8] = include_bytes!("certs/bmc.key");

/// A minimal HTTPS BMC on a std thread (rustls is a dependency; tokio-rustls is not): one
/// GET per connection, answered from the tree, no auth.
fn serve_tls(tree: BTreeMap<String, Value>) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = vec![CertificateDer::from_pem_slice(CERT).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(KEY).expect("key");
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Ok(conn) = rustls::ServerConnection::new(cfg.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf);
            let Some(path) = head.split_whitespace().nth(1) else {
                continue;
            };
            let key = path.trim_end_matches('/');
            let (status, body) = match tree.get(key) {
                Some(v) => ("200 OK", v.to_string()),
                None => ("404 Not Found", "{}".to_owned()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(resp.as_bytes());
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    url
}

fn tls_client(url: &str, tls: TlsOptions) -> RedfishClient {
    let mut cfg = config(url, AuthMode::Basic);
    cfg.tls = tls;
    RedfishClient::new(cfg).expect("client")
}

#[tokio::test]
async fn self_signed_bmc_is_rejected_by_default() {
    let url = serve_tls(mockup("DL325"));
    let err = tls_client(&url, TlsOptions::SystemRoots)
        .inventory()
        .await
        .expect_err("untrusted");
    assert!(matches!(err, RedfishError::Tls { .. }), "{err}");
    assert_eq!(err.reason(), "TLSFailure");
}

#[tokio::test]
async fn accepted_with_the_ca_bundle() {
    let url = serve_tls(mockup("DL325"));
    let inv = tls_client(&url, TlsOptions::CaBundle(CA.to_vec()))
        .inventory()
        .await
        .expect("trusted");
    assert_eq!(inv.snapshot.path, DL325_SYS);
    // The wrong CA (the leaf itself is not a CA) is still rejected.
    let err = tls_client(&url, TlsOptions::CaBundle(CERT.to_vec()))
        .inventory()
        .await
        .expect_err("wrong CA");
    assert!(matches!(err, RedfishError::Tls { .. }), "{err}");
}

#[tokio::test]
async fn accepted_with_insecure_skip_verify() {
    let url = serve_tls(mockup("DL325"));
    let inv = tls_client(&url, TlsOptions::InsecureSkipVerify)
        .inventory()
        .await
        .expect("insecure");
    assert_eq!(inv.snapshot.path, DL325_SYS);
}

#[test]
fn a_bundle_without_certificates_is_a_config_error() {
    let mut cfg = config("https://127.0.0.1:1", AuthMode::Basic);
    cfg.tls = TlsOptions::CaBundle(b"not a pem".to_vec());
    assert!(matches!(
        RedfishClient::new(cfg),
        Err(RedfishError::InvalidConfig(_))
    ));
}
