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
    // CI and development machines run Linux 6.18: the link iterator (5.19+),
    // per-CPU reads (5.19+) and every optional field (6.17+) are there.
    let (major, minor) = kernel_version(release.trim());
    assert!(
        (major, minor) >= (6, 17),
        "this test expects Linux 6.17+, not {release}"
    );
    assert!(stdout.contains("bpf_link iterator: yes"), "{stdout}");
    // Calibration finds every possible CPU, not only those this process may use.
    let cpus = possible_cpus();
    assert!(
        stdout.contains(&format!("per-CPU counters: yes ({cpus} CPUs)")),
        "{stdout}"
    );
    assert!(!stdout.contains("unavailable:"), "{stdout}");
}

fn kernel_version(release: &str) -> (u32, u32) {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

/// The count of /sys/devices/system/cpu/possible ("0-1", "0-3,8-11").
fn possible_cpus() -> usize {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    list.trim()
        .split(',')
        .map(|range| match range.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
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
