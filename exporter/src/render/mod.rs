//! Renderers: pure functions from an `Inventory` to bytes.
mod aggregate;
pub mod families;
pub mod fragments;
mod labels;
pub mod node;
pub mod otlp;
pub mod prometheus;
pub mod server_stats;
pub mod table;
