//! OpenTelemetry data points of an `Inventory`: for one family of the families
//! table, each point's value and attributes (the Prometheus labels, typed: ids
//! and sizes as integers, flags as booleans). Pure; the OTLP push observes
//! these in its instrument callbacks (`otlp/instruments.rs`).
use std::{collections::BTreeSet, sync::Arc};

use opentelemetry::KeyValue;

use super::{
    aggregate::{by_type, OWNER_GROUP_VALUES},
    families::{self as f, Family, Kind},
    node::{is_node_family, node_points},
    prometheus::RenderOptions,
};
use crate::{
    collect::CollectionStats,
    inventory::{Collector, Inventory, Map, Owners, Program},
};

/// A point's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point {
    Int(u64),
    Float(f64),
}

/// Families whose values are fractional; the others are exact integers.
const FLOAT_FAMILIES: [Family; 6] = [
    f::PROG_LOADED,
    f::NODE_JIT_USED,
    f::PROG_RUN_SECONDS,
    f::SCRAPE_DURATION,
    f::MAP_MEMORY_AGE,
    f::OTLP_EXPORT_DURATION,
];

/// Whether the family's instrument records `f64` (else `u64`).
pub fn is_float(family: &Family) -> bool {
    FLOAT_FAMILIES.contains(family)
}

/// Whether the family has one point per program, map or link (the families a
/// host with many objects makes large).
pub fn is_per_object(family: &Family) -> bool {
    family.labels.first() == Some(&"id")
}

/// Calls `emit` with every point of `family`.
pub fn data_points(
    family: &Family,
    inventory: &Inventory,
    stats: &CollectionStats,
    options: &RenderOptions,
    emit: &mut dyn FnMut(Point, &[KeyValue]),
) {
    if is_per_object(family) {
        if options.per_object {
            object_points(family, inventory, options, emit);
        }
    } else if family.labels == ["type"] {
        type_points(family, inventory, emit);
    } else if f::EVENT_FAMILIES.contains(family) {
        event_points(family, stats, emit);
    } else if family.labels == f::OWNER_PROGS.labels {
        owner_group_points(family, inventory, emit);
    } else if is_node_family(family) {
        node_points(family, &inventory.node.posture, &mut |point, labels| {
            let attributes: Vec<KeyValue> = labels
                .iter()
                .map(|&(key, value)| KeyValue::new(key, value.to_owned()))
                .collect();
            emit(point, &attributes);
        });
    } else {
        exporter_points(family, inventory, stats, options, emit);
    }
}

fn object_attributes(id: u32, name: &str, object_type: &str, is_self: bool) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("id", i64::from(id)),
        KeyValue::new("name", name.to_owned()),
        KeyValue::new("type", object_type.to_owned()),
    ];
    push_self(&mut attributes, is_self);
    attributes
}

/// `self` only on the exporter's own objects, as in the Prometheus labels.
fn push_self(attributes: &mut Vec<KeyValue>, is_self: bool) {
    if is_self {
        attributes.push(KeyValue::new("self", true));
    }
}

