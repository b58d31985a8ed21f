//! The export loop. Each interval: one collection through the single flight
//! (shared with scrapes), one SDK read of the instruments against it, one
//! OTLP export (opentelemetry-otlp: retries with backoff on 429/503/
//! UNAVAILABLE, honouring Retry-After / RetryInfo, within the request
//! timeout). Exports run one at a time and each is bounded by the export
//! timeout, so a slow collector costs neither memory nor `/metrics` latency.
//! On stop, one last export within [`FLUSH_BUDGET`]. A failure is logged at
//! most once per kind every 10 s (`log_limit`), with the number not logged.
//!
//! Why a custom reader rather than the SDK's `PeriodicReader`: the periodic
//! reader runs the callbacks on its own thread with no hook before them, so
//! "one collection per export" would need each callback to guess whether its
//! collection is current. Here the loop collects first, pins the collection,
//! and then asks the SDK (a `ManualReader`) to read every instrument: the SDK
//! still does the aggregation, temporality (delta from the previous export),
//! start times and cardinality limits, and opentelemetry-otlp the protocol.
use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Weak,
    },
    time::{Duration, Instant},
};

use opentelemetry::{metrics::MeterProvider, InstrumentationScope};
use opentelemetry_otlp::MetricExporter;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{
        data::ResourceMetrics, exporter::PushMetricExporter, reader::MetricReader, InstrumentKind,
        ManualReader, Pipeline, SdkMeterProvider, Stream, Temporality,
    },
};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use super::{
    config::PushConfig,
    exporter::{exporter, NoResponseCause, PushError},
    http_client::NoResponse,
    instruments::{register, Pinned},
    logs::EventPush,
};
use crate::{
    collect::{ExportCounters, SingleFlight},
    events::EventLog,
    log_limit::LogLimit,
    render::{families::FAMILIES, otlp::is_per_object},
};

/// The last export after a stop signal gets this long, collection included,
/// so the process still exits within its 2 s budget.
pub const FLUSH_BUDGET: Duration = Duration::from_millis(1000);

/// Why one export failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ExportError {
    #[error("no collection: {0}")]
    Collect(crate::collect::CollectError),
    #[error("reading the instruments failed: {0}")]
    Read(String),
    #[error("sending failed: {0}")]
    Send(opentelemetry_sdk::error::OTelSdkError),
    /// No response at all (the SDK's "network error"), with the client's cause.
    #[error("sending failed: no response: {0}")]
    NoResponse(String),
    #[error(
        "sending failed: the collector did not answer: timed out after {} ms (OTEL_EXPORTER_OTLP_TIMEOUT)",
        .0.as_millis()
    )]
    RequestTimeout(Duration),
    #[error("the export did not finish within {0:?}")]
    Timeout(Duration),
}

impl ExportError {
    /// Failures of one kind share a log line every 10 s.
    pub(super) fn kind(&self) -> usize {
        match self {
            ExportError::Collect(_) | ExportError::Read(_) => 0,
            ExportError::Send(_) | ExportError::NoResponse(_) => 1,
            ExportError::RequestTimeout(_) | ExportError::Timeout(_) => 2,
        }
    }
}

/// Kinds of [`ExportError::kind`].
pub(super) const FAILURE_KINDS: usize = 3;

pub struct Pusher {
    config: PushConfig,
    provider: SdkMeterProvider,
    reader: SharedReader,
    exporter: MetricExporter,
    pinned: Arc<Pinned>,
    counters: Arc<ExportCounters>,
    /// The http/protobuf client's cause of a request without response.
    no_response: Option<NoResponseCause>,
    /// The events as log records, when a logs endpoint is configured.
    events: Option<EventPush>,
    failures_logged: LogLimit<FAILURE_KINDS>,
    /// Exports failed since the last success.
    failing: AtomicU64,
}

