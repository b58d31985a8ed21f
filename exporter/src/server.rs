//! HTTP, thin: parse the request, collect through the single flight, render,
//! answer. The router is built in [`app`], which mounts the JSON API
//! (`crate::api`); routes that read the kernel sit behind the in-flight limit
//! of `crate::http::CollectState`.
use std::{sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{
        header::{ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, VARY},
        HeaderMap, HeaderValue, StatusCode,
    },
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tower_http::{compression::CompressionLayer, CompressionLevel};

use crate::{
    allocator::Trimmer,
    collect::{Collection, SingleFlight},
    http::{limit_in_flight, CollectState, HttpError},
    render::prometheus::RenderOptions,
};

mod auth;
mod connections;
mod gzip;
mod landing;
mod malformed;
mod negotiate;
mod pages;
mod process;
mod run;
pub mod web_config;

pub use connections::{fit_connections, ConnectionLimits, FD_RESERVE};
pub use negotiate::{accepts_gzip, negotiate_format};
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

/// Shared by the server's handlers: the collecting state (shared with the
/// API) and what only the server has. The source is set once the iterators
/// are loaded; until then collecting routes and `/readyz` answer 503.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    config: ServerConfig,
    collecting: CollectState,
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
            auth: auth::Auth::new(Arc::clone(&web)),
            collecting: CollectState::new(config.collection_timeout, config.max_requests_in_flight),
            config,
            pages: pages::PageCache::new(web),
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
        self.0.collecting.set_source(source);
    }

    /// Returns freed memory to the system after collections; run it once.
    pub fn trim_memory(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        Arc::clone(&self.0.trimmer).run()
    }

    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// The state the collecting routes (and the API) read through.
    pub fn collecting(&self) -> &CollectState {
        &self.0.collecting
    }

    /// A collection for this request, within its scrape timeout.
    pub async fn collect(&self, headers: &HeaderMap) -> Result<Arc<Collection>, HttpError> {
        self.0.collecting.collect(headers).await
    }
}

/// The router. `/metrics` serves its own gzip, cached per collection; the
/// other routes are compressed per response when the client accepts gzip.
pub fn app(state: AppState) -> Router {
    let collecting = Router::new()
        .route(&state.config().telemetry_path, get(metrics))
        .route_layer(middleware::from_fn_with_state(
            state.collecting().clone(),
            limit_in_flight::<HttpError>,
        ))
        .merge(crate::api::routes(state.collecting().clone()));
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
        // Malformed HTTP is refused before credentials are looked at.
        .layer(middleware::from_fn(malformed::require_one_host))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, HttpError> {
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
    let collecting = state.collecting();
    let reason = match collecting.source() {
        None => Some("the BPF iterators are not loaded yet".to_owned()),
        Some(source) => source.unready_reason(collecting.collection_timeout()),
    };
    match reason {
        None => (StatusCode::OK, "ready\n".into()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

/// A page that could not be rendered is a bug: a 500.
impl From<PageError> for HttpError {
    fn from(error: PageError) -> Self {
        HttpError::Internal(Box::new(error))
    }
}

#[cfg(test)]
mod tests;
