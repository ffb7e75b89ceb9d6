use super::*;
use serde_json::json;

#[tokio::test]
async fn the_service_root_is_open_and_everything_else_needs_credentials() {
    let t = persona(Persona::Generic).await;
    let root = answer(
        t.http
            .get(format!("{}/redfish/v1/", t.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(
        root.body["Links"]["Sessions"]["@odata.id"],
        "/redfish/v1/SessionService/Sessions"
    );
    let anonymous = answer(
        t.http
            .get(format!("{}/redfish/v1/Systems", t.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let wrong = answer(
        t.http
            .get(format!("{}/redfish/v1/Systems", t.base))
            .basic_auth("admin", Some("nope"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.get("/redfish/v1/Systems").await.status, StatusCode::OK);
}

async fn login(t: &Target, headers: &[(&str, &str)]) -> Answer {
    let mut request = t
        .http
        .post(format!("{}/redfish/v1/SessionService/Sessions", t.base))
        .json(&json!({"UserName": "admin", "Password": "password"}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.send().await.unwrap()).await
}

#[tokio::test]
async fn sessions_log_in_authenticate_and_log_out() {
    let t = persona(Persona::Generic).await;
    let session = login(&t, &[]).await;
    assert_eq!(session.status, StatusCode::CREATED);
    let (token, location) = (session.token.unwrap(), session.location.unwrap());
    assert_eq!(session.body["@odata.id"], location.as_str());
    let systems = t
        .with_token(Method::GET, "/redfish/v1/Systems", &token)
        .await;
    assert_eq!(systems.status, StatusCode::OK);
    assert_eq!(t.bmc.active_sessions(), 1);
    let bye = t.with_token(Method::DELETE, &location, &token).await;
    assert_eq!(bye.status, StatusCode::NO_CONTENT);
    assert_eq!(t.bmc.active_sessions(), 0);
    let after = t
        .with_token(Method::GET, "/redfish/v1/Systems", &token)
        .await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "a logged-out token is dead"
    );
    let records = t.bmc.requests();
    assert_eq!(records.iter().filter(|r| r.auth == "session").count(), 2);
}

#[tokio::test]
async fn expired_sessions_get_401_and_a_new_login_works() {
    let t = persona(Persona::Generic).await;
    let token = login(&t, &[]).await.token.unwrap();
    t.bmc.expire_sessions();
    let expired = t
        .with_token(Method::GET, "/redfish/v1/Systems", &token)
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&t, &[]).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn wrong_credentials_and_malformed_logins_are_refused() {
    let t = persona(Persona::Generic).await;
    let wrong = answer(
        t.http
            .post(format!("{}/redfish/v1/SessionService/Sessions", t.base))
            .json(&json!({"UserName": "admin", "Password": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let garbage = answer(
        t.http
            .post(format!("{}/redfish/v1/SessionService/Sessions", t.base))
            .body("{{{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (garbage.status, garbage.message_id()),
        (StatusCode::BAD_REQUEST, "Base.1.8.MalformedJSON")
    );
}

#[tokio::test]
async fn xcc_refuses_the_seventeenth_session_with_403() {
    let t = persona(Persona::Xcc).await;
    for _ in 0..16 {
        assert_eq!(login(&t, &[]).await.status, StatusCode::CREATED);
    }
    let refused = login(&t, &[]).await;
    assert_eq!(
        (refused.status, refused.message_id()),
        (StatusCode::FORBIDDEN, "Base.1.8.SessionLimitExceeded")
    );
    assert_eq!(t.bmc.max_sessions_seen(), 16);
}

#[tokio::test]
async fn idrac_refuses_basic_and_logins_carrying_basic_and_answers_an_absolute_location() {
    let t = persona(Persona::Idrac).await;
    let basic = answer(
        t.http
            .get(format!("{}/redfish/v1/Systems", t.base))
            .basic_auth("admin", Some("password"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (basic.status, basic.message_id()),
        (StatusCode::UNAUTHORIZED, "Base.1.18.AccessDenied")
    );
    let with_basic = login(&t, &[("Authorization", "Basic YWRtaW46cGFzc3dvcmQ=")]).await;
    assert_eq!(with_basic.status, StatusCode::BAD_REQUEST);
    let session = login(&t, &[]).await;
    assert!(
        session.location.unwrap().starts_with("https://"),
        "iDRAC answers an absolute Location"
    );
}

#[tokio::test]
async fn ami_answers_a_login_without_location() {
    let t = persona(Persona::Ami).await;
    let session = login(&t, &[]).await;
    assert_eq!(session.status, StatusCode::CREATED);
    assert!(session.location.is_none());
    assert!(
        session.body["@odata.id"]
            .as_str()
            .unwrap()
            .starts_with("/redfish/v1/SessionService/Sessions/")
    );
}
