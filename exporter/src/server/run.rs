//! The `serve` process: listen at once (so `/healthz` answers while the
//! iterators load), load the source in the background, drop the capabilities
//! collections do not use, keep the map memory cache fresh, and stop on
//! SIGTERM/SIGINT: in-flight requests finish, the rest is cut off after a
//! grace period, the BPF objects are released. With an OTLP endpoint the push
//! runs alongside (or alone: no port at all) and flushes once more on the stop
//! signal. SIGHUP reloads the web config.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpSocket},
    signal::unix::{signal, Signal, SignalKind},
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tracing::{error, info, warn};

use super::{
    app,
    connections::{self, ConnectionLimits},
    web_config::WebConfigHandle,
    AppState, ServerConfig,
};
use crate::{
    bpf::{self, perf_events::ProgEventRings},
    collect::{refresh_map_memory_every, EventObserver, KernelSource, Options, SingleFlight},
    events::{spawn_reader, EventLog, Reader},
    otlp::{PushConfig, PushError, PushSource, Pusher},
    privileges,
};

/// Connections still open this long after the stop signal are closed; with
/// the runtime's shutdown this keeps the exit within 2 s.
const GRACE: Duration = Duration::from_millis(1500);

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub listen: SocketAddr,
    pub source: Options,
    pub server: ServerConfig,
    pub connections: ConnectionLimits,
    /// `--web.config.file`, loaded (or none).
    pub web_config: Arc<WebConfigHandle>,
    /// Interval of the background map memory refresh; None switches it off.
    pub map_memory_refresh: Option<Duration>,
    /// Serve HTTP on `listen`; false for a push-only agent that opens no port.
    pub http: bool,
    /// Push OTLP metrics, when configured.
    pub otlp: Option<PushConfig>,
    /// Events kept for the API (`--events-buffer`); None: no events (`--no-events`).
    pub events_buffer: Option<usize>,
    /// Data pages of each CPU's events ring (tests make it small to overflow it).
    pub events_ring_pages: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install the {signal} handler")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
    #[error(transparent)]
    Source(#[from] bpf::Error),
    #[error(transparent)]
    Privileges(#[from] privileges::PrivilegeError),
    #[error("loading the BPF iterators panicked: {0}")]
    LoadPanicked(String),
    #[error(transparent)]
    Push(#[from] PushError),
}

/// Serves until SIGTERM/SIGINT, or until loading the iterators fails.
pub async fn run(options: RunOptions) -> Result<(), ServeError> {
    let listener = if options.http {
        Some(listen(options.listen).map_err(|source| ServeError::Bind {
            address: options.listen,
            source,
        })?)
    } else {
        None
    };
    // Built before loading: a bad exporter configuration fails the start.
    let pusher = options.otlp.clone().map(Pusher::new).transpose()?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|source| ServeError::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|source| ServeError::Signal {
        signal: "SIGINT",
        source,
    })?;
    // SIGHUP's default action kills the process: take it over for good.
    let hangup = signal(SignalKind::hangup()).map_err(|source| ServeError::Signal {
        signal: "SIGHUP",
        source,
    })?;
    // Said once the signal handlers are in place: from here a stop is graceful.
    match &listener {
        Some(listener) => {
            let address = listener.local_addr().map_err(ServeError::Http)?;
            info!(%address, "listening");
        }
        None => info!("push only: no HTTP port"),
    }
    if options.web_config.has_file() && options.web_config.current().empty_file {
        warn!("--web.config.file is empty or only comments: no TLS and no authentication, as in exporter-toolkit (a reload to an empty file is refused)");
    }
    tokio::spawn(reload_web_config(Arc::clone(&options.web_config), hangup));

    let state = AppState::with_web_config(options.server.clone(), Arc::clone(&options.web_config));
    let (stop, stopped) = watch::channel(false);
    let (loaded, on_load) = oneshot::channel();
    let pusher = pusher.map(|pusher| tokio::spawn(pusher.run(on_load, stopped.clone())));
    let mut loader = tokio::spawn(load(state.clone(), options.clone(), stop.clone(), loaded));
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        info!(signal = name, "stopping: finishing requests in flight");
        stop.send_replace(true);
    });

    let server = async {
        match listener {
            Some(listener) => {
                connections::serve(
                    listener,
                    app(state),
                    options.connections,
                    Arc::clone(&options.web_config),
                    stopped.clone(),
                )
                .await
            }
            None => wait_for(stopped.clone()).await,
        }
    };
    let cut_off = async {
        wait_for(stopped.clone()).await;
        tokio::time::sleep(GRACE).await;
    };
    // This future runs on the main thread: it takes the privilege drop too.
    let drop_on_main_thread = async {
        privileges::dropped().await;
        if let Err(error) = privileges::apply_on_this_thread() {
            tracing::error!(%error, "dropping capabilities on the main thread failed");
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = server => {}
        () = cut_off => warn!(grace = ?GRACE, "requests still open after the grace period: closing them"),
        () = drop_on_main_thread => {}
    }
    // The push's last export runs meanwhile, bounded by its flush budget.
    if let Some(pusher) = pusher {
        if tokio::time::timeout(PUSHER_WAIT, pusher).await.is_err() {
            warn!("the last OTLP export did not finish in time");
        }
    }
    // Stopped while still loading (or in the first collection): do not wait
    // for it beyond a moment; the runtime's shutdown leaves the blocking read.
    let loader = match tokio::time::timeout(LOADER_WAIT, &mut loader).await {
        Ok(done) => done,
        Err(_) => {
            loader.abort();
            info!("stopped during start-up");
            return Ok(());
        }
    };
    match loader {
        Ok(Ok(refresher)) => {
            if let Some(refresher) = refresher {
                refresher.abort();
            }
            info!("stopped; BPF iterators released");
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(e) => Err(ServeError::LoadPanicked(e.to_string())),
    }
}

/// A listening socket whose accept queue is as long as the system allows.
/// mio (under tokio's `TcpListener::bind`) asks for 128 like std: a burst
/// of connections (many scrapers, a load balancer's health checks) then
/// overflows it, the kernel drops SYNs and each dropped client waits a
/// second for its SYN to be retried.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As mio does: a restart can bind while old connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(listen_backlog())
}

