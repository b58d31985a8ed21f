//! Label sets of the Prometheus exposition, escaped for both formats.
use std::fmt::Write;

use crate::inventory::Collector;

pub(super) fn label(labels: &mut String, name: &str, value: &str) {
    let _ = write!(labels, ",{name}=\"{}\"", Escaped(value));
}

pub(super) fn self_label(labels: &mut String, is_self: bool) {
    if is_self {
        labels.push_str(",self=\"true\"");
    }
}

pub(super) fn collector_label(c: Collector) -> String {
    format!("collector=\"{}\"", c.as_str())
}

/// A label value escaped for both formats: backslash, double quote, newline.
pub(super) struct Escaped<'a>(pub(super) &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['\\', '"', '\n']) {
            out.write_str(&rest[..i])?;
            out.write_str(match rest.as_bytes()[i] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[i + 1..];
        }
        out.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(Escaped("plain").to_string(), "plain");
        assert_eq!(Escaped("a\\b\"c\nd").to_string(), "a\\\\b\\\"c\\nd");
        assert_eq!(Escaped("ünï\"").to_string(), "ünï\\\"");
    }
}
