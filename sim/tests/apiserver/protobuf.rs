//! Protobuf request bodies, as kubectl 1.33's `create` generators and Helm's Secret driver send
//! them (bodies captured from those clients, in sim/tests/fixtures/protobuf/).

use crate::support::{raw, raw_bytes, server};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/protobuf/",
            $name
        ))
        .as_slice()
    };
}

#[tokio::test]
async fn a_protobuf_secret_is_created_and_reads_back_as_json() {
    let (server, client) = server();
    // kubectl 1.33: create secret generic bmc-credentials --from-literal=username=admin
    //   --from-literal=password=x
    let (code, body) = raw_bytes(
        &server,
        "POST",
        SECRETS,
        PROTOBUF,
        fixture!("secret-generic.pb"),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["kind"], "Secret");
    assert_eq!(body["metadata"]["namespace"], "default");
    let secret = Api::<Secret>::default_namespaced(client)
        .get("bmc-credentials")
        .await
        .expect("stored");
    let data = secret.data.expect("data");
    assert_eq!(data["password"].0, b"x");
    assert_eq!(data["username"].0, b"admin");
    assert_eq!(
        secret.type_.as_deref(),
        Some("Opaque"),
        "defaulted as for JSON"
    );
}

#[tokio::test]
async fn helms_release_secret_is_created_updated_and_deleted_in_protobuf() {
    let (server, client) = server();
    let secrets = Api::<Secret>::default_namespaced(client);
    let name = "sh.helm.release.v1.demo.v1";
    let (code, body) = raw_bytes(
        &server,
        "POST",
        SECRETS,
        PROTOBUF,
        fixture!("helm-release-secret.pb"),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let created = secrets.get(name).await.expect("created");
    let labels = created.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["status"], "pending-install");
    assert_eq!(created.type_.as_deref(), Some("helm.sh/release.v1"));

    // Helm's update is an unconditional PUT (no resourceVersion) of the whole Secret.
    let uri = format!("{SECRETS}/{name}");
    let (code, body) = raw_bytes(
        &server,
        "PUT",
        &uri,
        PROTOBUF,
        fixture!("helm-release-secret-update.pb"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let updated = secrets.get(name).await.expect("updated");
    let labels = updated.metadata.labels.unwrap_or_default();
    assert_eq!(labels["status"], "deployed");
    assert!(
        !labels.contains_key("createdAt"),
        "the PUT replaced the labels"
    );
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );

    // client-go's typed Delete sends its (empty) DeleteOptions as protobuf too.
    let (code, body) = raw_bytes(
        &server,
        "DELETE",
        &uri,
        PROTOBUF,
        fixture!("delete-options-helm.pb"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "Success");
    assert!(secrets.get_opt(name).await.expect("read").is_none());
}

#[tokio::test]
async fn protobuf_delete_options_are_honoured() {
    let (server, client) = server();
    let (code, _) = raw_bytes(
        &server,
        "POST",
        SECRETS,
        PROTOBUF,
        fixture!("secret-generic.pb"),
    )
    .await;
    assert_eq!(code, 201);
    // DeleteOptions{preconditions: {uid: "not-it"}}, built as Go's marshaller writes it.
    let raw_options = [&[0x12, 0x08, 0x0a, 0x06][..], b"not-it"].concat();
    let type_meta = [&[0x0a, 0x02][..], b"v1", &[0x12, 0x0d], b"DeleteOptions"].concat();
    let body = [
        &b"k8s\x00"[..],
        &[0x0a, type_meta.len() as u8],
        &type_meta,
        &[0x12, raw_options.len() as u8],
        &raw_options,
    ]
    .concat();
    let uri = format!("{SECRETS}/bmc-credentials");
    let (code, status) = raw_bytes(&server, "DELETE", &uri, PROTOBUF, &body).await;
    assert_eq!(code, 409, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("the UID in the precondition (not-it)"),
        "{status}"
    );
    let secrets = Api::<Secret>::default_namespaced(client);
    assert!(secrets.get_opt("bmc-credentials").await.unwrap().is_some());
}

#[tokio::test]
async fn bad_protobuf_bodies_are_400_and_write_nothing() {
    let (server, client) = server();
    let generic = fixture!("secret-generic.pb");
    let mut unknown_field = generic.to_vec();
    // One more top-level Secret field, number 9 (varint 1): in the envelope's raw, whose length
    // byte must grow by two.
    let raw_len_at = 4 + 2 + generic[5] as usize + 1;
    unknown_field[raw_len_at] += 2;
    unknown_field.splice(raw_len_at + 1..raw_len_at + 1, [0x48, 0x01]);
    let cases: [(&[u8], &str); 4] = [
        (
            &generic[..generic.len() - 5],
            "the protobuf body of the object is malformed",
        ),
        (
            b"{\"kind\": \"Secret\"}",
            "does not start with the Kubernetes protobuf prefix",
        ),
        (
            &unknown_field,
            "the protobuf body of the Secret (v1) has field 9 of Secret",
        ),
        (
            // A ConfigMap body sent to the secrets collection: decoded, then refused as a JSON
            // body of the wrong kind would be.
            fixture!("configmap.pb"),
            "",
        ),
    ];
    for (body, why) in cases {
        let (code, status) = raw_bytes(&server, "POST", SECRETS, PROTOBUF, body).await;
        assert_eq!(code, 400, "{status}");
        assert_eq!(status["reason"], "BadRequest");
        let message = status["message"].as_str().unwrap();
        assert!(message.contains(why), "{message} lacks {why}");
    }
    let secrets = Api::<Secret>::default_namespaced(client.clone());
    assert!(
        secrets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let configmaps = Api::<ConfigMap>::default_namespaced(client);
    assert!(
        configmaps
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn kinds_without_a_table_stay_415() {
    let (server, _) = server();
    // coordination.k8s.io/v1 Lease: no client sends it as protobuf, so no table; not guessed at.
    let type_meta = [
        &[0x0a, 0x16][..],
        b"coordination.k8s.io/v1",
        &[0x12, 0x05],
        b"Lease",
    ]
    .concat();
    let body = [&b"k8s\x00"[..], &[0x0a, type_meta.len() as u8], &type_meta].concat();
    let (code, status) = raw_bytes(
        &server,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        PROTOBUF,
        &body,
    )
    .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    assert!(
        status["message"].as_str().unwrap().contains(PROTOBUF),
        "{status}"
    );
    // JSON still works on the same route.
    let (code, _) = raw(
        &server,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#,
    )
    .await;
    assert_eq!(code, 201);
}
