//! Loads the embedded iterator object and reads iterators on demand. Each read
//! attaches the iterator, turns the link into an iterator file (aya 0.14
//! consumes the link there) and reads it to EOF, so every collection sees the
//! kernel as it is now.
use std::{fs::File, io::Read};

use aya::{
    maps::Array,
    programs::{Iter, ProgramError},
    Btf, Ebpf, EbpfLoader,
};
use rustix::process::{setrlimit, Resource, Rlimit};
use tracing::{debug, error, info, warn};

use super::{calibrate::calibrate, records::*, Chain, Error, LoadError, ReadError};
use crate::inventory::Collector;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/iterators.bpf.o"));

/// Each collector is one iterator of the object.
impl Collector {
    /// The order the iterators are loaded and reported in.
    pub const LOAD_ORDER: [Collector; 3] = [Collector::Maps, Collector::Programs, Collector::Links];

    /// The iterator program's name in iterators.bpf.c.
    pub const fn program(self) -> &'static str {
        match self {
            Collector::Maps => "dump_maps",
            Collector::Programs => "dump_progs",
            Collector::Links => "dump_links",
        }
    }

    /// The iterator target (`iter/<target>`).
    pub const fn target(self) -> &'static str {
        match self {
            Collector::Maps => "bpf_map",
            Collector::Programs => "bpf_prog",
            Collector::Links => "bpf_link",
        }
    }
}

const PROBE: &str = "probe_features";

/// Whether an iterator could be loaded on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    Loaded,
    /// The kernel has no such iterator target (e.g. bpf_link before 5.19).
    Unsupported,
    /// The kernel has the target but refused our program: the error, in words.
    Failed(String),
}

/// What the running kernel supports, found at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSupport {
    /// Per iterator, in [`Collector::LOAD_ORDER`].
    pub iterators: [(Collector, Availability); 3],
    /// Per-CPU counters readable (run statistics, map element counts): every
    /// possible CPU's per-CPU offset was learnt; this many CPUs.
    pub percpu_cpus: Option<u32>,
    /// Optional kernel fields found by CO-RE (`FEATURE_*` bits of records.h).
    pub features: u32,
}

impl KernelSupport {
    pub fn availability(&self, it: Collector) -> &Availability {
        // `iterators` is in LOAD_ORDER.
        let index = match it {
            Collector::Maps => 0,
            Collector::Programs => 1,
            Collector::Links => 2,
        };
        &self.iterators[index].1
    }

    /// What this kernel cannot give, in words, for the start-up log line.
    pub fn unavailable(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if *self.availability(Collector::Links) == Availability::Unsupported {
            missing.push("links (iter/bpf_link, Linux 5.19+)");
        }
        if self.percpu_cpus.is_none() {
            missing.push("program run statistics and hash map entries (the per-CPU offset of some possible CPU could not be learnt)");
        }
        for (bit, what) in [
            (
                FEATURE_MAP_ELEM_COUNT,
                "hash map entries (bpf_map.elem_count, Linux 6.6+)",
            ),
            (FEATURE_MAP_FROZEN, "map frozen (bpf_map.frozen)"),
            (
                FEATURE_PROG_VERIFIED_INSNS,
                "program verified_insns (Linux 5.16+)",
            ),
            (FEATURE_PROG_UID, "program uid (bpf_prog_aux.user)"),
            (
                FEATURE_PROG_STATS,
                "program run statistics (bpf_prog_stats in a known layout)",
            ),
            (
                FEATURE_PROG_RECURSION_MISSES,
                "program recursion_misses (Linux 5.12+)",
            ),
            (
                FEATURE_LINK_ATTACH_TYPE,
                "attach_type of most link types (bpf_link.attach_type, Linux 6.17+)",
            ),
        ] {
            if self.features & bit == 0 {
                missing.push(what);
            }
        }
        missing
    }
}

/// The loaded iterator programs.
pub struct Iterators {
    ebpf: Ebpf,
    support: KernelSupport,
    self_prog_ids: Vec<u32>,
    /// Reused across reads: a collection's bytes are decoded before the next read.
    buffer: Vec<u8>,
}

impl Iterators {
    /// Loads every iterator the kernel supports. Fails only if none of the
    /// three collectors' iterators loads; a collector the kernel lacks, one
    /// that failed to load and missing per-CPU support are logged once and
    /// reported in [`KernelSupport`].
    pub fn load() -> Result<Self, LoadError> {
        raise_memlock_limit();
        let btf = Btf::from_sys_fs().map_err(LoadError::Btf)?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(OBJECT)
            .map_err(LoadError::object)?;
        let mut first_error = None;
        let iterators = Collector::LOAD_ORDER.map(|it| {
            let availability = match load_iter(&mut ebpf, &btf, it.program(), it.target()) {
                Ok(()) => Availability::Loaded,
                Err(LoadError::Program { ref source, .. }) if target_missing(source) => {
                    Availability::Unsupported
                }
                Err(e) => {
                    error!(error = %Chain(&e), "iterator failed to load: its collector fails every collection");
                    let message = shorten(&Chain(&e).to_string());
                    first_error.get_or_insert(e);
                    Availability::Failed(message)
                }
            };
            (it, availability)
        });
        if !iterators.iter().any(|(_, a)| *a == Availability::Loaded) {
            return Err(first_error.unwrap_or(LoadError::NoIterator));
        }
        let features = probe_features(&mut ebpf, &btf)
            .inspect_err(|error| warn!(error = %Chain(error), "feature probe failed: optional fields are unknown"))
            .unwrap_or(0);
        let percpu_cpus = calibrate(&mut ebpf, &btf)
            .inspect_err(|error| debug!(error = %Chain(error), "per-CPU calibration failed"))
            .ok();
        let self_prog_ids = ebpf
            .programs()
            .filter_map(|(_, prog)| prog.info().ok().map(|info| info.id()))
            .collect();
        let support = KernelSupport {
            iterators,
            percpu_cpus,
            features,
        };
        let unavailable = support.unavailable();
        if unavailable.is_empty() {
            info!(cpus = ?support.percpu_cpus, "BPF iterators loaded; every value is available on this kernel");
        } else {
            warn!(unavailable = %unavailable.join("; "), "BPF iterators loaded; values this kernel cannot give are null");
        }
        Ok(Self {
            ebpf,
            support,
            self_prog_ids,
            buffer: Vec::with_capacity(64 * 1024),
        })
    }

