//! Single flight: concurrent requests share one kernel read. The first request
//! starts a collection on a blocking thread; requests arriving while it runs
//! wait for the same result. Each waiter has its own timeout; a collection
//! whose waiters gave up still finishes and frees the slot.
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use tokio::sync::{watch, OnceCell};
use tracing::{debug, warn};

use super::{EventObserver, EventStats, ExportCounters, ExportStats, KernelSource};
use crate::{
    bpf::{map_memory::MapMemory, Availability},
    inventory::{Collector, Inventory},
    sync::lock,
};

/// What produces inventories: the kernel ([`KernelSource`]) or a fixed snapshot in tests.
pub trait InventorySource: Send + 'static {
    fn collect(&mut self) -> Inventory;

    /// The map memory cache a background refresher keeps current, if any.
    fn map_memory(&self) -> Option<Arc<MapMemory>> {
        None
    }

    /// Collectors this kernel cannot provide; their failure does not make the
    /// exporter unready.
    fn unavailable(&self) -> Vec<Collector> {
        Vec::new()
    }
}

impl InventorySource for KernelSource {
    fn collect(&mut self) -> Inventory {
        KernelSource::collect(self)
    }

    fn map_memory(&self) -> Option<Arc<MapMemory>> {
        self.map_memory_cache()
    }

    /// Collectors whose iterator the kernel lacks or refused at load: they
    /// cannot recover, so they do not keep the exporter unready.
    fn unavailable(&self) -> Vec<Collector> {
        Collector::ALL
            .into_iter()
            .filter(|&c| *self.support().availability(c) != Availability::Loaded)
            .collect()
    }
}

/// One finished collection and the exporter's own counters at that moment.
#[derive(Debug)]
pub struct Collection {
    pub inventory: Inventory,
    pub stats: CollectionStats,
    /// The inventory as JSON, encoded by the first request that asks for it.
    inventory_json: OnceCell<Bytes>,
    /// Run after the inventory is freed (see `Drop`).
    _released: ReleaseHook,
}

impl Collection {
    /// The whole inventory as JSON (`/api/v1/inventory`): encoded once per
    /// collection on a blocking thread, shared by every request of it, and
    /// freed with it.
    pub async fn inventory_json(self: &Arc<Self>) -> Result<Bytes, EncodeError> {
        let this = Arc::clone(self);
        let json = self
            .inventory_json
            .get_or_try_init(|| async move {
                let json = crate::privileges::spawn_blocking(move || {
                    crate::inventory::json::to_vec(&this.inventory)
                })
                .await
                .map_err(EncodeError::Task)?
                .map_err(EncodeError::Json)?;
                Ok::<_, EncodeError>(Bytes::from(json))
            })
            .await?;
        Ok(json.clone())
    }
}

/// Freeing the objects of a large inventory takes about a millisecond per
/// 10 000 objects, and the last user of a collection is usually a request
/// that is about to answer: inside a runtime they are freed on a blocking
/// thread, off that request's path. The release hook runs after them.
impl Drop for Collection {
    fn drop(&mut self) {
        let objects = (
            std::mem::take(&mut self.inventory.programs),
            std::mem::take(&mut self.inventory.maps),
            std::mem::take(&mut self.inventory.links),
        );
        let released = std::mem::replace(&mut self._released, ReleaseHook(None, 0));
        let free = move || drop((objects, released));
        match tokio::runtime::Handle::try_current() {
            Ok(_) => drop(crate::privileges::spawn_blocking(free)),
            Err(_) => free(),
        }
    }
}

/// Encoding the inventory as JSON failed: a bug.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("the encoding task failed: {0}")]
    Task(tokio::task::JoinError),
    #[error("encoding the inventory failed: {0}")]
    Json(serde_json::Error),
}

/// Called with a collection's number once its last user drops it (see
/// [`SingleFlight::set_release_hook`]).
pub type ReleaseFn = Arc<dyn Fn(u64) + Send + Sync>;

struct ReleaseHook(Option<ReleaseFn>, u64);

impl Drop for ReleaseHook {
    fn drop(&mut self) {
        if let Some(hook) = &self.0 {
            hook(self.1);
        }
    }
}

impl std::fmt::Debug for ReleaseHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ReleaseHook(set)"
        } else {
            "ReleaseHook(none)"
        })
    }
}

/// The exporter's view of a collection, rendered as `bpf_exporter_*` metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionStats {
    /// Wall time of this collection.
    pub duration: Duration,
    /// Kernel collections done by this process, this one included.
    pub collections_total: u64,
    /// Failed collections per collector since start, this one included.
    pub collector_errors_total: [(Collector, u64); 3],
    /// Age of the map memory values, once a background refresh has run.
    pub map_memory_age: Option<Duration>,
    /// The OTLP push's counters, when it is configured.
    pub otlp: Option<ExportStats>,
    /// The BPF events' counters, when events are on.
    pub events: Option<EventStats>,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum CollectError {
    #[error("the collection did not finish within {0:?} (raise --collection-timeout or the scrape timeout)")]
    Timeout(Duration),
    #[error("the collection was aborted: {0}")]
    Aborted(String),
}

type Outcome = Result<Arc<Collection>, CollectError>;

struct RunningCollection {
    result: watch::Receiver<Option<Outcome>>,
    started: Instant,
}

