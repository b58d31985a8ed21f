//! The view drawn on ratatui's TestBackend from fixed inventories: the text
//! of the cells, as a terminal shows it.
use std::time::{Duration, Instant};

use ratatui::{
    backend::TestBackend,
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
    Terminal,
};

use super::{draw, input, App, EventsFeed};
use crate::{inventory::Inventory, testing::sample_inventory};

const WIDTH: u16 = 160;
const HEIGHT: u16 = 40;

fn screen(app: &App) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    terminal.draw(|f| draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..HEIGHT)
        .map(|y| (0..WIDTH).map(|x| buffer[(x, y)].symbol()).collect())
        .collect()
}

/// The screen's line that holds `needle` (the first one).
fn line_with<'a>(screen: &'a [String], needle: &str) -> &'a str {
    screen
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{}", screen.join("\n")))
}

fn press(app: &mut App, keys: &[KeyCode]) {
    for code in keys {
        let key = KeyEvent::new(*code, KeyModifiers::NONE);
        app.act(input::action(key, app.editing_filter, app.help));
    }
}

/// The sample inventory, then the same 2 s later with the XDP program (id 7)
/// having run 500 times for 250 ms, and fixture_hash (id 11) at 500 of 1000
/// entries after 42.
fn two_collections() -> (Inventory, Inventory) {
    let before = sample_inventory();
    let mut after = before.clone();
    let xdp = &mut after.programs[0];
    assert_eq!(xdp.id, 7);
    xdp.run_time_ns = xdp.run_time_ns.map(|n| n + 250_000_000);
    xdp.run_count = xdp.run_count.map(|n| n + 500);
    assert_eq!(after.maps[0].id, 11);
    after.maps[0].entries = Some(500);
    (before, after)
}

fn app_after(before: Inventory, after: Inventory) -> App {
    let mut app = App::new(Duration::from_secs(2), EventsFeed::Off);
    let t0 = Instant::now();
    app.collected(before, t0);
    app.collected(after, t0 + Duration::from_secs(2));
    app
}

#[test]
fn programs_show_cpu_percent_runs_and_average_from_the_run_time_gained() {
    let (before, after) = two_collections();
    let app = app_after(before, after);
    let screen = screen(&app);
    let xdp = line_with(&screen, "xdp_\"edge\"\\fw");
    // 250 ms in 2 s: 12.5 % of one CPU; 250 runs/s of 500 µs each.
    assert!(xdp.contains(" 12.50 "), "{xdp}");
    assert!(xdp.contains(" 250 "), "{xdp}");
    assert!(xdp.contains("500.0 µs"), "{xdp}");
    assert!(xdp.contains("edge-agent(4242)"), "{xdp}");
    assert!(xdp.contains("pod:0b5e8f4a"), "{xdp}");
    // The program without run statistics shows none, not 0.
    let dump = line_with(&screen, "dump_maps (self)");
    assert!(!dump.contains("0.00"), "{dump}");
    assert!(line_with(&screen, "sort:").contains("sort: CPU % ▼"));
    // The sparkline follows the selected (first: busiest) program.
    assert!(line_with(&screen, "CPU % of").contains("12.50 now"));
    assert_eq!(app.history[&7].back(), Some(&1250));
}

#[test]
fn maps_show_fill_bars_fullest_first_and_unknown_entries_as_unknown() {
    let (before, after) = two_collections();
    let app = app_after(before, after);
    let screen = screen(&app);
    let hash = line_with(&screen, "fixture_hash");
    assert!(hash.contains("█████░░░░░  50.0%"), "{hash}");
    assert!(hash.contains("500/1000"), "{hash}");
    // 458 entries in 2 s.
    assert!(hash.contains("+229.0"), "{hash}");
    let own = line_with(&screen, "iterators.bss (self)");
    assert!(own.contains("██████████ 100.0%"), "{own}");
    let ring = line_with(&screen, "ringbuf");
    assert!(ring.contains("?/4096"), "{ring}");
    assert!(!ring.contains('%'), "{ring}");
    let at = |needle| screen.iter().position(|l| l.contains(needle)).unwrap();
    assert!(at("iterators.bss") < at("fixture_hash") && at("fixture_hash") < at("ringbuf"));
}

#[test]
fn s_sorts_by_the_next_column_r_reverses_and_unknown_stays_last() {
    let (before, after) = two_collections();
    let mut app = app_after(before, after);
    press(&mut app, &[KeyCode::Tab]);
    let rows = |app: &App| -> Vec<String> {
        let screen = screen(app);
        ["iterators.bss", "fixture_hash", "ringbuf"]
            .into_iter()
            .map(|n| (screen.iter().position(|l| l.contains(n)).unwrap(), n))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .map(str::to_owned)
            .collect()
    };
    // FILL ▼ → ENTRIES ▼: 500, 1, unknown.
    press(&mut app, &[KeyCode::Char('s')]);
    assert!(line_with(&screen(&app), "sort:").contains("sort: ENTRIES ▼"));
    assert_eq!(rows(&app), ["fixture_hash", "iterators.bss", "ringbuf"]);
    press(&mut app, &[KeyCode::Char('r')]);
    assert!(line_with(&screen(&app), "sort:").contains("sort: ENTRIES ▲"));
    assert_eq!(rows(&app), ["iterators.bss", "fixture_hash", "ringbuf"]);
    // Every column comes round again.
    press(&mut app, &[KeyCode::Char('s'); 8]);
    assert!(line_with(&screen(&app), "sort:").contains("sort: ENTRIES ▲"));
}

