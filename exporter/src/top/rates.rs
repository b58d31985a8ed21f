//! Rates from two consecutive collections: a program's runs/s, average run
//! time and CPU %, a map's fill and entries/s. Unknown stays `None` (the
//! kernel did not count, or the object is new since the last collection):
//! never 0.
use std::time::Duration;

use crate::inventory::{Inventory, Map, Program};

/// Why a program's run columns are empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRunStats {
    /// The kernel is not counting: no BPF_ENABLE_STATS fd held by us and the sysctl off.
    Off,
    /// Counting is on, but this kernel's per-CPU counters could not be read.
    Unreadable,
    /// One collection so far: rates need two.
    FirstCollection,
}

impl NoRunStats {
    pub fn explain(self) -> &'static str {
        match self {
            NoRunStats::Off => {
                "no run stats: --enable-bpf-stats (needs CAP_SYS_ADMIN) or kernel.bpf_stats_enabled=1"
            }
            NoRunStats::Unreadable => {
                "no run stats: this kernel's per-CPU run counters could not be read (see `check`)"
            }
            NoRunStats::FirstCollection => "runs/s, avg run and CPU %: from the second collection on",
        }
    }
}

/// A program's rates over the last interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProgramRates {
    pub runs_per_s: Option<f64>,
    /// Nanoseconds per run in the interval; `None` also when it did not run.
    pub avg_run_ns: Option<f64>,
    pub cpu_percent: Option<f64>,
}

/// Whether run statistics can be shown for `current` (after `previous`).
/// `bpf_stats_enabled` cannot see another process's BPF_ENABLE_STATS fd, so
/// run time that advanced between the two collections counts as "on" too.
pub fn run_stats(previous: Option<&Inventory>, current: &Inventory) -> Result<(), NoRunStats> {
    let Some(previous) = previous else {
        return Err(NoRunStats::FirstCollection);
    };
    if current.programs.iter().all(|p| p.run_time_ns.is_none()) && !current.programs.is_empty() {
        return Err(NoRunStats::Unreadable);
    }
    let advanced = current.programs.iter().any(|p| {
        let before = previous.program(p.id).and_then(|b| b.run_time_ns);
        matches!((before, p.run_time_ns), (Some(b), Some(a)) if a > b)
    });
    if current.bpf_stats_enabled || advanced {
        Ok(())
    } else {
        Err(NoRunStats::Off)
    }
}

/// Rates of `current` since `previous` (the same program one collection
/// earlier), `wall` apart.
///
/// CPU % is computed as bpftop does (`BpfProgram::cpu_time_percent`): run
/// time gained / wall time of the interval × 100, NOT divided by the online
/// CPUs, so 100 % is one CPU's worth and a program busy on four CPUs shows
/// 400 %. The average run time is that of the interval (bpftop's
/// `period_average_runtime_ns`), not since load.
pub fn program_rates(
    previous: Option<&Program>,
    current: &Program,
    wall: Duration,
) -> ProgramRates {
    let wall_ns = wall.as_nanos() as f64;
    let Some(previous) = previous.filter(|_| wall_ns > 0.0) else {
        return ProgramRates::default();
    };
    let delta = |now: Option<u64>, before: Option<u64>| now?.checked_sub(before?);
    let runs = delta(current.run_count, previous.run_count);
    let run_ns = delta(current.run_time_ns, previous.run_time_ns);
    ProgramRates {
        runs_per_s: runs.map(|n| n as f64 * 1e9 / wall_ns),
        avg_run_ns: match (run_ns, runs) {
            (Some(ns), Some(n)) if n > 0 => Some(ns as f64 / n as f64),
            _ => None,
        },
        cpu_percent: run_ns.map(|ns| ns as f64 / wall_ns * 100.0),
    }
}

/// Entries / max_entries in 0..=1; `None` when the entry count is unknown.
pub fn map_fill(map: &Map) -> Option<f64> {
    let entries = map.entries?;
    (map.max_entries > 0).then(|| entries as f64 / f64::from(map.max_entries))
}

/// Entries gained per second (negative when the map shrank).
pub fn map_entries_per_s(previous: Option<&Map>, current: &Map, wall: Duration) -> Option<f64> {
    let wall_s = wall.as_secs_f64();
    let before = previous?.entries?;
    let now = current.entries?;
    (wall_s > 0.0).then(|| (now as f64 - before as f64) / wall_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_inventory;

    #[test]
    fn cpu_percent_is_run_time_gained_over_wall_time() {
        let before = sample_inventory();
        let mut after = before.clone();
        // 250 ms of run time and 500 runs in a 2 s interval.
        after.programs[0].run_time_ns = before.programs[0].run_time_ns.map(|n| n + 250_000_000);
        after.programs[0].run_count = before.programs[0].run_count.map(|n| n + 500);
        let rates = program_rates(
            before.program(7),
            &after.programs[0],
            Duration::from_secs(2),
        );
        assert_eq!(rates.cpu_percent, Some(12.5));
        assert_eq!(rates.runs_per_s, Some(250.0));
        assert_eq!(rates.avg_run_ns, Some(500_000.0));
    }

    #[test]
    fn unknown_stays_unknown() {
        let inventory = sample_inventory();
        // Program 21 has no run statistics; a new program has no previous.
        let none = program_rates(
            inventory.program(21),
            &inventory.programs[1],
            Duration::from_secs(1),
        );
        assert_eq!(none, ProgramRates::default());
        let new = program_rates(None, &inventory.programs[0], Duration::from_secs(1));
        assert_eq!(new, ProgramRates::default());
        // A program that did not run: 0 runs/s and 0 %, but no average.
        let idle = program_rates(
            inventory.program(7),
            &inventory.programs[0],
            Duration::from_secs(1),
        );
        assert_eq!(idle.runs_per_s, Some(0.0));
        assert_eq!(idle.cpu_percent, Some(0.0));
        assert_eq!(idle.avg_run_ns, None);
        let events = inventory.map(12).expect("map 12");
        assert_eq!(map_fill(events), None);
        assert_eq!(
            map_entries_per_s(Some(events), events, Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn run_stats_say_why_they_are_missing() {
        let mut off = sample_inventory();
        assert_eq!(run_stats(None, &off), Err(NoRunStats::FirstCollection));
        off.bpf_stats_enabled = false;
        assert_eq!(run_stats(Some(&off.clone()), &off), Err(NoRunStats::Off));
        // Someone else's BPF_ENABLE_STATS fd: the run time advanced.
        let mut advanced = off.clone();
        advanced.programs[0].run_time_ns = Some(2_000_000_000);
        assert_eq!(run_stats(Some(&off), &advanced), Ok(()));
        let mut unreadable = sample_inventory();
        unreadable
            .programs
            .iter_mut()
            .for_each(|p| p.run_time_ns = None);
        assert_eq!(
            run_stats(Some(&unreadable.clone()), &unreadable),
            Err(NoRunStats::Unreadable)
        );
    }
}
