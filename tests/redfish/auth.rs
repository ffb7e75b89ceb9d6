//! Basic and session auth, auto mode, re-login, logout, idle-check costs, secrets.

use beskar7::redfish::{AuthMode, Bmc, BmcConfig, Credentials, RedfishClient, RedfishError};

use super::mock::{AuthSeen, Location, MockBmc, Persona, dl325, redfish_error};
use super::{DL325_SYS, client, config, fast_policy};

fn methods(bmc: &MockBmc) -> Vec<String> {
    bmc.log()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn idle_check_is_one_basic_get() {
    let bmc = dl325(Persona::default()).await;
    let c = client(&bmc, AuthMode::Auto);
    c.inventory().await.expect("inventory");
    bmc.clear_log();
    let snap = c.check().await.expect("check");
    assert_eq!(snap.path, DL325_SYS);
    let log = bmc.log();
    assert_eq!(methods(&bmc), vec![format!("GET {DL325_SYS}")]);
    assert_eq!(log[0].auth, AuthSeen::Basic);
    // And again: still one GET, no session.
    bmc.clear_log();
    c.check().await.expect("check");
    assert_eq!(bmc.log().len(), 1);
    assert_eq!(bmc.sessions().1, 0);
}

/// iDRAC10 ≥ 1.30.10.50: Basic "Unadvertised" → AccessDenied; only sessions work.
#[tokio::test]
async fn idle_check_is_login_get_logout_when_basic_is_refused() {
    let bmc = dl325(Persona {
        basic: false,
        ..Persona::default()
    })
    .await;
    let c = client(&bmc, AuthMode::Auto);
    c.inventory().await.expect("inventory over a session");
    bmc.clear_log();
    c.check()
        .await
        .expect("first check learns Basic is refused");
    let sessions = "/redfish/v1/SessionService/Sessions";
    assert_eq!(
        methods(&bmc),
        vec![
            format!("GET {DL325_SYS}"),
            format!("POST {sessions}"),
            format!("GET {DL325_SYS}"),
            format!("DELETE {sessions}/sess0002"),
        ]
    );
    bmc.clear_log();
    c.check().await.expect("check");
    assert_eq!(
        methods(&bmc),
        vec![
            format!("POST {sessions}"),
            format!("GET {DL325_SYS}"),
            format!("DELETE {sessions}/sess0003")
        ]
    );
    assert_eq!(bmc.sessions(), (3, 0));
}

#[tokio::test]
async fn session_mode_idle_check_is_login_get_logout() {
    let bmc = dl325(Persona::default()).await;
    let c = client(&bmc, AuthMode::Session);
    c.check().await.expect("discovering check");
    bmc.clear_log();
    c.check().await.expect("check");
    let log = bmc.log();
    assert_eq!(log.len(), 3, "{:?}", methods(&bmc));
    assert!(
        log[0].is("POST", "/Sessions") && log[1].is("GET", DL325_SYS) && log[2].method == "DELETE"
    );
    assert_eq!(log[1].auth, AuthSeen::Token);
    assert_eq!(bmc.sessions().1, 0);
}

/// sushy-emulator: no SessionService (404); auto falls back to Basic and remembers it.
#[tokio::test]
async fn auto_falls_back_to_basic_without_sessions() {
    let bmc = dl325(Persona {
        sessions: false,
        ..Persona::default()
    })
    .await;
    let c = client(&bmc, AuthMode::Auto);
    c.inventory().await.expect("inventory over Basic");
    assert!(bmc.log().iter().any(|r| r.is("POST", "/Sessions")));
    bmc.clear_log();
    c.inventory().await.expect("inventory");
    assert!(
        !bmc.log().iter().any(|r| r.is("POST", "/Sessions")),
        "not retried"
    );
    assert!(
        bmc.log()
            .iter()
            .filter(|r| r.path != "/redfish/v1/")
            .all(|r| r.auth == AuthSeen::Basic)
    );
    let err = client(&bmc, AuthMode::Session)
        .inventory()
        .await
        .expect_err("session only");
    assert_eq!(err.status(), Some(404), "{err}");
}

#[tokio::test]
async fn session_expiry_relogs_in_once() {
    let persona = Persona::default().hook(|s, r| {
        // The first authenticated system GET finds the session expired.
        if r.is("GET", DL325_SYS) && r.auth == AuthSeen::Token && s.bump("expired") == 1 {
            s.sessions.clear();
            return Some(redfish_error(
                401,
                "Base.1.8.NoValidSession",
                "session expired",
            ));
        }
        None
    });
    let bmc = dl325(persona).await;
    let inv = client(&bmc, AuthMode::Session)
        .inventory()
        .await
        .expect("inventory");
    assert_eq!(inv.snapshot.path, DL325_SYS);
    assert_eq!(bmc.sessions(), (2, 0), "re-logged in once, logged out");
}

#[tokio::test]
async fn persistent_401_is_not_a_loop() {
    let persona = Persona::default().hook(|_, r| {
        (r.is("GET", DL325_SYS) && r.auth == AuthSeen::Token)
            .then(|| redfish_error(401, "Base.1.8.InsufficientPrivilege", "no"))
    });
    let bmc = dl325(persona).await;
    let err = client(&bmc, AuthMode::Session)
        .inventory()
        .await
        .expect_err("401");
    assert!(matches!(err, RedfishError::AuthRejected { .. }), "{err}");
    assert!(
        err.to_string().contains("Base.1.8.InsufficientPrivilege"),
        "{err}"
    );
    let logins = bmc
        .log()
        .iter()
        .filter(|r| r.is("POST", "/Sessions"))
        .count();
    assert_eq!(logins, 2, "one login and one re-login");
    assert_eq!(bmc.sessions().1, 0, "the last session is logged out");
}

#[tokio::test]
async fn wrong_password_never_leaks() {
    let bmc = dl325(Persona::default()).await;
    let secret = "hunter2-s3cr3t";
    for auth in [AuthMode::Auto, AuthMode::Basic, AuthMode::Session] {
        let mut cfg = config(&bmc.url(), auth);
        cfg.credentials = Credentials::new("admin", secret);
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains(secret) && dbg.contains("redacted"), "{dbg}");
        let c = RedfishClient::new(cfg).expect("client");
        assert!(!format!("{c:?}").contains(secret));
        let err = c.inventory().await.expect_err("rejected");
        assert!(
            matches!(err, RedfishError::AuthRejected { .. }),
            "{auth:?}: {err}"
        );
        assert!(!err.to_string().contains(secret), "{err}");
        assert!(!format!("{err:?}").contains(secret), "{err:?}");
        assert!(!err.is_retryable());
    }
    // Nor session tokens: the mock's tokens start with "token-".
    let c = client(&bmc, AuthMode::Session);
    c.inventory().await.expect("inventory");
    assert!(!format!("{c:?} {:?}", c.discovery()).contains("token-"));
}

