//! A test OTLP receiver on the official protobuf definitions
//! (`opentelemetry-proto`: tonic's generated `MetricsService` and
//! `LogsService` servers for gRPC, prost decoding for HTTP/protobuf on axum),
//! on 127.0.0.1 ports the test picks, in the clear or with TLS (a test CA from
//! rcgen). It records every metrics request it decodes and answers as told:
//! OK, 503 with Retry-After, or never; log requests are recorded apart and
//! answered OK (never, when told never).
// Each test uses a different subset.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::{logs_service_server::LogsServiceServer, ExportLogsServiceRequest},
        metrics::v1::{
            metrics_service_server::{MetricsService, MetricsServiceServer},
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        },
    },
    common::v1::{any_value, AnyValue, KeyValue},
    metrics::v1::{metric, number_data_point, Metric, NumberDataPoint},
};
use prost::Message;

#[path = "receiver_logs.rs"]
mod logs;
#[path = "tls.rs"]
mod tls;
pub use tls::TestPki;
use tls::TlsListener;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Answer {
    Ok,
    /// HTTP 503 with `Retry-After: <secs>` (gRPC: UNAVAILABLE with that
    /// RetryInfo), this many times, then Ok.
    Unavailable {
        times: u32,
        retry_after_secs: u32,
    },
    /// Accept the request and never answer.
    Never,
}

/// One decoded request and when it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub grpc: bool,
    /// Whether the receiver answered it with success.
    pub accepted: bool,
    pub request: ExportMetricsServiceRequest,
    /// The request's `x-*` headers (gRPC: metadata), lower-case names.
    pub headers: Vec<(String, String)>,
}

/// One decoded logs request.
#[derive(Clone, Debug)]
pub struct ReceivedLogs {
    pub grpc: bool,
    pub request: ExportLogsServiceRequest,
    /// The request's `x-*` headers (gRPC: metadata), lower-case names.
    pub headers: Vec<(String, String)>,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    logs: Mutex<Vec<ReceivedLogs>>,
    answer: Mutex<Option<Answer>>,
}

impl Shared {
    /// Records a logs request; false: never answer it.
    fn record_logs(
        &self,
        request: ExportLogsServiceRequest,
        headers: &axum::http::HeaderMap,
        grpc: bool,
    ) -> bool {
        self.logs.lock().unwrap().push(ReceivedLogs {
            grpc,
            request,
            headers: x_headers(headers),
        });
        *self.answer.lock().unwrap() != Some(Answer::Never)
    }

    /// Records the request; returns whether to accept it (None: never answer).
    fn record(
        &self,
        request: ExportMetricsServiceRequest,
        headers: &axum::http::HeaderMap,
        grpc: bool,
    ) -> Option<Result<(), u32>> {
        let mut answer = self.answer.lock().unwrap();
        let decision = match answer.unwrap_or(Answer::Ok) {
            Answer::Ok => Some(Ok(())),
            Answer::Never => None,
            Answer::Unavailable {
                times,
                retry_after_secs,
            } => {
                *answer = (times > 1).then_some(Answer::Unavailable {
                    times: times - 1,
                    retry_after_secs,
                });
                Some(Err(retry_after_secs))
            }
        };
        self.received.lock().unwrap().push(Received {
            at: Instant::now(),
            grpc,
            accepted: decision == Some(Ok(())),
            request,
            headers: x_headers(headers),
        });
        decision
    }
}

/// The `x-*` headers, lower-case names.
fn x_headers(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-"))
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.to_string(), value)
        })
        .collect()
}

