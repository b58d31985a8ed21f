//! The join of a walk with a collection's objects: each program, map and
//! link gets its `Holders` (owners, pins, held_by), unknown for an object
//! newer than the walk.
use std::sync::Arc;

use foldhash::HashSet;

use super::OwnerSnapshot;
use crate::{
    bpf::records::{OWNER_KIND_LINK, OWNER_KIND_MAP, OWNER_KIND_PROG},
    inventory::{HeldBy, Holders, Link, Map, Owner, Owners, Program},
};

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
/// Objects newer than the walk keep them unknown.
fn fill<T: Held, const N: usize>(
    lookup: &mut Lookup<'_>,
    objects: &mut [T],
    also: impl Fn(&T) -> [(bool, HeldBy); N],
) {
    let mark = lookup.snapshot.marks.get(T::KIND);
    for object in objects {
        if object.id() > mark {
            *object.holders_mut() = Holders::default();
            continue;
        }
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
    use crate::{
        bpf::{owners::IdMarks, pins::Pins, records::OwnerRecord},
        collect::{cgroup::CgroupPaths, owners::owners_by_object},
    };

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
            marks: IdMarks::default(),
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

    /// The walk began when maps up to 12 and links up to 3 existed: map 13
    /// and link 4 were created during or after it, so even with no record
    /// of them (their creator was passed already) their holders are
    /// unknown, not none; map 12, older than the walk, is held by nobody.
    #[test]
    fn objects_newer_than_the_walk_have_unknown_holders() {
        let mut inventory = crate::testing::sample_inventory();
        let record = |kind, id| OwnerRecord {
            tgid: 10,
            fd: 3,
            kind,
            id,
            cgroup_id: 0,
            comm: *b"holder\0\0\0\0\0\0\0\0\0\0",
        };
        let snapshot = OwnerSnapshot {
            owners: owners_by_object(
                &[record(OWNER_KIND_MAP, 11), record(OWNER_KIND_PROG, 7)],
                &mut CgroupPaths::default(),
            ),
            pins: Some(Pins::new()),
            marks: IdMarks {
                prog: 21,
                map: 12,
                link: 3,
            },
        };
        let crate::inventory::Inventory {
            programs,
            maps,
            links,
            ..
        } = &mut inventory;
        apply(Some(Arc::new(snapshot)), programs, maps, links);
        let pids = |h: &Holders| {
            h.owners
                .as_ref()
                .map(|o| o.iter().map(|o| o.pid).collect::<Vec<_>>())
        };
        let map = |id| &inventory.maps.iter().find(|m| m.id == id).unwrap().holders;
        assert_eq!(pids(map(11)), Some(vec![10]));
        assert_eq!(pids(map(12)), Some(vec![]));
        assert_eq!(map(12).pins, Some(vec![]));
        assert_eq!(map(13), &Holders::default(), "newer than the walk");
        assert_eq!(pids(&inventory.programs[0].holders), Some(vec![10]));
        assert_eq!(pids(&inventory.links[0].holders), Some(vec![]));
        assert_eq!(inventory.links[1].holders, Holders::default());
    }
}
