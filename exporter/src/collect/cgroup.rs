//! Cgroup ids to paths, and the container id and pod uid a path names. The
//! owners walk reports a task's cgroup2 id, which is the inode number of the
//! cgroup's directory under the cgroup2 mount (found in /proc/self/mountinfo:
//! hybrid hosts mount it at /sys/fs/cgroup/unified, not /sys/fs/cgroup).
use std::{
    collections::{HashMap, HashSet},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
};

/// A cgroup's path and the container and pod it names, parsed once and
/// shared by every owner in that cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupNames {
    pub path: Arc<str>,
    pub container_id: Option<Arc<str>>,
    pub pod_uid: Option<Arc<str>>,
}

impl CgroupNames {
    fn new(path: String) -> Self {
        let (container_id, pod_uid) = parse_container(&path);
        Self {
            container_id: container_id.map(Arc::from),
            pod_uid: pod_uid.map(Arc::from),
            path: path.into(),
        }
    }
}

/// Resolves cgroup ids by walking the cgroup2 tree; a walk is repeated only
/// when an id is new (a cgroup created since). Ids a fresh walk did not find
/// (cgroups outside this cgroup namespace's view, or removed) are remembered,
/// so they do not cause a walk per collection: kernfs ids are never reused.
#[derive(Default)]
pub struct CgroupPaths {
    root: Option<PathBuf>,
    by_id: HashMap<u64, CgroupNames>,
    unresolvable: HashSet<u64>,
}

impl CgroupPaths {
    pub fn new() -> Self {
        let root = std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|info| cgroup2_mount(&info));
        if root.is_none() {
            tracing::warn!("no cgroup2 mount in /proc/self/mountinfo: owners' cgroup, container_id and pod_uid are null");
        }
        Self {
            root,
            ..Self::default()
        }
    }

    /// Paths (from the cgroup2 root, as in /proc/PID/cgroup: "/" is the root) of these ids.
    pub fn resolve(
        &mut self,
        ids: impl Iterator<Item = u64> + Clone,
    ) -> &HashMap<u64, CgroupNames> {
        let is_new = |id: &u64| !self.by_id.contains_key(id) && !self.unresolvable.contains(id);
        if let Some(root) = &self.root {
            // Records come task by task: look an id up once per run of it.
            let mut last = None;
            if ids
                .clone()
                .filter(|&id| last.replace(id) != Some(id))
                .any(|id| is_new(&id))
            {
                self.by_id.clear();
                walk(root, root, &mut self.by_id);
                let by_id = &self.by_id;
                self.unresolvable
                    .extend(ids.filter(|id| !by_id.contains_key(id)));
            }
        }
        &self.by_id
    }
}

fn walk(root: &Path, dir: &Path, out: &mut HashMap<u64, CgroupNames>) {
    if let Ok(meta) = std::fs::metadata(dir) {
        let relative = dir.strip_prefix(root).unwrap_or(dir);
        let path = format!("/{}", relative.to_string_lossy());
        out.insert(meta.ino(), CgroupNames::new(path));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &entry.path(), out);
        }
    }
}

/// The mount point of the first cgroup2 file system in a mountinfo text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(unescape))?
    })
}

/// Mount points of every bpffs in a mountinfo text.
pub fn bpffs_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split_whitespace().next()? == "bpf")
                .then(|| left.split_whitespace().nth(4).map(unescape))?
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
pub(super) fn unescape(field: &str) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

/// The container id and pod uid a cgroup path names: kubelet's systemd driver
/// (`kubepods-<qos>-pod<uid with _>.slice/<runtime>-<64 hex>.scope`), its
/// cgroupfs driver (`kubepods/<qos>/pod<uid>/<64 hex>`, or `libpod-<64 hex>`
/// when Podman runs the container), and plain Docker and Podman hosts
/// (`docker-<id>.scope`, `/docker/<id>`, `libpod-<id>.scope`, `libpod-<id>`);
/// CRI-O and containerd scopes outside Kubernetes too. The pod uid comes only
/// from kubelet's pod directories.
pub fn parse_container(path: &str) -> (Option<String>, Option<String>) {
    let mut pod_uid = None;
    let mut container_id = None;
    let mut parent = ContainerParent::Other;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if let Some(uid) = pod_segment(segment) {
            pod_uid = Some(uid);
            parent = ContainerParent::Pod;
        } else {
            if let Some(id) = container_segment(segment, parent) {
                container_id = Some(id);
            }
            parent = if segment == "docker" {
                ContainerParent::Docker
            } else {
                ContainerParent::Other
            };
        }
    }
    (container_id, pod_uid)
}

/// What the segment before a container's directory was: a bare 64-hex
/// directory names a container only under a pod's (kubelet's cgroupfs driver)
/// or Docker's cgroupfs parent `/docker`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ContainerParent {
    Pod,
    Docker,
    Other,
}

fn pod_segment(segment: &str) -> Option<String> {
    let (uid, systemd) = match segment.strip_suffix(".slice") {
        // kubepods-burstable-pod<uid>.slice, kubepods-pod<uid>.slice
        Some(slice) => (slice.rsplit('-').next()?.strip_prefix("pod")?, true),
        None => (segment.strip_prefix("pod")?, false),
    };
    let uid = if systemd {
        uid.replace('_', "-")
    } else {
        uid.to_owned()
    };
    is_uuid(&uid).then_some(uid)
}

