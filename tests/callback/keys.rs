//! The operator's own Secrets: the token key (created once, then reused by every replica) and a
//! user's TLS Secret in cert-manager layout (`--callback-tls-secret`).

use std::collections::BTreeMap;

use beskar7::callback::tls;
use beskar7::tokens::{TOKEN_KEY_FIELD, TOKEN_KEY_SECRET, TokenError, load_or_create_token_key};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};

use super::support::*;

#[tokio::test]
async fn the_token_key_is_created_once_and_reused() {
    let env = env().await;
    let first = load_or_create_token_key(&env.client, OPERATOR_NS)
        .await
        .unwrap();
    let again = load_or_create_token_key(&env.client, OPERATOR_NS)
        .await
        .unwrap();
    // Same key: the same attempt identity derives the same token on every replica.
    assert_eq!(
        first.secrets("uid", "attempt").token,
        again.secrets("uid", "attempt").token
    );
    let stored = Api::<Secret>::namespaced(env.client.clone(), OPERATOR_NS)
        .get(TOKEN_KEY_SECRET)
        .await
        .unwrap();
    assert_eq!(stored.data.unwrap()[TOKEN_KEY_FIELD].0.len(), 32);
    assert!(
        !format!("{first:?}").contains(char::is_numeric),
        "Debug shows no key bytes"
    );
}

#[tokio::test]
async fn a_short_token_key_is_an_error_that_says_what_to_do() {
    let env = env().await;
    Api::<Secret>::namespaced(env.client.clone(), OPERATOR_NS)
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some(TOKEN_KEY_SECRET.into()),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(
                    TOKEN_KEY_FIELD.to_string(),
                    ByteString(vec![1, 2, 3]),
                )])),
                ..Secret::default()
            },
        )
        .await
        .unwrap();
    let err = load_or_create_token_key(&env.client, OPERATOR_NS)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::BadKey { found: 3, .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("beskar7-token-key") && msg.contains("delete the Secret"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_cert_manager_secret_is_served_and_its_ca_rendered() {
    let env = env().await;
    let m = tls::generate("127.0.0.1", jiff::Timestamp::now().as_second()).unwrap();
    let secret = |with_ca: bool| {
        let mut data = BTreeMap::from([
            ("tls.crt".to_string(), ByteString(m.cert_pem.clone().into())),
            ("tls.key".to_string(), ByteString(m.key_pem.clone().into())),
        ]);
        if with_ca {
            data.insert("ca.crt".into(), ByteString(m.ca_pem.clone().into()));
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(if with_ca { "callback-tls" } else { "no-ca" }.into()),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(data),
            ..Secret::default()
        }
    };
    let api = Api::<Secret>::namespaced(env.client.clone(), OPERATOR_NS);
    api.create(&PostParams::default(), &secret(true))
        .await
        .unwrap();
    api.create(&PostParams::default(), &secret(false))
        .await
        .unwrap();

    let loaded = tls::load_tls_secret(&env.client, OPERATOR_NS, "callback-tls")
        .await
        .unwrap();
    assert_eq!(loaded.ca_pem, m.ca_pem);
    // It really serves: a client pinned to that CA completes a handshake.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    tokio::spawn(beskar7::callback::serve_https(
        listener,
        loaded.server_config.clone(),
        axum::Router::new().route("/", axum::routing::get(|| async { "ok" })),
        std::future::pending(),
    ));
    let r = https_client(&m.ca_pem).get(url).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");

    let err = tls::load_tls_secret(&env.client, OPERATOR_NS, "no-ca")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no-ca") && err.contains("ca.crt"), "{err}");
}