    pub fn support(&self) -> &KernelSupport {
        &self.support
    }

    /// Ids of the programs this exporter loaded.
    pub fn self_prog_ids(&self) -> &[u32] {
        &self.self_prog_ids
    }

    /// Each possible CPU's per-CPU offset as calibrated at load (the `.bss`
    /// the per-CPU sums read), for `pin`'s programs; None where per-CPU
    /// values are unknown.
    pub fn percpu_offsets(&self) -> Option<Vec<u64>> {
        let cpus = self.support.percpu_cpus? as usize;
        let bss = Array::<_, [u64; MAX_CPUS]>::try_from(self.ebpf.map(".bss")?).ok()?;
        let offsets = bss.get(&0, 0).ok()?;
        offsets.get(..cpus).map(<[u64]>::to_vec)
    }

    /// Runs one iterator to EOF and returns its raw output (valid until the
    /// next call).
    pub fn read(&mut self, it: Collector) -> Result<&[u8], ReadError> {
        match self.support.availability(it) {
            Availability::Loaded => {}
            Availability::Unsupported => {
                return Err(ReadError::Unsupported {
                    target: it.target(),
                })
            }
            Availability::Failed(message) => {
                return Err(ReadError::NotLoaded {
                    program: it.program(),
                    message: message.clone(),
                })
            }
        }
        read_into(&mut self.ebpf, it.program(), &mut self.buffer)?;
        Ok(&self.buffer)
    }
}

/// The object's iterator program of that name; None if it has none (each
/// caller says so in its own error).
pub(super) fn iter_mut<'a>(ebpf: &'a mut Ebpf, program: &str) -> Option<&'a mut Iter> {
    ebpf.program_mut(program)?.try_into().ok()
}

pub(super) fn load_iter(
    ebpf: &mut Ebpf,
    btf: &Btf,
    program: &'static str,
    target: &'static str,
) -> Result<(), LoadError> {
    iter_mut(ebpf, program)
        .ok_or(LoadError::MissingProgram { program })?
        .load(target, btf)
        .map_err(|source| LoadError::Program {
            program,
            target,
            source,
        })
}

/// Whether loading an iterator failed because the kernel has no such target
/// (e.g. bpf_link before 5.19): aya looks the target's `bpf_iter_<target>`
/// up in the kernel's BTF.
pub(super) fn target_missing(error: &ProgramError) -> bool {
    matches!(error, ProgramError::Btf(_))
}

pub(super) fn open_iter(ebpf: &mut Ebpf, program: &'static str) -> Result<File, ReadError> {
    let iter = iter_mut(ebpf, program).ok_or(ReadError::MissingProgram { program })?;
    let link_id = iter
        .attach()
        .map_err(|source| ReadError::Attach { program, source })?;
    let link = iter
        .take_link(link_id)
        .map_err(|source| ReadError::Attach { program, source })?;
    link.into_file()
        .map_err(|source| ReadError::Create { program, source })
}

/// Runs the feature probe once: a bitmask of the optional fields CO-RE found.
fn probe_features(ebpf: &mut Ebpf, btf: &Btf) -> Result<u32, Error> {
    load_iter(ebpf, btf, PROBE, "bpf_map")?;
    let out = run_once(ebpf, PROBE)?;
    let record: Vec<SupportRecord> = decode(&out)
        .map_err(|source| ReadError::Decode {
            program: PROBE,
            source,
        })?
        .collect();
    match record.as_slice() {
        [record] => Ok(record.features),
        _ => Err(ReadError::RecordCount {
            program: PROBE,
            count: record.len(),
        }
        .into()),
    }
}

/// Runs one iterator to EOF into `out` (cleared first): the one way every
/// iterator of every object is read.
pub(super) fn read_into(
    ebpf: &mut Ebpf,
    program: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), ReadError> {
    out.clear();
    open_iter(ebpf, program)?
        .read_to_end(out)
        .map_err(|source| ReadError::Read { program, source })?;
    Ok(())
}

/// [`read_into`] a new buffer, for iterators run once (probe, calibration,
/// the owners walk).
pub(super) fn run_once(ebpf: &mut Ebpf, program: &'static str) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    read_into(ebpf, program, &mut out)?;
    Ok(out)
}

/// An error for the inventory and `check`: a verifier log is thousands of
/// lines; its end says why.
fn shorten(message: &str) -> String {
    const KEEP: usize = 1500;
    match message.char_indices().nth_back(KEEP) {
        Some((cut, _)) => {
            let first = message.lines().next().unwrap_or_default();
            format!("{first} [...] {}", &message[cut..])
        }
        None => message.to_owned(),
    }
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones ignore it.
fn raise_memlock_limit() {
    let unlimited = Rlimit {
        current: None,
        maximum: None,
    };
    if let Err(errno) = setrlimit(Resource::Memlock, unlimited) {
        debug!(error = %std::io::Error::from(errno), "could not raise RLIMIT_MEMLOCK");
    }
}
