//! One observable instrument per family of the families table. Their callbacks
//! never read the kernel: they observe the collection the export pinned for
//! the duration of one SDK read, so every instrument of an export sees the
//! same collection, and outside an export nothing is held.
use std::sync::{Arc, Mutex, MutexGuard};

use opentelemetry::{
    metrics::{AsyncInstrument, Meter},
    KeyValue,
};

use crate::{
    collect::Collection,
    render::{
        families::{Family, FAMILIES},
        otlp::{data_points, is_float, is_sum, Point},
        prometheus::RenderOptions,
    },
};

/// The collection the current export reads, if one is running.
#[derive(Default)]
pub(super) struct Pinned(Mutex<Option<Arc<Collection>>>);

impl Pinned {
    /// Pins `collection` while `read` runs (the SDK calls every callback
    /// inside it), then releases it.
    pub(super) fn read_with<T>(&self, collection: Arc<Collection>, read: impl FnOnce() -> T) -> T {
        *self.lock() = Some(collection);
        let result = read();
        *self.lock() = None;
        result
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<Collection>>> {
        crate::sync::lock(&self.0)
    }

    fn observe(
        &self,
        family: &Family,
        options: &RenderOptions,
        emit: &mut dyn FnMut(Point, &[KeyValue]),
    ) {
        // Cloned out so the lock is not held while observing.
        let Some(collection) = self.lock().clone() else {
            return;
        };
        data_points(
            family,
            &collection.inventory,
            &collection.stats,
            options,
            emit,
        );
    }
}

/// Registers every family's instrument on `meter`. Counters are monotonic
/// sums (so delta temporality applies to them), everything else a gauge.
pub(super) fn register(meter: &Meter, pinned: &Arc<Pinned>, options: &RenderOptions) {
    for family in FAMILIES {
        let (pinned, options) = (Arc::clone(pinned), options.clone());
        let name = family.otel_name;
        match (is_sum(family), is_float(family)) {
            (true, true) => {
                meter
                    .f64_observable_counter(name)
                    .with_unit(family.otel_unit)
                    .with_description(family.help)
                    .with_callback(move |o| observe_f64(&pinned, family, &options, o))
                    .build();
            }
            (true, false) => {
                meter
                    .u64_observable_counter(name)
                    .with_unit(family.otel_unit)
                    .with_description(family.help)
                    .with_callback(move |o| observe_u64(&pinned, family, &options, o))
                    .build();
            }
            (false, true) => {
                meter
                    .f64_observable_gauge(name)
                    .with_unit(family.otel_unit)
                    .with_description(family.help)
                    .with_callback(move |o| observe_f64(&pinned, family, &options, o))
                    .build();
            }
            (false, false) => {
                meter
                    .u64_observable_gauge(name)
                    .with_unit(family.otel_unit)
                    .with_description(family.help)
                    .with_callback(move |o| observe_u64(&pinned, family, &options, o))
                    .build();
            }
        }
    }
}

fn observe_u64(
    pinned: &Pinned,
    family: &Family,
    options: &RenderOptions,
    observer: &dyn AsyncInstrument<u64>,
) {
    pinned.observe(family, options, &mut |point, attributes| {
        // is_float() chose the u64 instrument: every point here is an Int.
        if let Point::Int(v) = point {
            observer.observe(v, attributes);
        }
    });
}

fn observe_f64(
    pinned: &Pinned,
    family: &Family,
    options: &RenderOptions,
    observer: &dyn AsyncInstrument<f64>,
) {
    pinned.observe(family, options, &mut |point, attributes| {
        let v = match point {
            Point::Int(v) => v as f64,
            Point::Float(v) => v,
        };
        observer.observe(v, attributes);
    });
}
