//! The background refresh of the map memory cache (`--map-memory-refresh`):
//! kept apart from the single flight, which only reads the cache.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::{debug, warn};

use super::SingleFlight;

/// Keeps the map memory cache fresh: every `every`, collects (through the
/// single flight) to learn the current map ids, then re-reads their memory
/// without holding the source, so scrapes are not blocked meanwhile.
pub async fn refresh_map_memory_every(
    flight: Arc<SingleFlight>,
    every: Duration,
    timeout: Duration,
) {
    let Some(cache) = flight.map_memory() else {
        return;
    };
    // The first tick after one interval: the collection before this one
    // has just read every map's memory (all maps were new to the cache).
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let collection = match flight.collect(timeout).await {
            Ok(collection) => collection,
            Err(error) => {
                warn!(%error, "map memory refresh skipped");
                continue;
            }
        };
        let cache = Arc::clone(&cache);
        let refreshed = crate::privileges::spawn_blocking(move || {
            let ids: Vec<u32> = collection.inventory.maps.iter().map(|m| m.id).collect();
            let started = Instant::now();
            cache.refresh(&ids);
            (ids.len(), started.elapsed())
        })
        .await;
        match refreshed {
            Ok((maps, took)) => debug!(
                maps,
                took_ms = took.as_secs_f64() * 1e3,
                "map memory refreshed"
            ),
            Err(error) => warn!(%error, "map memory refresh failed"),
        }
    }
}