fn container_segment(segment: &str, parent: ContainerParent) -> Option<String> {
    let id = match segment.strip_suffix(".scope") {
        Some(scope) => {
            let (runtime, id) = scope.rsplit_once('-')?;
            ["cri-containerd", "crio", "docker", "libpod"]
                .contains(&runtime)
                .then_some(id)?
        }
        // Podman's cgroupfs manager: libpod-<id>, in a pod's directory or not
        // (libpod-conmon-<id> is its monitor, not the container).
        None if segment.starts_with("libpod-") => segment.strip_prefix("libpod-")?,
        None if parent != ContainerParent::Other => segment,
        None => return None,
    };
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const UID: &str = "0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn kubelet_systemd_driver() {
        for runtime in ["cri-containerd", "crio", "docker"] {
            let path = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/{runtime}-{ID}.scope", UID.replace('-', "_"));
            assert_eq!(
                parse_container(&path),
                (Some(ID.into()), Some(UID.into())),
                "{path}"
            );
        }
        // Guaranteed QoS has no QoS slice; a pod's slice alone has no container.
        let path = format!("kubepods.slice/kubepods-pod{}.slice", UID.replace('-', "_"));
        assert_eq!(parse_container(&path), (None, Some(UID.into())));
        // CRI-O's conmon scope is not the container.
        let path = format!(
            "kubepods.slice/kubepods-pod{}.slice/crio-conmon-{ID}.scope",
            UID.replace('-', "_")
        );
        assert_eq!(parse_container(&path), (None, Some(UID.into())));
    }

    #[test]
    fn kubelet_cgroupfs_driver() {
        let path = format!("kubepods/besteffort/pod{UID}/{ID}");
        assert_eq!(parse_container(&path), (Some(ID.into()), Some(UID.into())));
        let path = format!("/kubepods/pod{UID}/{ID}");
        assert_eq!(parse_container(&path), (Some(ID.into()), Some(UID.into())));
    }

    #[test]
    fn kubelet_cgroupfs_driver_with_podman() {
        let path = format!("/kubepods/besteffort/pod{UID}/libpod-{ID}");
        assert_eq!(parse_container(&path), (Some(ID.into()), Some(UID.into())));
        let path = format!("/kubepods/besteffort/pod{UID}/libpod-conmon-{ID}");
        assert_eq!(parse_container(&path), (None, Some(UID.into())));
    }

    #[test]
    fn plain_docker_and_podman_hosts_name_no_pod() {
        for path in [
            format!("/system.slice/docker-{ID}.scope"),
            format!("/docker/{ID}"),
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            format!("/libpod_parent/libpod-{ID}"),
            format!("/libpod-{ID}"),
        ] {
            assert_eq!(parse_container(&path), (Some(ID.into()), None), "{path}");
        }
        // Not containers: a bare id outside /docker, a short id, the monitor.
        for path in [
            format!("/other/{ID}"),
            format!("/docker/{}", &ID[..12]),
            format!("/docker/x/{ID}"),
            format!("/libpod_parent/libpod-conmon-{ID}"),
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
        ] {
            assert_eq!(parse_container(&path), (None, None), "{path}");
        }
    }

    #[test]
    fn plain_services_name_no_pod() {
        assert_eq!(parse_container("system.slice/sshd.service"), (None, None));
        assert_eq!(parse_container(""), (None, None));
        assert_eq!(parse_container(&format!("user.slice/{ID}")), (None, None));
        assert_eq!(
            parse_container(&format!("system.slice/docker-{ID}.scope")),
            (Some(ID.into()), None)
        );
        assert_eq!(
            parse_container("kubepods.slice/kubepods-podnot_a_uid.slice"),
            (None, None)
        );
    }

    #[test]
    fn ids_are_the_inodes_of_the_cgroup_directories() {
        let root = tempfile_dir();
        std::fs::create_dir_all(root.join("a.slice/b.scope")).unwrap();
        let ino = |p: &str| std::fs::metadata(root.join(p)).unwrap().ino();
        let mut paths = CgroupPaths {
            root: Some(root.clone()),
            ..CgroupPaths::default()
        };
        let (a, b, gone) = (ino("a.slice"), ino("a.slice/b.scope"), u64::MAX);
        let found = paths.resolve([a, b, gone].into_iter()).clone();
        assert_eq!(&*found[&a].path, "/a.slice");
        assert_eq!(&*found[&b].path, "/a.slice/b.scope");
        assert_eq!(&*found[&ino("")].path, "/");
        assert!(!found.contains_key(&gone));
        assert!(paths.unresolvable.contains(&gone), "not walked for again");
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cgroup-paths-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn mounts_from_mountinfo() {
        let info = "25 1 0:23 / / rw - ext4 /dev/vda rw\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                    50 31 0:40 / /sys/fs/bpf rw - bpf bpf rw\n\
                    51 31 0:41 / /run/my\\040bpf rw - bpf bpf rw\n";
        assert_eq!(cgroup2_mount(info), Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(
            bpffs_mounts(info),
            [PathBuf::from("/sys/fs/bpf"), PathBuf::from("/run/my bpf")]
        );
        assert_eq!(cgroup2_mount("25 1 0:23 / / rw - ext4 /dev/vda rw"), None);
    }
}