/// Shares one kernel read between concurrent callers.
pub struct SingleFlight {
    source: Mutex<Box<dyn InventorySource>>,
    map_memory: Option<Arc<MapMemory>>,
    unavailable: Vec<Collector>,
    flight: Mutex<Option<RunningCollection>>,
    collections_total: AtomicU64,
    collector_errors_total: [AtomicU64; 3],
    /// Collectors that failed in the latest finished collection. Only this
    /// summary is kept, not the collection: an idle exporter holds no inventory.
    last_failed: Mutex<Option<Vec<Collector>>>,
    release_hook: OnceLock<ReleaseFn>,
    export_counters: OnceLock<Arc<ExportCounters>>,
    events: OnceLock<Arc<dyn EventObserver>>,
}

impl SingleFlight {
    pub fn new(source: Box<dyn InventorySource>) -> Arc<Self> {
        Arc::new(Self {
            map_memory: source.map_memory(),
            unavailable: source.unavailable(),
            source: Mutex::new(source),
            flight: Mutex::new(None),
            collections_total: AtomicU64::new(0),
            collector_errors_total: Default::default(),
            last_failed: Mutex::new(None),
            release_hook: OnceLock::new(),
            export_counters: OnceLock::new(),
            events: OnceLock::new(),
        })
    }

    /// Runs `hook` each time a collection is dropped by its last user (the
    /// server drops the collection's pages and returns freed memory to the
    /// system there). Later calls are ignored.
    pub fn set_release_hook(&self, hook: ReleaseFn) {
        let _ = self.release_hook.set(hook);
    }

    /// Makes every later collection carry the OTLP push's counters. Later
    /// calls are ignored.
    pub fn set_export_counters(&self, counters: Arc<ExportCounters>) {
        let _ = self.export_counters.set(counters);
    }

    /// Makes every later collection tell `events` its programs and carry
    /// the events' counters. Later calls are ignored.
    pub fn set_event_observer(&self, events: Arc<dyn EventObserver>) {
        let _ = self.events.set(events);
    }

    /// Joins the collection in flight or starts one, and waits at most `timeout`.
    pub async fn collect(self: &Arc<Self>, timeout: Duration) -> Outcome {
        let mut result = {
            let mut flight = lock(&self.flight);
            match &*flight {
                Some(running) => running.result.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    *flight = Some(RunningCollection {
                        result: rx.clone(),
                        started: Instant::now(),
                    });
                    tokio::spawn(Arc::clone(self).run_flight(tx));
                    rx
                }
            }
        };
        let waited = tokio::time::timeout(timeout, result.wait_for(Option::is_some)).await;
        match waited {
            Err(_elapsed) => Err(CollectError::Timeout(timeout)),
            Ok(Err(_closed)) => Err(CollectError::Aborted(
                "the collection task ended without a result (shutting down?)".into(),
            )),
            Ok(Ok(outcome)) => outcome
                .clone()
                .unwrap_or_else(|| Err(CollectError::Aborted("empty collection result".into()))),
        }
    }

    async fn run_flight(self: Arc<Self>, tx: watch::Sender<Option<Outcome>>) {
        let this = Arc::clone(&self);
        let outcome = crate::privileges::spawn_blocking(move || this.collect_now())
            .await
            .map_err(|e| {
                warn!(error = %e, "collection task failed");
                CollectError::Aborted(e.to_string())
            });
        // Free the slot before publishing: a request arriving after the result
        // must not be served a read that started before it.
        *lock(&self.flight) = None;
        tx.send_replace(Some(outcome));
    }

    fn collect_now(&self) -> Arc<Collection> {
        let started = Instant::now();
        let inventory = lock(&self.source).collect();
        let duration = started.elapsed();
        let collections_total = self.collections_total.fetch_add(1, Ordering::Relaxed) + 1;
        let collector_errors_total = Collector::ALL.map(|c| {
            let counter = &self.collector_errors_total[c as usize];
            let failed = u64::from(!inventory.collector_ok(c));
            (c, counter.fetch_add(failed, Ordering::Relaxed) + failed)
        });
        debug!(
            collections_total,
            duration_ms = duration.as_secs_f64() * 1e3,
            "collected"
        );
        *lock(&self.last_failed) = Some(inventory.errors.iter().map(|e| e.collector).collect());
        let events = self.events.get().map(|e| e.observe(&inventory.programs));
        Arc::new(Collection {
            inventory,
            stats: CollectionStats {
                duration,
                collections_total,
                collector_errors_total,
                map_memory_age: self.map_memory.as_ref().and_then(|m| m.age()),
                otlp: self.export_counters.get().map(|c| c.snapshot()),
                events,
            },
            inventory_json: OnceCell::new(),
            _released: ReleaseHook(self.release_hook.get().cloned(), collections_total),
        })
    }

    /// Why the exporter is not ready, or None when it is: a collection has
    /// finished, every collector this kernel supports succeeded in the latest
    /// one, and no collection has been running longer than `stuck_after`.
    pub fn unready_reason(&self, stuck_after: Duration) -> Option<String> {
        if let Some(flight) = &*lock(&self.flight) {
            if flight.started.elapsed() > stuck_after {
                return Some(format!(
                    "a collection has been running for {:?}",
                    flight.started.elapsed()
                ));
            }
        }
        let last_failed = lock(&self.last_failed);
        let Some(last_failed) = &*last_failed else {
            return Some("no collection has finished yet".into());
        };
        let failed: Vec<&str> = last_failed
            .iter()
            .filter(|c| !self.unavailable.contains(c))
            .map(|c| c.as_str())
            .collect();
        (!failed.is_empty()).then(|| format!("collectors failed: {}", failed.join(", ")))
    }

    /// The map memory cache the collections read (for its refresher).
    pub fn map_memory(&self) -> Option<Arc<MapMemory>> {
        self.map_memory.clone()
    }
}

#[cfg(test)]
mod tests;
