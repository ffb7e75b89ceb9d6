//! Serving the routers: HTTPS through tokio-rustls (ring) and hyper's HTTP/1 connection, plain
//! HTTP for the boot listener, and the access log, which never shows a nonce or a token.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::Service;

/// A client that does not finish its TLS handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that does not send its request head in this time is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` over HTTPS on `listener` until `shutdown` completes. Connections already
/// accepted run to their end; new ones are no longer accepted.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    accept_loop(listener, shutdown, move |stream, peer| {
        let acceptor = acceptor.clone();
        let router = router.clone();
        async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_connection(tls, peer, router).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    })
    .await
}

/// Serves `router` over plain HTTP on `listener` until `shutdown` completes (the boot listener).
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    accept_loop(listener, shutdown, move |stream, peer| {
        serve_connection(stream, peer, router.clone())
    })
    .await
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    mut on_connection: F,
) -> std::io::Result<()>
where
    F: FnMut(tokio::net::TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(on_connection(stream, peer));
            }
            // Out of file descriptors and the like: wait a little instead of spinning.
            Err(e) => {
                tracing::warn!(error = %e, "callback listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection<S>(stream: S, peer: SocketAddr, router: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().call(request.map(axum::body::Body::new))
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "callback connection ended with an error");
    }
}

/// The path as logged: the nonce segment of `/api/v1/boot/...` and `/api/v1/config/...` (and
/// anything after it) replaced by `<redacted>`, at most 200 characters.
pub fn redact_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let secret_route = segments.len() > 6
        && segments[1] == "api"
        && segments[2] == "v1"
        && (segments[3] == "boot" || segments[3] == "config");
    let shown = if secret_route {
        format!("{}/<redacted>", segments[..6].join("/"))
    } else {
        path.to_owned()
    };
    shown.chars().take(200).collect()
}

/// One log line per request: method, redacted path, status, peer and duration. Never the query
/// string, a header or a body.
pub async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = redact_path(request.uri().path());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let start = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        target: "beskar7::callback::access",
        %method,
        %path,
        status = response.status().as_u16(),
        %peer,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "callback request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::redact_path;

    #[test]
    fn nonce_segments_are_redacted() {
        assert_eq!(
            redact_path("/api/v1/boot/ns/h/SECRET"),
            "/api/v1/boot/ns/h/<redacted>"
        );
        assert_eq!(
            redact_path("/api/v1/config/ns/h/SECRET/more"),
            "/api/v1/config/ns/h/<redacted>"
        );
        assert_eq!(
            redact_path("/api/v1/inspection/ns/h"),
            "/api/v1/inspection/ns/h"
        );
    }
}
