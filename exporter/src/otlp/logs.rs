//! The BPF program load/unload events as OTLP log records: one record per
//! event, its attributes the event's `/api/v1/events` JSON fields (a `null`
//! field is no attribute), sent with opentelemetry-otlp's log exporter to the
//! same collector as the metrics.
//!
//! The event log is the only buffer: the push is a cursor into it (the
//! sequence number of the last event sent), like an `/api/v1/events/stream`
//! client, reading at most [`PAGE`] events per request. A failed send does not
//! move the cursor, so the same events are tried again after the next export
//! interval; a collector down longer than the log holds costs no memory, the
//! events that left the log unsent are counted
//! (`bpf_exporter_otlp_events_dropped_total`) and logged once per 10 s.
//!
//! Why not the SDK's `BatchLogRecordProcessor`: it copies every record into
//! its own queue and drops the newest when full, silently as far as we are
//! concerned; reading the log by sequence number keeps the oldest unsent
//! events, knows exactly how many were lost, and retries without a copy.
use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use opentelemetry::{
    logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity},
    InstrumentationScope,
};
use opentelemetry_otlp::LogExporter;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter as _, SdkLogRecord, SdkLogger, SdkLoggerProvider,
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{
    config::Transport,
    exporter::{log_exporter, NoResponseCause, PushError},
    push::{send_error, ExportError, FAILURE_KINDS, FLUSH_BUDGET},
};
use crate::{
    collect::ExportCounters,
    events::{Event, EventFilter, EventKind, EventLog},
    log_limit::LogLimit,
};

/// Most events one request carries.
pub const PAGE: usize = 512;

/// Events that arrive within this time after the first waiting one go in
/// the same request. Events are sent this soon, not at the next export
/// interval (60 s by default): they are what an operator is alerted on, and
/// a burst still makes one request per page, not one per event.
const BATCH_DELAY: Duration = Duration::from_millis(500);

pub(super) struct EventPush {
    transport: Transport,
    exporter: LogExporter,
    no_response: Option<NoResponseCause>,
    /// Only makes the records (no processor): the sending is ours.
    logger: SdkLogger,
    provider: SdkLoggerProvider,
    scope: InstrumentationScope,
    counters: Arc<ExportCounters>,
    /// Bound of one request's send, retries included (the export timeout).
    timeout: Duration,
    /// How long a failed send waits before the next try (the export interval).
    retry_after: Duration,
    failures_logged: LogLimit<FAILURE_KINDS>,
    dropped_logged: LogLimit<1>,
    /// Events dropped since the last line saying so.
    dropped_unlogged: u64,
    /// Sends failed since the last success.
    failing: u64,
}

impl EventPush {
    pub(super) fn new(
        transport: Transport,
        timeout: Duration,
        retry_after: Duration,
        counters: Arc<ExportCounters>,
    ) -> Result<Self, PushError> {
        let (mut exporter, no_response) = log_exporter(&transport)?;
        exporter.set_resource(&super::resource::resource());
        let provider = SdkLoggerProvider::builder().build();
        let scope = InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(Self {
            transport,
            exporter,
            no_response,
            logger: provider.logger_with_scope(scope.clone()),
            provider,
            scope,
            counters,
            timeout,
            retry_after,
            failures_logged: LogLimit::new(),
            dropped_logged: LogLimit::new(),
            dropped_unlogged: 0,
            failing: 0,
        })
    }

