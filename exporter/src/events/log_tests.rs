use super::*;
use crate::{
    events::EventKind,
    testing::{self, sample_event},
};

fn labels(comm: &str) -> LoaderLabels {
    LoaderLabels {
        comm: Some(comm.into()),
        container_id: None,
        pod_uid: Some("0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into()),
    }
}

#[test]
fn pages_are_numbered_filtered_and_say_what_was_dropped() {
    let log = EventLog::new(3);
    for id in 1..=4 {
        log.append(sample_event(EventKind::Load, id, "a"));
    }
    log.append(sample_event(EventKind::Unload, 4, "b"));
    // Capacity 3: seq 1 and 2 left the buffer.
    let all = log.page(0, 10, &EventFilter::default());
    let seqs: Vec<u64> = all.items.iter().map(|e| e.seq).collect();
    assert_eq!((seqs, all.dropped, all.next_since), (vec![3, 4, 5], 2, 5));
    let page = log.page(3, 1, &EventFilter::default());
    assert_eq!(
        (page.items[0].seq, page.dropped, page.next_since),
        (4, 0, 4)
    );
    let unloads = EventFilter {
        kind: Some(EventKind::Unload),
        ..EventFilter::default()
    };
    let page = log.page(0, 10, &unloads);
    assert_eq!((page.items.len(), page.items[0].prog_id), (1, 4));
    let by_comm = EventFilter {
        comm: Some("a".into()),
        ..EventFilter::default()
    };
    assert_eq!(log.page(0, 10, &by_comm).items.len(), 2);
    assert_eq!(log.page(5, 10, &EventFilter::default()).items, vec![]);
    assert_eq!(log.page(5, 10, &EventFilter::default()).next_since, 5);
}

#[test]
fn counters_short_lived_and_losses() {
    let log = EventLog::new(10);
    let inventory = testing::sample_inventory();
    let seen = inventory.programs[0].id;
    // A program a collection saw is not short-lived; one it never saw is.
    log.append(sample_event(EventKind::Load, seen, "a"));
    log.append(sample_event(EventKind::Load, 90_001, "a"));
    let stats = log.observe(&inventory.programs);
    assert_eq!(stats.short_lived, 0);
    assert_eq!(
        log.page(0, 10, &EventFilter::default()).items[0]
            .prog_type
            .as_deref(),
        Some(&*inventory.programs[0].prog_type)
    );
    log.lost(3);
    log.append(sample_event(EventKind::Unload, seen, "b"));
    log.append(sample_event(EventKind::Unload, 90_001, "b"));
    let stats = log.stats();
    assert_eq!(stats.short_lived, 1);
    assert_eq!(stats.lost, 3);
    assert_eq!(stats.loads, vec![(labels("a"), 2)]);
    assert_eq!(stats.unloads, vec![(labels("b"), 2)]);
    // The loss came after seq 2: a reader resuming after 2 is told, after 3 not.
    assert_eq!(log.page(2, 10, &EventFilter::default()).lost, 3);
    assert_eq!(log.page(3, 10, &EventFilter::default()).lost, 0);
}

#[test]
fn a_since_from_an_earlier_process_gets_this_logs_events() {
    // The predecessor numbered up to 1 000 050; this log starts after 2 000 000.
    let log = EventLog::numbered_after(2, 2_000_000);
    assert_eq!(*log.subscribe().borrow(), 2_000_000);
    for id in 1..=3 {
        log.append(sample_event(EventKind::Load, id, "a"));
    }
    let page = log.page(1_000_050, 10, &EventFilter::default());
    let seqs: Vec<u64> = page.items.iter().map(|e| e.seq).collect();
    // Capacity 2: this log's first event left the buffer; nothing else is missing.
    assert_eq!(
        (seqs, page.dropped, page.next_since),
        (vec![2_000_002, 2_000_003], 1, 2_000_003)
    );
    let now = EventLog::numbered_from_now(1);
    now.append(sample_event(EventKind::Load, 1, "a"));
    let first = now.page(0, 1, &EventFilter::default()).items[0].seq;
    assert!(
        first > 1_765_000_000_000_000,
        "{first} is not microseconds since 1970"
    );
}

#[test]
fn a_collection_types_the_loads_it_sees_and_their_unloads_copy_it() {
    let log = EventLog::new(3);
    let inventory = testing::sample_inventory();
    let program = &inventory.programs[0];
    log.append(sample_event(EventKind::Load, program.id, "a"));
    log.append(sample_event(EventKind::Load, 90_001, "a"));
    log.observe(&inventory.programs);
    log.append(sample_event(EventKind::Unload, program.id, "b"));
    log.append(sample_event(EventKind::Unload, 90_001, "b"));
    let typed = |e: &Event| (e.kind, e.prog_id, e.prog_type.clone(), e.name.clone());
    let known = (
        Some(program.prog_type.to_string()),
        Some(program.name.clone()),
    );
    let events: Vec<_> = log
        .page(0, 10, &EventFilter::default())
        .items
        .iter()
        .map(typed)
        .collect();
    // Capacity 3: the first load left; its unload still has what the collection saw.
    let sample = sample_event(EventKind::Load, 90_001, "a");
    assert_eq!(
        events,
        vec![
            (EventKind::Load, 90_001, None, sample.name.clone()),
            (EventKind::Unload, program.id, known.0, known.1),
            (EventKind::Unload, 90_001, None, sample.name),
        ]
    );
    // A program a later collection sees whose load left the buffer changes nothing.
    log.observe(&inventory.programs);
    assert_eq!(log.page(0, 10, &EventFilter::default()).items.len(), 3);
}
