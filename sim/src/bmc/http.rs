//! The HTTP front of a simulated BMC: latency, injected faults, the request log.

use super::service::{Reply, error};
use super::{Bmc, Fault, LOG_LIMIT, RequestRecord};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;

const MAX_BODY: usize = 1024 * 1024;

pub(super) fn router(bmc: Arc<Bmc>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(bmc)
}

async fn handle(State(bmc): State<Arc<Bmc>>, request: Request) -> Response {
    if bmc.config.latency > Duration::ZERO {
        tokio::time::sleep(bmc.config.latency).await;
    }
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let fault = bmc.lock().faults.pop_front();
    let (reply, auth) = match fault {
        Some(Fault::Hang) => {
            // Long enough for any client timeout; the connection just stays silent.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (
                error(504, "Base.1.8.GeneralError", "timed out"),
                super::service::Auth::None,
            )
        }
        Some(Fault::ServerError) => (
            error(
                500,
                "Base.1.8.InternalError",
                "The request failed due to an internal service error.",
            ),
            super::service::Auth::None,
        ),
        Some(Fault::Unavailable) => (
            error(
                503,
                "Base.1.8.ServiceTemporarilyUnavailable",
                "The service is temporarily unavailable.",
            )
            .with_header("Retry-After", "1"),
            super::service::Auth::None,
        ),
        Some(Fault::Garbage) => {
            record(&bmc, &method, &path, "none", 200);
            return raw(
                200,
                "<html><body>502 Proxy Error: upstream reset</body></html>\0\u{1}{{{",
            );
        }
        None => match to_bytes(body, MAX_BODY).await {
            Ok(bytes) => bmc.handle(&method, &path, &parts.headers, &bytes),
            Err(_) => (
                error(
                    413,
                    "Base.1.8.GeneralError",
                    "The request body is too large.",
                ),
                super::service::Auth::None,
            ),
        },
    };
    record(&bmc, &method, &path, auth.as_str(), reply.status);
    respond(reply)
}

fn record(bmc: &Bmc, method: &str, path: &str, auth: &'static str, status: u16) {
    let mut state = bmc.lock();
    if state.log.len() >= LOG_LIMIT {
        state.log.pop_front();
    }
    state.log.push_back(RequestRecord {
        method: method.to_string(),
        path: path.to_string(),
        auth,
        status,
    });
}

fn raw(status: u16, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn respond(reply: Reply) -> Response {
    let body = match &reply.body {
        Some(v) => Body::from(serde_json::to_vec(v).expect("JSON values always serialize")),
        None => Body::empty(),
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if reply.body.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}
