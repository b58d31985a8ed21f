//! `top`: a live full-screen view of the node's BPF programs (by CPU), maps
//! (by fill), links, owners and load/unload events. Collections run on a
//! thread of their own every interval, events on the reader `serve` uses;
//! the UI thread only receives their results and keys, so it never waits on
//! the kernel. See docs/top.md.
use std::{
    io::{self, IsTerminal},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    time::{Duration, Instant},
};

use ratatui::crossterm::event::{self, Event as TermEvent};

use crate::{
    bpf,
    collect::{self, KernelSource},
    events::{self, Event, EventFilter},
    inventory::Inventory,
};

mod app;
mod format;
mod input;
mod rates;
mod rows;
mod terminal;
mod view;

pub use app::{App, EventsFeed};
pub use terminal::{restore, LogSink};
pub use view::draw;

/// Events the pane keeps and reads at once.
const EVENTS_PAGE: usize = 1000;

#[derive(Clone, Debug)]
pub struct Options {
    /// Time between the starts of two collections.
    pub interval: Duration,
    /// Hold BPF_ENABLE_STATS while `top` runs.
    pub enable_bpf_stats: bool,
    /// Open the events rings for the events pane.
    pub events: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error("top needs a terminal on stdin and stdout (with kubectl: exec -it)")]
    NotATerminal,
    #[error(transparent)]
    Open(#[from] bpf::Error),
    #[error("the terminal failed: {0}")]
    Terminal(io::Error),
    #[error("starting the {what} failed: {cause}")]
    Start {
        what: &'static str,
        cause: io::Error,
    },
}

/// What the UI thread receives.
enum Message {
    Collected(Box<Inventory>, Instant),
    Events(Vec<Event>),
    Terminal(TermEvent),
    TerminalFailed(io::Error),
    Quit,
}

/// Opens the kernel source (before taking the screen, so that a failure is
/// one line on a normal terminal), then runs the view until `q` or a signal.
pub fn run(options: Options) -> Result<(), TopError> {
    if !io::stdin().is_terminal() || !io::stdout().is_terminal() {
        return Err(TopError::NotATerminal);
    }
    let source = KernelSource::open(&collect::Options {
        enable_bpf_stats: options.enable_bpf_stats,
        ..collect::Options::default()
    })?;
    let start = |what, cause| TopError::Start { what, cause };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| start("async runtime", e))?;
    let (tx, rx) = mpsc::channel();
    let feed = {
        let _entered = runtime.enter();
        quit_on_signals(&tx);
        if options.events {
            follow_events(tx.clone())
        } else {
            EventsFeed::Off
        }
    };
    let (stop_collecting, stopped) = mpsc::channel::<()>();
    let interval = options.interval;
    let collect_tx = tx.clone();
    std::thread::Builder::new()
        .name("top-collect".into())
        .spawn(move || collect_every(source, interval, &collect_tx, &stopped))
        .map_err(|e| start("collection thread", e))?;
    let stop_input = Arc::new(AtomicBool::new(false));
    let input_stop = Arc::clone(&stop_input);
    std::thread::Builder::new()
        .name("top-input".into())
        .spawn(move || read_terminal(&tx, &input_stop))
        .map_err(|e| start("input thread", e))?;
    let shown = show(App::new(interval, feed), &rx);
    // The screen is restored by now; a collection under way is not waited for.
    stop_input.store(true, Ordering::SeqCst);
    drop(stop_collecting);
    runtime.shutdown_background();
    shown
}

/// The UI loop: draws after each batch of messages that changed something.
fn show(mut app: App, rx: &mpsc::Receiver<Message>) -> Result<(), TopError> {
    let mut screen = terminal::Screen::take().map_err(TopError::Terminal)?;
    let terminal = &mut screen.terminal;
    terminal
        .draw(|f| draw(f, &app))
        .map_err(TopError::Terminal)?;
    while let Ok(first) = rx.recv() {
        let mut changed = false;
        for message in std::iter::once(first).chain(rx.try_iter()) {
            changed |= match message {
                Message::Collected(inventory, at) => {
                    app.collected(*inventory, at);
                    true
                }
                Message::Events(events) => {
                    app.events_arrived(events);
                    true
                }
                Message::Terminal(TermEvent::Key(key)) => {
                    app.act(input::action(key, app.editing_filter, app.help));
                    true
                }
                Message::Terminal(TermEvent::Resize(..)) => true,
                Message::Terminal(_) => false,
                Message::TerminalFailed(e) => return Err(TopError::Terminal(e)),
                Message::Quit => return Ok(()),
            };
        }
        if app.quit {
            return Ok(());
        }
        app.status = terminal::last_log();
        if changed {
            terminal
                .draw(|f| draw(f, &app))
                .map_err(TopError::Terminal)?;
        }
    }
    Ok(())
}

/// Collects at once, then every `interval` (start to start), until `stop` is dropped.
fn collect_every(
    mut source: KernelSource,
    interval: Duration,
    tx: &mpsc::Sender<Message>,
    stop: &mpsc::Receiver<()>,
) {
    loop {
        let at = Instant::now();
        let inventory = source.collect();
        if tx
            .send(Message::Collected(Box::new(inventory), at))
            .is_err()
        {
            return;
        }
        let wait = interval.saturating_sub(at.elapsed());
        if stop.recv_timeout(wait) != Err(mpsc::RecvTimeoutError::Timeout) {
            return;
        }
    }
}

/// Forwards keys and resizes; polls so that it notices `stop`.
fn read_terminal(tx: &mpsc::Sender<Message>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let message = match event::poll(Duration::from_millis(200)) {
            Ok(false) => continue,
            Ok(true) => event::read().map_or_else(Message::TerminalFailed, Message::Terminal),
            Err(e) => Message::TerminalFailed(e),
        };
        let failed = matches!(message, Message::TerminalFailed(_));
        if tx.send(message).is_err() || failed {
            return;
        }
    }
}

/// SIGTERM, SIGINT (from another process: in raw mode ctrl-c is a key) and
/// SIGHUP (the terminal went away) end the view like `q`: one task each.
fn quit_on_signals(tx: &mpsc::Sender<Message>) {
    use tokio::signal::unix::{signal, SignalKind};
    for kind in [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::hangup(),
    ] {
        match signal(kind) {
            Ok(mut stream) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    stream.recv().await;
                    let _ = tx.send(Message::Quit);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "no signal handler: the signal ends top without restoring the terminal")
            }
        }
    }
}

/// Opens the rings and forwards each new page of events; the feed's state
/// for the pane (why there is none).
fn follow_events(tx: mpsc::Sender<Message>) -> EventsFeed {
    let log = match events::open_log(EVENTS_PAGE) {
        Ok((log, _reader)) => log,
        Err(e) => return EventsFeed::Unavailable(e.to_string()),
    };
    let mut newest = log.subscribe();
    tokio::spawn(async move {
        let mut since = 0;
        while newest.changed().await.is_ok() {
            let page = log.page(since, EVENTS_PAGE, &EventFilter::default());
            since = page.next_since;
            if tx.send(Message::Events(page.items)).is_err() {
                return;
            }
        }
    });
    EventsFeed::On
}

#[cfg(test)]
mod tests;
