//! The same binary on older kernels (Debian's 6.1 and 6.12, under qemu):
//! optional fields are detected at load, what the kernel cannot give is null
//! (never 0), one start-up line says what is unavailable, and nothing else
//! degrades.
use std::{path::Path, process::Command};

use e2e_tests::{exporter_binary, have_root};
use serde_json::Value;

fn section<'a>(out: &'a str, start: &str, end: &str) -> &'a str {
    let from = out.find(start).map(|i| i + start.len()).expect(start);
    let to = out[from..].find(end).map(|i| from + i).expect(end);
    &out[from..to]
}

/// What the guest printed: the inventory and the exporter's log, or None when
/// qemu is missing outside CI.
fn dump_in_guest(series: &str) -> Option<(Value, String)> {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install qemu-system-x86"
        );
        eprintln!("skipping: qemu-system-x86_64 missing (apt-get install qemu-system-x86)");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu/boot-dump.sh");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kernel-{series}"));
    let out = Command::new(script)
        .arg(series)
        .arg(exporter_binary())
        .arg(&work)
        .output()
        .expect("boot-dump.sh");
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        console.contains("===EXIT 0==="),
        "exporter failed in the {series} guest:\n{console}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv = serde_json::from_str(section(&console, "===STDOUT===\n", "===EXIT")).expect("json");
    let log = section(&console, "===EXIT 0===\n", "===END===").to_owned();
    Some((inv, log))
}

/// Checks common to every kernel; returns the `entries` of the map bpftool
/// created in the guest with one element.
fn check_guest(series: &str, inv: &Value, log: &str) -> Value {
    let release = inv["node"]["kernel_release"].as_str().unwrap();
    assert!(release.starts_with(&format!("{series}.")), "{release}");
    let hash = inv["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "vm_hash")
        .expect("vm_hash");
    assert_eq!(hash["type"], "hash");
    assert_eq!(
        (hash["key_size"].as_u64(), hash["max_entries"].as_u64()),
        (Some(4), Some(64))
    );
    let dump_maps = inv["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "dump_maps")
        .expect("own program");
    assert!(
        dump_maps["run_count"].is_u64(),
        "per-CPU stats work on {series}"
    );
    assert!(dump_maps["verified_insns"].is_u64());
    assert!(inv["links"].is_array() && inv["errors"] == Value::Array(vec![]));

    // Neither kernel has bpf_link.attach_type (6.17+): exactly that, said once.
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(
        warnings.len(),
        1,
        "one start-up line on what is unavailable:\n{log}"
    );
    assert!(
        warnings[0].contains("bpf_link.attach_type"),
        "{}",
        warnings[0]
    );
    assert!(!warnings[0].contains("elem_count"), "{}", warnings[0]);
    hash["entries"].clone()
}

#[test]
fn linux_6_1_reports_unknowns_as_null() {
    if !have_root("linux_6_1_reports_unknowns_as_null") {
        return;
    }
    let Some((inv, log)) = dump_in_guest("6.1") else {
        return;
    };
    // bpftool put one element in. Debian's 6.1 has the elem_count field but
    // does not allocate the counter for this map: unknown, never 0.
    assert_eq!(check_guest("6.1", &inv, &log), Value::Null);
}

#[test]
fn linux_6_12_counts_hash_entries() {
    if !have_root("linux_6_12_counts_hash_entries") {
        return;
    }
    let Some((inv, log)) = dump_in_guest("6.12") else {
        return;
    };
    // 6.6+ keeps the per-CPU element counter for every hash map.
    assert_eq!(check_guest("6.12", &inv, &log), 1);
}
