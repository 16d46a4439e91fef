//! A minimal HTTP/1.1 client over a raw TCP stream, for the simulator's
//! unauthenticated `/sim/*` and public endpoints: enough for tests, and no
//! TLS stack or client crate to configure.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `METHOD path` to `addr` (`host:port`) with an empty body and
/// returns the response body of a 2xx answer.
///
/// # Errors
/// Connection failures, or a non-2xx status (as `io::ErrorKind::Other`).
pub async fn request(addr: &str, method: &str, path: &str) -> io::Result<String> {
    send(addr, method, path, "").await
}

/// `POST path` with a JSON body; returns the body of a 2xx answer.
///
/// # Errors
/// As [`request`].
pub async fn post_json(addr: &str, path: &str, json: &str) -> io::Result<String> {
    send(addr, "POST", path, json).await
}

async fn send(addr: &str, method: &str, path: &str, body: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("no HTTP header"))?;
    let status_ok = head
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    if !status_ok {
        return Err(io::Error::other(format!("HTTP error: {head}")));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_owned())
}

/// Decodes a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
