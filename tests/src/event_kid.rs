//! `bpf-event-kid` (src/bin) in a kubelet-style pod cgroup: the child whose
//! loads and unloads the events tests watch. Told `go`, it loads three
//! programs, unloads the second at once and keeps the other two until its
//! stdin closes; it prints each program's `id tag`.
use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{ChildStdin, Command, Stdio},
};

use bpf_inventory_exporter::collect::cgroup::cgroup2_mount;
use serde_json::Value;

use crate::holders::{make_cgroup, wait_for_comm, Cleanup, Kid};

pub const COMM: &str = "bpf-event-kid";

/// A pod's container cgroup under the cgroup2 mount, removed on drop (after
/// the children started in it: drop them first).
pub struct EventPod {
    dir: PathBuf,
    /// As `/proc/<pid>/cgroup` shows it.
    pub path: String,
    _cleanup: Cleanup,
}

/// A child that has loaded its programs: killed and reaped on drop; closing
/// `stdin` makes it unload the two it keeps and exit.
pub struct Loaded {
    pub kid: Kid,
    pub stdin: ChildStdin,
    /// (id, tag) of the three programs, in load order.
    pub programs: Vec<(u64, String)>,
}

impl EventPod {
    /// The cgroup at `relative` (e.g. `test-<pid>/kubepods.slice/…/cri-containerd-<id>.scope`).
    pub fn create(relative: &str) -> Self {
        let root = cgroup2_mount(&fs::read_to_string("/proc/self/mountinfo").unwrap())
            .expect("a cgroup2 mount");
        let mut cleanup = Cleanup(vec![]);
        let dir = make_cgroup(&root, relative, &mut cleanup);
        Self {
            dir,
            path: format!("/{relative}"),
            _cleanup: cleanup,
        }
    }

    /// Starts `binary` (the test's `env!("CARGO_BIN_EXE_bpf-event-kid")`) in
    /// this cgroup and returns once it has loaded and printed its programs.
    pub fn load(&self, binary: &Path) -> Loaded {
        let mut kid = Kid::spawn(
            Command::new(binary)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        )
        .expect("start the loading child");
        fs::write(self.dir.join("cgroup.procs"), kid.id().to_string())
            .expect("move the child into the pod");
        wait_for_comm(kid.id(), COMM);
        let mut stdin = kid.stdin.take().expect("piped stdin");
        stdin.write_all(b"go\n").expect("tell the child to load");
        let stdout = kid.stdout.take().expect("piped stdout");
        let programs: Vec<(u64, String)> = BufReader::new(stdout)
            .lines()
            .take(3)
            .map(|line| {
                let line = line.expect("a line from the child");
                let (id, tag) = line.split_once(' ').expect("`id tag`");
                (id.parse().expect("id"), tag.to_owned())
            })
            .collect();
        assert_eq!(programs.len(), 3, "the child loads three programs");
        Loaded {
            kid,
            stdin,
            programs,
        }
    }
}

/// Events (`/api/v1/events` items or `events --format json` lines) without
/// `seq` and `time`, which tests check on their own.
pub fn without_seq_and_time(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let object = e.as_object_mut().expect("an event object");
            object.remove("seq");
            object.remove("time");
            e
        })
        .collect()
}