impl Pusher {
    /// Builds the SDK pipeline and the exporter (endpoint, headers and request
    /// timeout from the environment). Needs a Tokio runtime.
    pub fn new(config: PushConfig) -> Result<Self, PushError> {
        let (exporter, no_response) = exporter(&config)?;
        let reader = SharedReader(Arc::new(
            ManualReader::builder()
                .with_temporality(exporter.temporality())
                .build(),
        ));
        let max_series = config.max_series;
        let provider = SdkMeterProvider::builder()
            .with_resource(super::resource::resource())
            .with_reader(reader.clone())
            // The default limit (2 000) would fold a large host's objects into
            // one overflow point: per-object instruments keep max_series.
            .with_view(move |instrument: &opentelemetry_sdk::metrics::Instrument| {
                let per_object = FAMILIES
                    .iter()
                    .any(|f| f.otel_name == instrument.name() && is_per_object(f));
                per_object
                    .then(|| {
                        Stream::builder()
                            .with_cardinality_limit(max_series)
                            .build()
                            .ok()
                    })
                    .flatten()
            })
            .build();
        let meter = provider.meter_with_scope(
            InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        let pinned = Arc::new(Pinned::default());
        register(&meter, &pinned, &config.render);
        let counters = Arc::<ExportCounters>::default();
        let events = match &config.logs {
            Some(transport) => Some(EventPush::new(
                transport.clone(),
                config.timeout,
                config.interval,
                Arc::clone(&counters),
            )?),
            None => None,
        };
        Ok(Self {
            config,
            provider,
            reader,
            exporter,
            pinned,
            counters,
            no_response,
            events,
            failures_logged: LogLimit::new(),
            failing: AtomicU64::new(0),
        })
    }

    /// The counters every collection carries (`SingleFlight::set_export_counters`).
    pub fn counters(&self) -> Arc<ExportCounters> {
        Arc::clone(&self.counters)
    }

    /// Exports every interval once `source` delivers the loaded single
    /// flight, until `stopped`; then one last export and shutdown. The
    /// events, when both they and a logs endpoint are on, go out alongside.
    pub async fn run(
        mut self,
        source: oneshot::Receiver<PushSource>,
        stopped: watch::Receiver<bool>,
    ) {
        let mut stop = stopped.clone();
        let PushSource { flight, events } = tokio::select! {
            source = source => match source {
                Ok(source) => source,
                Err(_) => return, // loading failed; the server reports it
            },
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let event_push = match (self.events.take(), events) {
            (Some(push), Some(log)) => Some(push.run(log, stopped.clone())),
            (Some(_), None) => {
                info!("BPF load/unload events are off: no OTLP log records");
                None
            }
            (None, _) => None,
        };
        let event_push = async {
            if let Some(push) = event_push {
                push.await;
            }
        };
        tokio::join!(self.push_metrics(flight, stopped), event_push);
    }

    async fn push_metrics(self, flight: Arc<SingleFlight>, mut stopped: watch::Receiver<bool>) {
        flight.set_export_counters(self.counters());
        info!(
            endpoint = %self.config.metrics.endpoint,
            protocol = ?self.config.metrics.protocol,
            interval = ?self.config.interval,
            temporality = ?self.config.temporality,
            "pushing OTLP metrics"
        );
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => break,
                _ = ticks.tick() => {}
            }
            // A stop cuts an export short: the flush below takes over.
            tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => break,
                () = self.export_once(&flight, self.config.timeout, false) => {}
            }
        }
        self.export_once(&flight, FLUSH_BUDGET, true).await;
        if let Err(error) = self
            .provider
            .shutdown_with_timeout(Duration::from_millis(50))
        {
            debug!(%error, "meter provider shutdown");
        }
    }

    /// One export within `budget`, counted and logged. The `last` one's
    /// failure is always logged: its metrics are lost for good.
    async fn export_once(&self, flight: &Arc<SingleFlight>, budget: Duration, last: bool) {
        let started = Instant::now();
        let result = match tokio::time::timeout(budget, self.export(flight, budget)).await {
            Ok(result) => result,
            Err(_) => Err(ExportError::Timeout(budget)),
        };
        let took = started.elapsed();
        self.counters.record(result.is_ok(), took);
        let took_ms = took.as_secs_f64() * 1e3;
        match result {
            Ok(points) => {
                let failed = self.failing.swap(0, Ordering::Relaxed);
                if failed > 0 {
                    info!(
                        points,
                        took_ms, failed, "OTLP export succeeded after failures"
                    );
                } else {
                    debug!(points, took_ms, "OTLP export done");
                }
            }
            Err(error) => {
                self.failing.fetch_add(1, Ordering::Relaxed);
                // Failures of this kind since its last line, this one excluded.
                let unlogged = if last {
                    Some(self.failures_logged.force(error.kind()))
                } else {
                    self.failures_logged.admit(error.kind())
                };
                if let Some(unlogged) = unlogged {
                    warn!(%error, took_ms, unlogged, "OTLP export failed");
                }
            }
        }
    }

    /// Collects, reads the instruments against that collection, sends.
    /// Returns the number of data points sent.
    async fn export(
        &self,
        flight: &Arc<SingleFlight>,
        budget: Duration,
    ) -> Result<usize, ExportError> {
        let collection = flight.collect(budget).await.map_err(ExportError::Collect)?;
        let (pinned, reader) = (Arc::clone(&self.pinned), self.reader.clone());
        // The callbacks walk the whole inventory: off the async threads (a
        // blocking thread that takes the capability drop first).
        let metrics = crate::privileges::spawn_blocking(move || {
            pinned.read_with(collection, || {
                let mut metrics = ResourceMetrics::default();
                reader.collect(&mut metrics).map(|()| metrics)
            })
        })
        .await
        .map_err(|e| ExportError::Read(e.to_string()))?
        .map_err(|e| ExportError::Read(e.to_string()))?;
        let points = count_points(&metrics);
        self.exporter
            .export(&metrics)
            .await
            .map_err(|error| self.send_error(error))?;
        Ok(points)
    }

    fn send_error(&self, error: opentelemetry_sdk::error::OTelSdkError) -> ExportError {
        send_error(
            self.no_response.as_ref(),
            self.config.metrics.request_timeout,
            error,
        )
    }
}

