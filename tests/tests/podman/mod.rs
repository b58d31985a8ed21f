//! Running the DaemonSet's containers with podman (runc, cgroupfs, lowered
//! limits: see container_runtime.rs) from the rendered manifests, and
//! removing what a test created.
use std::{
    fs,
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use e2e_tests::{
    deploy::{installed, kustomize, repo_path, run, yaml_documents, PYTHON},
    have_root,
};
use serde_json::Value;

pub const RUNC: &str = "/usr/sbin/runc";
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;
const PROFILE: &str = "deploy/seccomp/bpf-inventory-exporter.json";

/// podman with runc and the cgroupfs manager (container_runtime.rs says why).
pub fn podman_command(args: &[&str]) -> Command {
    let mut command = Command::new("podman");
    command.args(["--runtime", RUNC, "--cgroup-manager=cgroupfs"]);
    command.args(args);
    command
}

pub fn podman(args: &[&str]) -> String {
    let out = podman_command(args).output().expect("run podman");
    assert!(out.status.success(), "podman {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// podman and runc present; without them the test skips (fails under CI).
pub fn runtime_present(test: &str) -> bool {
    if !have_root(test) {
        return false;
    }
    let podman = Command::new("podman").arg("--version").output();
    if podman.is_ok_and(|o| o.status.success()) && Path::new(RUNC).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: podman and {RUNC} needed (apt-get install podman runc)"
    );
    eprintln!("skipping {test}: podman or {RUNC} missing (apt-get install podman runc)");
    false
}

/// What the test created in podman and the cgroup tree, removed on drop.
#[derive(Default)]
pub struct Created {
    pub containers: Vec<String>,
    pub images: Vec<String>,
    pub pod_cgroups: Vec<String>,
}

impl Drop for Created {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = podman_command(&["rm", "--force", "--time", "0", name]).output();
        }
        for image in &self.images {
            let _ = podman_command(&["rmi", "--force", image]).output();
        }
        // The pod directories podman made for --cgroup-parent (with conmon's
        // cgroup inside), in every hierarchy.
        for pod in &self.pod_cgroups {
            for hierarchy in fs::read_dir("/sys/fs/cgroup").into_iter().flatten() {
                let Ok(hierarchy) = hierarchy else { continue };
                remove_cgroup(&hierarchy.path().join(pod.trim_start_matches('/')));
            }
        }
    }
}

/// A cgroup and those under it, leaves first (only empty cgroups go).
pub fn remove_cgroup(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&entry.path());
        }
    }
    let _ = fs::remove_dir(dir);
}

impl Created {
    /// The exporter's image, built by deploy/container/build.sh under a tag of this test.
    pub fn exporter_image(&mut self, test: &str) -> String {
        let image = format!(
            "localhost/bpf-inventory-exporter:{test}-{}",
            std::process::id()
        );
        self.images.push(image.clone());
        let status = Command::new(repo_path("deploy/container/build.sh"))
            .arg(&image)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("run deploy/container/build.sh");
        assert!(status.success(), "build.sh: {status}");
        image
    }

    pub fn name(&mut self, what: &str) -> String {
        let name = format!("container-runtime-{what}-{}", std::process::id());
        self.containers.push(name.clone());
        name
    }
}

