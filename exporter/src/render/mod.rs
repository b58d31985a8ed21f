//! Renderers: pure functions from an `Inventory` to bytes.
pub mod families;
pub mod prometheus;
pub mod table;
