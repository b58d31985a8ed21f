//! One collection: read every iterator, decode its records and build the
//! `Inventory` snapshot. A failing iterator empties its own list and is named
//! in `Inventory::errors`; the others are still collected. This module is the
//! source's lifecycle (open with the privileges held, collect); `convert.rs`
//! turns records into `Inventory` objects.
use std::{sync::Arc, time::Duration};

use foldhash::HashSet;

use tracing::{error, info, warn};

use crate::{
    bpf::{
        self,
        caps::Privileges,
        map_memory::MapMemory,
        owners::IdMarks,
        records::{LinkRecord, MapRecord, ProgRecord},
        stats, Iterators,
    },
    filter::NameFilter,
    inventory::{Collector, CollectorError, Inventory, Link, Map, Node, Program},
};

pub mod cgroup;
mod convert;
mod event_stats;
mod export_stats;
use convert::{decode_all, link, map, program, sort_dedup, Clock};
pub use event_stats::{EventObserver, EventStats, LoaderLabels};
pub use export_stats::{ExportCounters, ExportStats};
mod map_memory_refresh;
pub use map_memory_refresh::refresh_map_memory_every;
mod owners;
mod posture;
pub use posture::{PostureError, PostureReader};
mod single_flight;
mod walk_thread;
pub use single_flight::{
    CollectError, Collection, CollectionStats, InventorySource, ReleaseFn, SingleFlight,
};
use walk_thread::WalkThread;

/// How the source is opened.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Hold a BPF_ENABLE_STATS fd for the life of the source.
    pub enable_bpf_stats: bool,
    /// Objects left out of every inventory (applied before map memory is read).
    pub filter: NameFilter,
    /// Skip the owners walk: owners, pins and held_by are null.
    pub no_owners: bool,
    /// Reuse the last owners walk while it is younger than this (0: walk every collection).
    pub owners_min_interval: Duration,
    /// Leave map memory out (null): no map is opened by id, so `serve` can
    /// drop CAP_SYS_ADMIN after start.
    pub without_map_memory: bool,
}

/// The kernel as a source of inventories: loaded iterators plus the optional
/// extras the process' privileges allow.
pub struct KernelSource {
    iterators: Iterators,
    map_memory: Option<Arc<MapMemory>>,
    stats: Option<stats::StatsGuard>,
    node: Node,
    posture: PostureReader,
    filter: NameFilter,
    owners: Option<WalkThread>,
}

impl KernelSource {
    /// Checks privileges, loads the iterators and logs one line on what is
    /// unavailable.
    pub fn open(options: &Options) -> Result<Self, bpf::Error> {
        let privileges = bpf::caps::check()?;
        let mut iterators = Iterators::load()?;
        let Privileges { sys_admin } = privileges;
        if !sys_admin {
            warn!(
                "CAP_SYS_ADMIN missing: map memory_bytes is null and --enable-bpf-stats is ignored"
            );
        }
        let stats = match (options.enable_bpf_stats, sys_admin) {
            (true, true) => match stats::enable() {
                Ok(guard) => Some(guard),
                Err(error) => {
                    error!(%error, "BPF_ENABLE_STATS failed: run statistics stay as the kernel.bpf_stats_enabled sysctl says");
                    None
                }
            },
            _ => None,
        };
        let owners = if options.no_owners {
            info!("owners walk off (--no-owners): owners, pins and held_by are null");
            None
        } else {
            owners::OwnerSource::open(options.owners_min_interval)
                .inspect_err(|error| warn!(error = %bpf::Chain(error), "owners walk unavailable (iter/task_file, Linux 5.8+): owners, pins and held_by are null"))
                .ok()
                .map(|mut source| {
                    if !source.marks_exact() {
                        // Without BPF_*_GET_NEXT_ID the first walk knows the
                        // objects that exist now from the iterators.
                        let objects = read_objects(&mut iterators, &Clock::now(), &HashSet::default());
                        source.raise_floor(objects.max_ids());
                    }
                    source
                })
                .and_then(|source| {
                    WalkThread::start(source)
                        .inspect_err(|cause| error!(%cause, "no thread for the owners walk: owners, pins and held_by are null"))
                        .ok()
                })
        };
        info!(
            bpf_stats_enabled = stats::kernel_stats_enabled(),
            owners = owners.is_some(),
            "collection source ready"
        );
        let node = read_node();
        let posture = PostureReader::open(&node.kernel_release);
        Ok(Self {
            iterators,
            map_memory: (sys_admin && !options.without_map_memory)
                .then(|| Arc::new(MapMemory::default())),
            stats,
            node,
            posture,
            filter: options.filter.clone(),
            owners,
        })
    }

    /// The node posture sources that could not be read at start.
    pub fn posture_unreadable(&self) -> &[PostureError] {
        self.posture.unreadable()
    }

    pub fn support(&self) -> &bpf::KernelSupport {
        self.iterators.support()
    }

    /// The map memory cache, for a refresher that must not hold the source
    /// (a refresh of a large host takes longer than a collection).
    pub fn map_memory_cache(&self) -> Option<Arc<MapMemory>> {
        self.map_memory.clone()
    }

