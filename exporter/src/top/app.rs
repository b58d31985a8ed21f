//! The state of the view as plain data: the last two collections, the
//! events seen, which pane has the focus, each pane's sort and selection,
//! the name filter and the CPU % history of every program. Updated by
//! collections and keys; drawn by `view`, which never changes it.
use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use super::{
    input::Action,
    rates::{self, NoRunStats},
    rows::{self, Pane, Row, Snapshot},
};
use crate::{events::Event, inventory::Inventory};

/// CPU % samples kept per program for its sparkline.
pub const HISTORY: usize = 120;
/// Events kept for the events pane.
const EVENTS_KEPT: usize = 1000;

/// One collection and when it began (monotonic).
pub struct Sample {
    pub inventory: Inventory,
    pub at: Instant,
}

/// Whether the events pane has a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventsFeed {
    On,
    /// `--no-events`.
    Off,
    /// The rings could not be opened: why.
    Unavailable(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub column: usize,
    pub descending: bool,
}

pub struct App {
    pub focus: Pane,
    pub sort: [Sort; 5],
    pub filter: String,
    pub editing_filter: bool,
    pub help: bool,
    pub quit: bool,
    /// The `ident` of the selected row of each pane.
    selected: [Option<String>; 5],
    pub current: Option<Sample>,
    pub previous: Option<Sample>,
    /// CPU % × 100 per program id, oldest first.
    pub history: HashMap<u32, VecDeque<u64>>,
    pub events: VecDeque<Event>,
    pub events_feed: EventsFeed,
    /// The last log line written while the screen is taken.
    pub status: Option<String>,
    pub interval: Duration,
}

impl App {
    pub fn new(interval: Duration, events_feed: EventsFeed) -> Self {
        let sort = Pane::ALL.map(|p| {
            let (column, descending) = p.default_sort();
            Sort { column, descending }
        });
        Self {
            focus: Pane::Programs,
            sort,
            filter: String::new(),
            editing_filter: false,
            help: false,
            quit: false,
            selected: Default::default(),
            current: None,
            previous: None,
            history: HashMap::new(),
            events: VecDeque::new(),
            events_feed,
            status: None,
            interval,
        }
    }

    /// Takes a new collection: the current one becomes the previous, and
    /// each program's CPU % over the interval joins its history.
    pub fn collected(&mut self, inventory: Inventory, at: Instant) {
        // As the event log does for `serve`: a load the collection saw gets
        // the program's type and full name.
        for event in self.events.iter_mut().filter(|e| e.prog_type.is_none()) {
            if let Some(p) = inventory.program(event.prog_id) {
                event.prog_type = Some(p.prog_type.to_string());
                event.name = Some(p.name.clone());
            }
        }
        self.previous = self.current.take();
        self.current = Some(Sample { inventory, at });
        let mut history = std::mem::take(&mut self.history);
        let Some(snapshot) = self.snapshot() else {
            return;
        };
        let stats = snapshot.run_stats().is_ok();
        history.retain(|id, _| snapshot.current.program(*id).is_some());
        if stats {
            for p in &snapshot.current.programs {
                let previous = snapshot.previous.and_then(|i| i.program(p.id));
                let cpu = rates::program_rates(previous, p, snapshot.wall).cpu_percent;
                if let Some(cpu) = cpu {
                    let samples = history.entry(p.id).or_default();
                    if samples.len() == HISTORY {
                        samples.pop_front();
                    }
                    samples.push_back((cpu * 100.0).round() as u64);
                }
            }
        }
        self.history = history;
    }

    pub fn events_arrived(&mut self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            if self.events.len() == EVENTS_KEPT {
                self.events.pop_front();
            }
            self.events.push_back(event);
        }
    }

    /// The last two collections, once there is one.
    pub fn snapshot(&self) -> Option<Snapshot<'_>> {
        let current = self.current.as_ref()?;
        Some(Snapshot {
            current: &current.inventory,
            previous: self.previous.as_ref().map(|p| &p.inventory),
            wall: self.previous.as_ref().map_or(Duration::ZERO, |p| {
                current.at.saturating_duration_since(p.at)
            }),
        })
    }

    pub fn no_run_stats(&self) -> Option<NoRunStats> {
        self.snapshot().and_then(|s| s.run_stats().err())
    }

    /// The pane's rows, filtered by name and sorted.
    pub fn rows(&self, pane: Pane) -> Vec<Row> {
        let mut rows = match (pane, self.snapshot()) {
            (Pane::Events, _) => rows::event_rows(&self.events),
            (_, None) => Vec::new(),
            (Pane::Programs, Some(s)) => rows::program_rows(&s),
            (Pane::Maps, Some(s)) => rows::map_rows(&s),
            (Pane::Links, Some(s)) => rows::link_rows(&s),
            (Pane::Owners, Some(s)) => rows::owner_rows(&s),
        };
        if !self.filter.is_empty() {
            let wanted = self.filter.to_lowercase();
            rows.retain(|r| r.name.to_lowercase().contains(&wanted));
        }
        let Sort { column, descending } = self.sort[pane.index()];
        rows.sort_by(|a, b| match (a.cells.get(column), b.cells.get(column)) {
            (Some(a), Some(b)) => a.key.compare(&b.key, descending),
            _ => std::cmp::Ordering::Equal,
        });
        rows
    }

    /// The index of the selected row in `rows` (the first when none is).
    pub fn selected_index(&self, pane: Pane, rows: &[Row]) -> usize {
        self.selected[pane.index()]
            .as_ref()
            .and_then(|ident| rows.iter().position(|r| &r.ident == ident))
            .unwrap_or(0)
    }

    /// The program the sparkline follows: the selected one of the programs pane.
    pub fn selected_program(&self) -> Option<(u32, String)> {
        let rows = self.rows(Pane::Programs);
        let row = rows.get(self.selected_index(Pane::Programs, &rows))?;
        Some((row.ident.parse().ok()?, row.name.clone()))
    }

    /// Applies one key's action.
    pub fn act(&mut self, action: Action) {
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = !self.help,
            Action::CloseHelp => self.help = false,
            Action::NextPane => self.focus = Pane::ALL[(self.focus.index() + 1) % Pane::ALL.len()],
            Action::PreviousPane => {
                self.focus = Pane::ALL[(self.focus.index() + Pane::ALL.len() - 1) % Pane::ALL.len()]
            }
            Action::NextSort => {
                let sort = &mut self.sort[self.focus.index()];
                sort.column = (sort.column + 1) % self.focus.columns().len();
            }
            Action::ReverseSort => {
                let sort = &mut self.sort[self.focus.index()];
                sort.descending = !sort.descending;
            }
            Action::Move(by) => self.move_selection(by),
            Action::StartFilter => self.editing_filter = true,
            Action::FilterChar(c) => self.filter.push(c),
            Action::FilterBackspace => {
                self.filter.pop();
            }
            Action::EndFilter => self.editing_filter = false,
            Action::ClearFilter => {
                self.filter.clear();
                self.editing_filter = false;
            }
            Action::None => {}
        }
    }

    fn move_selection(&mut self, by: isize) {
        let rows = self.rows(self.focus);
        if rows.is_empty() {
            return;
        }
        let at = self.selected_index(self.focus, &rows) as isize;
        let to = (at + by).clamp(0, rows.len() as isize - 1) as usize;
        self.selected[self.focus.index()] = Some(rows[to].ident.clone());
    }
}