fn object_points(
    family: &Family,
    inventory: &Inventory,
    options: &RenderOptions,
    emit: &mut dyn FnMut(Point, &[KeyValue]),
) {
    let program = |value: fn(&Program) -> Option<Point>,
                   emit: &mut dyn FnMut(Point, &[KeyValue])| {
        for p in &inventory.programs {
            if let Some(v) = value(p) {
                emit(
                    v,
                    &object_attributes(p.id, &p.name, &p.prog_type, p.is_self),
                );
            }
        }
    };
    let map = |value: fn(&Map) -> Option<Point>, emit: &mut dyn FnMut(Point, &[KeyValue])| {
        for m in &inventory.maps {
            if let Some(v) = value(m) {
                emit(v, &object_attributes(m.id, &m.name, &m.map_type, m.is_self));
            }
        }
    };
    match family.name {
        n if n == f::PROG_INFO.name => {
            for p in &inventory.programs {
                let mut attributes = vec![
                    KeyValue::new("id", i64::from(p.id)),
                    KeyValue::new("name", p.name.clone()),
                    KeyValue::new("type", p.prog_type.clone()),
                    KeyValue::new("tag", p.tag.clone()),
                ];
                if let Some(attach_to) = &p.attach_to {
                    attributes.push(KeyValue::new("attach_to", attach_to.clone()));
                }
                attributes.push(KeyValue::new("gpl", p.gpl_compatible));
                push_self(&mut attributes, p.is_self);
                emit(Point::Int(1), &attributes);
            }
        }
        n if n == f::PROG_LOADED.name => program(
            |p| Some(Point::Float(p.loaded_at.timestamp_micros() as f64 / 1e6)),
            emit,
        ),
        n if n == f::PROG_XLATED.name => program(|p| Some(Point::Int(p.xlated_bytes.into())), emit),
        n if n == f::PROG_JITED.name => program(|p| Some(Point::Int(p.jited_bytes.into())), emit),
        n if n == f::PROG_VERIFIED.name => {
            program(|p| p.verified_insns.map(|v| Point::Int(v.into())), emit)
        }
        n if n == f::PROG_MEMORY.name => program(|p| Some(Point::Int(p.memory_bytes)), emit),
        n if n == f::PROG_RUN_SECONDS.name => program(
            |p| p.run_time_ns.map(|ns| Point::Float(ns as f64 / 1e9)),
            emit,
        ),
        n if n == f::PROG_RUNS.name => program(|p| p.run_count.map(Point::Int), emit),
        n if n == f::PROG_RECURSION_MISSES.name => {
            program(|p| p.recursion_misses.map(Point::Int), emit)
        }
        n if n == f::MAP_INFO.name => {
            for m in &inventory.maps {
                let mut attributes = vec![
                    KeyValue::new("id", i64::from(m.id)),
                    KeyValue::new("name", m.name.clone()),
                    KeyValue::new("type", m.map_type.clone()),
                    KeyValue::new("key_size", i64::from(m.key_size)),
                    KeyValue::new("value_size", i64::from(m.value_size)),
                    KeyValue::new("flags", i64::from(m.flags)),
                ];
                push_self(&mut attributes, m.is_self);
                emit(Point::Int(1), &attributes);
            }
        }
        n if n == f::MAP_MAX_ENTRIES.name => map(|m| Some(Point::Int(m.max_entries.into())), emit),
        n if n == f::MAP_ENTRIES.name => map(|m| m.entries.map(Point::Int), emit),
        n if n == f::MAP_MEMORY.name => map(|m| m.memory_bytes.map(Point::Int), emit),
        n if n == f::LINK_INFO.name => {
            for l in &inventory.links {
                let mut attributes = vec![
                    KeyValue::new("id", i64::from(l.id)),
                    KeyValue::new("type", l.link_type.clone()),
                    KeyValue::new("prog_id", i64::from(l.prog_id)),
                ];
                if let Some(attach_type) = &l.attach_type {
                    attributes.push(KeyValue::new("attach_type", attach_type.clone()));
                }
                if let Some(target) = &l.target {
                    attributes.push(KeyValue::new("target", target.to_string()));
                }
                push_self(&mut attributes, l.is_self);
                emit(Point::Int(1), &attributes);
            }
        }
        n if n == f::PROG_OWNER.name => {
            let programs = inventory.programs.iter().map(|p| (p.id, &p.holders.owners));
            owner_points(programs, options.owner_pid_label, emit);
        }
        n if n == f::MAP_OWNER.name => {
            let maps = inventory.maps.iter().map(|m| (m.id, &m.holders.owners));
            owner_points(maps, options.owner_pid_label, emit);
        }
        n if n == f::LINK_OWNER.name => {
            let links = inventory.links.iter().map(|l| (l.id, &l.holders.owners));
            owner_points(links, options.owner_pid_label, emit);
        }
        // The families test below keeps this list complete.
        _ => {}
    }
}

/// `comm`, and `container_id` / `pod_uid` where the cgroup names them.
fn group_attributes(
    comm: &Arc<str>,
    container_id: &Option<Arc<str>>,
    pod_uid: &Option<Arc<str>>,
) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new("comm", Arc::clone(comm))];
    if let Some(id) = container_id {
        attributes.push(KeyValue::new("container_id", Arc::clone(id)));
    }
    if let Some(uid) = pod_uid {
        attributes.push(KeyValue::new("pod_uid", Arc::clone(uid)));
    }
    attributes
}

