//! Owner groups: the objects held per (comm, container_id, pod_uid), for the
//! roll-up metrics and `GET /api/v1/owners`. An object held by two groups
//! counts in each; held twice within one group (two processes), once.
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Inventory, Owner};

/// The key of an owner group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub struct OwnerKey {
    #[schema(value_type = String)]
    pub comm: Arc<str>,
    #[schema(value_type = Option<String>)]
    pub container_id: Option<Arc<str>>,
    #[schema(value_type = Option<String>)]
    pub pod_uid: Option<Arc<str>>,
}

impl From<&Owner> for OwnerKey {
    fn from(o: &Owner) -> Self {
        Self {
            comm: o.comm.clone(),
            container_id: o.container_id.clone(),
            pod_uid: o.pod_uid.clone(),
        }
    }
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

#[derive(Default)]
struct Held {
    pids: BTreeSet<u32>,
    programs: BTreeSet<u32>,
    maps: BTreeSet<u32>,
    links: BTreeSet<u32>,
}

impl Inventory {
    /// Every owner group, ordered by (comm, container_id, pod_uid). Empty when
    /// owners are unknown.
    pub fn owner_groups(&self) -> Vec<OwnerGroup> {
        let mut groups: BTreeMap<OwnerKey, Held> = BTreeMap::new();
        let mut add =
            |owners: &Option<Vec<Owner>>, id: u32, set: fn(&mut Held) -> &mut BTreeSet<u32>| {
                for o in owners.iter().flatten() {
                    let held = groups.entry(OwnerKey::from(o)).or_default();
                    held.pids.insert(o.pid);
                    set(held).insert(id);
                }
            };
        for p in &self.programs {
            add(&p.owners, p.id, |h| &mut h.programs);
        }
        for m in &self.maps {
            add(&m.owners, m.id, |h| &mut h.maps);
        }
        for l in &self.links {
            add(&l.owners, l.id, |h| &mut h.links);
        }
        groups
            .into_iter()
            .map(|(key, held)| OwnerGroup {
                programs_memory_bytes: held
                    .programs
                    .iter()
                    .filter_map(|&id| self.program(id))
                    .map(|p| p.memory_bytes)
                    .sum(),
                maps_memory_bytes: held
                    .maps
                    .iter()
                    .map(|&id| self.map(id).and_then(|m| m.memory_bytes))
                    .sum(),
                comm: key.comm,
                container_id: key.container_id,
                pod_uid: key.pod_uid,
                pids: held.pids.into_iter().collect(),
                program_ids: held.programs.into_iter().collect(),
                map_ids: held.maps.into_iter().collect(),
                link_ids: held.links.into_iter().collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::sample_inventory;

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
