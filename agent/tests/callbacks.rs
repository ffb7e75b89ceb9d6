//! The callback client against scripted HTTPS servers on 127.0.0.1: TLS pinned to `beskar7.ca`,
//! the clock rule, the contract's calls and their retry rules.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use base64::Engine as _;
use beskar7_agent::callbacks::{CallbackError, Callbacks, Settings};
use beskar7_agent::cmdline::{self, BootParams};
use beskar7_agent::http::{HttpError, Timeouts};
use beskar7_agent::report::InspectionReport;

use crate::https_server::{Handler, TestServer, chunked, read_cert, response, script};

const TOKEN: &str = "tOkEn_0123456789abcdefghijklmnopqrstuvwxyzAB";

pub fn params(api: &str, ca: &str) -> BootParams {
    let ca = base64::engine::general_purpose::STANDARD.encode(read_cert(ca));
    cmdline::parse(&format!(
        "beskar7.api={api} beskar7.namespace=ns beskar7.host=h1 beskar7.token={TOKEN} \
         beskar7.ca={ca} beskar7.timeout=600 beskar7.mode=clean"
    ))
    .unwrap()
}

/// Short timeouts and backoff, a budget of `budget`.
fn settings(budget: Duration) -> Settings {
    Settings {
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            io: Duration::from_millis(300),
            request: Duration::from_secs(2),
        },
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        budget,
        connect_to: None,
    }
}

fn callbacks_for(server: &TestServer) -> Callbacks {
    Callbacks::new(
        &params(&format!("https://{}", server.addr), "ca.pem"),
        settings(Duration::from_secs(10)),
    )
    .unwrap()
}

fn serve(leaf: &str, handler: Handler) -> (TestServer, Callbacks) {
    let server = TestServer::start(leaf, handler);
    let callbacks = callbacks_for(&server);
    (server, callbacks)
}

fn assert_no_token(error: &CallbackError) {
    assert!(!error.to_string().contains(TOKEN), "{error}");
    assert!(!format!("{error:?}").contains(TOKEN), "{error:?}");
}

fn report() -> InspectionReport {
    InspectionReport {
        manufacturer: Some("Beskar7 Labs".into()),
        serial_number: Some("SN-1".into()),
        ..InspectionReport::default()
    }
}

#[test]
fn the_report_is_posted_and_accepted() {
    let (server, callbacks) = serve(
        "leaf",
        script(vec![response(202, br#"{"status":"accepted"}"#)]),
    );
    callbacks.post_report(&report()).unwrap();
    let [request] = <[_; 1]>::try_from(server.requests()).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/v1/inspection/ns/h1");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        request.header("host"),
        Some(server.addr.to_string().as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let sent: InspectionReport = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(sent, report());
    assert!(format!("{callbacks:?}").contains("redacted"));
    assert!(!format!("{callbacks:?}").contains(TOKEN));
}

#[test]
fn bootstrap_is_polled_through_404s_until_it_comes_byte_for_byte() {
    let data: Vec<u8> = b"#cloud-config\r\nprovider-id: b7://ns/h1/m1\n\0\xff\xfe end"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(100_000))
        .collect();
    let (server, callbacks) = serve(
        "leaf",
        script(vec![
            response(404, b"not found"),
            response(404, b"not found"),
            response(503, b"busy"),
            response(404, b""),
            response(200, &data),
        ]),
    );
    let got = callbacks.fetch_bootstrap().unwrap();
    assert_eq!(got.expose(), &data[..]);
    assert!(!format!("{got:?}").contains("cloud-config"));
    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    for r in &requests {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/api/v1/bootstrap/ns/h1")
        );
        assert!(r.body.is_empty());
    }
}

#[test]
fn chunked_responses_are_read() {
    let (_server, callbacks) = serve(
        "leaf",
        script(vec![chunked(
            200,
            &[b"first ", b"\r\n", &[0u8; 70_000], b"last"],
        )]),
    );
    let got = callbacks.fetch_bootstrap().unwrap();
    let mut want = b"first \r\n".to_vec();
    want.extend_from_slice(&[0u8; 70_000]);
    want.extend_from_slice(b"last");
    assert_eq!(got.expose(), &want[..]);
}

#[test]
fn unauthorized_stops_at_once_without_showing_the_token() {
    for status in [401, 403] {
        let (server, callbacks) = serve(
            "leaf",
            script(vec![response(
                status,
                format!("bad token {TOKEN}").as_bytes(),
            )]),
        );
        let error = callbacks.fetch_bootstrap().unwrap_err();
        assert!(
            matches!(error, CallbackError::Unauthorized { status: s, .. } if s == status),
            "{error:?}"
        );
        assert!(error.to_string().contains("refused the token"), "{error}");
        assert_no_token(&error);
        assert_eq!(server.requests().len(), 1, "401/403 is not retried");
    }
}

#[test]
fn other_4xx_are_final_and_quoted_without_the_token() {
    let (server, callbacks) = serve(
        "leaf",
        script(vec![response(
            400,
            format!("malformed JSON near {TOKEN}\n").as_bytes(),
        )]),
    );
    let error = callbacks
        .provision_failed("digest mismatch\nat byte 7")
        .unwrap_err();
    assert!(
        matches!(&error, CallbackError::Rejected { status: 400, message, .. }
            if message.contains("malformed JSON near <redacted>")),
        "{error:?}"
    );
    assert_no_token(&error);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/api/v1/provision-failed/ns/h1");
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"reason": "digest mismatch\nat byte 7"})
    );
}

