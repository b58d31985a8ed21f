//! glibc malloc settings for `serve` (not an HTTP concern: the server only
//! asks the [`Trimmer`] for a trim when a collection is released): its working set is one inventory and a
//! few multi-MB pages per collection, all freed once the scrapes of that
//! collection are answered. By default glibc keeps such memory: one arena per
//! thread (tokio workers, blocking threads), and a dynamic mmap threshold that
//! moves multi-MB buffers into those arenas after the first one is freed. We
//! cap the arenas, fix the threshold, and trim after each collection.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Notify;
use tracing::{debug, warn};

/// Arenas for all threads: contention is low (two hot paths, both short).
const ARENA_MAX: i32 = 2;
/// Allocations from this size on get their own mapping and go back to the
/// system on free: the rendered page, its gzip, the record buffers.
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// Time without a released collection before a trim.
pub const QUIET: Duration = Duration::from_millis(300);

/// Applies the settings above; call first thing, before threads start.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    {
        for (name, param, value) in [
            ("M_ARENA_MAX", libc::M_ARENA_MAX, ARENA_MAX),
            ("M_MMAP_THRESHOLD", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ] {
            // SAFETY: mallopt only changes allocator parameters; it takes
            // glibc's own lock and accepts any value (returns 0 if rejected).
            if unsafe { libc::mallopt(param, value) } == 0 {
                warn!(param = name, value, "mallopt refused the setting");
            }
        }
    }
}

/// Returns free heap pages to the system, on a blocking thread, once no
/// collection has been dropped for [`QUIET`]: trimming after every scrape
/// made the next one fault its memory back in (+3 ms per sequential scrape at
/// 10 000 maps), so back-to-back scrapes and load tests are left alone and an
/// exporter scraped every few seconds trims between scrapes.
#[derive(Default)]
pub struct Trimmer {
    wanted: Notify,
}

impl Trimmer {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Asks for a trim; cheap, callable from any thread.
    pub fn request(&self) {
        self.wanted.notify_one();
    }

    /// Trims whenever asked; runs until the runtime stops.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.wanted.notified().await;
            // Each release within the quiet time starts it again.
            while tokio::time::timeout(QUIET, self.wanted.notified())
                .await
                .is_ok()
            {}
            match crate::privileges::spawn_blocking(trim).await {
                Ok(took) => debug!(took_us = took.as_micros(), "malloc_trim"),
                Err(error) => warn!(%error, "malloc_trim task failed"),
            }
        }
    }
}

fn trim() -> Duration {
    let started = Instant::now();
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of glibc's arenas under
    // their locks; live allocations are untouched.
    unsafe {
        libc::malloc_trim(0);
    }
    started.elapsed()
}
