//! The rows of each pane as text cells with their sort keys, made from the
//! current and the previous collection: what `view` draws and `app` sorts
//! and filters. Unknown values are their own sort key (always last).
use std::{cmp::Ordering, time::Duration};

use super::{
    format::{bytes, count, fill_bar, nanos, owner_text, prefix, short_container},
    rates::{self, NoRunStats},
};
use crate::{events::Event, inventory::Inventory};

/// The panes, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Programs,
    Maps,
    Links,
    Owners,
    Events,
}

impl Pane {
    pub const ALL: [Pane; 5] = [
        Pane::Programs,
        Pane::Maps,
        Pane::Links,
        Pane::Owners,
        Pane::Events,
    ];

    pub fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Programs => "Programs",
            Pane::Maps => "Maps",
            Pane::Links => "Links",
            Pane::Owners => "Owners",
            Pane::Events => "Events",
        }
    }

    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Pane::Programs => &[
                "ID", "TYPE", "NAME", "OWNER", "POD/CTR", "RUNS/S", "AVG RUN", "CPU %", "MEMORY",
            ],
            Pane::Maps => &[
                "ID",
                "TYPE",
                "NAME",
                "FILL",
                "ENTRIES",
                "ENTRIES/S",
                "MEMORY",
                "OWNER",
            ],
            Pane::Links => &["ID", "TYPE", "PROG", "ATTACH", "TARGET", "OWNER"],
            Pane::Owners => &[
                "COMM",
                "CONTAINER",
                "POD",
                "PIDS",
                "PROGS",
                "MAPS",
                "LINKS",
                "MEMORY",
            ],
            Pane::Events => &[
                "TIME", "OP", "PROG", "NAME", "TYPE", "PID", "COMM", "POD/CTR",
            ],
        }
    }

    /// The column sorted by at start, and whether descending: programs by
    /// CPU, maps fullest first, events newest first.
    pub fn default_sort(self) -> (usize, bool) {
        match self {
            Pane::Programs => (7, true),
            Pane::Maps => (3, true),
            Pane::Links => (0, false),
            Pane::Owners => (7, true),
            Pane::Events => (0, true),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    Num(f64),
    Text(String),
    Unknown,
}

impl SortKey {
    /// Known values in `descending` order or not; unknown ones after them.
    pub fn compare(&self, other: &SortKey, descending: bool) -> Ordering {
        let ordered = match (self, other) {
            (SortKey::Unknown, SortKey::Unknown) => return Ordering::Equal,
            (SortKey::Unknown, _) => return Ordering::Greater,
            (_, SortKey::Unknown) => return Ordering::Less,
            (SortKey::Num(a), SortKey::Num(b)) => a.total_cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Num(_), SortKey::Text(_)) => Ordering::Less,
            (SortKey::Text(_), SortKey::Num(_)) => Ordering::Greater,
        };
        if descending {
            ordered.reverse()
        } else {
            ordered
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub text: String,
    pub key: SortKey,
}

fn num(text: String, key: f64) -> Value {
    Value {
        text,
        key: SortKey::Num(key),
    }
}

fn text(text: impl Into<String>) -> Value {
    let text = text.into();
    Value {
        key: SortKey::Text(text.clone()),
        text,
    }
}

fn unknown(text: &str) -> Value {
    Value {
        text: text.into(),
        key: SortKey::Unknown,
    }
}

fn id(id: u32) -> Value {
    num(id.to_string(), f64::from(id))
}

fn maybe(value: Option<f64>, format: impl Fn(f64) -> String) -> Value {
    value.map_or_else(|| unknown("-"), |v| num(format(v), v))
}

/// One row: `ident` keeps the selection on the same object across refreshes,
/// `name` is what `/` filters on.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub ident: String,
    pub name: String,
    pub cells: Vec<Value>,
}

/// Two collections `wall` apart (the previous one absent at first).
pub struct Snapshot<'a> {
    pub current: &'a Inventory,
    pub previous: Option<&'a Inventory>,
    pub wall: Duration,
}

impl Snapshot<'_> {
    pub fn run_stats(&self) -> Result<(), NoRunStats> {
        rates::run_stats(self.previous, self.current)
    }
}

