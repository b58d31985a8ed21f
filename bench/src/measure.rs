//! The timed methods and the interleaved rounds that run them: every round
//! runs each method once, starting one method later than the round before,
//! so slow drifts (page cache, other load on the host) hit all methods alike.
use std::{
    hint::black_box,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use bpf_inventory_exporter::{
    bpf::{owners::OwnerWalk, Iterators},
    collect::{CollectionStats, EventObserver, KernelSource},
    events::EventLog,
    inventory::{Collector, Inventory},
    render::{
        fragments::Fragments,
        prometheus::{render_metrics, render_page_with, Format, RenderOptions},
    },
};

use crate::{
    baseline, http,
    report::{
        MethodResult, BPFTOOL, COLLECT, COLLECT_NO_OWNERS, E2E_CHURN, E2E_NO_EVENTS,
        E2E_NO_EVENTS_CHURN, ENCODE_JSON, EVENTS_OBSERVE, RAW, RAW_WITH_OWNERS, RENDER,
        RENDER_KEPT, SYSCALLS,
    },
    stats::Summary,
};

/// One way of getting the inventory.
#[derive(Clone, Debug)]
pub enum Method {
    /// Iterators created and read to EOF, no decoding.
    Raw,
    /// The same plus the owners walk (iter/task_file) read to EOF: every
    /// iterator `collect` reads.
    RawWithOwners,
    /// The full `Inventory`, as `serve` builds it per scrape (freeing it is
    /// not timed: `serve` frees it on another thread after answering).
    Collect,
    /// The same with `--no-owners`: no owners walk, pins or held_by.
    CollectNoOwners,
    BaselineSyscalls,
    BaselineBpftool,
    /// `/metrics` text rendered from an inventory already collected: the
    /// CPU a scrape spends after `collect`, without HTTP or the kernel.
    Render,
    /// The same page written with the label text kept from the previous
    /// page, as `serve` writes it from its second scrape on.
    RenderKept,
    /// The `/api/v1/inventory` document of an inventory already collected,
    /// encoded as `serve` encodes it once per collection.
    EncodeJson,
    /// GET over HTTP against `serve`.
    Http {
        path: &'static str,
        accept_encoding: Option<&'static str>,
    },
    /// GET /metrics against a second `serve` started with `--no-events`
    /// (the `Http` rows' serve has events on, the default).
    MetricsNoEvents,
    /// GET /metrics against either serve while a thread loads and unloads
    /// programs (timed in a phase of their own, see `events.rs`).
    MetricsChurn {
        events: bool,
    },
    /// What events add to a collection: the match of its programs against
    /// a full buffer of programs already gone (`events::full_log`).
    EventsObserve,
}

impl Method {
    pub fn name(&self) -> String {
        match self {
            Method::Raw => RAW.to_owned(),
            Method::RawWithOwners => RAW_WITH_OWNERS.to_owned(),
            Method::Collect => COLLECT.to_owned(),
            Method::CollectNoOwners => COLLECT_NO_OWNERS.to_owned(),
            Method::BaselineSyscalls => SYSCALLS.to_owned(),
            Method::BaselineBpftool => BPFTOOL.to_owned(),
            Method::Render => RENDER.to_owned(),
            Method::RenderKept => RENDER_KEPT.to_owned(),
            Method::EncodeJson => ENCODE_JSON.to_owned(),
            Method::Http {
                path,
                accept_encoding: None,
            } => format!("e2e GET {path}"),
            Method::Http {
                path,
                accept_encoding: Some(enc),
            } => format!("e2e GET {path} ({enc})"),
            Method::MetricsNoEvents => E2E_NO_EVENTS.to_owned(),
            Method::MetricsChurn { events: true } => E2E_CHURN.to_owned(),
            Method::MetricsChurn { events: false } => E2E_NO_EVENTS_CHURN.to_owned(),
            Method::EventsObserve => EVENTS_OBSERVE.to_owned(),
        }
    }
}

/// The end-to-end routes timed when `serve` answers them.
pub const HTTP_METHODS: [Method; 3] = [
    Method::Http {
        path: "/metrics",
        accept_encoding: None,
    },
    Method::Http {
        path: "/metrics",
        accept_encoding: Some("gzip"),
    },
    Method::Http {
        path: "/api/v1/inventory",
        accept_encoding: None,
    },
];

/// The programs the raw rows read, loaded apart from the sources'.
pub struct RawReaders {
    pub iterators: Iterators,
    pub owners: OwnerWalk,
}

/// What the methods run against.
pub struct Targets<'a> {
    pub source: &'a mut KernelSource,
    pub source_no_owners: &'a mut KernelSource,
    pub raw: &'a mut RawReaders,
    pub bpftool: &'a str,
    pub serve: Option<SocketAddr>,
    /// The second serve, started with `--no-events`.
    pub serve_no_events: Option<SocketAddr>,
    /// What `Render` renders: the inventory of this size's check.
    pub inventory: &'a Inventory,
    /// What `RenderKept` keeps between its pages: label text and buffer.
    pub fragments: Fragments,
    pub page: String,
    /// The HTTP client's buffer, kept between requests.
    pub response: Vec<u8>,
    /// What `EventsObserve` matches against.
    pub full_event_log: Arc<EventLog>,
    /// The last collected inventory, freed before the next timing starts.
    pub collected: Option<Inventory>,
}

