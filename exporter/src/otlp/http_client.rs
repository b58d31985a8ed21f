//! The http/protobuf exporter's client: reqwest, keeping why the latest
//! request got no response. opentelemetry-otlp reports every such request as
//! "network error" and drops the cause, so a collector that accepts and never
//! answers looked like a refused connection; the export loop reads the cause
//! back from here after a failed send.
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// Why the latest request got no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoResponse {
    /// The request timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`) cut it.
    TimedOut,
    /// Anything else (refused connection, TLS, DNS): the error and its causes.
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct RecordingClient {
    client: reqwest::Client,
    latest: Arc<Mutex<Option<NoResponse>>>,
}

impl RecordingClient {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            latest: Arc::default(),
        }
    }

    /// Where the latest request's failure is kept (None after a response).
    pub fn latest(&self) -> Arc<Mutex<Option<NoResponse>>> {
        Arc::clone(&self.latest)
    }
}

#[async_trait]
impl HttpClient for RecordingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let sent = self.client.send_bytes(request).await;
        // Each attempt overwrites: a retry that got an answer clears an earlier failure.
        *crate::sync::lock(&self.latest) = sent.as_ref().err().map(|error| no_response(&**error));
        sent
    }
}

fn no_response(error: &(dyn std::error::Error + 'static)) -> NoResponse {
    if error
        .downcast_ref::<reqwest::Error>()
        .is_some_and(reqwest::Error::is_timeout)
    {
        return NoResponse::TimedOut;
    }
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    NoResponse::Failed(text)
}
