//! `top` in a real terminal: the built binary runs in a tmux pane (a private
//! server, killed by a guard) over a fixture program and map this test
//! loaded; the pane shows them with the kernel's values, a resize redraws
//! at the new size, `s` and `/` change the view, `q` quits with status 0 and
//! the shell's screen comes back.
use e2e_tests::{exporter_binary, have_root, tmux::Tmux, Fixture, FIXTURE_PROG};

/// The screen line of the row whose first cell is `id`.
fn row(screen: &str, id: u32) -> Option<&str> {
    let id = id.to_string();
    screen
        .lines()
        .find(|l| l.trim_start_matches('│').split_whitespace().next() == Some(&id))
}

#[test]
fn top_shows_the_fixture_sorts_filters_and_quits_leaving_the_terminal_as_it_was() {
    if !have_root("top_shows_the_fixture_sorts_filters_and_quits_leaving_the_terminal_as_it_was") {
        return;
    }
    let mut fixture = Fixture::load().expect("load the fixture");
    fixture.fill_hash(0..37);
    let hash = fixture.map_id("fixture_hash");
    let array = fixture.map_id("fixture_array");
    let prog = fixture.program_id(FIXTURE_PROG);

    let tmux = Tmux::start("env PS1='$ ' sh");
    tmux.wait_for("the prompt", |s| s.starts_with('$'));
    tmux.text("echo before-top");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the shell", |s| s.lines().any(|l| l == "before-top"));
    // The events pane has a test of its own (below).
    let command = format!(
        "{} top --interval 500ms --no-events; echo top-exit=$?",
        exporter_binary().display()
    );
    tmux.text(&command);
    tmux.keys(&["Enter"]);

    // The program and the map, by name, with the kernel's entry count.
    let screen = tmux.wait_for("the fixture's program and map", |s| {
        row(s, prog).is_some() && row(s, hash).is_some()
    });
    let prog_row = row(&screen, prog).unwrap();
    assert!(prog_row.contains(FIXTURE_PROG), "{prog_row}");
    let map_row = row(&screen, hash).unwrap();
    assert!(map_row.contains("fixture_hash"), "{map_row}");
    assert!(
        map_row.contains("37/1000") && map_row.contains("  3.7%"),
        "{map_row}"
    );
    assert!(screen.contains("sort: CPU % ▼"), "{screen}");
    assert_eq!(
        tmux.run(&["display", "-p", "#{alternate_on}"]).stdout,
        b"1\n"
    );

    // A resize redraws at the new size, smaller and larger: the programs
    // box closes at the pane's last column.
    for (width, height) in [("150", "45"), ("180", "55")] {
        let out = tmux.run(&["resize-window", "-x", width, "-y", height]);
        assert!(out.status.success(), "tmux resize-window");
        let width: usize = width.parse().unwrap();
        tmux.wait_for("the programs box at the new width", |s| {
            s.lines().any(|l| {
                l.starts_with("┌ Programs") && l.ends_with('┐') && l.chars().count() == width
            })
        });
    }

    // `s`: the programs pane sorts by the next column, and says so.
    tmux.keys(&["s"]);
    tmux.wait_for("sort by MEMORY", |s| s.contains("sort: MEMORY ▼"));

    // `/fixture_hash`: our map stays, our other map and program go.
    tmux.text("/fixture_hash");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the filter", |s| {
        s.contains("filter: fixture_hash") && row(s, array).is_none()
    });
    assert!(
        row(&screen, hash).is_some_and(|r| r.contains("37/1000")),
        "{screen}"
    );
    assert!(row(&screen, prog).is_none(), "{screen}");

    // `q`: exit 0, the alternate screen left, the shell's lines as they were.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("top's exit", |s| {
        s.lines().any(|l| l.starts_with("top-exit="))
    });
    assert!(screen.lines().any(|l| l == "top-exit=0"), "{screen}");
    assert!(screen.lines().any(|l| l == "before-top"), "{screen}");
    assert!(!screen.contains("sort:"), "{screen}");
    assert_eq!(
        tmux.run(&["display", "-p", "#{alternate_on}"]).stdout,
        b"0\n"
    );
}

/// The screen line of the events pane for `kind` of program `id`.
fn event_row<'a>(screen: &'a str, kind: &str, id: u32) -> Option<&'a str> {
    let id = id.to_string();
    screen.lines().find(|l| {
        let cells: Vec<&str> = l.trim_matches('│').split_whitespace().collect();
        cells.get(1) == Some(&kind) && cells.get(2) == Some(&id.as_str())
    })
}

// The events pane over the real rings: the fixture's load and unload.
#[test]
fn top_events_pane_shows_a_program_this_test_loads_and_unloads() {
    if !have_root("top_events_pane_shows_a_program_this_test_loads_and_unloads") {
        return;
    }
    let tmux = Tmux::start("env PS1='$ ' sh");
    tmux.wait_for("the prompt", |s| s.starts_with('$'));
    tmux.text(&format!(
        "{} top --interval 500ms; echo top-exit=$?",
        exporter_binary().display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("top", |s| s.contains("sort: CPU % ▼"));
    // Programs → maps → links → owners → events.
    tmux.keys(&["Tab", "Tab", "Tab", "Tab"]);
    tmux.wait_for("the events pane", |s| s.contains("┌ Events"));

    let fixture = Fixture::load().expect("load the fixture");
    let prog = fixture.program_id(FIXTURE_PROG);
    let screen = tmux.wait_for("the fixture's load", |s| {
        event_row(s, "load", prog).is_some()
    });
    let load = event_row(&screen, "load", prog).unwrap();
    let pid = std::process::id().to_string();
    // The name is the JIT symbol's (the program's BTF name), cut to its column.
    assert!(load.contains("fixture_count"), "{load}");
    assert!(
        load.split_whitespace().any(|cell| cell == pid),
        "pid {pid} not in {load}"
    );
    drop(fixture);
    tmux.wait_for("the fixture's unload", |s| {
        event_row(s, "unload", prog).is_some()
    });

    tmux.keys(&["q"]);
    let screen = tmux.wait_for("top's exit", |s| {
        s.lines().any(|l| l.starts_with("top-exit="))
    });
    assert!(screen.lines().any(|l| l == "top-exit=0"), "{screen}");
}