pub fn program_rows(s: &Snapshot) -> Vec<Row> {
    let stats = s.run_stats().is_ok();
    s.current
        .programs
        .iter()
        .map(|p| {
            let previous = s.previous.and_then(|i| i.program(p.id)).filter(|_| stats);
            let r = rates::program_rates(previous, p, s.wall);
            let (owner, place) = owner_text(&p.holders);
            let name = if p.is_self {
                format!("{} (self)", p.name)
            } else {
                p.name.clone()
            };
            Row {
                ident: p.id.to_string(),
                name: p.name.clone(),
                cells: vec![
                    id(p.id),
                    text(p.prog_type.as_ref()),
                    text(name),
                    text(owner),
                    text(place),
                    maybe(r.runs_per_s, count),
                    maybe(r.avg_run_ns, nanos),
                    maybe(r.cpu_percent, |v| format!("{v:.2}")),
                    num(bytes(p.memory_bytes), p.memory_bytes as f64),
                ],
            }
        })
        .collect()
}

pub fn map_rows(s: &Snapshot) -> Vec<Row> {
    s.current
        .maps
        .iter()
        .map(|m| {
            let previous = s.previous.and_then(|i| i.map(m.id));
            let (owner, _) = owner_text(&m.holders);
            let entries = match m.entries {
                Some(n) => num(format!("{n}/{}", m.max_entries), n as f64),
                None => unknown(&format!("?/{}", m.max_entries)),
            };
            let name = if m.is_self {
                format!("{} (self)", m.name)
            } else {
                m.name.clone()
            };
            Row {
                ident: m.id.to_string(),
                name: m.name.clone(),
                cells: vec![
                    id(m.id),
                    text(m.map_type.as_ref()),
                    text(name),
                    maybe(rates::map_fill(m), fill_bar),
                    entries,
                    maybe(rates::map_entries_per_s(previous, m, s.wall), |v| {
                        format!("{v:+.1}")
                    }),
                    maybe(m.memory_bytes.map(|b| b as f64), |b| bytes(b as u64)),
                    text(owner),
                ],
            }
        })
        .collect()
}

pub fn link_rows(s: &Snapshot) -> Vec<Row> {
    s.current
        .links
        .iter()
        .map(|l| {
            let prog = match s.current.program(l.prog_id) {
                Some(p) => format!("{} {}", l.prog_id, p.name),
                None => l.prog_id.to_string(),
            };
            let (owner, _) = owner_text(&l.holders);
            Row {
                ident: l.id.to_string(),
                name: s
                    .current
                    .program(l.prog_id)
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                cells: vec![
                    id(l.id),
                    text(l.link_type.as_ref()),
                    Value {
                        text: prog,
                        key: SortKey::Num(f64::from(l.prog_id)),
                    },
                    text(l.attach_type.as_deref().unwrap_or("-")),
                    text(
                        l.target
                            .as_ref()
                            .map_or_else(|| "-".into(), |t| t.to_string()),
                    ),
                    text(owner),
                ],
            }
        })
        .collect()
}

pub fn owner_rows(s: &Snapshot) -> Vec<Row> {
    s.current
        .owner_groups()
        .into_iter()
        .map(|g| {
            let programs: u64 = g.programs_memory_bytes;
            let memory = g.maps_memory_bytes.map(|m| m + programs);
            let count = |ids: &[u32]| num(ids.len().to_string(), ids.len() as f64);
            Row {
                ident: format!("{}/{:?}/{:?}", g.comm, g.container_id, g.pod_uid),
                name: g.comm.to_string(),
                cells: vec![
                    text(g.comm.as_ref()),
                    text(g.container_id.as_deref().map_or("-", short_container)),
                    text(g.pod_uid.as_deref().unwrap_or("-")),
                    text(
                        g.pids
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    count(&g.program_ids),
                    count(&g.map_ids),
                    count(&g.link_ids),
                    maybe(memory.map(|m| m as f64), |b| bytes(b as u64)),
                ],
            }
        })
        .collect()
}

pub fn event_rows<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<Row> {
    let or_dash = |v: Option<&str>| text(v.unwrap_or("-"));
    events
        .into_iter()
        .map(|e| {
            let place = match (&e.pod_uid, &e.container_id) {
                (Some(pod), _) => format!("pod:{}", prefix(pod, 8)),
                (None, Some(ctr)) => format!("ctr:{}", short_container(ctr)),
                (None, None) => "-".into(),
            };
            Row {
                ident: e.seq.to_string(),
                name: e.name.clone().unwrap_or_default(),
                cells: vec![
                    num(e.time.format("%H:%M:%S%.3f").to_string(), e.seq as f64),
                    text(e.kind.as_str()),
                    id(e.prog_id),
                    or_dash(e.name.as_deref()),
                    or_dash(e.prog_type.as_deref()),
                    maybe(e.pid.map(f64::from), |p| p.to_string()),
                    or_dash(e.comm.as_deref()),
                    text(place),
                ],
            }
        })
        .collect()
}