/// iDRAC9 rejects a session POST that also carries Basic.
#[tokio::test]
async fn login_carries_no_authorization_header() {
    let bmc = dl325(Persona {
        reject_auth_on_login: true,
        ..Persona::default()
    })
    .await;
    client(&bmc, AuthMode::Session)
        .inventory()
        .await
        .expect("inventory");
    let login = bmc
        .log()
        .into_iter()
        .find(|r| r.is("POST", "/Sessions"))
        .expect("login");
    assert_eq!(login.auth, AuthSeen::None);
}

/// Cisco CIMC: no Location on login; the session path comes from the body's @odata.id.
#[tokio::test]
async fn login_without_location_uses_odata_id() {
    let bmc = dl325(Persona {
        location: Location::Missing,
        ..Persona::default()
    })
    .await;
    client(&bmc, AuthMode::Session)
        .inventory()
        .await
        .expect("inventory");
    assert_eq!(bmc.sessions(), (1, 0), "DELETE found the session");
}

#[tokio::test]
async fn absolute_location_is_cut_to_its_path() {
    let bmc = dl325(Persona {
        location: Location::Absolute,
        ..Persona::default()
    })
    .await;
    client(&bmc, AuthMode::Session)
        .inventory()
        .await
        .expect("inventory");
    assert_eq!(bmc.sessions(), (1, 0));
    assert!(
        bmc.log()
            .iter()
            .any(|r| r.is("DELETE", "/redfish/v1/SessionService/Sessions/sess0001"))
    );
}

