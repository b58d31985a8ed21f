//! Counts and memory of objects by type, for the aggregate families.
use std::collections::BTreeMap;

#[derive(Default)]
pub(super) struct Aggregate {
    pub(super) count: u64,
    pub(super) memory: u64,
    /// False when the memory of any object of the type is unknown.
    pub(super) memory_known: bool,
}

pub(super) fn by_type<'a, T>(
    objects: &'a [T],
    key: impl Fn(&'a T) -> (&'a String, Option<u64>),
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
