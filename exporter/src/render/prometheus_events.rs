//! The events' families of the Prometheus page: loads and unloads by the
//! process of the event, short-lived programs, records the kernel lost.
use super::{f, label, PageWriter, Value};
use crate::collect::EventStats;

impl PageWriter {
    /// The events' counters: headers always, samples when events are on.
    pub(super) fn events(&mut self, events: Option<&EventStats>) {
        for (family, counts) in [
            (&f::PROG_LOADS, events.map(|e| &e.loads)),
            (&f::PROG_UNLOADS, events.map(|e| &e.unloads)),
        ] {
            self.header(family);
            for (loader, count) in counts.into_iter().flatten() {
                let mut labels = String::new();
                for (name, value) in [
                    ("comm", &loader.comm),
                    ("container_id", &loader.container_id),
                    ("pod_uid", &loader.pod_uid),
                ] {
                    if let Some(value) = value {
                        label(&mut labels, name, value);
                    }
                }
                // Without the leading comma.
                let labels = labels.get(1..).unwrap_or_default();
                self.sample(family, labels, Value::Int(*count));
            }
        }
        for (family, value) in [
            (&f::PROG_SHORT_LIVED, events.map(|e| e.short_lived)),
            (&f::EVENTS_LOST, events.map(|e| e.lost)),
        ] {
            self.header(family);
            if let Some(value) = value {
                self.sample(family, "", Value::Int(value));
            }
        }
    }
}
