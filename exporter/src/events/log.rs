//! The event log: the last `--events-buffer` events with their sequence
//! numbers, the counters since start, and what the API pages through. The
//! reader appends; collections observe (short-lived programs, program types).
use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

use super::{Event, EventKind};
use crate::{
    collect::{EventObserver, EventStats, LoaderLabels},
    inventory::Program,
    sync::lock,
};

/// Distinct loader label sets kept per counter; beyond it loads count under
/// `comm="other"` (a host with endless distinct loaders must not grow the page).
pub const MAX_LOADER_LABELS: usize = 1024;

/// Which events a page selects (combined with AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub kind: Option<EventKind>,
    pub comm: Option<String>,
    pub pod_uid: Option<String>,
    pub container_id: Option<String>,
}

impl EventFilter {
    fn matches(&self, event: &Event) -> bool {
        self.kind.is_none_or(|k| k == event.kind)
            && self
                .comm
                .as_deref()
                .is_none_or(|c| event.comm.as_deref() == Some(c))
            && self
                .pod_uid
                .as_deref()
                .is_none_or(|u| event.pod_uid.as_deref() == Some(u))
            && self
                .container_id
                .as_deref()
                .is_none_or(|c| event.container_id.as_deref() == Some(c))
    }
}

/// One page of events after `since`, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Give this as `since` to continue after this page.
    pub next_since: u64,
    /// Events after `since` that left the buffer before this read.
    pub dropped: u64,
    /// Records the kernel lost (ring full) after event `since` was read.
    pub lost: u64,
}

#[derive(Default)]
struct State {
    capacity: usize,
    buffer: VecDeque<Event>,
    /// The number before this log's first event.
    start: u64,
    last_seq: u64,
    /// Kernel losses with the last sequence number before them; bounded like the buffer.
    lost_marks: VecDeque<(u64, u64)>,
    lost: u64,
    loads: HashMap<LoaderLabels, u64>,
    unloads: HashMap<LoaderLabels, u64>,
    short_lived: u64,
    /// Programs loaded since start that no collection has seen yet.
    unseen: HashSet<u32>,
    /// The programs of the latest collection (a load read after it ran is not unseen).
    last_seen: HashSet<u32>,
    /// Each program loaded since start and not unloaded: the sequence number
    /// of its load, so a collection types its load, and its unload copies
    /// that, without looking through the buffer. Kept while the load is.
    live_loads: HashMap<u32, u64>,
}

impl State {
    /// The kept event numbered `seq` (numbers in the buffer are consecutive).
    fn event_mut(&mut self, seq: u64) -> Option<&mut Event> {
        let oldest = self.buffer.front()?.seq;
        let index = usize::try_from(seq.checked_sub(oldest)?).ok()?;
        self.buffer.get_mut(index)
    }
}

/// Shared by the reader, the collections and the API.
pub struct EventLog {
    state: Mutex<State>,
    newest: watch::Sender<u64>,
}

impl EventLog {
    /// A log numbering its events from 1.
    pub fn new(capacity: usize) -> Arc<Self> {
        Self::numbered_after(capacity, 0)
    }

