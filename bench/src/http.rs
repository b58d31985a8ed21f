//! A minimal HTTP/1.1 GET for the end-to-end timings: one connection per
//! request (`Connection: close`), body read to EOF, chunked bodies decoded.
//! Small on purpose: a client library would add its own costs to the numbers.
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    ops::Range,
    time::Duration,
};

use anyhow::{bail, Context, Result};

pub struct Response {
    pub status: u16,
    pub content_encoding: Option<String>,
    /// The whole response as read (or the decoded body of a chunked one).
    raw: Vec<u8>,
    body: Range<usize>,
}

impl Response {
    /// Body bytes as sent (still compressed when `content_encoding` is set).
    pub fn body(&self) -> &[u8] {
        &self.raw[self.body.clone()]
    }

    /// The buffer, for the next request.
    pub fn into_buffer(self) -> Vec<u8> {
        self.raw
    }
}

pub fn get(addr: SocketAddr, path: &str, accept_encoding: Option<&str>) -> Result<Response> {
    get_into(addr, path, accept_encoding, Vec::new())
}

/// [`get`] reading into `raw` (emptied first): a scraper keeps its buffers
/// between scrapes (Prometheus pools them by size), so the timed client does
/// not fault in a fresh one per request.
pub fn get_into(
    addr: SocketAddr,
    path: &str,
    accept_encoding: Option<&str>,
    mut raw: Vec<u8>,
) -> Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let encoding = accept_encoding
        .map(|e| format!("Accept-Encoding: {e}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{encoding}Connection: close\r\n\r\n"
    )?;
    // Read the head first, then room for the whole body at once: a growing
    // buffer would copy a multi-MB page several times (client cost, not the
    // server's).
    raw.clear();
    raw.reserve(64 << 10);
    let head = loop {
        if let Some(head) = Head::parse(&raw)? {
            break head;
        }
        let before = raw.len();
        (&mut stream)
            .take(64 << 10)
            .read_to_end(&mut raw)
            .with_context(|| format!("reading GET {path}"))?;
        if raw.len() == before {
            bail!("response without a complete header");
        }
    };
    raw.reserve((head.len + head.content_length.unwrap_or(0)).saturating_sub(raw.len()));
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading GET {path}"))?;
    head.response(raw)
}

/// Parses a complete response (head and a body that ran to EOF).
#[cfg(test)]
fn parse_response(raw: &[u8]) -> Result<Response> {
    match Head::parse(raw)? {
        Some(head) => head.response(raw.to_vec()),
        None => bail!("response without a complete header"),
    }
}

/// A response's status line and the headers the bench needs.
struct Head {
    /// Bytes up to and including the blank line.
    len: usize,
    status: u16,
    chunked: bool,
    content_length: Option<usize>,
    content_encoding: Option<String>,
}

impl Head {
    /// `None` until `raw` holds the whole head.
    fn parse(raw: &[u8]) -> Result<Option<Head>> {
        let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let head = std::str::from_utf8(&raw[..head_end]).context("non-UTF-8 response header")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut parsed = Head {
            len: head_end + 4,
            status,
            chunked: false,
            content_length: None,
            content_encoding: None,
        };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "transfer-encoding" => parsed.chunked = value.eq_ignore_ascii_case("chunked"),
                "content-length" => parsed.content_length = value.parse::<usize>().ok(),
                "content-encoding" => parsed.content_encoding = Some(value.to_owned()),
                _ => {}
            }
        }
        Ok(Some(parsed))
    }

    /// The response of this head and `raw`, the whole response read to EOF.
    fn response(self, raw: Vec<u8>) -> Result<Response> {
        let (raw, body) = if self.chunked {
            let body = decode_chunked(&raw[self.len..])?;
            let len = body.len();
            (body, 0..len)
        } else {
            let sent = raw.len() - self.len;
            let end = match self.content_length {
                Some(n) if sent < n => bail!("body truncated: {sent} of {n} bytes"),
                Some(n) => self.len + n,
                None => raw.len(),
            };
            let body = self.len..end;
            (raw, body)
        };
        Ok(Response {
            status: self.status,
            content_encoding: self.content_encoding,
            raw,
            body,
        })
    }
}

fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(rest.len());
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            bail!("chunked body truncated");
        };
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            bail!("chunk truncated");
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_body() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!((r.status, r.body()), (200, &b"hello"[..]));
        assert_eq!(r.content_encoding, None);
    }

    #[test]
    fn chunked_body_and_encoding() {
        let raw =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-encoding: gzip\r\n\r\n\
                    3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!(r.body(), b"abcde");
        assert_eq!(r.content_encoding.as_deref(), Some("gzip"));
    }

    #[test]
    fn truncated_bodies_are_errors() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
                .is_err()
        );
        assert!(parse_response(b"HTTP/1.1 404 Not Found\r\n").is_err());
    }
}
