//! The BPF events' counters as every collection carries them
//! (`CollectionStats::events`), so renderers get them as data: `collect`
//! does not depend on `events`, the event log implements [`EventObserver`].
use std::sync::Arc;

use crate::inventory::Program;

/// Who loaded or unloaded programs: the label set of the event counters.
/// None where the process was gone before the event was read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoaderLabels {
    pub comm: Option<Arc<str>>,
    pub container_id: Option<Arc<str>>,
    pub pod_uid: Option<Arc<str>>,
}

/// Counters since the exporter started, at one collection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Program loads per loader, sorted by labels.
    pub loads: Vec<(LoaderLabels, u64)>,
    /// Program unloads per task that freed them, sorted by labels.
    pub unloads: Vec<(LoaderLabels, u64)>,
    /// Programs loaded and unloaded without any collection seeing them.
    pub short_lived: u64,
    /// Records the kernel dropped because a ring was full (`PERF_RECORD_LOST`).
    pub lost: u64,
}

/// Told the programs of each collection (which the short-lived count and the
/// events' program types need), answers the counters at that moment.
pub trait EventObserver: Send + Sync {
    fn observe(&self, programs: &[Program]) -> EventStats;
}