#[test]
fn server_errors_are_retried() {
    let (server, callbacks) = serve(
        "leaf",
        script(vec![
            response(500, b"oops"),
            response(503, b""),
            response(502, b""),
            response(202, b"{}"),
        ]),
    );
    callbacks.provisioned().unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/api/v1/provisioned/ns/h1")
    );
}

#[test]
fn cleaned_is_posted() {
    let (server, callbacks) = serve("leaf", script(vec![response(202, b"")]));
    callbacks.cleaned().unwrap();
    assert_eq!(server.requests()[0].path, "/api/v1/cleaned/ns/h1");
}

#[test]
fn a_certificate_from_another_ca_is_refused_at_once() {
    let (server, callbacks) = serve("other-leaf", script(vec![response(202, b"")]));
    let error = callbacks.post_report(&report()).unwrap_err();
    let CallbackError::Failed {
        source: HttpError::Tls { source, .. },
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        *source,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    );
    assert_no_token(&error);
    assert!(server.requests().is_empty());
    assert_eq!(
        server.connections(),
        1,
        "a refused certificate is not retried"
    );

    // Trusting the other CA instead is not enough for our own leaf either.
    let (server, _) = serve("leaf", script(vec![response(202, b"")]));
    let callbacks = Callbacks::new(
        &params(&format!("https://{}", server.addr), "other-ca.pem"),
        settings(Duration::from_secs(10)),
    )
    .unwrap();
    assert!(callbacks.cleaned().is_err());
    assert!(server.requests().is_empty());
}

#[test]
fn certificates_outside_their_dates_are_accepted_from_the_pinned_ca() {
    // The clock rule: a server whose clock was reset sees the operator's leaf as expired or not
    // yet valid. These leaves are, against the real clock.
    for leaf in ["expired", "future"] {
        let (server, callbacks) = serve(leaf, script(vec![response(202, b"")]));
        callbacks.cleaned().unwrap();
        assert_eq!(server.requests().len(), 1, "{leaf}");
    }
}

#[test]
fn a_dns_name_is_checked_against_the_certificate() {
    let server = TestServer::start("leaf", script(vec![response(202, b"")]));
    let port = server.addr.port();
    let with_name = |name: &str| {
        Callbacks::new(
            &params(&format!("https://{name}:{port}/"), "ca.pem"),
            Settings {
                connect_to: Some(server.addr),
                ..settings(Duration::from_secs(10))
            },
        )
        .unwrap()
    };
    with_name("callback.beskar7.test").cleaned().unwrap();
    assert_eq!(
        server.requests()[0].header("host"),
        Some(format!("callback.beskar7.test:{port}").as_str())
    );
    let error = with_name("other.beskar7.test").cleaned().unwrap_err();
    assert!(
        matches!(
            &error,
            CallbackError::Failed {
                source: HttpError::Tls {
                    source: rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForNameContext { .. }
                    ),
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn silence_times_out_within_the_budget() {
    // A listener that accepts (the kernel completes the TCP handshake) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let callbacks = Callbacks::new(
        &params(&format!("https://{addr}"), "ca.pem"),
        settings(Duration::from_millis(1500)),
    )
    .unwrap();
    let started = Instant::now();
    let error = callbacks.post_report(&report()).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&error, CallbackError::GaveUp { last, attempts, .. }
            if last.contains("no answer") && *attempts >= 2),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    drop(listener);
}

#[test]
fn refused_connections_are_retried_until_the_budget_is_spent() {
    let addr: SocketAddr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let callbacks = Callbacks::new(
        &params(&format!("https://{addr}"), "ca.pem"),
        settings(Duration::from_millis(300)),
    )
    .unwrap();
    let started = Instant::now();
    let error = callbacks.cleaned().unwrap_err();
    assert!(
        matches!(&error, CallbackError::GaveUp { last, attempts, .. }
            if last.contains("cannot connect") && *attempts >= 3),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn bootstrap_polling_is_bounded_by_the_budget() {
    let (server, _) = serve("leaf", script(vec![response(404, b"")]));
    let callbacks = Callbacks::new(
        &params(&format!("https://{}", server.addr), "ca.pem"),
        settings(Duration::from_millis(500)),
    )
    .unwrap();
    let started = Instant::now();
    let error = callbacks.fetch_bootstrap().unwrap_err();
    assert!(
        matches!(&error, CallbackError::GaveUp { last, .. } if last.contains("404")),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(server.requests().len() >= 3);
}

#[test]
fn a_bad_ca_is_a_setup_error() {
    let mut p = params("https://127.0.0.1:1", "ca.pem");
    p.ca_pem = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".into();
    let error = Callbacks::new(&p, Settings::default()).unwrap_err();
    assert!(
        matches!(&error, CallbackError::Setup(m) if m.contains("beskar7.ca")),
        "{error:?}"
    );
}

#[test]
fn the_budget_comes_from_beskar7_timeout() {
    let p = params("https://127.0.0.1:1", "ca.pem");
    assert_eq!(Settings::for_params(&p).budget, Duration::from_secs(600));
}

#[test]
fn a_dns_name_without_an_address_is_refused_at_once() {
    let callbacks = Callbacks::new(
        &params("https://callback.beskar7.test:8082", "ca.pem"),
        settings(Duration::from_secs(30)),
    )
    .unwrap();
    let started = Instant::now();
    let error = callbacks.cleaned().unwrap_err();
    assert!(
        matches!(&error, CallbackError::Failed { source: HttpError::Setup(m), .. }
            if m.contains("resolving DNS names is not implemented yet")),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}
