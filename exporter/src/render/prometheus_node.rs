//! The node posture families of the Prometheus page (`render/node.rs` gives
//! the points): every header, a sample for each value that could be read.
use std::fmt::Write;

use super::{PageWriter, Value};
use crate::inventory::Posture;
use crate::render::{
    labels::Escaped,
    node::{node_points, NODE_FAMILIES},
    otlp::Point,
};

impl PageWriter {
    pub(super) fn node(&mut self, posture: &Posture) {
        let mut text = String::new();
        for family in &NODE_FAMILIES {
            self.header(family);
            node_points(family, posture, &mut |point, labels| {
                text.clear();
                for (i, (name, value)) in labels.iter().enumerate() {
                    let comma = if i == 0 { "" } else { "," };
                    let _ = write!(text, "{comma}{name}=\"{}\"", Escaped(value));
                }
                let value = match point {
                    Point::Int(v) => Value::Int(v),
                    Point::Float(v) => Value::Float(v),
                };
                self.sample(family, &text, value);
            });
        }
    }
}
