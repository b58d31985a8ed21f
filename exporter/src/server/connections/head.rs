//! Each request head is checked before hyper parses it, so that a head hyper
//! would refuse gets the exporter's answer (JSON under `/api/`) rather than
//! hyper's: hyper 1.x answers a head it cannot parse with an empty 400, 414
//! or 431 of its own and has no hook to change that answer.
//!
//! The check runs hyper's own parsers with hyper's settings (httparse's
//! default `ParserConfig`, [`MAX_HEADERS`], then `http`'s method and URI) with
//! limits under hyper's ([`URL_LIMIT`] < 65534, [`HEAD_LIMIT`] < its 400 KiB
//! buffer), so a head that passes is one hyper parses, and the guard refuses
//! only what hyper would refuse or what is over our limits. Where it cannot
//! follow the framing (Transfer-Encoding, CONNECT, a Content-Length it does
//! not read as plain digits) it stops checking that connection and leaves the
//! rest to hyper.
use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use bytes::{Buf, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
};

use crate::http::malformed::{MalformedRequest, HEAD_LIMIT, MAX_HEADERS, URL_LIMIT};

#[cfg(test)]
mod tests;

/// A head the guard refused: why, and what the answer needs to know.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub error: MalformedRequest,
    /// The request target as sent (at most [`URL_LIMIT`] bytes of it).
    pub target: Vec<u8>,
    /// A HEAD request: the answer has no body.
    pub head_request: bool,
}

/// What a request head at the start of a buffer is.
#[derive(Debug, PartialEq, Eq)]
pub enum Inspection {
    /// Not all of it yet.
    Partial,
    /// A head of `len` bytes that hyper parses, then a body.
    Head {
        len: usize,
        body: Body,
    },
    Refused(Refused),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    /// Content-Length bytes (0 without one).
    Length(u64),
    /// Framing the guard does not follow: hyper alone reads from here on.
    Unchecked,
}

/// Inspects the request head at the start of `buf`.
pub fn inspect(buf: &[u8]) -> Inspection {
    let line = request_line(buf);
    let refuse = |error| {
        Inspection::Refused(Refused {
            error,
            target: line.target[..line.target.len().min(URL_LIMIT)].to_vec(),
            head_request: line.method == b"HEAD",
        })
    };
    if line.target.len() > URL_LIMIT {
        return refuse(MalformedRequest::TargetTooLong { limit: URL_LIMIT });
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > HEAD_LIMIT => {
            return refuse(MalformedRequest::HeadTooLarge { limit: HEAD_LIMIT })
        }
        Ok(httparse::Status::Partial) => return Inspection::Partial,
        Err(error) => return refuse(parse_error(error, request.method.is_some())),
    };
    if len > HEAD_LIMIT {
        return refuse(MalformedRequest::HeadTooLarge { limit: HEAD_LIMIT });
    }
    // What hyper checks after httparse, with the same functions.
    let method = request.method.unwrap_or_default();
    if axum::http::Method::from_bytes(method.as_bytes()).is_err() {
        return refuse(MalformedRequest::InvalidRequestLine);
    }
    if axum::http::Uri::try_from(request.path.unwrap_or_default().as_bytes()).is_err() {
        return refuse(MalformedRequest::InvalidTarget);
    }
    let body = if method == "CONNECT" {
        Body::Unchecked
    } else {
        body_framing(request.headers)
    };
    Inspection::Head { len, body }
}

/// hyper's status for each httparse error, as our reasons.
fn parse_error(error: httparse::Error, method_parsed: bool) -> MalformedRequest {
    match error {
        // httparse reports a bad method and a bad target alike.
        httparse::Error::Token if method_parsed => MalformedRequest::InvalidTarget,
        httparse::Error::Token | httparse::Error::Version => MalformedRequest::InvalidRequestLine,
        httparse::Error::TooManyHeaders => MalformedRequest::TooManyHeaders { limit: MAX_HEADERS },
        _ => MalformedRequest::InvalidHeader,
    }
}

/// The body's length when it is only plain Content-Length fields that agree.
fn body_framing(headers: &[httparse::Header<'_>]) -> Body {
    let mut length = None;
    for header in headers {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Body::Unchecked;
        }
        if !header.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let value = std::str::from_utf8(header.value)
            .ok()
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok());
        match (value, length) {
            (Some(value), None) => length = Some(value),
            (Some(value), Some(seen)) if value == seen => {}
            _ => return Body::Unchecked,
        }
    }
    Body::Length(length.unwrap_or(0))
}

