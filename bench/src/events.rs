//! What events cost a scrape: `serve` with events on (the default) against a
//! second `serve` started with `--no-events`, GET /metrics of both in the
//! same interleaved rounds; then again while a thread loads and unloads a
//! program at a steady rate (events to read, loads for each collection to
//! match), with both serves' CPU over that phase and the loads the events
//! serve counted (so the phase is known to have produced events).
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{anyhow, Result};
use bpf_inventory_exporter::{
    events::{EventKind, EventLog, DEFAULT_BUFFER},
    testing::sample_event,
};

use crate::{
    http,
    measure::{self, Method, Targets},
    populate::load_socket_filter,
    report::ChurnResult,
    serve::{metric_sum, Serve},
};

/// An event log as `serve`'s after the churn: its whole buffer (the
/// default size) loads and unloads of programs gone before any collection,
/// which every collection's match goes through (`observe`).
pub fn full_log() -> Arc<EventLog> {
    let log = EventLog::new(DEFAULT_BUFFER);
    for i in 0..DEFAULT_BUFFER {
        let kind = [EventKind::Load, EventKind::Unload][i % 2];
        let id = u32::try_from(i / 2).unwrap_or(u32::MAX);
        log.append(sample_event(kind, u32::MAX - id, "churn"));
    }
    log
}

/// A thread that loads a socket filter and closes it (so the kernel unloads
/// it), `per_second` times a second, until stopped (or dropped).
struct Churn {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<u64>>>,
}

impl Churn {
    fn start(per_second: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let period = Duration::from_secs(1) / per_second.max(1);
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut done = 0u64;
            while !flag.load(Ordering::Relaxed) {
                drop(load_socket_filter("bench_churn")?);
                done += 1;
                // A steady rate: the next load at its tick, however long this one took.
                let next = start + period * u32::try_from(done).unwrap_or(u32::MAX);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Ok(done)
        });
        Churn {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the thread; the programs it loaded and unloaded.
    fn finish(mut self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self
            .thread
            .take()
            .ok_or_else(|| anyhow!("churn stopped twice"))?;
        thread
            .join()
            .map_err(|_| anyhow!("the churn thread panicked"))?
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// bpf_prog_loads_total and bpf_exporter_events_lost_total of `serve`, summed.
fn counted(serve: &Serve) -> Option<(f64, f64)> {
    let page = http::get(serve.addr, "/metrics", None).ok()?;
    let page = String::from_utf8_lossy(page.body());
    let sum = |family| metric_sum(&page, family);
    Some((
        sum("bpf_prog_loads_total")?,
        sum("bpf_exporter_events_lost_total")?,
    ))
}

/// The churn phase: programs are loaded and unloaded at `per_second`; after
/// `warmup` (the events serve's buffer fills: every scrape's collection
/// matches the buffered loads against its programs), `reps` interleaved
/// rounds of GET /metrics against both serves.
pub fn churn_phase(
    targets: &mut Targets<'_>,
    (on, off): (&Serve, &Serve),
    per_second: u32,
    warmup: Duration,
    reps: usize,
) -> Result<(Vec<crate::report::MethodResult>, ChurnResult)> {
    let methods = [true, false].map(|events| (Method::MetricsChurn { events }, None));
    let counted_before = counted(on);
    let cpu_before = (on.cpu_seconds()?, off.cpu_seconds()?);
    let started = Instant::now();
    let churn = Churn::start(per_second);
    std::thread::sleep(warmup);
    let timed = measure::interleaved(targets, &methods, reps);
    let programs = churn.finish()?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = (on.cpu_seconds()?, off.cpu_seconds()?);
    // The reader appends an event a few milliseconds after the kernel wrote it.
    std::thread::sleep(Duration::from_millis(200));
    let (loads_counted, lost_counted) = match (counted_before, counted(on)) {
        (Some(before), Some(after)) => (Some(after.0 - before.0), Some(after.1 - before.1)),
        _ => (None, None),
    };
    let result = ChurnResult {
        per_second,
        warmup_seconds: warmup.as_secs_f64(),
        programs,
        seconds,
        loads_counted,
        lost_counted,
        cpu_ms_per_second_on: (cpu_after.0 - cpu_before.0) * 1e3 / seconds,
        cpu_ms_per_second_off: (cpu_after.1 - cpu_before.1) * 1e3 / seconds,
    };
    Ok((timed, result))
}
