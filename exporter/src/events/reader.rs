//! The one reader of all CPUs' rings: woken through the rings' epoll set
//! (tokio `AsyncFd`), it drains every ring, decodes the records, names each
//! program from the JIT symbol the kernel wrote just before its event on the
//! same CPU, orders the CPUs' events by time, resolves each event's process
//! and appends it to the log.
use std::{
    os::fd::{AsRawFd, RawFd},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use chrono::DateTime;
use rustix::time::{clock_gettime, ClockId};
use tokio::{io::unix::AsyncFd, task::JoinHandle};
use tracing::{debug, info, warn};

use super::{resolve, Event, EventKind, EventLog};
use crate::bpf::{
    perf_events::{online_cpus, ProgEventRings},
    perf_records::{decode, split_symbol, PerfRecord, ProgEventKind},
};

/// What one drain of the rings gave, before processes are resolved.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    // Boxed: events are moved through sorting and holding; losses are rare.
    Event { event: Box<Event>, boot_ns: u64 },
    Lost { count: u64, boot_ns: u64 },
}

impl Decoded {
    fn boot_ns(&self) -> u64 {
        match self {
            Decoded::Event { boot_ns, .. } | Decoded::Lost { boot_ns, .. } => *boot_ns,
        }
    }
}

/// Turns each CPU's records into events; keeps per CPU the symbols written
/// since that CPU's last program event (the kernel writes a program's
/// symbols, then its event, from the same task).
#[derive(Default)]
pub struct Decoder {
    pending_symbols: Vec<Vec<([u8; 8], Option<String>)>>,
    warned_no_sample_id: bool,
}

impl Decoder {
    /// Events of every CPU (`per_cpu[i]`: CPU i's records, in order), merged
    /// by time; `boot_epoch_ns` converts the boot-time clock to wall time.
    /// `read_boot_ns` stamps records the kernel wrote without a sample id.
    pub fn decode(
        &mut self,
        per_cpu: Vec<Vec<Vec<u8>>>,
        boot_epoch_ns: i128,
        read_boot_ns: u64,
    ) -> Vec<Decoded> {
        self.pending_symbols.resize_with(per_cpu.len(), Vec::new);
        let mut out = Vec::new();
        for (records, pending) in per_cpu.into_iter().zip(&mut self.pending_symbols) {
            for record in records {
                match decode(&record) {
                    Ok(PerfRecord::Symbol { name, .. }) => {
                        if let Some((tag, name)) = split_symbol(&name) {
                            pending.push((tag, name.map(str::to_owned)));
                        }
                    }
                    Ok(PerfRecord::Prog {
                        kind,
                        id,
                        tag,
                        sample,
                    }) => {
                        // The main program's symbol has its tag; with
                        // subprograms, each has its own: then the first.
                        let symbols = std::mem::take(pending);
                        let name = symbols
                            .iter()
                            .find(|(t, _)| *t == tag)
                            .or(symbols.first())
                            .and_then(|(_, n)| n.clone());
                        // A real stamp is never 0: a zero sample id is none
                        // (no pid, tid or time), never pid 0 at boot.
                        let known = sample.time_ns != 0;
                        if !known && !std::mem::replace(&mut self.warned_no_sample_id, true) {
                            warn!("BPF events arrive without a sample id: pid, tid, comm, cgroup, container_id and pod_uid are null for them");
                        }
                        let boot_ns = if known { sample.time_ns } else { read_boot_ns };
                        let time = i128::from(boot_ns) + boot_epoch_ns;
                        out.push(Decoded::Event {
                            event: Box::new(Event {
                                seq: 0,
                                time: DateTime::from_timestamp_nanos(
                                    i64::try_from(time).unwrap_or(i64::MAX),
                                ),
                                kind: match kind {
                                    ProgEventKind::Load => EventKind::Load,
                                    ProgEventKind::Unload => EventKind::Unload,
                                },
                                prog_id: id,
                                tag: tag.iter().map(|b| format!("{b:02x}")).collect(),
                                name,
                                prog_type: None,
                                pid: known.then_some(sample.pid),
                                tid: known.then_some(sample.tid),
                                comm: None,
                                cgroup: None,
                                container_id: None,
                                pod_uid: None,
                            }),
                            boot_ns,
                        });
                    }
                    Ok(PerfRecord::Lost { count, sample }) => {
                        // The kernel writes a LOST record just before the
                        // first record it could write again: the symbols
                        // before it belong to a program whose event was lost,
                        // and would misname the next program of the same tag.
                        pending.clear();
                        out.push(Decoded::Lost {
                            count,
                            boot_ns: if sample.time_ns != 0 {
                                sample.time_ns
                            } else {
                                read_boot_ns
                            },
                        })
                    }
                    Ok(PerfRecord::Other) => {}
                    Err(error) => warn!(%error, "skipping a malformed perf record"),
                }
            }
        }
        // Each CPU's list is in order; across CPUs the time orders them (stable).
        out.sort_by_key(Decoded::boot_ns);
        out
    }
}

/// The rings, their decoder and the log they feed.
pub struct Reader {
    rings: ProgEventRings,
    decoder: Decoder,
    log: Arc<EventLog>,
    proc_root: PathBuf,
    /// Read but newer than the last read's cutoff, in time order.
    held: Vec<Decoded>,
}

impl AsRawFd for Reader {
    fn as_raw_fd(&self) -> RawFd {
        self.rings.epoll_fd().as_raw_fd()
    }
}

