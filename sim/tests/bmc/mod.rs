//! The simulated Redfish BMC, over loopback HTTP: what every client relies on, each persona's
//! quirks, real vendor mockups, and faults.

mod auth;
mod boot;
mod mockups;
mod personas;
mod power;

use beskar7_sim::bmc::{Bmc, BmcConfig, Persona};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A BMC serving on 127.0.0.1 and a client for it.
pub struct Target {
    pub bmc: Arc<Bmc>,
    pub base: String,
    pub http: reqwest::Client,
    /// A session token, for personas that refuse Basic auth.
    pub token: Option<String>,
}

pub async fn start(config: BmcConfig) -> Target {
    let bmc = Bmc::new(config).expect("BMC");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(bmc.clone().serve(listener, std::future::pending()));
    let http = crate::support::http_client(Duration::from_secs(5));
    let token = if bmc.quirks().basic_auth {
        None
    } else {
        let login = http
            .post(format!("{base}/redfish/v1/SessionService/Sessions"))
            .json(&serde_json::json!({"UserName": "admin", "Password": "password"}))
            .send()
            .await
            .unwrap();
        login
            .headers()
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Target {
        bmc,
        base,
        http,
        token,
    }
}

pub async fn persona(persona: Persona) -> Target {
    start(BmcConfig {
        persona,
        power_delay: Duration::ZERO,
        ..BmcConfig::default()
    })
    .await
}

/// The answer to one request: status, headers we look at, and the JSON body (Null if none).
pub struct Answer {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub location: Option<String>,
    pub token: Option<String>,
    pub body: Value,
}

impl Answer {
    /// The MessageId of a Redfish error body.
    pub fn message_id(&self) -> &str {
        self.body
            .pointer("/error/@Message.ExtendedInfo/0/MessageId")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

impl Target {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match &self.token {
            Some(token) => request.header("X-Auth-Token", token),
            None => request.basic_auth("admin", Some("password")),
        };
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("request")).await
    }

    /// A request authenticated with a session token only.
    pub async fn with_token(&self, method: Method, path: &str, token: &str) -> Answer {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", token);
        answer(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn system(&self) -> Value {
        let path = self.bmc.system_path();
        let answer = self.get(&path).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (status, etag, location, token) = (
        response.status(),
        header("etag"),
        header("location"),
        header("x-auth-token"),
    );
    let bytes = response.bytes().await.unwrap_or_default();
    Answer {
        status,
        etag,
        location,
        token,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}
