//! Error bodies, garbage payloads, 5xx, timeouts, refused connections.

use std::time::Duration;

use beskar7::redfish::{AuthMode, Bmc, RedfishClient, RedfishError};
use serde_json::json;

use super::mock::{Persona, dl325, respond};
use super::{DL325_SYS, client, config};

fn failing_get(status: u16, body: &'static str) -> Persona {
    Persona::default().hook(move |_, r| {
        r.is("GET", DL325_SYS).then(|| {
            axum::response::IntoResponse::into_response((
                axum::http::StatusCode::from_u16(status).expect("status"),
                [("content-type", "application/json")],
                body,
            ))
        })
    })
}

async fn inventory_err(p: Persona) -> RedfishError {
    let bmc = dl325(p).await;
    let err = client(&bmc, AuthMode::Auto)
        .inventory()
        .await
        .expect_err("error");
    assert_eq!(bmc.sessions().1, 0, "logged out");
    err
}

#[tokio::test]
async fn extended_info_array_reports_the_most_severe_message_id() {
    let body = r#"{"error":{"code":"Base.1.0.GeneralError","message":"see ext",
        "@Message.ExtendedInfo":[{"MessageId":"Base.1.0.PropertyUnknown","Message":"minor","Severity":"Warning"},
                                 {"MessageId":"Base.1.0.InternalError","Message":"the BMC broke","Severity":"Critical"}]}}"#;
    let err = inventory_err(failing_get(500, body)).await;
    let s = err.to_string();
    assert!(s.contains("500") && s.contains(DL325_SYS), "{s}");
    assert!(s.contains("Base.1.0.InternalError: the BMC broke"), "{s}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn extended_info_as_a_single_object() {
    let body = r#"{"error":{"code":"Base.1.0.GeneralError","message":"m",
        "@Message.ExtendedInfo":{"MessageId":"Base.1.0.ResourceCannotBeDeleted","Message":"single"}}}"#;
    let err = inventory_err(failing_get(400, body)).await;
    assert!(
        err.to_string()
            .contains("Base.1.0.ResourceCannotBeDeleted: single"),
        "{err}"
    );
}

/// iLO: entries with only a MessageId (and a 2017 iLO spelled it `MessageID`).
#[tokio::test]
async fn message_id_only_and_message_id_spelling() {
    let body = r#"{"error":{"code":"iLO.0.10.ExtendedInfo","@Message.ExtendedInfo":[{"MessageID":"iLO.0.10.InvalidOperationForSystemState"}]}}"#;
    let err = inventory_err(failing_get(400, body)).await;
    assert_eq!(
        err.message_id(),
        Some("iLO.0.10.InvalidOperationForSystemState"),
        "{err}"
    );
}

#[tokio::test]
async fn plain_text_and_empty_error_bodies() {
    let err = inventory_err(failing_get(400, "Invalid boot source override\n")).await;
    assert!(
        err.to_string()
            .ends_with("400 to GET /redfish/v1/Systems/1: Invalid boot source override"),
        "{err}"
    );
    let err = inventory_err(failing_get(503, "")).await;
    assert!(
        err.to_string().contains("503 to GET /redfish/v1/Systems/1"),
        "{err}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn garbage_payload_names_the_resource() {
    let err = inventory_err(failing_get(200, "<html>login page</html>")).await;
    assert!(matches!(err, RedfishError::InvalidPayload { .. }), "{err}");
    assert!(
        err.to_string().contains(DL325_SYS) && err.to_string().contains("not JSON"),
        "{err}"
    );
    // JSON of the wrong shape.
    let err = inventory_err(failing_get(200, r#"{"PowerState": 42}"#)).await;
    assert!(err.to_string().contains("unexpected shape"), "{err}");
    // A garbage service root.
    let persona = Persona::default()
        .hook(|_, r| (r.path == "/redfish/v1/").then(|| respond(200, json!("nope"))));
    let err = inventory_err(persona).await;
    assert!(err.to_string().contains("ServiceRoot"), "{err}");
}

#[tokio::test]
async fn request_timeout() {
    let bmc = dl325(Persona {
        delay: Some(Duration::from_secs(3)),
        ..Persona::default()
    })
    .await;
    let mut cfg = config(&bmc.url(), AuthMode::Auto);
    cfg.policy.request_timeout = Duration::from_millis(200);
    let err = RedfishClient::new(cfg)
        .expect("client")
        .check()
        .await
        .expect_err("timeout");
    assert!(matches!(err, RedfishError::Timeout { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.reason(), "BMCTimeout");
}

#[tokio::test]
async fn connection_refused() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let c = RedfishClient::new(config(&format!("http://127.0.0.1:{port}"), AuthMode::Auto))
        .expect("client");
    let err = c.inventory().await.expect_err("refused");
    assert!(matches!(err, RedfishError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

/// HPE Gen10 Plus: 406 NotAcceptable to `Accept-Encoding: identity`; retried without it.
#[tokio::test]
async fn not_acceptable_identity_encoding_is_retried_without_it() {
    let persona = Persona::default().hook(|_, r| {
        (r.accept_encoding.as_deref() == Some("identity")).then(|| {
            respond(
                406,
                json!({"error": {"code": "Base.1.8.GeneralError", "message": "NotAcceptable"}}),
            )
        })
    });
    let bmc = dl325(persona).await;
    client(&bmc, AuthMode::Auto)
        .inventory()
        .await
        .expect("inventory");
    let log = bmc.log();
    assert_eq!(log[0].accept_encoding.as_deref(), Some("identity"));
    assert!(log[1..].iter().all(|r| r.accept_encoding.is_none()));
}

#[tokio::test]
async fn invalid_addresses() {
    for a in ["ftp://host", "not a url", "https://user:pw@host"] {
        let err = RedfishClient::new(config(a, AuthMode::Auto)).expect_err(a);
        assert!(matches!(err, RedfishError::InvalidConfig(_)), "{a}: {err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
}