pub struct Receiver {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

impl Receiver {
    /// On two ports the kernel picks.
    pub fn start(answer: Answer) -> Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?, "127.0.0.1:0".parse()?, answer)
    }

    /// On the given addresses (to come up where an exporter already pushes).
    pub fn start_on(grpc: SocketAddr, http: SocketAddr, answer: Answer) -> Result<Self> {
        Self::start_with(grpc, http, answer, None)
    }

    /// With TLS on both ports, with `pki`'s certificate for 127.0.0.1.
    pub fn start_tls(answer: Answer, pki: &TestPki) -> Result<Self> {
        Self::start_with(
            "127.0.0.1:0".parse()?,
            "127.0.0.1:0".parse()?,
            answer,
            Some(pki),
        )
    }

    fn start_with(
        grpc: SocketAddr,
        http: SocketAddr,
        answer: Answer,
        tls: Option<&TestPki>,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::default());
        *shared.answer.lock().unwrap() = Some(answer);
        let (grpc_listener, http_listener) = runtime.block_on(async {
            let grpc = tokio::net::TcpListener::bind(grpc).await?;
            let http = tokio::net::TcpListener::bind(http).await?;
            anyhow::Ok((grpc, http))
        })?;
        let grpc = grpc_listener.local_addr()?;
        let http = http_listener.local_addr()?;
        let service = MetricsServiceServer::from_arc(Arc::new(Grpc(Arc::clone(&shared))))
            .max_decoding_message_size(256 << 20);
        let logs_service = LogsServiceServer::from_arc(Arc::new(Grpc(Arc::clone(&shared))));
        let mut server = tonic::transport::Server::builder();
        if let Some(pki) = tls {
            let identity = tonic::transport::Identity::from_pem(&pki.cert_pem, &pki.key_pem);
            server =
                server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
        }
        runtime.spawn(
            server
                .add_service(service)
                .add_service(logs_service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc_listener)),
        );
        let app = Router::new()
            .route("/v1/metrics", post(http_export))
            .route("/v1/logs", post(logs::http_logs))
            .layer(DefaultBodyLimit::disable())
            .with_state(Arc::clone(&shared));
        match tls {
            Some(pki) => {
                let listener = TlsListener {
                    tcp: http_listener,
                    acceptor: pki.acceptor()?,
                };
                runtime.spawn(async move { axum::serve(listener, app).await })
            }
            None => runtime.spawn(async move { axum::serve(http_listener, app).await }),
        };
        Ok(Self {
            runtime: Some(runtime),
            shared,
            grpc,
            http,
        })
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The URL of the gRPC port (`grpc`) or the HTTP one.
    pub fn url(&self, grpc: bool) -> String {
        if grpc {
            self.grpc_url()
        } else {
            self.http_url()
        }
    }

    /// The URL of `port` (`grpc` or `http`) for a TLS receiver.
    pub fn https_url(&self, grpc: bool) -> String {
        format!("https://{}", if grpc { self.grpc } else { self.http })
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn received_logs(&self) -> Vec<ReceivedLogs> {
        self.shared.logs.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the requests received so far.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if done(&received) {
                return Ok(received);
            }
            if Instant::now() > deadline {
                bail!(
                    "{what}: not within {timeout:?} ({} requests)",
                    received.len()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops listening and drops open connections.
    pub fn stop(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct Grpc(Arc<Shared>);

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        match self.0.record(request.into_inner(), &headers, true) {
            Some(Ok(())) => Ok(tonic::Response::new(ExportMetricsServiceResponse::default())),
            Some(Err(retry_after)) => {
                use tonic_types::{ErrorDetails, StatusExt};
                let delay = Duration::from_secs(retry_after.into());
                Err(tonic::Status::with_error_details(
                    tonic::Code::Unavailable,
                    "test receiver: unavailable",
                    ErrorDetails::with_retry_info(Some(delay)),
                ))
            }
            None => std::future::pending().await,
        }
    }
}

async fn http_export(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let request = match ExportMetricsServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    match shared.record(request, &headers, false) {
        Some(Ok(())) => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            ExportMetricsServiceResponse::default().encode_to_vec(),
        )
            .into_response(),
        Some(Err(retry_after)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, retry_after.to_string())],
            "test receiver: unavailable",
        )
            .into_response(),
        None => std::future::pending().await,
    }
}

// Reading requests.

/// Every metric named `name` in the request.
pub fn metrics<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> Vec<&'a Metric> {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .filter(|m| m.name == name)
        .collect()
}

/// The one metric named `name`.
pub fn metric<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> Result<&'a Metric> {
    match metrics(request, name).as_slice() {
        [one] => Ok(one),
        other => bail!("{} metrics named {name}", other.len()),
    }
}

/// A gauge's or sum's points.
pub fn points(metric: &Metric) -> &[NumberDataPoint] {
    match &metric.data {
        Some(metric::Data::Gauge(g)) => &g.data_points,
        Some(metric::Data::Sum(s)) => &s.data_points,
        _ => &[],
    }
}

pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

/// The point whose integer attribute `id` is `id`.
pub fn point_with_id(metric: &Metric, id: u32) -> Result<&NumberDataPoint> {
    points(metric)
        .iter()
        .find(|p| attribute(&p.attributes, "id") == Some(&any_value::Value::IntValue(id.into())))
        .with_context(|| format!("{}: no point with id {id}", metric.name))
}

/// A point's value as f64 (integers are exact below 2^53).
pub fn value(point: &NumberDataPoint) -> f64 {
    match point.value {
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        Some(number_data_point::Value::AsDouble(v)) => v,
        None => f64::NAN,
    }
}

/// The resource's string attribute `key`.
pub fn resource_attribute(request: &ExportMetricsServiceRequest, key: &str) -> Option<String> {
    let resource = request.resource_metrics.first()?.resource.as_ref()?;
    match attribute(&resource.attributes, key)? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}
