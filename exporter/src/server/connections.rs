//! The connections of `serve`: HTTP/1.1 by hyper with a timer (so the
//! header-read timeout applies), at most `max_connections` open at once, and a
//! graceful stop. Each request head is checked before hyper reads it, so that
//! a malformed one gets our answer, not hyper's empty one (see [`head`]).
//! HTTP/2 is not offered: TLS offers only `http/1.1` by ALPN, and a
//! prior-knowledge preface in clear text gets a GOAWAY with HTTP_1_1_REQUIRED
//! (see [`http2`]).
//!
//! Beyond the cap a new connection is still accepted, and the oldest
//! connection that has no request in progress is closed to make room: idle
//! (or slowly trickling) connections cannot lock out new clients, and no
//! request being answered is cut off. A connection that has not sent a
//! request yet is spared for [`FRESH`] (its request may be on the way). When
//! no connection can be closed, the new one waits until one can.
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use axum::Router;
use hyper::{body::Incoming, server::conn::http1, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::{watch, Notify},
    task::AbortHandle,
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, warn};

use super::{malformed::Refusal, web_config::WebConfigHandle};
use crate::http::malformed::MAX_HEADERS;

mod head;
mod http2;

/// Connection settings of the HTTP server.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time allowed for a request's headers, from when the server starts
    /// waiting for the request: it also closes idle keep-alive connections.
    pub read_header_timeout: Duration,
    /// Connections open at once (see the module comment for what happens beyond).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            read_header_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// File descriptors kept free of connections for the BPF work (iterator
/// links and files, map fds by id, the stats fd), logs and the runtime.
pub const FD_RESERVE: u64 = 128;

/// The connection cap that fits under a soft `RLIMIT_NOFILE` of `fd_limit`.
pub fn fit_connections(wanted: usize, fd_limit: u64) -> Option<usize> {
    let room = usize::try_from(fd_limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    (room >= 1).then(|| wanted.min(room))
}

/// How long a connection that has not sent a request is spared from being
/// closed to make room.
pub const FRESH: Duration = Duration::from_secs(1);

/// What a connection's requests did so far.
#[derive(Default)]
struct Activity {
    /// Requests being answered now.
    in_progress: AtomicUsize,
    /// Whether a request was ever started (then an idle connection is between requests).
    served: AtomicBool,
}

/// A connection: its activity, when it was opened, and how to close it.
struct Entry {
    activity: Arc<Activity>,
    opened: Instant,
    abort: AbortHandle,
    /// Aborted to make room; its socket is open until the task is dropped.
    closing: bool,
}

impl Entry {
    /// Idle between requests, or never sent one for longer than [`FRESH`].
    fn closable(&self, now: Instant) -> bool {
        !self.closing
            && self.activity.in_progress.load(Ordering::Acquire) == 0
            && (self.activity.served.load(Ordering::Acquire)
                || now.duration_since(self.opened) >= FRESH)
    }
}

/// Open connections by age (ids increase).
#[derive(Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Entry>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        // A panic while holding this lock leaves a consistent map (single inserts/removes).
        crate::sync::lock(&self.open)
    }

    /// Closes the oldest closable connection unless one is closing already;
    /// false if none is closing and none can be closed. A closed connection
    /// stays counted until its task has dropped the socket (`Deregister`).
    fn close_oldest_idle(&self) -> bool {
        let mut open = self.lock();
        if open.values().any(|entry| entry.closing) {
            return true;
        }
        let now = Instant::now();
        let count = open.len();
        match open.values_mut().find(|entry| entry.closable(now)) {
            Some(entry) => {
                debug!(
                    open = count,
                    "closing the oldest idle connection to make room"
                );
                entry.closing = true;
                entry.abort.abort();
                true
            }
            None => false,
        }
    }
}

/// Removes its connection from the registry when the connection task ends.
struct Deregister(Arc<Registry>, u64);

