//! The command line on this kernel: `check` and `dump`.
use std::process::Command;

use bpf_inventory_exporter::testing::btf::Btf;
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
    // What this kernel has, from its BTF as bpftool reads it: each line of
    // `check` follows from it, whatever the host's version.
    let Some(btf) = Btf::kernel("check_reports_what_this_kernel_supports") else {
        return;
    };
    let link_iter = btf.has_func("bpf_iter_bpf_link");
    assert!(
        stdout.contains(&format!(
            "bpf_link iterator: {}\n",
            if link_iter {
                "yes"
            } else {
                "unsupported by this kernel"
            }
        )),
        "{stdout}"
    );
    let percpu = btf
        .enum_values("bpf_func_id")
        .expect("enum bpf_func_id")
        .iter()
        .any(|(name, _)| name == "BPF_FUNC_map_lookup_percpu_elem");
    // Calibration finds every possible CPU, not only those this process may
    // use: in one run with the helper, else CPU by CPU if all are online.
    let all_online = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap()
        == std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let percpu = percpu || all_online;
    let percpu_line = if percpu {
        format!("per-CPU counters: yes ({} CPUs)\n", possible_cpus())
    } else {
        "per-CPU counters: no\n".to_string()
    };
    assert!(stdout.contains(&percpu_line), "{stdout}");
    assert!(stdout.contains("owners walk: yes\n"), "{stdout}");
    // Each optional kernel field, and the word of check's line when it is missing.
    let fields = [
        ("bpf_map", "elem_count", "bpf_map.elem_count"),
        ("bpf_map", "frozen", "bpf_map.frozen"),
        ("bpf_prog_aux", "verified_insns", "verified_insns"),
        ("bpf_prog_aux", "user", "bpf_prog_aux.user"),
        ("bpf_prog_stats", "misses", "recursion_misses"),
        ("bpf_link", "attach_type", "bpf_link.attach_type"),
    ];
    let mut missing: Vec<&str> = fields
        .iter()
        .filter(|(st, member, _)| !btf.has_member(st, member))
        .map(|(_, _, word)| *word)
        .collect();
    if !link_iter {
        missing.push("iter/bpf_link");
    }
    if !percpu {
        missing.push("per-CPU offset");
    }
    let unavailable: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("unavailable: "))
        .collect();
    for word in &missing {
        assert!(
            unavailable.iter().any(|l| l.contains(word)),
            "the kernel lacks {word}, check does not say so:\n{stdout}"
        );
    }
    assert_eq!(
        unavailable.len(),
        missing.len(),
        "unavailable lines for {missing:?}:\n{stdout}"
    );
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
    // The last column: the owners, here this test process.
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let owner = format!("{}({})", comm.trim(), std::process::id());
    assert!(
        prog_line.contains(&format!(" {FIXTURE_PROG} ")),
        "{prog_line}"
    );
    assert!(prog_line.ends_with(&format!("  {owner}")), "{prog_line}");
    let map_line = maps
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with(&format!("{} ", fx.map_id("fixture_hash")))
        })
        .expect("fixture map row");
    let cols: Vec<&str> = map_line.split_whitespace().collect();
    // ID TYPE KEY VALUE MAX ENTRIES MEMORY FLAGS NAME OWNERS
    assert_eq!(cols[1..6], ["hash", "4", "8", "1000", "0"], "{map_line}");
    assert_eq!(cols[8..], ["fixture_hash", owner.as_str()], "{map_line}");
}
