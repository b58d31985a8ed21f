//! Owners, pins and `held_by` of every object of a collection. The owners
//! walk (bpf::owners) gives (pid, fd, object, cgroup id, comm) per BPF fd;
//! here they become one `Owner` per process and object, with the cgroup path
//! and the container and pod it names. `--owners-min-interval` reuses a walk
//! younger than that.
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use foldhash::HashSet;
use tracing::{debug, warn};

use super::cgroup::{bpffs_mounts, CgroupPaths};
use crate::{
    bpf::{
        self,
        owners::OwnerWalk,
        pins::{read_pins, Pins},
        records::{c_string, OwnerRecord, OWNER_KIND_LINK, OWNER_KIND_MAP, OWNER_KIND_PROG},
    },
    inventory::{HeldBy, Holders, Link, Map, Owner, Owners, Program},
};

/// Owners of every object, one per (OWNER_KIND_*, id) and pid, sorted by
/// both; pins, unless unreadable.
pub struct OwnerSnapshot {
    owners: Vec<((u32, u32), Owner)>,
    pins: Option<Pins>,
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
        self.walk.walk(|r| {
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
        let snapshot = Arc::new(OwnerSnapshot { owners, pins });
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

/// Sets owners, pins and held_by on every object; `None` leaves them unknown.
pub fn apply(
    snapshot: Option<Arc<OwnerSnapshot>>,
    programs: &mut [Program],
    maps: &mut [Map],
    links: &mut [Link],
) {
    let Some(snapshot) = snapshot else {
        return;
    };
    let mut lookup = Lookup::new(&snapshot);
    let linked: HashSet<u32> = links.iter().map(|l| l.prog_id).collect();
    let used: HashSet<u32> = programs
        .iter()
        .flat_map(|p| p.map_ids.iter().copied())
        .collect();
    fill(&mut lookup, programs, |p| {
        [
            (linked.contains(&p.id), HeldBy::Link),
            (p.prog_type == "struct_ops", HeldBy::Kernel),
        ]
    });
    fill(&mut lookup, maps, |m| {
        [
            (used.contains(&m.id), HeldBy::Program),
            (m.map_type == "struct_ops", HeldBy::Kernel),
        ]
    });
    fill(&mut lookup, links, |l| {
        [(l.link_type == "struct_ops", HeldBy::Kernel)]
    });
}

/// A program, map or link as the owners join sees it.
trait Held {
    /// OWNER_KIND_* of the walk's records.
    const KIND: u32;
    /// What holds an object of this kind when nothing else is seen.
    const FALLBACK: HeldBy;
    fn id(&self) -> u32;
    fn holders_mut(&mut self) -> &mut Holders;
}

impl Held for Program {
    const KIND: u32 = OWNER_KIND_PROG;
    // tc, XDP via netlink, cgroup PROG_ATTACH: holders not visible.
    const FALLBACK: HeldBy = HeldBy::Attached;
    fn id(&self) -> u32 {
        self.id
    }
    fn holders_mut(&mut self) -> &mut Holders {
        &mut self.holders
    }
}

impl Held for Map {
    const KIND: u32 = OWNER_KIND_MAP;
    // An inner map of a map-in-map.
    const FALLBACK: HeldBy = HeldBy::Kernel;
    fn id(&self) -> u32 {
        self.id
    }
    fn holders_mut(&mut self) -> &mut Holders {
        &mut self.holders
    }
}

impl Held for Link {
    const KIND: u32 = OWNER_KIND_LINK;
    // A struct_ops link.
    const FALLBACK: HeldBy = HeldBy::Kernel;
    fn id(&self) -> u32 {
        self.id
    }
    fn holders_mut(&mut self) -> &mut Holders {
        &mut self.holders
    }
}

/// Owners, pins and held_by of each object of one kind; `also` names the
/// holders other than processes and pins (links, programs, the kernel).
fn fill<T: Held, const N: usize>(
    lookup: &mut Lookup<'_>,
    objects: &mut [T],
    also: impl Fn(&T) -> [(bool, HeldBy); N],
) {
    for object in objects {
        let (owners, pins) = lookup.lookup(T::KIND, object.id());
        let also = also(object);
        let held = held_by(&owners, pins.as_deref(), &also, T::FALLBACK);
        *object.holders_mut() = Holders {
            owners: Some(owners),
            pins,
            held_by: Some(held),
        };
    }
}

/// Owners and pins of object after object. Objects come in (kind, id)
/// order, as the owners are sorted: each lookup goes on from the last one
/// (any other order still works, by a search). An object with the same
/// owners as the one before shares its list.
struct Lookup<'a> {
    snapshot: &'a OwnerSnapshot,
    at: usize,
    last: Option<Owners>,
}

impl<'a> Lookup<'a> {
    fn new(snapshot: &'a OwnerSnapshot) -> Self {
        Self {
            snapshot,
            at: 0,
            last: None,
        }
    }

    fn lookup(&mut self, kind: u32, id: u32) -> (Owners, Option<Vec<String>>) {
        let all = &self.snapshot.owners;
        let key = (kind, id);
        if self.at > 0 && all[self.at - 1].0 >= key {
            self.at = all.partition_point(|(k, _)| *k < key);
        }
        while all.get(self.at).is_some_and(|(k, _)| *k < key) {
            self.at += 1;
        }
        let found = all[self.at..].iter().take_while(|(k, _)| *k == key).count();
        let found = &all[self.at..self.at + found];
        self.at += found.len();
        let owners = match &self.last {
            // Text shared by the walk's owners compares by pointer first.
            Some(last)
                if last.len() == found.len()
                    && last.iter().zip(found).all(|(a, (_, b))| a == b) =>
            {
                Arc::clone(last)
            }
            _ => self
                .last
                .insert(found.iter().map(|(_, owner)| owner.clone()).collect())
                .clone(),
        };
        let pins = self
            .snapshot
            .pins
            .as_ref()
            .map(|pins| pins.get(&key).cloned().unwrap_or_default());
        (owners, pins)
    }
}

/// What holds an object; `fallback` ([`Held::FALLBACK`]) when nothing else
/// does and every holder could be seen (pins known).
fn held_by(
    owners: &[Owner],
    pins: Option<&[String]>,
    also: &[(bool, HeldBy)],
    fallback: HeldBy,
) -> Vec<HeldBy> {
    let mut held = Vec::new();
    if !owners.is_empty() {
        held.push(HeldBy::Process);
    }
    if pins.is_some_and(|p| !p.is_empty()) {
        held.push(HeldBy::Pinned);
    }
    held.extend(also.iter().filter(|(yes, _)| *yes).map(|(_, h)| *h));
    if held.is_empty() && pins.is_some() {
        held.push(fallback);
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(pid: u32) -> Owner {
        Owner {
            pid,
            comm: "x".into(),
            cgroup: None,
            container_id: None,
            pod_uid: None,
        }
    }

    #[test]
    fn held_by_lists_every_holder_and_falls_back_only_when_pins_are_known() {
        let pins = vec!["/sys/fs/bpf/a".to_owned()];
        assert_eq!(
            held_by(
                &[owner(1)],
                Some(&pins),
                &[(true, HeldBy::Link)],
                HeldBy::Attached
            ),
            [HeldBy::Process, HeldBy::Pinned, HeldBy::Link]
        );
        assert_eq!(
            held_by(&[], Some(&[]), &[(false, HeldBy::Link)], HeldBy::Attached),
            [HeldBy::Attached]
        );
        assert_eq!(held_by(&[], None, &[], HeldBy::Attached), []);
    }

    fn snapshot_of(records: &[OwnerRecord]) -> OwnerSnapshot {
        OwnerSnapshot {
            owners: owners_by_object(records, &mut CgroupPaths::default()),
            pins: None,
        }
    }

    #[test]
    fn one_owner_per_process_and_object() {
        let record = |tgid, fd, kind, id| OwnerRecord {
            tgid,
            fd,
            kind,
            id,
            cgroup_id: 0,
            comm: *b"holder\0\0\0\0\0\0\0\0\0\0",
        };
        let records = [
            record(20, 3, OWNER_KIND_MAP, 5),
            record(20, 4, OWNER_KIND_MAP, 5),
            record(10, 3, OWNER_KIND_MAP, 5),
            record(10, 4, OWNER_KIND_PROG, 5),
        ];
        let snapshot = snapshot_of(&records);
        let mut lookup = Lookup::new(&snapshot);
        let mut pids = |kind| {
            let (owners, _) = lookup.lookup(kind, 5);
            owners.iter().map(|o| o.pid).collect::<Vec<_>>()
        };
        // In order, then out of order (a search), then again.
        assert_eq!(pids(OWNER_KIND_MAP), [10, 20]);
        assert_eq!(pids(OWNER_KIND_PROG), [10]);
        assert_eq!(pids(OWNER_KIND_LINK), Vec::<u32>::new());
        assert_eq!(pids(OWNER_KIND_MAP), [10, 20]);
        assert_eq!(pids(OWNER_KIND_PROG), [10]);
        assert_eq!(pids(OWNER_KIND_PROG), [10]);
        assert_eq!(&*lookup.lookup(OWNER_KIND_MAP, 5).0[0].comm, "holder");
    }

    #[test]
    fn objects_with_the_same_owners_share_one_list() {
        let record = |tgid, id| OwnerRecord {
            tgid,
            fd: 3,
            kind: OWNER_KIND_MAP,
            id,
            cgroup_id: 0,
            comm: *b"holder\0\0\0\0\0\0\0\0\0\0",
        };
        // Maps 1 and 2 held by process 10, map 3 by 10 and 20, map 4 by 20.
        let records = [
            record(10, 1),
            record(10, 2),
            record(10, 3),
            record(20, 3),
            record(20, 4),
        ];
        let snapshot = snapshot_of(&records);
        let mut lookup = Lookup::new(&snapshot);
        let lists: Vec<Owners> = (1..=5)
            .map(|id| lookup.lookup(OWNER_KIND_MAP, id).0)
            .collect();
        let pids: Vec<Vec<u32>> = lists
            .iter()
            .map(|l| l.iter().map(|o| o.pid).collect())
            .collect();
        assert_eq!(pids, [vec![10], vec![10], vec![10, 20], vec![20], vec![]]);
        assert!(Arc::ptr_eq(&lists[0], &lists[1]));
        assert!(!Arc::ptr_eq(&lists[1], &lists[2]));
        assert!(!Arc::ptr_eq(&lists[2], &lists[3]));
    }
}