impl Drop for Deregister {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

/// Counts a request in progress on its connection while alive.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_progress.fetch_add(1, Ordering::AcqRel);
        activity.served.store(true, Ordering::Release);
        Self(Arc::clone(activity))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `router` on `listener` until `stopped` turns true, then lets the
/// open connections finish their requests and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    web: Arc<WebConfigHandle>,
    mut stopped: watch::Receiver<bool>,
) {
    let registry = Arc::new(Registry::default());
    let mut next_id = 0u64;
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop_requested(&mut stopped) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of fds or a connection reset before accept: wait a
                // moment instead of spinning; say so at most once a minute.
                if last_accept_error.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    warn!(%error, "accepting a connection failed");
                    last_accept_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        make_room(&registry, limits.max_connections).await;
        next_id += 1;
        // TLS as configured now: a reload applies to the next connection.
        let connection = Connection {
            router: router.clone(),
            limits,
            tls: web.current().tls.clone(),
            stopped: stopped.clone(),
        };
        spawn_connection(&registry, next_id, stream, connection);
    }
    drop(listener);
    // Stopping: each connection finishes its request and closes (or is cut
    // off by the caller's grace period).
    while !registry.lock().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens at exit.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Waits until a new connection fits under the cap.
async fn make_room(registry: &Registry, max_connections: usize) {
    while registry.lock().len() >= max_connections {
        if registry.close_oldest_idle() {
            // Until the aborted task has dropped its socket.
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            // Every connection is answering a request: one will be done soon.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What a connection task needs besides its stream.
struct Connection {
    router: Router,
    limits: ConnectionLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    stopped: watch::Receiver<bool>,
}

fn spawn_connection(registry: &Arc<Registry>, id: u64, stream: TcpStream, connection: Connection) {
    let activity = Arc::new(Activity::default());
    let deregister = Deregister(Arc::clone(registry), id);
    let task_activity = Arc::clone(&activity);
    // Held while spawning, so the task's deregistration comes after the insert.
    let mut open = registry.lock();
    let task = tokio::spawn(async move {
        let _deregister = deregister;
        let Connection {
            router,
            limits,
            tls,
            stopped,
        } = connection;
        let served = match tls {
            None => {
                let mut stream = stream;
                if http2::refuse_prior_knowledge(&mut stream, limits.read_header_timeout).await {
                    return;
                }
                serve_http(stream, router, task_activity, limits, stopped).await
            }
            Some(tls) => {
                // The handshake gets the header timeout too (a slow TLS client is a slowloris).
                let handshake = TlsAcceptor::from(tls).accept(stream);
                match tokio::time::timeout(limits.read_header_timeout, handshake).await {
                    Ok(Ok(stream)) => {
                        serve_http(stream, router, task_activity, limits, stopped).await
                    }
                    Ok(Err(error)) => {
                        debug!(%error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!("TLS handshake timed out");
                        return;
                    }
                }
            }
        };
        if let Err(error) = served {
            // Timeouts, resets and malformed requests: the client's business.
            debug!(%error, "connection closed with an error");
        }
    });
    open.insert(
        id,
        Entry {
            activity,
            opened: Instant::now(),
            abort: task.abort_handle(),
            closing: false,
        },
    );
}

/// HTTP/1.1 on `io` until the client or the stop closes it.
async fn serve_http<I>(
    io: I,
    router: Router,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let busy = Busy::new(&activity);
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let refused = Arc::new(Notify::new());
    let io = head::HeadGuard::new(io, Arc::clone(&refused), answer_refused);
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_header_timeout)
        // The guard's limit, stated so that both count alike.
        .max_headers(MAX_HEADERS)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    // A refused head ends the connection like a stop: the requests before
    // it are answered, then the guard writes the refusal.
    tokio::select! {
        served = connection.as_mut() => served,
        () = refused.notified() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = stop_requested(&mut stopped) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

/// What the guard writes for a refused head (made, and counted, once).
fn answer_refused(refused: &head::Refused) -> Vec<u8> {
    Refusal::new(&refused.target, refused.error.clone()).to_http1(refused.head_request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_cap_leaves_the_reserve_free() {
        assert_eq!(fit_connections(512, 1024), Some(512));
        assert_eq!(
            fit_connections(2000, 1024),
            Some(1024 - FD_RESERVE as usize)
        );
        assert_eq!(fit_connections(512, 129), Some(1));
        assert_eq!(fit_connections(512, 128), None);
        assert_eq!(fit_connections(512, 20), None);
    }
}
