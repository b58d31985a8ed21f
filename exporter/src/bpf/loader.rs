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
use tracing::{debug, info, warn};

use super::{records::*, Error};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/iterators.bpf.o"));

/// One of the iterators in the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Iterator {
    Maps,
    Programs,
    Links,
}

impl Iterator {
    pub const fn program(self) -> &'static str {
        match self {
            Iterator::Maps => "dump_maps",
            Iterator::Programs => "dump_progs",
            Iterator::Links => "dump_links",
        }
    }

    pub const fn target(self) -> &'static str {
        match self {
            Iterator::Maps => "bpf_map",
            Iterator::Programs => "bpf_prog",
            Iterator::Links => "bpf_link",
        }
    }
}

const CALIBRATE: &str = "calibrate_percpu";
const PROBE: &str = "probe_features";

/// What the running kernel supports, found at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Support {
    /// iter/bpf_link loaded (5.19+).
    pub links: bool,
    /// Per-CPU counters readable (run statistics, map element counts): the
    /// calibration iterator loaded and found this many CPUs (5.19+).
    pub percpu_cpus: Option<u32>,
    /// Optional kernel fields found by CO-RE (`FEATURE_*` bits of records.h).
    pub features: u32,
}

impl Support {
    /// What this kernel cannot give, in words, for the start-up log line.
    pub fn unavailable(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.links {
            missing.push("links (iter/bpf_link, Linux 5.19+)");
        }
        if self.percpu_cpus.is_none() {
            missing.push("program run statistics and hash map entries (bpf_map_lookup_percpu_elem, Linux 5.19+)");
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
    support: Support,
    self_prog_ids: Vec<u32>,
    /// Reused across reads: a collection's bytes are decoded before the next read.
    buffer: Vec<u8>,
}

impl Iterators {
    /// Loads every iterator the kernel supports. Fails only if the map or
    /// program iterator cannot load; a missing link iterator or per-CPU
    /// support is logged once and reported in [`Support`].
    pub fn load() -> Result<Self, Error> {
        raise_memlock_limit();
        let btf = Btf::from_sys_fs().map_err(Error::Btf)?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(OBJECT)
            .map_err(Error::Object)?;
        for it in [Iterator::Maps, Iterator::Programs] {
            load_iter(&mut ebpf, &btf, it.program(), it.target())?;
        }
        let features = probe_features(&mut ebpf, &btf)?;
        let links = load_iter(&mut ebpf, &btf, Iterator::Links.program(), "bpf_link")
            .inspect_err(|error| debug!(%error, "link iterator did not load"))
            .is_ok();
        let percpu_cpus = calibrate(&mut ebpf, &btf)
            .inspect_err(|error| debug!(%error, "per-CPU calibration did not load"))
            .ok();
        let self_prog_ids = ebpf
            .programs()
            .filter_map(|(_, prog)| prog.info().ok().map(|info| info.id()))
            .collect();
        let support = Support {
            links,
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

    pub fn support(&self) -> &Support {
        &self.support
    }

    /// Ids of the programs this exporter loaded.
    pub fn self_prog_ids(&self) -> &[u32] {
        &self.self_prog_ids
    }

    /// Runs one iterator to EOF and returns its raw output (valid until the
    /// next call).
    pub fn read(&mut self, it: Iterator) -> Result<&[u8], Error> {
        if it == Iterator::Links && !self.support.links {
            return Err(Error::Unavailable("link"));
        }
        let mut file = open_iter(&mut self.ebpf, it.program())?;
        self.buffer.clear();
        file.read_to_end(&mut self.buffer)
            .map_err(|source| Error::Read {
                program: it.program(),
                source,
            })?;
        Ok(&self.buffer)
    }
}

fn iter_mut<'a>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut Iter, Error> {
    let prog = ebpf
        .program_mut(program)
        .ok_or(Error::MissingProgram { program })?;
    prog.try_into()
        .map_err(|_: ProgramError| Error::MissingProgram { program })
}

fn load_iter(
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

fn open_iter(ebpf: &mut Ebpf, program: &'static str) -> Result<File, Error> {
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

fn run_once(ebpf: &mut Ebpf, program: &'static str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    open_iter(ebpf, program)?
        .read_to_end(&mut out)
        .map_err(|source| Error::Read { program, source })?;
    Ok(out)
}

/// Loads and runs the calibration iterator once; it stores each CPU's per-CPU
/// offset in the object's .bss for the other iterators, and writes the CPU count.
fn calibrate(ebpf: &mut Ebpf, btf: &Btf) -> Result<u32, Error> {
    load_iter(ebpf, btf, CALIBRATE, "bpf_map")?;
    set_probe_id(ebpf).map_err(Error::Calibration)?;
    let out = run_once(ebpf, CALIBRATE)?;
    match <[u8; 4]>::try_from(out.as_slice()) {
        Ok(bytes) if u32::from_ne_bytes(bytes) > 0 => Ok(u32::from_ne_bytes(bytes)),
        _ => Err(Error::Unavailable("per-CPU calibration")),
    }
}

/// Tells the calibration iterator which map is its probe.
fn set_probe_id(ebpf: &mut Ebpf) -> Result<(), MapError> {
    let probe_id = map_id(ebpf, "percpu_probe")?;
    let section = ebpf
        .map_mut(".data.calibration")
        .ok_or(MapError::InvalidName {
            name: ".data.calibration".into(),
        })?;
    Array::<_, u32>::try_from(section)?.set(0, probe_id, 0)
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
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid, initialised rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        debug!(error = %std::io::Error::last_os_error(), "could not raise RLIMIT_MEMLOCK");
    }
}
