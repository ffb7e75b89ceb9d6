//! A minimal blocking HTTPS/1.1 client over `std::net::TcpStream` and rustls (ring): one
//! connection per request (`Connection: close`), `Content-Length` request bodies, responses sized
//! by `Content-Length`, chunked or the end of the connection, timeouts on connect, on every read
//! and write and on the whole request. TLS trusts exactly the CA of `beskar7.ca` ([`tls`]).
//!
//! The bearer token goes into the `Authorization` header and nowhere else: the request head is
//! overwritten once written, and errors never carry it.

pub mod download;
pub mod tls;
pub mod wire;

use std::io::{self, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

pub use wire::Response;

use crate::Token;

/// The parts of `beskar7.api` a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host as written (an IPv6 literal without its brackets).
    pub host: String,
    pub port: u16,
    /// The path prefix requests are put under, without a trailing `/` (usually empty).
    pub base_path: String,
}

impl Endpoint {
    /// Parses `https://host[:port][/prefix]`.
    pub fn parse(api: &str) -> Result<Self, HttpError> {
        let bad = |why: &str| HttpError::Setup(format!("beskar7.api {api:?}: {why}"));
        let rest = api
            .strip_prefix("https://")
            .ok_or_else(|| bad("not an https:// URL"))?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err(bad("a query or fragment is not supported"));
        }
        let (host, port) = split_authority(authority, 443).map_err(bad)?;
        ServerName::try_from(host).map_err(|_| bad("the host is not a DNS name or IP address"))?;
        Ok(Self {
            host: host.to_string(),
            port,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The `Host` header value.
    fn authority(&self) -> String {
        host_header(&self.host, self.port, 443)
    }
}

/// Splits a URL's authority (`host`, `host:port`, `[v6]:port`) into host and port, the port
/// defaulting to `default_port`. `Err` says what is wrong, for the caller's message.
pub(crate) fn split_authority(
    authority: &str,
    default_port: u16,
) -> Result<(&str, u16), &'static str> {
    if authority.contains('@') {
        return Err("user information is not supported");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed [")?;
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| "bad IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse().ok().filter(|&p| p > 0).ok_or("bad port")?,
    };
    if host.is_empty() {
        return Err("no host");
    }
    Ok((host, port))
}

/// The `Host` header for `host` and `port`: IPv6 in brackets, the scheme's default port left out.
pub(crate) fn host_header(host: &str, port: u16, default_port: u16) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if port == default_port {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// Timeouts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP connection.
    pub connect: Duration,
    /// Each read or write (the TLS handshake included).
    pub io: Duration,
    /// The whole request, from connecting to the last byte of the response.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            io: Duration::from_secs(30),
            request: Duration::from_secs(120),
        }
    }
}

/// Why a request got no HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// `beskar7.api` or `beskar7.ca` is unusable (not retried).
    #[error("{0}")]
    Setup(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("no answer from {0} in time")]
    Timeout(String),
    /// The TLS handshake or session failed: a certificate not issued by `beskar7.ca`, a wrong
    /// name, no common protocol (not retried).
    #[error("TLS with {addr}: {source}")]
    Tls { addr: String, source: rustls::Error },
    #[error("connection to {addr} failed: {source}")]
    Io { addr: String, source: io::Error },
    #[error("bad HTTP response from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
}

impl HttpError {
    /// Whether trying again later may succeed (network trouble, not a refused certificate).
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Setup(_) | Self::Tls { .. })
    }
}

/// A client for one HTTPS endpoint.
#[derive(Debug, Clone)]
pub struct HttpsClient {
    config: Arc<ClientConfig>,
    endpoint: Endpoint,
    server_name: ServerName<'static>,
    /// Where to connect instead of resolving the host (tests; a resolver of our own later).
    connect_to: Option<SocketAddr>,
    pub timeouts: Timeouts,
}

impl HttpsClient {
    /// A client for `beskar7.api`, trusting exactly `ca_pem`.
    pub fn new(api: &str, ca_pem: &str, timeouts: Timeouts) -> Result<Self, HttpError> {
        let endpoint = Endpoint::parse(api)?;
        let config = tls::client_config(ca_pem).map_err(|e| HttpError::Setup(e.to_string()))?;
        let server_name = ServerName::try_from(endpoint.host.clone())
            .map_err(|e| HttpError::Setup(format!("beskar7.api: {e}")))?;
        Ok(Self {
            config,
            endpoint,
            server_name,
            connect_to: None,
            timeouts,
        })
    }