/// One point per object and owner group (or process, with `pid`), as the
/// Prometheus `bpf_*_owner_info` series.
fn owner_points<'a>(
    objects: impl Iterator<Item = (u32, &'a Option<Owners>)>,
    pid_label: bool,
    emit: &mut dyn FnMut(Point, &[KeyValue]),
) {
    for (id, owners) in objects {
        let mut seen = BTreeSet::new();
        for o in owners.as_deref().unwrap_or_default().iter() {
            let pid = pid_label.then_some(o.pid);
            if !seen.insert((&o.comm, &o.container_id, &o.pod_uid, pid)) {
                continue;
            }
            let mut attributes = vec![KeyValue::new("id", i64::from(id))];
            attributes.extend(group_attributes(&o.comm, &o.container_id, &o.pod_uid));
            if let Some(pid) = pid {
                attributes.push(KeyValue::new("pid", i64::from(pid)));
            }
            emit(Point::Int(1), &attributes);
        }
    }
}

/// The roll-ups per owner group; unknown map memory has no point.
fn owner_group_points(
    family: &Family,
    inventory: &Inventory,
    emit: &mut dyn FnMut(Point, &[KeyValue]),
) {
    let Some((_, value)) = OWNER_GROUP_VALUES
        .iter()
        .find(|(f, _)| f.name == family.name)
    else {
        return;
    };
    for g in inventory.owner_groups() {
        if let Some(v) = value(&g) {
            emit(
                Point::Int(v),
                &group_attributes(&g.comm, &g.container_id, &g.pod_uid),
            );
        }
    }
}

fn type_points(family: &Family, inventory: &Inventory, emit: &mut dyn FnMut(Point, &[KeyValue])) {
    let types = match family.name {
        n if n == f::PROGS.name || n == f::PROGS_MEMORY.name => by_type(&inventory.programs, |p| {
            (&p.prog_type, Some(p.memory_bytes))
        }),
        n if n == f::MAPS.name || n == f::MAPS_MEMORY.name => {
            by_type(&inventory.maps, |m| (&m.map_type, m.memory_bytes))
        }
        _ => by_type(&inventory.links, |l| (&l.link_type, None)),
    };
    let memory = family.unit == super::families::Unit::Bytes;
    for (object_type, aggregate) in types {
        let value = if memory {
            aggregate.memory_known.then_some(aggregate.memory)
        } else {
            Some(aggregate.count)
        };
        if let Some(v) = value {
            emit(
                Point::Int(v),
                &[KeyValue::new("type", object_type.to_owned())],
            );
        }
    }
}

fn exporter_points(
    family: &Family,
    inventory: &Inventory,
    stats: &CollectionStats,
    options: &RenderOptions,
    emit: &mut dyn FnMut(Point, &[KeyValue]),
) {
    let collector = |c: Collector| [KeyValue::new("collector", c.as_str())];
    match family.name {
        n if n == f::BUILD_INFO.name => {
            emit(Point::Int(1), &[KeyValue::new("version", options.version)])
        }
        n if n == f::SCRAPE_DURATION.name => emit(Point::Float(stats.duration.as_secs_f64()), &[]),
        n if n == f::COLLECTOR_SUPPORTED.name => {
            for c in Collector::ALL {
                emit(
                    Point::Int(inventory.collector_supported(c).into()),
                    &collector(c),
                );
            }
        }
        n if n == f::COLLECTOR_SUCCESS.name => {
            for c in Collector::ALL
                .into_iter()
                .filter(|&c| inventory.collector_supported(c))
            {
                emit(Point::Int(inventory.collector_ok(c).into()), &collector(c));
            }
        }
        n if n == f::COLLECTOR_ERRORS.name => {
            for (c, errors) in stats.collector_errors_total {
                emit(Point::Int(errors), &collector(c));
            }
        }
        n if n == f::COLLECTIONS.name => emit(Point::Int(stats.collections_total), &[]),
        n if n == f::BPF_STATS_ENABLED.name => {
            emit(Point::Int(inventory.bpf_stats_enabled.into()), &[])
        }
        n if n == f::MAP_MEMORY_AGE.name => {
            if let Some(age) = stats.map_memory_age {
                emit(Point::Float(age.as_secs_f64()), &[]);
            }
        }
        n if n == f::OTLP_EXPORTS.name => {
            if let Some(otlp) = &stats.otlp {
                for (result, count) in [("success", otlp.succeeded), ("failure", otlp.failed)] {
                    emit(Point::Int(count), &[KeyValue::new("result", result)]);
                }
            }
        }
        n if n == f::OTLP_EXPORT_DURATION.name => {
            if let Some(took) = stats.otlp.and_then(|o| o.last_duration) {
                emit(Point::Float(took.as_secs_f64()), &[]);
            }
        }
        n if n == f::OTLP_EVENTS_DROPPED.name => {
            if let Some(otlp) = &stats.otlp {
                emit(Point::Int(otlp.events_dropped), &[]);
            }
        }
        _ => {}
    }
}

