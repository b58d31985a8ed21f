//! The OTLP push's own counters: exports by result, the latest one's
//! duration and the events it could not send, kept here so that collections carry them without `collect`
//! depending on `otlp`.
//! Every collection carries a snapshot (`CollectionStats::otlp`), so they are
//! on `/metrics` and in the next export.
use std::{sync::Mutex, time::Duration};

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub succeeded: u64,
    pub failed: u64,
    /// Duration of the latest finished export, success or not.
    pub last_duration: Option<Duration>,
    /// Load/unload events that left the events buffer before the push sent
    /// them as log records.
    pub events_dropped: u64,
}

#[derive(Debug, Default)]
pub struct ExportCounters(Mutex<ExportStats>);

impl ExportCounters {
    pub fn record(&self, succeeded: bool, took: Duration) {
        let mut stats = crate::sync::lock(&self.0);
        if succeeded {
            stats.succeeded += 1;
        } else {
            stats.failed += 1;
        }
        stats.last_duration = Some(took);
    }

    pub fn events_dropped(&self, count: u64) {
        crate::sync::lock(&self.0).events_dropped += count;
    }

    pub fn snapshot(&self) -> ExportStats {
        *crate::sync::lock(&self.0)
    }
}