fn render_stats() -> CollectionStats {
    CollectionStats {
        duration: Duration::from_millis(20),
        collections_total: 1,
        collector_errors_total: Collector::ALL.map(|c| (c, 0)),
        map_memory_age: None,
        otlp: None,
        events: None,
    }
}

impl Targets<'_> {
    fn run(&mut self, method: &Method) -> Result<()> {
        match method {
            Method::Raw | Method::RawWithOwners => {
                for it in Collector::LOAD_ORDER {
                    black_box(self.raw.iterators.read(it)?.len());
                }
                if let Method::RawWithOwners = method {
                    black_box(self.raw.owners.read_raw()?.len());
                }
            }
            Method::Collect | Method::CollectNoOwners => {
                let source = match method {
                    Method::Collect => &mut *self.source,
                    _ => &mut *self.source_no_owners,
                };
                let inventory = source.collect();
                if !inventory.errors.is_empty() {
                    bail!("collection errors: {:?}", inventory.errors);
                }
                self.collected = Some(inventory);
            }
            Method::BaselineSyscalls => {
                black_box(baseline::syscall_walk()?);
            }
            Method::BaselineBpftool => {
                black_box(baseline::bpftool(self.bpftool)?);
            }
            Method::Render => {
                let page = render_metrics(
                    self.inventory,
                    &render_stats(),
                    &RenderOptions::default(),
                    Format::Text,
                );
                black_box(page.len());
            }
            Method::RenderKept => {
                // As `serve`: the last page's buffer written over.
                let page = &mut self.page;
                page.clear();
                render_page_with(
                    page,
                    &mut self.fragments,
                    self.inventory,
                    &render_stats(),
                    None,
                    &RenderOptions::default(),
                    Format::Text,
                );
                black_box(page.len());
            }
            Method::EventsObserve => {
                black_box(self.full_event_log.observe(&self.inventory.programs));
            }
            Method::EncodeJson => {
                black_box(bpf_inventory_exporter::inventory::json::to_vec(self.inventory)?.len());
            }
            Method::Http {
                path,
                accept_encoding,
            } => self.get(self.serve, path, *accept_encoding)?,
            Method::MetricsNoEvents | Method::MetricsChurn { events: false } => {
                self.get(self.serve_no_events, "/metrics", None)?;
            }
            Method::MetricsChurn { events: true } => self.get(self.serve, "/metrics", None)?,
        }
        Ok(())
    }

    fn get(
        &mut self,
        addr: Option<SocketAddr>,
        path: &str,
        accept_encoding: Option<&str>,
    ) -> Result<()> {
        let Some(addr) = addr else {
            bail!("serve not running");
        };
        let buffer = std::mem::take(&mut self.response);
        let response = http::get_into(addr, path, accept_encoding, buffer)?;
        if response.status != 200 {
            bail!("GET {path} answered {}", response.status);
        }
        if accept_encoding.is_some() && response.content_encoding.is_none() {
            bail!("serve ignored Accept-Encoding (uncompressed, as the row without it)");
        }
        black_box(response.body().len());
        self.response = response.into_buffer();
        Ok(())
    }

    /// Runs a method once, untimed, to see whether it works at all. An HTTP
    /// route that is not built yet (404) is skipped with that reason.
    pub fn probe(&mut self, method: &Method) -> Option<String> {
        if let Method::Http { path, .. } = method {
            let addr = self.serve?;
            match http::get(addr, path, None) {
                Ok(r) if r.status == 404 => {
                    return Some(format!(
                        "GET {path} answered 404 (route not in this serve build)"
                    ))
                }
                Err(e) => return Some(format!("GET {path} failed: {e:#}")),
                Ok(_) => {}
            }
        }
        self.run(method).err().map(|e| format!("{e:#}"))
    }
}

/// Runs `reps` interleaved rounds over `methods` (after one warm-up round)
/// and summarises each method. A method that fails stops being run and is
/// reported as skipped with the error.
pub fn interleaved(
    targets: &mut Targets<'_>,
    methods: &[(Method, Option<String>)],
    reps: usize,
) -> Vec<MethodResult> {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(reps); methods.len()];
    let mut failed: Vec<Option<String>> = methods.iter().map(|(_, skip)| skip.clone()).collect();
    for round in 0..=reps {
        for k in 0..methods.len() {
            let i = (k + round) % methods.len();
            if failed[i].is_some() {
                continue;
            }
            targets.collected = None;
            let start = Instant::now();
            let outcome = targets.run(&methods[i].0);
            let elapsed = start.elapsed();
            match outcome {
                Err(e) => failed[i] = Some(format!("failed in round {round}: {e:#}")),
                // Round 0 warms caches and connections; it is not counted.
                Ok(()) if round > 0 => samples[i].push(elapsed),
                Ok(()) => {}
            }
        }
    }
    methods
        .iter()
        .zip(samples)
        .zip(failed)
        .map(|(((method, _), samples), failed)| MethodResult {
            method: method.name(),
            summary: failed
                .is_none()
                .then(|| Summary::from_durations(&samples))
                .flatten(),
            skipped: failed,
        })
        .collect()
}