    /// Reads all iterators now. The owners walk (the other long read) runs
    /// on its own thread while the objects are read and decoded.
    pub fn collect(&mut self) -> Inventory {
        let clock = Clock::now();
        let mut self_progs: HashSet<u32> = self.iterators.self_prog_ids().iter().copied().collect();
        self_progs.extend(self.owners.iter().flat_map(|o| o.prog_ids()));
        let Self {
            iterators,
            map_memory,
            filter,
            owners,
            ..
        } = self;
        if let Some(walk) = owners.as_mut() {
            walk.begin();
        }
        let objects = read_objects(iterators, &clock, &self_progs);
        let snapshot = owners.as_mut().and_then(|walk| {
            let walked = walk
                .finish()
                .inspect_err(|error| error!(%error, "owners are null in this collection"))
                .ok();
            walk.raise_floor(objects.max_ids());
            walked
        });
        let Objects {
            mut programs,
            mut maps,
            mut links,
            errors,
        } = objects;
        // Before the name filters: the JIT limit counts every program.
        let jited_bytes = errors
            .failed
            .iter()
            .all(|e| e.collector != Collector::Programs)
            .then(|| programs.iter().map(|p| u64::from(p.jited_bytes)).sum());
        filter.retain(&mut programs, &mut maps, &mut links);
        if let Some(cache) = map_memory {
            let bytes = cache.lookup(maps.iter().map(|m| m.id));
            for (map, bytes) in maps.iter_mut().zip(bytes) {
                map.memory_bytes = bytes;
            }
        }
        let snapshot = snapshot.and_then(|s| {
            s.inspect_err(
                |error| error!(error = %bpf::Chain(error), "owners walk failed: owners are null in this collection"),
            )
            .ok()
        });
        owners::apply(snapshot, &mut programs, &mut maps, &mut links);
        let mut node = self.node.clone();
        node.posture = self.posture.read(jited_bytes);
        Inventory {
            collected_at: clock.now,
            node,
            bpf_stats_enabled: self.stats.is_some() || stats::kernel_stats_enabled(),
            programs,
            maps,
            links,
            errors: errors.failed,
            unsupported: errors.unsupported,
        }
    }
}

/// The objects of one collection, sorted by id, and why any list is missing.
struct Objects {
    programs: Vec<Program>,
    maps: Vec<Map>,
    links: Vec<Link>,
    errors: Errors,
}

impl Objects {
    /// The highest id of each kind read (the lists are sorted).
    fn max_ids(&self) -> IdMarks {
        IdMarks {
            prog: self.programs.last().map_or(0, |p| p.id),
            map: self.maps.last().map_or(0, |m| m.id),
            link: self.links.last().map_or(0, |l| l.id),
        }
    }
}

/// Reads and decodes the program, map and link iterators.
fn read_objects(iterators: &mut Iterators, clock: &Clock, self_progs: &HashSet<u32>) -> Objects {
    let mut errors = Errors::default();
    let mut programs = match iterators.read(Collector::Programs).and_then(|b| {
        decode_all(b, Collector::Programs, |r: ProgRecord| {
            program(&r, clock, self_progs)
        })
    }) {
        Ok(programs) => programs,
        Err(e) => errors.fail(Collector::Programs, e),
    };
    let self_maps: HashSet<u32> = programs
        .iter()
        .filter(|p| p.is_self)
        .flat_map(|p| p.map_ids.iter().copied())
        .collect();
    let mut maps = match iterators
        .read(Collector::Maps)
        .and_then(|b| decode_all(b, Collector::Maps, |r: MapRecord| map(&r, &self_maps)))
    {
        Ok(maps) => maps,
        Err(e) => errors.fail(Collector::Maps, e),
    };
    let mut links = match iterators
        .read(Collector::Links)
        .and_then(|b| decode_all(b, Collector::Links, |r: LinkRecord| link(&r, self_progs)))
    {
        Ok(links) => links,
        Err(e) => errors.fail(Collector::Links, e),
    };
    sort_dedup(&mut programs, |p| p.id);
    sort_dedup(&mut maps, |m| m.id);
    sort_dedup(&mut links, |l| l.id);
    Objects {
        programs,
        maps,
        links,
        errors,
    }
}

/// Why collectors gave no list in this collection.
#[derive(Default)]
struct Errors {
    failed: Vec<CollectorError>,
    /// The kernel lacks the iterator (reported once at load): not a failure.
    unsupported: Vec<Collector>,
}

impl Errors {
    fn fail<T>(&mut self, collector: Collector, e: bpf::ReadError) -> Vec<T> {
        if let bpf::ReadError::Unsupported { .. } = e {
            self.unsupported.push(collector);
        } else {
            let message = bpf::Chain(&e).to_string();
            error!(collector = collector.as_str(), error = %message, "collector failed");
            self.failed.push(CollectorError { collector, message });
        }
        Vec::new()
    }
}

fn read_node() -> Node {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    Node {
        hostname: read("/proc/sys/kernel/hostname"),
        kernel_release: read("/proc/sys/kernel/osrelease"),
        posture: Default::default(),
    }
}
