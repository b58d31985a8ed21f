//! The command line on this kernel: `check` and `dump`.
use std::process::Command;

use e2e_tests::{exporter_binary, have_root, Fixture, FIXTURE_PROG};

#[test]
fn check_reports_what_this_kernel_supports() {
    if !have_root("check_reports_what_this_kernel_supports") {
        return;
    }
    let out = Command::new(exporter_binary())
        .arg("check")
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(
        stdout.contains(&format!("kernel {}", release.trim())),
        "{stdout}"
    );
    assert!(stdout.contains("link iterator: yes"), "{stdout}");
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(
        stdout.contains(&format!("per-CPU counters: yes ({cpus} CPUs)")),
        "{stdout}"
    );
    // Linux 6.18 has every optional field.
    assert!(!stdout.contains("unavailable:"), "{stdout}");
}

#[test]
fn dump_table_lists_the_fixture() {
    if !have_root("dump_table_lists_the_fixture") {
        return;
    }
    let fx = Fixture::load().expect("load fixture");
    let out = Command::new(exporter_binary())
        .args(["dump", "--format", "table"])
        .output()
        .expect("run dump");
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    // Program, map and link ids are separate number spaces: look in each section.
    let (programs, rest) = table.split_once("\nMAPS (").expect("maps section");
    let (maps, _links) = rest.split_once("\nLINKS (").expect("links section");
    let prog_line = programs
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with(&format!("{} ", fx.program_id(FIXTURE_PROG)))
        })
        .expect("fixture program row");
    assert!(prog_line.ends_with(FIXTURE_PROG), "{prog_line}");
    let map_line = maps
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with(&format!("{} ", fx.map_id("fixture_hash")))
        })
        .expect("fixture map row");
    let cols: Vec<&str> = map_line.split_whitespace().collect();
    // ID TYPE KEY VALUE MAX ENTRIES MEMORY FLAGS NAME
    assert_eq!(cols[1..6], ["hash", "4", "8", "1000", "0"], "{map_line}");
    assert_eq!(cols.last(), Some(&"fixture_hash"));
}
