//! The documented lines of `pin`'s files (docs/pin.md), for the tests that
//! read them on this kernel (tests/pin.rs) and in the qemu guests, and a
//! bpffs of the test's own to pin into.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

/// A fresh bpffs mounted on a temporary directory (standing in for the host's
/// /sys/fs/bpf), unmounted on drop, which releases everything pinned in it.
pub struct Bpffs(tempfile::TempDir);

impl Bpffs {
    pub fn mount() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t bpf: {status}");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// The lines after `header`, by the id each starts with.
pub fn rows(text: &str, header: &str) -> BTreeMap<u32, String> {
    let body = text
        .strip_prefix(header)
        .unwrap_or_else(|| panic!("header {header:?} missing:\n{text}"));
    body.lines()
        .map(|line| {
            let id = line.split_whitespace().next().unwrap().parse().unwrap();
            (id, line.to_owned())
        })
        .collect()
}

/// A maps.debug line: the kernel's "%4u %-16s  %10d   %10lld", then type,
/// entries, key and value sizes.
pub fn map_line(
    id: u32,
    name: &str,
    max: u32,
    cur: &str,
    typ: &str,
    entries: &str,
    kv: (u32, u32),
) -> String {
    format!(
        "{id:4} {name:<16}  {:10}   {cur:>10}  {typ:<21} {entries:>11} {:8} {:8}",
        max as i32, kv.0, kv.1
    )
}

/// A progs.debug line of a program without a target program: the kernel's
/// "%4u %-16s %s %s", spaces to column 64 (at least two), then type, runs,
/// run time and memory.
pub fn prog_line(
    id: u32,
    name: &str,
    attach: &str,
    typ: &str,
    stats: (&str, &str),
    mem: u64,
) -> String {
    let kernel = format!("{id:4} {name:<16} {attach} ");
    let pad = if kernel.len() + 2 <= 64 {
        64 - kernel.len()
    } else {
        2
    };
    format!(
        "{kernel}{:pad$}{typ:<23} {:>12} {:>15} {mem:>10}",
        "", stats.0, stats.1
    )
}

/// A value or "-" where unknown, as the files write it.
pub fn known(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
