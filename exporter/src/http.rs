//! What the HTTP server and the JSON API share, so that the API depends on
//! this and not on the server that mounts it: the collecting state
//! ([`CollectState`]: the single flight, the in-flight limit, the scrape
//! timeout), the errors of that state ([`HttpError`]) with the one 503 +
//! `Retry-After` answer, the requests refused as malformed HTTP, and the
//! refused-request counters. No routes.
use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use axum::{
    extract::{Request, State},
    http::{header::RETRY_AFTER, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    collect::{CollectError, Collection, SingleFlight},
    events::EventLog,
};

pub mod malformed;
pub mod rejections;

/// Prometheus sends its scrape timeout in seconds in this header.
pub const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// Time kept for rendering and sending: half a second, or half a short budget.
const SEND_MARGIN: Duration = Duration::from_millis(500);

/// The state every collecting route reads through: the single flight (set
/// once the iterators are loaded; until then collecting routes answer 503),
/// the in-flight limit shared by all of them, the configured timeout.
#[derive(Clone)]
pub struct CollectState(Arc<Shared>);

struct Shared {
    collection_timeout: Duration,
    max_requests_in_flight: usize,
    in_flight: Arc<Semaphore>,
    source: OnceLock<Arc<SingleFlight>>,
    events: OnceLock<Arc<EventLog>>,
}

impl CollectState {
    pub fn new(collection_timeout: Duration, max_requests_in_flight: usize) -> Self {
        Self(Arc::new(Shared {
            collection_timeout,
            max_requests_in_flight,
            in_flight: Arc::new(Semaphore::new(max_requests_in_flight)),
            source: OnceLock::new(),
            events: OnceLock::new(),
        }))
    }

    /// Makes the loaded source available; later calls are ignored.
    pub fn set_source(&self, source: Arc<SingleFlight>) {
        let _ = self.0.source.set(source);
    }

    /// Makes the BPF events log available; later calls are ignored.
    pub fn set_events(&self, events: Arc<EventLog>) {
        let _ = self.0.events.set(events);
    }

    /// The BPF events log, once the reader runs (never with `--no-events`).
    pub fn events(&self) -> Option<&Arc<EventLog>> {
        self.0.events.get()
    }

    /// The single flight, once loaded.
    pub fn source(&self) -> Option<&Arc<SingleFlight>> {
        self.0.source.get()
    }

    pub fn collection_timeout(&self) -> Duration {
        self.0.collection_timeout
    }

    /// A collection for this request, within its scrape timeout.
    pub async fn collect(&self, headers: &HeaderMap) -> Result<Arc<Collection>, HttpError> {
        let source = self.0.source.get().ok_or(HttpError::NotLoaded)?;
        let timeout = scrape_timeout(
            headers.get(SCRAPE_TIMEOUT_HEADER),
            self.0.collection_timeout,
        );
        Ok(source.collect(timeout).await?)
    }

    /// How many requests hold a place in flight now (tests wait on it).
    #[doc(hidden)]
    pub fn requests_in_flight(&self) -> usize {
        self.0.max_requests_in_flight - self.0.in_flight.available_permits()
    }

    /// A place among the requests in flight, or `Overloaded` beyond
    /// `--max-requests-in-flight` (503 instead of queueing without end).
    pub fn enter(&self) -> Result<OwnedSemaphorePermit, HttpError> {
        Arc::clone(&self.0.in_flight)
            .try_acquire_owned()
            .map_err(|_| HttpError::Overloaded {
                limit: self.0.max_requests_in_flight,
            })
    }
}

/// The in-flight limit as a middleware; beyond it, `HttpError::Overloaded`
/// answered as `E`: plain text (`HttpError`) or the API's JSON error.
pub async fn limit_in_flight<E: From<HttpError> + IntoResponse>(
    State(state): State<CollectState>,
    request: Request,
    next: Next,
) -> Response {
    match state.enter() {
        Ok(_permit) => next.run(request).await,
        Err(error) => E::from(error).into_response(),
    }
}

/// The collection timeout of a request: `configured`, or less when the scrape
/// header leaves less time (minus a margin to render and send the page).
pub fn scrape_timeout(header: Option<&HeaderValue>, configured: Duration) -> Duration {
    let budget = header
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .filter(|budget| !budget.is_zero());
    match budget {
        Some(budget) => configured.min(budget - SEND_MARGIN.min(budget / 2)),
        None => configured,
    }
}

/// An error of the server's own state: its status code, logged once when
/// turned into a (plain text) response; the API wraps it in its JSON shape.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the BPF iterators are not loaded yet: retry shortly")]
    NotLoaded,
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error("more than {limit} requests in flight: retry later (--max-requests-in-flight)")]
    Overloaded { limit: usize },
    /// A bug: rendering or compressing an answer failed.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::NotLoaded | HttpError::Collect(_) | HttpError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            HttpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn reason(&self) -> rejections::Reason {
        match self {
            HttpError::NotLoaded => rejections::Reason::NotLoaded,
            HttpError::Collect(_) => rejections::Reason::CollectionFailed,
            HttpError::Overloaded { .. } => rejections::Reason::Overloaded,
            HttpError::Internal(_) => rejections::Reason::Internal,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        rejections::record(self.reason(), status, &self);
        error_response(status, format!("{self}\n"))
    }
}

/// An error answer with `status`; a 503 says when to retry (`Retry-After: 1`).
pub fn error_response(status: StatusCode, body: impl IntoResponse) -> Response {
    let mut response = (status, body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_header_shortens_the_timeout() {
        let ten = Duration::from_secs(10);
        let header = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(scrape_timeout(None, ten), ten);
        assert_eq!(
            scrape_timeout(Some(&header("4")), ten),
            Duration::from_millis(3500)
        );
        assert_eq!(
            scrape_timeout(Some(&header("0.5")), ten),
            Duration::from_millis(250)
        );
        assert_eq!(scrape_timeout(Some(&header("30")), ten), ten);
        assert_eq!(scrape_timeout(Some(&header("nonsense")), ten), ten);
        assert_eq!(scrape_timeout(Some(&header("-1")), ten), ten);
        assert_eq!(scrape_timeout(Some(&header("0")), ten), ten);
    }
}
