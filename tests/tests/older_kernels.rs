//! The same binary on an older kernel (Debian's 6.1, under qemu): optional
//! fields are detected at load, what the kernel cannot give is null (never 0),
//! one start-up line says what is unavailable, and nothing else degrades.
use std::{path::Path, process::Command};

use e2e_tests::{exporter_binary, have_root};
use serde_json::Value;

fn section<'a>(out: &'a str, start: &str, end: &str) -> &'a str {
    let from = out.find(start).map(|i| i + start.len()).expect(start);
    let to = out[from..].find(end).map(|i| from + i).expect(end);
    &out[from..to]
}

#[test]
fn linux_6_1_reports_unknowns_as_null() {
    if !have_root("linux_6_1_reports_unknowns_as_null") {
        return;
    }
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
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu/boot-dump.sh");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-6.1");
    let out = Command::new(script)
        .arg("6.1")
        .arg(exporter_binary())
        .arg(&work)
        .output()
        .expect("boot-dump.sh");
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        console.contains("===EXIT 0==="),
        "exporter failed in the guest:\n{console}"
    );

    let inv: Value =
        serde_json::from_str(section(&console, "===STDOUT===\n", "===EXIT")).expect("json");
    let release = inv["node"]["kernel_release"].as_str().unwrap();
    assert!(release.starts_with("6.1."), "{release}");
    let maps = inv["maps"].as_array().unwrap();
    let hash = maps
        .iter()
        .find(|m| m["name"] == "vm_hash")
        .expect("vm_hash");
    assert_eq!(
        (hash["type"].as_str(), hash["max_entries"].as_u64()),
        (Some("hash"), Some(64))
    );
    // bpftool put one element in; 6.1 keeps no element counter for this map,
    // so the count is unknown — it must never be reported as 0.
    assert!(
        hash["entries"].is_null() || hash["entries"] == 1,
        "entries: {}",
        hash["entries"]
    );
    let progs = inv["programs"].as_array().unwrap();
    let dump_maps = progs
        .iter()
        .find(|p| p["name"] == "dump_maps")
        .expect("own program");
    assert!(dump_maps["run_count"].is_u64(), "per-CPU stats work on 6.1");
    assert!(inv["links"].is_array());

    let log = section(&console, "===EXIT 0===\n", "===END===");
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
}
