//! Loads the embedded iterator object and reads iterators on demand. Each read
//! attaches the iterator, turns the link into an iterator file (aya 0.14
//! consumes the link there) and reads it to EOF, so every collection sees the
//! kernel as it is now.
use std::{fs::File, io::Read};

use aya::{
    maps::{Array, Map, MapError},
    programs::{Iter, ProgramError},
    Btf, Ebpf, EbpfLoader,
};
use rustix::{
    process::{setrlimit, Resource, Rlimit},
    thread::{sched_getaffinity, sched_setaffinity, CpuSet},
};
use tracing::{debug, error, info, warn};

use super::{records::*, Error};
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

const CALIBRATE: &str = "calibrate_percpu";
const CALIBRATE_LOCAL: &str = "calibrate_percpu_local";
const PROBE: &str = "probe_features";
const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

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
    pub fn load() -> Result<Self, Error> {
        raise_memlock_limit();
        let btf = Btf::from_sys_fs().map_err(Error::Btf)?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(OBJECT)
            .map_err(Error::Object)?;
        let mut first_error = None;
        let iterators = Collector::LOAD_ORDER.map(|it| {
            let availability = match load_iter(&mut ebpf, &btf, it.program(), it.target()) {
                Ok(()) => Availability::Loaded,
                Err(Error::Load { ref source, .. }) if target_missing(source) => {
                    Availability::Unsupported
                }
                Err(e) => {
                    error!(error = %e, "iterator failed to load: its collector fails every collection");
                    let message = shorten(&e.to_string());
                    first_error.get_or_insert(e);
                    Availability::Failed(message)
                }
            };
            (it, availability)
        });
        if !iterators.iter().any(|(_, a)| *a == Availability::Loaded) {
            return Err(first_error.unwrap_or(Error::Unavailable("map, program and link")));
        }
        let features = probe_features(&mut ebpf, &btf)
            .inspect_err(|error| warn!(%error, "feature probe failed: optional fields are unknown"))
            .unwrap_or(0);
        let percpu_cpus = calibrate(&mut ebpf, &btf)
            .inspect_err(|error| debug!(%error, "per-CPU calibration failed"))
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
    pub fn read(&mut self, it: Collector) -> Result<&[u8], Error> {
        match self.support.availability(it) {
            Availability::Loaded => {}
            Availability::Unsupported => return Err(Error::Unsupported(it.target())),
            Availability::Failed(message) => {
                return Err(Error::NotLoaded {
                    program: it.program(),
                    message: message.clone(),
                })
            }
        }
        read_into(&mut self.ebpf, it.program(), &mut self.buffer)?;
        Ok(&self.buffer)
    }
}

pub(super) fn iter_mut<'a>(
    ebpf: &'a mut Ebpf,
    program: &'static str,
) -> Result<&'a mut Iter, Error> {
    let prog = ebpf
        .program_mut(program)
        .ok_or(Error::MissingProgram { program })?;
    prog.try_into()
        .map_err(|_: ProgramError| Error::MissingProgram { program })
}

