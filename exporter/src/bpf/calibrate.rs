//! Per-CPU calibration, run once at load: learns each possible CPU's per-CPU
//! offset into the iterator object's .bss (exporter-ebpf/iterators.bpf.c,
//! `calibrate_percpu`), so the iterators can sum per-CPU counters. Before 5.19
//! this thread is pinned to each CPU in turn; [`RestoreAffinity`] puts its
//! affinity back on every path.
use std::io;

use aya::{
    maps::{Array, Map, MapError},
    Btf, Ebpf,
};
use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
use tracing::{debug, warn};

use super::{
    loader::{load_iter, run_once},
    records::{Calibration, MAX_CPUS},
    LoadError, ReadError,
};

const CALIBRATE: &str = "calibrate_percpu";
const CALIBRATE_LOCAL: &str = "calibrate_percpu_local";
const PROBE_MAP: &str = "percpu_probe";
const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

/// Why per-CPU values are unknown on this kernel (logged at load, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("reading the possible CPUs ({POSSIBLE_CPUS}) failed")]
    PossibleCpus(#[source] io::Error),
    #[error("{count} possible CPUs: per-CPU calibration handles 1 to {MAX_CPUS}")]
    CpuCount { count: usize },
    #[error("reading this thread's CPU affinity failed")]
    Affinity(#[source] io::Error),
    #[error("the BPF object has no {0} section")]
    MissingSection(&'static str),
    #[error("per-CPU calibration: {what} failed")]
    Map {
        what: &'static str,
        #[source]
        source: MapError,
    },
    #[error("per-CPU offsets learnt for {calibrated} of {possible} possible CPUs")]
    Incomplete { calibrated: u32, possible: u32 },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Learns every possible CPU's per-CPU offset into the object's .bss, then
/// enables the per-CPU sums for that many CPUs. 5.19+ does it in one run;
/// older kernels run a second program once per CPU, pinned to that CPU (an
/// offline possible CPU cannot be visited there: the sums stay unknown).
pub(super) fn calibrate(ebpf: &mut Ebpf, btf: &Btf) -> Result<u32, CalibrationError> {
    let cpus = possible_cpus().map_err(CalibrationError::PossibleCpus)?;
    if cpus.is_empty() || cpus.len() > MAX_CPUS {
        return Err(CalibrationError::CpuCount { count: cpus.len() });
    }
    let mut setup = Calibration {
        probe_id: map_id(ebpf, PROBE_MAP).map_err(|source| CalibrationError::Map {
            what: "finding the probe map's id",
            source,
        })?,
        nr_possible: cpus.len() as u32,
        local_index: 0,
        pad: 0,
        cpus: [0; MAX_CPUS],
    };
    setup.cpus[..cpus.len()].copy_from_slice(&cpus);
    set_calibration(ebpf, &setup)?;
    let calibrated = match load_iter(ebpf, btf, CALIBRATE, "bpf_map") {
        Ok(()) => read_u32(&run_once(ebpf, CALIBRATE)?).unwrap_or(0),
        Err(error) => {
            debug!(error = %super::Chain(&error), "bpf_map_lookup_percpu_elem unavailable (Linux < 5.19): calibrating CPU by CPU");
            load_iter(ebpf, btf, CALIBRATE_LOCAL, "bpf_map")?;
            on_each_cpu(&cpus, |index| {
                setup.local_index = index;
                set_calibration(ebpf, &setup)?;
                Ok(read_u32(&run_once(ebpf, CALIBRATE_LOCAL)?) == Some(index))
            })?
        }
    };
    if calibrated != setup.nr_possible {
        return Err(CalibrationError::Incomplete {
            calibrated,
            possible: setup.nr_possible,
        });
    }
    let section = ebpf
        .map_mut(".data.cpus")
        .ok_or(CalibrationError::MissingSection(".data.cpus"))?;
    Array::<_, u32>::try_from(section)
        .and_then(|mut a| a.set(0, setup.nr_possible, 0))
        .map_err(|source| CalibrationError::Map {
            what: "enabling the per-CPU sums",
            source,
        })?;
    Ok(setup.nr_possible)
}

/// Runs `step(index)` for each of `cpus` in turn with this thread pinned to
/// that CPU, until a CPU cannot be run on (offline), `step` answers false or
/// fails. Returns how many CPUs `step` succeeded on; the thread's affinity is
/// restored on every path.
fn on_each_cpu(
    cpus: &[u32],
    mut step: impl FnMut(u32) -> Result<bool, CalibrationError>,
) -> Result<u32, CalibrationError> {
    let _restore = RestoreAffinity::save()?;
    let mut visited = 0;
    for (index, &cpu) in (0u32..).zip(cpus) {
        let mut only = CpuSet::new();
        only.set(cpu as usize);
        if let Err(errno) = sched_setaffinity(None, &only) {
            debug!(cpu, error = %io::Error::from(errno), "cannot run on a possible CPU (offline?)");
            break;
        }
        if !step(index)? {
            break;
        }
        visited += 1;
    }
    Ok(visited)
}

/// This thread's CPU affinity as it was when saved, put back when dropped:
/// calibration must not leave the loading thread pinned to one CPU, whichever
/// way it ends.
struct RestoreAffinity(CpuSet);

impl RestoreAffinity {
    fn save() -> Result<Self, CalibrationError> {
        sched_getaffinity(None)
            .map(Self)
            .map_err(|errno| CalibrationError::Affinity(errno.into()))
    }
}

impl Drop for RestoreAffinity {
    fn drop(&mut self) {
        if let Err(errno) = sched_setaffinity(None, &self.0) {
            warn!(error = %io::Error::from(errno), "restoring this thread's CPU affinity after per-CPU calibration failed: it may stay on one CPU");
        }
    }
}

fn read_u32(out: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(out).ok().map(u32::from_ne_bytes)
}

/// Writes what the calibration iterators read.
fn set_calibration(ebpf: &mut Ebpf, setup: &Calibration) -> Result<(), CalibrationError> {
    let section = ebpf
        .map_mut(".data.calibration")
        .ok_or(CalibrationError::MissingSection(".data.calibration"))?;
    Array::<_, Calibration>::try_from(section)
        .and_then(|mut a| a.set(0, setup, 0))
        .map_err(|source| CalibrationError::Map {
            what: "writing .data.calibration",
            source,
        })
}

/// The possible CPUs (`0-3`, `0,2-5`): the ids per-CPU data exists for,
/// which can be sparse and more than are online.
fn possible_cpus() -> io::Result<Vec<u32>> {
    parse_cpu_list(std::fs::read_to_string(POSSIBLE_CPUS)?.trim())
        .ok_or_else(|| io::Error::other(format!("cannot parse {POSSIBLE_CPUS}")))
}

/// The online CPUs: those a per-CPU perf event can be opened on.
pub fn online_cpus() -> io::Result<Vec<u32>> {
    const ONLINE_CPUS: &str = "/sys/devices/system/cpu/online";
    parse_cpu_list(std::fs::read_to_string(ONLINE_CPUS)?.trim())
        .ok_or_else(|| io::Error::other(format!("cannot parse {ONLINE_CPUS}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_can_be_sparse() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-3"), Some(vec![0, 1, 2, 3]));
        assert_eq!(parse_cpu_list("0,2-3,8"), Some(vec![0, 2, 3, 8]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    /// The CPUs this test thread may run on, and the first of them. `None`
    /// (with a message) where it may run on one CPU only: pinning it would
    /// change nothing to see; under CI that fails instead.
    fn allowed(test: &str) -> Option<(CpuSet, u32)> {
        let original = sched_getaffinity(None).expect("sched_getaffinity");
        if original.count() < 2 {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: CI must run it on a thread allowed on two CPUs"
            );
            eprintln!("{test}: skipped, this thread may run on one CPU only");
            return None;
        }
        let first = (0..CpuSet::MAX_CPU)
            .find(|&cpu| original.is_set(cpu))
            .expect("an allowed CPU");
        Some((original, first as u32))
    }

    #[test]
    fn the_guard_restores_the_affinity_after_an_early_return() {
        let Some((original, cpu)) =
            allowed("the_guard_restores_the_affinity_after_an_early_return")
        else {
            return;
        };
        let pinned = || -> Result<(), CalibrationError> {
            let _restore = RestoreAffinity::save()?;
            let mut only = CpuSet::new();
            only.set(cpu as usize);
            sched_setaffinity(None, &only).expect("pin to an allowed CPU");
            assert_eq!(sched_getaffinity(None).expect("affinity").count(), 1);
            Err(CalibrationError::MissingSection("early return"))?;
            Ok(())
        };
        assert!(pinned().is_err());
        assert_eq!(sched_getaffinity(None).expect("affinity"), original);
    }

    #[test]
    fn a_failing_step_leaves_the_affinity_as_it_was() {
        let Some((original, cpu)) = allowed("a_failing_step_leaves_the_affinity_as_it_was") else {
            return;
        };
        let mut pinned_to = Vec::new();
        let result = on_each_cpu(&[cpu], |index| {
            pinned_to.push(sched_getaffinity(None).expect("affinity"));
            Err(CalibrationError::Incomplete {
                calibrated: index,
                possible: 1,
            })
        });
        assert!(matches!(
            result,
            Err(CalibrationError::Incomplete { calibrated: 0, .. })
        ));
        let mut only = CpuSet::new();
        only.set(cpu as usize);
        assert_eq!(pinned_to, [only], "the step ran pinned to its CPU");
        assert_eq!(sched_getaffinity(None).expect("affinity"), original);
    }

    #[test]
    fn a_cpu_that_cannot_be_run_on_stops_the_walk_and_the_affinity_is_restored() {
        let Some((original, cpu)) =
            allowed("a_cpu_that_cannot_be_run_on_stops_the_walk_and_the_affinity_is_restored")
        else {
            return;
        };
        // Beyond any possible CPU: sched_setaffinity refuses a set of it alone.
        let absent = (CpuSet::MAX_CPU - 1) as u32;
        let mut steps = Vec::new();
        let visited = on_each_cpu(&[cpu, absent, cpu], |index| {
            steps.push(index);
            Ok(true)
        })
        .expect("no error: an unreachable CPU ends the walk");
        assert_eq!((visited, steps), (1, vec![0]));
        assert_eq!(sched_getaffinity(None).expect("affinity"), original);
    }
}