/// What the push needs once the source is loaded.
pub struct PushSource {
    pub flight: Arc<SingleFlight>,
    /// The events log, when events are on.
    pub events: Option<Arc<EventLog>>,
}

/// The SDK's error, or the client's cause when there was no response.
pub(super) fn send_error(
    no_response: Option<&NoResponseCause>,
    request_timeout: Duration,
    error: opentelemetry_sdk::error::OTelSdkError,
) -> ExportError {
    let cause = no_response.and_then(|latest| crate::sync::lock(latest).take());
    match cause {
        Some(NoResponse::TimedOut) => ExportError::RequestTimeout(request_timeout),
        Some(NoResponse::Failed(cause)) => ExportError::NoResponse(cause),
        None => ExportError::Send(error),
    }
}

fn count_points(metrics: &ResourceMetrics) -> usize {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    fn len<T>(data: &MetricData<T>) -> usize {
        match data {
            MetricData::Gauge(g) => g.data_points().count(),
            MetricData::Sum(s) => s.data_points().count(),
            _ => 0,
        }
    }
    metrics
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .map(|m| match m.data() {
            AggregatedMetrics::F64(d) => len(d),
            AggregatedMetrics::U64(d) => len(d),
            AggregatedMetrics::I64(d) => len(d),
        })
        .sum()
}

/// The manual reader, shared between the provider (which registers its
/// pipeline) and the export loop (which calls `collect`).
#[derive(Clone, Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

impl fmt::Debug for Pusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pusher")
            .field("config", &self.config)
            .finish()
    }
}
