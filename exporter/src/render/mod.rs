//! Renderers: pure functions from an `Inventory` to bytes.
pub mod table;