/// The rendered DaemonSet's pod spec: the base, or with the pin component.
pub fn pod_spec(test: &str, with_pin: bool) -> Option<Value> {
    let python = installed(test, PYTHON)?;
    let yaml = if with_pin {
        // kustomize takes only relative paths: a kustomization made under tests/deploy.
        let dir = tempfile::Builder::new()
            .prefix(".kustomize-")
            .tempdir_in(repo_path("tests/deploy"))
            .unwrap();
        fs::write(
            dir.path().join("kustomization.yaml"),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources:\n  - ../../../deploy/kubernetes\n\
             components:\n  - ../../../deploy/kubernetes/components/pin\n",
        )
        .unwrap();
        run(
            Command::new("kubectl").arg("kustomize").arg(dir.path()),
            b"",
        )
        .unwrap()
    } else {
        kustomize("deploy/kubernetes").unwrap()
    };
    let docs = yaml_documents(&python, &yaml).unwrap();
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    Some(ds["spec"]["template"]["spec"].clone())
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// `podman run` options for `container` of `pod` as the kubelet would set them;
/// `host_path` maps a hostPath to the directory the test uses for it.
pub fn run_options(
    pod: &Value,
    container: &Value,
    host_path: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let security = &container["securityContext"];
    let mut options = vec![
        "--ulimit=nofile=1024:1024".to_owned(),
        "--ulimit=nproc=1024:1024".to_owned(),
    ];
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    options.push("--cap-drop=ALL".into());
    for cap in strings(&security["capabilities"]["add"]) {
        options.push(format!("--cap-add={cap}"));
    }
    assert_eq!(security["privileged"], false);
    if security["readOnlyRootFilesystem"] == true {
        options.push("--read-only".into());
    }
    if security["allowPrivilegeEscalation"] == false {
        options.push("--security-opt=no-new-privileges".into());
    }
    let uid = security["runAsUser"].as_u64().expect("runAsUser");
    let gid = security["runAsGroup"].as_u64().expect("runAsGroup");
    options.push(format!("--user={uid}:{gid}"));
    // RuntimeDefault stands for an older runtime's default: the profile in deploy/.
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    options.push(format!(
        "--security-opt=seccomp={}",
        repo_path(PROFILE).display()
    ));
    if pod["hostPID"] == true {
        options.push("--pid=host".into());
    }
    assert_eq!(pod["hostNetwork"], false, "the port is published below");
    for mount in container["volumeMounts"].as_array().unwrap() {
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("volume of {mount}"));
        let host = volume["hostPath"]["path"]
            .as_str()
            .expect("a hostPath volume");
        let mode = if mount["readOnly"] == true {
            "ro"
        } else {
            "rw"
        };
        let path = mount["mountPath"].as_str().unwrap();
        options.push(format!("--volume={}:{path}:{mode}", host_path(host)));
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap();
        let value = match (&var["value"], &var["valueFrom"]["fieldRef"]["fieldPath"]) {
            (Value::String(value), _) => value.clone(),
            (_, Value::String(field)) if field == "spec.nodeName" => {
                "container-runtime-node".into()
            }
            other => panic!("env {name}: {other:?}"),
        };
        options.push(format!("--env={name}={value}"));
    }
    options
}

pub fn args(container: &Value) -> Vec<String> {
    strings(&container["args"])
}

pub fn status_mask(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("{field} in {status}"));
    u64::from_str_radix(value.trim(), 16).unwrap()
}

pub fn container_pid(name: &str) -> u32 {
    podman(&["inspect", "--format", "{{.State.Pid}}", name])
        .trim()
        .parse()
        .unwrap()
}

/// A FROM scratch image whose entry point is busybox's `sleep`.
pub fn sleep_image(created: &mut Created) -> String {
    let context = tempfile::tempdir().unwrap();
    fs::copy("/bin/busybox", context.path().join("sleep")).expect("busybox-static installed");
    fs::write(
        context.path().join("Containerfile"),
        "FROM scratch\nCOPY sleep /sleep\nENTRYPOINT [\"/sleep\"]\n",
    )
    .unwrap();
    let image = format!("localhost/container-runtime-sleep:{}", std::process::id());
    created.images.push(image.clone());
    podman(&[
        "build",
        "--quiet",
        "--tag",
        &image,
        context.path().to_str().unwrap(),
    ]);
    image
}

/// `podman run --detach` with `fd` as the container's fd 3.
pub fn run_holding(options: &[String], fd: &OwnedFd) -> Output {
    let fd = fd.as_raw_fd();
    let mut command = podman_command(&["run", "--detach", "--preserve-fds=1"]);
    command.args(options);
    // SAFETY: dup2 and fcntl are async-signal-safe and touch only fd numbers.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.output().unwrap()
}

/// A pidfd of `pid` (readable once the process has exited).
pub fn pidfd(pid: u32) -> OwnedFd {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a new descriptor this function alone owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

pub fn exited_within(fd: &OwnedFd, limit: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut poll, 1, limit.as_millis() as i32) };
    ready == 1
}
