use std::sync::atomic::Ordering;

use super::*;
use crate::testing::{sample_inventory, sample_inventory_with_error, FixedSource};

const LONG: Duration = Duration::from_secs(60);

/// Lets every spawned task run up to its first await (current-thread runtime).
async fn let_tasks_run() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn concurrent_callers_share_one_collection() {
    let (source, release) = FixedSource::gated(sample_inventory());
    let calls = Arc::clone(&source.calls);
    let flight = SingleFlight::new(Box::new(source));
    let waiters: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn({
                let flight = Arc::clone(&flight);
                async move { flight.collect(LONG).await }
            })
        })
        .collect();
    let_tasks_run().await;
    release.send(()).unwrap();
    let mut results = Vec::new();
    for waiter in waiters {
        results.push(waiter.await.unwrap().unwrap());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|c| Arc::ptr_eq(c, &results[0])));
    assert_eq!(results[0].stats.collections_total, 1);
    assert_eq!(results[0].inventory, sample_inventory());

    // The flight is over: the next caller gets a fresh read.
    release.send(()).unwrap();
    let next = flight.collect(LONG).await.unwrap();
    assert_eq!(next.stats.collections_total, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_waiter_times_out_and_the_collection_still_finishes() {
    let (source, release) = FixedSource::gated(sample_inventory());
    let flight = SingleFlight::new(Box::new(source));
    let timeout = Duration::from_millis(5);
    match flight.collect(timeout).await {
        Err(CollectError::Timeout(t)) => assert_eq!(t, timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(flight
        .unready_reason(Duration::ZERO)
        .is_some_and(|r| r.contains("running")));
    release.send(()).unwrap();
    // Joins the flight started above, which now completes.
    let done = flight.collect(LONG).await.unwrap();
    assert_eq!(done.stats.collections_total, 1);
    assert_eq!(flight.unready_reason(LONG), None);
}

#[tokio::test]
async fn collector_errors_are_counted_and_make_it_unready() {
    let flight = SingleFlight::new(Box::new(FixedSource::new(sample_inventory_with_error())));
    assert_eq!(
        flight.unready_reason(LONG).as_deref(),
        Some("no collection has finished yet")
    );
    flight.collect(LONG).await.unwrap();
    let second = flight.collect(LONG).await.unwrap();
    assert_eq!(
        second.stats.collector_errors_total,
        [
            (Collector::Programs, 0),
            (Collector::Maps, 0),
            (Collector::Links, 2)
        ]
    );
    assert_eq!(
        flight.unready_reason(LONG).as_deref(),
        Some("collectors failed: links")
    );
    assert_eq!(second.stats.map_memory_age, None);
}

struct NoLinkIterator(FixedSource);

impl InventorySource for NoLinkIterator {
    fn collect(&mut self) -> Inventory {
        self.0.collect()
    }
    fn unavailable(&self) -> Vec<Collector> {
        vec![Collector::Links]
    }
}

#[tokio::test]
async fn an_unsupported_collector_does_not_make_it_unready() {
    let source = NoLinkIterator(FixedSource::new(sample_inventory_with_error()));
    let flight = SingleFlight::new(Box::new(source));
    flight.collect(LONG).await.unwrap();
    assert_eq!(flight.unready_reason(LONG), None);
}

#[tokio::test]
async fn the_release_hook_runs_when_the_last_user_drops_the_collection() {
    let flight = SingleFlight::new(Box::new(FixedSource::new(sample_inventory())));
    let released = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&released);
    flight.set_release_hook(Arc::new(move |collection| {
        counter.fetch_add(collection, Ordering::SeqCst);
    }));
    let first = flight.collect(LONG).await.unwrap();
    let second_user = Arc::clone(&first);
    drop(first);
    assert_eq!(released.load(Ordering::SeqCst), 0, "still in use");
    drop(second_user);
    crate::testing::released("the hook", || released.load(Ordering::SeqCst) != 0).await;
    assert_eq!(
        released.load(Ordering::SeqCst),
        1,
        "called once, with number 1"
    );
    // Readiness needs no collection kept alive.
    assert_eq!(flight.unready_reason(LONG), None);
}

#[tokio::test]
async fn one_json_document_per_collection_shared_by_its_requests() {
    let (source, release) = FixedSource::gated(sample_inventory());
    let flight = SingleFlight::new(Box::new(source));
    release.send(()).unwrap();
    let collection = flight.collect(LONG).await.unwrap();
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let collection = Arc::clone(&collection);
            tokio::spawn(async move { collection.inventory_json().await.unwrap() })
        })
        .collect();
    let mut documents = Vec::new();
    for request in requests {
        documents.push(request.await.unwrap());
    }
    // One encoding: every request holds the same bytes, not a copy.
    assert!(documents
        .iter()
        .all(|d| d.as_ptr() == documents[0].as_ptr()));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&documents[0]).unwrap(),
        serde_json::to_value(sample_inventory()).unwrap()
    );
}
