//! Counts and memory of objects by type, for the aggregate families, and the
//! roll-up values of an owner group.
use std::collections::BTreeMap;

use super::families::{self as f, Family};
use crate::inventory::OwnerGroup;

/// A roll-up's value of one owner group, if known.
pub(super) type GroupValue = fn(&OwnerGroup) -> Option<u64>;

/// Each owner-group family with its value, for both renderers.
pub(super) const OWNER_GROUP_VALUES: [(&Family, GroupValue); 5] = [
    (&f::OWNER_PROGS, |g| Some(g.program_ids.len() as u64)),
    (&f::OWNER_MAPS, |g| Some(g.map_ids.len() as u64)),
    (&f::OWNER_LINKS, |g| Some(g.link_ids.len() as u64)),
    (&f::OWNER_PROGS_MEMORY, |g| Some(g.programs_memory_bytes)),
    (&f::OWNER_MAPS_MEMORY, |g| g.maps_memory_bytes),
];

#[derive(Default)]
pub(super) struct Aggregate {
    pub(super) count: u64,
    pub(super) memory: u64,
    /// False when the memory of any object of the type is unknown.
    pub(super) memory_known: bool,
}

pub(super) fn by_type<'a, T>(
    objects: &'a [T],
    key: impl Fn(&'a T) -> (&'a str, Option<u64>),
) -> BTreeMap<&'a str, Aggregate> {
    let mut types: BTreeMap<&str, Aggregate> = BTreeMap::new();
    for object in objects {
        let (object_type, memory) = key(object);
        let aggregate = types.entry(object_type).or_insert(Aggregate {
            memory_known: true,
            ..Aggregate::default()
        });
        aggregate.count += 1;
        match memory {
            Some(bytes) => aggregate.memory += bytes,
            None => aggregate.memory_known = false,
        }
    }
    types
}
