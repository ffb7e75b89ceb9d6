//! HTTP/1.1 on a byte stream: the request head, and the response (status, headers, a body sized
//! by `Content-Length`, chunked, or delimited by the end of the connection).

use std::io::{self, BufRead, Read};

/// Limits on what the server may send.
pub const MAX_HEAD: usize = 64 * 1024;
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A malformed or oversized response.
#[derive(Debug)]
pub enum WireError {
    Io(io::Error),
    Malformed(String),
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

fn malformed(what: impl Into<String>) -> WireError {
    WireError::Malformed(what.into())
}

/// An HTTP response. Its `Debug` shows the body's length, not the body (bootstrap data is secret).
pub struct Response {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The request head. The caller wipes it after writing (it carries the token).
pub fn request_head(
    method: &str,
    target: &str,
    host: &str,
    authorization: &str,
    body: Option<(&str, usize)>,
) -> String {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: beskar7-agent/{}\r\n\
         Accept: */*\r\nConnection: close\r\nAuthorization: {authorization}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    match body {
        Some((content_type, len)) => {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {len}\r\n"
            ));
        }
        None if method != "GET" => head.push_str("Content-Length: 0\r\n"),
        None => {}
    }
    head.push_str("\r\n");
    head
}

/// Reads one line ending in LF (CRLF or LF), without the line ending, counting against `budget`.
fn read_line(input: &mut impl BufRead, budget: &mut usize) -> Result<String, WireError> {
    let mut line = Vec::new();
    let limit = (*budget as u64).saturating_add(1);
    let n = input.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(WireError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    if line.last() != Some(&b'\n') {
        return Err(if n as u64 >= limit {
            malformed("response head too long")
        } else {
            WireError::Io(io::ErrorKind::UnexpectedEof.into())
        });
    }
    *budget = budget.saturating_sub(n);
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| malformed("non-UTF-8 response head"))
}

/// Reads a whole response.
pub fn read_response(input: &mut impl BufRead) -> Result<Response, WireError> {
    loop {
        let response = read_head(input)?;
        // Interim responses (100 Continue, 103 Early Hints) are skipped.
        if (100..200).contains(&response.status) {
            continue;
        }
        return read_body(input, response);
    }
}

/// Reads a response head, skipping interim (1xx) responses; the body is left in `input`.
pub fn read_final_head(input: &mut impl BufRead) -> Result<Response, WireError> {
    loop {
        let response = read_head(input)?;
        if !(100..200).contains(&response.status) {
            return Ok(response);
        }
    }
}

fn read_head(input: &mut impl BufRead) -> Result<Response, WireError> {
    let mut budget = MAX_HEAD;
    let status_line = read_line(input, &mut budget)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(malformed(format!(
            "bad status line {:?}",
            shorten(&status_line)
        )));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| malformed(format!("bad status code {code:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(input, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("bad header line {:?}", shorten(&line))))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Response {
        status,
        headers,
        body: Vec::new(),
    })
}

fn read_body(input: &mut impl BufRead, mut response: Response) -> Result<Response, WireError> {
    if response.status == 204 || response.status == 304 {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    response.body = if chunked {
        read_chunked(input)?
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| malformed(format!("bad Content-Length {:?}", shorten(len))))?;
        if len > MAX_BODY {
            return Err(malformed(format!(
                "response body of {len} bytes is too large"
            )));
        }
        let mut body = vec![0; len];
        input.read_exact(&mut body)?;
        body
    } else {
        read_limited(input, MAX_BODY)?
    };
    Ok(response)
}

fn read_limited(input: &mut impl Read, max: usize) -> Result<Vec<u8>, WireError> {
    let mut body = Vec::new();
    input.take(max as u64 + 1).read_to_end(&mut body)?;
    if body.len() > max {
        return Err(malformed("response body is too large"));
    }
    Ok(body)
}

fn read_chunked(input: &mut impl BufRead) -> Result<Vec<u8>, WireError> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD;
    loop {
        let line = read_line(input, &mut budget)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| malformed(format!("bad chunk size {:?}", shorten(&line))))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(input, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if size > MAX_BODY - body.len() {
            return Err(malformed("response body is too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        input.read_exact(&mut body[start..])?;
        if !read_line(input, &mut budget)?.is_empty() {
            return Err(malformed("chunk not followed by CRLF"));
        }
    }
}

/// The first 80 characters, for error messages.
pub fn shorten(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(80)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Response, WireError> {
        read_response(&mut io::BufReader::new(raw))
    }

    #[test]
    fn content_length_body() {
        let r = parse(b"HTTP/1.1 202 Accepted\r\nContent-Length: 21\r\nX-A: b\r\n\r\n{\"status\":\"accepted\"}trailing").unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(r.body, b"{\"status\":\"accepted\"}");
        assert_eq!(r.header("x-a"), Some("b"));
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabc\n\r\n1\r\n\0\r\n0\r\nX-T: 1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abc\n\0");
    }

    #[test]
    fn close_delimited_body_and_interim_responses() {
        let r = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 404 Not Found\n\nnot yet").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"not yet");
        let r = parse(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert!(r.body.is_empty());
    }

    #[test]
    fn malformed_responses_are_errors() {
        for raw in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Err(WireError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        for raw in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ] {
            assert!(matches!(parse(raw), Err(WireError::Io(_))));
        }
        let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(
            parse(long.as_bytes()),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn request_heads() {
        let head = request_head(
            "POST",
            "/a/b",
            "h:1",
            "Bearer t",
            Some(("application/json", 2)),
        );
        assert!(head.starts_with("POST /a/b HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(head.contains("Authorization: Bearer t\r\n"));
        assert!(head.ends_with("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"));
        let head = request_head("GET", "/x", "h", "Bearer t", None);
        assert!(!head.contains("Content-Length"));
        assert!(
            request_head("POST", "/x", "h", "Bearer t", None).contains("Content-Length: 0\r\n")
        );
    }
}
