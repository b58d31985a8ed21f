//! Owners, pins and `held_by` of every object of a collection. The owners
//! walk (bpf::owners) gives (pid, fd, object, cgroup id, comm) per BPF fd;
//! here they become one `Owner` per process and object, with the cgroup path
//! and the container and pod it names. `--owners-min-interval` reuses a walk
//! younger than that.
//!
//! A walk tells the owners of the objects that existed when it began. An
//! object created later (its id above the walk's mark of its kind, see
//! `bpf::owners::IdMarks`) may have been created by a process the walk had
//! passed already: its owners, pins and held_by are unknown (`null`) until a
//! walk that began after it, never an empty list. The exporter's own
//! transient fds (map memory, pins) are not owners (`bpf::transient`).
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::{debug, warn};

use super::cgroup::{bpffs_mounts, CgroupPaths};
use crate::{
    bpf::{
        self,
        owners::{IdMarks, OwnerWalk},
        pins::{read_pins, Pins},
        records::{c_string, OwnerRecord},
    },
    inventory::Owner,
};

mod join;
pub use join::apply;

/// Owners of every object, one per (OWNER_KIND_*, id) and pid, sorted by
/// both; pins, unless unreadable; the highest ids that existed when the walk
/// began (objects above them are newer than the walk).
pub struct OwnerSnapshot {
    owners: Vec<((u32, u32), Owner)>,
    pins: Option<Pins>,
    marks: IdMarks,
}

pub struct OwnerSource {
    walk: OwnerWalk,
    cgroups: CgroupPaths,
    bpffs: Vec<PathBuf>,
    min_interval: Duration,
    last: Option<(Instant, Arc<OwnerSnapshot>)>,
    pins_warned: bool,
}

impl OwnerSource {
    pub fn open(min_interval: Duration) -> Result<Self, bpf::Error> {
        let walk = OwnerWalk::load()?;
        let bpffs = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|info| bpffs_mounts(&info))
            .unwrap_or_default();
        Ok(Self {
            walk,
            cgroups: CgroupPaths::new(),
            bpffs,
            min_interval,
            last: None,
            pins_warned: false,
        })
    }

    /// Ids of the owners walk's programs (the exporter's own).
    pub fn prog_ids(&self) -> Vec<u32> {
        self.walk.prog_ids()
    }

    /// Ids an iterator has read: they existed before the next walk.
    pub fn raise_floor(&mut self, seen: IdMarks) {
        self.walk.raise_floor(seen);
    }

    /// Whether the next walk's marks are exact (see `OwnerWalk::marks_exact`).
    pub fn marks_exact(&self) -> bool {
        self.walk.marks_exact()
    }

    /// The last walk if younger than the minimum interval, else a new one.
    pub fn snapshot(&mut self) -> Result<Arc<OwnerSnapshot>, bpf::Error> {
        if let Some((at, snapshot)) = &self.last {
            if at.elapsed() < self.min_interval {
                return Ok(Arc::clone(snapshot));
            }
        }
        // Several fds of one process to one object come one after another
        // (the walk visits a task's fds in order): kept once.
        let mut records: Vec<OwnerRecord> = Vec::new();
        let marks = self.walk.walk(|r| {
            let same = |l: &OwnerRecord| (l.tgid, l.kind, l.id) == (r.tgid, r.kind, r.id);
            if !records.last().is_some_and(same) {
                records.push(r);
            }
        })?;
        let owners = owners_by_object(&records, &mut self.cgroups);
        let pins = match read_pins(&self.bpffs) {
            Ok(pins) => Some(pins),
            Err(error) => {
                if !std::mem::replace(&mut self.pins_warned, true) {
                    warn!(%error, "pins are unknown (null)");
                } else {
                    debug!(%error, "pins are unknown");
                }
                None
            }
        };
        let snapshot = Arc::new(OwnerSnapshot {
            owners,
            pins,
            marks,
        });
        if !self.min_interval.is_zero() {
            self.last = Some((Instant::now(), Arc::clone(&snapshot)));
        }
        Ok(snapshot)
    }
}

/// One owner per (object, pid): a file shared after fork, or several fds of
/// one process, count once. The walk visits a task's fds one after another,
/// so an owner is built once per task and then shared (its text is `Arc`).
fn owners_by_object(
    records: &[OwnerRecord],
    cgroups: &mut CgroupPaths,
) -> Vec<((u32, u32), Owner)> {
    let names = cgroups.resolve(records.iter().map(|r| r.cgroup_id));
    let mut task: Option<(OwnerRecord, Owner)> = None;
    let mut owners = Vec::with_capacity(records.len());
    for &r in records {
        let owner = match &task {
            Some((last, owner))
                if (last.tgid, last.cgroup_id, last.comm) == (r.tgid, r.cgroup_id, r.comm) =>
            {
                owner.clone()
            }
            _ => {
                let cgroup = names.get(&r.cgroup_id);
                let owner = Owner {
                    pid: r.tgid,
                    comm: c_string(&r.comm).into(),
                    cgroup: cgroup.map(|c| Arc::clone(&c.path)),
                    container_id: cgroup.and_then(|c| c.container_id.clone()),
                    pod_uid: cgroup.and_then(|c| c.pod_uid.clone()),
                };
                task.insert((r, owner)).1.clone()
            }
        };
        owners.push(((r.kind, r.id), owner));
    }
    // A stable sort on the key alone: the walk gives runs already in order
    // (each process' fds), which it merges instead of moving every owner.
    owners.sort_by_key(|(key, owner)| (*key, owner.pid));
    owners.dedup_by(|a, b| a.0 == b.0 && a.1.pid == b.1.pid);
    owners
}
