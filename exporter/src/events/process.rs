//! The process behind an event, read from `/proc/<pid>` as soon as the event
//! is read: comm and cgroup v2 path, with the container id and pod uid named
//! the same way as for owners (`collect::cgroup::parse_container`).
use std::path::Path;

use crate::collect::cgroup::parse_container;

/// What `/proc/<pid>` said; all None when the process is gone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub comm: Option<String>,
    pub cgroup: Option<String>,
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
}

/// Reads `<proc_root>/<pid>`; pid 0 (the idle task, e.g. an RCU callback
/// freeing a program) has no entry and resolves to nothing.
pub fn resolve(proc_root: &Path, pid: u32) -> Process {
    if pid == 0 {
        return Process::default();
    }
    let dir = proc_root.join(pid.to_string());
    let comm = std::fs::read_to_string(dir.join("comm"))
        .ok()
        .map(|c| c.trim_end_matches('\n').to_owned());
    let cgroup = std::fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|text| unified_path(&text).map(str::to_owned));
    let (container_id, pod_uid) = cgroup.as_deref().map(parse_container).unwrap_or_default();
    Process {
        comm,
        cgroup,
        container_id,
        pod_uid,
    }
}

/// The cgroup v2 line (`0::<path>`) of a /proc/<pid>/cgroup text.
fn unified_path(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.strip_prefix("0::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_comm_and_cgroup_and_names_the_pod() {
        let root = std::env::temp_dir().join(format!("events-proc-{}", std::process::id()));
        let dir = root.join("4242");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("comm"), "loader\n").unwrap();
        let id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let path = format!("/kubepods/besteffort/pod0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b/{id}");
        std::fs::write(
            dir.join("cgroup"),
            format!("1:name=systemd:/x\n0::{path}\n"),
        )
        .unwrap();
        assert_eq!(
            resolve(&root, 4242),
            Process {
                comm: Some("loader".into()),
                cgroup: Some(path.clone()),
                container_id: Some(id.into()),
                pod_uid: Some("0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into()),
            }
        );
        // Gone (or the idle task): nothing guessed.
        assert_eq!(resolve(&root, 4243), Process::default());
        assert_eq!(resolve(&root, 0), Process::default());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
