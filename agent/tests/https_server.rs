//! A scripted HTTPS server on 127.0.0.1:0 for the callback tests: a std thread, rustls with ring,
//! one connection at a time, the certificates of `tests/certs/` (see `generate.sh` there).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

pub fn cert_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/certs")
        .join(name)
}

pub fn read_cert(name: &str) -> String {
    std::fs::read_to_string(cert_path(name)).unwrap()
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answers a request with raw response bytes.
pub type Handler = Box<dyn FnMut(&Recorded) -> Vec<u8> + Send>;

pub struct TestServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// TCP connections accepted (handshakes attempted).
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A response with a `Content-Length` body.
pub fn response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A chunked response, one chunk per element of `chunks`.
pub fn chunked(status: u16, chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Answers with `responses` in turn, repeating the last one.
pub fn script(responses: Vec<Vec<u8>>) -> Handler {
    let mut i = 0;
    Box::new(move |_| {
        let r = responses[i.min(responses.len() - 1)].clone();
        i += 1;
        r
    })
}

impl TestServer {
    /// Serves with the leaf `<leaf>.pem` / `<leaf>-key.pem` of `tests/certs/`.
    pub fn start(leaf: &str, mut handler: Handler) -> Self {
        let chain = vec![CertificateDer::from_pem_file(cert_path(&format!("{leaf}.pem"))).unwrap()];
        let key = PrivateKeyDer::from_pem_file(cert_path(&format!("{leaf}-key.pem"))).unwrap();
        let config = Arc::new(
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, connections, stop) =
                (requests.clone(), connections.clone(), stop.clone());
            std::thread::spawn(move || {
                for tcp in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(tcp) = tcp else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let _ = serve(&config, tcp, &requests, &mut handler);
                }
            })
        };
        Self {
            addr,
            requests,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    config: &Arc<ServerConfig>,
    tcp: TcpStream,
    requests: &Mutex<Vec<Recorded>>,
    handler: &mut Handler,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let conn = ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
    let mut reader = BufReader::new(StreamOwned::new(conn, tcp));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut recorded = Recorded {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let len: usize = recorded
        .header("content-length")
        .map_or(0, |l| l.parse().unwrap());
    recorded.body = vec![0; len];
    reader.read_exact(&mut recorded.body)?;
    requests.lock().unwrap().push(recorded.clone());
    let answer = handler(&recorded);
    let stream = reader.get_mut();
    stream.write_all(&answer)?;
    stream.conn.send_close_notify();
    stream.flush()
}