#[test]
fn slash_filters_every_pane_by_name() {
    let (before, after) = two_collections();
    let mut app = app_after(before, after);
    press(
        &mut app,
        &[KeyCode::Char('/'), KeyCode::Char('H'), KeyCode::Char('a')],
    );
    assert!(line_with(&screen(&app), "filter by name").contains("filter by name: Ha"));
    press(
        &mut app,
        &[
            KeyCode::Backspace,
            KeyCode::Backspace,
            KeyCode::Char('A'),
            KeyCode::Enter,
        ],
    );
    let screen = screen(&app);
    assert!(
        line_with(&screen, "sort:").contains("filter: A"),
        "{}",
        screen.join("\n")
    );
    // Names containing "a" (any case): dump_maps, fixture_hash, iterators.bss; not "events".
    assert!(line_with(&screen, "Programs (").contains("Programs (1)"));
    assert!(line_with(&screen, "Maps (").contains("Maps (2)"));
    assert!(!screen.iter().any(|l| l.contains("xdp_")));
    assert!(!screen.iter().any(|l| l.contains("ringbuf")));
    press(&mut app, &[KeyCode::Esc]);
    assert!(line_with(&self::screen(&app), "Maps (").contains("Maps (3)"));
}

#[test]
fn without_run_statistics_the_cpu_columns_say_why() {
    let (mut before, mut after) = two_collections();
    for inventory in [&mut before, &mut after] {
        inventory.bpf_stats_enabled = false;
        inventory.programs[0].run_time_ns = Some(1_500_000_000);
        inventory.programs[0].run_count = Some(3_000);
    }
    let app = app_after(before, after);
    let screen = screen(&app);
    assert!(screen.iter().any(|l| l.contains(
        "no run stats: --enable-bpf-stats (needs CAP_SYS_ADMIN) or kernel.bpf_stats_enabled=1"
    )));
    let xdp = line_with(&screen, "xdp_");
    assert!(!xdp.contains("0.00"), "{xdp}");
    assert!(xdp.contains("   -   "), "{xdp}");
    // One collection only: the rates come with the second.
    let mut first = App::new(Duration::from_secs(1), EventsFeed::Off);
    first.collected(sample_inventory(), Instant::now());
    assert!(self::screen(&first)
        .iter()
        .any(|l| l.contains("runs/s, avg run and CPU %: from the second collection on")));
}

#[test]
fn tab_brings_in_links_owners_and_events() {
    let (before, after) = two_collections();
    let mut app = app_after(before, after);
    press(&mut app, &[KeyCode::Tab, KeyCode::Tab]);
    let links = screen(&app);
    assert!(line_with(&links, "Links (").contains("Links (2)"));
    let xdp_link = line_with(&links, "ifindex:2");
    assert!(xdp_link.contains("7 xdp_\"edge\"\\fw") && xdp_link.contains("(pinned)"));
    press(&mut app, &[KeyCode::Tab]);
    let owners = screen(&app);
    let agent = line_with(&owners, "edge-agent");
    assert!(
        agent.contains("0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b") && agent.contains("9f86d081884c")
    );
    press(&mut app, &[KeyCode::Tab]);
    assert!(screen(&app)
        .iter()
        .any(|l| l.contains("events off (--no-events)")));
    press(&mut app, &[KeyCode::Char('?')]);
    assert!(screen(&app)
        .iter()
        .any(|l| l.contains("run time gained / wall time")));
    press(&mut app, &[KeyCode::Char('x'), KeyCode::Char('q')]);
    assert!(!app.help && app.quit);
}

#[test]
fn events_show_newest_first_with_their_loader() {
    use crate::{events::EventKind, testing::sample_event};
    let mut app = App::new(Duration::from_secs(1), EventsFeed::On);
    app.collected(sample_inventory(), Instant::now());
    let mut load = sample_event(EventKind::Load, 7, "edge-agent");
    load.seq = 1;
    let mut unload = sample_event(EventKind::Unload, 99, "bpftool");
    unload.seq = 2;
    app.events_arrived([load, unload]);
    // A collection names the loads it sees (program 7 is the XDP program).
    app.collected(sample_inventory(), Instant::now());
    press(&mut app, &[KeyCode::BackTab]);
    let screen = screen(&app);
    let at = |needle| screen.iter().position(|l| l.contains(needle)).unwrap();
    assert!(at("unload") < at(" load "));
    let load = line_with(&screen, " load ");
    assert!(
        load.contains("xdp_\"edge\"\\fw") && load.contains("4242") && load.contains("pod:0b5e8f4a"),
        "{load}"
    );
}
