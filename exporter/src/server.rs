//! HTTP, thin: parse the request, collect through the single flight, render,
//! answer. The router is built in [`app`]; routes that read the kernel sit
//! behind the in-flight limit (add `/api/v1/...` routes to `collecting`).
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{
        header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER},
        HeaderMap, StatusCode,
    },
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tokio::sync::Semaphore;
use tower_http::{compression::CompressionLayer, CompressionLevel};
use tracing::warn;

use crate::{
    collect::{CollectError, Collection, SingleFlight},
    render::prometheus::{render_metrics, Format, RenderOptions},
};

mod landing;
mod negotiate;
mod run;

pub use negotiate::{negotiate_format, scrape_timeout, SCRAPE_TIMEOUT_HEADER};
pub use run::{run, RunOptions, ServeError};

/// Settings of the HTTP side.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Upper bound of a collection; a shorter Prometheus scrape timeout wins.
    pub collection_timeout: Duration,
    /// Requests reading the kernel at once; beyond it the answer is 503.
    pub max_requests_in_flight: usize,
    pub render: RenderOptions,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            collection_timeout: Duration::from_secs(10),
            max_requests_in_flight: 64,
            render: RenderOptions::default(),
        }
    }
}

/// Shared by all handlers. The source is set once the iterators are loaded;
/// until then collecting routes and `/readyz` answer 503.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    config: ServerConfig,
    source: OnceLock<Arc<SingleFlight>>,
    in_flight: Arc<Semaphore>,
    /// The latest rendered page per format: scrapes sharing a collection share
    /// its rendering too. Keyed by the collection's number.
    pages: Mutex<HashMap<Format, (u64, Bytes)>>,
}

impl AppState {
    pub fn new(config: ServerConfig) -> Self {
        Self(Arc::new(Shared {
            in_flight: Arc::new(Semaphore::new(config.max_requests_in_flight)),
            config,
            source: OnceLock::new(),
            pages: Mutex::default(),
        }))
    }

    /// Makes the loaded source available; later calls are ignored.
    pub fn set_source(&self, source: Arc<SingleFlight>) {
        let _ = self.0.source.set(source);
    }

    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// A collection for this request, within its scrape timeout.
    pub async fn collect(&self, headers: &HeaderMap) -> Result<Arc<Collection>, ApiError> {
        let source = self.0.source.get().ok_or(ApiError::NotLoaded)?;
        let timeout = scrape_timeout(
            headers.get(SCRAPE_TIMEOUT_HEADER),
            self.0.config.collection_timeout,
        );
        Ok(source.collect(timeout).await?)
    }

    async fn page(&self, collection: Arc<Collection>, format: Format) -> Result<Bytes, ApiError> {
        let number = collection.stats.collections_total;
        if let Some((n, page)) = lock(&self.0.pages).get(&format) {
            if *n == number {
                return Ok(page.clone());
            }
        }
        let options = self.0.config.render.clone();
        let page = tokio::task::spawn_blocking(move || {
            Bytes::from(render_metrics(
                &collection.inventory,
                &collection.stats,
                &options,
                format,
            ))
        })
        .await
        .map_err(|e| ApiError::Render(e.to_string()))?;
        let mut pages = lock(&self.0.pages);
        // Keep the newest: a slow render of an older collection must not evict it.
        if pages.get(&format).is_none_or(|(n, _)| *n < number) {
            pages.insert(format, (number, page.clone()));
        }
        Ok(page)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded map is replaced whole: a poisoned lock holds a valid value.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The router. Compression (gzip when the client accepts it) covers every route.
pub fn app(state: AppState) -> Router {
    let collecting = Router::new()
        .route("/", get(landing::landing))
        .route("/metrics", get(metrics))
        .merge(crate::api::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            limit_in_flight,
        ));
    Router::new()
        .merge(collecting)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(state)
}

/// Answers 503 beyond `max_requests_in_flight` instead of queueing without end.
async fn limit_in_flight(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match Arc::clone(&state.0.in_flight).try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            let error = ApiError::Overloaded {
                limit: state.0.config.max_requests_in_flight,
            };
            // API clients get the API's JSON error shape.
            if request.uri().path().starts_with("/api/") {
                crate::api::ApiError::from(error).into_response()
            } else {
                error.into_response()
            }
        }
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let format = negotiate_format(headers.get(ACCEPT));
    let collection = state.collect(&headers).await?;
    let page = state.page(collection, format).await?;
    Ok(([(CONTENT_TYPE, format.content_type())], page).into_response())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let reason = match state.0.source.get() {
        None => Some("the BPF iterators are not loaded yet".to_owned()),
        Some(source) => source.unready_reason(state.0.config.collection_timeout),
    };
    match reason {
        None => (StatusCode::OK, "ready\n".into()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

/// An HTTP error: its status code, logged once when turned into a response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the BPF iterators are not loaded yet: retry shortly")]
    NotLoaded,
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error("more than {limit} requests in flight: retry later (--max-requests-in-flight)")]
    Overloaded { limit: usize },
    #[error("rendering the page failed: {0}")]
    Render(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotLoaded | ApiError::Collect(_) | ApiError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        warn!(status = status.as_u16(), error = %self, "request failed");
        let mut response = (status, format!("{self}\n")).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests;