/// The events' counters, when events are on; a loader's attributes only where known.
fn event_points(
    family: &Family,
    stats: &CollectionStats,
    emit: &mut dyn FnMut(Point, &[KeyValue]),
) {
    let Some(events) = &stats.events else {
        return;
    };
    let loaders = match family.name {
        n if n == f::PROG_LOADS.name => &events.loads,
        n if n == f::PROG_UNLOADS.name => &events.unloads,
        n if n == f::PROG_SHORT_LIVED.name => return emit(Point::Int(events.short_lived), &[]),
        _ => return emit(Point::Int(events.lost), &[]),
    };
    for (loader, count) in loaders {
        let attributes: Vec<KeyValue> = [
            ("comm", &loader.comm),
            ("container_id", &loader.container_id),
            ("pod_uid", &loader.pod_uid),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| KeyValue::new(key, v.to_string())))
        .collect();
        emit(Point::Int(*count), &attributes);
    }
}

/// Whether the family is a monotonic sum in OTLP.
pub fn is_sum(family: &Family) -> bool {
    family.kind == Kind::Counter
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sample_inventory, sample_stats};

    fn points(family: &Family) -> Vec<(Point, Vec<KeyValue>)> {
        let mut out = Vec::new();
        data_points(
            family,
            &sample_inventory(),
            &sample_stats(),
            &RenderOptions::default(),
            &mut |p, a| out.push((p, a.to_vec())),
        );
        out
    }

    #[test]
    fn every_family_has_points_and_the_right_value_type() {
        for family in f::FAMILIES {
            let points = points(family);
            assert!(!points.is_empty(), "{} has no point", family.name);
            for (point, attributes) in &points {
                assert_eq!(
                    matches!(point, Point::Float(_)),
                    is_float(family),
                    "{}",
                    family.name
                );
                // Attribute keys are the family's Prometheus label names.
                for kv in attributes {
                    assert!(
                        family.labels.contains(&kv.key.as_str()),
                        "{}: {}",
                        family.name,
                        kv.key
                    );
                }
            }
        }
    }

    #[test]
    fn points_carry_the_inventory_values() {
        let inventory = sample_inventory();
        let hash = inventory
            .maps
            .iter()
            .find(|m| m.name == "fixture_hash")
            .unwrap();
        let entries = points(&f::MAP_ENTRIES);
        let (point, attributes) = entries
            .iter()
            .find(|(_, a)| a[0] == KeyValue::new("id", i64::from(hash.id)))
            .unwrap();
        assert_eq!(*point, Point::Int(hash.entries.unwrap()));
        assert_eq!(attributes[1], KeyValue::new("name", "fixture_hash"));
        // Unknown entry counts have no point, not 0.
        assert_eq!(
            entries.len(),
            inventory
                .maps
                .iter()
                .filter(|m| m.entries.is_some())
                .count()
        );
        let exports = points(&f::OTLP_EXPORTS);
        assert_eq!(
            exports,
            vec![
                (Point::Int(5), vec![KeyValue::new("result", "success")]),
                (Point::Int(2), vec![KeyValue::new("result", "failure")]),
            ]
        );
        assert_eq!(
            points(&f::OTLP_EVENTS_DROPPED),
            vec![(Point::Int(3), vec![])]
        );
    }

    #[test]
    fn otlp_doc_names_every_family_for_otel() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/otlp.md"))
            .unwrap();
        for family in f::FAMILIES {
            let row = format!("| `{}` | `{}` |", family.otel_name, family.otel_unit);
            let line = doc.lines().find(|l| l.starts_with(&row));
            assert!(
                line.is_some_and(|l| l.ends_with(&format!("| `{}` |", family.name))),
                "docs/otlp.md's OTel table lacks {row} ... {}",
                family.name
            );
        }
    }

    #[test]
    fn aggregates_only_has_no_per_object_points() {
        let options = RenderOptions {
            per_object: false,
            ..RenderOptions::default()
        };
        for family in f::FAMILIES {
            let mut n = 0;
            data_points(
                family,
                &sample_inventory(),
                &sample_stats(),
                &options,
                &mut |_, _| n += 1,
            );
            assert_eq!(n == 0, is_per_object(family), "{}", family.name);
        }
    }
}