/// The method and target of a request line, complete or not, the way
/// httparse reads them (empty lines before it skipped).
struct RequestLine<'a> {
    method: &'a [u8],
    target: &'a [u8],
}

fn request_line(buf: &[u8]) -> RequestLine<'_> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let line = &line[..line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len())];
    let mut parts = line.splitn(3, |&b| b == b' ');
    RequestLine {
        method: parts.next().unwrap_or_default(),
        target: parts.next().unwrap_or_default(),
    }
}

enum State {
    /// At the start of a request head.
    Head,
    /// In a body with this many bytes to go.
    Body(u64),
    /// hyper reads the rest unchecked.
    Unchecked,
    /// A head was refused: nothing more is handed to hyper.
    Refused(Refused),
    /// The refusal's answer, and how much of it is written.
    Answering(Vec<u8>, usize),
}

/// The stream as hyper sees it: request heads once checked, then their
/// bodies. After a refusal hyper gets no more bytes; once it asks for more
/// (every earlier request read), `refused` is notified so that the
/// connection shuts hyper down gracefully, and when hyper shuts the stream
/// down (its earlier answers written) the guard writes the refusal's answer
/// (`answer`) first.
pub struct HeadGuard<I> {
    io: I,
    /// Read from `io` and not yet handed to hyper.
    pending: BytesMut,
    /// How many leading bytes of `pending` are checked, ready for hyper.
    ready: usize,
    state: State,
    refused: Arc<Notify>,
    answer: fn(&Refused) -> Vec<u8>,
}

/// Bytes read from the stream at once.
const READ_SIZE: usize = 8192;

impl<I> HeadGuard<I> {
    pub fn new(io: I, refused: Arc<Notify>, answer: fn(&Refused) -> Vec<u8>) -> Self {
        Self {
            io,
            pending: BytesMut::new(),
            ready: 0,
            state: State::Head,
            refused,
            answer,
        }
    }

    /// Moves checked bytes to `ready`; false when more bytes must be read
    /// (or nothing more may be handed over, after a refusal).
    fn check_pending(&mut self) -> bool {
        if self.pending.len() == self.ready {
            return false;
        }
        let unchecked = self.pending.len() - self.ready;
        match &mut self.state {
            State::Unchecked => self.ready = self.pending.len(),
            State::Body(remaining) => {
                let take = usize::try_from(*remaining).map_or(unchecked, |r| r.min(unchecked));
                self.ready += take;
                *remaining -= take as u64;
                if *remaining == 0 {
                    self.state = State::Head;
                }
            }
            State::Head => match inspect(&self.pending[self.ready..]) {
                Inspection::Partial => return false,
                Inspection::Head { len, body } => {
                    self.ready += len;
                    self.state = match body {
                        Body::Length(0) => State::Head,
                        Body::Length(n) => State::Body(n),
                        Body::Unchecked => State::Unchecked,
                    };
                }
                Inspection::Refused(refused) => {
                    self.state = State::Refused(refused);
                    return false;
                }
            },
            State::Refused(_) | State::Answering(..) => return false,
        }
        true
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for HeadGuard<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready > 0 {
                let n = this.ready.min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            if this.check_pending() {
                continue;
            }
            if matches!(this.state, State::Refused(_) | State::Answering(..)) {
                // hyper has read every request before the refused one.
                this.refused.notify_one();
                return Poll::Pending;
            }
            let mut chunk = [0u8; READ_SIZE];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // The client is done: a partial head is dropped, hyper sees the end.
                return Poll::Ready(Ok(()));
            }
            this.pending.extend_from_slice(read.filled());
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for HeadGuard<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let State::Refused(refused) = &this.state {
            // Made once: making it counts the refusal.
            this.state = State::Answering((this.answer)(refused), 0);
        }
        if let State::Answering(answer, written) = &mut this.state {
            while *written < answer.len() {
                let n = ready!(Pin::new(&mut this.io).poll_write(cx, &answer[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
            ready!(Pin::new(&mut this.io).poll_flush(cx))?;
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