impl Reader {
    pub fn new(rings: ProgEventRings, log: Arc<EventLog>) -> Self {
        Self {
            rings,
            decoder: Decoder::default(),
            log,
            proc_root: PathBuf::from("/proc"),
            held: Vec::new(),
        }
    }

    /// Reads everything now in the rings, resolves each event's process at
    /// once, and appends to the log, in time order, the events up to shortly
    /// before this read began; later ones wait for the next read (a ring read
    /// earlier in this pass may still get an older record). Returns the
    /// number of events appended.
    pub fn drain_once(&mut self) -> usize {
        let now = boot_ns();
        let cutoff = now.saturating_sub(REORDER_WINDOW_NS);
        self.rings.clear_wakeups();
        let records = self.rings.drain();
        let mut decoded = self.decoder.decode(records, boot_epoch_ns(), now);
        for item in &mut decoded {
            if let Decoded::Event { event, .. } = item {
                let Some(pid) = event.pid else {
                    continue;
                };
                let process = resolve(&self.proc_root, pid);
                event.comm = process.comm;
                event.cgroup = process.cgroup;
                event.container_id = process.container_id;
                event.pod_uid = process.pod_uid;
            }
        }
        self.held.append(&mut decoded);
        self.held.sort_by_key(Decoded::boot_ns);
        let later = self.held.partition_point(|d| d.boot_ns() <= cutoff);
        let ready: Vec<Decoded> = self.held.drain(..later).collect();
        let mut events = 0;
        for item in ready {
            match item {
                Decoded::Event { event, .. } => {
                    self.log.append(*event);
                    events += 1;
                }
                Decoded::Lost { count, .. } => {
                    warn!(count, "the kernel lost BPF event records: a ring was full");
                    self.log.lost(count);
                }
            }
        }
        events
    }

    /// Whether events wait for a later read.
    pub fn holds_events(&self) -> bool {
        !self.held.is_empty()
    }
}

/// How far behind the start of a read an event must be to be appended: a
/// record is stamped before it is published in its ring.
const REORDER_WINDOW_NS: u64 = 2_000_000;

/// How often the online CPUs are compared with the CPUs that have a ring.
const CPU_CHECK: Duration = Duration::from_secs(10);

/// Runs the reader on the runtime until the process ends, and the watch of
/// the online CPUs beside it.
pub fn spawn_reader(reader: Reader) -> std::io::Result<JoinHandle<()>> {
    let watched = reader.rings.cpus().to_vec();
    // SAFETY: the fd is the epoll set the Reader owns (its `rings`), open
    // until the Reader is dropped, which only the AsyncFd can do; as_raw_fd
    // always returns that same fd.
    let mut fd = unsafe { AsyncFd::register(reader) }?;
    let read = async move {
        // Records written before the task started wake nobody: read them now.
        fd.get_mut().drain_once();
        loop {
            // Held events are appended by the next read even if no record comes.
            let wait = if fd.get_ref().holds_events() {
                REORDER_WINDOW
            } else {
                Duration::MAX
            };
            match tokio::time::timeout(wait, fd.readable_mut()).await {
                Ok(Ok(mut guard)) => {
                    // Cleared before draining: a record written meanwhile wakes us again.
                    guard.clear_ready();
                }
                Ok(Err(error)) => {
                    warn!(%error, "waiting for BPF events failed: events stop here");
                    return;
                }
                Err(_elapsed) => {}
            }
            let read = fd.get_mut().drain_once();
            debug!(read, "BPF events read");
        }
    };
    Ok(tokio::spawn(async move {
        tokio::select! {
            () = read => {}
            () = watch_cpus(watched) => {}
        }
    }))
}

/// Says (at each change) when CPUs without a ring are online: the rings are
/// opened per online CPU at start, so loads and unloads on a CPU onlined
/// later are neither seen nor counted as lost.
async fn watch_cpus(watched: Vec<u32>) {
    let mut said: Vec<u32> = Vec::new();
    let mut tick = tokio::time::interval(CPU_CHECK);
    loop {
        tick.tick().await;
        let Ok(online) = online_cpus() else {
            continue;
        };
        let unwatched = unwatched(&online, &watched);
        if unwatched == said {
            continue;
        }
        if unwatched.is_empty() {
            info!("every online CPU has a BPF events ring again");
        } else {
            warn!(
                cpus = %cpu_list(&unwatched),
                "CPUs came online after the BPF events rings were opened: program loads and \
                 unloads on them are not seen, nor counted as lost, until the exporter restarts"
            );
        }
        said = unwatched;
    }
}

/// The online CPUs that have no ring.
fn unwatched(online: &[u32], watched: &[u32]) -> Vec<u32> {
    online
        .iter()
        .copied()
        .filter(|cpu| !watched.contains(cpu))
        .collect()
}

fn cpu_list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

const REORDER_WINDOW: Duration = Duration::from_nanos(REORDER_WINDOW_NS);

fn boot_ns() -> u64 {
    let ts = clock_gettime(ClockId::Boottime);
    u64::try_from(ts.tv_sec).unwrap_or_default() * 1_000_000_000
        + u64::try_from(ts.tv_nsec).unwrap_or_default()
}

/// Wall time minus boot time, now: converts perf's CLOCK_BOOTTIME stamps.
fn boot_epoch_ns() -> i128 {
    let ns = |clock| {
        let ts = clock_gettime(clock);
        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
    };
    ns(ClockId::Realtime) - ns(ClockId::Boottime)
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
