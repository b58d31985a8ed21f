//! Drawing: a pure function of [`App`] onto a ratatui frame. The first
//! screen stacks programs (with the selected program's CPU % sparkline) over
//! maps; links, owners and events each take the screen when focused.
use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{
        Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState, Tabs, Wrap,
    },
    Frame,
};

use super::{
    app::{App, EventsFeed},
    rows::Pane,
};

const RIGHT_ALIGNED: [&str; 9] = [
    "RUNS/S",
    "AVG RUN",
    "CPU %",
    "MEMORY",
    "ENTRIES/S",
    "PROGS",
    "MAPS",
    "LINKS",
    "PID",
];

pub fn draw(frame: &mut Frame, app: &App) {
    let [summary, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(summary_line(app)), summary);
    draw_tabs(frame, app, tabs);
    match app.focus {
        Pane::Programs | Pane::Maps => {
            let [programs, spark, maps] = Layout::vertical([
                Constraint::Percentage(50),
                Constraint::Length(4),
                Constraint::Min(4),
            ])
            .areas(body);
            draw_table(frame, app, Pane::Programs, programs);
            draw_sparkline(frame, app, spark);
            draw_table(frame, app, Pane::Maps, maps);
        }
        Pane::Events if app.events_feed != EventsFeed::On => {
            let why = match &app.events_feed {
                EventsFeed::Off => "events off (--no-events)".to_owned(),
                EventsFeed::Unavailable(reason) => format!("events unavailable: {reason}"),
                EventsFeed::On => String::new(),
            };
            let block = Block::default().borders(Borders::ALL).title(" Events ");
            frame.render_widget(
                Paragraph::new(why).wrap(Wrap { trim: true }).block(block),
                body,
            );
        }
        pane => draw_table(frame, app, pane, body),
    }
    frame.render_widget(Paragraph::new(footer_line(app)), footer);
    if app.help {
        draw_help(frame, frame.area());
    }
}

fn summary_line(app: &App) -> Line<'static> {
    let Some(s) = app.snapshot() else {
        return Line::from("bpf-inventory-exporter top: first collection ...");
    };
    let i = s.current;
    let mut text = format!(
        "{} (Linux {}) {}: {} programs, {} maps, {} links, every {}",
        i.node.hostname,
        i.node.kernel_release,
        i.collected_at.format("%H:%M:%S"),
        i.programs.len(),
        i.maps.len(),
        i.links.len(),
        humantime::format_duration(app.interval),
    );
    for e in &i.errors {
        text.push_str(&format!("; {} collector failed", e.collector.as_str()));
    }
    Line::from(text)
}

fn draw_tabs(frame: &mut Frame, app: &App, area: Rect) {
    let pane = app.focus;
    let sort = app.sort[pane.index()];
    let column = pane.columns().get(sort.column).copied().unwrap_or("");
    let mut right = format!("sort: {column} {}", if sort.descending { "▼" } else { "▲" });
    if !app.filter.is_empty() || app.editing_filter {
        right.push_str(&format!("  filter: {}", app.filter));
    }
    let width = right.chars().count() as u16 + 1;
    let [left, sort_area] =
        Layout::horizontal([Constraint::Min(10), Constraint::Length(width)]).areas(area);
    let tabs = Tabs::new(Pane::ALL.map(|p| p.title()))
        .select(pane.index())
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    frame.render_widget(tabs, left);
    frame.render_widget(
        Paragraph::new(right).style(Style::default().add_modifier(Modifier::BOLD)),
        sort_area,
    );
}

fn widths(pane: Pane) -> Vec<Constraint> {
    use Constraint::{Length as L, Min as M};
    match pane {
        Pane::Programs => vec![L(7), L(13), M(16), L(22), L(13), L(8), L(9), L(7), L(10)],
        Pane::Maps => vec![L(7), L(13), M(16), L(17), L(12), L(9), L(10), L(22)],
        Pane::Links => vec![L(7), L(12), M(20), L(18), M(20), L(24)],
        Pane::Owners => vec![L(16), L(13), L(37), M(10), L(6), L(6), L(6), L(10)],
        Pane::Events => vec![L(13), L(7), L(7), M(16), L(14), L(8), L(16), L(17)],
    }
}