/// `net.core.somaxconn` of our network namespace, the kernel's cap on any
/// backlog, as Go's net package reads it; 4096 (its default since Linux 5.4)
/// when it cannot be read.
fn listen_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|&backlog| backlog > 0)
        .unwrap_or(4096)
}

/// How often the web config's files are checked for a change.
const WEB_CONFIG_POLL: Duration = Duration::from_secs(1);

/// Reloads `--web.config.file` on SIGHUP and when it or a file it names
/// changes; a file that is broken or would lower security keeps the
/// configuration in force, at ERROR: the exporter now runs a configuration
/// that is not the file's.
async fn reload_web_config(web: Arc<WebConfigHandle>, mut hangup: Signal) {
    let mut poll = tokio::time::interval(WEB_CONFIG_POLL);
    loop {
        let trigger = tokio::select! {
            received = hangup.recv() => match received {
                Some(()) => "SIGHUP",
                None => return,
            },
            _ = poll.tick() => {
                if !web.has_file() || !web.changed() {
                    continue;
                }
                "file changed"
            }
        };
        if !web.has_file() {
            info!("SIGHUP: nothing to reload without --web.config.file");
            continue;
        }
        // Small files, read inline: no blocking thread before the privilege drop.
        match web.reload() {
            Ok(()) => info!(trigger, "web config reloaded"),
            Err(error) => error!(
                trigger,
                %error,
                "web config reload failed: keeping the configuration in force"
            ),
        }
    }
}

/// How long a stop waits for the push's last export (which bounds itself).
const PUSHER_WAIT: Duration = Duration::from_millis(1200);

