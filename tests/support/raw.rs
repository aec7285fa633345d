//! Raw HTTP/1.1 over a TCP socket, for what an HTTP client library would normalise away:
//! header-name case and `_` spellings, request targets such as `//evil.com/x`, spoofed `Host`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response, read until the server closed the connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Every value of header `name` (case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).first().copied()
    }
}

/// Sends `method target` to 127.0.0.1:`port` with `headers` written exactly as given (a
/// `Host: 127.0.0.1:<port>` is added unless `headers` has one) and `Connection: close`.
/// Status 0 means the server closed the connection without an answer.
pub async fn request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(String, String)],
) -> RawResponse {
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the proxy");
    if stream.write_all(head.as_bytes()).await.is_err() {
        // The server closed the connection before reading it all (an oversized request).
        return RawResponse {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        };
    }
    let mut raw = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut raw),
    )
    .await;
    assert!(read.is_ok(), "the proxy did not answer {method} {target}");
    // A reset after a partial answer still leaves what was read.
    parse(&raw)
}

fn parse(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body,
    }
}
