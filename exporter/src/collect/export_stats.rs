//! The OTLP push's own counters: exports by result and the latest one's
//! duration, kept here so that collections carry them without `collect`
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

    pub fn snapshot(&self) -> ExportStats {
        *crate::sync::lock(&self.0)
    }
}
