//! Owner groups: the objects held per (comm, container_id, pod_uid), for the
//! roll-up metrics and `GET /api/v1/owners`. An object held by two groups
//! counts in each; held twice within one group (two processes), once.
use std::{collections::HashMap, sync::Arc};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Inventory, Owner, Owners};

/// An owner group's identity: (comm, container_id, pod_uid).
type GroupKey = (Arc<str>, Option<Arc<str>>, Option<Arc<str>>);

fn group_key(o: &Owner) -> GroupKey {
    (o.comm.clone(), o.container_id.clone(), o.pod_uid.clone())
}

/// What one owner group holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OwnerGroup {
    #[schema(value_type = String)]
    pub comm: Arc<str>,
    #[schema(value_type = Option<String>)]
    pub container_id: Option<Arc<str>>,
    #[schema(value_type = Option<String>)]
    pub pod_uid: Option<Arc<str>>,
    /// The group's processes holding any object.
    pub pids: Vec<u32>,
    pub program_ids: Vec<u32>,
    pub map_ids: Vec<u32>,
    pub link_ids: Vec<u32>,
    /// Memory of the programs held.
    pub programs_memory_bytes: u64,
    /// Memory of the maps held; `null` if that of any of them is unknown.
    pub maps_memory_bytes: Option<u64>,
}

impl Inventory {
    /// Every owner group, ordered by (comm, container_id, pod_uid). Empty when
    /// owners are unknown.
    pub fn owner_groups(&self) -> Vec<OwnerGroup> {
        let mut groups = Groups::default();
        for p in &self.programs {
            groups.add(&p.holders.owners, p.id, |g| &mut g.program_ids);
        }
        for m in &self.maps {
            groups.add(&m.holders.owners, m.id, |g| &mut g.map_ids);
        }
        for l in &self.links {
            groups.add(&l.holders.owners, l.id, |g| &mut g.link_ids);
        }
        let mut groups = groups.list;
        for g in &mut groups {
            // Sorted already when the objects are (as collected); made sure.
            for ids in [
                &mut g.pids,
                &mut g.program_ids,
                &mut g.map_ids,
                &mut g.link_ids,
            ] {
                ids.sort_unstable();
                ids.dedup();
            }
            g.programs_memory_bytes = g
                .program_ids
                .iter()
                .filter_map(|&id| self.program(id))
                .map(|p| p.memory_bytes)
                .sum();
            g.maps_memory_bytes = g
                .map_ids
                .iter()
                .map(|&id| self.map(id).and_then(|m| m.memory_bytes))
                .sum();
        }
        groups.sort_unstable_by(|a, b| {
            (&a.comm, &a.container_id, &a.pod_uid).cmp(&(&b.comm, &b.container_id, &b.pod_uid))
        });
        groups
    }
}

/// The groups met so far. Consecutive owners are mostly one process, whose
/// text they share: the last group is found again by pointer comparisons.
#[derive(Default)]
struct Groups {
    list: Vec<OwnerGroup>,
    index: HashMap<GroupKey, usize>,
    last: Option<usize>,
}

impl Groups {
    /// Adds object `id` to the groups of its owners, in the list `ids` picks.
    fn add(&mut self, owners: &Option<Owners>, id: u32, ids: fn(&mut OwnerGroup) -> &mut Vec<u32>) {
        for o in owners.as_deref().unwrap_or_default().iter() {
            let list = ids(self.of(o));
            if list.last() != Some(&id) {
                list.push(id);
            }
        }
    }

    /// The group of `o`, with `o`'s pid added.
    fn of(&mut self, o: &Owner) -> &mut OwnerGroup {
        let same = |g: &OwnerGroup| {
            g.comm == o.comm && g.container_id == o.container_id && g.pod_uid == o.pod_uid
        };
        let at = match self.last {
            Some(at) if same(&self.list[at]) => at,
            _ => {
                let list = &mut self.list;
                *self.index.entry(group_key(o)).or_insert_with_key(
                    |(comm, container_id, pod_uid)| {
                        list.push(OwnerGroup {
                            comm: comm.clone(),
                            container_id: container_id.clone(),
                            pod_uid: pod_uid.clone(),
                            ..OwnerGroup::default()
                        });
                        list.len() - 1
                    },
                )
            }
        };
        self.last = Some(at);
        let group = &mut self.list[at];
        if group.pids.last() != Some(&o.pid) {
            group.pids.push(o.pid);
        }
        group
    }
}

#[cfg(test)]
mod tests {
    use crate::{inventory::Owner, testing::sample_inventory};

    #[test]
    fn two_processes_of_a_group_around_another_count_the_object_once() {
        let mut inventory = sample_inventory();
        let owner = |pid, comm: &str| Owner {
            pid,
            comm: comm.into(),
            cgroup: None,
            container_id: None,
            pod_uid: None,
        };
        let first = inventory.maps[0].id;
        // Not the same Arc: groups are equal by text, not by pointer.
        inventory.maps[0].holders.owners =
            Some(vec![owner(1, "a"), owner(2, "b"), owner(3, "a")].into());
        for m in &mut inventory.maps[1..] {
            m.holders.owners = Some(vec![owner(3, "a")].into());
        }
        for p in &mut inventory.programs {
            p.holders.owners = None;
        }
        for l in &mut inventory.links {
            l.holders.owners = None;
        }
        let groups = inventory.owner_groups();
        let a = &groups[0];
        assert_eq!((&*a.comm, a.pids.as_slice()), ("a", &[1, 3][..]));
        let all_maps: Vec<u32> = inventory.maps.iter().map(|m| m.id).collect();
        assert_eq!(a.map_ids, all_maps);
        let b = &groups[1];
        assert_eq!(
            (&*b.comm, b.pids.as_slice(), b.map_ids.as_slice()),
            ("b", &[2][..], &[first][..])
        );
        assert_eq!(groups.len(), 2);
        assert_eq!(
            a.maps_memory_bytes,
            inventory
                .maps
                .iter()
                .map(|m| m.memory_bytes)
                .sum::<Option<u64>>()
        );
    }

    #[test]
    fn an_object_counts_once_per_group_holding_it() {
        let groups = sample_inventory().owner_groups();
        let summary: Vec<_> = groups
            .iter()
            .map(|g| {
                (
                    &*g.comm,
                    g.pids.clone(),
                    g.program_ids.clone(),
                    g.map_ids.clone(),
                    g.link_ids.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("bpf-inventory-e", vec![100], vec![21], vec![13], vec![4]),
                ("bpftool", vec![77], vec![], vec![11], vec![]),
                ("edge-agent", vec![4242], vec![7], vec![11], vec![]),
            ]
        );
        let agent = &groups[2];
        assert_eq!(
            agent.pod_uid.as_deref(),
            Some("0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
        );
        assert_eq!(
            (agent.programs_memory_bytes, agent.maps_memory_bytes),
            (4096, Some(16_000))
        );
    }
}
