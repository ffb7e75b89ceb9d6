//! Streaming `GET` of `beskar7.target`: the body is handed out as a reader, never held whole
//! (images are gigabytes). `http://` or `https://`; HTTPS trusts only `beskar7.ca`, like the
//! callbacks (no system roots in the agent). The digest, not the transport, vouches for the bytes.
//!
//! Bodies sized by `Content-Length` (a short body is an error) or by the end of the connection;
//! chunked bodies and redirects are refused with a clear error (not implemented).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::{HttpError, classify, host_header, split_authority, tls, wire};

/// A parsed `http(s)://host[:port]/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// The request target: path and query, at least `/`.
    pub target: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = |why: &str| HttpError::Setup(format!("beskar7.target: {why}"));
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("not an http:// or https:// URL"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target
        };
        let (host, port) = split_authority(authority, default_port(https)).map_err(bad)?;
        Ok(Self {
            https,
            host: host.to_string(),
            port,
            target,
        })
    }

    fn authority(&self) -> String {
        host_header(&self.host, self.port, default_port(self.https))
    }
}

fn default_port(https: bool) -> u16 {
    if https { 443 } else { 80 }
}

/// An open download: the body as a reader.
pub struct Download {
    /// The `Content-Length`, when the server sent one.
    pub length: Option<u64>,
    body: Box<dyn Read + Send>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

/// Opens `url` with `GET`. `io_timeout` bounds connecting and each read (no bound on the whole
/// transfer). `connect_to` replaces name resolution (tests; IP literals need none).
pub fn get(
    url: &Url,
    ca_pem: &str,
    io_timeout: Duration,
    connect_to: Option<SocketAddr>,
) -> Result<Download, HttpError> {
    let authority = url.authority();
    let addr = match connect_to {
        Some(addr) => addr,
        None => match url.host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, url.port),
            Err(_) => {
                return Err(HttpError::Setup(format!(
                    "beskar7.target names the host {:?}: resolving DNS names is not \
                     implemented yet; use an IP address",
                    url.host
                )));
            }
        },
    };
    let tcp = TcpStream::connect_timeout(&addr, io_timeout).map_err(|source| {
        if source.kind() == io::ErrorKind::TimedOut {
            HttpError::Timeout(authority.clone())
        } else {
            HttpError::Connect {
                addr: authority.clone(),
                source,
            }
        }
    })?;
    let fail = |e: io::Error| classify(&authority, e);
    tcp.set_read_timeout(Some(io_timeout)).map_err(fail)?;
    tcp.set_write_timeout(Some(io_timeout)).map_err(fail)?;
    let mut stream: Box<dyn ReadWrite> = if url.https {
        let config = tls::client_config(ca_pem).map_err(|e| HttpError::Setup(e.to_string()))?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| HttpError::Setup(format!("beskar7.target: {e}")))?;
        let conn =
            ClientConnection::new(Arc::clone(&config), name).map_err(|source| HttpError::Tls {
                addr: authority.clone(),
                source,
            })?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).map_err(fail)?;
        }
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: beskar7-agent\r\n\
         Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
        url.target
    );
    stream.write_all(head.as_bytes()).map_err(fail)?;
    stream.flush().map_err(fail)?;

    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let response = wire::read_final_head(&mut reader).map_err(|e| match e {
        wire::WireError::Io(e) => fail(e),
        wire::WireError::Malformed(reason) => HttpError::Protocol {
            addr: authority.clone(),
            reason,
        },
    })?;
    let protocol = |reason: String| HttpError::Protocol {
        addr: authority.clone(),
        reason,
    };
    if response.status != 200 {
        return Err(protocol(format!(
            "GET of the target answered {} (want 200; redirects are not followed)",
            response.status
        )));
    }
    if response
        .header("transfer-encoding")
        .is_some_and(|te| !te.eq_ignore_ascii_case("identity"))
    {
        return Err(protocol(
            "the target is sent with a Transfer-Encoding (chunked); only Content-Length or \
             close-delimited bodies are supported"
                .into(),
        ));
    }
    let length = match response.header("content-length") {
        Some(len) => Some(
            len.parse::<u64>()
                .map_err(|_| protocol(format!("bad Content-Length {len:?}")))?,
        ),
        None => None,
    };
    let body: Box<dyn Read + Send> = match length {
        Some(len) => Box::new(Exact {
            inner: reader.take(len),
            left: len,
        }),
        None => Box::new(reader),
    };
    Ok(Download { length, body })
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// A body of known length: ending early is an error, not a short file.
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: BufRead> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the connection closed {} bytes before the end", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://10.0.0.5:8080/images/kairos.raw?x=1").unwrap();
        assert_eq!(
            u,
            Url {
                https: false,
                host: "10.0.0.5".into(),
                port: 8080,
                target: "/images/kairos.raw?x=1".into()
            }
        );
        assert_eq!(u.authority(), "10.0.0.5:8080");
        let u = Url::parse("https://[fd00::2]/t.tar.gz").unwrap();
        assert_eq!((u.https, u.port, u.host.as_str()), (true, 443, "fd00::2"));
        assert_eq!(u.authority(), "[fd00::2]");
        assert_eq!(Url::parse("http://h").unwrap().target, "/");
        for bad in ["ftp://h/x", "http://", "http://h:0/", "http://u@h/"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_short_body_is_an_error() {
        let data: &[u8] = b"abc";
        let mut r = Exact {
            inner: BufReader::new(data).take(5),
            left: 5,
        };
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("2 bytes before the end"), "{err}");
    }
}
