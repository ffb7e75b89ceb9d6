//! Starting the callback listeners (docs/callbacks.md): the token key, the TLS material, the
//! HTTPS callback listener and the optional plain-HTTP boot listener, all over the PhysicalHost
//! cache the controllers share.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use kube::runtime::reflector::Store;
use tokio::net::TcpListener;

use super::ManagerArgs;
use super::config::with_bound_port;
use crate::api::PhysicalHost;
use crate::callback::{self, CallbackConfig, CallbackState};
use crate::tokens::{self, TokenKey};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "--callback-url is required: the external https URL servers reach the callback listener at (e.g. https://beskar7.example.com:8082)"
    )]
    NoCallbackUrl,
    #[error("token key: {0}")]
    TokenKey(#[source] tokens::TokenError),
    #[error("callback TLS: {0}")]
    Tls(#[source] callback::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The bound listeners, ready to serve.
pub struct Listeners {
    https: TcpListener,
    boot: Option<TcpListener>,
    /// The callback URL with the bound port substituted for port 0.
    pub callback_url: String,
    pub boot_url: Option<String>,
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let bound = l
        .local_addr()
        .map_err(|source| Error::Listen { addr, source })?;
    Ok((l, bound))
}

/// Binds the listeners (before anything else, so a busy port fails the start at once) and
/// resolves the external URLs.
pub async fn bind_listeners(args: &ManagerArgs) -> Result<Listeners, Error> {
    let url = args.callback_url.as_deref().ok_or(Error::NoCallbackUrl)?;
    let (https, https_addr) = bind(args.callback_addr).await?;
    let callback_url = with_bound_port(url, https_addr.port());
    tracing::info!(addr = %https_addr, url = %callback_url, "serving the HTTPS callback listener");
    let (boot, boot_url) = match (args.boot_addr, args.boot_url.as_deref()) {
        (Some(addr), Some(url)) => {
            let (l, bound) = bind(addr).await?;
            let url = with_bound_port(url, bound.port());
            tracing::info!(addr = %bound, url = %url, "serving the plain-HTTP boot listener");
            (Some(l), Some(url))
        }
        _ => (None, None),
    };
    Ok(Listeners {
        https,
        boot,
        callback_url,
        boot_url,
    })
}

/// The installation's token key (created on first start).
pub async fn token_key(client: &kube::Client, args: &ManagerArgs) -> Result<TokenKey, Error> {
    tokens::load_or_create_token_key(client, &args.operator_namespace)
        .await
        .map_err(Error::TokenKey)
}

/// Serves both listeners until `shutdown()` completes (each gets its own copy of the signal).
pub async fn serve<F, Fut>(
    listeners: Listeners,
    client: kube::Client,
    hosts: Store<PhysicalHost>,
    key: TokenKey,
    args: &ManagerArgs,
    shutdown: F,
) -> Result<impl Future<Output = ()>, Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ns = &args.operator_namespace;
    let tls = match &args.callback_tls_secret {
        Some(name) => callback::tls::load_tls_secret(&client, ns, name).await,
        None => {
            callback::tls::load_or_create_generated(
                &client,
                ns,
                &listeners.callback_url,
                jiff::Timestamp::now().as_second(),
            )
            .await
        }
    }
    .map_err(Error::Tls)?;
    let mut config = CallbackConfig::new(&listeners.callback_url);
    config.boot_url = listeners.boot_url.clone();
    config.agent_timeout = args.deployment_timeout;
    config.clean_image_url = args.clean_image_url.clone();
    let state = CallbackState::new(Arc::new(hosts), client, &tls.ca_pem, key, config);
    let https = callback::serve_https(
        listeners.https,
        tls.server_config.clone(),
        callback::https_router(state.clone()),
        shutdown(),
    );
    let boot = listeners
        .boot
        .map(|l| callback::serve_http(l, callback::boot_router(state), shutdown()));
    Ok(async move {
        let boot = async move {
            match boot {
                Some(b) => b.await,
                None => Ok(()),
            }
        };
        let (h, b) = tokio::join!(https, boot);
        for (what, r) in [("callback", h), ("boot", b)] {
            if let Err(e) = r {
                tracing::warn!(listener = what, error = %e, "listener ended with an error");
            }
        }
    })
}
