//! OTLP push: the same inventory as OpenTelemetry metrics, sent to a collector
//! every export interval. Configured by the standard `OTEL_*` variables
//! (`config.rs`); each export takes one collection through the single flight
//! and has the SDK read it through observable instruments (`instruments.rs`),
//! then sends it with opentelemetry-otlp (`push.rs`). The BPF load/unload
//! events go to the same collector as OTLP log records (`logs.rs`).
mod config;
mod exporter;
mod http_client;
mod instruments;
mod logs;
mod push;
mod resource;

pub use config::{ConfigError, PushConfig};
pub use exporter::PushError;
pub use push::{PushSource, Pusher};