    /// A log numbering its events from `start + 1`.
    pub fn numbered_after(capacity: usize, start: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                capacity: capacity.max(1),
                start,
                last_seq: start,
                ..State::default()
            }),
            newest: watch::Sender::new(start),
        })
    }

    /// `serve`'s log: numbered after the microseconds since the Unix epoch at
    /// start, so a restarted exporter numbers above every event its predecessor
    /// numbered (it would have had to log more than one event per microsecond
    /// it ran), and a client resuming with an earlier process's `since` or
    /// `Last-Event-ID` gets this process's events instead of waiting for its
    /// numbers to catch up. Below 2^53 (exact in JavaScript) until 2255.
    pub fn numbered_from_now(capacity: usize) -> Arc<Self> {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_micros() as u64);
        Self::numbered_after(capacity, start)
    }

    /// Numbers and keeps `event` (its `seq` is set here) and counts it.
    pub fn append(&self, mut event: Event) {
        let mut state = lock(&self.state);
        state.last_seq += 1;
        event.seq = state.last_seq;
        let labels = LoaderLabels {
            comm: event.comm.as_deref().map(Arc::from),
            container_id: event.container_id.as_deref().map(Arc::from),
            pod_uid: event.pod_uid.as_deref().map(Arc::from),
        };
        match event.kind {
            EventKind::Load => {
                if !state.last_seen.contains(&event.prog_id) {
                    state.unseen.insert(event.prog_id);
                }
                state.live_loads.insert(event.prog_id, event.seq);
                count(&mut state.loads, labels);
            }
            EventKind::Unload => {
                if state.unseen.remove(&event.prog_id) {
                    state.short_lived += 1;
                }
                // What a collection learned of the program, its load has.
                if let Some(load) = state.live_loads.remove(&event.prog_id) {
                    if let Some(load) = state.event_mut(load) {
                        if load.prog_type.is_some() {
                            event.prog_type.clone_from(&load.prog_type);
                            event.name.clone_from(&load.name);
                        }
                    }
                }
                count(&mut state.unloads, labels);
            }
        }
        if state.buffer.len() == state.capacity {
            state.buffer.pop_front();
        }
        state.buffer.push_back(event);
        let seq = state.last_seq;
        drop(state);
        self.newest.send_replace(seq);
    }

    /// Counts `count` records the kernel lost at this point of the stream.
    pub fn lost(&self, count: u64) {
        let mut state = lock(&self.state);
        state.lost += count;
        let at = state.last_seq;
        if state.lost_marks.len() == state.capacity {
            state.lost_marks.pop_front();
        }
        state.lost_marks.push_back((at, count));
    }

    /// Up to `limit` events after `since` that pass `filter`.
    pub fn page(&self, since: u64, limit: usize, filter: &EventFilter) -> EventPage {
        let state = lock(&self.state);
        let oldest = state.buffer.front().map_or(state.last_seq + 1, |e| e.seq);
        // A `since` from before this log (an earlier process) misses only this log's dropped events.
        let dropped = oldest.saturating_sub(since.max(state.start).saturating_add(1));
        let mut items = Vec::new();
        // Past events that left the buffer: the next page starts at the oldest kept.
        let mut next_since = since.max(oldest - 1);
        for event in state.buffer.iter().filter(|e| e.seq > since) {
            if items.len() == limit {
                break;
            }
            next_since = event.seq;
            if filter.matches(event) {
                items.push(event.clone());
            }
        }
        let lost = state
            .lost_marks
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, n)| n)
            .sum();
        EventPage {
            items,
            next_since,
            dropped,
            lost,
        }
    }

    /// Changes to the newest sequence number (for followers such as the CLI).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.newest.subscribe()
    }

    pub fn stats(&self) -> EventStats {
        let state = lock(&self.state);
        let sorted = |counts: &HashMap<LoaderLabels, u64>| {
            let mut out: Vec<_> = counts.iter().map(|(l, n)| (l.clone(), *n)).collect();
            out.sort();
            out
        };
        EventStats {
            loads: sorted(&state.loads),
            unloads: sorted(&state.unloads),
            short_lived: state.short_lived,
            lost: state.lost,
        }
    }
}

fn count(counts: &mut HashMap<LoaderLabels, u64>, labels: LoaderLabels) {
    let labels = if counts.len() >= MAX_LOADER_LABELS && !counts.contains_key(&labels) {
        LoaderLabels {
            comm: Some("other".into()),
            ..LoaderLabels::default()
        }
    } else {
        labels
    };
    *counts.entry(labels).or_default() += 1;
}

impl EventObserver for EventLog {
    fn observe(&self, programs: &[Program]) -> EventStats {
        {
            let mut state = lock(&self.state);
            let seen: HashSet<u32> = programs.iter().map(|p| p.id).collect();
            state.unseen.retain(|id| !seen.contains(id));
            // Loads the collection saw get the program's type and full name:
            // a lookup per program, never a pass over the buffer.
            let oldest = state.buffer.front().map_or(u64::MAX, |e| e.seq);
            state.live_loads.retain(|_, load| *load >= oldest);
            for program in programs {
                let Some(&load) = state.live_loads.get(&program.id) else {
                    continue;
                };
                if let Some(event) = state.event_mut(load).filter(|e| e.prog_type.is_none()) {
                    event.prog_type = Some(program.prog_type.to_string());
                    event.name = Some(program.name.clone());
                }
            }
            state.last_seen = seen;
        }
        self.stats()
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
