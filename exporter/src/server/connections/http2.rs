//! A clean refusal of HTTP/2 with prior knowledge (RFC 9113 3.3): the client
//! gets an empty SETTINGS frame and a GOAWAY with HTTP_1_1_REQUIRED, on which
//! clients such as curl retry with HTTP/1.1, instead of a reset connection.
use std::time::Duration;

use axum::http::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::http::rejections::{self, Reason};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Empty SETTINGS, then GOAWAY(last stream 0, error 0xd HTTP_1_1_REQUIRED).
const REFUSAL: &[u8] = &[
    0, 0, 0, 0x4, 0, 0, 0, 0, 0, // SETTINGS: length 0, type 4, no flags, stream 0
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, // GOAWAY: length 8, type 7, no flags, stream 0
    0, 0, 0, 0, // last stream id 0
    0, 0, 0, 0xd, // HTTP_1_1_REQUIRED
];

/// Whether the connection is done before HTTP/1.1 starts: it opened with the
/// HTTP/2 preface (and got the refusal), sent nothing within `within` (the
/// header timeout), or was closed. Otherwise nothing was consumed.
pub(super) async fn refuse_prior_knowledge(stream: &mut TcpStream, within: Duration) -> bool {
    match tokio::time::timeout(within, first_bytes(stream)).await {
        Ok(Opening::Http1) => return false,
        Ok(Opening::Closed) | Err(_) => return true,
        Ok(Opening::Http2) => {}
    }
    rejections::record(
        Reason::InvalidRequest,
        StatusCode::HTTP_VERSION_NOT_SUPPORTED,
        &"HTTP/2 prior knowledge: HTTP/1.1 only",
    );
    let mut preface = [0u8; PREFACE.len()];
    if stream.read_exact(&mut preface).await.is_err() || stream.write_all(REFUSAL).await.is_err() {
        return true;
    }
    let _ = stream.shutdown().await;
    // Read what the client still sends until it closes, so that closing does
    // not reset the connection before the client has read the GOAWAY.
    let mut sink = [0u8; 1024];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    true
}

enum Opening {
    Http1,
    Http2,
    Closed,
}

async fn first_bytes(stream: &TcpStream) -> Opening {
    let mut head = [0u8; PREFACE.len()];
    loop {
        let n = match stream.peek(&mut head).await {
            Ok(0) | Err(_) => return Opening::Closed,
            Ok(n) => n,
        };
        if !PREFACE.starts_with(&head[..n]) {
            return Opening::Http1;
        }
        if n == PREFACE.len() {
            return Opening::Http2;
        }
        // A prefix of the preface so far ("P" could still be POST): wait for more.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
