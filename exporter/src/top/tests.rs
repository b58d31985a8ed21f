//! The view drawn on ratatui's TestBackend from fixed inventories.
