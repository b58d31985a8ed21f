//! Cell text: owners, sizes, durations, counts and the fill bar, as the
//! panes show them (compact: a table cell is a few characters wide).
use crate::inventory::Holders;

/// (owner, pod or container) of an object: `?` when owners are unknown; with
/// no process, what holds it (pinned, link ...).
pub fn owner_text(holders: &Holders) -> (String, String) {
    let Some(owners) = &holders.owners else {
        return ("?".into(), "?".into());
    };
    let Some(first) = owners.first() else {
        let held: Vec<&str> = holders
            .held_by
            .iter()
            .flatten()
            .map(|h| h.as_str())
            .collect();
        let held = if held.is_empty() {
            "-".into()
        } else {
            format!("({})", held.join(","))
        };
        return (held, "-".into());
    };
    let mut owner = format!("{}({})", first.comm, first.pid);
    if owners.len() > 1 {
        owner.push_str(&format!(" +{}", owners.len() - 1));
    }
    let place = owners
        .iter()
        .find_map(|o| {
            o.pod_uid
                .as_deref()
                .map(|p| format!("pod:{}", prefix(p, 8)))
        })
        .or_else(|| {
            owners.iter().find_map(|o| {
                o.container_id
                    .as_deref()
                    .map(|c| format!("ctr:{}", short_container(c)))
            })
        })
        .unwrap_or_else(|| "-".into());
    (owner, place)
}

pub fn prefix(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(at, _)| &text[..at])
}

/// A container id as `docker ps` shortens it.
pub fn short_container(id: &str) -> &str {
    prefix(id, 12)
}

/// A fill fraction as a 10-cell bar and a percentage.
pub fn fill_bar(fill: f64) -> String {
    const CELLS: usize = 10;
    let full = ((fill.clamp(0.0, 1.0) * CELLS as f64).round() as usize).min(CELLS);
    format!(
        "{}{} {:5.1}%",
        "█".repeat(full),
        "░".repeat(CELLS - full),
        fill * 100.0
    )
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub fn nanos(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0} ns"),
        n if n < 1e6 => format!("{:.1} µs", n / 1e3),
        n if n < 1e9 => format!("{:.1} ms", n / 1e6),
        n => format!("{:.2} s", n / 1e9),
    }
}

pub fn count(n: f64) -> String {
    match n {
        n if n < 1e4 => format!("{n:.0}"),
        n if n < 1e7 => format!("{:.1}k", n / 1e3),
        n => format!("{:.1}M", n / 1e6),
    }
}
