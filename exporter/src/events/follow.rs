//! `bpf-inventory-exporter events`: follow loads and unloads live on stdout,
//! one line per event (text like auditd's BPF records, or one JSON object),
//! for a node shell or `kubectl exec`. Same reader and log as `serve`.
use std::{io::Write, sync::Arc};

use tokio::task::JoinHandle;

use super::{spawn_reader, EventFilter, EventLog, Reader};
use crate::bpf::perf_events::{EventsError, ProgEventRings, DEFAULT_DATA_PAGES};

/// Events kept between two writes to stdout.
const FOLLOW_BUFFER: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Open(#[from] EventsError),
    #[error("registering the events rings with the runtime failed: {0}")]
    Register(std::io::Error),
    #[error("writing an event failed: {0}")]
    Write(std::io::Error),
    #[error("encoding an event failed: {0}")]
    Encode(serde_json::Error),
    #[error("starting the runtime or the signal handlers failed: {0}")]
    Runtime(std::io::Error),
}

/// [`follow`] on stdout, on a runtime of its own, until SIGINT or SIGTERM.
pub fn follow_until_signal(json: bool) -> Result<(), FollowError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(FollowError::Runtime)?;
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate()).map_err(FollowError::Runtime)?;
        let stop = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        };
        let ready = || tracing::info!("following BPF program loads and unloads");
        follow(json, std::io::stdout().lock(), ready, stop).await
    })
}

/// Opens the rings (needs CAP_PERFMON) into a log of `capacity` events that
/// a reader task of its own fills: what `events` and `top` follow.
pub fn open_log(capacity: usize) -> Result<(Arc<EventLog>, JoinHandle<()>), FollowError> {
    let rings = ProgEventRings::open(DEFAULT_DATA_PAGES)?;
    let log = EventLog::new(capacity);
    let reader =
        spawn_reader(Reader::new(rings, Arc::clone(&log))).map_err(FollowError::Register)?;
    Ok((log, reader))
}

/// Opens the rings (needs CAP_PERFMON) and writes every event to `out` until
/// `stop` resolves; `ready` is called once the rings are open.
pub async fn follow(
    json: bool,
    mut out: impl Write,
    ready: impl FnOnce(),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), FollowError> {
    let (log, reader) = open_log(FOLLOW_BUFFER)?;
    let mut newest = log.subscribe();
    ready();
    tokio::pin!(stop);
    let mut since = 0;
    loop {
        tokio::select! {
            () = &mut stop => break,
            changed = newest.changed() => if changed.is_err() { break },
        }
        let page = log.page(since, FOLLOW_BUFFER, &EventFilter::default());
        if page.dropped > 0 || page.lost > 0 {
            tracing::warn!(dropped = page.dropped, lost = page.lost, "events missed");
        }
        for event in &page.items {
            let line = if json {
                serde_json::to_string(event).map_err(FollowError::Encode)?
            } else {
                event.text_line()
            };
            writeln!(out, "{line}").map_err(FollowError::Write)?;
        }
        out.flush().map_err(FollowError::Write)?;
        since = page.next_since;
    }
    reader.abort();
    Ok(())
}