/// XCC / iLO: few session slots; SessionLimitExceeded (503 on XCC3) is a clear, retryable error,
/// and auto mode falls back to Basic.
#[tokio::test]
async fn session_limit() {
    let bmc = dl325(Persona {
        session_limit: 0,
        ..Persona::default()
    })
    .await;
    let err = client(&bmc, AuthMode::Session)
        .inventory()
        .await
        .expect_err("limit");
    assert!(
        matches!(err, RedfishError::SessionLimit { status: 503, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("SessionLimitExceeded"), "{err}");
    assert!(err.is_retryable());
    client(&bmc, AuthMode::Auto)
        .inventory()
        .await
        .expect("auto falls back to Basic");
}

/// Logout also on error paths: a failing operation leaves no session behind.
#[tokio::test]
async fn logout_always() {
    let persona = Persona::default().hook(|_, r| {
        (r.method == "PATCH").then(|| redfish_error(500, "Base.1.8.InternalError", "boom"))
    });
    let bmc = dl325(persona).await;
    let c = client(&bmc, AuthMode::Session);
    c.set_pxe_once(None).await.expect_err("500");
    c.clear_boot_override()
        .await
        .expect("already clear: no PATCH");
    c.set_power(beskar7::redfish::PowerAction::Off, None)
        .await
        .expect("off");
    c.inventory().await.expect("inventory");
    let (created, open) = bmc.sessions();
    assert_eq!((created, open), (4, 0));
}

/// A dropped (cancelled) operation still logs out, in the background.
#[tokio::test]
async fn cancelled_operation_logs_out() {
    let bmc = dl325(Persona {
        slow: Some((DL325_SYS, std::time::Duration::from_millis(400))),
        ..Persona::default()
    })
    .await;
    let c = client(&bmc, AuthMode::Session);
    let r = tokio::time::timeout(std::time::Duration::from_millis(100), c.inventory()).await;
    assert!(r.is_err(), "cancelled");
    for _ in 0..100 {
        if bmc.sessions() == (1, 0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("session left open: {:?}", bmc.sessions());
}

#[test]
fn config_debug_redacts() {
    let secret = "calvin-0xDEADBEEF";
    let mut cfg = BmcConfig::new("https://10.0.0.1", Credentials::new("root", secret));
    cfg.policy = fast_policy();
    let dbg = format!("{cfg:?} {:?}", cfg.credentials);
    assert!(!dbg.contains(secret), "{dbg}");
    assert!(matches!(
        RedfishClient::new(BmcConfig::new(
            "https://root:pw@10.0.0.1",
            Credentials::new("a", "b")
        )),
        Err(RedfishError::InvalidConfig(_))
    ));
}

/// iLO / XCC / Supermicro: a handful of session slots. With one slot, a run of operations
/// still works because no session outlives its operation.
#[tokio::test]
async fn one_session_slot_is_enough() {
    let bmc = dl325(Persona {
        session_limit: 1,
        ..Persona::default()
    })
    .await;
    let c = client(&bmc, AuthMode::Session);
    c.inventory().await.expect("inventory");
    c.set_pxe_once(None).await.expect("pxe");
    c.set_power(beskar7::redfish::PowerAction::Off, None)
        .await
        .expect("off");
    c.clear_boot_override().await.expect("clear");
    c.check().await.expect("check");
    assert_eq!(bmc.sessions(), (5, 0));
    assert_eq!(c.requests_sent(), bmc.log().len() as u64);
}
