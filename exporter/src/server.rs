//! HTTP, thin: parse the request, collect through the single flight, render,
//! answer. The router is built in [`app`]; routes that read the kernel sit
//! behind the in-flight limit (add `/api/v1/...` routes to `collecting`).
use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use axum::{
    extract::{Request, State},
    http::{
        header::{ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, VARY},
        HeaderMap, HeaderValue, StatusCode,
    },
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tokio::sync::Semaphore;
use tower_http::{compression::CompressionLayer, CompressionLevel};

use crate::{
    collect::{CollectError, Collection, SingleFlight},
    render::prometheus::RenderOptions,
};

mod auth;
mod connections;
mod gzip;
use memory::Trimmer;
mod landing;
mod memory;
mod negotiate;
mod pages;
mod process;
pub mod rejections;
mod run;
pub mod web_config;

pub use connections::{fit_connections, ConnectionLimits, FD_RESERVE};
pub use memory::tune_allocator;
pub use negotiate::{accepts_gzip, negotiate_format, scrape_timeout, SCRAPE_TIMEOUT_HEADER};
pub use pages::PageError;
pub use run::{run, RunOptions, ServeError};

/// Settings of the HTTP side.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Upper bound of a collection; a shorter Prometheus scrape timeout wins.
    pub collection_timeout: Duration,
    /// Requests reading the kernel at once; beyond it the answer is 503.
    pub max_requests_in_flight: usize,
    pub render: RenderOptions,
    /// Path of the Prometheus page (`--web.telemetry-path`).
    pub telemetry_path: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            telemetry_path: "/metrics".into(),
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
    /// Scrapes sharing a collection share its rendering and compression too.
    pages: pages::PageCache,
    /// Asked to trim the heap whenever a collection is released.
    trimmer: Arc<Trimmer>,
    /// Basic auth and headers of `--web.config.file`.
    auth: Arc<auth::Auth>,
}

impl AppState {
    pub fn new(config: ServerConfig) -> Self {
        Self::with_web_config(config, Arc::new(web_config::WebConfigHandle::none()))
    }

    /// With basic auth and response headers from a `--web.config.file`.
    pub fn with_web_config(config: ServerConfig, web: Arc<web_config::WebConfigHandle>) -> Self {
        Self(Arc::new(Shared {
            auth: auth::Auth::new(web),
            in_flight: Arc::new(Semaphore::new(config.max_requests_in_flight)),
            config,
            source: OnceLock::new(),
            pages: pages::PageCache::default(),
            trimmer: Trimmer::new(),
        }))
    }

    /// Makes the loaded source available; later calls are ignored. A
    /// collection's pages are dropped with the collection.
    pub fn set_source(&self, source: Arc<SingleFlight>) {
        // Weak: the source must not keep the state (which holds it) alive.
        let shared = Arc::downgrade(&self.0);
        source.set_release_hook(Arc::new(move |collection| {
            if let Some(shared) = shared.upgrade() {
                shared.pages.evict(collection);
                shared.trimmer.request();
            }
        }));
        let _ = self.0.source.set(source);
    }

    /// Returns freed memory to the system after collections; run it once.
    pub fn trim_memory(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        Arc::clone(&self.0.trimmer).run()
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

    /// The whole inventory of `collection` as JSON, made once per collection.
    pub async fn inventory_json(
        &self,
        collection: Arc<Collection>,
    ) -> Result<axum::body::Bytes, ApiError> {
        Ok(self.0.pages.inventory(collection).await?)
    }
}

/// The router. `/metrics` serves its own gzip, cached per collection; the
/// other routes are compressed per response when the client accepts gzip.
pub fn app(state: AppState) -> Router {
    let compressed = Router::new()
        .merge(crate::api::routes())
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest));
    let collecting = Router::new()
        .route(&state.config().telemetry_path, get(metrics))
        .merge(compressed)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            limit_in_flight,
        ));
    let landing = Router::new()
        .route("/", get(landing::landing))
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest));
    let auth = Arc::clone(&state.0.auth);
    Router::new()
        .merge(collecting)
        .merge(landing)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .layer(middleware::from_fn_with_state(auth, auth::authenticate))
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
    let gzip = accepts_gzip(&headers);
    let collection = state.collect(&headers).await?;
    let page = state
        .0
        .pages
        .page(collection, &state.0.config.render, format, gzip)
        .await?;
    let mut response = ([(CONTENT_TYPE, format.content_type())], page).into_response();
    let response_headers = response.headers_mut();
    // Caches must key on both: the format and the encoding depend on them.
    response_headers.insert(VARY, HeaderValue::from_static("accept, accept-encoding"));
    if gzip {
        response_headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
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
    #[error(transparent)]
    Page(#[from] PageError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotLoaded | ApiError::Collect(_) | ApiError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Page(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn reason(&self) -> rejections::Reason {
        match self {
            ApiError::NotLoaded => rejections::Reason::NotLoaded,
            ApiError::Collect(_) => rejections::Reason::CollectionFailed,
            ApiError::Overloaded { .. } => rejections::Reason::Overloaded,
            ApiError::Page(_) => rejections::Reason::Internal,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        rejections::record(self.reason(), status, &self);
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