fn draw_table(frame: &mut Frame, app: &App, pane: Pane, area: Rect) {
    let rows = app.rows(pane);
    let focused = app.focus == pane;
    let mut block = Block::default().borders(Borders::ALL).title(format!(
        " {} ({}) ",
        pane.title(),
        rows.len()
    ));
    if focused {
        block = block.border_style(Style::default().fg(Color::Cyan));
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut table_area = inner;
    if pane == Pane::Programs {
        if let Some(why) = app.no_run_stats() {
            let [note, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
            let style = Style::default().fg(Color::Yellow);
            frame.render_widget(Paragraph::new(Span::styled(why.explain(), style)), note);
            table_area = rest;
        }
    }
    let sort = app.sort[pane.index()];
    let columns = pane.columns();
    let header = Row::new(columns.iter().enumerate().map(|(i, name)| {
        let marked = if i == sort.column {
            format!("{name}{}", if sort.descending { "▼" } else { "▲" })
        } else {
            (*name).to_owned()
        };
        aligned(name, marked)
    }))
    .style(Style::default().add_modifier(Modifier::BOLD));
    let selected = app.selected_index(pane, &rows);
    let body = rows.into_iter().map(|row| {
        Row::new(
            row.cells
                .into_iter()
                .zip(columns)
                .map(|(value, name)| aligned(name, value.text)),
        )
    });
    let mut table = Table::new(body, widths(pane))
        .header(header)
        .column_spacing(1);
    let mut state = TableState::default();
    if focused {
        table = table.row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
        state.select(Some(selected));
    }
    frame.render_stateful_widget(table, table_area, &mut state);
}

fn aligned(column: &str, text: String) -> Cell<'static> {
    let line = Line::from(text);
    Cell::from(if RIGHT_ALIGNED.contains(&column) {
        line.right_aligned()
    } else {
        line
    })
}

fn draw_sparkline(frame: &mut Frame, app: &App, area: Rect) {
    let selected = app.selected_program();
    let samples: Vec<u64> = selected
        .as_ref()
        .and_then(|(id, _)| app.history.get(id))
        .map(|h| h.iter().copied().collect())
        .unwrap_or_default();
    let title = match (&selected, app.no_run_stats()) {
        (None, _) => " CPU % ".to_owned(),
        (Some((id, name)), None) => {
            let last = samples.last().map_or(0.0, |v| *v as f64 / 100.0);
            let max = samples.iter().max().map_or(0.0, |v| *v as f64 / 100.0);
            format!(" CPU % of {name} ({id}): {last:.2} now, {max:.2} max ")
        }
        (Some((id, name)), Some(_)) => format!(" CPU % of {name} ({id}): - "),
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    // The newest samples fit the width.
    let width = block.inner(area).width as usize;
    let shown = &samples[samples.len().saturating_sub(width)..];
    frame.render_widget(Sparkline::default().block(block).data(shown), area);
}

fn footer_line(app: &App) -> Line<'static> {
    if app.editing_filter {
        return Line::from(format!(
            "filter by name: {}▏ (enter: keep, esc: clear)",
            app.filter
        ));
    }
    let keys = "tab: pane  ↑↓: select  s: sort  r: reverse  /: filter  ?: help  q: quit";
    match &app.status {
        Some(log) => Line::from(vec![
            Span::raw(keys),
            Span::raw("  "),
            Span::styled(log.clone(), Style::default().fg(Color::Yellow)),
        ]),
        None => Line::from(keys),
    }
}

const HELP: &str = "\
tab / →, shift-tab / ←   next / previous pane (programs, maps, links, owners, events)
↑ ↓ PgUp PgDn Home End   select a row (the sparkline follows the selected program)
s                        sort by the next column (the header says which); r reverses
/                        filter every pane by name as you type; enter keeps it, esc clears it
q, ctrl-c                quit (the terminal is restored)

RUNS/S, AVG RUN    runs per second and average run time over the last interval
CPU %              run time gained / wall time × 100, as bpftop: 100 = one CPU
                   (empty without run statistics: --enable-bpf-stats or kernel.bpf_stats_enabled=1)
FILL               entries / max_entries; ? where the kernel cannot tell
OWNER, POD/CTR     the first process holding an fd (+N more), its pod or container;
                   ? when owners are unknown, (pinned) (link) ... when no process holds it

any key closes this help";

fn draw_help(frame: &mut Frame, area: Rect) {
    let width = area.width.saturating_sub(4).min(100);
    let height = area.height.saturating_sub(2).min(18);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let block = Block::default().borders(Borders::ALL).title(" Help ");
    frame.render_widget(
        Paragraph::new(HELP).wrap(Wrap { trim: false }).block(block),
        popup,
    );
}