/// How long a stop waits for a start-up still in progress.
const LOADER_WAIT: Duration = Duration::from_millis(200);

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens at exit.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// The BPF events rings, or None with one line saying why.
fn open_event_rings(data_pages: usize) -> Option<ProgEventRings> {
    match ProgEventRings::open(data_pages) {
        Ok(rings) => Some(rings),
        Err(error) => {
            warn!(%error, "BPF load/unload events unavailable: /api/v1/events answers 503, the rest works");
            None
        }
    }
}

/// Starts the events reader and hands its log to the collections (counters)
/// and the API; returns it for the push.
fn start_events(
    rings: ProgEventRings,
    capacity: usize,
    flight: &Arc<SingleFlight>,
    state: &AppState,
) -> Option<Arc<EventLog>> {
    let log = EventLog::numbered_from_now(capacity);
    match spawn_reader(Reader::new(rings, Arc::clone(&log))) {
        Ok(_reader) => {
            flight.set_event_observer(Arc::clone(&log) as Arc<dyn EventObserver>);
            state.collecting().set_events(Arc::clone(&log));
            info!(buffer = capacity, "BPF load/unload events on");
            Some(log)
        }
        Err(error) => {
            warn!(%error, "BPF load/unload events unavailable: registering the rings failed");
            None
        }
    }
}

/// Loads the iterators, drops the capabilities collections do not use, hands
/// the source to the push (`loaded`), runs a first collection, starts the
/// refresher. On failure the server is told to stop and the error is returned.
async fn load(
    state: AppState,
    options: RunOptions,
    stop: watch::Sender<bool>,
    loaded: oneshot::Sender<PushSource>,
) -> Result<Option<JoinHandle<()>>, ServeError> {
    let source_options = options.source.clone();
    let keep_sys_admin = !source_options.without_map_memory;
    // Opened, then the capabilities dropped, on one blocking thread (so no
    // thread that held them is left idle in the pool).
    let events_buffer = options.events_buffer;
    let ring_pages = options.events_ring_pages;
    let opened = privileges::spawn_blocking(move || {
        let source = KernelSource::open(&source_options)?;
        // CAP_PERFMON is needed to open the rings only: before the drop.
        let rings = events_buffer.and_then(|_| open_event_rings(ring_pages));
        let keep = privileges::needed(keep_sys_admin);
        privileges::drop_to(keep.clone())?;
        let mut kept: Vec<String> = keep.iter().map(ToString::to_string).collect();
        kept.sort();
        info!(
            kept = kept.join(","),
            "capabilities dropped to what collections use; NoNewPrivs set"
        );
        Ok::<_, ServeError>((source, rings))
    })
    .await;
    let (source, rings) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(error)) => {
            stop.send_replace(true);
            return Err(error);
        }
        Err(panic) => {
            stop.send_replace(true);
            std::panic::resume_unwind(panic.into_panic());
        }
    };
    let flight = SingleFlight::new(Box::new(source));
    let events = match (rings, events_buffer) {
        (Some(rings), Some(capacity)) => start_events(rings, capacity, &flight, &state),
        _ => None,
    };
    // Memory freed with a collection (its inventory, pages) goes back to the system.
    tokio::spawn(state.trim_memory());
    state.set_source(Arc::clone(&flight));
    // No receiver when not pushing.
    let _ = loaded.send(PushSource {
        flight: Arc::clone(&flight),
        events,
    });
    let timeout = options.server.collection_timeout;
    match flight.collect(timeout).await {
        Ok(first) => info!(
            programs = first.inventory.programs.len(),
            maps = first.inventory.maps.len(),
            links = first.inventory.links.len(),
            failed_collectors = first.inventory.errors.len(),
            "first collection done: ready"
        ),
        Err(error) => warn!(%error, "first collection failed"),
    }
    Ok(options
        .map_memory_refresh
        .map(|every| tokio::spawn(refresh_map_memory_every(flight, every, timeout))))
}