pub(super) fn load_iter(
    ebpf: &mut Ebpf,
    btf: &Btf,
    program: &'static str,
    target: &'static str,
) -> Result<(), Error> {
    iter_mut(ebpf, program)?
        .load(target, btf)
        .map_err(|source| Error::Load {
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

pub(super) fn open_iter(ebpf: &mut Ebpf, program: &'static str) -> Result<File, Error> {
    let iter = iter_mut(ebpf, program)?;
    let link_id = iter
        .attach()
        .map_err(|source| Error::Attach { program, source })?;
    let link = iter
        .take_link(link_id)
        .map_err(|source| Error::Attach { program, source })?;
    link.into_file()
        .map_err(|source| Error::Create { program, source })
}

/// Runs the feature probe once: a bitmask of the optional fields CO-RE found.
fn probe_features(ebpf: &mut Ebpf, btf: &Btf) -> Result<u32, Error> {
    load_iter(ebpf, btf, PROBE, "bpf_map")?;
    let out = run_once(ebpf, PROBE)?;
    let record: Vec<SupportRecord> = decode(&out)
        .map_err(|source| Error::Decode {
            program: PROBE,
            source,
        })?
        .collect();
    match record.as_slice() {
        [record] => Ok(record.features),
        _ => Err(Error::Unavailable("feature probe")),
    }
}

/// Runs one iterator to EOF into `out` (cleared first): the one way every
/// iterator of every object is read.
pub(super) fn read_into(
    ebpf: &mut Ebpf,
    program: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    out.clear();
    open_iter(ebpf, program)?
        .read_to_end(out)
        .map_err(|source| Error::Read { program, source })?;
    Ok(())
}

/// [`read_into`] a new buffer, for iterators run once (probe, calibration,
/// the owners walk).
pub(super) fn run_once(ebpf: &mut Ebpf, program: &'static str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    read_into(ebpf, program, &mut out)?;
    Ok(out)
}

/// Learns every possible CPU's per-CPU offset into the object's .bss, then
/// enables the per-CPU sums for that many CPUs. 5.19+ does it in one run;
/// older kernels run a second program once per CPU, pinned to that CPU (an
/// offline possible CPU cannot be visited there: the sums stay unknown).
fn calibrate(ebpf: &mut Ebpf, btf: &Btf) -> Result<u32, Error> {
    let cpus = possible_cpus().map_err(Error::PossibleCpus)?;
    if cpus.is_empty() || cpus.len() > MAX_CPUS {
        return Err(Error::Unavailable("per-CPU calibration for this many CPUs"));
    }
    let mut setup = Calibration {
        probe_id: map_id(ebpf, "percpu_probe").map_err(Error::Calibration)?,
        nr_possible: cpus.len() as u32,
        local_index: 0,
        pad: 0,
        cpus: [0; MAX_CPUS],
    };
    setup.cpus[..cpus.len()].copy_from_slice(&cpus);
    set_calibration(ebpf, &setup)?;
    let calibrated = match load_iter(ebpf, btf, CALIBRATE, "bpf_map") {
        Ok(()) => read_u32(&run_once(ebpf, CALIBRATE)?) == Some(setup.nr_possible),
        Err(error) => {
            debug!(%error, "bpf_map_lookup_percpu_elem unavailable (Linux < 5.19): calibrating CPU by CPU");
            calibrate_cpu_by_cpu(ebpf, btf, &mut setup)?
        }
    };
    if !calibrated {
        return Err(Error::Unavailable(
            "per-CPU calibration of every possible CPU",
        ));
    }
    let section = ebpf
        .map_mut(".data.cpus")
        .ok_or(Error::MissingSection(".data.cpus"))?;
    Array::<_, u32>::try_from(section)
        .and_then(|mut a| a.set(0, setup.nr_possible, 0))
        .map_err(Error::Calibration)?;
    Ok(setup.nr_possible)
}

/// Runs calibrate_percpu_local once per possible CPU with this thread pinned
/// to it; restores the thread's affinity. False if a CPU could not be visited.
fn calibrate_cpu_by_cpu(
    ebpf: &mut Ebpf,
    btf: &Btf,
    setup: &mut Calibration,
) -> Result<bool, Error> {
    load_iter(ebpf, btf, CALIBRATE_LOCAL, "bpf_map")?;
    let original = sched_getaffinity(None).map_err(|e| Error::Affinity(e.into()))?;
    let mut all = true;
    for index in 0..setup.nr_possible {
        let cpu = setup.cpus[index as usize];
        let mut only = CpuSet::new();
        only.set(cpu as usize);
        if let Err(error) = sched_setaffinity(None, &only) {
            debug!(cpu, %error, "cannot run on a possible CPU (offline?)");
            all = false;
            break;
        }
        setup.local_index = index;
        set_calibration(ebpf, setup)?;
        if read_u32(&run_once(ebpf, CALIBRATE_LOCAL)?) != Some(index) {
            all = false;
            break;
        }
    }
    sched_setaffinity(None, &original).map_err(|e| Error::Affinity(e.into()))?;
    Ok(all)
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

fn read_u32(out: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(out).ok().map(u32::from_ne_bytes)
}

/// Writes what the calibration iterators read.
fn set_calibration(ebpf: &mut Ebpf, setup: &Calibration) -> Result<(), Error> {
    let section = ebpf
        .map_mut(".data.calibration")
        .ok_or(Error::MissingSection(".data.calibration"))?;
    Array::<_, Calibration>::try_from(section)
        .and_then(|mut a| a.set(0, setup, 0))
        .map_err(Error::Calibration)
}

/// The possible CPUs (`0-3`, `0,2-5`): the ids per-CPU data exists for,
/// which can be sparse and more than are online.
pub fn possible_cpus() -> std::io::Result<Vec<u32>> {
    parse_cpu_list(std::fs::read_to_string(POSSIBLE_CPUS)?.trim())
        .ok_or_else(|| std::io::Error::other(format!("cannot parse {POSSIBLE_CPUS}")))
}

/// The online CPUs: those a per-CPU perf event can be opened on.
pub fn online_cpus() -> std::io::Result<Vec<u32>> {
    const ONLINE_CPUS: &str = "/sys/devices/system/cpu/online";
    parse_cpu_list(std::fs::read_to_string(ONLINE_CPUS)?.trim())
        .ok_or_else(|| std::io::Error::other(format!("cannot parse {ONLINE_CPUS}")))
}

fn parse_cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for range in list.split(',').filter(|r| !r.is_empty()) {
        let (first, last): (u32, u32) = match range.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => (range.parse().ok()?, range.parse().ok()?),
        };
        if first > last {
            return None;
        }
        cpus.extend(first..=last);
    }
    Some(cpus)
}

fn map_id(ebpf: &Ebpf, name: &str) -> Result<u32, MapError> {
    let data = match ebpf.map(name) {
        Some(Map::PerCpuArray(data)) => data,
        _ => return Err(MapError::InvalidName { name: name.into() }),
    };
    Ok(data.info()?.id())
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

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists_can_be_sparse() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-3"), Some(vec![0, 1, 2, 3]));
        assert_eq!(parse_cpu_list("0,2-3,8"), Some(vec![0, 2, 3, 8]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }
}
