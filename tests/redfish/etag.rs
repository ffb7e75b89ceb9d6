//! ETag / If-Match: weak → strong → none, 428, `-gzip`, empty tags, the opt-out.

use beskar7::redfish::{AuthMode, Bmc, RedfishClient};
use serde_json::json;

use super::mock::{Etag, MockBmc, Persona, dl325, empty, if_match_check, mockup, redfish_error};
use super::{DL325_SYS, INTEL_SYS, client, config};

fn if_matches(bmc: &MockBmc) -> Vec<Option<String>> {
    bmc.log()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.if_match.clone())
        .collect()
}

/// iLO: weak `@odata.etag` in the body (W/"1C210906" in the DL325 payload). A BMC that only
/// matches the strong form gets it on the second try.
#[tokio::test]
async fn weak_etag_from_the_body_then_strong() {
    let persona = Persona {
        weak_if_match_rejected: true,
        ..Persona::default()
    };
    let bmc = dl325(persona).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(
        if_matches(&bmc),
        vec![
            Some("W/\"1C210906\"".to_owned()),
            Some("\"1C210906\"".to_owned())
        ]
    );
}

/// Some BMCs reject every If-Match (even a correct one): strong, then none.
#[tokio::test]
async fn etag_rejected_then_no_if_match() {
    let persona = Persona {
        etag: Etag::Weak,
        ..Persona::default()
    }
    .hook(|_, r| {
        (r.method == "PATCH" && r.if_match.is_some())
            .then(|| redfish_error(412, "Base.1.8.PreconditionFailed", "nope"))
    });
    let bmc = dl325(persona).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    let tags = if_matches(&bmc);
    assert_eq!(tags.len(), 3, "{tags:?}");
    assert!(tags[0].as_deref().is_some_and(|t| t.starts_with("W/")));
    assert!(tags[1].as_deref().is_some_and(|t| t.starts_with('"')));
    assert_eq!(tags[2], None);
}

/// Lenovo TSM (AMI) / Fujitsu iRMC: every PATCH needs If-Match; the header ETag is sent.
#[tokio::test]
async fn if_match_from_the_etag_header() {
    let persona = Persona {
        etag: Etag::StrongHeader,
        require_if_match: true,
        ..Persona::default()
    };
    let bmc = MockBmc::start(mockup("Intel"), persona).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    let expected = bmc.state().strong_etag("__none__");
    assert_eq!(
        if_matches(&bmc),
        vec![Some(expected)],
        "one PATCH with the ETag"
    );
}

/// A BMC that requires If-Match but hands out no ETag: 428, then a fresh GET, then `*`.
#[tokio::test]
async fn precondition_required_without_an_etag() {
    let persona = Persona {
        etag: Etag::Stripped,
        require_if_match: true,
        ..Persona::default()
    };
    let bmc = MockBmc::start(mockup("Intel"), persona).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(if_matches(&bmc), vec![None, Some("*".to_owned())]);
}

/// iDRAC: a gzipped response turns the ETag into `"...-gzip"`; the suffix is stripped.
#[tokio::test]
async fn gzip_suffix_is_stripped() {
    let persona = Persona {
        etag: Etag::Stripped,
        ..Persona::default()
    }
    .hook(|s, r| {
        if r.is("GET", INTEL_SYS) {
            let body = s.tree[INTEL_SYS].to_string();
            return Some(axum::response::IntoResponse::into_response((
                [
                    ("content-type", "application/json"),
                    ("etag", "\"abc123-gzip\""),
                ],
                body,
            )));
        }
        if r.method == "PATCH" && r.if_match.as_deref() != Some("\"abc123\"") {
            return Some(redfish_error(
                412,
                "Base.1.8.PreconditionFailed",
                "mismatch",
            ));
        }
        if r.method == "PATCH" {
            let b = r.body.clone().unwrap_or_default();
            let boot = s.tree.get_mut(INTEL_SYS).expect("sys");
            for (k, v) in b["Boot"].as_object().cloned().unwrap_or_default() {
                boot["Boot"][k] = v;
            }
            return Some(empty(204));
        }
        None
    });
    let bmc = MockBmc::start(mockup("Intel"), persona).await;
    client(&bmc, AuthMode::Auto)
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(if_matches(&bmc), vec![Some("\"abc123\"".to_owned())]);
}

/// Empty ETags are ignored (no `If-Match: ""`).
#[tokio::test]
async fn empty_etag_is_ignored() {
    let mut tree = mockup("DL325");
    tree.get_mut(DL325_SYS).expect("sys")["@odata.etag"] = json!("");
    let persona = Persona::default().hook(|s, r| {
        if r.method == "PATCH" {
            return if_match_check(s, r, DL325_SYS).or_else(|| {
                r.if_match
                    .is_some()
                    .then(|| redfish_error(412, "Base.1.8.PreconditionFailed", "x"))
            });
        }
        None
    });
    let bmc = MockBmc::start(tree, persona).await;
    let err = client(&bmc, AuthMode::Auto).set_pxe_once(None).await;
    // The hook answers no PATCH itself when If-Match is absent, so the override applies.
    err.expect("pxe");
    assert_eq!(if_matches(&bmc), vec![None]);
}

/// The opt-out: no If-Match at all.
#[tokio::test]
async fn etag_match_can_be_disabled() {
    let bmc = dl325(Persona::default()).await;
    let mut cfg = config(&bmc.url(), AuthMode::Auto);
    cfg.policy.etag_match = false;
    RedfishClient::new(cfg)
        .expect("client")
        .set_pxe_once(None)
        .await
        .expect("pxe");
    assert_eq!(if_matches(&bmc), vec![None]);
}
