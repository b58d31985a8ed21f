//! Shared helpers of the end-to-end tests: the fixture BPF object, bpftool as
//! the oracle, the built exporter binary, and the root check.
pub mod child;
pub mod deploy;
pub mod event_kid;
pub mod events_cli;
pub mod holders;
pub mod links;
pub mod oracle;
pub mod pinned;
pub mod tmux;

use std::{
    io::Read,
    ops::Range,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use aya::{
    maps::{HashMap, Map, MapData},
    programs::Iter,
    Btf, Ebpf,
};

static FIXTURE: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/fixture.bpf.o"));

/// The long-named fixture program that uses fixture_hash and fixture_array.
pub const FIXTURE_PROG: &str = "fixture_count_maps_program";
pub const FIXTURE_SHORT_PROG: &str = "fixture_short";

/// Whether kernel tests can run: root is needed to load BPF. Without root
/// they skip with a message, except under CI, where skipping is a failure.
pub fn have_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs root and a BPF kernel; CI must run it as root"
    );
    eprintln!("skipping {test}: needs root and a BPF kernel");
    false
}

/// The fixture object, loaded, with its long-named program attached as an
/// iterator link. Everything is released on drop.
pub struct Fixture {
    pub ebpf: Ebpf,
}

impl Fixture {
    pub fn load() -> Result<Self> {
        let btf = Btf::from_sys_fs()?;
        let mut ebpf = Ebpf::load(FIXTURE)?;
        for (name, target) in [(FIXTURE_PROG, "bpf_map"), (FIXTURE_SHORT_PROG, "bpf_prog")] {
            let prog: &mut Iter = ebpf.program_mut(name).context(name)?.try_into()?;
            prog.load(target, &btf)?;
        }
        let prog: &mut Iter = ebpf.program_mut(FIXTURE_PROG).context("prog")?.try_into()?;
        prog.attach()?;
        Ok(Self { ebpf })
    }

    /// Inserts `keys` into fixture_hash (each key's value: key × 10).
    pub fn fill_hash(&mut self, keys: Range<u32>) {
        let map = self.ebpf.map_mut("fixture_hash").expect("fixture_hash");
        let mut hash: HashMap<_, u32, u64> =
            HashMap::try_from(map).expect("fixture_hash is a hash");
        for key in keys {
            hash.insert(key, u64::from(key) * 10, 0).expect("insert");
        }
    }

    /// Runs the long-named program `times` times: one read of a new
    /// iterator link per run, as the kernel counts them in `run_cnt`.
    pub fn run_program(&mut self, times: usize) {
        let prog: &mut Iter = self
            .ebpf
            .program_mut(FIXTURE_PROG)
            .expect("fixture program")
            .try_into()
            .expect("an iterator");
        for _ in 0..times {
            let link = prog.attach().expect("attach");
            let mut file = prog
                .take_link(link)
                .expect("link")
                .into_file()
                .expect("iterator file");
            file.read_to_end(&mut Vec::new())
                .expect("read the iterator");
        }
    }

    pub fn map_data(&self, name: &str) -> &MapData {
        match self.ebpf.map(name) {
            Some(
                Map::HashMap(d)
                | Map::LruHashMap(d)
                | Map::PerCpuHashMap(d)
                | Map::Array(d)
                | Map::RingBuf(d),
            ) => d,
            other => panic!("fixture map {name}: {other:?}"),
        }
    }

    pub fn map_id(&self, name: &str) -> u32 {
        self.map_data(name).info().expect("map info").id()
    }

    pub fn program_id(&self, name: &str) -> u32 {
        self.ebpf
            .program(name)
            .and_then(|p| p.info().ok())
            .map(|i| i.id())
            .unwrap_or_else(|| panic!("fixture program {name}"))
    }

    pub fn program_tag(&self, name: &str) -> u64 {
        self.ebpf
            .program(name)
            .and_then(|p| p.info().ok())
            .map(|i| i.tag())
            .unwrap_or_else(|| panic!("fixture program {name}"))
    }
}

/// The fixture's FIXTURE_CORE build on disk, for tools that load every
/// program of an object (bpftool in the older-kernel guests).
pub fn fixture_core_object() -> PathBuf {
    PathBuf::from(concat!(env!("OUT_DIR"), "/fixture-core.bpf.o"))
}

/// `bpftool -j <args>` parsed.
pub fn bpftool(args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new("bpftool")
        .arg("-j")
        .args(args)
        .output()
        .context("running bpftool (apt-get install bpftool)")?;
    if !out.status.success() {
        bail!(
            "bpftool {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// A one-element array map named `name`, made by bpftool and pinned at `path`
/// (no fd of it in this process).
pub fn bpftool_pinned_array(path: &Path, name: &str) -> Result<()> {
    let out = Command::new("bpftool")
        .args(["map", "create"])
        .arg(path)
        .args(["type", "array", "key", "4", "value", "4", "entries", "1"])
        .args(["name", name])
        .output()
        .context("running bpftool (apt-get install bpftool)")?;
    if !out.status.success() {
        bail!(
            "bpftool map create {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The exporter binary cargo built next to this test (or $BPF_EXPORTER_BIN).
pub fn exporter_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BPF_EXPORTER_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/bpf-inventory-exporter
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("bpf-inventory-exporter"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build` first or set BPF_EXPORTER_BIN",
        bin.display()
    );
    bin
}
