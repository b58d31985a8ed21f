//! bpf-inventory-exporter: every BPF program, map and link on a Linux host,
//! read with the exporter's own BPF iterators and served as Prometheus
//! metrics, OTLP metrics and JSON. See ARCHITECTURE.md for the data flow.
pub mod allocator;
pub mod api;
pub mod bpf;
pub mod collect;
pub mod events;
pub mod filter;
pub mod http;
pub mod inventory;
pub mod log_limit;
pub mod otlp;
pub mod privileges;
pub mod render;
pub mod server;
pub mod sync;
#[doc(hidden)]
pub mod testing;
pub mod top;