    /// Sends every event of `log` as it comes, until `stopped`; then the
    /// events still waiting, within [`FLUSH_BUDGET`].
    pub(super) async fn run(mut self, log: Arc<EventLog>, mut stopped: watch::Receiver<bool>) {
        info!(
            endpoint = %self.transport.endpoint,
            protocol = ?self.transport.protocol,
            "pushing BPF load/unload events as OTLP log records"
        );
        let mut newest = log.subscribe();
        // The log starts with the process: from 0 is every event it has.
        let mut after = 0;
        loop {
            tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => break,
                waiting = newest.wait_for(|&seq| seq > after) => if waiting.is_err() { break },
            }
            tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => break,
                () = tokio::time::sleep(BATCH_DELAY) => {}
            }
            // A stop cuts a send short: the flush below sends the same events.
            let sent = tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => break,
                sent = self.send_waiting(&log, &mut after, self.timeout, false) => sent,
            };
            if !sent {
                tokio::select! {
                    biased;
                    _ = stopped.wait_for(|stop| *stop) => break,
                    () = tokio::time::sleep(self.retry_after) => {}
                }
            }
        }
        let deadline = Instant::now() + FLUSH_BUDGET;
        let flush = self.send_waiting(&log, &mut after, FLUSH_BUDGET, true);
        if tokio::time::timeout_at(deadline.into(), flush)
            .await
            .is_err()
        {
            warn!(budget = ?FLUSH_BUDGET, "the last OTLP log export did not finish in time");
        }
        if let Err(error) = self.provider.shutdown() {
            debug!(%error, "logger provider shutdown");
        }
    }

    /// Sends the events after `after`, a page per request, moving `after`
    /// past each page sent; false at the first failure (logged). Each
    /// request is bounded by `budget`.
    async fn send_waiting(
        &mut self,
        log: &EventLog,
        after: &mut u64,
        budget: Duration,
        last: bool,
    ) -> bool {
        loop {
            let page = log.page(*after, PAGE, &EventFilter::default());
            if page.dropped > 0 {
                self.dropped(page.dropped);
            }
            if page.items.is_empty() {
                *after = page.next_since;
                return true;
            }
            let result = match tokio::time::timeout(budget, self.send(&page.items)).await {
                Ok(result) => result,
                Err(_) => Err(ExportError::Timeout(budget)),
            };
            if let Err(error) = result {
                self.failed(&error, last);
                // The next try starts after the events already counted as dropped.
                *after = page.items[0].seq - 1;
                return false;
            }
            *after = page.next_since;
            if self.failing > 0 {
                info!(
                    failed = self.failing,
                    "OTLP log export succeeded after failures"
                );
                self.failing = 0;
            }
            debug!(records = page.items.len(), "OTLP log export done");
        }
    }

    async fn send(&self, events: &[Event]) -> Result<(), ExportError> {
        let records: Vec<SdkLogRecord> = events.iter().map(|e| self.record(e)).collect();
        let batch: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|r| (r, &self.scope)).collect();
        self.exporter
            .export(LogBatch::new(&batch))
            .await
            .map_err(|error| {
                send_error(
                    self.no_response.as_ref(),
                    self.transport.request_timeout,
                    error,
                )
            })
    }

    fn record(&self, event: &Event) -> SdkLogRecord {
        let mut record = self.logger.create_log_record();
        fill_record(&mut record, event);
        record
    }

    fn failed(&mut self, error: &ExportError, last: bool) {
        self.failing += 1;
        // Failures of this kind since its last line, this one excluded.
        let unlogged = if last {
            Some(self.failures_logged.force(error.kind()))
        } else {
            self.failures_logged.admit(error.kind())
        };
        if let Some(unlogged) = unlogged {
            warn!(%error, unlogged, "OTLP log export failed");
        }
    }

    fn dropped(&mut self, count: u64) {
        self.counters.events_dropped(count);
        self.dropped_unlogged += count;
        if self.dropped_logged.admit(0).is_some() {
            warn!(
                dropped = std::mem::take(&mut self.dropped_unlogged),
                "BPF events left the events buffer before the OTLP push sent them"
            );
        }
    }
}

/// The record of one event: its time, INFO, a body and event name by kind,
/// and the event's JSON fields (but `time`) as attributes, `null` ones left out.
fn fill_record(record: &mut impl LogRecord, event: &Event) {
    let (name, body) = match event.kind {
        EventKind::Load => ("bpf.prog.load", "BPF program load"),
        EventKind::Unload => ("bpf.prog.unload", "BPF program unload"),
    };
    record.set_event_name(name);
    record.set_body(AnyValue::from(body));
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.set_timestamp(SystemTime::from(event.time));
    record.set_observed_timestamp(SystemTime::now());
    // From the JSON itself, so the attributes cannot drift from the API's fields.
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(event) else {
        return;
    };
    for (key, value) in fields {
        let value = match value {
            serde_json::Value::Null => continue,
            _ if key == "time" => continue,
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(n) => AnyValue::Int(n),
                None => AnyValue::String(n.to_string().into()),
            },
            serde_json::Value::String(s) => AnyValue::String(s.into()),
            serde_json::Value::Bool(b) => AnyValue::Boolean(b),
            other => AnyValue::String(other.to_string().into()),
        };
        record.add_attribute(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_event;

    #[test]
    fn a_record_has_the_events_json_fields_and_no_null_ones() {
        let provider = SdkLoggerProvider::builder().build();
        let logger = provider.logger("test");
        let mut event = sample_event(EventKind::Unload, 77, "agent");
        event.seq = 12;
        let mut record = logger.create_log_record();
        fill_record(&mut record, &event);
        let mut attributes: Vec<(String, AnyValue)> = record
            .attributes_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        attributes.sort_by(|a, b| a.0.cmp(&b.0));
        let s = |v: &str| AnyValue::String(v.to_owned().into());
        assert_eq!(
            attributes,
            vec![
                ("cgroup".into(), s(event.cgroup.as_deref().unwrap())),
                ("comm".into(), s("agent")),
                ("kind".into(), s("unload")),
                ("name".into(), s("probe")),
                ("pid".into(), AnyValue::Int(4242)),
                ("pod_uid".into(), s(event.pod_uid.as_deref().unwrap())),
                ("prog_id".into(), AnyValue::Int(77)),
                ("seq".into(), AnyValue::Int(12)),
                ("tag".into(), s("59f4a931744dcdc6")),
                ("tid".into(), AnyValue::Int(4243)),
            ]
        );
        assert_eq!(record.event_name(), Some("bpf.prog.unload"));
        assert_eq!(record.severity_number(), Some(Severity::Info));
        assert_eq!(record.body(), Some(&s("BPF program unload")));
        assert_eq!(record.timestamp(), Some(SystemTime::from(event.time)));
    }
}