    /// Connects to `addr` whatever the host of `beskar7.api` resolves to (TLS still checks
    /// that name).
    pub fn connect_to(mut self, addr: Option<SocketAddr>) -> Self {
        self.connect_to = addr;
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn addresses(&self) -> Result<Vec<SocketAddr>, HttpError> {
        if let Some(addr) = self.connect_to {
            return Ok(vec![addr]);
        }
        if let Ok(ip) = self.endpoint.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.endpoint.port)]);
        }
        // A DNS name. std's resolver is getaddrinfo, which a static glibc binary cannot use
        // reliably (issue 6); the in-process resolver comes with the network bring-up, which
        // knows the DNS server. Until then only IP literals (or `connect_to`) work.
        Err(HttpError::Setup(format!(
            "beskar7.api names the host {:?}: resolving DNS names is not implemented yet; \
             use an IP address in --callback-url",
            self.endpoint.host
        )))
    }

    /// Sends one request to `path` (under the endpoint's prefix) and reads the whole response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: &Token,
        body: Option<(&str, &[u8])>,
    ) -> Result<Response, HttpError> {
        let deadline = Instant::now() + self.timeouts.request;
        let authority = self.endpoint.authority();
        let mut last = None;
        let mut tcp = None;
        for addr in self.addresses()? {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match TcpStream::connect_timeout(&addr, self.timeouts.connect.min(remaining)) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            let source = last.unwrap_or_else(|| io::Error::other("the name has no address"));
            if source.kind() == io::ErrorKind::TimedOut {
                HttpError::Timeout(authority.clone())
            } else {
                HttpError::Connect {
                    addr: authority.clone(),
                    source,
                }
            }
        })?;
        let _ = tcp.set_nodelay(true);
        let conn = ClientConnection::new(self.config.clone(), self.server_name.clone()).map_err(
            |source| HttpError::Tls {
                addr: authority.clone(),
                source,
            },
        )?;
        let mut stream = DeadlineStream {
            inner: StreamOwned::new(conn, tcp),
            deadline,
            io: self.timeouts.io,
        };
        let fail = |e: io::Error| classify(&authority, e);

        // Handshake first, so a refused certificate is reported as such.
        while stream.inner.conn.is_handshaking() {
            stream.arm().map_err(fail)?;
            let DeadlineStream { inner, .. } = &mut stream;
            inner.conn.complete_io(&mut inner.sock).map_err(fail)?;
        }

        let mut authorization = format!("Bearer {}", token.expose());
        let target = format!("{}{path}", self.endpoint.base_path);
        let head = wire::request_head(
            method,
            &target,
            &authority,
            &authorization,
            body.map(|(content_type, bytes)| (content_type, bytes.len())),
        );
        crate::wipe(std::mem::take(&mut authorization));
        let written = stream.write_all(head.as_bytes());
        crate::wipe(head);
        written.map_err(fail)?;
        if let Some((_, bytes)) = body {
            stream.write_all(bytes).map_err(fail)?;
        }
        stream.flush().map_err(fail)?;

        let mut reader = BufReader::new(stream);
        wire::read_response(&mut reader).map_err(|e| match e {
            wire::WireError::Io(e) => fail(e),
            wire::WireError::Malformed(reason) => HttpError::Protocol {
                addr: authority.clone(),
                reason,
            },
        })
    }
}

/// An I/O error → the error of a request.
pub(crate) fn classify(addr: &str, e: io::Error) -> HttpError {
    let addr = addr.to_string();
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return HttpError::Timeout(addr);
    }
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return HttpError::Tls {
            addr,
            source: tls.clone(),
        };
    }
    HttpError::Io { addr, source: e }
}

/// The TLS stream, with each read and write bounded by the I/O timeout and the request deadline.
struct DeadlineStream {
    inner: StreamOwned<ClientConnection, TcpStream>,
    deadline: Instant,
    io: Duration,
}

impl DeadlineStream {
    /// Sets the socket's timeouts for the next operation.
    fn arm(&mut self) -> io::Result<()> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let timeout = Some(self.io.min(remaining));
        self.inner.sock.set_read_timeout(timeout)?;
        self.inner.sock.set_write_timeout(timeout)
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        self.inner.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.arm()?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("https://10.0.0.1:8082").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base_path.as_str()),
            ("10.0.0.1", 8082, "")
        );
        assert_eq!(e.authority(), "10.0.0.1:8082");
        let e = Endpoint::parse("https://beskar7.example.com/prefix/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base_path.as_str()),
            ("beskar7.example.com", 443, "/prefix")
        );
        assert_eq!(e.authority(), "beskar7.example.com");
        let e = Endpoint::parse("https://[fd00::1]:8443").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("fd00::1", 8443));
        assert_eq!(e.authority(), "[fd00::1]:8443");
        for bad in [
            "http://10.0.0.1",
            "https://",
            "https://h:0",
            "https://h:x",
            "https://u@h",
            "https://[fd00::1",
            "https://h/x?y",
            "https://bad_name!",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
